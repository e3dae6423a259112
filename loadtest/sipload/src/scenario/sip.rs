//! Small SIP text helpers shared by the scenarios: numbers, hosts, Call-IDs that carry the AoR,
//! and responses that UAs send back to the edge.

use sipedge_msg::{HeaderName, Message};

/// Appends the decimal form of `n`.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Writes the Call-ID of AoR `aor`'s registrations in run `run`: `<aor>-<run hex>@sipload`.
/// One Call-ID per AoR for the whole run, so refreshes keep it (RFC 3261 §10.2.4), and the AoR
/// can be read back from any response ([`aor_of_call_id`]).
pub(crate) fn push_reg_call_id(out: &mut Vec<u8>, aor: u64, run: u32) {
    push_u64(out, aor);
    out.push(b'-');
    let mut hex = [0u8; 8];
    let digits = (32 - run.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, h) in hex[..digits].iter_mut().enumerate() {
        let nibble = (run >> (4 * (digits - 1 - i))) & 0xf;
        *h = b"0123456789abcdef"[nibble as usize];
    }
    out.extend_from_slice(&hex[..digits]);
    out.extend_from_slice(b"@sipload");
}

/// The AoR a Call-ID written by [`push_reg_call_id`] (or any `<decimal>-…` Call-ID) names.
pub(crate) fn aor_of_call_id(call_id: &[u8]) -> Option<u64> {
    let dash = call_id.iter().position(|&b| b == b'-')?;
    let digits = &call_id[..dash];
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// What a UA's response to a request from the edge carries beyond the copied headers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ReplyExtras<'a> {
    /// Added to To when the request's To has no tag yet (RFC 3261 §8.2.6.2).
    pub(crate) to_tag: Option<&'a str>,
    /// Contact header value (for 2xx to INVITE, §12.1.1).
    pub(crate) contact: Option<&'a str>,
}

/// Builds a response to `req`: every Via, From, To, Call-ID and CSeq copied (RFC 3261
/// §8.2.6.2), plus what `extras` adds. `None` when the request lacks a mandatory header.
pub(crate) fn response(
    req: &Message<'_>,
    code: u16,
    reason: &str,
    extras: ReplyExtras<'_>,
) -> Option<Vec<u8>> {
    let from = req.header(HeaderName::From)?;
    let to = req.header(HeaderName::To)?;
    let call_id = req.header(HeaderName::CallId)?;
    let cseq = req.header(HeaderName::CSeq)?;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(format!("SIP/2.0 {code} {reason}\r\n").as_bytes());
    let mut vias = 0;
    for via in req.header_values(HeaderName::Via) {
        out.extend_from_slice(b"Via: ");
        out.extend_from_slice(via);
        out.extend_from_slice(b"\r\n");
        vias += 1;
    }
    if vias == 0 {
        return None;
    }
    // RFC 3261 §12.1.1: the UAS copies Record-Route into its dialog-creating responses.
    for rr in req.header_values(HeaderName::RecordRoute) {
        out.extend_from_slice(b"Record-Route: ");
        out.extend_from_slice(rr);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"From: ");
    out.extend_from_slice(from);
    out.extend_from_slice(b"\r\nTo: ");
    out.extend_from_slice(to);
    let tagged = req.to().ok().is_some_and(|t| t.tag().is_some());
    if let (Some(tag), false) = (extras.to_tag, tagged) {
        out.extend_from_slice(b";tag=");
        out.extend_from_slice(tag.as_bytes());
    }
    out.extend_from_slice(b"\r\nCall-ID: ");
    out.extend_from_slice(call_id);
    out.extend_from_slice(b"\r\nCSeq: ");
    out.extend_from_slice(cseq);
    if let Some(c) = extras.contact {
        out.extend_from_slice(b"\r\nContact: ");
        out.extend_from_slice(c.as_bytes());
    }
    out.extend_from_slice(b"\r\nServer: sipload\r\nContent-Length: 0\r\n\r\n");
    Some(out)
}

/// True for a datagram a NAT keepalive consists of: CR/LF only (RFC 5626 §3.5.1) or NUL
/// bytes (the 4-byte ping of Kamailio's nathelper without `sipping`).
pub(crate) fn is_keepalive(data: &[u8]) -> bool {
    sipedge_msg::is_keepalive(data) || (!data.is_empty() && data.iter().all(|&b| b == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_call_ids_round_trip() {
        let mut v = Vec::new();
        push_u64(&mut v, 0);
        v.push(b' ');
        push_u64(&mut v, u64::MAX);
        assert_eq!(v, b"0 18446744073709551615");
        let mut c = Vec::new();
        push_reg_call_id(&mut c, 123_456, 0xbeef);
        assert_eq!(c, b"123456-beef@sipload");
        assert_eq!(aor_of_call_id(&c), Some(123_456));
        for (run, hex) in [(0, "0"), (0xf, "f"), (0x10, "10"), (u32::MAX, "ffffffff")] {
            let mut c = Vec::new();
            push_reg_call_id(&mut c, 1, run);
            assert_eq!(c, format!("1-{hex}@sipload").as_bytes());
        }
        for bad in [&b"abc"[..], b"-1@x", b"12a-1", b"99999999999999999999-1"] {
            assert_eq!(aor_of_call_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_response_copies_the_transaction_headers_and_tags_to() {
        let req = b"INVITE sip:a@127.0.0.1:4000 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.40.1:5060;branch=z9hG4bKk1\r\n\
            Via: SIP/2.0/UDP 127.0.41.1:3000;rport=3000;branch=z9hG4bKsl1.0\r\n\
            From: <sip:b@x>;tag=f\r\nTo: <sip:a@x>\r\nCall-ID: c1\r\nCSeq: 7 INVITE\r\n\
            Content-Length: 0\r\n\r\n";
        let msg = Message::parse(req).expect("parses");
        let extras = ReplyExtras {
            to_tag: Some("t9"),
            contact: Some("<sip:a@127.0.0.1:4000>"),
        };
        let out = response(&msg, 200, "OK", extras).expect("complete request");
        let r = Message::parse(&out).expect("our response parses");
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.vias().count(), 2);
        assert_eq!(r.top_via().expect("via").branch(), Some(&b"z9hG4bKk1"[..]));
        assert_eq!(r.to().expect("To").tag(), Some(&b"t9"[..]));
        assert_eq!(r.call_id().expect("Call-ID"), b"c1");
        assert_eq!(r.cseq().expect("CSeq").seq, 7);
        assert_eq!(r.contacts().count(), 1);
        // A To that is already tagged keeps its tag.
        let tagged = String::from_utf8_lossy(req).replace("To: <sip:a@x>", "To: <sip:a@x>;tag=z");
        let msg = Message::parse(tagged.as_bytes()).expect("parses");
        let out = response(&msg, 200, "OK", extras).expect("complete");
        let r = Message::parse(&out).expect("parses");
        assert_eq!(r.to().expect("To").tag(), Some(&b"z"[..]));
    }

    #[test]
    fn keepalives_are_crlf_or_nul_only() {
        assert!(is_keepalive(b"\r\n\r\n"));
        assert!(is_keepalive(&[0, 0, 0, 0]));
        assert!(!is_keepalive(b""));
        assert!(!is_keepalive(b"OPTIONS"));
    }
}
