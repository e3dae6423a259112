//! Shard-routing Via branches: tokens of our own that carry fixed-width fields.
//!
//! A branch we generate starts with the RFC 3261 §8.1.1.7 magic cookie `z9hG4bK` (so every
//! RFC 3261 element treats it as globally unique), then a two-byte mark naming what kind of
//! token it is (a relay transaction, a keepalive ping, …), then fixed-width lower-case hex
//! fields — typically the owner shard first, so that a response arriving on any shard reaches
//! the owner in one hop (Kamailio's Via branch carries its transaction index the same way).
//! [`BranchLayout`] describes one such shape; decoding is strict — the exact length, the
//! cookie, the mark, and only the lower-case hex digits [`crate::fmt::put_hex`] writes —
//! so a branch of somebody else's is never read as ours. Authenticating the fields (a MAC,
//! usually the last field) is the caller's business: this module only reads and writes text.

use crate::fmt::{get_hex, put_hex};

/// The RFC 3261 §8.1.1.7 magic cookie every RFC 3261 branch starts with.
pub const MAGIC_COOKIE: &[u8; 7] = b"z9hG4bK";

/// The shape of one kind of branch token: a two-byte mark and `N` hex fields of fixed widths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BranchLayout<const N: usize> {
    mark: [u8; 2],
    digits: [u8; N],
    token_len: usize,
}

impl<const N: usize> BranchLayout<N> {
    /// A layout: `mark` after the cookie, then fields of `digits[i]` hex digits each (1 to
    /// 16; checked at compile time when the layout is a `const`).
    pub const fn new(mark: [u8; 2], digits: [u8; N]) -> Self {
        let mut token_len = 2;
        let mut i = 0;
        while i < N {
            assert!(
                digits[i] >= 1 && digits[i] <= 16,
                "a field has 1 to 16 hex digits"
            );
            token_len += digits[i] as usize;
            i += 1;
        }
        BranchLayout {
            mark,
            digits,
            token_len,
        }
    }

    /// Length of the token (mark and fields, without the cookie).
    pub const fn token_len(&self) -> usize {
        self.token_len
    }

    /// Length of the whole branch (cookie, mark and fields).
    pub const fn branch_len(&self) -> usize {
        MAGIC_COOKIE.len() + self.token_len
    }

    /// The cookie and the mark: what every branch of this layout starts with.
    pub fn prefix(&self) -> [u8; 9] {
        let mut p = [0u8; 9];
        p[..7].copy_from_slice(MAGIC_COOKIE);
        p[7..].copy_from_slice(&self.mark);
        p
    }

    /// Writes the token (mark and fields, each field's low digits) into `out`; false, and
    /// nothing written, when `out` is not [`BranchLayout::token_len`] long.
    #[inline]
    pub fn encode_token(&self, fields: &[u64; N], out: &mut [u8]) -> bool {
        if out.len() != self.token_len {
            return false;
        }
        out[..2].copy_from_slice(&self.mark);
        let mut at = 2;
        for (&v, &d) in fields.iter().zip(&self.digits) {
            let d = usize::from(d);
            put_hex(&mut out[at..at + d], v);
            at += d;
        }
        true
    }

    /// Writes the whole branch (cookie, mark, fields) into `out`; false, and nothing written,
    /// when `out` is not [`BranchLayout::branch_len`] long.
    #[inline]
    pub fn encode(&self, fields: &[u64; N], out: &mut [u8]) -> bool {
        if out.len() != self.branch_len() {
            return false;
        }
        out[..MAGIC_COOKIE.len()].copy_from_slice(MAGIC_COOKIE);
        self.encode_token(fields, &mut out[MAGIC_COOKIE.len()..])
    }

    /// The fields of a token of this layout (without the cookie); `None` unless `token` is
    /// exactly this shape.
    #[inline]
    pub fn decode_token(&self, token: &[u8]) -> Option<[u64; N]> {
        if token.len() != self.token_len || token[..2] != self.mark {
            return None;
        }
        let mut fields = [0u64; N];
        let mut at = 2;
        for (f, &d) in fields.iter_mut().zip(&self.digits) {
            let d = usize::from(d);
            *f = get_hex(&token[at..at + d])?;
            at += d;
        }
        Some(fields)
    }

    /// The fields of a branch of this layout; `None` unless `branch` is exactly this shape
    /// (somebody else's branch, or one of ours of another kind).
    #[inline]
    pub fn decode(&self, branch: &[u8]) -> Option<[u64; N]> {
        self.decode_token(branch.strip_prefix(&MAGIC_COOKIE[..])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: BranchLayout<3> = BranchLayout::new(*b"xY", [4, 5, 16]);
    const LEN: usize = L.branch_len();

    #[test]
    fn round_trip() {
        assert_eq!(LEN, 7 + 2 + 4 + 5 + 16);
        let mut b = [0u8; LEN];
        assert!(L.encode(&[0xbeef, 0x1_2345, u64::MAX], &mut b));
        assert_eq!(&b[..], b"z9hG4bKxYbeef12345ffffffffffffffff");
        assert!(b.starts_with(&L.prefix()));
        assert_eq!(L.decode(&b), Some([0xbeef, 0x1_2345, u64::MAX]));
        assert_eq!(L.decode_token(&b[7..]), Some([0xbeef, 0x1_2345, u64::MAX]));
        // A field wider than its digits keeps its low digits.
        assert!(L.encode(&[0x1_0001, 0, 0], &mut b));
        assert_eq!(L.decode(&b), Some([1, 0, 0]));
    }

    #[test]
    fn wrong_buffer_writes_nothing() {
        let mut b = [b'.'; LEN + 1];
        assert!(!L.encode(&[1, 2, 3], &mut b));
        assert!(!L.encode_token(&[1, 2, 3], &mut b[..3]));
        assert!(b.iter().all(|&c| c == b'.'));
    }

    #[test]
    fn hostile_branches() {
        let mut good = [0u8; LEN];
        assert!(L.encode(&[1, 2, 3], &mut good));
        assert_eq!(L.decode(b""), None);
        assert_eq!(L.decode(b"z9hG4bK"), None);
        assert_eq!(L.decode(b"z9hG4bK776asdhds"), None, "somebody else's");
        assert_eq!(L.decode(&good[..LEN - 1]), None, "one digit short");
        let mut long = good.to_vec();
        long.push(b'0');
        assert_eq!(L.decode(&long), None, "one digit more");
        let mut other_mark = good;
        other_mark[8] = b'Z';
        assert_eq!(L.decode(&other_mark), None, "another kind of ours");
        let mut no_cookie = good;
        no_cookie[0] = b'Z';
        assert_eq!(L.decode(&no_cookie), None);
        for (i, bad) in [(10, b'X'), (12, b'A'), (LEN - 1, b'g'), (15, b' ')] {
            let mut b = good;
            b[i] = bad;
            assert_eq!(L.decode(&b), None, "byte {i} = {}", bad as char);
        }
        // Non-ASCII where a digit should be, at every position.
        for i in 9..LEN {
            let mut b = good;
            b[i] = 0xff;
            assert_eq!(L.decode(&b), None);
        }
    }
}
