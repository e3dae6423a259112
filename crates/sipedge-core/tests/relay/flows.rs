//! Issue 15 item 4, RFC 5626 §5.3: a request that must go to a flow known to have failed
//! (its keepalives went unanswered, or its Outbound registration went) is answered
//! `430 Flow Failed` — nothing is sent into the void — until the flow registers again.

use super::*;
use sipedge_core::{NatConfig, PingMode};

const PRIVATE: &str = "10.0.0.5:5060";

/// A REGISTER of `user` from `source` with `contact` (a whole Contact value) and `expires`.
fn reg(c: &mut Core, now: u64, user: &str, contact: &str, source: &str, cseq: u32, exp: u32) {
    let r = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {source};branch=z9hG4bKfl{user}{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=r1\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: fl-{user}\r\nCSeq: {cseq} REGISTER\r\nSupported: outbound\r\nContact: {contact}\r\nExpires: {exp}\r\nContent-Length: 0\r\n\r\n"
    );
    let out = send(c, now, source, r.as_bytes());
    assert_eq!(labels(&out), ["200"], "REGISTER {user} {cseq}");
}

fn invite_to(user: &str, call: &str) -> Vec<u8> {
    request(
        "INVITE",
        &format!("sip:{user}@{DOMAIN}"),
        &format!("z9hG4bK-{call}"),
        call,
        "",
    )
}

/// Carol (a plain binding) and bob (an Outbound one) registered on one flow: BOB's
/// address, socket 0 (two lines of one phone).
fn carol_and_outbound_bob(c: &mut Core) {
    reg(c, 0, "carol", &format!("<sip:carol@{BOB}>"), BOB, 1, 3600);
    let ob = format!(
        "<sip:bob@{BOB};ob>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0000000000b0>\";reg-id=1"
    );
    reg(c, 0, "bob", &ob, BOB, 1, 3600);
    // Bob's Outbound registration goes: RFC 5626 §5.3, its flow is gone with it.
    reg(c, 10, "bob", &ob, BOB, 2, 0);
}

#[test]
fn a_request_to_a_binding_on_a_failed_flow_gets_430_until_the_flow_registers_again() {
    let mut c = Core::new(config());
    carol_and_outbound_bob(&mut c);
    assert_eq!(c.dead_flow_count(), 1);
    let out = send(&mut c, 20, ALICE, &invite_to("carol", "fl1"));
    assert_eq!(labels(&out), ["100", "430"], "430 Flow Failed, not 404");
    assert!(out.iter().all(|o| o.to == addr(ALICE)), "nothing to {BOB}");
    // The flow registers again: alive, calls reach it.
    reg(
        &mut c,
        30,
        "carol",
        &format!("<sip:carol@{BOB}>"),
        BOB,
        2,
        3600,
    );
    assert_eq!(c.dead_flow_count(), 0);
    let out = send(&mut c, 40, ALICE, &invite_to("carol", "fl2"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!(out[1].to, addr(BOB));
}

#[test]
fn a_failed_flow_is_known_on_every_shard() {
    let (mut a, mut b) = two_shards();
    // Whichever shard owns them, both hear of the failure.
    for (now, user, cseq, exp) in [(0, "bob", 1, 3600), (10, "bob", 2, 0)] {
        let ob = format!(
            "<sip:{user}@{BOB};ob>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-0000000000b0>\";reg-id=1"
        );
        let r = format!(
            "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKsh{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=r1\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: sh-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: {ob}\r\nExpires: {exp}\r\nContent-Length: 0\r\n\r\n"
        );
        a.handle_datagram(
            Millis(now),
            sipedge_core::LocalId(0),
            addr(BOB),
            r.as_bytes(),
        );
        let (oa, ob_) = pump(&mut a, &mut b, now);
        assert_eq!(oa.len() + ob_.len(), 1, "one 200");
    }
    assert_eq!((a.dead_flow_count(), b.dead_flow_count()), (1, 1));
}

/// Bob registers from behind a NAT (private Contact); pings time out after one miss.
fn nated_bob_config() -> sipedge_core::CoreConfig {
    sipedge_core::CoreConfig {
        nat: NatConfig {
            ping: PingMode::Timeout,
            ping_failures_max: 1,
            ping_interval_secs: 20,
            advertise: vec![EDGE.into()],
            ..NatConfig::default()
        },
        ..config()
    }
}

#[test]
fn a_dialog_request_to_a_flow_whose_keepalives_failed_gets_430() {
    let mut c = Core::new(nated_bob_config());
    register(&mut c, 0, "bob", &format!("sip:bob@{PRIVATE}"), BOB);
    let out = send(&mut c, 10, ALICE, &invite("kd1"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!(out[1].to, addr(BOB), "the NATed phone at its public flow");
    let inv = out[1].clone();
    let ok = send(
        &mut c,
        20,
        BOB,
        &respond(
            &inv,
            200,
            "OK",
            "b1",
            &format!("Contact: <sip:bob@{PRIVATE}>\r\n"),
        ),
    );
    assert_eq!(labels(&ok), ["200"]);
    let rr_up = ok[0].header(HeaderName::RecordRoute).unwrap();
    // Bob's NAT mapping dies: the keepalive goes unanswered, the binding is removed.
    advance(&mut c, 100_000);
    assert_eq!(c.binding_count(), 0, "deregistered on keepalive timeout");
    assert_eq!(c.dead_flow_count(), 1);
    let in_dialog = |method: &str, branch: &str| {
        String::from_utf8(request(
            method,
            &format!("sip:bob@{PRIVATE}"),
            branch,
            "kd1",
            &format!("Route: {rr_up}\r\n"),
        ))
        .unwrap()
        .replace(
            &format!("To: <sip:bob@{DOMAIN}>"),
            &format!("To: <sip:bob@{DOMAIN}>;tag=b1"),
        )
        .replace("CSeq: 1 BYE", "CSeq: 2 BYE")
    };
    // The ACK has no response: dropped, not sent to the dead flow.
    let ack = send(
        &mut c,
        100_010,
        ALICE,
        in_dialog("ACK", "z9hG4bK-kdack").as_bytes(),
    );
    assert!(ack.is_empty(), "{:?}", labels(&ack));
    let bye = send(
        &mut c,
        100_020,
        ALICE,
        in_dialog("BYE", "z9hG4bK-kdbye").as_bytes(),
    );
    assert_eq!(labels(&bye), ["430"]);
    assert_eq!(bye[0].to, addr(ALICE), "answered, nothing sent to {BOB}");
}
