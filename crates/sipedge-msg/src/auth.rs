//! Authorization / Proxy-Authorization credentials (RFC 3261 §25.1 `credentials`,
//! RFC 7616 digest parameters).

use crate::fields::QuotedStr;
use crate::lex::{find_unquoted, is_token_str, trim};

/// Malformed credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthError;

/// Parsed credentials: the scheme and, for Digest, its parameters. Unknown parameters are
/// ignored (RFC 7616 §3.4: "unrecognized parameters MUST be ignored").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Credentials<'a> {
    /// e.g. `Digest`.
    pub scheme: &'a [u8],
    /// `username`.
    pub username: Option<QuotedStr<'a>>,
    /// `realm`.
    pub realm: Option<QuotedStr<'a>>,
    /// `nonce`.
    pub nonce: Option<QuotedStr<'a>>,
    /// `uri` (digest-uri).
    pub uri: Option<QuotedStr<'a>>,
    /// `response` (hex digest).
    pub response: Option<QuotedStr<'a>>,
    /// `algorithm` (MD5, SHA-256, …-sess).
    pub algorithm: Option<QuotedStr<'a>>,
    /// `cnonce`.
    pub cnonce: Option<QuotedStr<'a>>,
    /// `opaque`.
    pub opaque: Option<QuotedStr<'a>>,
    /// `qop` (`auth`, `auth-int`).
    pub qop: Option<QuotedStr<'a>>,
    /// `nc` (nonce-count, 8 hex digits).
    pub nc: Option<&'a [u8]>,
}

impl<'a> Credentials<'a> {
    /// Parses `scheme LWS auth-param *(COMMA auth-param)`.
    pub fn parse(v: &'a [u8]) -> Result<Credentials<'a>, AuthError> {
        let v = trim(v);
        let split = v
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(v.len());
        let scheme = &v[..split];
        if !is_token_str(scheme) {
            return Err(AuthError);
        }
        let mut c = Credentials {
            scheme,
            ..Credentials::default()
        };
        let mut rest = trim(&v[split..]);
        while !rest.is_empty() {
            let end = find_unquoted(rest, b',').unwrap_or(rest.len());
            let item = trim(&rest[..end]);
            rest = rest.get(end + 1..).map(trim).unwrap_or(&[]);
            if item.is_empty() {
                continue;
            }
            let eq = item.iter().position(|&b| b == b'=').ok_or(AuthError)?;
            let name = trim(&item[..eq]);
            let value = trim(&item[eq + 1..]);
            if !is_token_str(name) || value.is_empty() {
                return Err(AuthError);
            }
            let q = QuotedStr::from_value(value).map_err(|_| AuthError)?;
            if name.eq_ignore_ascii_case(b"nc") {
                c.nc = Some(q.raw());
                continue;
            }
            let slot = match () {
                _ if name.eq_ignore_ascii_case(b"username") => &mut c.username,
                _ if name.eq_ignore_ascii_case(b"realm") => &mut c.realm,
                _ if name.eq_ignore_ascii_case(b"nonce") => &mut c.nonce,
                _ if name.eq_ignore_ascii_case(b"uri") => &mut c.uri,
                _ if name.eq_ignore_ascii_case(b"response") => &mut c.response,
                _ if name.eq_ignore_ascii_case(b"algorithm") => &mut c.algorithm,
                _ if name.eq_ignore_ascii_case(b"cnonce") => &mut c.cnonce,
                _ if name.eq_ignore_ascii_case(b"opaque") => &mut c.opaque,
                _ if name.eq_ignore_ascii_case(b"qop") => &mut c.qop,
                _ => continue,
            };
            *slot = Some(q);
        }
        Ok(c)
    }

    /// True for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case(b"Digest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest() {
        let c = Credentials::parse(
            br#"Digest username="bob", realm="biloxi.com",nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41", algorithm=SHA-256"#,
        )
        .unwrap();
        assert!(c.is_digest());
        assert!(c.username.unwrap().eq_bytes(b"bob"));
        assert!(c.realm.unwrap().eq_bytes(b"biloxi.com"));
        assert_eq!(c.nc, Some(&b"00000001"[..]));
        assert!(c.qop.unwrap().eq_bytes(b"auth"));
        assert!(c.algorithm.unwrap().eq_bytes(b"SHA-256"));
        assert!(c
            .response
            .unwrap()
            .eq_bytes(b"6629fae49393a05397450978507c4ef1"));

        let c = Credentials::parse(br#"Digest username="a\"b", realm="r,1""#).unwrap();
        assert!(c.username.unwrap().eq_bytes(br#"a"b"#));
        assert!(c.realm.unwrap().eq_bytes(b"r,1"));
        assert!(Credentials::parse(br#"Digest username="open"#).is_err());
        assert!(Credentials::parse(b"Digest username").is_err());
    }
}
