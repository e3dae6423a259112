//! STUN binding requests on the SIP UDP port (RFC 5626 §8, RFC 5389): the keepalive an
//! Outbound UA sends to learn and hold its NAT mapping. A free function over explicit
//! arguments — bytes in, the answer in a caller's fixed buffer out — so it allocates nothing
//! and holds no state.
//!
//! | rule | source | what we do otherwise |
//! | --- | --- | --- |
//! | first two bits 0, magic cookie `0x2112A442` at byte 4 ([`looks_like_stun`]) | RFC 5389 §6 | it is not STUN: the SIP parser sees it |
//! | length field = datagram − 20, a multiple of 4; attributes fill it exactly | RFC 5389 §6, §15 | counted drop |
//! | only a Binding *request* (0x0001) is answered; a response, error or indication never is (no reflection loop between two servers) | RFC 5389 §7.3 | counted drop |
//! | comprehension-required attributes (< 0x8000, e.g. USERNAME, MESSAGE-INTEGRITY) are not understood here | RFC 5389 §7.3.1 (we drop instead of the 420 answer: no credentials on this port, and nothing to reflect) | counted drop |
//! | FINGERPRINT, when present, is last and verifies; the answer then carries one too | RFC 5389 §15.5, RFC 5626 §8 | counted drop |
//! | the answer: Binding success (0x0101), same transaction id, XOR-MAPPED-ADDRESS of the source | RFC 5389 §7.3.1.1, §15.2 | — |
//!
//! The answer is never larger than the request plus the address attribute (at most 52
//! bytes for a request of at least 28), so an unverified source cannot use it to amplify.

use std::net::SocketAddr;

/// RFC 5389 §6: the magic cookie.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// The largest answer we write: header (20) + XOR-MAPPED-ADDRESS for IPv6 (24) +
/// FINGERPRINT (8).
pub const MAX_ANSWER: usize = 52;

const HEADER: usize = 20;
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const FINGERPRINT: u16 = 0x8028;
/// RFC 5389 §15.5: the FINGERPRINT CRC is XORed with this ("STUN").
const FINGERPRINT_XOR: u32 = 0x5354_554e;
/// Requests larger than this are not keepalives (RFC 5626 §8 sends a bare request).
const MAX_REQUEST: usize = 548;

/// Why a STUN datagram got no answer (each a counted drop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StunDrop {
    /// Length or attribute framing is wrong, or the request is oversized.
    Malformed,
    /// A response, error response or indication, or a method other than Binding.
    NotARequest,
    /// A comprehension-required attribute we do not handle.
    UnknownAttribute,
    /// FINGERPRINT present but not last or not matching.
    BadFingerprint,
}

/// RFC 5389 §6 / RFC 5626 §8: does this datagram look like STUN rather than SIP? (Its
/// first byte is 0x00 or 0x01 — never the start of a SIP message — and the magic cookie
/// is at bytes 4..8.)
pub fn looks_like_stun(b: &[u8]) -> bool {
    b.len() >= HEADER && b[0] <= 1 && b[4..8] == MAGIC_COOKIE.to_be_bytes()
}

/// Answers the Binding request `req` from `remote` into `out`; returns the answer's
/// length, or why there is none.
pub fn answer(
    req: &[u8],
    remote: SocketAddr,
    out: &mut [u8; MAX_ANSWER],
) -> Result<usize, StunDrop> {
    if !looks_like_stun(req) || req.len() > MAX_REQUEST || !req.len().is_multiple_of(4) {
        return Err(StunDrop::Malformed);
    }
    let msg_type = u16::from_be_bytes([req[0], req[1]]);
    let body_len = usize::from(u16::from_be_bytes([req[2], req[3]]));
    if HEADER.checked_add(body_len) != Some(req.len()) {
        return Err(StunDrop::Malformed);
    }
    if msg_type != BINDING_REQUEST {
        return Err(StunDrop::NotARequest);
    }
    let fingerprint = check_attributes(req)?;
    // Header: type, length (filled below), cookie and transaction id copied.
    out[..HEADER].copy_from_slice(&req[..HEADER]);
    out[0..2].copy_from_slice(&BINDING_SUCCESS.to_be_bytes());
    let mut at = HEADER;
    at += write_xor_mapped(&mut out[at..], remote, &req[4..HEADER]);
    if fingerprint {
        // The length field counts the FINGERPRINT before the CRC is taken (§15.5).
        let len = (at + 8 - HEADER) as u16;
        out[2..4].copy_from_slice(&len.to_be_bytes());
        let crc = crc32(&out[..at]) ^ FINGERPRINT_XOR;
        out[at..at + 2].copy_from_slice(&FINGERPRINT.to_be_bytes());
        out[at + 2..at + 4].copy_from_slice(&4u16.to_be_bytes());
        out[at + 4..at + 8].copy_from_slice(&crc.to_be_bytes());
        at += 8;
    } else {
        out[2..4].copy_from_slice(&((at - HEADER) as u16).to_be_bytes());
    }
    Ok(at)
}

/// Walks the attributes; true when a (valid, last) FINGERPRINT is present.
fn check_attributes(req: &[u8]) -> Result<bool, StunDrop> {
    let mut at = HEADER;
    while at < req.len() {
        let head = req.get(at..at + 4).ok_or(StunDrop::Malformed)?;
        let kind = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let padded = len.checked_add(3).ok_or(StunDrop::Malformed)? & !3;
        let end = (at + 4).checked_add(padded).ok_or(StunDrop::Malformed)?;
        if end > req.len() {
            return Err(StunDrop::Malformed);
        }
        if kind == FINGERPRINT {
            if len != 4 || end != req.len() {
                return Err(StunDrop::BadFingerprint);
            }
            let got = u32::from_be_bytes([req[at + 4], req[at + 5], req[at + 6], req[at + 7]]);
            if got != crc32(&req[..at]) ^ FINGERPRINT_XOR {
                return Err(StunDrop::BadFingerprint);
            }
            return Ok(true);
        }
        if kind < 0x8000 {
            return Err(StunDrop::UnknownAttribute);
        }
        at = end;
    }
    Ok(false)
}

/// RFC 5389 §15.2 XOR-MAPPED-ADDRESS of `remote`; `cookie_txid` is bytes 4..20 of the
/// request. Returns the bytes written (12 for IPv4, 24 for IPv6).
fn write_xor_mapped(out: &mut [u8], remote: SocketAddr, cookie_txid: &[u8]) -> usize {
    let xport = remote.port() ^ (MAGIC_COOKIE >> 16) as u16;
    out[0..2].copy_from_slice(&XOR_MAPPED_ADDRESS.to_be_bytes());
    out[4] = 0;
    out[6..8].copy_from_slice(&xport.to_be_bytes());
    match remote {
        SocketAddr::V4(a) => {
            out[2..4].copy_from_slice(&8u16.to_be_bytes());
            out[5] = 0x01;
            for (i, o) in a.ip().octets().iter().enumerate() {
                out[8 + i] = o ^ cookie_txid[i];
            }
            12
        }
        SocketAddr::V6(a) => {
            out[2..4].copy_from_slice(&20u16.to_be_bytes());
            out[5] = 0x02;
            for (i, o) in a.ip().octets().iter().enumerate() {
                out[8 + i] = o ^ cookie_txid[i];
            }
            24
        }
    }
}

/// CRC-32 (ISO 3309, the one FINGERPRINT uses), bitwise: STUN keepalives are a few dozen
/// bytes, so a table buys nothing.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xEDB8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXID: [u8; 12] = *b"abcdefghijkl";

    fn request(attrs: &[u8]) -> Vec<u8> {
        let mut r = vec![0, 1];
        r.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        r.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        r.extend_from_slice(&TXID);
        r.extend_from_slice(attrs);
        r
    }

    fn with_fingerprint(mut r: Vec<u8>) -> Vec<u8> {
        let len = (r.len() - HEADER + 8) as u16;
        r[2..4].copy_from_slice(&len.to_be_bytes());
        let crc = crc32(&r) ^ FINGERPRINT_XOR;
        r.extend_from_slice(&FINGERPRINT.to_be_bytes());
        r.extend_from_slice(&4u16.to_be_bytes());
        r.extend_from_slice(&crc.to_be_bytes());
        r
    }

    /// Decodes XOR-MAPPED-ADDRESS from an answer (the client's side of §15.2).
    fn mapped(ans: &[u8]) -> SocketAddr {
        assert_eq!(&ans[20..22], &XOR_MAPPED_ADDRESS.to_be_bytes());
        let port = u16::from_be_bytes([ans[26], ans[27]]) ^ 0x2112;
        match ans[25] {
            1 => {
                let mut ip = [0u8; 4];
                for i in 0..4 {
                    ip[i] = ans[28 + i] ^ ans[4 + i];
                }
                SocketAddr::from((ip, port))
            }
            _ => {
                let mut ip = [0u8; 16];
                for i in 0..16 {
                    ip[i] = ans[28 + i] ^ ans[4 + i];
                }
                SocketAddr::from((ip, port))
            }
        }
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn a_bare_binding_request_gets_the_source_back() {
        let mut out = [0u8; MAX_ANSWER];
        for remote in ["203.0.113.9:40001", "[2001:db8::9]:40002"] {
            let remote: SocketAddr = remote.parse().expect("literal");
            let req = request(&[]);
            assert!(looks_like_stun(&req));
            let n = answer(&req, remote, &mut out).expect("answered");
            let ans = &out[..n];
            assert_eq!(&ans[0..2], &[0x01, 0x01], "Binding success");
            assert_eq!(usize::from(u16::from_be_bytes([ans[2], ans[3]])), n - 20);
            assert_eq!(&ans[4..20], &req[4..20], "cookie and transaction id");
            assert_eq!(mapped(ans), remote);
            assert!(
                n <= req.len() + 24,
                "no larger than the request + the address"
            );
        }
    }

    #[test]
    fn a_fingerprinted_request_gets_a_fingerprinted_answer() {
        let req = with_fingerprint(request(&[]));
        let mut out = [0u8; MAX_ANSWER];
        let n = answer(
            &req,
            "198.51.100.1:5062".parse().expect("literal"),
            &mut out,
        )
        .expect("answered");
        assert_eq!(n, 40);
        assert!(n <= req.len() + 12);
        let crc = u32::from_be_bytes([out[n - 4], out[n - 3], out[n - 2], out[n - 1]]);
        assert_eq!(
            crc,
            crc32(&out[..n - 8]) ^ FINGERPRINT_XOR,
            "our FINGERPRINT verifies"
        );
        assert_eq!(&out[n - 8..n - 4], &[0x80, 0x28, 0, 4]);
        let mut bad = req.clone();
        bad[10] ^= 1;
        assert_eq!(
            answer(&bad, "198.51.100.1:1".parse().expect("literal"), &mut out),
            Err(StunDrop::BadFingerprint)
        );
    }

    #[test]
    fn responses_indications_and_odd_requests_are_never_answered() {
        let remote: SocketAddr = "192.0.2.1:1".parse().expect("literal");
        let mut out = [0u8; MAX_ANSWER];
        for t in [0x0101u16, 0x0111, 0x0011, 0x0002] {
            let mut r = request(&[]);
            r[0..2].copy_from_slice(&t.to_be_bytes());
            assert_eq!(
                answer(&r, remote, &mut out),
                Err(StunDrop::NotARequest),
                "{t:#x}"
            );
        }
        // USERNAME: comprehension-required.
        let r = request(&[0, 6, 0, 4, b'u', b's', b'e', b'r']);
        assert_eq!(
            answer(&r, remote, &mut out),
            Err(StunDrop::UnknownAttribute)
        );
        // SOFTWARE (optional) is fine.
        let r = request(&[0x80, 0x22, 0, 3, b'a', b'b', b'c', 0]);
        assert!(answer(&r, remote, &mut out).is_ok());
        // Length field lies, attribute overruns, odd size, too big.
        let mut r = request(&[]);
        r[3] = 4;
        assert_eq!(answer(&r, remote, &mut out), Err(StunDrop::Malformed));
        let r = request(&[0x80, 0x22, 0, 9, 0, 0, 0, 0]);
        assert_eq!(answer(&r, remote, &mut out), Err(StunDrop::Malformed));
        let mut r = request(&[]);
        r.push(0);
        assert_eq!(answer(&r, remote, &mut out), Err(StunDrop::Malformed));
        let r = request(&vec![0x80; 600]);
        assert_eq!(answer(&r, remote, &mut out), Err(StunDrop::Malformed));
        // FINGERPRINT not last.
        let mut r = with_fingerprint(request(&[]));
        r.extend_from_slice(&[0x80, 0x22, 0, 0]);
        let len = (r.len() - HEADER) as u16;
        r[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(answer(&r, remote, &mut out), Err(StunDrop::BadFingerprint));
    }

    #[test]
    fn sip_is_not_stun_and_every_truncation_or_flip_is_handled() {
        assert!(!looks_like_stun(b"OPTIONS sip:x SIP/2.0\r\n\r\n"));
        assert!(!looks_like_stun(b"\r\n\r\n"));
        let remote: SocketAddr = "192.0.2.1:1".parse().expect("literal");
        let mut out = [0u8; MAX_ANSWER];
        let base = with_fingerprint(request(&[0x80, 0x22, 0, 3, b'a', b'b', b'c', 0]));
        // Fuzz-style: every prefix and every single-bit flip either answers within the
        // size bound or is refused; nothing panics.
        for n in 0..=base.len() {
            if let Ok(k) = answer(&base[..n], remote, &mut out) {
                assert!(k <= n + 24);
            }
        }
        for i in 0..base.len() * 8 {
            let mut r = base.clone();
            r[i / 8] ^= 1 << (i % 8);
            if let Ok(k) = answer(&r, remote, &mut out) {
                assert!(k <= r.len() + 24);
                assert_eq!(&out[0..2], &[1, 1]);
            }
        }
    }
}
