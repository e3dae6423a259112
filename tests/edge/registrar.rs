//! The registrar over the real binary on loopback: phones register from many source ports
//! (so REGISTERs land on both shards, and half of them on the shard that does not own the
//! AoR), a query from another port lists the contact, an unregister empties it. Then the
//! SIPp register scenario, when `sipp` is installed.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use crate::common::{Client, Edge, WAIT};
use sipedge_msg::{HeaderName, Message};

const IP: &str = "127.0.50.1";

fn register(
    edge: &Edge,
    c: &Client,
    user: &str,
    contact: &str,
    expires: u32,
    cseq: u32,
) -> Vec<u8> {
    let me = c.addr();
    let contact_line = if contact.is_empty() {
        String::new()
    } else {
        format!("Contact: <{contact}>\r\n")
    };
    format!(
        "REGISTER sip:{ip} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{user}-{cseq}-{port};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@edge.test>;tag={port}\r\nTo: <sip:{user}@edge.test>\r\nCall-ID: reg-{user}-{port}\r\nCSeq: {cseq} REGISTER\r\n{contact_line}Expires: {expires}\r\nUser-Agent: sipedge-test\r\nContent-Length: 0\r\n\r\n",
        ip = edge.sip.ip(),
        port = me.port()
    )
    .into_bytes()
}

/// (status, Contact values) of the next reply.
fn reply(c: &Client) -> (u16, Vec<String>) {
    let bytes = c.recv(WAIT).expect("a reply");
    let m = Message::parse(&bytes).unwrap();
    m.validate().unwrap();
    let contacts = m
        .header_items(HeaderName::Contact)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    (m.status().unwrap(), contacts)
}

#[test]
fn register_then_query_over_the_binary() {
    let mut edge = Edge::start("registrar", IP, 25060, 2, "auto");
    let phones: Vec<Client> = (0..16).map(|_| Client::new(IP)).collect();
    for (i, c) in phones.iter().enumerate() {
        let contact = format!("sip:u{i}@{}", c.addr());
        c.send(
            edge.sip,
            &register(&edge, c, &format!("u{i}"), &contact, 600, 1),
        );
    }
    for (i, c) in phones.iter().enumerate() {
        let (status, contacts) = reply(c);
        assert_eq!(status, 200, "phone {i}");
        assert_eq!(
            contacts,
            vec![format!("<sip:u{i}@{}>;expires=600", c.addr())]
        );
    }
    // Queries from other ports (other shards, other owners) see the same bindings.
    let asker = Client::new(IP);
    for (i, c) in phones.iter().enumerate() {
        asker.send(
            edge.sip,
            &register(&edge, &asker, &format!("u{i}"), "", 600, 1),
        );
        let (status, contacts) = reply(&asker);
        assert_eq!(status, 200);
        assert_eq!(contacts.len(), 1, "u{i}: {contacts:?}");
        assert!(contacts[0].starts_with(&format!("<sip:u{i}@{}>;expires=", c.addr())));
    }
    // Half the AoRs belong to the shard the REGISTER did not land on.
    assert!(
        edge.metric("sipedge_mesh_handoffs_total", None) > 0,
        "no REGISTER crossed shards:\n{}",
        edge.metrics()
    );
    // Unregister, then the query lists nothing.
    let c = &phones[3];
    c.send(
        edge.sip,
        &register(&edge, c, "u3", &format!("sip:u3@{}", c.addr()), 0, 2),
    );
    assert_eq!(reply(c), (200, vec![]));
    asker.send(edge.sip, &register(&edge, &asker, "u3", "", 600, 2));
    assert_eq!(reply(&asker), (200, vec![]));
    // Too brief: 423.
    c.send(
        edge.sip,
        &register(&edge, c, "u3", &format!("sip:u3@{}", c.addr()), 10, 3),
    );
    assert_eq!(reply(c).0, 423);
    assert!(edge.terminate().success());
}

/// The SIPp register scenario (`tests/sipp/register.xml`): 200 REGISTERs from SIPp's
/// socket, each must get its 200 OK (SIPp exits 0 only if every call succeeded).
#[test]
fn sipp_register_scenario() {
    let Ok(version) = Command::new("sipp").arg("-v").output() else {
        eprintln!(
            "\n*** SKIPPED sipp_register_scenario: `sipp` is not installed (apt-get install sip-tester) ***\n"
        );
        return;
    };
    let _ = version;
    let mut edge = Edge::start("sipp-register", "127.0.50.2", 25060, 2, "auto");
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/register.xml");
    let out = Command::new("sipp")
        .args(["-sf"])
        .arg(&scenario)
        .args([
            "-i",
            "127.0.50.3",
            "-p",
            "25070",
            "-m",
            "200",
            "-r",
            "200",
            "-l",
            "50",
            "-timeout",
            "20s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "127.0.50.2:25060",
        ])
        .current_dir(std::env::temp_dir())
        .output()
        .expect("sipp runs");
    assert!(
        out.status.success(),
        "sipp failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every REGISTER made or refreshed a binding the edge still holds: query one.
    let c = Client::new("127.0.50.3");
    c.send(edge.sip, &register(&edge, &c, "sipp5", "", 600, 1));
    let (status, contacts) = reply(&c);
    assert_eq!(status, 200);
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert!(edge.terminate().success());
}

/// `[registrar] prefault` (issue 17's flood rig): the storage of the expected bindings is
/// resident from the start, so registering them adds (past the first transient buffers)
/// no RSS; without it RSS grows with every binding.
#[test]
fn prefault_makes_the_expected_bindings_resident_at_start() {
    const EXPECTED: u64 = 100_000;
    const BATCH: u32 = 25_000;
    let table = |prefault: bool| {
        format!("\n[registrar]\npersistence = false\nexpected_bindings = {EXPECTED}\nprefault = {prefault}\n")
    };
    let on = Edge::start_with("prefault-on", "127.0.50.20", 5060, 1, "auto", &table(true));
    let off = Edge::start_with(
        "prefault-off",
        "127.0.50.21",
        5060,
        1,
        "auto",
        &table(false),
    );
    let (on0, off0) = (on.rss_kib(), off.rss_kib());
    // Records (72 B) and strings (128 B) per expected binding, resident at start.
    assert!(
        on0 >= off0 + EXPECTED * 200 * 9 / 10 / 1024,
        "RSS at start: {on0} KiB with prefault, {off0} KiB without"
    );
    // RSS (KiB) after `BATCH` more new bindings, from `first` on.
    let grow = |edge: &Edge, c: &Client, first: u32| {
        let mut ok = 0;
        for burst in (first..first + BATCH).step_by(100) {
            for i in burst..burst + 100 {
                let user = format!("pf{i}");
                let contact = format!("sip:{user}@{}", c.addr());
                c.send(edge.sip, &register(edge, c, &user, &contact, 3600, 1));
            }
            for _ in 0..100 {
                if reply(c).0 == 200 {
                    ok += 1;
                }
            }
        }
        assert_eq!(ok, BATCH, "every new binding is stored");
        edge.rss_kib()
    };
    let (c_on, c_off) = (Client::new("127.0.50.22"), Client::new("127.0.50.23"));
    let (on1, off1) = (grow(&on, &c_on, 0), grow(&off, &c_off, 0));
    let (on2, off2) = (grow(&on, &c_on, BATCH), grow(&off, &c_off, BATCH));
    let (on_grew, off_grew) = (on2.saturating_sub(on1), off2.saturating_sub(off1));
    assert!(
        on_grew * 3 < off_grew,
        "the second {BATCH} bindings grew RSS by {on_grew} KiB with prefault, {off_grew} KiB \
         without (first: {} and {} KiB)",
        on1.saturating_sub(on0),
        off1.saturating_sub(off0)
    );
}
