//! Small typed header values: CSeq, Content-Type, Event, and quoted strings.

use crate::lex::{end_of_quoted, is_token_str, parse_u64, trim};
use crate::method::Method;
use crate::params::{well_formed, Params};

/// A malformed field value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError;

/// CSeq: sequence number and method (RFC 3261 §20.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number, below 2³¹ (RFC 3261 §8.1.1.5).
    pub seq: u32,
    /// The method.
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(v: &'a [u8]) -> Result<CSeq<'a>, FieldError> {
        let v = trim(v);
        let split = v
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .ok_or(FieldError)?;
        let seq = parse_u64(&v[..split])
            .filter(|&n| n < (1 << 31))
            .ok_or(FieldError)?;
        let method = Method::from_bytes(trim(&v[split..])).ok_or(FieldError)?;
        Ok(CSeq {
            seq: seq as u32,
            method,
        })
    }
}

/// A quoted-string's contents (quotes removed, `\` escapes still in place) or a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedStr<'a> {
    inner: &'a [u8],
}

impl<'a> QuotedStr<'a> {
    /// Wraps a value that is either `"quoted"` or a bare token.
    pub fn from_value(v: &'a [u8]) -> Result<QuotedStr<'a>, FieldError> {
        let v = trim(v);
        if v.first() == Some(&b'"') {
            if end_of_quoted(v, 0) != Some(v.len()) {
                return Err(FieldError);
            }
            Ok(QuotedStr {
                inner: &v[1..v.len() - 1],
            })
        } else {
            Ok(QuotedStr { inner: v })
        }
    }
    /// Wraps the contents between the quotes (or a bare token).
    pub(crate) fn from_inner(inner: &'a [u8]) -> QuotedStr<'a> {
        QuotedStr { inner }
    }
    /// The contents with escapes still in place.
    pub fn raw(&self) -> &'a [u8] {
        self.inner
    }
    /// The contents with `quoted-pair` escapes resolved (RFC 3261 §25.1).
    pub fn unescaped(&self) -> impl Iterator<Item = u8> + 'a {
        let mut i = 0;
        let s = self.inner;
        core::iter::from_fn(move || {
            let mut b = *s.get(i)?;
            if b == b'\\' && i + 1 < s.len() {
                i += 1;
                b = s[i];
            }
            i += 1;
            Some(b)
        })
    }
    /// True when the unescaped contents equal `other`.
    pub fn eq_bytes(&self, other: &[u8]) -> bool {
        if !self.inner.contains(&b'\\') {
            return self.inner == other;
        }
        self.unescaped().eq(other.iter().copied())
    }
    /// Appends the unescaped contents to `out`.
    pub fn write_unescaped(&self, out: &mut Vec<u8>) {
        out.extend(self.unescaped());
    }
}

/// Content-Type: `type "/" subtype *(;param)` (RFC 3261 §20.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentType<'a> {
    /// e.g. `application`.
    pub media_type: &'a [u8],
    /// e.g. `sdp`.
    pub subtype: &'a [u8],
    /// Parameters, e.g. `boundary=...`.
    pub params: Params<'a>,
}

impl<'a> ContentType<'a> {
    /// Parses a media type.
    pub fn parse(v: &'a [u8]) -> Result<ContentType<'a>, FieldError> {
        let v = trim(v);
        let (mt, params) = match v.iter().position(|&b| b == b';') {
            Some(i) => (&v[..i], Some(&v[i + 1..])),
            None => (v, None),
        };
        let slash = mt.iter().position(|&b| b == b'/').ok_or(FieldError)?;
        let (t, s) = (trim(&mt[..slash]), trim(&mt[slash + 1..]));
        if !is_token_str(t) || !is_token_str(s) || params.is_some_and(|p| !well_formed(p)) {
            return Err(FieldError);
        }
        Ok(ContentType {
            media_type: t,
            subtype: s,
            params: Params::new(params.unwrap_or_default()),
        })
    }
    /// True for `type/subtype`, case-insensitively.
    pub fn is(&self, media_type: &[u8], subtype: &[u8]) -> bool {
        self.media_type.eq_ignore_ascii_case(media_type)
            && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// Event: `event-type *(;param)` (RFC 6665 §8.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The event package, e.g. `reg` or `presence`.
    pub package: &'a [u8],
    /// Parameters, e.g. `id=...`.
    pub params: Params<'a>,
}

impl<'a> Event<'a> {
    /// Parses an Event value.
    pub fn parse(v: &'a [u8]) -> Result<Event<'a>, FieldError> {
        let v = trim(v);
        let (pkg, params) = match v.iter().position(|&b| b == b';') {
            Some(i) => (trim(&v[..i]), Some(&v[i + 1..])),
            None => (v, None),
        };
        if !is_token_str(pkg) || params.is_some_and(|p| !well_formed(p)) {
            return Err(FieldError);
        }
        Ok(Event {
            package: pkg,
            params: Params::new(params.unwrap_or_default()),
        })
    }
    /// The `id` parameter.
    pub fn id(&self) -> Option<&'a [u8]> {
        self.params.value(b"id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq() {
        let c = CSeq::parse(b"4711 REGISTER").unwrap();
        assert_eq!((c.seq, c.method), (4711, Method::Register));
        assert!(CSeq::parse(b"36893488147419103232 INVITE").is_err());
        assert!(CSeq::parse(b"2147483648 INVITE").is_err());
        assert!(CSeq::parse(b"1").is_err());
        assert!(CSeq::parse(b"x INVITE").is_err());
    }

    #[test]
    fn quoted() {
        let q = QuotedStr::from_value(br#""a\"b\\c""#).unwrap();
        assert!(q.eq_bytes(br#"a"b\c"#));
        assert!(QuotedStr::from_value(br#""open"#).is_err());
        assert!(QuotedStr::from_value(b"token").unwrap().eq_bytes(b"token"));
    }

    #[test]
    fn content_type_and_event() {
        let c = ContentType::parse(b"multipart/mixed;boundary=7a9cbec02ceef655").unwrap();
        assert!(c.is(b"MULTIPART", b"mixed"));
        assert_eq!(c.params.value(b"boundary"), Some(&b"7a9cbec02ceef655"[..]));
        let e = Event::parse(b"reg;id=42").unwrap();
        assert_eq!((e.package, e.id()), (&b"reg"[..], Some(&b"42"[..])));
    }
}
