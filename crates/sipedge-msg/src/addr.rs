//! name-addr / addr-spec values: From, To, Contact, Route, Record-Route, Path
//! (RFC 3261 §20.10, §20.20, §20.39, §25.1).

use crate::lex::{
    end_of_quoted, eq_token_ci, find_outside_quotes, is_token, is_token_str, is_ws, offset_in,
    parse_u32, trim, trim_start,
};
use crate::message::parse_delta_seconds;
use crate::params::{scan, Params};
use crate::uri::Uri;

/// Why an address could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrError;

/// `[display-name] <URI>;params` or `URI;params`. The display name and the parameters are
/// found again around the URI inside `raw` when asked, so that the value stays at 120 bytes
/// (copied inline, not by a `memcpy` call, when a `Result` is unwrapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) uri: Uri<'a>,
    pub(crate) tag: Option<&'a [u8]>,
    /// The first `expires` parameter's value (empty when it has none).
    pub(crate) expires: Option<&'a [u8]>,
}

impl<'a> NameAddr<'a> {
    /// Parses one address value.
    pub fn parse(raw: &'a [u8]) -> Result<NameAddr<'a>, AddrError> {
        Self::parse_trimmed(trim(raw))
    }

    /// [`NameAddr::parse`] of a value without surrounding whitespace (the header values
    /// and list items of [`crate::Message`] are trimmed already).
    pub(crate) fn parse_trimmed(raw: &'a [u8]) -> Result<NameAddr<'a>, AddrError> {
        // The name-addr forms leave the `<URI>...` part in `bracket`.
        // The display name is only checked here: [`NameAddr::display_name`] finds it again.
        let (_display_name, bracket) = if raw.first() == Some(&b'<') {
            (None, Some(raw)) // the common `<URI>;params`
        } else if raw.first() == Some(&b'"') {
            let end = end_of_quoted(raw, 0).ok_or(AddrError)?;
            (Some(&raw[..end]), Some(trim_start(&raw[end..])))
        } else if let Some(lt) = find_outside_quotes(raw, b'<').filter(|&lt| {
            // A '<' before any ';' starts a name-addr.
            !raw[..lt].contains(&b';')
        }) {
            let name = trim(&raw[..lt]);
            // display-name = *(token LWS): tokens separated by whitespace only.
            if !name.iter().all(|&b| is_token(b) || is_ws(b)) {
                return Err(AddrError);
            }
            ((!name.is_empty()).then_some(name), Some(&raw[lt..]))
        } else {
            (None, None)
        };
        let (uri, after) = match bracket {
            // `<URI>` then whatever follows the `>`; the URI scan finds the `>`, and no
            // whitespace may sit inside the brackets (RFC 4475 §3.1.2.14).
            Some(s) => {
                let inner = s.strip_prefix(b"<").ok_or(AddrError)?;
                let (uri, gt) = Uri::parse_bracketed(inner).map_err(|_| AddrError)?;
                (uri, &inner[gt + 1..])
            }
            None => {
                // addr-spec: the URI cannot contain ',', '?' or ';' here (RFC 3261 §20), so
                // the first ';' starts the header parameters.
                let end = raw.iter().position(|&b| b == b';').unwrap_or(raw.len());
                let uri = trim(&raw[..end]);
                if uri.contains(&b'?') || uri.contains(&b',') {
                    return Err(AddrError);
                }
                (Uri::parse(uri).map_err(|_| AddrError)?, &raw[end..])
            }
        };
        let mut tag = None;
        let mut expires = None;
        // `after` runs to the end of `raw`, which is trimmed.
        match trim_start(after) {
            [] => {}
            [b';', p @ ..] => {
                // tag-param = "tag" EQUAL token (RFC 3261 §25.1), at most once: a bare or
                // repeated tag would make dialog matching ambiguous (found by fuzzing).
                let mut tag_ok = true;
                let shaped = scan(p, |name, value| match name.len() {
                    3 if eq_token_ci(b"tag", name) => {
                        tag_ok &= tag.is_none() && value.is_some_and(is_token_str);
                        tag = value;
                    }
                    // Kept for Contact::expires, which every REGISTER reads.
                    7 if expires.is_none() && eq_token_ci(b"expires", name) => {
                        expires = Some(value.unwrap_or_default());
                    }
                    _ => {}
                });
                if !(shaped && tag_ok) {
                    return Err(AddrError);
                }
            }
            _ => return Err(AddrError),
        }
        Ok(NameAddr {
            raw,
            uri,
            tag,
            expires,
        })
    }

    /// The value as written.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
    /// The display name as written: quoted (with quotes and escapes) or a run of tokens.
    pub fn display_name(&self) -> Option<&'a [u8]> {
        // In the name-addr forms a '<' directly precedes the URI; the display name is what
        // comes before it (quoted or tokens), trimmed. An addr-spec starts with its URI.
        let start = offset_in(self.raw, self.uri.raw()) as usize;
        if start == 0 || self.raw.get(start - 1) != Some(&b'<') {
            return None;
        }
        let name = trim(&self.raw[..start - 1]);
        (!name.is_empty()).then_some(name)
    }
    /// The URI.
    pub fn uri(&self) -> &Uri<'a> {
        &self.uri
    }
    /// Header parameters (after `>` or after an addr-spec).
    pub fn params(&self) -> Params<'a> {
        // After the URI: its '>' in the name-addr forms, then `;params`.
        let end = offset_in(self.raw, self.uri.raw()) as usize + self.uri.raw().len();
        let after = self.raw.get(end..).unwrap_or_default();
        let after = after.strip_prefix(b">").unwrap_or(after);
        match trim_start(after) {
            [b';', p @ ..] => Params::new(p),
            _ => Params::default(),
        }
    }
    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.tag
    }
}

/// One Contact value (RFC 3261 §20.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Boxing the address would allocate per Contact; `*` is rare and the enum lives on the stack.
#[allow(clippy::large_enum_variant)]
pub enum Contact<'a> {
    /// `Contact: *` — only with `Expires: 0` in a REGISTER (RFC 3261 §10.2.2).
    Star,
    /// A contact address with its parameters.
    Addr(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// Parses one Contact value.
    pub fn parse(raw: &'a [u8]) -> Result<Contact<'a>, AddrError> {
        Self::parse_trimmed(trim(raw))
    }

    /// [`Contact::parse`] of a value without surrounding whitespace.
    pub(crate) fn parse_trimmed(raw: &'a [u8]) -> Result<Contact<'a>, AddrError> {
        if raw == b"*" {
            return Ok(Contact::Star);
        }
        NameAddr::parse_trimmed(raw).map(Contact::Addr)
    }

    /// The address, unless this is `*`.
    pub fn addr(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Star => None,
            Contact::Addr(a) => Some(a),
        }
    }

    fn params(&self) -> Params<'a> {
        self.addr().map(NameAddr::params).unwrap_or_default()
    }

    /// `expires` (RFC 3261 §20.10); `Some(Err(()))` when present but malformed.
    pub fn expires(&self) -> Option<Result<u32, AddrError>> {
        self.addr()?
            .expires
            .map(|v| parse_delta_seconds(v).ok_or(AddrError))
    }

    /// `q` in thousandths (0–1000) (RFC 3261 §20.10 `qvalue`).
    pub fn q(&self) -> Option<Result<u16, AddrError>> {
        self.params()
            .get(b"q")
            .map(|v| v.and_then(parse_qvalue).ok_or(AddrError))
    }

    /// `+sip.instance` without its quotes, e.g. `<urn:uuid:...>` (RFC 5626 §4.1).
    pub fn instance(&self) -> Option<&'a [u8]> {
        self.params().value(b"+sip.instance").map(|v| {
            v.strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v)
        })
    }

    /// `reg-id` (RFC 5626 §4.2).
    pub fn reg_id(&self) -> Option<u32> {
        self.params().value(b"reg-id").and_then(parse_u32)
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` in thousandths.
fn parse_qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let a =
            NameAddr::parse(br#""Doe, \"J\"" <sip:j@example.com;transport=tcp>;tag=abc"#).unwrap();
        assert_eq!(a.display_name(), Some(&br#""Doe, \"J\"""#[..]));
        assert_eq!(a.uri().raw(), b"sip:j@example.com;transport=tcp");
        assert_eq!(a.tag(), Some(&b"abc"[..]));

        let a = NameAddr::parse(b"Anonymous Caller <sip:c@example.com>").unwrap();
        assert_eq!(a.display_name(), Some(&b"Anonymous Caller"[..]));

        let a = NameAddr::parse(b"sip:j@example.com;tag=x1").unwrap();
        assert_eq!(a.uri().raw(), b"sip:j@example.com");
        assert_eq!(a.tag(), Some(&b"x1"[..]));

        let a = NameAddr::parse(b"<sip:j@example.com>").unwrap();
        assert_eq!(a.display_name(), None);
        assert!(a.params().is_empty());

        // Display name and parameters are found again around the URI.
        let a = NameAddr::parse(b"\"A <b>\" \t<sip:a@b;lr> ; tag=1;x").unwrap();
        assert_eq!(a.display_name(), Some(&b"\"A <b>\""[..]));
        assert_eq!(a.params().raw(), b" tag=1;x");
        assert_eq!(a.params().get(b"x"), Some(None));
        let a = NameAddr::parse(b"sip:a@b ;tag=2").unwrap();
        assert_eq!((a.display_name(), a.params().raw()), (None, &b"tag=2"[..]));
        let a = NameAddr::parse(b"sips:a:pw@[2001:db8::1]:5061?h=1").unwrap_err();
        assert_eq!(a, AddrError);
    }

    #[test]
    fn rejects() {
        for bad in [
            &br#""unterminated <sip:a@b>"#[..],
            b"Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            b"\"Watson\" < sip:t.watson@example.org >",
            b"sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            b"<sip:a@b",
            b"<sip:a@b> junk",
            b"<sip:a@b>;tag",
            b"<sip:a@b>;tag=",
            b"<sip:a@b>;tag=1;tag=2",
        ] {
            assert!(
                NameAddr::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn contact_params() {
        let c = Contact::parse(
            br#"<sip:u@10.0.0.1:5060>;expires=3600;q=0.7;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1"#,
        )
        .unwrap();
        assert_eq!(c.expires(), Some(Ok(3600)));
        assert_eq!(c.q(), Some(Ok(700)));
        assert_eq!(
            c.instance(),
            Some(&b"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"[..])
        );
        assert_eq!(c.reg_id(), Some(1));
        assert_eq!(Contact::parse(b" * ").unwrap(), Contact::Star);
        let c = Contact::parse(b"<sip:u@h>;expires=abc;q=1.5").unwrap();
        assert_eq!(c.expires(), Some(Err(AddrError)));
        assert_eq!(c.q(), Some(Err(AddrError)));
        assert_eq!(parse_qvalue(b"1.000"), Some(1000));
        assert_eq!(parse_qvalue(b"0"), Some(0));
        assert_eq!(parse_qvalue(b"0.05"), Some(50));
    }
}
