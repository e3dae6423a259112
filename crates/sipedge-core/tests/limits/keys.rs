//! Caller-side keys: an IP-auth trunk (account and per-source-IP limits) and a digest user
//! counted on both ends of its calls.

use crate::harness::*;
use crate::{acme, bob_user, pump_all};
use sipedge_core::auth::{
    expected_response, ha1, AccountSpec, Algorithm, AuthDb, AuthMode, AuthSettings, AuthSpec,
    DigestInput, IpAuthSpec, UserSpec,
};
use sipedge_core::dialog::DialogConfig;
use sipedge_core::limits::{Limit, LimitsSpec, LimitsTable};
use sipedge_core::{Core, CoreConfig, LocalId, Millis};
use sipedge_msg::HeaderName;

const TRUNK: &str = "198.51.100.200:5060";
const TRUNK2: &str = "198.51.100.201:5060";

fn trunk_edge(account: Option<u32>, per_ip: Limit) -> Core {
    let spec = AuthSpec {
        settings: AuthSettings {
            realm: DOMAIN.into(),
            register: AuthMode::None,
            invite: AuthMode::Digest,
            ..AuthSettings::default()
        },
        accounts: vec![AccountSpec {
            name: "trunk".into(),
            channels: account,
            ..AccountSpec::default()
        }],
        users: vec![UserSpec {
            username: "carol".into(),
            ha1_md5: Some([b'0'; 32]),
            ..UserSpec::default()
        }],
        ip_auth: vec![IpAuthSpec {
            cidr: "198.51.100.200/31".parse().unwrap(),
            account: "trunk".into(),
            cli_auth: false,
            register: Vec::new(),
        }],
    };
    let db = AuthDb::build(&spec).unwrap().into_handle();
    let limits = LimitsSpec {
        ip_auth: vec![(spec.ip_auth[0].cidr, per_ip)],
        ..LimitsSpec::default()
    };
    let mut cfg: CoreConfig = config();
    cfg.limits = LimitsTable::build(&db, limits, None).into_handle();
    cfg.auth.db = db;
    cfg.auth.nonce_secret = b"limits-test".to_vec();
    let mut c = Core::new(cfg);
    register(&mut c, 0, "bob", &format!("sip:bob@{BOB}"), BOB);
    c
}

fn from_trunk(c: &mut Core, now: u64, src: &str, call: &str) -> Option<u16> {
    let out = send(c, now, src, &invite(call));
    if out.iter().any(|o| o.method().as_deref() == Some("INVITE")) {
        None
    } else {
        out.iter().find_map(Out::status)
    }
}

#[test]
fn an_ip_auth_account_limits_its_trunks_calls() {
    let mut c = trunk_edge(Some(1), Limit::default());
    assert_eq!(from_trunk(&mut c, 10, TRUNK, "t1"), None);
    assert_eq!(
        from_trunk(&mut c, 20, TRUNK2, "t2"),
        Some(503),
        "one account, both IPs"
    );
}

#[test]
fn ip_auth_limits_count_each_source_ip_apart() {
    let mut c = trunk_edge(None, Limit::new(Some(1), None));
    assert_eq!(from_trunk(&mut c, 10, TRUNK, "t1"), None);
    let out = send(&mut c, 20, TRUNK, &invite("t2"));
    assert_eq!(out[0].status(), Some(503));
    assert!(String::from_utf8_lossy(&out[0].bytes).contains("limit: ip_channels"));
    assert_eq!(
        from_trunk(&mut c, 30, TRUNK2, "t3"),
        None,
        "its own channel"
    );
}

/// An edge where INVITEs need digest: bob (user, 1 channel) calls, and is called.
fn digest_edge() -> Vec<Core> {
    let h = |user: &str| {
        let md5 = ha1(Algorithm::Md5, user.as_bytes(), DOMAIN.as_bytes(), b"pw");
        let mut h = [0u8; 32];
        h.copy_from_slice(&md5[..32]);
        h
    };
    let mut bob = bob_user(Some(1));
    bob.ha1_md5 = Some(h("bob"));
    let mut alice = bob_user(None);
    alice.username = "alice".into();
    alice.ha1_md5 = Some(h("alice"));
    let spec = AuthSpec {
        settings: AuthSettings {
            realm: DOMAIN.into(),
            register: AuthMode::None,
            invite: AuthMode::Digest,
            ..AuthSettings::default()
        },
        accounts: vec![acme(None)],
        users: vec![bob, alice],
        ip_auth: Vec::new(),
    };
    let mut cores = crate::edge(1, &spec, LimitsSpec::default(), DialogConfig::default());
    register(
        &mut cores[0],
        0,
        "alice",
        &format!("sip:alice@{ALICE}"),
        ALICE,
    );
    cores
}

/// `user` (password "pw") INVITEs `to` from `src`, answering the 407.
fn dial_as(c: &mut [Core], now: u64, user: &str, src: &str, to: &str, call: &str) -> Out {
    let base = String::from_utf8(request(
        "INVITE",
        &format!("sip:{to}@{DOMAIN}"),
        &format!("z9hG4bK-{call}"),
        call,
        "",
    ))
    .unwrap()
    .replace("From: <sip:alice@", &format!("From: <sip:{user}@"))
    .replace(
        &format!("To: <sip:bob@{DOMAIN}>"),
        &format!("To: <sip:{to}@{DOMAIN}>"),
    );
    c[0].handle_datagram(Millis(now), LocalId(0), addr(src), base.as_bytes());
    let out = pump_all(c, now);
    let ch = out[0].header(HeaderName::ProxyAuthenticate).expect("407");
    let nonce = ch
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let uri = format!("sip:{to}@{DOMAIN}");
    let md5 = ha1(Algorithm::Md5, user.as_bytes(), DOMAIN.as_bytes(), b"pw");
    let input = DigestInput {
        method: b"INVITE",
        uri: uri.as_bytes(),
        nonce: nonce.as_bytes(),
        qop_auth: Some((b"00000001", b"0a4f113b")),
    };
    let r = expected_response(Algorithm::Md5, &md5[..32], &input);
    let r = std::str::from_utf8(&r[..32]).unwrap();
    let creds = format!(
        "Proxy-Authorization: Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"0a4f113b\"\r\n"
    );
    let authed = base
        .replace(
            &format!("branch=z9hG4bK-{call}"),
            &format!("branch=z9hG4bK-{call}-2"),
        )
        .replace("CSeq: 1 INVITE\r\n", &format!("CSeq: 2 INVITE\r\n{creds}"));
    c[0].handle_datagram(Millis(now + 1), LocalId(0), addr(src), authed.as_bytes());
    let out = pump_all(c, now + 1);
    out.into_iter()
        .find(|o| o.method().as_deref() == Some("INVITE") || o.status().is_some_and(|s| s > 200))
        .unwrap()
}

#[test]
fn a_users_channels_count_calls_from_it_and_to_it() {
    let mut c = digest_edge();
    // bob calls alice: his one channel is taken.
    let out = dial_as(&mut c, 10, "bob", BOB, "alice", "d1");
    assert_eq!(out.method().as_deref(), Some("INVITE"));
    // alice calls bob: refused, bob is busy in the other direction.
    let out = dial_as(&mut c, 20, "alice", ALICE, "bob", "d2");
    assert_eq!(out.status(), Some(503));
    assert!(String::from_utf8_lossy(&out.bytes).contains("limit: user_channels"));
    // And bob cannot make a second call either.
    let out = dial_as(&mut c, 30, "bob", BOB, "alice", "d3");
    assert_eq!(out.status(), Some(503));
    assert_eq!(c[0].tables().limits.user("", "bob").map(|u| u.1), Some(1));
}
