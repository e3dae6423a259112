//! Digest arithmetic (RFC 7616 §3.4.1–§3.4.3, RFC 3261 §22.4, RFC 8760 for SHA-256 in
//! SIP): HA1, HA2 and the `response`, computed into stack buffers (no allocation).

use md5::{Digest, Md5};

use super::sha256::{midstate, Sha256Stream};

/// A digest algorithm we offer and accept (RFC 7616 §3.3; RFC 8760 §2.2 for SIP).
/// The `-sess` variants are not offered and not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5` (RFC 2617 / RFC 3261 §22.4; the default when `algorithm` is absent).
    Md5,
    /// `SHA-256` (RFC 7616, RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The `algorithm` parameter value.
    pub fn token(self) -> &'static [u8] {
        match self {
            Algorithm::Md5 => b"MD5",
            Algorithm::Sha256 => b"SHA-256",
        }
    }

    /// RFC 7616 §3.4: the algorithm named by a credentials' `algorithm` parameter
    /// (absent = MD5); `None` for one we do not accept (e.g. `MD5-sess`, `SHA-512-256`).
    pub fn from_param(p: Option<&[u8]>) -> Option<Algorithm> {
        match p {
            None => Some(Algorithm::Md5),
            Some(t) if t.eq_ignore_ascii_case(b"MD5") => Some(Algorithm::Md5),
            Some(t) if t.eq_ignore_ascii_case(b"SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    /// 0 for MD5, 1 for SHA-256 (per-algorithm tables).
    pub fn index(self) -> usize {
        match self {
            Algorithm::Md5 => 0,
            Algorithm::Sha256 => 1,
        }
    }

    /// Length of the hex digest.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        }
    }
}

/// A hex digest (lowercase ASCII), MD5 in the first 32 bytes or SHA-256 in all 64.
pub type Hex = [u8; 64];

const HEX: &[u8; 16] = b"0123456789abcdef";

fn to_hex(bytes: &[u8], out: &mut Hex) -> usize {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    2 * bytes.len()
}

/// Hashes the concatenation of `parts` with `alg`, hex into `out`; returns the length.
fn hash_hex(alg: Algorithm, parts: &[&[u8]], out: &mut Hex) -> usize {
    match alg {
        Algorithm::Md5 => {
            let mut h = Md5::new();
            for p in parts {
                h.update(p);
            }
            to_hex(&h.finalize(), out)
        }
        Algorithm::Sha256 => {
            let mut h = Sha256Stream::new();
            for p in parts {
                h.update(p);
            }
            to_hex(&h.finish(), out)
        }
    }
}

/// The parts of the `response` after `HA1` (RFC 7616 §3.4.1; RFC 2069 without qop).
fn response_tail<'a>(ha2: &'a [u8], input: &DigestInput<'a>, out: &mut [&'a [u8]; 9]) -> usize {
    match input.qop_auth {
        Some((nc, cnonce)) => {
            *out = [
                b":",
                input.nonce,
                b":",
                nc,
                b":",
                cnonce,
                b":auth:",
                ha2,
                b"",
            ];
            8
        }
        None => {
            out[..4].copy_from_slice(&[b":", input.nonce, b":", ha2]);
            4
        }
    }
}

/// The SHA-256 state after a SHA-256 HA1 (64 hex digits: exactly one block), which every
/// `response` of the user starts with; computed once per user at load.
pub(crate) fn sha256_ha1_state(ha1: &Hex) -> [u32; 8] {
    midstate(ha1)
}

/// [`response_with_ha2`] for SHA-256 from [`sha256_ha1_state`]: one block fewer to hash.
pub(crate) fn sha256_response_after_ha1(
    state: &[u32; 8],
    ha2: &[u8],
    input: &DigestInput<'_>,
) -> Hex {
    let mut parts: [&[u8]; 9] = [b""; 9];
    let n = response_tail(ha2, input, &mut parts);
    let mut h = Sha256Stream::after_block(state);
    for p in &parts[..n] {
        h.update(p);
    }
    let mut out = [0u8; 64];
    to_hex(&h.finish(), &mut out);
    out
}

/// RFC 7616 §3.4.2: `HA1 = H(username ":" realm ":" password)`, hex.
pub fn ha1(alg: Algorithm, username: &[u8], realm: &[u8], password: &[u8]) -> Hex {
    let mut out = [0u8; 64];
    hash_hex(alg, &[username, b":", realm, b":", password], &mut out);
    out
}

/// What the response is computed over, from the request and its credentials.
#[derive(Debug, Clone, Copy)]
pub struct DigestInput<'a> {
    /// The request method (RFC 3261 §22.4: the Request-Line method).
    pub method: &'a [u8],
    /// The credentials' `uri` parameter.
    pub uri: &'a [u8],
    /// `nonce`.
    pub nonce: &'a [u8],
    /// With `qop=auth`: `(nc, cnonce)`; `None` for the RFC 2069 form without qop.
    pub qop_auth: Option<(&'a [u8], &'a [u8])>,
}

/// RFC 7616 §3.4.1: the expected `response` for `ha1` (hex, `alg.hex_len()` bytes):
/// `H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)` with qop, else (RFC 2069,
/// kept for old phones by RFC 3261 §22.4) `H(HA1 ":" nonce ":" HA2)`, where
/// `HA2 = H(method ":" uri)` (§3.4.3, qop=auth).
pub fn expected_response(alg: Algorithm, ha1: &[u8], input: &DigestInput<'_>) -> Hex {
    let ha2 = ha2(alg, input.method, input.uri);
    response_with_ha2(alg, ha1, &ha2[..alg.hex_len()], input)
}

/// RFC 7616 §3.4.3 (qop=auth or none): `HA2 = H(method ":" uri)`, hex. It depends on public
/// values only, so a shard may keep the last ones (most REGISTERs of a domain share it).
pub fn ha2(alg: Algorithm, method: &[u8], uri: &[u8]) -> Hex {
    let mut out = [0u8; 64];
    hash_hex(alg, &[method, b":", uri], &mut out);
    out
}

/// [`expected_response`] with HA2 (hex, `alg.hex_len()` bytes) already computed.
pub fn response_with_ha2(alg: Algorithm, ha1: &[u8], ha2: &[u8], input: &DigestInput<'_>) -> Hex {
    let mut parts: [&[u8]; 10] = [b""; 10];
    parts[0] = ha1;
    let mut tail: [&[u8]; 9] = [b""; 9];
    let n = response_tail(ha2, input, &mut tail);
    parts[1..=n].copy_from_slice(&tail[..n]);
    let mut out = [0u8; 64];
    hash_hex(alg, &parts[..=n], &mut out);
    out
}

/// Compares a hex digest with the client's `response` without an early exit (hex digits
/// case-insensitively), so the time does not depend on where they differ.
pub fn response_matches(expected: &[u8], given: &[u8]) -> bool {
    if expected.len() != given.len() {
        return false;
    }
    let mut diff = 0u8;
    for (a, b) in expected.iter().zip(given) {
        diff |= a ^ b.to_ascii_lowercase();
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1: the SHA-256 and MD5 examples (HTTP, qop=auth).
    #[test]
    fn rfc7616_examples() {
        let input = DigestInput {
            method: b"GET",
            uri: b"/dir/index.html",
            nonce: b"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            qop_auth: Some((b"00000001", b"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")),
        };
        let ha = ha1(
            Algorithm::Md5,
            b"Mufasa",
            b"http-auth@example.org",
            b"Circle of Life",
        );
        let r = expected_response(Algorithm::Md5, &ha[..32], &input);
        assert_eq!(&r[..32], b"8ca523f5e9506fed4657c9700eebdbec");
        let ha = ha1(
            Algorithm::Sha256,
            b"Mufasa",
            b"http-auth@example.org",
            b"Circle of Life",
        );
        let r = expected_response(Algorithm::Sha256, &ha, &input);
        assert_eq!(
            &r[..],
            b"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    /// RFC 2617 §3.5 (MD5, qop=auth) and the RFC 2069 form without qop.
    #[test]
    fn rfc2617_and_2069() {
        let ha = ha1(
            Algorithm::Md5,
            b"Mufasa",
            b"testrealm@host.com",
            b"Circle Of Life",
        );
        let mut input = DigestInput {
            method: b"GET",
            uri: b"/dir/index.html",
            nonce: b"dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop_auth: Some((b"00000001", b"0a4f113b")),
        };
        let r = expected_response(Algorithm::Md5, &ha[..32], &input);
        assert_eq!(&r[..32], b"6629fae49393a05397450978507c4ef1");
        input.qop_auth = None;
        let r = expected_response(Algorithm::Md5, &ha[..32], &input);
        // H(HA1:nonce:HA2), checked against an independent computation.
        let mut ha2 = [0u8; 64];
        hash_hex(Algorithm::Md5, &[b"GET:/dir/index.html"], &mut ha2);
        let mut want = [0u8; 64];
        hash_hex(
            Algorithm::Md5,
            &[
                &ha[..32],
                b":dcd98b7102dd2f0e8b11d0f600bfb0c093:",
                &ha2[..32],
            ],
            &mut want,
        );
        assert_eq!(r, want);
        assert!(response_matches(&r[..32], &want[..32].to_ascii_uppercase()));
        assert!(!response_matches(&r[..32], &want[..31]));
    }

    /// The SHA-256 response from the HA1 state equals the plain one, with and without qop.
    #[test]
    fn response_after_the_ha1_block() {
        let ha = ha1(Algorithm::Sha256, b"alice", b"edge.test", b"pw");
        let mut input = DigestInput {
            method: b"REGISTER",
            uri: b"sip:edge.test",
            nonce: b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            qop_auth: Some((b"00000001", b"0a4f113b")),
        };
        for _ in 0..2 {
            let h2 = ha2(Algorithm::Sha256, input.method, input.uri);
            assert_eq!(
                sha256_response_after_ha1(&sha256_ha1_state(&ha), &h2, &input),
                expected_response(Algorithm::Sha256, &ha, &input)
            );
            input.qop_auth = None;
        }
    }

    #[test]
    fn algorithm_params() {
        assert_eq!(Algorithm::from_param(None), Some(Algorithm::Md5));
        assert_eq!(Algorithm::from_param(Some(b"md5")), Some(Algorithm::Md5));
        assert_eq!(
            Algorithm::from_param(Some(b"SHA-256")),
            Some(Algorithm::Sha256)
        );
        assert_eq!(Algorithm::from_param(Some(b"MD5-sess")), None);
        assert_eq!(Algorithm::from_param(Some(b"SHA-512-256")), None);
    }
}
