//! Byte-level lexing shared by every field parser (RFC 3261 §25.1 basic rules).
//!
//! Inside a header value the indexer has already cut the value at its true end, so any CR or
//! LF left inside it is line folding (RFC 3261 §7.3.1) and counts as whitespace here.

/// `SP / HTAB`, plus CR and LF which only occur inside a value as folding.
#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// RFC 3261 §25.1 `token` characters, as a table.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            );
        i += 1;
    }
    t
};

/// RFC 3261 §25.1 `token` characters.
#[inline(always)]
pub(crate) fn is_token(b: u8) -> bool {
    TOKEN[b as usize]
}

/// 1 for bytes that are neither ASCII whitespace nor control characters (for [`skip_class`]).
pub(crate) static VISIBLE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = !(b.is_ascii_whitespace() || b.is_ascii_control()) as u8;
        i += 1;
    }
    t
};

/// True when every byte of `s` is [`VISIBLE`] (above SP and not DEL), eight bytes a step:
/// a word holds an invisible byte exactly when it has a byte below 0x21 or equal to 0x7F,
/// which the classic "has less / has zero" word tricks detect without false positives.
#[inline]
pub(crate) fn all_visible(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word_ok = |w: &[u8]| {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(w).expect("eight bytes"));
        let del = x ^ (ONES * 0x7F);
        ((x.wrapping_sub(ONES * 0x21) & !x) | (del.wrapping_sub(ONES) & !del)) & HIGH == 0
    };
    if s.len() < 8 {
        return s.iter().all(|&b| VISIBLE[b as usize] != 0);
    }
    // Every full word, then the last eight bytes (overlapping the last full word).
    s.chunks_exact(8).all(word_ok) && word_ok(&s[s.len() - 8..])
}

/// Index of the first non-token byte at or after `i`.
#[inline]
pub(crate) fn skip_token(s: &[u8], i: usize) -> usize {
    skip_class(s, i, &TOKEN_CLASS, 1)
}

/// 1 for token bytes (for [`skip_class`]).
static TOKEN_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = TOKEN[i] as u8;
        i += 1;
    }
    t
};

/// Index of the first byte at or after `i` whose class in `table` lacks every bit of `bits`.
/// Four bytes per step: one branch per four table lookups on the long runs SIP is made of.
#[inline(always)]
pub(crate) fn skip_class(s: &[u8], mut i: usize, table: &[u8; 256], bits: u8) -> usize {
    while let Some(q) = s.get(i..i + 4) {
        let (a, b, c) = (
            table[q[0] as usize],
            table[q[1] as usize],
            table[q[2] as usize],
        );
        if a & b & c & table[q[3] as usize] & bits == 0 {
            // The run ends in these four bytes: find where from the classes in hand.
            let k = (a & bits != 0) as usize
                + (a & b & bits != 0) as usize
                + (a & b & c & bits != 0) as usize;
            return i + k;
        }
        i += 4;
    }
    while i < s.len() && table[s[i] as usize] & bits != 0 {
        i += 1;
    }
    i
}

/// Index of the first non-whitespace byte at or after `i`.
#[inline]
pub(crate) fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && is_ws(s[i]) {
        i += 1;
    }
    i
}

/// Case-insensitive equality of a canonical word (letters, digits, `-`) with any bytes: a
/// letter of `canon` matches its two cases, any other byte only itself. Word-wise, with the
/// case bit `0x20` folded only where `canon` has a letter (bit `0x40`), so that e.g. CR
/// never matches `-` and the comparison needs no `token` check first.
#[inline]
pub(crate) fn eq_token_ci(canon: &[u8], name: &[u8]) -> bool {
    let n = canon.len();
    if n != name.len() {
        return false;
    }
    if n >= 8 {
        const BIT6: u64 = 0x4040_4040_4040_4040;
        let eq = |at: usize| {
            let mut c = [0u8; 8];
            let mut v = [0u8; 8];
            c.copy_from_slice(&canon[at..at + 8]);
            v.copy_from_slice(&name[at..at + 8]);
            let (c, v) = (u64::from_le_bytes(c), u64::from_le_bytes(v));
            let fold = (c & BIT6) >> 1;
            c | fold == v | fold
        };
        // Overlapping words: every full word, then the last eight bytes.
        let mut at = 0;
        while at + 8 < n {
            if !eq(at) {
                return false;
            }
            at += 8;
        }
        return eq(n - 8);
    }
    if n >= 4 {
        const BIT6: u32 = 0x4040_4040;
        let eq = |at: usize| {
            let mut c = [0u8; 4];
            let mut v = [0u8; 4];
            c.copy_from_slice(&canon[at..at + 4]);
            v.copy_from_slice(&name[at..at + 4]);
            let (c, v) = (u32::from_le_bytes(c), u32::from_le_bytes(v));
            let fold = (c & BIT6) >> 1;
            c | fold == v | fold
        };
        return eq(0) && eq(n - 4);
    }
    canon.iter().zip(name).all(|(&c, &v)| {
        let fold = (c & 0x40) >> 1;
        c | fold == v | fold
    })
}

/// Strips leading and trailing whitespace (including folding).
#[inline]
pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    // The usual case: nothing to strip (whitespace is at most SP).
    if let [first, .., last] = s {
        if *first > b' ' && *last > b' ' {
            return s;
        }
    }
    while let [first, rest @ ..] = s {
        if is_ws(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_ws(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Strips leading whitespace only: for the tail of a value whose end is trimmed already.
#[inline]
pub(crate) fn trim_start(s: &[u8]) -> &[u8] {
    match s {
        [b, ..] if is_ws(*b) => &s[skip_ws(s, 0)..],
        _ => s,
    }
}

/// True when `s` is a non-empty run of token characters.
#[inline]
pub(crate) fn is_token_str(s: &[u8]) -> bool {
    // Four bytes a step (tags and branches are 10–30 bytes).
    !s.is_empty() && skip_token(s, 0) == s.len()
}

/// Parses 1*DIGIT into a u64, refusing empty input, non-digits and overflow.
#[inline]
pub(crate) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() >= 20 {
        return parse_u64_long(s);
    }
    // At most 19 digits stay below 10^19 < 2^64: no overflow checks needed.
    let mut v: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    Some(v)
}

/// [`parse_u64`] of an empty or 20-plus-byte input (out of line: rare).
#[cold]
#[inline(never)]
fn parse_u64_long(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

#[inline]
pub(crate) fn parse_u32(s: &[u8]) -> Option<u32> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// A port (`1*DIGIT`, below 65,536) at the start of `s`, and where its digits end, in one
/// pass; `None` without digits or past 65,535. As [`parse_u32`] of the digit run would: at
/// most 20 digits (leading zeros included), then the range check.
#[inline]
pub(crate) fn parse_port(s: &[u8]) -> Option<(u16, usize)> {
    let mut v: u32 = 0;
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        v = v * 10 + u32::from(d);
        if v > u32::from(u16::MAX) {
            return None;
        }
        i += 1;
    }
    if i == 0 || i > 20 {
        return None;
    }
    Some((v as u16, i))
}

/// Given `s[start] == b'"'`, returns the index just past the closing quote, honouring
/// `quoted-pair` escapes (RFC 3261 §25.1). `None` when the quote is not closed.
#[inline]
pub(crate) fn end_of_quoted(s: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        i = find2(s, i, b'"', b'\\')?;
        if s[i] == b'"' {
            return Some(i + 1);
        }
        i += 2;
    }
}

/// Finds the first `sep` at nesting level zero: outside quoted strings and `<...>`.
pub(crate) fn find_unquoted(s: &[u8], sep: u8) -> Option<usize> {
    let mut i = 0;
    loop {
        i = find3(s, i, sep, b'"', b'<')?;
        match s[i] {
            b'"' => i = end_of_quoted(s, i)?,
            b'<' if sep != b'<' => i = find_byte(s, i, b'>')? + 1,
            _ => return Some(i),
        }
    }
}

/// Finds the first `sep` outside quoted strings.
pub(crate) fn find_outside_quotes(s: &[u8], sep: u8) -> Option<usize> {
    let mut i = 0;
    loop {
        i = find2(s, i, sep, b'"')?;
        if s[i] == sep {
            return Some(i);
        }
        i = end_of_quoted(s, i)?;
    }
}

/// memchr's SSE2 searchers, called directly: SSE2 is baseline on x86-64, and skipping
/// `memchr::memchr`'s runtime CPU dispatch (an indirect call, then AVX2 set-up) matters more
/// than AVX2's width on 20–200-byte SIP values. Elsewhere the dispatching functions are used.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    pub(super) use memchr::arch::x86_64::sse2::memchr::{One, Three, Two};
    pub(super) const ENABLED: &str = "SSE2 is enabled at compile time";
}

/// Index of the first `b` at or after `from`.
#[inline]
pub(crate) fn find_byte(s: &[u8], from: usize, b: u8) -> Option<usize> {
    let hay = s.get(from..)?;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let at = sse2::One::new(b).expect(sse2::ENABLED).find(hay);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let at = memchr::memchr(b, hay);
    Some(from + at?)
}

/// Index of the first `a` or `b` at or after `from`.
#[inline]
pub(crate) fn find2(s: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
    let hay = s.get(from..)?;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let at = sse2::Two::new(a, b).expect(sse2::ENABLED).find(hay);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let at = memchr::memchr2(a, b, hay);
    Some(from + at?)
}

/// Index of the first `a`, `b` or `c` at or after `from`.
#[inline]
pub(crate) fn find3(s: &[u8], from: usize, a: u8, b: u8, c: u8) -> Option<usize> {
    let hay = s.get(from..)?;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let at = sse2::Three::new(a, b, c).expect(sse2::ENABLED).find(hay);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    let at = memchr::memchr3(a, b, c, hay);
    Some(from + at?)
}

/// Byte offset of `sub` inside `base`; `sub` must be a sub-slice of `base`.
#[inline]
pub(crate) fn offset_in(base: &[u8], sub: &[u8]) -> u32 {
    (sub.as_ptr() as usize).saturating_sub(base.as_ptr() as usize) as u32
}

/// Value of a hex digit.
#[inline]
pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Iterates the `%HH`-unescaped bytes of `s` (RFC 3261 §25.1 `escaped`); a malformed escape
/// is yielded as-is.
pub fn unescape(s: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut i = 0;
    core::iter::from_fn(move || {
        let b = *s.get(i)?;
        if b == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex_val(s[i + 1]), hex_val(s[i + 2])) {
                i += 3;
                return Some(h << 4 | l);
            }
        }
        i += 1;
        Some(b)
    })
}

/// Compares two URI components after `%HH` unescaping (RFC 3261 §19.1.4).
pub fn eq_unescaped(a: &[u8], b: &[u8]) -> bool {
    unescape(a).eq(unescape(b))
}

/// Same as [`eq_unescaped`], ignoring ASCII case.
pub fn eq_unescaped_ignore_case(a: &[u8], b: &[u8]) -> bool {
    unescape(a)
        .map(|c| c.to_ascii_lowercase())
        .eq(unescape(b).map(|c| c.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_folding() {
        assert_eq!(trim(b" \r\n\tabc \r\n "), b"abc");
        assert_eq!(trim(b"   "), b"");
    }

    #[test]
    fn visible_words_match_the_table() {
        for n in 0..20 {
            for at in 0..n {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; n];
                    s[at] = b;
                    assert_eq!(
                        all_visible(&s),
                        VISIBLE[b as usize] != 0,
                        "n={n} at={at} b={b:#x}"
                    );
                }
            }
        }
        assert!(all_visible(b""));
        assert!(all_visible("a84b4c76e66710@192.0.2.10\u{e9}".as_bytes()));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"36893488147419103232"), None);
    }

    #[test]
    fn quoted_and_unquoted() {
        assert_eq!(end_of_quoted(br#""a\"b" x"#, 0), Some(6));
        assert_eq!(end_of_quoted(br#""abc"#, 0), None);
        assert_eq!(find_unquoted(br#""a,b" <sip:x,y>, z"#, b','), Some(15));
        assert_eq!(find_outside_quotes(br#""a<b" <sip:x>"#, b'<'), Some(6));
        assert_eq!(end_of_quoted(br#""0123456789\"abcdef" x"#, 0), Some(20));
    }

    #[test]
    fn searches_match_byte_scans() {
        // Every length, start and position, across the 16-byte vector steps.
        for n in 0..40 {
            for at in 0..=n {
                let mut s = vec![b'a'; n];
                if at < n {
                    s[at] = b'\n';
                }
                // Bytes one off the target at every other position: no false positives.
                for k in (0..n).step_by(2) {
                    if k != at {
                        s[k] = b'\n' ^ 1;
                    }
                }
                for from in 0..=n {
                    let want = s[from..].iter().position(|&b| b == b'\n').map(|p| p + from);
                    assert_eq!(
                        find_byte(&s, from, b'\n'),
                        want,
                        "n={n} at={at} from={from}"
                    );
                    assert_eq!(find2(&s, from, b'x', b'\n'), want);
                    assert_eq!(find3(&s, from, b'x', b'y', b'\n'), want);
                }
            }
        }
    }

    #[test]
    fn token_case_folding() {
        for (a, b, eq) in [
            (&b"call-id"[..], &b"CALL-ID"[..], true),
            (b"max-forwards", b"Max-Forwards", true),
            (b"max-forwards", b"Max-Forwardz", false),
            (b"proxy-authorization", b"PROXY-AUTHORIZATION", true),
            (b"proxy-authorization", b"PROXY-AUTHORIZATIOM", false),
            (b"to", b"To", true),
            (b"via", b"vIa", true),
            (b"via", b"vi", false),
            (b"from", b"FROM", true),
            (b"contact", b"contacx", false),
            // CR folds onto `-` under a plain `| 0x20`: not here.
            (b"call-id", b"call\rid", false),
            (b"a-b", b"a\rb", false),
            (b"max-forwards", b"max\rforwards", false),
        ] {
            assert_eq!(eq_token_ci(a, b), eq, "{:?} {:?}", a, b);
        }
    }

    #[test]
    fn unescaping() {
        assert!(eq_unescaped(
            b"sips%3Auser%40example.com",
            b"sips:user@example.com"
        ));
        assert!(eq_unescaped(b"%", b"%"));
        assert!(eq_unescaped(b"a%4", b"a%4"));
        assert!(eq_unescaped_ignore_case(b"Alice%41", b"aliceA"));
    }
}
