//! Issue 19: a stream connection that closes, as the runtime reports it
//! (`Core::handle_flow_closed`), sans-IO. LocalId 0 UDP, LocalId 1 TCP, LocalId 2 TLS.
//!
//! * RFC 5626 §5.3 / §11.5: an Outbound binding's flow failed — a request to it gets 430,
//!   never a connection toward the phone; a non-Outbound TCP binding keeps its address.
//! * RFC 3261 §18.2.2: a response owed on a closed connection goes to the source IP and
//!   the Via's sent-by port (the transport's default when none), not to the dead
//!   connection's ephemeral port.
#![allow(clippy::unwrap_used)]

#[path = "relay/harness.rs"]
mod harness;

use harness::*;
use sipedge_core::{Core, CoreConfig, LocalId, Millis, Transport};

const UDP: LocalId = LocalId(0);
const TCP: LocalId = LocalId(1);
const TLS: LocalId = LocalId(2);
/// Bob's phone: its connection's source (the port the kernel chose) and the address its
/// Via and Contact name.
const BOB_TCP: &str = "198.51.100.20:50000";
const BOB_LISTEN: &str = "198.51.100.20:5060";

fn three_sockets() -> Core {
    let mut cfg: CoreConfig = config();
    cfg.proxy.advertise = vec![addr(EDGE), addr(EDGE), addr("192.0.2.1:5061")];
    cfg.proxy.transports = vec![Transport::Udp, Transport::Tcp, Transport::Tls];
    cfg.nat.advertise = vec![EDGE.into(), EDGE.into(), "192.0.2.1:5061".into()];
    Core::new(cfg)
}

fn send_on(core: &mut Core, now: u64, local: LocalId, from: &str, bytes: &[u8]) -> Vec<Out> {
    core.handle_datagram(Millis(now), local, addr(from), bytes);
    drain(core)
}

/// Bob registers over TCP from [`BOB_TCP`] with `uri_params` in his Contact's URI and
/// `contact_params` after it.
fn register_bob(core: &mut Core, uri_params: &str, contact_params: &str) {
    register_bob_cseq(core, 1, uri_params, contact_params);
}

fn register_bob_cseq(core: &mut Core, cseq: u32, uri_params: &str, contact_params: &str) {
    let r = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP {BOB_LISTEN};branch=z9hG4bKreg1\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{DOMAIN}>;tag=r1\r\nTo: <sip:bob@{DOMAIN}>\r\nCall-ID: reg-bob\r\nCSeq: {cseq} REGISTER\r\nSupported: outbound, path\r\nContact: <sip:bob@{BOB_LISTEN};transport=tcp{uri_params}>{contact_params}\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    );
    let out = send_on(core, 0, TCP, BOB_TCP, r.as_bytes());
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].status(), Some(200));
    assert_eq!((out[0].local, out[0].to), (TCP, addr(BOB_TCP)));
}

fn closed(core: &mut Core, now: u64, local: LocalId, remote: &str) -> Vec<Out> {
    core.handle_flow_closed(Millis(now), local, addr(remote));
    drain(core)
}

#[test]
fn an_ob_binding_whose_connection_closed_gets_430_not_a_connect() {
    let mut core = three_sockets();
    register_bob(&mut core, ";ob", "");
    // Connection up: the INVITE goes down it.
    let out = send_on(&mut core, 1, UDP, ALICE, &invite("c1"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!((out[1].local, out[1].to), (TCP, addr(BOB_TCP)));
    let cancel_all = respond(&out[1], 486, "Busy Here", "b1", "");
    send_on(&mut core, 2, TCP, BOB_TCP, &cancel_all);

    assert!(closed(&mut core, 3, TCP, BOB_TCP).is_empty());
    let out = send_on(&mut core, 4, UDP, ALICE, &invite("c2"));
    assert!(
        out.iter().all(|o| o.local != TCP),
        "nothing toward the phone's dead flow: {out:?}"
    );
    assert_eq!(out.last().and_then(Out::status), Some(430), "{out:?}");
    assert_eq!(out.last().unwrap().to, addr(ALICE));
}

#[test]
fn a_reg_id_binding_whose_connection_closed_gets_430() {
    let mut core = three_sockets();
    register_bob(
        &mut core,
        "",
        ";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1",
    );
    closed(&mut core, 3, TCP, BOB_TCP);
    let out = send_on(&mut core, 4, UDP, ALICE, &invite("r2"));
    assert_eq!(out.last().and_then(Out::status), Some(430), "{out:?}");
    assert!(out.iter().all(|o| o.local != TCP), "{out:?}");
}

#[test]
fn a_plain_tcp_binding_whose_connection_closed_is_still_tried() {
    let mut core = three_sockets();
    register_bob(&mut core, "", "");
    closed(&mut core, 3, TCP, BOB_TCP);
    // Not Outbound: the runtime may connect out to the registered address (today's rule).
    let out = send_on(&mut core, 4, UDP, ALICE, &invite("p2"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!((out[1].local, out[1].to), (TCP, addr(BOB_TCP)));
}

#[test]
fn a_register_again_over_a_new_connection_makes_the_binding_reachable() {
    let mut core = three_sockets();
    register_bob(&mut core, ";ob", "");
    closed(&mut core, 3, TCP, BOB_TCP);
    // The phone reconnects (from the same source here) and registers again: alive again.
    register_bob_cseq(&mut core, 2, ";ob", "");
    let out = send_on(&mut core, 4, UDP, ALICE, &invite("a2"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!((out[1].local, out[1].to), (TCP, addr(BOB_TCP)));
}

/// An INVITE from alice over `local`, her Via naming `via_host_port` and her connection's
/// source `src`.
fn invite_over(call: &str, via_host_port: &str) -> Vec<u8> {
    String::from_utf8(invite(call))
        .unwrap()
        .replace(
            &format!("SIP/2.0/UDP {ALICE};branch=z9hG4bK-{call};rport"),
            &format!("SIP/2.0/TCP {via_host_port};branch=z9hG4bK-{call}"),
        )
        .into_bytes()
}

#[test]
fn a_response_for_a_closed_connection_goes_to_the_sent_by_port() {
    let mut core = three_sockets();
    register(&mut core, 0, "bob", &format!("sip:bob@{BOB}"), BOB);
    let alice_src = "203.0.113.5:40001";
    let out = send_on(
        &mut core,
        1,
        TCP,
        alice_src,
        &invite_over("s1", "203.0.113.5:5070"),
    );
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!((out[0].local, out[0].to), (TCP, addr(alice_src)));
    let ringing = respond(&out[1], 180, "Ringing", "b1", "");
    let up = send(&mut core, 2, BOB, &ringing);
    assert_eq!((up[0].local, up[0].to), (TCP, addr(alice_src)));

    // Alice's connection drops; bob answers.
    closed(&mut core, 3, TCP, alice_src);
    let ok = respond(&out[1], 200, "OK", "b1", "");
    let up = send(&mut core, 4, BOB, &ok);
    assert_eq!(labels(&up), ["200"]);
    // RFC 3261 §18.2.2: received IP, sent-by port — a new connection, not the dead one.
    assert_eq!((up[0].local, up[0].to), (TCP, addr("203.0.113.5:5070")));

    // She reconnects from the same source and sends again: down that connection again.
    let again = send_on(
        &mut core,
        5,
        TCP,
        alice_src,
        &invite_over("s2", "203.0.113.5:5070"),
    );
    assert_eq!((again[0].local, again[0].to), (TCP, addr(alice_src)));
}

#[test]
fn a_response_for_a_closed_tls_connection_without_a_port_goes_to_5061() {
    let mut core = three_sockets();
    register(&mut core, 0, "bob", &format!("sip:bob@{BOB}"), BOB);
    let alice_src = "203.0.113.5:40002";
    let inv = String::from_utf8(invite_over("t1", "203.0.113.5"))
        .unwrap()
        .replace("SIP/2.0/TCP", "SIP/2.0/TLS");
    let out = send_on(&mut core, 1, TLS, alice_src, inv.as_bytes());
    assert_eq!(labels(&out), ["100", "INVITE"]);
    closed(&mut core, 3, TLS, alice_src);
    let up = send(&mut core, 4, BOB, &respond(&out[1], 200, "OK", "b1", ""));
    assert_eq!((up[0].local, up[0].to), (TLS, addr("203.0.113.5:5061")));
}

#[test]
fn a_close_reported_for_a_udp_socket_changes_nothing() {
    let mut core = three_sockets();
    register(&mut core, 0, "bob", &format!("sip:bob@{BOB};ob"), BOB);
    closed(&mut core, 1, UDP, BOB);
    let out = send(&mut core, 2, ALICE, &invite("u1"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!(out[1].to, addr(BOB));
}

fn labels(out: &[Out]) -> Vec<String> {
    out.iter().map(Out::label).collect()
}

#[test]
fn a_refused_outbound_register_fails_nothing_when_its_connection_closes() {
    let mut core = three_sockets();
    // A REGISTER for a domain we do not serve (refused): its `ob` means nothing.
    let r = format!(
        "REGISTER sip:other.example SIP/2.0\r\nVia: SIP/2.0/TCP {BOB_LISTEN};branch=z9hG4bKreg9\r\nMax-Forwards: 70\r\nFrom: <sip:bob@other.example>;tag=r1\r\nTo: <sip:bob@other.example>\r\nCall-ID: reg-x\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{BOB_LISTEN};transport=tcp;ob>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    );
    let out = send_on(&mut core, 0, TCP, BOB_TCP, r.as_bytes());
    assert!(out[0].status().is_some_and(|s| s >= 400), "{out:?}");
    assert_eq!(core.outbound_flow_count(), 0);
    closed(&mut core, 1, TCP, BOB_TCP);
    assert_eq!(
        core.dead_flow_count(),
        0,
        "no flow failed on a refused REGISTER"
    );
}

/// Two cores of one two-shard edge with the three sockets.
fn two_cores() -> (Core, Core) {
    let mk = |i| {
        let mut cfg = config();
        cfg.shard = sipedge_core::ShardId(i);
        cfg.shards = 2;
        cfg.seed = 7;
        cfg.proxy.advertise = vec![addr(EDGE), addr(EDGE), addr("192.0.2.1:5061")];
        cfg.proxy.transports = vec![Transport::Udp, Transport::Tcp, Transport::Tls];
        cfg.nat.advertise = vec![EDGE.into(), EDGE.into(), "192.0.2.1:5061".into()];
        Core::new(cfg)
    };
    (mk(0), mk(1))
}

#[test]
fn an_outbound_binding_on_another_shard_fails_when_the_connection_owner_reports_the_close() {
    let (mut a, mut b) = two_cores();
    // A user whose AoR shard 1 owns, registering over shard 0's connection.
    let user = (0..64)
        .map(|i| format!("ob{i}"))
        .find(|u| {
            let r = format!(
                "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP {BOB_LISTEN};branch=z9hG4bKreg-{u}\r\nMax-Forwards: 70\r\nFrom: <sip:{u}@{DOMAIN}>;tag=r1\r\nTo: <sip:{u}@{DOMAIN}>\r\nCall-ID: reg-{u}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{u}@{BOB_LISTEN};transport=tcp;ob>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
            );
            let here = send_on(&mut a, 0, TCP, BOB_TCP, r.as_bytes());
            let (_, there) = pump(&mut a, &mut b, 0);
            here.is_empty() && there.first().and_then(Out::status) == Some(200)
        })
        .expect("an AoR of shard 1");
    assert_eq!(
        a.outbound_flow_count(),
        1,
        "the connection's shard was told"
    );
    assert_eq!(b.outbound_flow_count(), 0);

    a.handle_flow_closed(Millis(1), TCP, addr(BOB_TCP));
    pump(&mut a, &mut b, 1);
    let inv = String::from_utf8(invite("x9"))
        .unwrap()
        .replace("sip:bob@", &format!("sip:{user}@"))
        .replace("<sip:bob@", &format!("<sip:{user}@"));
    for core in [&mut a, &mut b] {
        core.handle_datagram(Millis(2), UDP, addr(ALICE), inv.as_bytes());
    }
    let (oa, ob) = pump(&mut a, &mut b, 2);
    for out in [&oa, &ob] {
        assert!(out.iter().all(|o| o.local != TCP), "{out:?}");
        assert_eq!(out.last().and_then(Out::status), Some(430), "{out:?}");
    }
}
