//! Issue 13, sans-IO: a source nobody verified gets at most one reply per request, never
//! retransmitted, and at most three times the request's bytes (RFC 3261 §8.2.6.1 stateless
//! replies): the edge is no amplifier for spoofed UDP.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use sipedge_core::{Core, CoreConfig, LocalId, Millis};
use sipedge_msg::{HeaderName, Message};

const SPOOFED: &str = "198.51.100.77:5060";

fn core(server_name: &str) -> Core {
    Core::new(CoreConfig {
        domains: vec!["e".into(), "127.0.0.1".into()],
        server_name: server_name.into(),
        ..CoreConfig::default()
    })
}

/// The smallest requests that still validate: compact headers, short values.
fn tiny(method: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} sip:e SIP/2.0\r\nv:SIP/2.0/UDP a;branch=z9hG4bK1\r\nMax-Forwards:70\r\nf:<sip:a@e>;tag=1\r\nt:<sip:e>\r\ni:1\r\nCSeq:1 {method}\r\n{extra}l:0\r\n\r\n"
    )
    .into_bytes()
}

/// Everything the core sends for `req` and then over 64·T1 of timers.
fn replies(c: &mut Core, req: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
    c.handle_datagram(Millis(1), LocalId(0), SPOOFED.parse().unwrap(), req);
    let mut out = Vec::new();
    let mut drain = |c: &mut Core| {
        while let Some(t) = c.poll_transmit() {
            out.push((t.remote, t.data.to_vec()));
        }
    };
    drain(c);
    let end = 1 + 64 * 500;
    while let Some(due) = c.poll_timeout().filter(|d| d.0 <= end) {
        c.handle_timeout(due);
        drain(c);
    }
    c.handle_timeout(Millis(end));
    drain(c);
    out
}

#[test]
fn a_reply_larger_than_three_times_the_request_is_shrunk_or_dropped_and_counted() {
    // A long Server value stands for every optional header a reply may carry.
    let mut c = core(&"x".repeat(600));
    let mut shrunk = 0;
    for (req, may_drop) in [
        (tiny("OPTIONS", ""), false), // 200 with Allow, Accept, Supported
        (tiny("FOO", ""), false),     // 501 with Allow (optional there)
        (tiny("CANCEL", ""), false),  // 481
        (tiny("OPTIONS", "Require:x\r\n"), true), // 420 needs its Unsupported
    ] {
        let out = replies(&mut c, &req);
        let text = String::from_utf8_lossy(&req).into_owned();
        assert!(
            out.len() <= 1,
            "one reply at most, never retransmitted: {text}"
        );
        if out.is_empty() {
            assert!(
                may_drop,
                "only a reply that cannot shrink is dropped: {text}"
            );
            continue;
        }
        let (to, bytes) = &out[0];
        assert_eq!(*to, SPOOFED.parse::<SocketAddr>().unwrap());
        assert!(
            bytes.len() <= 3 * req.len(),
            "{} bytes answered {} bytes:\n{}",
            bytes.len(),
            req.len(),
            String::from_utf8_lossy(bytes)
        );
        let m = Message::parse(bytes).unwrap();
        m.validate().unwrap();
        assert!(
            m.header(HeaderName::CallId).is_some(),
            "still a valid reply"
        );
        shrunk += 1;
    }
    let s = c.stats().overload;
    assert_eq!(s.replies_shrunk, shrunk);
    assert_eq!(s.replies_shrunk + s.replies_too_large, 4, "{s:?}");
}

#[test]
fn a_normal_reply_keeps_its_headers() {
    let mut c = core("sipedge");
    let req = tiny("OPTIONS", "");
    let out = replies(&mut c, &req);
    assert_eq!(out.len(), 1);
    let text = String::from_utf8_lossy(&out[0].1);
    assert!(text.contains("Server: sipedge\r\n"), "{text}");
    assert!(text.contains("Allow: "), "{text}");
    assert_eq!(c.stats().overload.replies_shrunk, 0);
}

/// Issue 13: an open registrar (no REGISTER authentication) answers a REGISTER that changes
/// bindings with the whole list, but a *query* (no Contact) from a source nobody verified
/// creates no state, so its 200 obeys the 3× bound: an AoR with many contacts cannot be
/// used to reflect its list at a spoofed address. A small list still gets its 200.
#[test]
fn an_unverified_register_query_is_no_amplifier() {
    let mut c = core("sipedge");
    let phone = "192.0.2.10:5060";
    let reg = |contact: &str, call: &str| {
        format!(
            "REGISTER sip:e SIP/2.0\r\nVia: SIP/2.0/UDP {phone};branch=z9hG4bK-{call}\r\nMax-Forwards: 70\r\nFrom: <sip:bob@e>;tag=1\r\nTo: <sip:bob@e>\r\nCall-ID: {call}\r\nCSeq: 1 REGISTER\r\n{contact}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    };
    let query = reg("", "q1");
    // One contact: the query's 200 fits within 3× and is answered.
    let one = reg("Contact: <sip:bob@192.0.2.10:5061>\r\n", "r0");
    c.handle_datagram(Millis(1), LocalId(0), phone.parse().unwrap(), &one);
    while c.poll_transmit().is_some() {}
    let out = replies(&mut c, &query);
    assert_eq!(out.len(), 1, "a small list is answered");
    assert!(out[0].1.starts_with(b"SIP/2.0 200"));
    // Nine more contacts, each REGISTER answered with the list (it changed state).
    for k in 1..10 {
        let r = reg(
            &format!(
                "Contact: <sip:bob-long-contact-user-part-{k}@192.0.2.10:{}>\r\n",
                5061 + k
            ),
            &format!("r{k}"),
        );
        c.handle_datagram(Millis(1), LocalId(0), phone.parse().unwrap(), &r);
        let mut n = 0;
        while let Some(t) = c.poll_transmit() {
            assert!(t.data.starts_with(b"SIP/2.0 200"));
            n += 1;
        }
        assert_eq!(n, 1);
    }
    // The query from a spoofed source: the 200 listing ten contacts is over 3× — not sent.
    let before = c.stats().overload.replies_too_large;
    let out = replies(&mut c, &query);
    assert!(
        out.is_empty(),
        "{:?}",
        out.iter().map(|(_, b)| b.len()).collect::<Vec<_>>()
    );
    assert_eq!(c.stats().overload.replies_too_large, before + 1);
}
