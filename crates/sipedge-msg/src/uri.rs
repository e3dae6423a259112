//! SIP, SIPS and TEL URIs (RFC 3261 §19.1, §25.1; RFC 3966), parsed in place.
//! Other schemes are carried opaquely: a proxy must be able to forward them.

use crate::lex::{
    eq_token_ci, eq_unescaped, eq_unescaped_ignore_case, find_byte, offset_in, parse_port,
    skip_class,
};
use crate::params::{well_formed_uri, Params};

/// A URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme<'a> {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other scheme (e.g. `urn`, `http`, `im`), carried as written.
    Other(&'a [u8]),
}

/// Why a URI could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UriError;

/// The scheme as kept in a [`Uri`]: `Other`'s name is the bytes before the first ':'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchemeTag {
    Sip,
    Sips,
    Tel,
    Other,
}

/// A parsed URI borrowing the message bytes. It keeps the parts that SIP processing reads
/// (user, host, port, parameters) and finds the rare ones (an `Other` scheme's name, the
/// password, the `?headers`) again from `raw` when asked: 72 bytes, small enough to be
/// copied without a `memcpy` call inside a [`crate::NameAddr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    pub(crate) raw: &'a [u8],
    pub(crate) user: Option<&'a [u8]>,
    pub(crate) host: &'a [u8],
    pub(crate) params: Params<'a>,
    pub(crate) port: Option<u16>,
    pub(crate) scheme: SchemeTag,
}

impl<'a> Uri<'a> {
    /// Parses a URI. SIP/SIPS are parsed fully, TEL into its number and parameters, any other
    /// scheme only checked for `scheme ":" 1*non-whitespace`.
    pub fn parse(raw: &'a [u8]) -> Result<Uri<'a>, UriError> {
        Self::parse_in(raw, false).map(|(uri, _)| uri)
    }

    /// Parses the URI at the start of `s`, which a `>` ends (the part after a name-addr's
    /// `<`), and returns it with the offset of that `>`: the URI scan finds the bracket,
    /// so no separate search is needed. Same result as [`Uri::parse`] on the bytes before
    /// the first `>`.
    pub(crate) fn parse_bracketed(s: &'a [u8]) -> Result<(Uri<'a>, usize), UriError> {
        Self::parse_in(s, true)
    }

    #[inline(always)]
    fn parse_in(raw: &'a [u8], bracketed: bool) -> Result<(Uri<'a>, usize), UriError> {
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":" (RFC 3261 §25.1).
        let mut i = 0;
        let sip = raw.len() > 4 && eq_token_ci(b"sip:", &raw[..4]);
        if sip {
            i = 3; // `sip:`, by far the most common
        }
        while i < raw.len() && class(raw[i]) & SCHEME != 0 {
            i += 1;
        }
        if i == 0 || !raw[0].is_ascii_alphabetic() || raw.get(i) != Some(&b':') {
            return Err(UriError);
        }
        let scheme_bytes = &raw[..i];
        let rest_at = i + 1;
        let rest = &raw[rest_at..];
        // One pass over the rest: no whitespace or angle brackets anywhere (RFC 4475
        // §3.1.2.8, §3.1.2.14), and where the first '@', the ':' before it and the first '?'
        // after it are; when bracketed, the first '>' ends the URI.
        // The host's bytes are skipped as a HOST run (a subset of ORDINARY) where the host
        // may start: at 0, and again after the first '@'; parse_sip reuses the run's end.
        let mut marks = Marks {
            host_end: skip_class(rest, 0, &CLASSES, HOST),
            ..Marks::default()
        };
        let mut i = marks.host_end;
        let mut end = rest.len();
        while i < rest.len() {
            // Skip runs of ordinary bytes four at a time.
            // A HOST run usually stops right at a delimiter (`@`, `:`, `>`): no run to skip.
            let pos = if class(rest[i]) & ORDINARY == 0 {
                i
            } else {
                let next = skip_class(rest, i, &CLASSES, ORDINARY);
                if next >= rest.len() {
                    break;
                }
                next
            };
            i = pos + 1;
            match rest[pos] {
                b'@' if marks.at.is_none() => {
                    marks.at = Some(pos);
                    marks.query = None;
                    marks.host_end = skip_class(rest, pos + 1, &CLASSES, HOST);
                    i = marks.host_end;
                }
                b':' if marks.at.is_none() && marks.colon.is_none() => marks.colon = Some(pos),
                b'?' if marks.query.is_none() => marks.query = Some(pos),
                b'@' | b':' | b'?' => {}
                b'>' if bracketed => {
                    end = pos;
                    break;
                }
                _ => return Err(UriError),
            }
        }
        if bracketed && end == rest.len() {
            return Err(UriError); // no '>'
        }
        let (raw, rest) = (&raw[..rest_at + end], &rest[..end]);
        if rest.is_empty() {
            return Err(UriError);
        }
        let scheme = match scheme_bytes.len() {
            _ if sip => SchemeTag::Sip,
            3 if eq_token_ci(b"sip", scheme_bytes) => SchemeTag::Sip,
            4 if eq_token_ci(b"sips", scheme_bytes) => SchemeTag::Sips,
            3 if eq_token_ci(b"tel", scheme_bytes) => SchemeTag::Tel,
            _ => SchemeTag::Other,
        };
        let mut uri = Uri {
            raw,
            user: None,
            host: &[],
            params: Params::default(),
            port: None,
            scheme,
        };
        match scheme {
            SchemeTag::Sip | SchemeTag::Sips => parse_sip(rest, marks, &mut uri)?,
            SchemeTag::Tel => {
                let (number, params) = split_at_byte(rest, b';');
                if number.is_empty() || params.is_some_and(|p| !well_formed_uri(p)) {
                    return Err(UriError);
                }
                uri.user = Some(number);
                uri.params = Params::new(params.unwrap_or(&[]));
            }
            SchemeTag::Other => {}
        }
        Ok((uri, rest_at + end))
    }

    /// The URI exactly as written.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }
    /// The scheme.
    pub fn scheme(&self) -> Scheme<'a> {
        match self.scheme {
            SchemeTag::Sip => Scheme::Sip,
            SchemeTag::Sips => Scheme::Sips,
            SchemeTag::Tel => Scheme::Tel,
            // The scheme's bytes never hold a ':'.
            SchemeTag::Other => Scheme::Other(split_at_byte(self.raw, b':').0),
        }
    }
    /// The user part, still `%HH`-escaped (the number for a TEL URI).
    pub fn user(&self) -> Option<&'a [u8]> {
        self.user
    }
    /// The password part of `user:password@`, if any (RFC 3261 §19.1.1 — NOT RECOMMENDED).
    pub fn password(&self) -> Option<&'a [u8]> {
        // `user ":" password "@"`: the user ends at the first ':' before the first '@'.
        let user = self.user.filter(|_| self.is_sip())?;
        let after = self
            .raw
            .get(offset_in(self.raw, user) as usize + user.len()..)?;
        let password = after.strip_prefix(b":")?;
        let (password, at) = split_at_byte(password, b'@');
        at.map(|_| password)
    }
    /// The host as written: a name, an IPv4 address, or an IPv6 reference with brackets.
    pub fn host(&self) -> &'a [u8] {
        self.host
    }
    /// The host without the IPv6 reference brackets.
    pub fn host_unbracketed(&self) -> &'a [u8] {
        strip_brackets(self.host)
    }
    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// URI parameters (`;transport=tcp;lr`).
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The `?headers` part without its `?`, still escaped.
    pub fn headers(&self) -> Option<&'a [u8]> {
        if !self.is_sip() {
            return None;
        }
        // The first '?' after the userinfo (the host holds none).
        let q = find_byte(self.raw, offset_in(self.raw, self.host) as usize, b'?')?;
        Some(&self.raw[q + 1..])
    }
    /// True for `sip:`/`sips:` URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, SchemeTag::Sip | SchemeTag::Sips)
    }
    /// The `transport` URI parameter.
    pub fn transport(&self) -> Option<&'a [u8]> {
        self.params.value(b"transport")
    }
    /// The `maddr` URI parameter.
    pub fn maddr(&self) -> Option<&'a [u8]> {
        self.params.value(b"maddr")
    }
    /// True when the URI carries `;lr` (RFC 3261 §16.4 loose routing).
    pub fn is_loose_route(&self) -> bool {
        self.params.has(b"lr")
    }

    /// Compares the user parts after unescaping (RFC 3261 §19.1.4), case-sensitively or not.
    pub fn user_eq(&self, other: &[u8], case_sensitive: bool) -> bool {
        let mine = self.user.unwrap_or(&[]);
        if case_sensitive {
            eq_unescaped(mine, other)
        } else {
            eq_unescaped_ignore_case(mine, other)
        }
    }
}

fn split_at_byte(s: &[u8], b: u8) -> (&[u8], Option<&[u8]>) {
    match find_byte(s, 0, b) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

pub(crate) fn strip_brackets(host: &[u8]) -> &[u8] {
    match host {
        [b'[', inner @ .., b']'] => inner,
        _ => host,
    }
}

/// Positions found by the scan in [`Uri::parse`], relative to the part after the scheme.
#[derive(Debug, Default, Clone, Copy)]
struct Marks {
    /// The first '@' (ends the userinfo).
    at: Option<usize>,
    /// The first ':' before that '@' (user ":" password).
    colon: Option<usize>,
    /// The first '?' after the userinfo (starts the headers).
    query: Option<usize>,
    /// End of the run of HOST bytes where the host starts (see [`split_host`]).
    host_end: usize,
}

/// `[ userinfo "@" ] hostport uri-parameters [ headers ]` (RFC 3261 §25.1).
///
/// No unescaped '@' may appear in the user, the password, the host, the parameters or the
/// headers, so the first one ends the userinfo; the user part itself may hold ';', '?', '/'
/// and more (`user-unreserved`).
#[inline(always)]
fn parse_sip<'a>(rest: &'a [u8], marks: Marks, uri: &mut Uri<'a>) -> Result<(), UriError> {
    let host_start = match marks.at {
        Some(at) => {
            let user_end = marks.colon.unwrap_or(at);
            if user_end == 0 {
                return Err(UriError);
            }
            uri.user = Some(&rest[..user_end]);
            at + 1
        }
        None => 0,
    };
    let hostport = match marks.query {
        Some(q) => &rest[host_start..q],
        None => &rest[host_start..],
    };
    let (host, mut after) = if hostport.first() == Some(&b'[') {
        split_host(hostport)?
    } else {
        // split_host's scan, already done: the run cannot cross the '?' of the headers.
        let len = marks.host_end - host_start;
        if len == 0 {
            return Err(UriError);
        }
        hostport.split_at(len)
    };
    uri.host = host;
    if let [b':', tail @ ..] = after {
        // The digits, then `;` or the end (checked below).
        let (port, end) = parse_port(tail).ok_or(UriError)?;
        uri.port = Some(port);
        after = &tail[end..];
    }
    match after {
        [] => {}
        [b';', p @ ..] if well_formed_uri(p) => uri.params = Params::new(p),
        _ => return Err(UriError),
    }
    Ok(())
}

/// Splits `host [":" port] ...` returning the host and what follows it.
#[inline(always)]
pub(crate) fn split_host(s: &[u8]) -> Result<(&[u8], &[u8]), UriError> {
    if s.first() == Some(&b'[') {
        let close = find_byte(s, 0, b']').ok_or(UriError)?;
        let inner = &s[1..close];
        if inner.is_empty()
            || !inner.contains(&b':')
            || !inner.iter().all(|&b| class(b) & IPV6 != 0)
        {
            return Err(UriError);
        }
        return Ok((&s[..=close], &s[close + 1..]));
    }
    let end = skip_class(s, 0, &CLASSES, HOST);
    if end == 0 {
        return Err(UriError);
    }
    Ok((&s[..end], &s[end..]))
}

/// Byte classes for URI scanning, one table lookup per byte.
const SCHEME: u8 = 1;
const HOST: u8 = 2;
const IPV6: u8 = 4;
const FORBIDDEN: u8 = 8;
/// Forbidden bytes plus the delimiters the scan records.
const SPECIAL: u8 = 16;
/// Neither forbidden nor a recorded delimiter.
const ORDINARY: u8 = 32;

static CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let mut c = 0;
        if b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.') {
            c |= SCHEME;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
            c |= HOST;
        }
        if b.is_ascii_hexdigit() || matches!(b, b':' | b'.') {
            c |= IPV6;
        }
        if matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'<' | b'>') {
            c |= FORBIDDEN | SPECIAL;
        }
        if matches!(b, b'@' | b':' | b'?') {
            c |= SPECIAL;
        }
        if c & SPECIAL == 0 {
            c |= ORDINARY;
        }
        t[i] = c;
        i += 1;
    }
    t
};

#[inline(always)]
fn class(b: u8) -> u8 {
    CLASSES[b as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_sip_uri() {
        let u = Uri::parse(b"sips:alice:secret@[2001:db8::10]:5061;transport=tls;lr?subject=hi")
            .unwrap();
        assert_eq!(u.scheme(), Scheme::Sips);
        assert_eq!(u.user(), Some(&b"alice"[..]));
        assert_eq!(u.password(), Some(&b"secret"[..]));
        assert_eq!(u.host(), b"[2001:db8::10]");
        assert_eq!(u.host_unbracketed(), b"2001:db8::10");
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.transport(), Some(&b"tls"[..]));
        assert!(u.is_loose_route());
        assert_eq!(u.headers(), Some(&b"subject=hi"[..]));
    }

    #[test]
    fn user_with_semicolon_and_escapes() {
        let u = Uri::parse(b"sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user(), Some(&b"user;par=u%40example.net"[..]));
        assert_eq!(u.host(), b"example.com");
        let u = Uri::parse(b"sip:sips%3Auser%40example.com@example.net").unwrap();
        assert!(u.user_eq(b"sips:user@example.com", true));
    }

    #[test]
    fn tel_and_other_schemes() {
        let u = Uri::parse(b"tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(u.scheme(), Scheme::Tel);
        assert_eq!(u.user(), Some(&b"+1-201-555-0123"[..]));
        assert_eq!(
            u.params().value(b"phone-context"),
            Some(&b"example.com"[..])
        );
        let u = Uri::parse(b"kingdom:animal:chordate:mammal:carnivora").unwrap();
        assert_eq!(u.scheme(), Scheme::Other(b"kingdom"));
    }

    #[test]
    fn bracketed_equals_parse_of_the_part_before_the_bracket() {
        for s in [
            &b"sip:alice@example.com>;tag=1"[..],
            b"sips:a:b@[2001:db8::1]:5061;lr?x=y>",
            b"tel:+1-201;phone-context=x>",
            b"urn:uuid:f81d4fae>x",
            b"sip:a@b",
            b"sip:>",
            b">",
            b"sip:a b>",
            b"sip:a@b;x>y>",
            b"sip:host:5060>",
        ] {
            let gt = s.iter().position(|&b| b == b'>');
            let want = gt.and_then(|gt| Uri::parse(&s[..gt]).ok().map(|u| (u, gt)));
            assert_eq!(
                Uri::parse_bracketed(s).ok(),
                want,
                "{:?}",
                String::from_utf8_lossy(s)
            );
        }
    }

    #[test]
    fn rejects() {
        for bad in [
            &b"sip:"[..],
            b"sip:user@",
            b"sip:[2001:db8::10",
            b"sip:host:99999",
            b"sip:host:port",
            b"sip:exa mple.com",
            b"nocolon",
            b"1sip:x",
            b"sip:@host",
            b"sip:host;",
        ] {
            assert!(
                Uri::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
