//! Issue 13, process level: the node secret that keys our dialog tokens — `--check`
//! refuses a malformed `[server] secret`, and with persistence on a generated one is kept
//! (0600) so an established dialog's in-dialog requests still route after a restart.
//! Loopback 127.0.132.0/24 only.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use crate::common::{register, temp_dir, Client, Edge};
use sipedge_msg::{HeaderName, Message};

const IP: &str = "127.0.132.10";

#[test]
fn check_refuses_a_malformed_secret_naming_the_key() {
    let dir = temp_dir("relay-secret-check");
    let path = dir.path().join("bad.toml");
    for bad in ["abc", &"zz".repeat(32), &"0".repeat(66)] {
        std::fs::write(&path, format!("[server]\nsecret = \"{bad}\"\n")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_sipedge"))
            .args(["--check", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{bad}: accepted");
        assert!(
            text.contains("bad.toml") && text.contains("server.secret"),
            "{text}"
        );
    }
    std::fs::write(
        &path,
        format!("[server]\nsecret = \"{}\"\n", "aB".repeat(32)),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sipedge"))
        .args(["--check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn invite(me: std::net::SocketAddr, call: &str) -> Vec<u8> {
    format!(
        "INVITE sip:bob@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@elsewhere.example>;tag=a-{call}\r\nTo: <sip:bob@edge.test>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{me}>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The 200 a UAS sends for `req`: every Via and Record-Route copied, our tag on To.
fn ok_for(req: &Message<'_>, tag: &str) -> Vec<u8> {
    let mut s = String::from("SIP/2.0 200 OK\r\n");
    for v in req.header_values(HeaderName::Via) {
        s.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    for v in req.header_values(HeaderName::RecordRoute) {
        s.push_str(&format!("Record-Route: {}\r\n", String::from_utf8_lossy(v)));
    }
    let h = |n| String::from_utf8_lossy(req.header(n).unwrap()).into_owned();
    s.push_str(&format!(
        "From: {}\r\nTo: {};tag={tag}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        h(HeaderName::From),
        h(HeaderName::To),
        h(HeaderName::CallId),
        h(HeaderName::CSeq)
    ));
    s.into_bytes()
}

/// Receives until a request (skipping responses such as 100 Trying).
fn next_request(c: &Client) -> Vec<u8> {
    loop {
        let b = c.recv(Duration::from_secs(5)).expect("a request");
        if Message::parse(&b).unwrap().is_request() {
            return b;
        }
    }
}

fn next_final(c: &Client) -> Vec<u8> {
    loop {
        let b = c.recv(Duration::from_secs(5)).expect("a response");
        if Message::parse(&b)
            .unwrap()
            .status()
            .is_some_and(|s| s >= 200)
        {
            return b;
        }
    }
}

#[test]
fn a_dialog_routes_after_a_restart_with_persistence() {
    let state = temp_dir("relay-secret-state");
    let extra = format!(
        "\n[registrar.persistence]\npath = \"{}\"\nsync = \"every\"\n",
        state.path().join("journal").display()
    );
    let port = 25600;
    let mut edge = Edge::start_with("relay-secret-a", IP, port, 2, "auto", &extra);
    let secret_file = state.path().join("journal").join("node_secret");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&secret_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the secret file is private");
    let bob = Client::new("127.0.132.11");
    let alice = Client::new("127.0.132.12");
    let contact = format!("<sip:bob@{}>", bob.addr());
    bob.send(
        edge.sip,
        &register(&bob, "bob", Some(&contact), Some(3600), "reg-sec", 1),
    );
    assert_eq!(bob.status(Duration::from_secs(5)), Some(200));
    alice.send(edge.sip, &invite(alice.addr(), "sec1"));
    let inv = next_request(&bob);
    bob.send(edge.sip, &ok_for(&Message::parse(&inv).unwrap(), "b1"));
    let ok = next_final(&alice);
    let rr = String::from_utf8_lossy(
        Message::parse(&ok)
            .unwrap()
            .header(HeaderName::RecordRoute)
            .unwrap(),
    )
    .into_owned();
    assert!(edge.terminate().success());

    let mut edge = Edge::start_with("relay-secret-b", IP, port, 2, "auto", &extra);
    let me = alice.addr();
    let bye = format!(
        "BYE sip:bob@{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-secbye;rport\r\nMax-Forwards: 70\r\nRoute: {rr}\r\nFrom: <sip:alice@elsewhere.example>;tag=a-sec1\r\nTo: <sip:bob@edge.test>;tag=b1\r\nCall-ID: sec1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        bob.addr()
    );
    alice.send(edge.sip, bye.as_bytes());
    let got = next_request(&bob);
    let m = Message::parse(&got).unwrap();
    assert_eq!(
        m.method().map(|m| m.as_bytes().to_vec()),
        Some(b"BYE".to_vec())
    );
    assert!(edge.terminate().success());
}
