//! Authentication rules for REGISTER (crate `auth` module table), sans-IO: REGISTER → 401 →
//! REGISTER with credentials → 200, replays, expiry and stale, enumeration sameness,
//! username match, whitelists, malformed and mangled credentials.
#![allow(clippy::unwrap_used)]

mod auth_support;
mod common;

use auth_support::*;
use sipedge_core::auth::Algorithm;
use sipedge_core::{Core, LocalId, Millis};

/// REGISTER → 401 → REGISTER with credentials → 200, for both algorithms.
#[test]
fn register_challenge_then_ok_sha256_and_md5() {
    for alg in [Algorithm::Sha256, Algorithm::Md5] {
        let mut c = core();
        let r = register_as("alice");
        let a = answer_at(&mut c, 0, &r);
        assert_eq!(a.status(), 401);
        let www = headers(&a, "WWW-Authenticate");
        assert_eq!(www.len(), 2, "{www:?}");
        assert!(www[0].ends_with("algorithm=SHA-256"), "{}", www[0]);
        assert!(www[1].ends_with("algorithm=MD5"), "{}", www[1]);
        for w in &www {
            assert!(w.starts_with("Digest "), "{w}");
            assert_eq!(param(w, "realm").as_deref(), Some(REALM));
            assert_eq!(param(w, "qop").as_deref(), Some("auth"));
            assert!(!w.contains("stale"), "{w}");
        }
        assert!(bindings(&c, 0, "sip:alice@edge.example.com").is_empty());
        let cr = creds(
            alg,
            "alice",
            PASSWORD,
            &nonce_of(&a),
            Some(1),
            "REGISTER",
            &ruri(),
        );
        let a = answer_at(&mut c, 100, &with_auth(&r, &cr, 2));
        assert_eq!(a.status(), 200, "{alg:?}: {}", a.reason());
        assert_eq!(
            bindings(&c, 100, "sip:alice@edge.example.com"),
            ["sip:alice@192.0.2.50:40123"]
        );
        assert_eq!(c.auth_stats().digest_ok, 1);
    }
}

/// RFC 2069 form (no qop) for old phones; one use per nonce.
#[test]
fn no_qop_is_accepted_once_per_nonce() {
    let mut c = core();
    let r = register_as("alice");
    let n = nonce_of(&answer_at(&mut c, 0, &r));
    let cr = creds(
        Algorithm::Md5,
        "alice",
        PASSWORD,
        &n,
        None,
        "REGISTER",
        &ruri(),
    );
    assert_eq!(answer_at(&mut c, 10, &with_auth(&r, &cr, 2)).status(), 200);
    let a = answer_at(&mut c, 20, &with_auth(&r, &cr, 3));
    assert_eq!(a.status(), 401);
    assert_eq!(
        param(&headers(&a, "WWW-Authenticate")[0], "stale").as_deref(),
        Some("true")
    );
}

/// An unknown user and a wrong password get the same reply; neither registers.
#[test]
fn unknown_user_and_wrong_password_look_the_same() {
    let shape = |user: &str, password: &str| {
        let mut c = core();
        let r = register_as(user);
        let n = nonce_of(&answer_at(&mut c, 0, &r));
        let cr = creds(
            Algorithm::Sha256,
            user,
            password,
            &n,
            Some(1),
            "REGISTER",
            &ruri(),
        );
        let a = answer_at(&mut c, 10, &with_auth(&r, &cr, 2));
        let names: Vec<String> = a
            .msg()
            .headers()
            .map(|h| String::from_utf8_lossy(h.name_bytes).into_owned())
            .collect();
        let www: Vec<String> = headers(&a, "WWW-Authenticate")
            .iter()
            .map(|w| w.replace(&param(w, "nonce").unwrap(), "N"))
            .collect();
        assert!(bindings(&c, 10, &format!("sip:{user}@{DOMAIN}")).is_empty());
        assert_eq!(c.auth_stats().digest_failed, 1);
        (a.status(), a.reason(), names, www)
    };
    let wrong = shape("alice", "guess");
    let unknown = shape("mallory", "guess");
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong, unknown);
}

/// Only the first use of (nonce, nc) gets the 200: a retransmission of the authenticated
/// REGISTER gets a `stale=true` 401 (the UA answers it with a new nonce), as does a replayed
/// (nonce, nc) in a new request; a higher nc passes.
#[test]
fn replayed_nonce_count_is_refused() {
    let mut c = core();
    let r = register_as("alice");
    let n = nonce_of(&answer_at(&mut c, 0, &r));
    let cr = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    let ok = with_auth(&r, &cr, 2);
    assert_eq!(answer_at(&mut c, 10, &ok).status(), 200);
    let again = answer_at(&mut c, 20, &ok);
    assert_eq!(again.status(), 401, "retransmission");
    assert!(again.contacts().is_empty());
    let replay = with_auth(&r.clone().expires("0"), &cr, 3);
    let a = answer_at(&mut c, 30, &replay);
    assert_eq!(a.status(), 401);
    assert_eq!(
        param(&headers(&a, "WWW-Authenticate")[0], "stale").as_deref(),
        Some("true")
    );
    assert_eq!(
        bindings(&c, 30, "sip:alice@edge.example.com").len(),
        1,
        "unchanged"
    );
    let cr2 = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &n,
        Some(2),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(answer_at(&mut c, 40, &with_auth(&r, &cr2, 4)).status(), 200);
    assert!(c.auth_stats().replays >= 2);
}

/// Past `nonce_ttl_secs`: right password → stale=true; wrong one → plain 401.
#[test]
fn expired_nonce_is_stale_only_with_the_right_password() {
    let mut c = core();
    let r = register_as("alice");
    let n = nonce_of(&answer_at(&mut c, 0, &r));
    let late = 31_000;
    let bad = creds(
        Algorithm::Sha256,
        "alice",
        "nope",
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    let a = answer_at(&mut c, late, &with_auth(&r, &bad, 2));
    assert_eq!(a.status(), 401);
    assert_eq!(param(&headers(&a, "WWW-Authenticate")[0], "stale"), None);
    let good = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    let a = answer_at(&mut c, late, &with_auth(&r, &good, 3));
    assert_eq!(a.status(), 401);
    assert_eq!(
        param(&headers(&a, "WWW-Authenticate")[0], "stale").as_deref(),
        Some("true")
    );
    let fresh = nonce_of(&a);
    let good = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &fresh,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(
        answer_at(&mut c, late + 10, &with_auth(&r, &good, 4)).status(),
        200
    );
    // Just inside the lifetime is fine.
    let n = nonce_of(&answer_at(&mut c, 100_000, &r.clone().cseq(5)));
    let good = creds(
        Algorithm::Md5,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(
        answer_at(&mut c, 130_000, &with_auth(&r, &good, 6)).status(),
        200
    );
}

/// A nonce from a restarted edge (another secret, or the same secret and another
/// instance id) is not ours: a plain challenge, the response is not even evaluated.
#[test]
fn nonce_of_a_restarted_edge_is_refused() {
    for (secret, instance) in [(&b"other"[..], 1), (&b"k"[..], 2)] {
        let mut old = Core::new(auth_config(secret, instance));
        let r = register_as("alice");
        let n = nonce_of(&answer_at(&mut old, 0, &r));
        let mut c = core();
        let cr = creds(
            Algorithm::Sha256,
            "alice",
            PASSWORD,
            &n,
            Some(1),
            "REGISTER",
            &ruri(),
        );
        let a = answer_at(&mut c, 10, &with_auth(&r, &cr, 2));
        assert_eq!(a.status(), 401);
        assert_eq!(param(&headers(&a, "WWW-Authenticate")[0], "stale"), None);
        assert!(bindings(&c, 10, "sip:alice@edge.example.com").is_empty());
        assert_eq!(c.auth_stats().bad_nonce, 1);
        assert_eq!(c.auth_stats().digest_failed, 0, "response not evaluated");
    }
}

#[test]
fn digest_username_must_be_the_aor_user() {
    let mut c = core();
    let r = register_as("alice");
    let n = nonce_of(&answer_at(&mut c, 0, &r));
    let cr = creds(
        Algorithm::Sha256,
        "bob",
        "other",
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    let a = answer_at(&mut c, 10, &with_auth(&r, &cr, 2));
    assert_eq!(
        (a.status(), a.reason().as_str()),
        (403, "Authentication Username Mismatch")
    );
}

#[test]
fn whitelist_refuses_other_sources_even_with_the_password() {
    let mut c = core();
    let r = register_as("carol");
    let n = nonce_of(&answer_at(&mut c, 0, &r));
    let cr = creds(
        Algorithm::Sha256,
        "carol",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    let a = answer_at(&mut c, 10, &with_auth(&r, &cr, 2));
    assert_eq!(
        (a.status(), a.reason().as_str()),
        (403, "Source Address Not Allowed")
    );
    // From inside the whitelist.
    let from: std::net::SocketAddr = "10.1.2.3:5060".parse().unwrap();
    c.handle_datagram(Millis(20), LocalId(0), from, &r.clone().cseq(3).bytes());
    let n = nonce_of(&drain(&mut c)[0]);
    let cr = creds(
        Algorithm::Sha256,
        "carol",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    c.handle_datagram(Millis(30), LocalId(0), from, &with_auth(&r, &cr, 4).bytes());
    assert_eq!(drain(&mut c)[0].status(), 200);
}

#[test]
fn malformed_credentials_get_400() {
    let mut c = core();
    let r = register_as("alice");
    let a = answer_at(&mut c, 0, &with_auth(&r, "Digest username=\"alice", 2));
    assert_eq!(a.status(), 400);
    let a = answer_at(
        &mut c,
        0,
        &with_auth(
            &r,
            &format!("Digest username=\"alice\", realm=\"{REALM}\""),
            3,
        ),
    );
    assert_eq!(
        (a.status(), a.reason().as_str()),
        (400, "Incomplete Credentials")
    );
    // Credentials for another realm are not ours: a challenge.
    let a = answer_at(
        &mut c,
        0,
        &with_auth(&r, "Digest username=\"alice\", realm=\"elsewhere\", nonce=\"x\", uri=\"sip:x\", response=\"0\"", 4),
    );
    assert_eq!(a.status(), 401);
}

/// RFC 7616 §3.4.6: credentials whose `uri` names another resource than the Request-URI
/// get 400, even with the right password, and register nothing; the same URI written
/// differently (RFC 3261 §19.1.4: host case, an unknown parameter on one side) passes.
#[test]
fn digest_uri_must_name_the_request_uri() {
    let mut c = core();
    let r = register_as("alice");
    let n = nonce_of(&answer_at(&mut c, 0, &r));
    for (nc, other) in [
        (1, "sip:other.example.com"),
        (2, "sip:alice@edge.example.com"),
        (3, "sips:edge.example.com"),
        (4, "sip:edge.example.com:5070"),
        (5, "sip:edge.example.com;transport=tcp"),
        (6, "tel:+15551234"),
    ] {
        let cr = creds(
            Algorithm::Sha256,
            "alice",
            PASSWORD,
            &n,
            Some(nc),
            "REGISTER",
            other,
        );
        let a = answer_at(&mut c, 10, &with_auth(&r, &cr, 1 + nc));
        assert_eq!(
            (a.status(), a.reason().as_str()),
            (400, "Digest URI Mismatch"),
            "uri={other}"
        );
    }
    assert!(bindings(&c, 10, "sip:alice@edge.example.com").is_empty());
    assert_eq!(c.auth_stats().digest_ok, 0);
    // Equivalent by §19.1.4: the nonce is still fresh (nothing above consumed an nc).
    let cr = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        "sip:EDGE.Example.COM;lr",
    );
    let a = answer_at(&mut c, 20, &with_auth(&r, &cr, 20));
    assert_eq!(a.status(), 200, "{}", a.reason());
    assert_eq!(
        bindings(&c, 20, "sip:alice@edge.example.com"),
        ["sip:alice@192.0.2.50:40123"]
    );
    // The shard remembers the last HA2: alternating URIs (and algorithms) still verify.
    for (i, (alg, uri)) in [
        (Algorithm::Sha256, ruri()),
        (Algorithm::Md5, ruri()),
        (Algorithm::Sha256, "sip:EDGE.Example.COM;lr".to_string()),
        (Algorithm::Md5, "sip:edge.example.com;lr".to_string()),
        (Algorithm::Sha256, ruri()),
    ]
    .into_iter()
    .enumerate()
    {
        let cseq = 30 + 2 * i as u32;
        let n = nonce_of(&answer_at(&mut c, 30, &r.clone().cseq(cseq)));
        let cr = creds(alg, "alice", PASSWORD, &n, Some(1), "REGISTER", &uri);
        let a = answer_at(&mut c, 31, &with_auth(&r, &cr, cseq + 1));
        assert_eq!(a.status(), 200, "{alg:?} {uri}: {}", a.reason());
    }
}

/// `[auth] uri_must_match = false` (for clients such as stock SIPp scenarios that put
/// another URI in `uri`): the response is still checked over the `uri` the client sent, so
/// the right password passes and a wrong one still gets 401.
#[test]
fn uri_check_can_be_turned_off() {
    let mut spec = spec();
    spec.settings.uri_must_match = false;
    let mut cfg = auth_config(b"k", 1);
    cfg.auth.db = sipedge_core::auth::AuthDb::build(&spec)
        .unwrap()
        .into_handle();
    let mut c = Core::new(cfg);
    let r = register_as("alice");
    let n = nonce_of(&answer_at(&mut c, 0, &r));
    let other = "sip:127.0.0.1:5060";
    let wrong = creds(
        Algorithm::Sha256,
        "alice",
        "nope",
        &n,
        Some(1),
        "REGISTER",
        other,
    );
    assert_eq!(
        answer_at(&mut c, 10, &with_auth(&r, &wrong, 2)).status(),
        401
    );
    let n = nonce_of(&answer_at(&mut c, 10, &r.clone().cseq(3)));
    let cr = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        other,
    );
    let a = answer_at(&mut c, 20, &with_auth(&r, &cr, 4));
    assert_eq!(a.status(), 200, "{}", a.reason());
    assert_eq!(
        bindings(&c, 20, "sip:alice@edge.example.com"),
        ["sip:alice@192.0.2.50:40123"]
    );
}

mod robust {
    use super::*;
    use proptest::prelude::*;

    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("Digest ".to_string()),
            Just("username=\"alice\"".to_string()),
            Just(format!("realm=\"{REALM}\"")),
            Just("realm=other".to_string()),
            Just("uri=\"sip:edge.example.com\"".to_string()),
            Just("response=\"00112233445566778899aabbccddeeff\"".to_string()),
            Just("qop=auth".to_string()),
            Just("qop=auth-int".to_string()),
            Just("nc=00000001".to_string()),
            Just("nc=zz".to_string()),
            Just("cnonce=\"x\"".to_string()),
            Just("algorithm=SHA-256".to_string()),
            Just("algorithm=MD5-sess".to_string()),
            "nonce=\"[0-9a-f]{0,70}\"",
            "[ -~]{0,12}",
            Just(", ".to_string()),
            Just("\"".to_string()),
            Just("\\".to_string()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Whatever the Authorization header holds, the answer is a challenge, 400 or
        /// 403 — never a panic, never a 200, nothing registered — and the edge still
        /// authenticates a real phone afterwards.
        #[test]
        fn mangled_credentials_never_register(parts in proptest::collection::vec(fragment(), 0..12)) {
            let mut c = core();
            let r = register_as("alice");
            let value = parts.concat();
            let bad = r.clone().cseq(2).extra(&format!("Authorization: {value}"));
            let answers = send_at(&mut c, 0, &bad);
            prop_assert!(answers.len() <= 1);
            if let Some(a) = answers.first() {
                prop_assert!([400, 401, 403].contains(&a.status()), "{} for {value:?}", a.status());
            }
            prop_assert!(bindings(&c, 0, "sip:alice@edge.example.com").is_empty());
            let n = nonce_of(&answer_at(&mut c, 1, &r.clone().cseq(3)));
            let cr = creds(Algorithm::Md5, "alice", PASSWORD, &n, Some(1), "REGISTER", &ruri());
            prop_assert_eq!(answer_at(&mut c, 2, &with_auth(&r, &cr, 4)).status(), 200);
        }
    }
}
