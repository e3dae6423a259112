//! Number text for header values and tokens, without allocating: decimal (CSeq numbers,
//! Expires, ports, reg-id — RFC 3261 §25.1 `1*DIGIT`) and fixed-width lower-case hex (the
//! fields of our tokens and tags, [`crate::branch`]).
//!
//! Every writer appends to a buffer the caller reuses; nothing here allocates beyond that
//! buffer's own growth.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the decimal text of `n` (`0` → `0`, no sign, no leading zeros).
#[inline]
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// [`push_u64`] for a `u32` (a shorter conversion).
#[inline]
pub fn push_u32(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// [`push_u64`] into a `String`.
#[inline]
pub fn push_u64_str(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Writes the low `out.len()` hex digits of `v` into `out`, most significant first,
/// lower case, zero-padded (`out.len()` ≤ 16; digits beyond 16 are written as `0`).
#[inline]
pub fn put_hex(out: &mut [u8], v: u64) {
    let n = out.len();
    for (i, o) in out.iter_mut().enumerate() {
        let shift = 4 * (n - 1 - i);
        *o = if shift < 64 {
            HEX[((v >> shift) & 0xf) as usize]
        } else {
            b'0'
        };
    }
}

/// Appends the low `digits` hex digits of `v` to `out` ([`put_hex`]'s text).
#[inline]
pub fn push_hex(out: &mut Vec<u8>, v: u64, digits: usize) {
    for i in (0..digits).rev() {
        let d = if i < 16 { (v >> (4 * i)) & 0xf } else { 0 };
        out.push(HEX[d as usize]);
    }
}

/// `v` as 16 lower-case hex digits.
#[inline]
pub fn hex_u64(v: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    put_hex(&mut out, v);
    out
}

/// Reads 1 to 16 lower-case hex digits (the text [`put_hex`] writes); `None` for anything
/// else: empty, longer than 16 digits (it would not fit), an upper-case or non-hex byte.
#[inline]
pub fn get_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_hex_appends_fixed_width() {
        let mut v = b"x".to_vec();
        push_hex(&mut v, 0xab, 4);
        push_hex(&mut v, u64::MAX, 16);
        assert_eq!(v, b"x00abffffffffffffffff");
        assert_eq!(get_hex(&v[1..5]), Some(0xab));
    }

    #[test]
    fn decimal() {
        for (n, s) in [
            (0u64, "0"),
            (7, "7"),
            (10, "10"),
            (4_294_967_295, "4294967295"),
            (4_294_967_296, "4294967296"),
            (u64::MAX, "18446744073709551615"),
        ] {
            let mut v = b"x".to_vec();
            push_u64(&mut v, n);
            assert_eq!(&v[1..], s.as_bytes());
            let mut t = String::from("x");
            push_u64_str(&mut t, n);
            assert_eq!(&t[1..], s);
            if let Ok(n32) = u32::try_from(n) {
                let mut w = Vec::new();
                push_u32(&mut w, n32);
                assert_eq!(w, s.as_bytes());
            }
        }
    }

    #[test]
    fn hex_round_trip_fixed_widths() {
        let mut b = [0u8; 5];
        put_hex(&mut b, 0x1_2345);
        assert_eq!(&b, b"12345");
        assert_eq!(get_hex(&b), Some(0x1_2345));
        // Narrower than the value: the low digits only.
        let mut b = [0u8; 1];
        put_hex(&mut b, 0xabc);
        assert_eq!(&b, b"c");
        assert_eq!(&hex_u64(u64::MAX), b"ffffffffffffffff");
        assert_eq!(&hex_u64(0x0102), b"0000000000000102");
        assert_eq!(get_hex(b"ffffffffffffffff"), Some(u64::MAX));
        // Wider than 16: zero-padded, never a shift overflow.
        let mut b = [b'x'; 18];
        put_hex(&mut b, u64::MAX);
        assert_eq!(&b, b"00ffffffffffffffff");
    }

    #[test]
    fn hex_hostile() {
        assert_eq!(get_hex(b""), None);
        assert_eq!(get_hex(b"10000000000000000"), None, "17 digits do not fit");
        assert_eq!(get_hex(b"ABC"), None, "upper case is not what we write");
        assert_eq!(get_hex(b"12g"), None);
        assert_eq!(get_hex(b"-1"), None);
        assert_eq!(get_hex(b"1 "), None);
        assert_eq!(get_hex(b"abc"), Some(0xabc), "odd length is fine");
    }
}
