//! Issue 19 over the binary, on 127.0.60.30–49: what a stream connection's close means.
//!
//! * RFC 5626 §5.3 / §11.5: a phone registered with Outbound (`ob`) over TCP whose
//!   connection closed is a failed flow — an INVITE to it gets `430 Flow Failed` and the
//!   edge opens no connection toward it; a plain TCP binding is still connected out to.
//! * RFC 3261 §18.2.2: a response owed on a connection that closed goes to a new
//!   connection to the source IP and the Via's sent-by port.
//! * Issue 17's bans at accept: a banned source's connection is closed before it is read,
//!   counted (`sipedge_tcp_refused_banned_total`), while others are served.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use crate::common::{options, Client, WAIT};

/// Overload shedding off: on a loaded test machine a slow turn answers 503 (issue 17),
/// which is not what these tests are about.
const NO_SHED: &str = "\n[overload]\nenabled = false\n";
use crate::protect::{next_final, status, uas_reply};
use crate::tcp::{edge, invite, Tcp};

/// A REGISTER over `c`'s connection for `user`, `uri_params` in the Contact URI.
fn register_over(c: &Tcp, user: &str, uri_params: &str) -> Vec<u8> {
    let me = c.addr();
    format!(
        "REGISTER sip:edge.test SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bK-ob-{user};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@edge.test>;tag=f1\r\nTo: <sip:{user}@edge.test>\r\nCall-ID: ob-{user}\r\nCSeq: 1 REGISTER\r\nSupported: outbound, path\r\nContact: <sip:{user}@{me};transport=tcp{uri_params}>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-00000000{user}>\"\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn an_outbound_phone_whose_connection_closed_gets_430_and_no_connect() {
    let ip = "127.0.60.30";
    let e = edge("ob-closed", ip, 2, NO_SHED);
    let mut phone = Tcp::connect("127.0.60.31", e.sip);
    phone.send(&register_over(&phone, "obphone", ";ob"));
    assert_eq!(phone.status(), Some(200));
    drop(phone);
    e.await_metric("sipedge_stream_outbound_flows_failed_total", 1, WAIT);

    // From either shard (several callers, spread by the kernel): 430, nothing toward it.
    for i in 0..4 {
        let caller = Client::new("127.0.60.32");
        let id = format!("ob-closed-{i}");
        caller.send(
            e.sip,
            invite("UDP", caller.addr(), "obphone", &id).as_bytes(),
        );
        let fin = next_final(&caller);
        assert_eq!(status(&fin), Some(430), "{}", String::from_utf8_lossy(&fin));
    }
    assert_eq!(
        e.metric("sipedge_tcp_connects_total", None),
        0,
        "no connection toward a phone behind NAT"
    );
}

#[test]
fn a_plain_tcp_phone_whose_connection_closed_is_connected_out_to() {
    let ip = "127.0.60.33";
    let e = edge("plain-closed", ip, 2, NO_SHED);
    let mut phone = Tcp::connect("127.0.60.34", e.sip);
    phone.send(&register_over(&phone, "plainph", ""));
    assert_eq!(phone.status(), Some(200));
    drop(phone);
    e.await_metric("sipedge_stream_flows_closed_total", 1, WAIT);
    let caller = Client::new("127.0.60.35");
    caller.send(
        e.sip,
        invite("UDP", caller.addr(), "plainph", "plain-closed-1").as_bytes(),
    );
    // Not Outbound: the edge tries its address (nobody listens there any more).
    assert!(e.await_metric("sipedge_tcp_connects_total", 1, WAIT) >= 1);
    assert_eq!(
        e.metric("sipedge_stream_outbound_flows_failed_total", None),
        0
    );
}

/// A TCP caller hangs up its connection while the callee rings: the 200 OK reaches it on a
/// new connection the edge opens to its Via's sent-by port (RFC 3261 §18.2.2), not the
/// dead connection's port.
#[test]
fn a_final_response_after_the_callers_connection_closed_goes_to_its_sent_by_port() {
    let ip = "127.0.60.36";
    let e = edge("resp-reconnect", ip, 1, NO_SHED);
    let callee = Client::new("127.0.60.37");
    let me = format!("<sip:bob@{}>", callee.addr());
    callee.send(
        e.sip,
        &crate::common::register(&callee, "bob", Some(&me), Some(600), "rr-bob", 1),
    );
    assert_eq!(callee.status(WAIT), Some(200));
    // The caller's listening port, named in its Via.
    let listen_at: SocketAddr = "127.0.60.38:25300".parse().unwrap();
    let listener = std::net::TcpListener::bind(listen_at).unwrap();
    let mut caller = Tcp::connect("127.0.60.38", e.sip);
    let inv = invite("TCP", listen_at, "bob", "resp-reconnect-1").replace(";rport", "");
    caller.send(inv.as_bytes());
    let at_bob = callee.recv(WAIT).expect("the INVITE at bob");
    assert!(at_bob.starts_with(b"INVITE "));
    drop(caller);
    e.await_metric("sipedge_stream_flows_closed_total", 1, WAIT);
    callee.send(e.sip, &uas_reply(&at_bob, "200 OK", &me));
    // Bounded: before the fix the edge connected to the dead connection's port instead.
    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    let (s, from) = loop {
        match listener.accept() {
            Ok(x) => break x,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => panic!("no connection to the sent-by port within {WAIT:?}: {e}"),
        }
    };
    s.set_nonblocking(false).unwrap();
    assert_eq!(from.ip(), e.sip.ip());
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut back = Tcp::from_stream(s);
    let ok = back.recv(WAIT).expect("the 200 OK on the new connection");
    assert_eq!(status(&ok), Some(200), "{}", String::from_utf8_lossy(&ok));
}

#[test]
fn a_banned_source_is_closed_at_accept_and_counted() {
    let ip = "127.0.60.40";
    let extra = format!("\n[protect]\ntrusted = []\n{NO_SHED}");
    let e = edge("banned-accept", ip, 2, &extra);
    // A scanner's User-Agent over UDP bans its address (issue 17).
    let scanner = Client::new("127.0.60.41");
    let probe = String::from_utf8(options(e.sip, &scanner, 1))
        .unwrap()
        .replace("\r\n\r\n", "\r\nUser-Agent: friendly-scanner\r\n\r\n");
    scanner.send(e.sip, probe.as_bytes());
    e.await_metric("sipedge_protect_bans_scanner_total", 1, WAIT);

    let mut banned = Tcp::connect("127.0.60.41", e.sip);
    assert!(
        banned.closed_within(WAIT),
        "the banned source's connection is closed"
    );
    assert_eq!(
        e.await_metric("sipedge_tcp_refused_banned_total", 1, WAIT),
        1
    );
    assert_eq!(e.metric("sipedge_tcp_accepted_total", None), 0);
    // Another source is served.
    let mut clean = Tcp::connect("127.0.60.42", e.sip);
    clean.send(&register_over(&clean, "clean", ""));
    assert_eq!(clean.status(), Some(200));
}
