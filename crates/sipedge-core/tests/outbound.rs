//! Issue 15 item 4, sans-IO: STUN binding requests on the SIP port (RFC 5626 §8, RFC 5389)
//! and Flow-Timer in an Outbound REGISTER's 200 (RFC 5626 §4.4.1, §6).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use sipedge_core::{Core, CoreConfig, LocalId, Millis, NatConfig};
use sipedge_msg::{HeaderName, Message};

const PHONE: &str = "203.0.113.5:40001";

fn core() -> Core {
    Core::new(CoreConfig {
        domains: vec!["example.com".into(), "127.0.0.1".into()],
        nat: NatConfig {
            ping_interval_secs: 25,
            ..NatConfig::default()
        },
        ..CoreConfig::default()
    })
}

fn feed(c: &mut Core, bytes: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
    c.handle_datagram(Millis(0), LocalId(0), PHONE.parse().unwrap(), bytes);
    let mut out = Vec::new();
    while let Some(t) = c.poll_transmit() {
        out.push((t.remote, t.data.to_vec()));
    }
    out
}

fn binding_request(kind: u16) -> Vec<u8> {
    let mut r = kind.to_be_bytes().to_vec();
    r.extend_from_slice(&[0, 0, 0x21, 0x12, 0xA4, 0x42]);
    r.extend_from_slice(b"txid12345678");
    r
}

#[test]
fn a_stun_binding_request_on_the_sip_port_is_answered_with_the_mapped_address() {
    let mut c = core();
    let out = feed(&mut c, &binding_request(0x0001));
    assert_eq!(out.len(), 1, "one answer");
    let (to, ans) = &out[0];
    assert_eq!(*to, PHONE.parse::<SocketAddr>().unwrap());
    assert_eq!(&ans[0..2], &[0x01, 0x01], "Binding success response");
    assert_eq!(&ans[8..20], b"txid12345678");
    // XOR-MAPPED-ADDRESS: 203.0.113.5:40001.
    assert_eq!(&ans[20..22], &[0x00, 0x20]);
    let port = u16::from_be_bytes([ans[26], ans[27]]) ^ 0x2112;
    let ip: Vec<u8> = (0..4).map(|i| ans[28 + i] ^ ans[4 + i]).collect();
    assert_eq!((ip.as_slice(), port), (&[203u8, 0, 113, 5][..], 40001));
    assert_eq!(c.stats().stun_answered, 1);
    assert_eq!(
        c.stats().dropped,
        0,
        "not counted as a malformed SIP message"
    );
}

#[test]
fn a_stun_response_or_indication_is_never_answered() {
    let mut c = core();
    for kind in [0x0101u16, 0x0111, 0x0011] {
        assert!(feed(&mut c, &binding_request(kind)).is_empty(), "{kind:#x}");
    }
    assert_eq!(c.stats().stun_dropped, 3);
    assert_eq!(c.stats().stun_answered, 0);
}

fn register(reg_id: bool) -> Vec<u8> {
    let ob = if reg_id {
        ";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-00000000000a>\";reg-id=1"
    } else {
        ""
    };
    format!(
        "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bK-ob{reg_id};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\nTo: <sip:alice@example.com>\r\nCall-ID: ob-{reg_id}\r\nCSeq: 1 REGISTER\r\nSupported: outbound, path\r\nContact: <sip:alice@{PHONE};ob>{ob}\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn an_outbound_register_gets_flow_timer_our_ping_interval() {
    let mut c = core();
    let out = feed(&mut c, &register(true));
    let m = Message::parse(&out[0].1).unwrap();
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.header(HeaderName::Require), Some(&b"outbound"[..]));
    let text = String::from_utf8_lossy(&out[0].1).into_owned();
    assert!(text.contains("\r\nFlow-Timer: 25\r\n"), "{text}");
}

#[test]
fn a_plain_register_gets_no_flow_timer() {
    let mut c = core();
    let out = feed(&mut c, &register(false));
    let text = String::from_utf8_lossy(&out[0].1).into_owned();
    assert!(text.starts_with("SIP/2.0 200"), "{text}");
    assert!(!text.contains("Flow-Timer"), "{text}");
}
