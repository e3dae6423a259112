//! Issue 13, authentication holes, sans-IO: the nonce is verified before the response (a
//! made-up nonce is no password oracle), the algorithm is bound to the challenge, a replayed
//! REGISTER gets a small 401 (never the 200 OK listing every contact), and an IP-auth source
//! registers only the AoRs its `[[ip_auth]]` entry names (and may query any).
#![allow(clippy::unwrap_used)]

mod auth_support;
mod common;

use std::net::SocketAddr;

use auth_support::*;
use sipedge_core::auth::{Algorithm, AuthDb, AuthSpec};
use sipedge_core::{Core, LocalId, Millis};

fn from(c: &mut Core, now: u64, src: &str, r: &Reg) -> Answer {
    let src: SocketAddr = src.parse().unwrap();
    c.handle_datagram(Millis(now), LocalId(0), src, &r.bytes());
    let mut a = drain(c);
    assert_eq!(a.len(), 1);
    a.remove(0)
}

fn stale(a: &Answer) -> Option<String> {
    param(&headers(a, "WWW-Authenticate")[0], "stale")
}

/// The right password under a nonce we never issued (garbage, or ours with a broken MAC)
/// gets a plain 401: `stale=true` would confirm the password. The response is not even
/// evaluated. An unknown user and a wrong password still look the same.
#[test]
fn a_made_up_nonce_gets_a_plain_challenge_without_evaluating_the_response() {
    let mut c = core();
    let r = register_as("alice");
    let real = nonce_of(&answer_at(&mut c, 0, &r));
    let mut broken = real.clone().into_bytes();
    broken[40] = if broken[40] == b'0' { b'1' } else { b'0' };
    let broken = String::from_utf8(broken).unwrap();
    let garbage = "deadbeef".to_string();
    for (n, nonce) in [garbage, broken].iter().enumerate() {
        let mut shapes = Vec::new();
        for (user, pw) in [("alice", PASSWORD), ("alice", "guess"), ("mallory", "x")] {
            let cr = creds(
                Algorithm::Sha256,
                user,
                pw,
                nonce,
                Some(1),
                "REGISTER",
                &ruri(),
            );
            let req = with_auth(&register_as(user), &cr, 2 + n as u32);
            let a = answer_at(&mut c, 10, &req);
            assert_eq!(a.status(), 401, "{user}/{pw}");
            assert_eq!(stale(&a), None, "{user}/{pw}: no oracle");
            shapes.push((
                a.status(),
                a.reason(),
                headers(&a, "WWW-Authenticate").len(),
            ));
        }
        assert!(shapes.windows(2).all(|w| w[0] == w[1]), "{shapes:?}");
    }
    assert!(bindings(&c, 10, "sip:alice@edge.example.com").is_empty());
    assert_eq!(c.auth_stats().bad_nonce, 6);
    assert_eq!(c.auth_stats().digest_failed, 0, "no response was hashed");
}

/// The algorithm a response is checked under must have been offered by the challenge that
/// issued its nonce: a nonce from an SHA-256-only challenge does not take an MD5 response
/// (here: algorithm absent, which means MD5), even after a reload re-enabled MD5.
#[test]
fn the_algorithm_is_bound_to_the_challenge() {
    let sha_only = |algs: Vec<Algorithm>| {
        let mut s: AuthSpec = spec();
        s.settings.algorithms = algs;
        AuthDb::build(&s).unwrap()
    };
    let mut cfg = auth_config(b"k", 1);
    cfg.auth.db = sha_only(vec![Algorithm::Sha256]).into_handle();
    let mut c = Core::new(cfg);
    let r = register_as("alice");
    let a = answer_at(&mut c, 0, &r);
    assert_eq!(headers(&a, "WWW-Authenticate").len(), 1);
    let n = nonce_of(&a);
    let auth = std::sync::Arc::new(sha_only(vec![Algorithm::Sha256, Algorithm::Md5]));
    c.handle_config(&sipedge_core::ReloadTables { auth, ..c.tables() });
    // An MD5 response with the right password, `algorithm` left out (RFC 2617 default).
    let md5 = creds(
        Algorithm::Md5,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    )
    .replace(", algorithm=MD5", "");
    let a = answer_at(&mut c, 10, &with_auth(&r, &md5, 2));
    assert_eq!(a.status(), 401, "downgraded to MD5");
    assert!(bindings(&c, 10, "sip:alice@edge.example.com").is_empty());
    // The SHA-256 answer to the same nonce passes.
    let sha = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(answer_at(&mut c, 20, &with_auth(&r, &sha, 3)).status(), 200);
}

/// A user with SHA-256 credentials only is never checked under MD5.
#[test]
fn a_sha256_only_user_cannot_answer_with_md5() {
    let mut s = spec();
    s.users[0].ha1_md5 = None;
    let mut cfg = auth_config(b"k", 1);
    cfg.auth.db = AuthDb::build(&s).unwrap().into_handle();
    let mut c = Core::new(cfg);
    let r = register_as("alice");
    let n = nonce_of(&answer_at(&mut c, 0, &r));
    let md5 = creds(
        Algorithm::Md5,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    )
    .replace(", algorithm=MD5", "");
    assert_eq!(answer_at(&mut c, 10, &with_auth(&r, &md5, 2)).status(), 401);
    let sha = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &n,
        Some(2),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(answer_at(&mut c, 20, &with_auth(&r, &sha, 3)).status(), 200);
}

/// A captured authenticated REGISTER replayed from a forged source gets a small 401 with a
/// fresh nonce, never the 200 OK listing every contact; the RFC 2069 form (no qop) likewise.
/// The legitimate phone goes on by answering the new challenge.
#[test]
fn a_replayed_register_is_not_reflected() {
    for qop in [Some(1), None] {
        let mut c = core();
        // Ten contacts make the 200 OK large.
        let mut r = register_as("alice");
        for k in 0..9 {
            r = r.contact(&format!(
                "<sip:alice@192.0.2.{k}:5060;line=abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789{k}>"
            ));
        }
        let n = nonce_of(&answer_at(&mut c, 0, &r));
        let alg = if qop.is_some() {
            Algorithm::Sha256
        } else {
            Algorithm::Md5
        };
        let cr = creds(alg, "alice", PASSWORD, &n, qop, "REGISTER", &ruri());
        let signed = with_auth(&r, &cr, 2);
        let ok = answer_at(&mut c, 10, &signed);
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.contacts().len(), 10);
        for src in ["203.0.113.66:5060", PHONE] {
            let a = from(&mut c, 20, src, &signed);
            assert_eq!(a.status(), 401, "{qop:?} from {src}");
            assert!(a.contacts().is_empty());
            assert!(
                a.bytes.len() < ok.bytes.len() / 2,
                "{} vs {}",
                a.bytes.len(),
                ok.bytes.len()
            );
            assert_eq!(stale(&a).as_deref(), Some("true"));
        }
        // The phone whose 200 was lost answers the fresh challenge and is registered.
        let again = from(&mut c, 30, PHONE, &signed);
        let fresh = nonce_of(&again);
        let cr = creds(alg, "alice", PASSWORD, &fresh, qop, "REGISTER", &ruri());
        let a = answer_at(&mut c, 40, &with_auth(&r, &cr, 3));
        assert_eq!(a.status(), 200);
        assert_eq!(a.contacts().len(), 10);
    }
}

/// A source inside an `[[ip_auth]]` prefix registers without digest only the AoRs its entry
/// names; any other AoR — a user's — needs that user's credentials.
#[test]
fn an_ip_auth_source_registers_only_the_aors_its_entry_names() {
    let mut c = core();
    let trunk = "198.51.100.7:5060";
    // Named by the trunk's entry: no challenge.
    assert_eq!(from(&mut c, 0, trunk, &register_as("pbx1")).status(), 200);
    assert_eq!(
        bindings(&c, 0, "sip:pbx1@edge.example.com"),
        ["sip:pbx1@192.0.2.50:40123"]
    );
    // A user's AoR: challenged; a hijack without the password fails.
    let r = register_as("alice");
    let a = from(&mut c, 10, trunk, &r);
    assert_eq!(a.status(), 401);
    let cr = creds(
        Algorithm::Sha256,
        "alice",
        "guess",
        &nonce_of(&a),
        Some(1),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(
        from(&mut c, 20, trunk, &with_auth(&r, &cr, 2)).status(),
        401
    );
    assert!(bindings(&c, 20, "sip:alice@edge.example.com").is_empty());
    // A query (no Contact) changes nothing and is answered on the address.
    let query = reg().call_id("q1").to(&format!("<sip:alice@{DOMAIN}>"));
    let a = from(&mut c, 25, trunk, &query);
    assert_eq!((a.status(), a.contacts().len()), (200, 0));
    // With alice's credentials it registers as usual.
    let a = from(&mut c, 30, trunk, &r.clone().cseq(3));
    let cr = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &nonce_of(&a),
        Some(1),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(
        from(&mut c, 40, trunk, &with_auth(&r, &cr, 4)).status(),
        200
    );
    // A longer prefix (acme's /25, no register list) and a CLI prefix name nothing.
    assert_eq!(
        from(&mut c, 50, "198.51.100.200:5060", &register_as("pbx1")).status(),
        401
    );
    assert_eq!(
        from(&mut c, 50, "203.0.113.9:5060", &register_as("bob")).status(),
        401
    );
}
