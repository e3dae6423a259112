//! Issue 17 item 6 over the binary (127.0.117.140–149, 127.0.44.10–19): under pressure the
//! eBPF socket filter sheds OPTIONS, REGISTER and new-INVITE floods before they are queued
//! — no 503, counted in `sipedge_overload_kernel_shed_total{class}` — while the BYE and
//! the re-INVITE of an established call still pass, are relayed and answered.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::common::{options, register, Client, Edge};
use crate::protect::{next_final, status, uas_reply, EstablishedCall};

const OPTIONS_SHED: &str = "sipedge_overload_kernel_shed_total{shard=\"0\",class=\"options\"";
const REGISTER_SHED: &str = "sipedge_overload_kernel_shed_total{shard=\"0\",class=\"register\"";
const INVITE_SHED: &str = "sipedge_overload_kernel_shed_total{shard=\"0\",class=\"invite\"";

/// Polls `name` until it reaches `want`, poking the shard with a CRLF keepalive from
/// `poker` (it passes the filter) so that an otherwise idle shard takes turns and publishes.
fn await_poked(edge: &Edge, poker: &Client, name: &str, want: u64, limit: Duration) -> u64 {
    let t0 = Instant::now();
    loop {
        let v = edge.metric(name, None);
        if v >= want || t0.elapsed() >= limit {
            return v;
        }
        poker.send(edge.sip, b"\r\n\r\n");
        std::thread::sleep(Duration::from_millis(30));
    }
}

#[test]
fn an_options_flood_is_shed_in_the_kernel_while_a_bye_is_answered() {
    let dir = crate::common::temp_dir("kshed");
    let file = dir.path().join("level");
    std::fs::write(&file, "0").unwrap();
    let edge = Edge::start_env(
        "kshed",
        "127.0.117.140",
        5060,
        1,
        "auto",
        "",
        &[("SIPEDGE_TEST_PRESSURE_FILE", &file)],
    );
    // bob registers, alice calls him, he answers: an established call.
    let call = EstablishedCall::establish(&edge, "kshed", "127.0.117.141", "127.0.117.142");

    // Pressure: level 1, the kernel sheds every OPTIONS/REGISTER.
    std::fs::write(&file, "1 1000").unwrap();
    let flood = Client::new("127.0.117.143");
    let poker = Client::new("127.0.117.144");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut cseq = 0;
    while edge.metric(OPTIONS_SHED, None) == 0 {
        assert!(Instant::now() < deadline, "no OPTIONS shed in the kernel");
        cseq += 1;
        flood.send(edge.sip, &options(edge.sip, &flood, cseq));
        poker.send(edge.sip, b"\r\n\r\n");
        std::thread::sleep(Duration::from_millis(20));
    }
    while flood.recv(Duration::from_millis(300)).is_some() {} // the 503s of before
    let before = edge.metric(OPTIONS_SHED, None);
    for _ in 0..300 {
        cseq += 1;
        flood.send(edge.sip, &options(edge.sip, &flood, cseq));
    }
    for i in 0..5 {
        flood.send(
            edge.sip,
            &register(&flood, "eve", None, Some(600), "kshed-eve", 10 + i),
        );
    }
    assert!(
        flood.recv(Duration::from_millis(500)).is_none(),
        "shed in the kernel: no 503, nothing queued"
    );

    // The BYE of the established call passes, is relayed and answered.
    call.hang_up(&edge);

    let limit = Duration::from_secs(3);
    let shed = await_poked(&edge, &poker, OPTIONS_SHED, before + 300, limit);
    assert_eq!(
        shed,
        before + 300,
        "every OPTIONS of the flood shed in the kernel"
    );
    assert_eq!(await_poked(&edge, &poker, REGISTER_SHED, 5, limit), 5);
    assert_eq!(
        edge.metric("sipedge_overload_kernel_shed_permille", None),
        1000
    );
    // Shed datagrams are the filter's drops, not a full queue's: no pressure from them.
    assert_eq!(edge.metric("sipedge_kernel_drops_total", None), 0);
}

/// A new INVITE to an unregistered user from `from` (no To tag).
fn new_invite(from: &Client, n: u32) -> Vec<u8> {
    let me = from.addr();
    format!(
        "INVITE sip:nobody@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-kfl{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:eve@edge.test>;tag=eve{n}\r\nTo: <sip:nobody@edge.test>\r\nCall-ID: kfl-{n}\r\nCSeq: 1 INVITE\r\nContact: <sip:eve@{me}>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The INVITE flood of issue 17's Must-reach: while the kernel sheds, new INVITEs are
/// dropped by the socket filter (no 503, no queue, counted `class="invite"`), while the
/// re-INVITE of an established call — its To carries bob's tag (RFC 3261 §12.2) — passes,
/// is relayed to bob and his 200 reaches alice.
#[test]
fn a_new_invite_flood_is_shed_in_the_kernel_while_a_re_invite_is_relayed() {
    let dir = crate::common::temp_dir("kshed-inv");
    let file = dir.path().join("level");
    std::fs::write(&file, "0").unwrap();
    let edge = Edge::start_env(
        "kshed-inv",
        "127.0.44.10",
        5060,
        1,
        "auto",
        "",
        &[("SIPEDGE_TEST_PRESSURE_FILE", &file)],
    );
    let call = EstablishedCall::establish(&edge, "kshedinv", "127.0.44.11", "127.0.44.12");

    std::fs::write(&file, "1 1000").unwrap();
    let flood = Client::new("127.0.44.13");
    let poker = Client::new("127.0.44.14");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    while edge.metric(INVITE_SHED, None) == 0 {
        assert!(
            Instant::now() < deadline,
            "no new INVITE shed in the kernel"
        );
        n += 1;
        flood.send(edge.sip, &new_invite(&flood, n));
        poker.send(edge.sip, b"\r\n\r\n");
        std::thread::sleep(Duration::from_millis(20));
    }
    while flood.recv(Duration::from_millis(300)).is_some() {} // the answers of before
    let before = edge.metric(INVITE_SHED, None);
    for _ in 0..300 {
        n += 1;
        flood.send(edge.sip, &new_invite(&flood, n));
    }
    assert!(
        flood.recv(Duration::from_millis(500)).is_none(),
        "shed in the kernel: no 503, no 100 Trying, nothing queued"
    );

    // alice's re-INVITE passes the filter and is relayed; bob's 200 reaches her.
    call.alice.send(
        edge.sip,
        call.in_dialog("INVITE", 2, "reinvite1").as_bytes(),
    );
    let at_bob = call
        .bob
        .recv(Duration::from_secs(3))
        .expect("the re-INVITE relayed to bob");
    assert!(at_bob.starts_with(b"INVITE "));
    call.bob
        .send(edge.sip, &uas_reply(&at_bob, "200 OK", &call.contact));
    assert_eq!(status(&next_final(&call.alice)), Some(200));

    let limit = Duration::from_secs(3);
    assert_eq!(
        await_poked(&edge, &poker, INVITE_SHED, before + 300, limit),
        before + 300,
        "every new INVITE of the flood shed in the kernel"
    );
    assert_eq!(edge.metric("sipedge_kernel_drops_total", None), 0);
}
