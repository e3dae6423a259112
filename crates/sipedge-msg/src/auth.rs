//! Authorization / Proxy-Authorization credentials (RFC 3261 §25.1 `credentials`,
//! RFC 7616 digest parameters).

use crate::fields::QuotedStr;
use crate::lex::{end_of_quoted, is_ws, skip_token, skip_ws};

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
    /// Parses `scheme LWS auth-param *(COMMA auth-param)` in one pass, where
    /// `auth-param = token EQUAL ( token / quoted-string )` (RFC 3261 §25.1).
    #[inline(always)]
    pub fn parse(v: &'a [u8]) -> Result<Credentials<'a>, AuthError> {
        let mut i = skip_ws(v, 0);
        let scheme_start = i;
        i = skip_token(v, i);
        if i == scheme_start || (i < v.len() && !is_ws(v[i])) {
            return Err(AuthError);
        }
        let mut c = Credentials {
            scheme: &v[scheme_start..i],
            ..Credentials::default()
        };
        loop {
            // Separators: whitespace and commas between parameters.
            while i < v.len() && (is_ws(v[i]) || v[i] == b',') {
                i += 1;
            }
            if i >= v.len() {
                return Ok(c);
            }
            let name_start = i;
            i = skip_token(v, i);
            let name = &v[name_start..i];
            if v.get(i) != Some(&b'=') {
                i = skip_ws(v, i);
            }
            if name.is_empty() || v.get(i) != Some(&b'=') {
                return Err(AuthError);
            }
            i += 1;
            if v.get(i) != Some(&b'"') {
                i = skip_ws(v, i);
            }
            let value = if v.get(i) == Some(&b'"') {
                let end = end_of_quoted(v, i).ok_or(AuthError)?;
                let q = QuotedStr::from_inner(&v[i + 1..end - 1]);
                i = end;
                q
            } else {
                let start = i;
                i = skip_token(v, i);
                if i == start {
                    return Err(AuthError);
                }
                QuotedStr::from_inner(&v[start..i])
            };
            if v.get(i) != Some(&b',') {
                i = skip_ws(v, i);
                if i < v.len() && v[i] != b',' {
                    return Err(AuthError);
                }
            }
            c.set(name, value);
            if v.get(i..i + 2) == Some(b", ") {
                i += 2; // the usual separator
            }
        }
    }

    /// Stores a known parameter; unknown ones are ignored (RFC 7616 §3.4).
    #[inline]
    fn set(&mut self, name: &[u8], value: QuotedStr<'a>) {
        let eq = |canon: &[u8]| crate::lex::eq_token_ci(canon, name);
        let slot = match name.len() {
            2 if eq(b"nc") => {
                self.nc = Some(value.raw());
                return;
            }
            3 if eq(b"uri") => &mut self.uri,
            3 if eq(b"qop") => &mut self.qop,
            5 if eq(b"realm") => &mut self.realm,
            5 if eq(b"nonce") => &mut self.nonce,
            6 if eq(b"cnonce") => &mut self.cnonce,
            6 if eq(b"opaque") => &mut self.opaque,
            8 if eq(b"username") => &mut self.username,
            8 if eq(b"response") => &mut self.response,
            9 if eq(b"algorithm") => &mut self.algorithm,
            _ => return,
        };
        *slot = Some(value);
    }

    /// True for the Digest scheme.
    pub fn is_digest(&self) -> bool {
        crate::lex::eq_token_ci(b"Digest", self.scheme)
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
        assert!(Credentials::parse(b"Digest username=\"a\" realm=\"b\"").is_err());
        assert!(Credentials::parse(b"Digest realm=").is_err());
        assert!(Credentials::parse(b"Digest").unwrap().username.is_none());
        let c = Credentials::parse(b"Digest  USERNAME = \"bob\" ,NC=00000002,,  x=\"y\"").unwrap();
        assert!(c.username.unwrap().eq_bytes(b"bob"));
        assert_eq!(c.nc, Some(&b"00000002"[..]));
    }
}
