//! `options`: stateless OPTIONS ping-pong (RFC 3261 §11). Each transaction is one OPTIONS with
//! its own branch, Call-ID and CSeq; any 2xx is a success, any other final response a failure.
//!
//! The parts of a request that depend only on the UA are rendered once per UA and reused, so
//! building a request is a handful of copies and one integer formatting.

use std::net::SocketAddr;

use sipedge_msg::Message;

use super::sip::push_u64;
use super::{Scenario, UaCtx, Verdict};

/// The OPTIONS scenario.
#[derive(Debug)]
pub(crate) struct Options {
    ruri: String,
    to: String,
    /// Per UA: the request up to the branch value, and from after it to the Call-ID value.
    parts: Vec<Option<(Vec<u8>, Vec<u8>)>>,
    /// Per UA: the last CSeq number used.
    cseq: Vec<u32>,
}

impl Options {
    pub(crate) fn new(uas: usize, target: SocketAddr, ruri: Option<&str>) -> Options {
        let ruri = ruri.map_or_else(|| format!("sip:{target}"), str::to_string);
        Options {
            to: format!("<{ruri}>"),
            ruri,
            parts: vec![None; uas],
            cseq: vec![0; uas],
        }
    }

    fn render_parts(&self, ua: usize, local: SocketAddr) -> (Vec<u8>, Vec<u8>) {
        let head = format!(
            "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};rport;branch=",
            ruri = self.ruri
        );
        let host = match local {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        let mid = format!(
            "\r\nMax-Forwards: 70\r\nFrom: <sip:sipload{ua}@{host}>;tag=sl{ua}\r\nTo: {to}\r\nCall-ID: ",
            to = self.to
        );
        (head.into_bytes(), mid.into_bytes())
    }
}

impl Scenario for Options {
    fn name(&self) -> &'static str {
        "options"
    }

    fn write_request(&mut self, ua: &UaCtx<'_>, out: &mut Vec<u8>) -> bool {
        let i = ua.index;
        if self.parts[i].is_none() {
            self.parts[i] = Some(self.render_parts(i, ua.local));
        }
        let Some((head, mid)) = &self.parts[i] else {
            return false;
        };
        // CSeq numbers stay below 2^31 (RFC 3261 §8.1.1.5).
        let seq = (self.cseq[i] % 0x7fff_ffff) + 1;
        self.cseq[i] = seq;
        out.extend_from_slice(head);
        out.extend_from_slice(ua.branch.as_bytes());
        out.extend_from_slice(mid);
        out.extend_from_slice(ua.branch.as_bytes());
        out.extend_from_slice(b"@sipload\r\nCSeq: ");
        push_u64(out, u64::from(seq));
        out.extend_from_slice(
            b" OPTIONS\r\nAccept: application/sdp\r\nUser-Agent: sipload\r\nContent-Length: 0\r\n\r\n",
        );
        true
    }

    fn on_final(
        &mut self,
        _ua: &UaCtx<'_>,
        msg: &Message<'_>,
        _next: &mut Vec<u8>,
        _extra: &mut Vec<u8>,
    ) -> Verdict {
        match msg.status() {
            Some(200..=299) => Verdict::Success,
            _ => Verdict::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipedge_msg::Method;

    fn request(s: &mut Options, ua: usize, local: &str, branch: &str) -> Vec<u8> {
        let ctx = UaCtx {
            index: ua,
            local: local.parse().expect("literal"),
            branch,
        };
        let mut out = Vec::new();
        assert!(s.write_request(&ctx, &mut out));
        out
    }

    #[test]
    fn requests_parse_and_carry_unique_branch_call_id_and_cseq() {
        let target: SocketAddr = "127.0.0.2:5070".parse().expect("literal");
        let mut s = Options::new(2, target, None);
        let a = request(&mut s, 1, "127.0.0.9:40000", "z9hG4bKsl1.0");
        let b = request(&mut s, 1, "127.0.0.9:40000", "z9hG4bKsl2.0");
        let ma = Message::parse(&a).expect("our OPTIONS parses");
        let mb = Message::parse(&b).expect("our OPTIONS parses");
        assert_eq!(ma.method(), Some(Method::Options));
        assert_eq!(ma.request_uri_raw(), Some(&b"sip:127.0.0.2:5070"[..]));
        let via = ma.top_via().expect("Via");
        assert_eq!(via.branch(), Some(&b"z9hG4bKsl1.0"[..]));
        assert_eq!(via.host(), b"127.0.0.9");
        assert_eq!(via.port(), Some(40000));
        assert_ne!(
            ma.call_id().expect("Call-ID"),
            mb.call_id().expect("Call-ID")
        );
        assert_eq!(ma.cseq().expect("CSeq").seq, 1);
        assert_eq!(mb.cseq().expect("CSeq").seq, 2);
        assert_eq!(mb.cseq().expect("CSeq").method, Method::Options);
        assert_eq!(ma.from().expect("From").tag(), Some(&b"sl1"[..]));
        assert!(ma.validate().is_ok(), "{:?}", ma.validate());
    }

    #[test]
    fn only_2xx_is_a_success() {
        let target: SocketAddr = "127.0.0.1:5060".parse().expect("literal");
        let mut s = Options::new(1, target, Some("sip:localhost"));
        let req = request(&mut s, 0, "127.0.0.1:40000", "z9hG4bKsl0.0");
        assert!(req.starts_with(b"OPTIONS sip:localhost SIP/2.0\r\n"));
        let reply = |code: &str| {
            format!(
                "SIP/2.0 {code} X\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKsl0.0\r\n\
                 From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
                 Content-Length: 0\r\n\r\n"
            )
        };
        for (code, want) in [
            ("200", Verdict::Success),
            ("202", Verdict::Success),
            ("403", Verdict::Failure),
            ("503", Verdict::Failure),
        ] {
            let text = reply(code);
            let msg = Message::parse(text.as_bytes()).expect("reply parses");
            let ctx = UaCtx {
                index: 0,
                local: "127.0.0.1:40000".parse().expect("literal"),
                branch: "z9hG4bKsl1.0",
            };
            let (mut next, mut extra) = (Vec::new(), Vec::new());
            assert_eq!(
                s.on_final(&ctx, &msg, &mut next, &mut extra),
                want,
                "{code}"
            );
        }
    }
}
