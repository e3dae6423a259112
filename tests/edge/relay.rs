//! The relay end to end (issue 7): the real binary on loopback (127.0.132.0/24), driven by
//! SIPp (callers and registered callees) and by the Rust test client.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::common::{register, wait_udp_bound, Client, Edge};
use sipedge_msg::{HeaderName, Message};

pub(crate) fn sipp_installed() -> bool {
    if Command::new("sipp").arg("-v").output().is_ok() {
        return true;
    }
    eprintln!("\n*** SKIPPED: `sipp` is not installed (apt-get install sip-tester) ***\n");
    false
}

pub(crate) fn scenario(name: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/sipp/{name}"))
}

/// `sipp -sf NAME -s SERVICE -i IP -p PORT ARGS… [TARGET]`, bounded by `-timeout`.
pub(crate) fn sipp(
    name: &str,
    service: &str,
    ip: &str,
    port: u16,
    args: &[&str],
    target: Option<SocketAddr>,
) -> Command {
    let mut c = Command::new("sipp");
    c.arg("-sf")
        .arg(scenario(name))
        .args(["-s", service, "-i", ip, "-p", &port.to_string()])
        .args(["-nostdin", "-timeout_error", "-trace_err"])
        .args(args)
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(t) = target {
        c.arg(t.to_string());
    }
    c
}

pub(crate) fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("call") || l.contains("Call"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Registers `service`@edge.test at `ip:port` from that very socket (SIPp), so the
/// binding's source is its Contact.
pub(crate) fn sipp_register(edge: &Edge, service: &str, ip: &str, port: u16) {
    let out = sipp(
        "relay_register.xml",
        service,
        ip,
        port,
        &["-m", "1", "-timeout", "10s"],
        Some(edge.sip),
    )
    .output()
    .unwrap();
    check("sipp register", &out);
}

/// A SIPp process killed when dropped (a failed test leaves no SIPp holding its port).
pub(crate) struct Sipp(Option<Child>);

impl Sipp {
    pub(crate) fn wait(mut self) -> std::io::Result<Output> {
        self.0.take().expect("not waited yet").wait_with_output()
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A SIPp callee: registered first, then serving `calls` calls of `name`.
pub(crate) fn sipp_callee(
    edge: &Edge,
    name: &str,
    service: &str,
    ip: &str,
    port: u16,
    calls: usize,
    timeout: &str,
) -> Sipp {
    sipp_register(edge, service, ip, port);
    let args = ["-m", &calls.to_string(), "-timeout", timeout];
    let callee = Sipp(Some(
        sipp(name, service, ip, port, &args, None).spawn().unwrap(),
    ));
    // Ready once its socket is bound (the caller's first INVITE must not find it closed).
    let at = format!("{ip}:{port}").parse().unwrap();
    wait_udp_bound(at, Duration::from_secs(10));
    callee
}

fn edge(tag: &str, port: u16) -> Edge {
    Edge::start(tag, "127.0.132.1", port, 2, "auto")
}

/// 1000 calls from a SIPp caller to the AoR of a registered SIPp callee, through a
/// two-shard edge: INVITE, 180, 200, ACK and BYE along the Record-Route (the callee checks
/// that the BYE carries our Via). SIPp exits 0 only when every call succeeded.
#[test]
fn sipp_1000_calls_to_a_registered_user_complete() {
    if !sipp_installed() {
        return;
    }
    let mut e = edge("relay-1000", 25100);
    let callee = sipp_callee(
        &e,
        "relay_uas.xml",
        "bob",
        "127.0.132.3",
        25180,
        1000,
        "60s",
    );
    let caller = sipp(
        "relay_uac.xml",
        "bob",
        "127.0.132.2",
        25170,
        &["-m", "1000", "-r", "200", "-l", "300", "-timeout", "60s"],
        Some(e.sip),
    )
    .output()
    .unwrap();
    check("sipp caller", &caller);
    check("sipp callee", &callee.wait().unwrap());
    // Every call's ACK (for the 2xx) went through the edge end to end.
    assert!(e.metric("sipedge_relay_acks_forwarded_total", None) >= 1000);
    assert_eq!(
        e.metric("sipedge_relay_transactions_total", None),
        2000,
        "INVITE + BYE per call"
    );
    assert!(e.terminate().success());
}

/// CANCEL while the phone rings: the caller gets 200 for the CANCEL and 487 for the
/// INVITE; the phone gets the CANCEL, answers 200 and 487, and gets our ACK.
#[test]
fn sipp_cancel_while_ringing_ends_both_sides() {
    if !sipp_installed() {
        return;
    }
    let mut e = edge("relay-cancel", 25200);
    let callee = sipp_callee(
        &e,
        "relay_uas_cancel.xml",
        "carol",
        "127.0.132.3",
        25280,
        20,
        "30s",
    );
    let caller = sipp(
        "relay_uac_cancel.xml",
        "carol",
        "127.0.132.2",
        25270,
        &["-m", "20", "-r", "50", "-timeout", "30s"],
        Some(e.sip),
    )
    .output()
    .unwrap();
    check("sipp caller", &caller);
    check("sipp callee", &callee.wait().unwrap());
    assert!(e.terminate().success());
}

/// A user registered from two phones: both ring, the one that answers gets the call (and
/// the BYE), the other is cancelled (200 + 487, our ACK).
#[test]
fn sipp_two_phones_ring_and_the_answering_one_gets_the_call() {
    if !sipp_installed() {
        return;
    }
    let mut e = edge("relay-fork", 25300);
    let answers = sipp_callee(&e, "relay_uas.xml", "duo", "127.0.132.3", 25380, 5, "30s");
    let rings = sipp_callee(
        &e,
        "relay_uas_cancel.xml",
        "duo",
        "127.0.132.4",
        25380,
        5,
        "30s",
    );
    let caller = sipp(
        "relay_uac.xml",
        "duo",
        "127.0.132.2",
        25370,
        &["-m", "5", "-r", "10", "-timeout", "30s"],
        Some(e.sip),
    )
    .output()
    .unwrap();
    check("sipp caller", &caller);
    check("phone that answers", &answers.wait().unwrap());
    check("phone that is cancelled", &rings.wait().unwrap());
    assert!(e.terminate().success());
}

fn request(
    method: &str,
    ruri: &str,
    from: &Client,
    call: &str,
    extra: &str,
    body: &str,
) -> Vec<u8> {
    let me = from.addr();
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@edge.test>;tag=a-{call}\r\nTo: <{ruri}>\r\nCall-ID: {call}\r\nCSeq: 1 {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn next_status(c: &Client) -> u16 {
    let bytes = c.recv(Duration::from_secs(5)).expect("a reply");
    Message::parse(&bytes).unwrap().status().unwrap()
}

/// An unregistered callee: one stateless 404 and no 100 Trying before it (issue 13: a
/// refusal is one datagram, the same for unknown and unregistered users); the ACK is
/// absorbed and nothing is retransmitted. A foreign domain: 403, not an open relay.
#[test]
fn unregistered_callee_and_foreign_domain() {
    let mut e = edge("relay-404", 25400);
    let alice = Client::new("127.0.132.2");
    alice.send(
        e.sip,
        &request("INVITE", "sip:nobody@edge.test", &alice, "r404", "", ""),
    );
    assert_eq!(next_status(&alice), 404);
    alice.send(
        e.sip,
        &request("ACK", "sip:nobody@edge.test", &alice, "r404", "", ""),
    );
    assert_eq!(
        alice.recv(Duration::from_millis(700)),
        None,
        "ACK absorbed, no 404 again (and no timer G)"
    );
    alice.send(
        e.sip,
        &request("INVITE", "sip:x@elsewhere.example", &alice, "r403", "", ""),
    );
    assert_eq!(next_status(&alice), 403);
    assert!(e.terminate().success());
}

/// MESSAGE (RFC 3428) to a registered user is delivered to the phone and its 200 comes back.
#[test]
fn message_to_a_registered_user_is_delivered() {
    let mut e = edge("relay-message", 25500);
    let bob = Client::new("127.0.132.3");
    let contact = format!("<sip:bob@{}>", bob.addr());
    bob.send(
        e.sip,
        &register(&bob, "bob", Some(&contact), Some(600), "reg-msg", 1),
    );
    assert_eq!(next_status(&bob), 200);
    let alice = Client::new("127.0.132.2");
    alice.send(
        e.sip,
        &request(
            "MESSAGE",
            "sip:bob@edge.test",
            &alice,
            "m1",
            "Content-Type: text/plain\r\n",
            "hello bob",
        ),
    );
    let got = bob
        .recv(Duration::from_secs(5))
        .expect("the MESSAGE reaches bob");
    let m = Message::parse(&got).unwrap();
    assert_eq!(
        m.method().map(|m| m.as_bytes().to_vec()),
        Some(b"MESSAGE".to_vec())
    );
    assert_eq!(m.body(), b"hello bob");
    assert_eq!(
        m.request_uri_raw().unwrap(),
        format!("sip:bob@{}", bob.addr()).as_bytes()
    );
    // bob answers 200: copy the Vias etc.
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for v in m.header_values(HeaderName::Via) {
        ok.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    for h in [
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
    ] {
        ok.push_str(&format!(
            "{}: {}\r\n",
            h.as_str(),
            String::from_utf8_lossy(m.header(h).unwrap())
        ));
    }
    ok.push_str("Content-Length: 0\r\n\r\n");
    bob.send(e.sip, ok.as_bytes());
    assert_eq!(next_status(&alice), 200);
    assert!(e.terminate().success());
}
