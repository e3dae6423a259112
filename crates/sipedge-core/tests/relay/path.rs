//! Issue 15 item 4: a request to a binding registered with a Path goes to the first Path
//! hop with the Path as its Route set (RFC 3327 §5.3), not to the Contact — when
//! `[registrar] accept_path` lets the Path be kept ("trusted": only from an `[[ip_auth]]`
//! source; "always"; "never").

use super::*;
use sipedge_core::auth::{AccountSpec, AuthDb, AuthSpec, IpAuthSpec};
use sipedge_core::AcceptPath;
use std::net::SocketAddr;

const P1: &str = "198.51.100.60:5070";

/// The relay config with `accept_path = mode`, and P1 an `[[ip_auth]]` source (a proxy in
/// front of us, allowed to register bob) when `p1_trusted`.
fn config_path(mode: AcceptPath, p1_trusted: bool) -> sipedge_core::CoreConfig {
    let mut c = config();
    c.registrar.accept_path = mode;
    if p1_trusted {
        let spec = AuthSpec {
            accounts: vec![AccountSpec {
                name: "proxy".into(),
                ..AccountSpec::default()
            }],
            ip_auth: vec![IpAuthSpec {
                cidr: "198.51.100.60/32".parse().unwrap(),
                account: "proxy".into(),
                cli_auth: false,
                register: vec![format!("bob@{DOMAIN}")],
            }],
            ..AuthSpec::default()
        };
        c.auth.db = AuthDb::build(&spec).unwrap().into_handle();
    }
    c
}

fn register_via_proxy(c: &mut Core, path: &str) -> Vec<Out> {
    let r = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {P1};branch=z9hG4bKp1reg\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKbobreg\r\nMax-Forwards: 69\r\nFrom: <sip:bob@{DOMAIN}>;tag=r1\r\nTo: <sip:bob@{DOMAIN}>\r\nCall-ID: reg-path\r\nCSeq: 1 REGISTER\r\nSupported: path\r\nPath: {path}\r\nContact: <sip:bob@{BOB}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    );
    let out = send(c, 0, P1, r.as_bytes());
    assert_eq!(out[0].status(), Some(200));
    out
}

#[test]
fn a_call_to_a_binding_with_path_goes_to_the_first_path_hop() {
    let mut c = Core::new(config_path(AcceptPath::Always, false));
    register_via_proxy(
        &mut c,
        &format!("<sip:{P1};lr;ob>, <sip:p2.example.net;lr>"),
    );
    let out = send(&mut c, 0, ALICE, &invite("path1"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!(out[1].to, addr(P1), "the first Path hop, not bob's Contact");
    assert_eq!(out[1].ruri(), format!("sip:bob@{BOB}"));
    let routes: Vec<String> = out[1]
        .msg()
        .header_items(HeaderName::Route)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(
        routes,
        [
            format!("<sip:{P1};lr;ob>"),
            "<sip:p2.example.net;lr>".into()
        ]
    );
}

#[test]
fn a_named_first_path_hop_is_reached_where_the_register_came_from() {
    let mut c = Core::new(config_path(AcceptPath::Always, false));
    register_via_proxy(&mut c, "<sip:edge1.example.net;lr>");
    let out = send(&mut c, 0, ALICE, &invite("path2"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!(out[1].to, addr(P1));
}

/// Where alice's INVITE to bob went, and whether the REGISTER's 200 echoed the Path.
fn path_outcome(mode: AcceptPath, p1_trusted: bool) -> (SocketAddr, bool) {
    let mut c = Core::new(config_path(mode, p1_trusted));
    let ok = register_via_proxy(&mut c, &format!("<sip:{P1};lr;ob>"));
    let echoed = ok[0].header(HeaderName::Path).is_some();
    let out = send(&mut c, 0, ALICE, &invite("mode"));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    (out[1].to, echoed)
}

#[test]
fn trusted_keeps_the_path_of_an_ip_auth_source_only() {
    assert_eq!(
        path_outcome(AcceptPath::Trusted, true),
        (addr(P1), true),
        "a proxy in [[ip_auth]]: its Path is followed"
    );
    assert_eq!(
        path_outcome(AcceptPath::Trusted, false),
        (addr(BOB), false),
        "a Path straight from a phone is ignored: the call goes to the Contact"
    );
}

#[test]
fn always_keeps_any_path() {
    assert_eq!(path_outcome(AcceptPath::Always, false), (addr(P1), true));
}

#[test]
fn never_ignores_even_a_trusted_path() {
    assert_eq!(path_outcome(AcceptPath::Never, true), (addr(BOB), false));
}

#[test]
fn the_default_is_trusted() {
    assert_eq!(config().registrar.accept_path, AcceptPath::Trusted);
    let mut c = Core::new(config());
    register_via_proxy(&mut c, &format!("<sip:{P1};lr>"));
    let out = send(&mut c, 0, ALICE, &invite("default"));
    assert_eq!(out[1].to, addr(BOB), "an unvouched Path is not followed");
}
