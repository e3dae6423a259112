//! Issue 19 item 5: transport awareness inside the core, sans-IO. Two sockets — LocalId 0
//! UDP and LocalId 1 TCP, both advertising 192.0.2.1:5060 — as the runtime presents them: a
//! message read from a connection arrives as `handle_datagram(local = 1, remote = peer)`,
//! and a transmit on LocalId 1 goes down the connection to `remote`.
#![allow(clippy::unwrap_used)]

#[path = "relay/harness.rs"]
mod harness;

use harness::*;
use sipedge_core::auth::AuthDb;
use sipedge_core::{Core, CoreConfig, LocalId, Millis, Transport};
use sipedge_msg::HeaderName;

const UDP: LocalId = LocalId(0);
const TCP: LocalId = LocalId(1);
/// Bob's phone: its TCP connection's source (the port the kernel chose), and the
/// listening address its Via and Contact name.
const BOB_TCP: &str = "198.51.100.20:50000";
const BOB_LISTEN: &str = "198.51.100.20:5060";
/// An IP-auth trunk (may go outbound) and the upstream it calls.
const TRUNK: &str = "198.51.100.200:5060";
const UPSTREAM: &str = "203.0.113.77:5060";

fn two_sockets() -> CoreConfig {
    let mut cfg = config();
    cfg.proxy.advertise = vec![addr(EDGE), addr(EDGE)];
    cfg.proxy.transports = vec![Transport::Udp, Transport::Tcp];
    cfg.nat.advertise = vec![EDGE.into(), EDGE.into()];
    cfg
}

/// [`two_sockets`] with an IP-auth trunk at [`TRUNK`] allowed outbound.
fn with_trunk(mut cfg: CoreConfig) -> Core {
    let spec = trunk_auth_spec();
    cfg.auth.db = AuthDb::build(&spec).unwrap().into_handle();
    cfg.auth.nonce_secret = b"transport-test".to_vec();
    cfg.proxy.allow_outbound = true;
    Core::new(cfg)
}

fn send_on(core: &mut Core, now: u64, local: LocalId, from: &str, bytes: &[u8]) -> Vec<Out> {
    core.handle_datagram(Millis(now), local, addr(from), bytes);
    drain(core)
}

/// A REGISTER for `user` whose Via says `via` (`SIP/2.0/TCP host:port`, no rport).
fn register_msg(user: &str, via: &str, contact: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: {via};branch=z9hG4bKreg-{user}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=r1\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: reg-{user}\r\nCSeq: 1 REGISTER\r\nContact: <{contact}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Bob registered over TCP from [`BOB_TCP`]; returns the 200 OK.
fn register_bob_over_tcp(core: &mut Core) -> Out {
    let r = register_msg(
        "bob",
        &format!("SIP/2.0/TCP {BOB_LISTEN}"),
        &format!("sip:bob@{BOB_LISTEN};transport=tcp"),
    );
    let mut out = send_on(core, 0, TCP, BOB_TCP, &r);
    assert_eq!(out.len(), 1, "{out:?}");
    out.remove(0)
}

fn top_via(o: &Out) -> String {
    o.header(HeaderName::Via).unwrap()
}

#[test]
fn a_register_over_tcp_binds_tcp_and_is_answered_down_its_connection() {
    let mut core = Core::new(two_sockets());
    let ok = register_bob_over_tcp(&mut core);
    assert_eq!(ok.status(), Some(200));
    // RFC 3261 §18.2.2: down the connection it came on, not to the Via's sent-by port.
    assert_eq!((ok.local, ok.to), (TCP, addr(BOB_TCP)));
    let c = &core
        .lookup(Millis(0), format!("sip:bob@{DOMAIN}").as_bytes())
        .unwrap()[0];
    assert_eq!(c.transport, Transport::Tcp, "the socket's transport");
    assert_eq!((c.local, c.source), (TCP, addr(BOB_TCP)));
    // What the Via claims does not matter: a UDP socket makes a UDP binding.
    let r = register_msg(
        "carl",
        "SIP/2.0/TCP 198.51.100.30:5060",
        "sip:carl@198.51.100.30:5060",
    );
    send_on(&mut core, 0, UDP, "198.51.100.30:5060", &r);
    let c = &core
        .lookup(Millis(0), format!("sip:carl@{DOMAIN}").as_bytes())
        .unwrap()[0];
    assert_eq!(c.transport, Transport::Udp);
}

#[test]
fn a_udp_caller_reaches_a_tcp_binding_and_its_bye_comes_back_to_udp() {
    let mut core = Core::new(two_sockets());
    register_bob_over_tcp(&mut core);
    let out = send_on(&mut core, 0, UDP, ALICE, &invite("x1"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!((out[0].local, out[0].to), (UDP, addr(ALICE)));
    let inv = &out[1];
    // Down bob's flow (the connection's source), never re-resolved from the Contact.
    assert_eq!((inv.local, inv.to), (TCP, addr(BOB_TCP)));
    assert!(top_via(inv).starts_with("SIP/2.0/TCP 192.0.2.1:5060;branch="));
    // RFC 5658 §4: two entries, the callee's naming TCP, the caller's UDP (no parameter).
    let rr: Vec<String> = inv
        .msg()
        .header_items(HeaderName::RecordRoute)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(rr.len(), 2, "{rr:?}");
    assert!(rr[0].starts_with("<sip:192.0.2.1:5060;transport=tcp;lr;sed="));
    assert_eq!(rr[1], "<sip:192.0.2.1:5060;lr>");
    // The 200 comes up the connection and goes to alice over UDP.
    let contact = format!("Contact: <sip:bob@{BOB_LISTEN};transport=tcp>\r\n");
    let ok = respond(inv, 200, "OK", "bobtag", &contact);
    let out = send_on(&mut core, 10, TCP, BOB_TCP, &ok);
    assert_eq!(labels(&out), ["200"]);
    assert_eq!((out[0].local, out[0].to), (UDP, addr(ALICE)));
    // Bob hangs up over TCP with the route set his 200 recorded (in order, §12.1.1).
    let bye = format!(
        "BYE sip:alice@{ALICE} SIP/2.0\r\nVia: SIP/2.0/TCP {BOB_LISTEN};branch=z9hG4bKbye1\r\nMax-Forwards: 70\r\nRoute: {}, {}\r\nFrom: <sip:bob@{DOMAIN}>;tag=bobtag\r\nTo: <sip:alice@{DOMAIN}>;tag=alice1\r\nCall-ID: x1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
        rr[0], rr[1]
    );
    let out = send_on(&mut core, 20, TCP, BOB_TCP, bye.as_bytes());
    assert_eq!(labels(&out), ["BYE"], "{out:?}");
    assert_eq!((out[0].local, out[0].to), (UDP, addr(ALICE)));
    assert!(top_via(&out[0]).starts_with("SIP/2.0/UDP 192.0.2.1:5060;branch="));
    assert_eq!(
        out[0].msg().count(HeaderName::Route),
        0,
        "both of ours removed"
    );
    // Alice's 200 goes back down bob's connection (the server transaction's flow).
    let ok = respond(&out[0], 200, "OK", "", "");
    let back = send_on(&mut core, 30, UDP, ALICE, &ok);
    assert_eq!(labels(&back), ["200"]);
    assert_eq!((back[0].local, back[0].to), (TCP, addr(BOB_TCP)));
}

#[test]
fn a_tcp_binding_is_reached_on_its_flow_even_when_not_nated() {
    let mut core = Core::new(two_sockets());
    // Via sent-by = the connection's source: no NAT detected. The Contact names another
    // port; the request still goes down the registered connection (RFC 5626 §5.3).
    let src = "198.51.100.21:50001";
    let r = register_msg(
        "bob",
        &format!("SIP/2.0/TCP {src}"),
        "sip:bob@198.51.100.21:5060;transport=tcp",
    );
    assert_eq!(send_on(&mut core, 0, TCP, src, &r)[0].status(), Some(200));
    let out = send_on(&mut core, 0, UDP, ALICE, &invite("f1"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!((out[1].local, out[1].to), (TCP, addr(src)));
}

/// An INVITE from the trunk to `ruri`, padded with a header to `size` bytes.
fn big_invite(ruri: &str, call: &str, size: usize) -> Vec<u8> {
    let base = String::from_utf8(request(
        "INVITE",
        ruri,
        &format!("z9hG4bK-{call}"),
        call,
        "X-Pad: \r\n",
    ))
    .unwrap()
    .replace(ALICE, TRUNK);
    let pad = "p".repeat(size.saturating_sub(base.len()));
    base.replace("X-Pad: ", &format!("X-Pad: {pad}"))
        .into_bytes()
}

#[test]
fn a_large_request_to_a_udp_upstream_goes_over_tcp_but_a_nated_flow_keeps_udp() {
    let mut core = with_trunk(two_sockets());
    let upstream = format!("sip:+15551234@{UPSTREAM}");
    // Under udp_mtu (1300): UDP.
    let out = send_on(&mut core, 0, UDP, TRUNK, &big_invite(&upstream, "s1", 900));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!((out[1].local, out[1].to), (UDP, addr(UPSTREAM)));
    // RFC 3261 §18.1.1: over it, TCP — with a Via and Record-Route that say so.
    let out = send_on(&mut core, 0, UDP, TRUNK, &big_invite(&upstream, "s2", 1400));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!((out[1].local, out[1].to), (TCP, addr(UPSTREAM)));
    assert!(top_via(&out[1]).starts_with("SIP/2.0/TCP "));
    assert!(out[1]
        .header(HeaderName::RecordRoute)
        .unwrap()
        .contains(";transport=tcp;lr;sed="));
    assert_eq!(core.proxy_stats().udp_to_tcp, 1);
    // Its retransmission (timer A) takes the same connection.
    let again = advance(&mut core, 600);
    let re: Vec<&Out> = again.iter().filter(|o| o.to == addr(UPSTREAM)).collect();
    assert!(re.iter().any(|o| o.ruri() == upstream));
    assert!(re.iter().all(|o| o.local == TCP || o.bytes.len() <= 1300));
    // A NATed UDP binding (private Via behind a public source) cannot take a new TCP
    // connection: the large request stays on its UDP flow.
    let nated = "203.0.113.9:40000";
    let r = register_msg("dan", "SIP/2.0/UDP 10.0.0.9:5060", "sip:dan@10.0.0.9:5060");
    let out = send_on(&mut core, 0, UDP, nated, &r);
    assert_eq!(out[0].status(), Some(200));
    let ruri = format!("sip:dan@{DOMAIN}");
    let out = send_on(&mut core, 0, UDP, TRUNK, &big_invite(&ruri, "s3", 1400));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!((out[1].local, out[1].to), (UDP, addr(nated)));
    assert!(top_via(&out[1]).starts_with("SIP/2.0/UDP "));
}

#[test]
fn udp_mtu_zero_never_switches() {
    let mut cfg = two_sockets();
    cfg.proxy.udp_mtu = 0;
    let mut core = with_trunk(cfg);
    let upstream = format!("sip:+15551234@{UPSTREAM}");
    let out = send_on(&mut core, 0, UDP, TRUNK, &big_invite(&upstream, "z1", 1400));
    assert_eq!((out[1].local, out[1].to), (UDP, addr(UPSTREAM)));
}

#[test]
fn a_target_on_a_transport_we_do_not_serve_is_refused_never_sent_over_udp() {
    let mut core = with_trunk(two_sockets());
    for (i, ruri) in [
        format!("sip:+15551234@{UPSTREAM};transport=tls"),
        format!("sips:+15551234@{UPSTREAM}"),
        format!("sip:+15551234@{UPSTREAM};transport=sctp"),
    ]
    .iter()
    .enumerate()
    {
        let out = send_on(
            &mut core,
            0,
            UDP,
            TRUNK,
            &big_invite(ruri, &format!("t{i}"), 0),
        );
        assert_eq!(labels(&out), ["503"], "{ruri}");
        assert_eq!(out[0].to, addr(TRUNK));
        let warning = out[0].msg().header_named(b"Warning").map(<[u8]>::to_vec);
        assert!(warning.unwrap().starts_with(b"399 "), "a Warning says why");
    }
    // `;transport=tcp` goes out the TCP socket.
    let ruri = format!("sip:+15551234@{UPSTREAM};transport=tcp");
    let out = send_on(&mut core, 0, UDP, TRUNK, &big_invite(&ruri, "t9", 0));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!((out[1].local, out[1].to), (TCP, addr(UPSTREAM)));
}

#[test]
fn no_keepalive_pings_on_a_tcp_flow_while_a_udp_one_is_pinged() {
    let mut cfg = two_sockets();
    cfg.nat.ping_interval_secs = 1;
    let mut core = Core::new(cfg);
    // Both NATed (private Via sent-by behind a public source).
    let (udp_src, tcp_src) = ("203.0.113.10:40000", "203.0.113.11:50000");
    let r = register_msg("u", "SIP/2.0/UDP 10.0.0.10:5060", "sip:u@10.0.0.10:5060");
    assert_eq!(
        send_on(&mut core, 0, UDP, udp_src, &r)[0].status(),
        Some(200)
    );
    let r = register_msg(
        "t",
        "SIP/2.0/TCP 10.0.0.11:5060",
        "sip:t@10.0.0.11:5060;transport=tcp",
    );
    assert_eq!(
        send_on(&mut core, 0, TCP, tcp_src, &r)[0].status(),
        Some(200)
    );
    let out = advance(&mut core, 5_500);
    let pings = |to: &str| out.iter().filter(|o| o.to == addr(to)).count();
    assert!(
        pings(udp_src) >= 4,
        "the UDP binding is pinged every second"
    );
    assert_eq!(pings(tcp_src), 0, "RFC 5626 §4.4.1: none on a connection");
    assert!(core.stats().nat.pings_skipped_stream >= 4);
}

#[test]
fn a_restarted_edge_keeps_a_tcp_binding_and_reaches_it_on_its_flow() {
    let mut a = Core::new(CoreConfig {
        journal: true,
        ..two_sockets()
    });
    register_bob_over_tcp(&mut a);
    let rec = a.poll_journal().expect("journalled").to_vec();
    let mut b = Core::new(two_sockets());
    b.restore_record(Millis(0), &rec).unwrap();
    let c = &b
        .lookup(Millis(0), format!("sip:bob@{DOMAIN}").as_bytes())
        .unwrap()[0];
    assert_eq!((c.transport, c.local), (Transport::Tcp, TCP));
    // Reachable once the phone reconnects: the request goes to its flow on TCP.
    let out = send_on(&mut b, 0, UDP, ALICE, &invite("r1"));
    assert_eq!((out[1].local, out[1].to), (TCP, addr(BOB_TCP)));
}

#[test]
fn an_outbound_register_over_tcp_gets_flow_timer() {
    let mut core = Core::new(two_sockets());
    let r = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/TCP {BOB_LISTEN};branch=z9hG4bKob1\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{DOMAIN}>;tag=r1\r\nTo: <sip:bob@{DOMAIN}>\r\nCall-ID: ob1\r\nCSeq: 1 REGISTER\r\nSupported: outbound, path\r\nContact: <sip:bob@{BOB_LISTEN};transport=tcp>;reg-id=1;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\"\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    );
    let ok = &send_on(&mut core, 0, TCP, BOB_TCP, r.as_bytes())[0];
    assert_eq!(
        ok.status(),
        Some(200),
        "{}",
        String::from_utf8_lossy(&ok.bytes)
    );
    // RFC 5626 §4.4.1: the client keeps the connection with CRLF keepalives at this pace.
    assert!(ok.msg().header_named(b"Flow-Timer").is_some());
    assert_eq!((ok.local, ok.to), (TCP, addr(BOB_TCP)));
}

#[test]
fn uri_transports() {
    let t = |u: &str| Transport::of_uri(&sipedge_msg::Uri::parse(u.as_bytes()).unwrap());
    assert_eq!(t("sip:a@h"), Some(Transport::Udp));
    assert_eq!(t("sip:a@h;transport=TCP"), Some(Transport::Tcp));
    assert_eq!(t("sip:a@h;transport=ws"), Some(Transport::Ws));
    assert_eq!(t("sips:a@h"), Some(Transport::Tls));
    assert_eq!(t("sips:a@h;transport=tcp"), Some(Transport::Tls));
    assert_eq!(t("sips:a@h;transport=ws"), Some(Transport::Wss));
    assert_eq!(t("sip:a@h;transport=sctp"), None);
    assert_eq!(Transport::Wss.via_prefix(), "SIP/2.0/WSS ");
}

fn labels(out: &[Out]) -> Vec<String> {
    out.iter().map(Out::label).collect()
}
