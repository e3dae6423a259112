//! The real binary on loopback: OPTIONS from many source ports reach every shard, broken
//! input gets its documented reply (or none) and never stops the edge, with both I/O engines.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::{options, Client, Edge, WAIT};
use sipedge_msg::Message;

fn options_from_many_ports_reach_every_shard(edge: &Edge, ip: &str) {
    let clients: Vec<Client> = (0..64).map(|_| Client::new(ip)).collect();
    for (i, c) in clients.iter().enumerate() {
        c.send(edge.sip, &options(edge.sip, c, i as u32 + 1));
    }
    for (i, c) in clients.iter().enumerate() {
        let reply = c
            .recv(WAIT)
            .unwrap_or_else(|| panic!("client {i} got no reply"));
        let m = Message::parse(&reply).unwrap();
        m.validate().unwrap();
        assert_eq!(m.status(), Some(200));
        assert_eq!(
            m.call_id().unwrap(),
            format!("opt-{}-{}", c.addr().port(), i + 1).as_bytes()
        );
        assert!(m.header(sipedge_msg::HeaderName::Allow).is_some());
    }
    // SO_REUSEPORT spread 64 source ports over both shards, and each answered its own.
    for shard in 0..2 {
        let n = edge.metric("sipedge_requests_total", Some(shard));
        assert!(n > 0, "shard {shard} answered nothing:\n{}", edge.metrics());
    }
}

fn torture_vectors_get_their_reply(edge: &Edge, ip: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(root.join("manifest.toml")).unwrap()).unwrap();
    let mut answered = 0;
    for v in manifest["vector"].as_array().unwrap() {
        if v["outcome"].as_str() != Some("invalid")
            || v.get("liberal_ok")
                .is_some_and(|b| b.as_bool() == Some(true))
        {
            continue;
        }
        let bytes = std::fs::read(root.join(v["file"].as_str().unwrap())).unwrap();
        // RFC 3261 §18.2.2: without rport the reply goes to the source IP at the Via's port
        // (5060 when absent); with an unreadable Via, to the source port.
        let via_port = Message::parse(&bytes)
            .ok()
            .and_then(|m| m.top_via().ok().map(|v| (v.port(), v.rport())))
            .map_or(0, |(port, rport)| match rport {
                sipedge_msg::RPort::Absent => port.unwrap_or(5060),
                _ => 0,
            });
        let c = Client::bind(ip, via_port);
        c.send(edge.sip, &bytes);
        let file = v["file"].as_str().unwrap();
        match v["reply"].as_integer() {
            Some(code) => {
                let got = c.status(WAIT).unwrap_or_else(|| panic!("{file}: no reply"));
                let ok = got as i64 == code || (file.ends_with("mismatch02.sip") && got == 400);
                assert!(ok, "{file}: expected {code}, got {got}");
                answered += 1;
            }
            None => assert!(
                c.recv(Duration::from_millis(300)).is_none(),
                "{file}: expected no reply"
            ),
        }
    }
    assert!(answered >= 10);
    // Still alive and answering.
    let c = Client::new(ip);
    c.send(edge.sip, &options(edge.sip, &c, 1));
    assert_eq!(c.status(WAIT), Some(200));
}

fn padded_options(edge: &Edge, c: &Client, cseq: u32, total: usize) -> Vec<u8> {
    let mut m = options(edge.sip, c, cseq);
    m.truncate(m.len() - 2); // drop the empty line
    let pad = total - m.len() - "X-Pad: \r\n\r\n".len();
    m.extend_from_slice(format!("X-Pad: {}\r\n\r\n", "a".repeat(pad)).as_bytes());
    assert_eq!(m.len(), total);
    m
}

fn garbage_and_oversized_are_dropped_and_counted(edge: &Edge, ip: &str) {
    let c = Client::new(ip);
    let before = edge.metric("sipedge_parse_errors_total", None);
    c.send(edge.sip, b"\x00\x01\x02\x03 this is not SIP at all");
    c.send(edge.sip, &[0xffu8; 1200]);
    // The test config sets max_message_bytes = 4096.
    c.send(edge.sip, &padded_options(edge, &c, 7, 5000));
    c.send(edge.sip, &padded_options(edge, &c, 8, 4000));
    let mut statuses = Vec::new();
    while let Some(s) = c.status(Duration::from_millis(500)) {
        statuses.push(s);
    }
    assert_eq!(
        statuses,
        vec![200],
        "only the 4000-byte OPTIONS is answered"
    );
    let after = edge.metric("sipedge_parse_errors_total", None);
    assert_eq!(
        after,
        before + 3,
        "garbage and the oversized datagram are counted"
    );
    assert!(edge
        .metrics()
        .lines()
        .any(|l| l.contains("kind=\"message_too_large\"") && l.ends_with(" 1")));
    c.send(edge.sip, &options(edge.sip, &c, 9));
    assert_eq!(c.status(WAIT), Some(200));
}

fn scenario(tag: &str, ip: &str, port: u16, io: &str) {
    let mut edge = Edge::start(tag, ip, port, 2, io);
    let m = edge.metrics();
    let engine = if io == "mmsg" { "mmsg" } else { "io_uring" };
    assert!(
        m.contains(&format!("engine=\"{engine}\"")) || io == "auto",
        "{m}"
    );
    options_from_many_ports_reach_every_shard(&edge, ip);
    torture_vectors_get_their_reply(&edge, ip);
    garbage_and_oversized_are_dropped_and_counted(&edge, ip);
    let status = edge.terminate();
    assert!(
        status.success(),
        "SIGTERM must stop sipedge cleanly, got {status}"
    );
}

#[test]
fn udp_edge_with_auto_engine() {
    scenario("auto", "127.0.10.1", 25060, "auto");
}

#[test]
fn udp_edge_with_mmsg_engine() {
    scenario("mmsg", "127.0.10.2", 25060, "mmsg");
}

#[test]
fn udp_edge_on_ipv6() {
    let mut edge = Edge::start("v6", "[::1]", 25080, 1, "auto");
    let c = Client::new("[::1]");
    c.send(edge.sip, &options(edge.sip, &c, 1));
    let reply = c.recv(WAIT).expect("no reply over IPv6");
    let m = Message::parse(&reply).unwrap();
    m.validate().unwrap();
    assert_eq!(m.status(), Some(200));
    let via = m.top_via().unwrap();
    assert_eq!(via.host_unbracketed(), b"::1");
    assert_eq!(via.rport(), sipedge_msg::RPort::Port(c.addr().port()));
    assert!(edge.terminate().success());
}
