//! Issue 16 item 1 over the real binary (loopback 127.0.116.10–12): a call whose two ends
//! stop answering is sent in-dialog OPTIONS (`[dialogs] keepalive_secs = 1`), then — no
//! answer within 64·T1 (`[sip] t1_ms = 20`: 1.28 s) — a BYE with a Reason at each end, and
//! its channel (`[limits] channels = 1`) is free again for a new call.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::common::{register, Client, Edge};
use sipedge_msg::{HeaderName, Message};

fn invite(c: &Client, call: &str) -> Vec<u8> {
    let me = c.addr();
    format!(
        "INVITE sip:bob@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@edge.test>;tag=a-{call}\r\nTo: <sip:bob@edge.test>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{me}>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Bob's 200 to the INVITE `req` as it reached him.
fn ok_200(req: &[u8], bob: &Client) -> Vec<u8> {
    let m = Message::parse(req).unwrap();
    let mut s = String::from("SIP/2.0 200 OK\r\n");
    for v in m.header_values(HeaderName::Via) {
        s.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    for v in m.header_values(HeaderName::RecordRoute) {
        s.push_str(&format!("Record-Route: {}\r\n", String::from_utf8_lossy(v)));
    }
    let h = |n| String::from_utf8_lossy(m.header(n).unwrap()).into_owned();
    s.push_str(&format!(
        "From: {}\r\nTo: {};tag=b-1\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:bob@{}>\r\nContent-Length: 0\r\n\r\n",
        h(HeaderName::From),
        h(HeaderName::To),
        h(HeaderName::CallId),
        h(HeaderName::CSeq),
        bob.addr()
    ));
    s.into_bytes()
}

/// The first datagram whose start line begins with `start`, within `limit`.
fn wait_for(c: &Client, start: &str, limit: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(d) = c.recv(Duration::from_millis(100)) {
            if d.starts_with(start.as_bytes()) {
                return Some(d);
            }
        }
    }
    None
}

/// Every method the client received within `limit`, until a BYE (included).
fn until_bye(c: &Client, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(d) = c.recv(Duration::from_millis(100)) {
            let text = String::from_utf8_lossy(&d).into_owned();
            let first = text.split(' ').next().unwrap_or_default().to_owned();
            seen.push(first.clone());
            if first == "BYE" {
                assert!(
                    text.contains("\r\nReason: SIP;cause=408;"),
                    "a Reason: {text}"
                );
                return seen;
            }
        }
    }
    seen
}

#[test]
fn a_call_whose_ends_go_silent_is_ended_with_byes_and_its_channel_freed() {
    let mut e = Edge::start_with(
        "limits-keepalive",
        "127.0.116.10",
        25700,
        2,
        "auto",
        "\n[limits]\nchannels = 1\n\n[dialogs]\nkeepalive_secs = 1\n\n[sip]\nt1_ms = 20\n",
    );
    let bob = Client::new("127.0.116.11");
    let contact = format!("<sip:bob@{}>", bob.addr());
    bob.send(
        e.sip,
        &register(&bob, "bob", Some(&contact), Some(3600), "reg-ka", 1),
    );
    assert_eq!(bob.status(Duration::from_secs(2)), Some(200));
    let alice = Client::new("127.0.116.12");
    alice.send(e.sip, &invite(&alice, "ka-1"));
    let inv = wait_for(&bob, "INVITE ", Duration::from_secs(2)).expect("INVITE at bob");
    bob.send(e.sip, &ok_200(&inv, &bob));
    assert!(wait_for(&alice, "SIP/2.0 200", Duration::from_secs(2)).is_some());
    // Neither end answers anything from here on.
    let at_bob = until_bye(&bob, Duration::from_secs(8));
    let at_alice = until_bye(&alice, Duration::from_secs(2));
    assert!(at_bob.first().is_some_and(|m| m == "OPTIONS"), "{at_bob:?}");
    assert_eq!(at_bob.last().map(String::as_str), Some("BYE"), "{at_bob:?}");
    assert!(at_alice.contains(&"OPTIONS".to_owned()), "{at_alice:?}");
    assert_eq!(
        at_alice.last().map(String::as_str),
        Some("BYE"),
        "{at_alice:?}"
    );
    assert_eq!(
        e.await_metric(
            "sipedge_limits_channels_in_use{scope=\"server\"}",
            0,
            Duration::from_secs(3)
        ),
        0
    );
    alice.send(e.sip, &invite(&alice, "ka-2"));
    assert!(
        wait_for(&bob, "INVITE ", Duration::from_secs(2)).is_some(),
        "the next call is admitted"
    );
    assert!(e.terminate().success());
}
