//! `;name[=value]` parameter lists (RFC 3261 §25.1 `generic-param`, `uri-parameters`).

use crate::lex::{end_of_quoted, is_ws, trim};

/// A borrowed parameter list, starting just after its first `;` (or empty). Iterating yields
/// `(name, value)` with whitespace trimmed; a quoted value keeps its quotes (see
/// [`crate::QuotedStr`] to unescape it). Lookups are case-insensitive on the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a> {
    raw: &'a [u8],
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
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
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
    while i < s.len() {
        match s[i] {
            b';' => return i,
            b'"' => i = end_of_quoted(s, i).unwrap_or(s.len()),
            _ => i += 1,
        }
    }
    s.len()
}

/// Checks a parameter list's shape: every parameter has a non-empty token name, no stray
/// whitespace inside names, quoted values closed.
pub(crate) fn well_formed(raw: &[u8]) -> bool {
    if trim(raw).is_empty() {
        // A ";" with nothing after it.
        return false;
    }
    let mut rest = raw;
    while !rest.is_empty() {
        let end = param_end(rest);
        let item = trim(&rest[..end]);
        let name = match item.iter().position(|&b| b == b'=') {
            Some(eq) => {
                let v = trim(&item[eq + 1..]);
                if v.first() == Some(&b'"') && end_of_quoted(v, 0) != Some(v.len()) {
                    return false;
                }
                if v.first() != Some(&b'"') && v.iter().any(|&b| is_ws(b) || b == b'"') {
                    return false;
                }
                trim(&item[..eq])
            }
            None => item,
        };
        if name.is_empty() || name.iter().any(|&b| is_ws(b) || b == b'"' || b == b',') {
            return false;
        }
        if end >= rest.len() {
            break;
        }
        rest = &rest[end + 1..];
        if trim(rest).is_empty() {
            // A trailing ";" with nothing after it.
            return false;
        }
    }
    true
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
    }
}
