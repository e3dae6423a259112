//! Issue 15, items 3 and 5, sans-IO: what stock clients need from the default auth
//! settings. The default offers MD5 alone (baresip 1.0 fails on any other challenge, SIPp
//! before 3.7.3 and sipsak answer only the first); SHA-256 is offered where asked for —
//! `[auth]`, an account, a user — and a user with only a SHA-256 HA1 gets only SHA-256. A
//! REGISTER's digest `uri` may name this edge itself (SIPp without `-auth_uri`), never
//! another host. Digest usernames follow `[registrar] case_sensitive`.
#![allow(clippy::unwrap_used)]

mod auth_support;
mod common;

use auth_support::*;
use sipedge_core::auth::{ha1, Algorithm, AuthDb, AuthSettings, AuthSpec, UserSpec};
use sipedge_core::{Core, LocalId, Millis};

/// [`auth_support::spec`] with `[auth] algorithms` at its default, changed by `f`.
fn core_with(f: impl FnOnce(&mut AuthSpec)) -> Core {
    let mut s = spec();
    s.settings.algorithms = AuthSettings::default().algorithms;
    f(&mut s);
    let mut cfg = auth_config(b"k", 1);
    cfg.auth.db = AuthDb::build(&s).unwrap().into_handle();
    Core::new(cfg)
}

/// The `algorithm=` of every challenge header of `a`, in order.
fn offered(a: &Answer) -> Vec<String> {
    let name = if a.status() == 401 {
        "WWW-Authenticate"
    } else {
        "Proxy-Authenticate"
    };
    headers(a, name)
        .iter()
        .map(|h| param(h, "algorithm").unwrap())
        .collect()
}

/// A user with only a SHA-256 HA1 (as `ha1_sha256 = "…"` gives).
fn sha256_only(name: &str) -> UserSpec {
    UserSpec {
        ha1_md5: None,
        ..user(name, PASSWORD)
    }
}

/// The INVITE of [`auth_support::invite`] from `from_user`, and its one reply.
fn invite_answer(c: &mut Core, now: u64, from_user: &str, extra: &str) -> Answer {
    c.handle_datagram(
        Millis(now),
        LocalId(0),
        PHONE.parse().unwrap(),
        &invite(from_user, extra),
    );
    let mut r = drain(c);
    assert_eq!(r.len(), 1, "one reply");
    r.remove(0)
}

/// REGISTER with credentials for `alg` on a fresh challenge; the reply.
fn register_with(c: &mut Core, user: &str, alg: Algorithm, uri: &str, cseq: u32) -> Answer {
    let r = register_as(user).cseq(cseq);
    let n = nonce_of(&answer_at(c, u64::from(cseq), &r));
    let cr = creds(alg, user, PASSWORD, &n, Some(1), "REGISTER", uri);
    answer_at(c, u64::from(cseq) + 1, &with_auth(&r, &cr, cseq + 1))
}

/// The default challenges offer MD5 alone, to REGISTER and INVITE alike, and MD5
/// credentials register; SHA-256 credentials are not taken on an MD5-only nonce.
#[test]
fn the_default_offers_md5_alone() {
    let mut c = core_with(|_| {});
    let a = answer_at(&mut c, 0, &register_as("alice"));
    assert_eq!((a.status(), offered(&a)), (401, vec!["MD5".to_string()]));
    // An unknown user is challenged the same way.
    let a = answer_at(&mut c, 0, &register_as("mallory"));
    assert_eq!((a.status(), offered(&a)), (401, vec!["MD5".to_string()]));
    let a = invite_answer(&mut c, 0, "alice", "");
    assert_eq!((a.status(), offered(&a)), (407, vec!["MD5".to_string()]));
    let a = register_with(&mut c, "alice", Algorithm::Md5, &ruri(), 10);
    assert_eq!(a.status(), 200, "{}", a.reason());
    let a = register_with(&mut c, "bob", Algorithm::Sha256, &ruri(), 20);
    assert_eq!(a.status(), 401, "SHA-256 was not offered");
    assert!(bindings(&c, 30, &format!("sip:bob@{DOMAIN}")).is_empty());
}

/// SHA-256 where it is asked for: a user with only a SHA-256 HA1 is challenged with
/// SHA-256 alone (and registers with it); an account's or a user's own `algorithms` list
/// is what its users are offered, in its order, for 401 and 407 alike; everybody else keeps
/// the MD5 default. The claimed user is found ignoring case, like its AoR.
#[test]
fn sha256_is_offered_where_asked_for() {
    let mut c = core_with(|s| {
        s.users.push(sha256_only("dave"));
        s.accounts[1].algorithms = vec![Algorithm::Sha256, Algorithm::Md5];
        let mut erin = user("erin", PASSWORD);
        erin.account = Some("trunk".into());
        s.users.push(erin);
        let mut frank = user("frank", PASSWORD);
        frank.algorithms = vec![Algorithm::Sha256];
        s.users.push(frank);
    });
    let a = answer_at(&mut c, 0, &register_as("dave"));
    assert_eq!(offered(&a), ["SHA-256"]);
    let a = answer_at(&mut c, 0, &register_as("DAVE"));
    assert_eq!(offered(&a), ["SHA-256"], "the AoR's case does not matter");
    let a = register_with(&mut c, "dave", Algorithm::Sha256, &ruri(), 10);
    assert_eq!(a.status(), 200, "{}", a.reason());
    let a = answer_at(&mut c, 0, &register_as("erin"));
    assert_eq!(offered(&a), ["SHA-256", "MD5"]);
    let a = invite_answer(&mut c, 0, "erin", "");
    assert_eq!(offered(&a), ["SHA-256", "MD5"]);
    let a = answer_at(&mut c, 0, &register_as("frank"));
    assert_eq!(offered(&a), ["SHA-256"]);
    let a = invite_answer(&mut c, 0, "frank", "");
    assert_eq!(offered(&a), ["SHA-256"]);
    // frank answers only what he is offered: MD5 is refused even on a nonce offering it.
    let a = register_with(&mut c, "frank", Algorithm::Md5, &ruri(), 20);
    assert_eq!(a.status(), 401);
    let a = register_with(&mut c, "frank", Algorithm::Sha256, &ruri(), 30);
    assert_eq!(a.status(), 200, "{}", a.reason());
    for who in ["alice", "mallory"] {
        let a = answer_at(&mut c, 0, &register_as(who));
        assert_eq!(offered(&a), ["MD5"], "{who}");
    }
}

/// A REGISTER's digest `uri` may name this edge itself instead of the Request-URI (one
/// of our domains or addresses, on our port or none: SIPp's `sip:ip:port`); a URI naming
/// another host, port, scheme, transport, maddr or a user is still 400, and so is any
/// such URI on a non-REGISTER request.
#[test]
fn register_digest_uri_may_name_this_edge() {
    let mut c = core_with(|_| {});
    let mut cseq = 1;
    for ours in [
        "sip:127.0.0.1:5060",
        "sip:127.0.0.1",
        "sip:EDGE.example.com:5060",
        "sip:edge.example.com;transport=udp",
    ] {
        let a = register_with(&mut c, "alice", Algorithm::Md5, ours, cseq);
        assert_eq!(a.status(), 200, "uri={ours}: {}", a.reason());
        cseq += 2;
    }
    for other in [
        "sip:192.0.2.99:5060",
        "sip:127.0.0.1:5070",
        "sip:127.0.0.1;maddr=192.0.2.9",
        "sip:127.0.0.1;transport=tcp",
        "sips:127.0.0.1:5060",
        "sip:alice@127.0.0.1:5060",
        "sip:other.example.com",
    ] {
        let a = register_with(&mut c, "bob", Algorithm::Md5, other, cseq);
        assert_eq!(
            (a.status(), a.reason().as_str()),
            (400, "Digest URI Mismatch"),
            "uri={other}"
        );
        cseq += 2;
    }
    assert!(bindings(&c, 100, &format!("sip:bob@{DOMAIN}")).is_empty());
    // An INVITE's credentials must name its own Request-URI.
    let n = nonce_of(&invite_answer(&mut c, 200, "alice", ""));
    let cr = creds(
        Algorithm::Md5,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "INVITE",
        "sip:127.0.0.1:5060",
    );
    let a = invite_answer(
        &mut c,
        201,
        "alice",
        &format!("Proxy-Authorization: {cr}\r\n"),
    );
    assert_eq!(
        (a.status(), a.reason().as_str()),
        (400, "Digest URI Mismatch")
    );
}

/// Digest usernames follow `[registrar] case_sensitive` (default false, like AoRs): a user
/// whose HA1 was made for the spelling its phone sends (`Alice`) is found under `alice`;
/// with `case_sensitive = true` it is not (401 like an unknown user).
#[test]
fn digest_usernames_follow_case_sensitive() {
    for case_sensitive in [false, true] {
        let mut c = core_with(|s| {
            s.settings.case_sensitive = case_sensitive;
            // Provisioned as `alice`, its HA1 exported for `Alice` (what the phone sends).
            let h = ha1(
                Algorithm::Md5,
                b"Alice",
                REALM.as_bytes(),
                PASSWORD.as_bytes(),
            );
            let mut md5 = [0u8; 32];
            md5.copy_from_slice(&h[..32]);
            s.users[0] = UserSpec {
                username: "alice".into(),
                ha1_md5: Some(md5),
                ..UserSpec::default()
            };
        });
        let r = register_as("Alice");
        let n = nonce_of(&answer_at(&mut c, 0, &r));
        let cr = creds(
            Algorithm::Md5,
            "Alice",
            PASSWORD,
            &n,
            Some(1),
            "REGISTER",
            &ruri(),
        );
        let a = answer_at(&mut c, 1, &with_auth(&r, &cr, 2));
        let want = if case_sensitive { 401 } else { 200 };
        assert_eq!(a.status(), want, "case_sensitive={case_sensitive}");
    }
}
