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
