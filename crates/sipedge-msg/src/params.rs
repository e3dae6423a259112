//! `;name[=value]` parameter lists (RFC 3261 §25.1 `generic-param`, `uri-parameters`).

use crate::lex::{end_of_quoted, find2, skip_class, skip_ws, trim};

/// A borrowed parameter list, starting just after its first `;` (or empty). Iterating yields
/// `(name, value)` with whitespace trimmed; a quoted value keeps its quotes (see
/// [`crate::QuotedStr`] to unescape it). Lookups are case-insensitive on the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    pub(crate) raw: &'a [u8],
}

impl<'a> Params<'a> {
    /// Wraps the bytes after the leading `;`.
    pub fn new(raw: &'a [u8]) -> Self {
        Self { raw }
    }

    /// The raw text, without the leading `;`.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        trim(self.raw).is_empty()
    }

    /// `Some(Some(v))` for `name=v`, `Some(None)` for a bare `name`, `None` when absent.
    pub fn get(&self, name: &[u8]) -> Option<Option<&'a [u8]>> {
        let mut found = None;
        scan(self.raw, |n, v| {
            if found.is_none() && n.len() == name.len() && n.eq_ignore_ascii_case(name) {
                found = Some(v);
            }
        });
        found
    }

    /// The value of `name=value`, or `None` if absent or valueless.
    pub fn value(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.get(name).flatten()
    }

    /// True when the parameter is present, with or without a value.
    pub fn has(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }

    /// Iterates the parameters in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter { rest: self.raw }
    }
}

impl<'a> IntoIterator for Params<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);
    type IntoIter = ParamIter<'a>;
    fn into_iter(self) -> ParamIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Params`].
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let end = param_end(self.rest);
            let item = &self.rest[..end];
            self.rest = self.rest.get(end + 1..).unwrap_or(&[]);
            let item = trim(item);
            if item.is_empty() {
                continue;
            }
            return Some(match item.iter().position(|&b| b == b'=') {
                Some(eq) => (trim(&item[..eq]), Some(trim(&item[eq + 1..]))),
                None => (item, None),
            });
        }
    }
}

/// Index of the `;` that ends the first parameter (or the length), skipping quoted strings.
fn param_end(s: &[u8]) -> usize {
    let mut i = 0;
    while let Some(at) = find2(s, i, b';', b'"') {
        i = at;
        if s[i] == b';' {
            return i;
        }
        i = end_of_quoted(s, i).unwrap_or(s.len());
    }
    s.len()
}

/// Bytes that may continue a parameter name (not `=`, `;`, whitespace, `"`, `,`).
const NAME: u8 = 1;
/// Bytes that may continue an unquoted parameter value (not `;`, whitespace, `"`).
const VALUE: u8 = 2;

static STOPS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if !matches!(b, b'=' | b';' | b' ' | b'\t' | b'\r' | b'\n' | b'"' | b',') {
            c |= NAME;
        }
        if !matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n' | b'"') {
            c |= VALUE;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// One pass over a parameter list (the bytes after the first `;`): checks its shape and calls
/// `f(name, value)` for each parameter. Shape: every parameter has a non-empty name without
/// whitespace, quotes or commas; a value is a closed quoted string or a run without
/// whitespace, quotes or `;`; whitespace may surround `;` and `=`; no empty or trailing `;`.
#[inline(always)]
pub(crate) fn scan<'a>(raw: &'a [u8], mut f: impl FnMut(&'a [u8], Option<&'a [u8]>)) -> bool {
    let n = raw.len();
    let mut i = skip_ws(raw, 0);
    loop {
        let start = i;
        i = skip_class(raw, i, &STOPS, NAME);
        if i == start {
            return false;
        }
        let name = &raw[start..i];
        i = skip_ws(raw, i);
        let mut value = None;
        if i < n && raw[i] == b'=' {
            i = skip_ws(raw, i + 1);
            if i < n && raw[i] == b'"' {
                let Some(end) = end_of_quoted(raw, i) else {
                    return false;
                };
                value = Some(&raw[i..end]);
                i = end;
            } else {
                let vstart = i;
                i = skip_class(raw, i, &STOPS, VALUE);
                value = Some(&raw[vstart..i]);
            }
            i = skip_ws(raw, i);
        }
        f(name, value);
        if i >= n {
            return true;
        }
        if raw[i] != b';' {
            return false;
        }
        i = skip_ws(raw, i + 1);
    }
}

/// True when the parameter list is well-formed (see [`scan`]).
pub(crate) fn well_formed(raw: &[u8]) -> bool {
    scan(raw, |_, _| {})
}

/// [`well_formed`] for URI parameters, which the URI scan has proven free of whitespace and
/// angle brackets. Without quotes or commas either (the usual `transport=udp`, `lr`), the
/// shape rule reduces to: every name is non-empty, i.e. the list and every `;` are followed
/// by a byte other than `;` and `=`; one search for `;` checks that. Otherwise, the full scan.
#[inline]
pub(crate) fn well_formed_uri(p: &[u8]) -> bool {
    let ok = well_formed_uri_fast(p);
    debug_assert_eq!(ok, well_formed(p), "{:?}", p.escape_ascii().to_string());
    ok
}

#[inline(always)]
fn well_formed_uri_fast(p: &[u8]) -> bool {
    let mut i = 0;
    loop {
        if matches!(p.get(i), None | Some(b';' | b'=')) {
            return false;
        }
        match find_special(p, i) {
            None => return true,
            Some(j) if p[j] == b';' => i = j + 1,
            Some(_) => return well_formed(p),
        }
    }
}

/// The first `;`, `"` or `,` at or after `from`, eight bytes a step: URI parameters are too
/// short for memchr's vector path, whose byte-by-byte fallback costs more. In each word the
/// lowest byte flagged by the "has zero byte" trick is a true match (false positives only
/// sit above a true one), so the lowest flag of the three searches is the answer.
#[inline(always)]
fn find_special(p: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zeros = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
    let mut i = from;
    while let Some(w) = p.get(i..i + 8) {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(w).expect("eight bytes"));
        let m = zeros(x ^ (ONES * u64::from(b';')))
            | zeros(x ^ (ONES * u64::from(b'"')))
            | zeros(x ^ (ONES * u64::from(b',')));
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let rest = p.get(i..)?;
    rest.iter()
        .position(|&b| matches!(b, b';' | b'"' | b','))
        .map(|k| i + k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterate_and_lookup() {
        let p = Params::new(br#"branch=z9hG4bK1 ; rport;received=1.2.3.4;x="a;b""#);
        let v: Vec<_> = p.iter().collect();
        assert_eq!(v.len(), 4);
        assert_eq!(p.value(b"BRANCH"), Some(&b"z9hG4bK1"[..]));
        assert_eq!(p.get(b"rport"), Some(None));
        assert_eq!(p.value(b"x"), Some(&br#""a;b""#[..]));
        assert_eq!(p.get(b"maddr"), None);
        assert!(well_formed(p.raw()));
        assert!(!well_formed(b"a=1;"));
        assert!(!well_formed(b"a b=1"));
        assert!(!well_formed(br#"x="open"#));
        for p in [
            &b"transport=udp"[..],
            b"lr",
            b"lr;x=1;y",
            b"",
            b";lr",
            b"=1",
            b"a;",
            b"a;;b",
            b"a;=b",
            b"a=;b",
            b"a==b",
            br#"x="a;b""#,
            br#"x="open"#,
            b"a,b=1",
            b"a=1,2",
            br#"a"b"#,
        ] {
            assert_eq!(well_formed_uri(p), well_formed(p), "{:?}", p);
        }
        for n in 0..24 {
            for at in 0..n {
                for b in [b';', b'"', b',', b':', b'+', b';' ^ 1, b'"' ^ 1] {
                    let mut s = vec![b'a'; n];
                    s[at] = b;
                    if at + 1 < n {
                        s[at + 1] = b';';
                    }
                    for from in 0..=n {
                        let want = s[from..]
                            .iter()
                            .position(|&c| matches!(c, b';' | b'"' | b','))
                            .map(|k| from + k);
                        assert_eq!(find_special(&s, from), want, "n={n} at={at} b={b}");
                    }
                }
            }
        }
    }
}
