//! Issue 15 item 2: advertised addresses in Via and Record-Route, and the double
//! Record-Route of RFC 5658 §4 when a call enters on one socket and leaves by another.

use super::*;
use sipedge_core::{CoreConfig, LocalId, ProxyConfig};

/// Socket 0: a wildcard bind on 5060 advertised as `sip.example.com:5070` (a port forward); socket 1: a private
/// address behind 1:1 NAT, advertised as its public address.
fn two_socket_core() -> Core {
    let mut cfg = CoreConfig {
        domains: vec![
            DOMAIN.into(),
            "sip.example.com".into(),
            "203.0.113.7".into(),
        ],
        proxy: ProxyConfig {
            advertise: vec![addr("0.0.0.0:5060"), addr("10.0.0.5:5080")],
            advertise_names: vec!["sip.example.com:5070".into(), "203.0.113.7:5080".into()],
            ..ProxyConfig::default()
        },
        ..config()
    };
    cfg.nat.advertise = cfg.proxy.advertise_names.clone();
    Core::new(cfg)
}

fn send_on(core: &mut Core, local: u16, from: &str, bytes: &[u8]) -> Vec<Out> {
    core.handle_datagram(Millis(0), LocalId(local), addr(from), bytes);
    drain(core)
}

fn register_on(core: &mut Core, local: u16, user: &str, source: &str) {
    let r = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {source};branch=z9hG4bKreg{user}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=r1\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: reg-{user}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{source}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    );
    let out = send_on(core, local, source, r.as_bytes());
    assert_eq!(out[0].status(), Some(200), "REGISTER accepted");
    assert_eq!(
        out[0].local,
        LocalId(local),
        "answered from the socket it came on"
    );
}

#[test]
fn one_socket_writes_its_advertised_name_in_via_and_record_route() {
    let mut c = two_socket_core();
    register_on(&mut c, 0, "bob", BOB);
    let out = send_on(&mut c, 0, ALICE, &invite("adv1"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    let fwd = &out[1];
    assert_eq!(fwd.local, LocalId(0));
    let via = fwd.header(HeaderName::Via).unwrap();
    assert!(
        via.starts_with("SIP/2.0/UDP sip.example.com:5070;branch="),
        "{via}"
    );
    let rr = fwd.header(HeaderName::RecordRoute).unwrap();
    assert!(rr.starts_with("<sip:sip.example.com:5070;lr;sed="), "{rr}");
    assert!(!fwd.msg().as_bytes().windows(7).any(|w| w == b"0.0.0.0"));
    let n_rr = fwd.msg().header_items(HeaderName::RecordRoute).count();
    assert_eq!(n_rr, 1, "one socket, one Record-Route");
}

#[test]
fn two_sockets_two_record_routes_and_in_dialog_requests_pop_both() {
    let mut c = two_socket_core();
    // bob registered through the NATed interface (socket 1), alice calls on socket 0.
    register_on(&mut c, 1, "bob", BOB);
    let out = send_on(&mut c, 0, ALICE, &invite("adv2"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    let fwd = &out[1];
    assert_eq!(fwd.local, LocalId(1), "leaves by bob's socket");
    let via = fwd.header(HeaderName::Via).unwrap();
    assert!(via.starts_with("SIP/2.0/UDP 203.0.113.7:5080;"), "{via}");
    let rrs: Vec<String> = fwd
        .msg()
        .header_items(HeaderName::RecordRoute)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(rrs.len(), 2, "{rrs:?}");
    assert!(
        rrs[0].starts_with("<sip:203.0.113.7:5080;lr;sed="),
        "{rrs:?}"
    );
    assert_eq!(rrs[1], "<sip:sip.example.com:5070;lr>");

    // bob answers; alice gets the 200 with both entries (her route set is their reverse).
    let ok = respond(
        fwd,
        200,
        "OK",
        "bobtag",
        &format!("Contact: <sip:bob@{BOB}>\r\n"),
    );
    let back = send_on(&mut c, 1, BOB, &ok);
    assert_eq!(labels(&back), ["200"]);
    assert_eq!(back[0].local, LocalId(0));
    let up: Vec<String> = back[0]
        .msg()
        .header_items(HeaderName::RecordRoute)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(up.len(), 2, "{up:?}");

    // alice's BYE: Route = reversed Record-Route; both of ours go, it leaves by socket 1.
    let bye = format!(
        "BYE sip:bob@{BOB} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK-adv2bye;rport\r\nMax-Forwards: 70\r\nRoute: {}, {}\r\nFrom: <sip:alice@{DOMAIN}>;tag=alice1\r\nTo: <sip:bob@{DOMAIN}>;tag=bobtag\r\nCall-ID: adv2\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        up[1], up[0]
    );
    let out = send_on(&mut c, 0, ALICE, bye.as_bytes());
    assert_eq!(labels(&out), ["BYE"]);
    assert_eq!(out[0].to, addr(BOB));
    assert_eq!(out[0].local, LocalId(1));
    assert!(
        out[0].header(HeaderName::Route).is_none(),
        "both Routes of ours removed: {:?}",
        out[0].header(HeaderName::Route)
    );

    // bob's BYE: Route in Record-Route order; reaches alice by socket 0.
    let bye = format!(
        "BYE sip:alice@{ALICE} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bK-adv2bye2\r\nMax-Forwards: 70\r\nRoute: {}, {}\r\nFrom: <sip:bob@{DOMAIN}>;tag=bobtag\r\nTo: <sip:alice@{DOMAIN}>;tag=alice1\r\nCall-ID: adv2\r\nCSeq: 3 BYE\r\nContent-Length: 0\r\n\r\n",
        up[0], up[1]
    );
    let out = send_on(&mut c, 1, BOB, bye.as_bytes());
    assert_eq!(labels(&out), ["BYE"]);
    assert_eq!(out[0].to, addr(ALICE));
    assert_eq!(out[0].local, LocalId(0));
    assert!(out[0].header(HeaderName::Route).is_none());
}
