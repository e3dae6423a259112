//! The relay with the users table and IP auth of issue 6: out-of-dialog requests from our
//! users are challenged (407), outbound relaying needs an authenticated sender and
//! `allow_outbound`, a provisioned user without binding gets 480.

use crate::harness::*;
use crate::labels;
use sipedge_core::auth::AuthDb;
use sipedge_core::{Core, CoreConfig};
use sipedge_msg::HeaderName;

pub(crate) const TRUNK: &str = "198.51.100.200:5060";

pub(crate) fn with_auth(allow_outbound: bool) -> Core {
    let spec = trunk_auth_spec();
    let mut cfg: CoreConfig = config();
    cfg.auth.db = AuthDb::build(&spec).unwrap().into_handle();
    cfg.auth.nonce_secret = b"relay-test".to_vec();
    cfg.proxy.allow_outbound = allow_outbound;
    let mut c = Core::new(cfg);
    register(&mut c, 0, "bob", &format!("sip:bob@{BOB}"), BOB);
    c
}

pub(crate) fn invite_from(from_user: &str, ruri: &str, call: &str) -> Vec<u8> {
    String::from_utf8(request(
        "INVITE",
        ruri,
        &format!("z9hG4bK-{call}"),
        call,
        "",
    ))
    .unwrap()
    .replace("sip:alice@", &format!("sip:{from_user}@"))
    .into_bytes()
}

#[test]
fn our_user_without_credentials_is_challenged_407() {
    let mut c = with_auth(false);
    let out = send(
        &mut c,
        0,
        ALICE,
        &invite_from("alice", &format!("sip:bob@{DOMAIN}"), "a1"),
    );
    assert_eq!(labels(&out), ["407"]);
    assert!(out[0].header(HeaderName::ProxyAuthenticate).is_some());
    assert_eq!(
        c.transaction_count(),
        0,
        "no transaction before authentication"
    );
}

#[test]
fn ip_trunk_reaches_users_and_gets_the_same_404_for_unknown_and_unregistered() {
    let mut c = with_auth(false);
    let out = send(
        &mut c,
        0,
        TRUNK,
        &invite_from("x", &format!("sip:bob@{DOMAIN}"), "t1"),
    );
    assert_eq!(labels(&out), ["100", "INVITE"]);
    let out = send(
        &mut c,
        0,
        TRUNK,
        &invite_from("x", &format!("sip:carol@{DOMAIN}"), "t2"),
    );
    // Issue 13: carol is provisioned but not registered, dave does not exist — the same
    // single stateless 404 for both (no enumeration, no 100 before the decision).
    assert_eq!(
        labels(&out),
        ["404"],
        "carol is provisioned, not registered"
    );
    let carol = out[0].bytes.clone();
    let out = send(
        &mut c,
        0,
        TRUNK,
        &invite_from("x", &format!("sip:dave@{DOMAIN}"), "t2"),
    );
    assert_eq!(labels(&out), ["404"]);
    assert_eq!(
        String::from_utf8_lossy(&out[0].bytes).replace("dave", "carol"),
        String::from_utf8_lossy(&carol),
        "byte for byte the same answer"
    );
}

#[test]
fn outbound_needs_allow_outbound_and_an_authenticated_sender() {
    let foreign = "sip:+15551234@203.0.113.77:5060";
    let mut closed = with_auth(false);
    let out = send(&mut closed, 0, TRUNK, &invite_from("x", foreign, "o1"));
    assert_eq!(labels(&out), ["403"], "allow_outbound = false");
    let mut open = with_auth(true);
    let out = send(&mut open, 0, TRUNK, &invite_from("x", foreign, "o2"));
    assert_eq!(
        labels(&out),
        ["100", "INVITE"],
        "an IP-auth trunk may go out"
    );
    assert_eq!(out[1].to, addr("203.0.113.77:5060"));
    // A caller from a foreign domain is not challenged, but may only reach our users.
    let eve = String::from_utf8(invite_from("eve", "sip:x@203.0.113.77", "o4"))
        .unwrap()
        .replace(
            &format!("<sip:eve@{DOMAIN}>"),
            "<sip:eve@elsewhere.example>",
        );
    let out = send(&mut open, 0, ALICE, eve.as_bytes());
    assert_eq!(labels(&out), ["403"]);
}
