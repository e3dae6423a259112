//! Comma-separated header values (RFC 3261 §7.3.1): split at commas outside quoted strings
//! and `<...>`, lazily.

use crate::lex::{find_byte, find_unquoted, trim};

/// Iterator over the trimmed, non-empty items of one header value.
#[derive(Debug, Clone)]
pub struct Items<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Items<'a> {
    /// Splits `value`.
    pub fn new(value: &'a [u8]) -> Self {
        Self { rest: Some(value) }
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        if find_byte(rest, 0, b',').is_none() {
            // The common case, one item: no scan for quotes or brackets needed.
            self.rest = None;
            let item = trim(rest);
            return (!item.is_empty()).then_some(item);
        }
        self.split()
    }
}

impl<'a> Items<'a> {
    /// [`Iterator::next`] when a comma is left: out of line, so that the one-item case
    /// stays a small function.
    #[inline(never)]
    fn split(&mut self) -> Option<&'a [u8]> {
        loop {
            let rest = self.rest?;
            if find_byte(rest, 0, b',').is_none() {
                self.rest = None;
                let item = trim(rest);
                return (!item.is_empty()).then_some(item);
            }
            let item = match find_unquoted(rest, b',') {
                Some(i) => {
                    self.rest = Some(&rest[i + 1..]);
                    &rest[..i]
                }
                None => {
                    self.rest = None;
                    rest
                }
            };
            let item = trim(item);
            if !item.is_empty() {
                return Some(item);
            }
        }
    }
}

/// The tokens of a simple comma list such as Supported or Allow.
pub fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_angles() {
        let v: Vec<_> =
            Items::new(br#""Doe, John" <sip:a@b;x=1,2>;q=0.5 , <sip:c@d>,, "#).collect();
        assert_eq!(
            v,
            vec![&br#""Doe, John" <sip:a@b;x=1,2>;q=0.5"#[..], b"<sip:c@d>"]
        );
        let t: Vec<_> = tokens(b"path, outbound ,gruu").collect();
        assert_eq!(t, vec![&b"path"[..], b"outbound", b"gruu"]);
    }
}
