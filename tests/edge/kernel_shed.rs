//! Issue 17 item 6 over the binary (127.0.117.140–149): under pressure the eBPF socket
//! filter sheds OPTIONS and REGISTER floods before they are queued — no 503, counted in
//! `sipedge_overload_kernel_shed_total{class}` — while the BYE of an established call still
//! passes, is relayed and answered.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::common::{options, register, Client, Edge};
use crate::protect::EstablishedCall;

const OPTIONS_SHED: &str = "sipedge_overload_kernel_shed_total{shard=\"0\",class=\"options\"";
const REGISTER_SHED: &str = "sipedge_overload_kernel_shed_total{shard=\"0\",class=\"register\"";

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
