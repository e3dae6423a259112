//! Digest access authentication, client side: the `response` of RFC 7616 §3.4.1 (RFC 2617 for
//! MD5) with `qop=auth`, MD5 or SHA-256, and the Authorization header that carries it
//! (RFC 3261 §22.4).

use md5::Md5;
use sha2::{Digest as _, Sha256};
use sipedge_msg::Credentials;

/// A digest algorithm the generator answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// From a challenge's `algorithm` parameter; absent means MD5 (RFC 7616 §3.3). `None` for
    /// an algorithm we do not implement (`-sess` variants, SHA-512-256).
    pub(crate) fn from_param(p: Option<&[u8]>) -> Option<Algorithm> {
        match p {
            None => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case(b"MD5") => Some(Algorithm::Md5),
            Some(a) if a.eq_ignore_ascii_case(b"SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Lower-case hex of H(parts joined by ':').
    fn hex(self, parts: &[&[u8]]) -> String {
        fn feed<D: sha2::Digest>(mut d: D, parts: &[&[u8]]) -> Vec<u8> {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            d.finalize().to_vec()
        }
        let raw = match self {
            Algorithm::Md5 => feed(Md5::new(), parts),
            Algorithm::Sha256 => feed(Sha256::new(), parts),
        };
        let mut s = String::with_capacity(raw.len() * 2);
        for b in raw {
            s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s
    }
}

/// The parts of a challenge (WWW-Authenticate / Proxy-Authenticate) a response needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) realm: Vec<u8>,
    pub(crate) nonce: Vec<u8>,
    pub(crate) opaque: Option<Vec<u8>>,
    pub(crate) algorithm: Algorithm,
    /// The server offered `qop=auth` (RFC 7616 §3.3: a list such as `"auth,auth-int"`).
    pub(crate) qop_auth: bool,
}

impl Challenge {
    /// Reads a Digest challenge; `None` for another scheme, a missing realm or nonce, or an
    /// algorithm we do not implement.
    pub(crate) fn parse(value: &[u8]) -> Option<Challenge> {
        let c = Credentials::parse(value).ok()?;
        if !c.is_digest() {
            return None;
        }
        let unq = |q: sipedge_msg::QuotedStr<'_>| q.unescaped().collect::<Vec<u8>>();
        let qop_auth = c.qop.is_some_and(|q| {
            unq(q)
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"auth"))
        });
        Some(Challenge {
            realm: unq(c.realm?),
            nonce: unq(c.nonce?),
            opaque: c.opaque.map(unq),
            algorithm: Algorithm::from_param(c.algorithm.map(|a| a.raw()))?,
            qop_auth,
        })
    }
}

/// Who answers and for which request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer<'a> {
    pub(crate) user: &'a [u8],
    pub(crate) password: &'a [u8],
    pub(crate) method: &'a [u8],
    pub(crate) uri: &'a [u8],
    /// Client nonce (used with qop).
    pub(crate) cnonce: &'a [u8],
    /// Nonce count, 1 for the first use of a nonce.
    pub(crate) nc: u32,
}

/// The digest `response` (RFC 7616 §3.4.1): H(H(A1):nonce:nc:cnonce:qop:H(A2)) with qop, or
/// H(H(A1):nonce:H(A2)) without (RFC 2617 §3.2.2.1); A1 = user:realm:password,
/// A2 = method:uri.
pub(crate) fn response(ch: &Challenge, a: &Answer<'_>) -> String {
    let alg = ch.algorithm;
    let ha1 = alg.hex(&[a.user, &ch.realm, a.password]);
    let ha2 = alg.hex(&[a.method, a.uri]);
    if ch.qop_auth {
        let nc = format!("{:08x}", a.nc);
        alg.hex(&[
            ha1.as_bytes(),
            &ch.nonce,
            nc.as_bytes(),
            a.cnonce,
            b"auth",
            ha2.as_bytes(),
        ])
    } else {
        alg.hex(&[ha1.as_bytes(), &ch.nonce, ha2.as_bytes()])
    }
}

/// Appends the credentials (the header value, without the name) answering `ch`.
pub(crate) fn push_credentials(out: &mut Vec<u8>, ch: &Challenge, a: &Answer<'_>) {
    let resp = response(ch, a);
    let mut put = |s: &[u8]| out.extend_from_slice(s);
    put(b"Digest username=\"");
    put(a.user);
    put(b"\", realm=\"");
    put(&ch.realm);
    put(b"\", nonce=\"");
    put(&ch.nonce);
    put(b"\", uri=\"");
    put(a.uri);
    put(b"\", response=\"");
    put(resp.as_bytes());
    put(b"\", algorithm=");
    put(ch.algorithm.name().as_bytes());
    if ch.qop_auth {
        put(b", qop=auth, nc=");
        put(format!("{:08x}", a.nc).as_bytes());
        put(b", cnonce=\"");
        put(a.cnonce);
        put(b"\"");
    }
    if let Some(o) = &ch.opaque {
        put(b", opaque=\"");
        put(o);
        put(b"\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1: the same request answered with MD5 and with SHA-256.
    fn rfc7616(alg: &str) -> (Challenge, Answer<'static>) {
        let ch = Challenge::parse(
            format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
                 algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
                 opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            )
            .as_bytes(),
        )
        .expect("a digest challenge");
        let a = Answer {
            user: b"Mufasa",
            password: b"Circle of Life",
            method: b"GET",
            uri: b"/dir/index.html",
            cnonce: b"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            nc: 1,
        };
        (ch, a)
    }

    #[test]
    fn rfc7616_md5_and_sha256_examples() {
        let (ch, a) = rfc7616("MD5");
        assert!(ch.qop_auth);
        assert_eq!(response(&ch, &a), "8ca523f5e9506fed4657c9700eebdbec");
        let (ch, a) = rfc7616("SHA-256");
        assert_eq!(ch.algorithm, Algorithm::Sha256);
        assert_eq!(
            response(&ch, &a),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2617_example_without_algorithm_is_md5() {
        let ch = Challenge::parse(
            b"Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
              nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
              opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("challenge");
        assert_eq!(ch.algorithm, Algorithm::Md5);
        let a = Answer {
            user: b"Mufasa",
            password: b"Circle Of Life",
            method: b"GET",
            uri: b"/dir/index.html",
            cnonce: b"0a4f113b",
            nc: 1,
        };
        assert_eq!(response(&ch, &a), "6629fae49393a05397450978507c4ef1");
        let mut v = Vec::new();
        push_credentials(&mut v, &ch, &a);
        let c = Credentials::parse(&v).expect("our credentials parse");
        assert!(c
            .response
            .expect("response")
            .eq_bytes(b"6629fae49393a05397450978507c4ef1"));
        assert!(c
            .opaque
            .expect("opaque")
            .eq_bytes(b"5ccc069c403ebaf9f0171e9517f40e41"));
        assert_eq!(c.nc, Some(&b"00000001"[..]));
    }

    #[test]
    fn unsupported_challenges_are_refused() {
        assert!(Challenge::parse(b"Basic realm=\"x\"").is_none());
        assert!(
            Challenge::parse(b"Digest realm=\"x\"").is_none(),
            "no nonce"
        );
        assert!(Challenge::parse(b"Digest realm=\"x\", nonce=\"n\", algorithm=MD5-sess").is_none());
    }
}
