//! Issue 17, "keep the queue short so what is admitted is answered quickly", over the
//! binary (127.0.44.10–14): a backlog of new REGISTERs that waited past `[overload]
//! max_queue_delay_ms` in the receive queue (the edge stopped with SIGSTOP while they
//! came, as a shard throttled or preempted is) is dropped unanswered — not served late —
//! counted in `sipedge_overload_stale_dropped_total`, while the BYE of an established call
//! queued behind it is relayed and answered, and a request sent afterwards is answered.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::{register, Client, Edge, WAIT};
use crate::protect::{next_final, status, uas_reply, EstablishedCall};

const STALE: &str = "sipedge_overload_stale_dropped_total";
/// New REGISTERs in the backlog: ~0.4 MiB of a 4 MiB receive buffer (none lost to it).
const BACKLOG: u32 = 300;

fn signal(edge: &Edge, sig: &str) {
    let pid = edge.child.as_ref().unwrap().id();
    let st = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {pid}");
}

#[test]
fn a_late_backlog_is_dropped_while_the_bye_behind_it_is_answered() {
    let edge = Edge::start("stale", "127.0.44.10", 5060, 1, "auto");
    let call = EstablishedCall::establish(&edge, "stale", "127.0.44.11", "127.0.44.12");
    let flood = Client::new("127.0.44.13");

    signal(&edge, "-STOP");
    for i in 0..BACKLOG {
        let aor = format!("late{i}");
        flood.send(
            edge.sip,
            &register(&flood, &aor, None, Some(600), &format!("stale-{i}"), 1),
        );
    }
    call.alice
        .send(edge.sip, call.in_dialog("BYE", 2, "bye1").as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    signal(&edge, "-CONT");

    // The BYE, queued last, is relayed and answered.
    let bye = call
        .bob
        .recv(Duration::from_secs(3))
        .expect("the BYE relayed to bob");
    assert!(bye.starts_with(b"BYE "));
    call.bob
        .send(edge.sip, &uas_reply(&bye, "200 OK", &call.contact));
    assert_eq!(
        status(&next_final(&call.alice)),
        Some(200),
        "the BYE answered"
    );

    // The backlog: at most the first turn's measured batch was served (late), the rest
    // dropped, counted.
    let mut answered = 0;
    while flood.recv(Duration::from_millis(300)).is_some() {
        answered += 1;
    }
    assert!(
        answered < 64,
        "{answered} of {BACKLOG} late REGISTERs answered late"
    );
    let stale = edge.await_metric(STALE, u64::from(BACKLOG) - 64, Duration::from_secs(2));
    assert!(
        stale + answered >= u64::from(BACKLOG) - 1 && stale <= u64::from(BACKLOG),
        "stale {stale}, answered {answered}"
    );

    // A fresh request is served.
    let fresh = Client::new("127.0.44.14");
    fresh.send(
        edge.sip,
        &register(&fresh, "fresh", None, Some(600), "stale-fresh", 1),
    );
    assert!(fresh.status(WAIT).is_some(), "a fresh REGISTER is answered");
    assert_eq!(edge.metric(STALE, None), stale);
}
