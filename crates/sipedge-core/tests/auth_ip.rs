//! Authentication beyond digest REGISTER, sans-IO: IP/CIDR precedence and longest prefix,
//! CLI selection, the relay's hook (407), the owner shard, the open default, reload.
#![allow(clippy::unwrap_used)]

mod auth_support;
mod common;

use std::sync::Arc;

use auth_support::*;
use sipedge_core::auth::{Algorithm, AuthDb, AuthMethod, AuthOutcome, AuthReject};
use sipedge_core::AuthRefusal;
use sipedge_core::{Core, CoreConfig, LocalId, Millis, ReloadTables, ShardId};
use sipedge_msg::Message;

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
    // A REGISTER from an IP-auth source needs no digest for an AoR its entry names (the
    // trunk's own); a user's AoR needs the user's credentials (tests/auth_register_ip.rs).
    let from: std::net::SocketAddr = "198.51.100.7:5060".parse().unwrap();
    c.handle_datagram(Millis(1), LocalId(0), from, &register_as("pbx1").bytes());
    assert_eq!(drain(&mut c)[0].status(), 200);
    c.handle_datagram(Millis(1), LocalId(0), from, &register_as("alice").bytes());
    assert_eq!(drain(&mut c)[0].status(), 401);
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
    assert_eq!(rej, AuthReject::Refused(AuthRefusal::CliNotAuthorized));
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
    // RFC 7616 §3.4.6: credentials for another Request-URI are a 400, nc untouched.
    let elsewhere = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &nonce_of(&a),
        Some(1),
        "INVITE",
        &format!("sip:+15559999@{DOMAIN}"),
    );
    let lifted = invite("alice", &format!("Proxy-Authorization: {elsewhere}\r\n"));
    assert_eq!(
        outcome(&mut c, 5, src, &lifted),
        AuthOutcome::Rejected(AuthReject::Refused(AuthRefusal::DigestUriMismatch))
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

/// Reload: a new table handed in between turns is used by the next request; bindings stay.
#[test]
fn reload_swaps_users_without_dropping_bindings() {
    let cfg = auth_config(b"k", 1);
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
    let auth = Arc::new(AuthDb::build(&s).unwrap());
    c.handle_config(&ReloadTables { auth, ..c.tables() });
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
