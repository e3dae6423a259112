//! Issue 16 over the real binary (loopback 127.0.116.0/24): with `[limits] channels = 3`,
//! SIPp holds three calls open; the fourth INVITE gets 503 "Server at max cps/channels"
//! with Retry-After and the limit named, and once SIPp's BYEs went through a new call is
//! admitted again.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{wait_udp_bound, Client, Edge};
use sipedge_msg::{HeaderName, Message};

fn sipp_installed() -> bool {
    if Command::new("sipp").arg("-v").output().is_ok() {
        return true;
    }
    eprintln!("\n*** SKIPPED: `sipp` is not installed (apt-get install sip-tester) ***\n");
    false
}

fn sipp(name: &str, ip: &str, port: u16, args: &[&str], target: Option<&str>) -> Command {
    let mut c = Command::new("sipp");
    c.arg("-sf")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/sipp/{name}")))
        .args(["-s", "bob", "-i", ip, "-p", &port.to_string()])
        .args(["-nostdin", "-timeout_error", "-trace_err"])
        .args(args)
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(t) = target {
        c.arg(t);
    }
    c
}

fn invite(c: &Client, call: &str) -> Vec<u8> {
    let me = c.addr();
    format!(
        "INVITE sip:bob@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@edge.test>;tag=a-{call}\r\nTo: <sip:bob@edge.test>\r\nCall-ID: {call}\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{me}>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn server_channels(e: &Edge) -> u64 {
    e.metric("sipedge_limits_channels_in_use{scope=\"server\"}", None)
}

#[test]
fn sipp_the_n_plus_first_call_is_refused_and_accepted_again_after_a_bye() {
    if !sipp_installed() {
        return;
    }
    let mut e = Edge::start_with(
        "limits-sipp",
        "127.0.116.1",
        25600,
        2,
        "auto",
        "\n[limits]\nchannels = 3\n",
    );
    let target = e.sip.to_string();
    let reg = sipp(
        "relay_register.xml",
        "127.0.116.3",
        25680,
        &["-m", "1", "-timeout", "10s"],
        Some(&target),
    )
    .output()
    .unwrap();
    assert!(
        reg.status.success(),
        "{}",
        String::from_utf8_lossy(&reg.stderr)
    );
    let mut callee = sipp(
        "limits_uas.xml",
        "127.0.116.3",
        25680,
        &["-m", "3", "-timeout", "30s"],
        None,
    )
    .spawn()
    .unwrap();
    wait_udp_bound(
        "127.0.116.3:25680".parse().unwrap(),
        Duration::from_secs(10),
    );
    let caller = sipp(
        "limits_uac_hold.xml",
        "127.0.116.2",
        25670,
        &["-m", "3", "-r", "100", "-l", "3", "-timeout", "30s"],
        Some(&target),
    )
    .spawn()
    .unwrap();
    // Three calls up (held 3 s each by the caller's pause).
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_channels(&e) < 3 {
        assert!(Instant::now() < deadline, "three calls never came up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let alice = Client::new("127.0.116.4");
    alice.send(e.sip, &invite(&alice, "fourth"));
    let reply = alice.recv(Duration::from_secs(2)).expect("a reply");
    let m = Message::parse(&reply).unwrap();
    assert_eq!(m.status(), Some(503), "{}", String::from_utf8_lossy(&reply));
    assert!(reply.starts_with(b"SIP/2.0 503 Server at max cps/channels\r\n"));
    let retry: u32 = std::str::from_utf8(m.header(HeaderName::RetryAfter).unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert!((4..=6).contains(&retry));
    assert!(String::from_utf8_lossy(&reply).contains("limit: server_channels"));
    assert_eq!(
        e.metric(
            "sipedge_limits_refused_total{limit=\"server_channels\"}",
            None
        ),
        1
    );
    // SIPp hangs up its three calls: the channels come back.
    let out = caller.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "caller: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = callee.wait();
    assert_eq!(
        e.await_metric(
            "sipedge_limits_channels_in_use{scope=\"server\"}",
            0,
            Duration::from_secs(5)
        ),
        0
    );
    alice.send(e.sip, &invite(&alice, "fifth"));
    let reply = alice.recv(Duration::from_secs(2)).expect("a reply");
    assert_eq!(
        Message::parse(&reply).unwrap().status(),
        Some(100),
        "admitted: {}",
        String::from_utf8_lossy(&reply)
    );
    assert!(e.terminate().success());
}
