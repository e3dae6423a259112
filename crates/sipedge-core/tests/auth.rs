//! Authentication rules (crate `auth` module table), sans-IO: REGISTER → 401 → REGISTER
//! with credentials → 200, replays, expiry and stale, enumeration sameness, whitelists,
//! IP/CIDR precedence, CLI selection, the relay's hook, reload.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use sipedge_core::auth::{expected_response, Algorithm, DigestInput};
use sipedge_core::auth::{
    ha1, AccountSpec, AuthDb, AuthMethod, AuthMode, AuthOutcome, AuthReject, AuthSettings,
    AuthSpec, IpAuthSpec, UserSpec,
};
use sipedge_core::{Core, CoreConfig, LocalId, Millis, ShardId};
use sipedge_msg::Message;

const REALM: &str = DOMAIN;
const PASSWORD: &str = "s3cret";

fn user(name: &str, password: &str) -> UserSpec {
    let md5 = ha1(
        Algorithm::Md5,
        name.as_bytes(),
        REALM.as_bytes(),
        password.as_bytes(),
    );
    let mut m = [0u8; 32];
    m.copy_from_slice(&md5[..32]);
    UserSpec {
        username: name.into(),
        account: Some("acme".into()),
        ha1_md5: Some(m),
        ha1_sha256: Some(ha1(
            Algorithm::Sha256,
            name.as_bytes(),
            REALM.as_bytes(),
            password.as_bytes(),
        )),
        ..UserSpec::default()
    }
}

fn spec() -> AuthSpec {
    let mut carol = user("carol", PASSWORD);
    carol.ip_whitelist = vec!["10.0.0.0/8".parse().unwrap()];
    AuthSpec {
        settings: AuthSettings {
            realm: REALM.into(),
            register: AuthMode::Digest,
            invite: AuthMode::Digest,
            ..AuthSettings::default()
        },
        accounts: vec![
            AccountSpec {
                name: "acme".into(),
                ..AccountSpec::default()
            },
            AccountSpec {
                name: "trunk".into(),
                ..AccountSpec::default()
            },
            AccountSpec {
                name: "retail".into(),
                cli: vec!["^\\+?1555".into()],
                ..AccountSpec::default()
            },
            AccountSpec {
                name: "wholesale".into(),
                cli: vec!["^\\+?44".into(), "^0044".into()],
                ..AccountSpec::default()
            },
        ],
        users: vec![user("alice", PASSWORD), user("bob", "other"), carol],
        ip_auth: vec![
            IpAuthSpec {
                cidr: "198.51.100.0/24".parse().unwrap(),
                account: "trunk".into(),
                cli_auth: false,
            },
            IpAuthSpec {
                cidr: "198.51.100.128/25".parse().unwrap(),
                account: "acme".into(),
                cli_auth: false,
            },
            IpAuthSpec {
                cidr: "203.0.113.0/24".parse().unwrap(),
                account: "retail".into(),
                cli_auth: true,
            },
            IpAuthSpec {
                cidr: "203.0.113.0/24".parse().unwrap(),
                account: "wholesale".into(),
                cli_auth: true,
            },
            IpAuthSpec {
                cidr: "2001:db8:1::/48".parse().unwrap(),
                account: "trunk".into(),
                cli_auth: false,
            },
        ],
    }
}

fn auth_config(secret: &[u8], instance: u32) -> CoreConfig {
    let mut c = config();
    c.auth.db = AuthDb::build(&spec()).unwrap().into_handle();
    c.auth.nonce_secret = secret.to_vec();
    c.auth.instance = instance;
    c.auth.nc_window = 1024;
    c
}

fn core() -> Core {
    Core::new(auth_config(b"k", 1))
}

/// A challenge header's parameter.
fn param(h: &str, name: &str) -> Option<String> {
    let i = h.find(&format!("{name}="))? + name.len() + 1;
    let rest = &h[i..];
    let v = if let Some(r) = rest.strip_prefix('"') {
        &r[..r.find('"')?]
    } else {
        rest.split([',', ' ']).next()?
    };
    Some(v.to_string())
}

/// Every value of header `name` in a reply.
fn headers(a: &Answer, name: &str) -> Vec<String> {
    a.msg()
        .headers()
        .filter(|h| h.name_bytes.eq_ignore_ascii_case(name.as_bytes()))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .collect()
}

fn nonce_of(a: &Answer) -> String {
    let name = if a.status() == 401 {
        "WWW-Authenticate"
    } else {
        "Proxy-Authenticate"
    };
    param(&headers(a, name)[0], "nonce").unwrap()
}

/// Credentials header value answering `nonce` for `method` / `uri`.
fn creds(
    alg: Algorithm,
    user: &str,
    password: &str,
    nonce: &str,
    nc: Option<u32>,
    method: &str,
    uri: &str,
) -> String {
    let h = ha1(alg, user.as_bytes(), REALM.as_bytes(), password.as_bytes());
    let ncs = nc.map(|n| format!("{n:08x}"));
    let input = DigestInput {
        method: method.as_bytes(),
        uri: uri.as_bytes(),
        nonce: nonce.as_bytes(),
        qop_auth: ncs.as_deref().map(|n| (n.as_bytes(), &b"0a4f113b"[..])),
    };
    let r = expected_response(alg, &h[..alg.hex_len()], &input);
    let r = std::str::from_utf8(&r[..alg.hex_len()]).unwrap();
    let alg = std::str::from_utf8(alg.token()).unwrap();
    match ncs {
        Some(nc) => format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm={alg}, qop=auth, nc={nc}, cnonce=\"0a4f113b\""
        ),
        None => format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm={alg}"
        ),
    }
}

fn register_as(user: &str) -> Reg {
    reg()
        .to(&format!("<sip:{user}@{DOMAIN}>"))
        .contact(&format!("<sip:{user}@192.0.2.50:40123>"))
}

fn with_auth(r: &Reg, creds: &str, cseq: u32) -> Reg {
    r.clone()
        .cseq(cseq)
        .extra(&format!("Authorization: {creds}"))
}

fn ruri() -> String {
    format!("sip:{DOMAIN}")
}

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

/// A retransmission of the authenticated REGISTER gets its 200 again; a replayed
/// (nonce, nc) in a new request gets stale=true; a higher nc passes.
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
    assert_eq!(answer_at(&mut c, 20, &ok).status(), 200, "retransmission");
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
/// instance id) is refused.
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
        assert_eq!(
            param(&headers(&a, "WWW-Authenticate")[0], "stale").as_deref(),
            Some("true")
        );
        assert!(bindings(&c, 10, "sip:alice@edge.example.com").is_empty());
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

fn invite(from_user: &str, extra: &str) -> Vec<u8> {
    format!(
        "INVITE sip:+15551234@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.50:40123;branch=z9hG4bK-i1\r\nMax-Forwards: 70\r\nFrom: <sip:{from_user}@{DOMAIN}>;tag=a\r\nTo: <sip:+15551234@{DOMAIN}>\r\nCall-ID: i1\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn outcome(c: &mut Core, now: u64, from: &str, bytes: &[u8]) -> AuthOutcome {
    let msg = Message::parse(bytes).unwrap();
    c.authenticate_request(Millis(now), from.parse().unwrap(), &msg)
}

fn account_of(c: &Core, o: AuthOutcome) -> (AuthMethod, String) {
    let AuthOutcome::Authenticated(ok) = o else {
        panic!("not authenticated: {o:?}")
    };
    let db = c.auth_db();
    (
        ok.method,
        db.account(ok.account.unwrap()).unwrap().name.clone(),
    )
}

/// IP auth wins over digest (never combined), longest prefix first, IPv4 and IPv6.
#[test]
fn ip_auth_takes_precedence_longest_prefix_first() {
    let mut c = core();
    let i = invite("alice", "");
    let o = outcome(&mut c, 0, "198.51.100.7:5060", &i);
    assert_eq!(account_of(&c, o), (AuthMethod::Ip, "trunk".into()));
    let o = outcome(&mut c, 0, "198.51.100.200:5060", &i);
    assert_eq!(account_of(&c, o), (AuthMethod::Ip, "acme".into()));
    let o = outcome(&mut c, 0, "[2001:db8:1::9]:5060", &i);
    assert_eq!(account_of(&c, o), (AuthMethod::Ip, "trunk".into()));
    // Wrong credentials from an IP-auth source do not matter: digest is not consulted.
    let wrong = invite(
        "alice",
        "Proxy-Authorization: Digest username=\"alice\", realm=\"x\"\r\n",
    );
    let o = outcome(&mut c, 0, "198.51.100.7:5060", &wrong);
    assert_eq!(account_of(&c, o), (AuthMethod::Ip, "trunk".into()));
    // A REGISTER from an IP-auth source needs no digest either.
    let from: std::net::SocketAddr = "198.51.100.7:5060".parse().unwrap();
    c.handle_datagram(Millis(1), LocalId(0), from, &register_as("alice").bytes());
    assert_eq!(drain(&mut c)[0].status(), 200);
    // Elsewhere: digest.
    let o = outcome(&mut c, 0, "192.0.2.50:5060", &i);
    assert_eq!(
        o,
        AuthOutcome::Rejected(AuthReject::Challenge { stale: false })
    );
}

/// Several cli_auth accounts on one prefix: the caller number picks; P-Asserted-Identity
/// before From; no match → 403.
#[test]
fn cli_auth_picks_the_account_by_caller_number() {
    let mut c = core();
    let src = "203.0.113.9:5060";
    let o = outcome(&mut c, 0, src, &invite("+15550001", ""));
    assert_eq!(account_of(&c, o), (AuthMethod::Cli, "retail".into()));
    let o = outcome(&mut c, 0, src, &invite("00447700900123", ""));
    assert_eq!(account_of(&c, o), (AuthMethod::Cli, "wholesale".into()));
    let pai = "P-Asserted-Identity: <sip:+447700900123@carrier.example>\r\n";
    let o = outcome(&mut c, 0, src, &invite("+15550001", pai));
    assert_eq!(account_of(&c, o), (AuthMethod::Cli, "wholesale".into()));
    let pai_tel = "P-Asserted-Identity: \"X\" <tel:+15559876>\r\n";
    let o = outcome(&mut c, 0, src, &invite("anonymous", pai_tel));
    assert_eq!(account_of(&c, o), (AuthMethod::Cli, "retail".into()));
    let bytes = invite("+3312345", "");
    let o = outcome(&mut c, 0, src, &bytes);
    let AuthOutcome::Rejected(rej) = o else {
        panic!("{o:?}")
    };
    assert_eq!(rej, AuthReject::Forbidden(b"CLI Not Authorized"));
    let msg = Message::parse(&bytes).unwrap();
    c.send_auth_rejection(Millis(0), LocalId(0), src.parse().unwrap(), &msg, rej);
    let a = drain(&mut c);
    assert_eq!(
        (a[0].status(), a[0].reason().as_str()),
        (403, "CLI Not Authorized")
    );
}

/// The relay's hook: 407 with Proxy-Authenticate, then the user; a second use of the
/// same (nonce, nc) is a replay; a nonce issued by another shard is stale.
#[test]
fn requests_are_challenged_with_407() {
    let mut c = core();
    let src = "192.0.2.50:40123";
    let bytes = invite("alice", "");
    let o = outcome(&mut c, 0, src, &bytes);
    let AuthOutcome::Rejected(rej) = o else {
        panic!("{o:?}")
    };
    let msg = Message::parse(&bytes).unwrap();
    c.send_auth_rejection(Millis(0), LocalId(0), src.parse().unwrap(), &msg, rej);
    let a = drain(&mut c).remove(0);
    assert_eq!(a.status(), 407);
    assert_eq!(headers(&a, "Proxy-Authenticate").len(), 2);
    assert!(headers(&a, "WWW-Authenticate").is_empty());
    let uri = format!("sip:+15551234@{DOMAIN}");
    let cr = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &nonce_of(&a),
        Some(1),
        "INVITE",
        &uri,
    );
    let with = invite("alice", &format!("Proxy-Authorization: {cr}\r\n"));
    let o = outcome(&mut c, 10, src, &with);
    let AuthOutcome::Authenticated(ok) = o else {
        panic!("{o:?}")
    };
    assert_eq!(ok.method, AuthMethod::Digest);
    assert_eq!(
        c.auth_db().user(ok.user.unwrap()).unwrap().spec.username,
        "alice"
    );
    assert_eq!(
        outcome(&mut c, 20, src, &with),
        AuthOutcome::Rejected(AuthReject::Challenge { stale: true })
    );
    // Authorization (not Proxy-) does not answer a 407.
    let cr2 = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &nonce_of(&a),
        Some(2),
        "INVITE",
        &uri,
    );
    let wrong_header = invite("alice", &format!("Authorization: {cr2}\r\n"));
    assert_eq!(
        outcome(&mut c, 20, src, &wrong_header),
        AuthOutcome::Rejected(AuthReject::Challenge { stale: false })
    );
    // From a foreign domain: not one of our users, not challenged, marked Foreign.
    let foreign = String::from_utf8(invite("carrier", "")).unwrap().replace(
        &format!("<sip:carrier@{DOMAIN}>"),
        "<sip:+4420@carrier.example>",
    );
    let o = outcome(&mut c, 25, src, foreign.as_bytes());
    assert!(
        matches!(o, AuthOutcome::Authenticated(ok) if ok.method == AuthMethod::Foreign && ok.account.is_none()),
        "{o:?}"
    );
    // Shard 1 did not issue it: stale.
    let mut other = Core::new(CoreConfig {
        shard: ShardId(1),
        shards: 2,
        ..auth_config(b"k", 1)
    });
    let cr3 = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &nonce_of(&a),
        Some(3),
        "INVITE",
        &uri,
    );
    let via_other = invite("alice", &format!("Proxy-Authorization: {cr3}\r\n"));
    assert_eq!(
        outcome(&mut other, 30, src, &via_other),
        AuthOutcome::Rejected(AuthReject::Challenge { stale: true })
    );
}

/// With two shards the AoR's owner challenges and verifies, wherever the datagrams land.
#[test]
fn register_is_authenticated_on_the_owner_shard() {
    let mut shards: Vec<Core> = (0..2)
        .map(|i| {
            Core::new(CoreConfig {
                shard: ShardId(i),
                shards: 2,
                ..auth_config(b"k", 1)
            })
        })
        .collect();
    // Find which shard owns alice: send to shard 0 and see whether it hands off.
    let r = register_as("alice");
    let run = |shards: &mut Vec<Core>, land: usize, now: u64, req: &Reg| -> Answer {
        shards[land].handle_datagram(
            Millis(now),
            LocalId(0),
            PHONE.parse().unwrap(),
            &req.bytes(),
        );
        if let Some((to, m)) = shards[land].poll_shard_msg() {
            shards[to.0 as usize].handle_shard_msg(Millis(now), ShardId(land as u16), m);
            return drain(&mut shards[to.0 as usize]).remove(0);
        }
        drain(&mut shards[land]).remove(0)
    };
    for land in [0, 1] {
        let a = run(
            &mut shards,
            land,
            0,
            &r.clone().call_id(&format!("c{land}")),
        );
        assert_eq!(a.status(), 401);
        let cr = creds(
            Algorithm::Sha256,
            "alice",
            PASSWORD,
            &nonce_of(&a),
            Some(1),
            "REGISTER",
            &ruri(),
        );
        let retry = with_auth(&r.clone().call_id(&format!("c{land}")), &cr, 2);
        // The retry lands on the other shard this time: still verified by the owner.
        let a = run(&mut shards, 1 - land, 10, &retry);
        assert_eq!(a.status(), 200, "landed {land}: {}", a.reason());
    }
}

/// `register = "none"` (the default without users): no challenge.
#[test]
fn default_config_does_not_challenge() {
    let mut c = Core::new(config());
    assert_eq!(answer_at(&mut c, 0, &register_as("alice")).status(), 200);
}

/// Reload: a new table is picked up by the next request; bindings stay.
#[test]
fn reload_swaps_users_without_dropping_bindings() {
    let cfg = auth_config(b"k", 1);
    let handle = Arc::clone(&cfg.auth.db);
    let mut c = Core::new(cfg);
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
    assert_eq!(answer_at(&mut c, 10, &with_auth(&r, &cr, 2)).status(), 200);
    let mut s = spec();
    s.users = vec![user("dave", PASSWORD)];
    handle.store(Arc::new(AuthDb::build(&s).unwrap()));
    assert_eq!(bindings(&c, 20, "sip:alice@edge.example.com").len(), 1);
    let r = register_as("dave");
    let n = nonce_of(&answer_at(&mut c, 30, &r));
    let cr = creds(
        Algorithm::Sha256,
        "dave",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(answer_at(&mut c, 40, &with_auth(&r, &cr, 2)).status(), 200);
    // alice is gone from the table: her next refresh fails.
    let r = register_as("alice");
    let n = nonce_of(&answer_at(&mut c, 50, &r.clone().cseq(3)));
    let cr = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(answer_at(&mut c, 60, &with_auth(&r, &cr, 4)).status(), 401);
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
