//! Issue 16, sans-IO: channels and CPS limits with dialog tracking — what the caller sees
//! (the INVITE forwarded or not, the 503/302 and its headers), on one shard and across four
//! sharing one limits table.
#![allow(clippy::unwrap_used)]

#[path = "../relay/harness.rs"]
mod harness;
mod keepalive;
mod keys;

use std::sync::Arc;

use harness::*;
use sipedge_core::auth::{AccountSpec, AuthDb, AuthMode, AuthSettings, AuthSpec, UserSpec};
use sipedge_core::dialog::DialogConfig;
use sipedge_core::limits::{AtCapacity, Limit, LimitsSpec, LimitsTable};
use sipedge_core::{Core, CoreConfig, Millis, ReloadTables, ShardId};
use sipedge_msg::HeaderName;

pub(crate) fn bob_user(channels: Option<u32>) -> UserSpec {
    UserSpec {
        username: "bob".into(),
        account: Some("acme".into()),
        channels,
        ha1_md5: Some([b'0'; 32]),
        ..UserSpec::default()
    }
}

pub(crate) fn spec_with(users: Vec<UserSpec>, accounts: Vec<AccountSpec>) -> AuthSpec {
    AuthSpec {
        settings: AuthSettings {
            realm: DOMAIN.into(),
            register: AuthMode::None,
            invite: AuthMode::None,
            ..AuthSettings::default()
        },
        accounts,
        users,
        ip_auth: Vec::new(),
    }
}

pub(crate) fn acme(channels: Option<u32>) -> AccountSpec {
    AccountSpec {
        name: "acme".into(),
        channels,
        ..AccountSpec::default()
    }
}

/// `shards` cores sharing one auth table and one limits table; bob registered.
pub(crate) fn edge(
    shards: u16,
    auth: &AuthSpec,
    limits: LimitsSpec,
    dialogs: DialogConfig,
) -> Vec<Core> {
    let db = AuthDb::build(auth).unwrap().into_handle();
    let table = LimitsTable::build(&db, limits, None).into_handle();
    let mut cores: Vec<Core> = (0..shards)
        .map(|i| {
            let mut cfg: CoreConfig = config();
            cfg.shard = ShardId(i);
            cfg.shards = shards;
            cfg.seed = 7;
            cfg.auth.db = Arc::clone(&db);
            cfg.auth.nonce_secret = b"limits-test".to_vec();
            cfg.limits = Arc::clone(&table);
            cfg.dialogs = dialogs;
            Core::new(cfg)
        })
        .collect();
    let r = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKregbob\r\nMax-Forwards: 70\r\nFrom: <sip:bob@{DOMAIN}>;tag=r1\r\nTo: <sip:bob@{DOMAIN}>\r\nCall-ID: reg-bob\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{BOB}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    );
    cores[0].handle_datagram(Millis(0), sipedge_core::LocalId(0), addr(BOB), r.as_bytes());
    let out = pump_all(&mut cores, 0);
    assert!(
        out.iter().any(|o| o.status() == Some(200)),
        "bob registered"
    );
    cores
}

/// Delivers every mesh message between the cores until none is left; what they sent.
pub(crate) fn pump_all(cores: &mut [Core], now: u64) -> Vec<Out> {
    let mut out = Vec::new();
    loop {
        let mut moved = Vec::new();
        for (i, c) in cores.iter_mut().enumerate() {
            while let Some((to, m)) = c.poll_shard_msg() {
                moved.push((i, to, m));
            }
            out.extend(drain(c));
        }
        if moved.is_empty() {
            return out;
        }
        for (from, to, m) in moved {
            cores[usize::from(to.0)].handle_shard_msg(Millis(now), ShardId(from as u16), m);
        }
    }
}

/// Alice's INVITE `call` into shard `k`: the forwarded INVITE, or the refusal.
pub(crate) fn dial(cores: &mut [Core], k: usize, now: u64, call: &str) -> Result<Out, Out> {
    cores[k].handle_datagram(
        Millis(now),
        sipedge_core::LocalId(0),
        addr(ALICE),
        &invite(call),
    );
    let out = pump_all(cores, now);
    if let Some(inv) = out.iter().find(|o| o.method().as_deref() == Some("INVITE")) {
        return Ok(inv.clone());
    }
    Err(out
        .into_iter()
        .find(|o| o.status().is_some_and(|s| s >= 300))
        .expect("a refusal"))
}

/// Bob answers `inv` with `code` on shard `k`.
pub(crate) fn answer(cores: &mut [Core], k: usize, now: u64, inv: &Out, code: u16) -> Vec<Out> {
    let extra = format!("Contact: <sip:bob@{BOB}>\r\n");
    let r = respond(inv, code, "X", "b1", &extra);
    cores[k].handle_datagram(Millis(now), sipedge_core::LocalId(0), addr(BOB), &r);
    pump_all(cores, now)
}

/// Bob hangs up the call of `inv` through shard `k` (any shard: the dialog's owner is
/// reached over the mesh).
pub(crate) fn bye(cores: &mut [Core], k: usize, now: u64, inv: &Out, call: &str) -> Vec<Out> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let rr = inv.header(HeaderName::RecordRoute).unwrap();
    let bye = format!(
        "BYE sip:alice@{ALICE} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bK-bye-{call}-{n}\r\nMax-Forwards: 70\r\nRoute: {rr}\r\nFrom: <sip:bob@{DOMAIN}>;tag=b1\r\nTo: <sip:alice@{DOMAIN}>;tag=alice1\r\nCall-ID: {call}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    cores[k].handle_datagram(
        Millis(now),
        sipedge_core::LocalId(0),
        addr(BOB),
        bye.as_bytes(),
    );
    pump_all(cores, now)
}

fn server(channels: u32, cps: u32) -> LimitsSpec {
    LimitsSpec {
        server: Limit { channels, cps },
        ..LimitsSpec::default()
    }
}

fn one(limits: LimitsSpec) -> Vec<Core> {
    edge(
        1,
        &spec_with(Vec::new(), Vec::new()),
        limits,
        DialogConfig::default(),
    )
}

#[test]
fn the_n_plus_first_call_gets_503_with_retry_after_and_the_limit_named() {
    let mut c = one(server(2, 0));
    let a = dial(&mut c, 0, 10, "c1").unwrap();
    answer(&mut c, 0, 20, &a, 200);
    let _b = dial(&mut c, 0, 30, "c2").unwrap();
    let r = dial(&mut c, 0, 40, "c3").unwrap_err();
    assert_eq!(r.status(), Some(503));
    assert_eq!(r.to, addr(ALICE));
    assert!(r
        .bytes
        .starts_with(b"SIP/2.0 503 Server at max cps/channels\r\n"));
    let retry: u32 = r.header(HeaderName::RetryAfter).unwrap().parse().unwrap();
    assert!((4..=6).contains(&retry), "5 s ± 20 %: {retry}");
    let w = String::from_utf8_lossy(&r.bytes).into_owned();
    assert!(
        w.contains("Warning: 399 sipedge \"limit: server_channels\""),
        "{w}"
    );
}

#[test]
fn retry_after_is_randomised_per_call() {
    let mut c = one(server(1, 0));
    let _a = dial(&mut c, 0, 10, "hold").unwrap();
    let seen: std::collections::BTreeSet<u32> = (0..40)
        .map(|i| {
            let r = dial(&mut c, 0, 20, &format!("r{i}")).unwrap_err();
            r.header(HeaderName::RetryAfter).unwrap().parse().unwrap()
        })
        .collect();
    assert!(seen.len() >= 2, "{seen:?}");
    assert!(seen.iter().all(|s| (4..=6).contains(s)), "{seen:?}");
}

#[test]
fn a_bye_gives_the_channel_back_once_from_either_shard() {
    let mut c = one(server(1, 0));
    let a = dial(&mut c, 0, 10, "c1").unwrap();
    answer(&mut c, 0, 20, &a, 200);
    assert!(dial(&mut c, 0, 30, "c2").is_err(), "at capacity");
    let fwd = bye(&mut c, 0, 40, &a, "c1");
    assert!(fwd.iter().any(|o| o.method().as_deref() == Some("BYE")));
    // A second BYE (new transaction) releases nothing more.
    bye(&mut c, 0, 41, &a, "c1");
    let b = dial(&mut c, 0, 50, "c3").unwrap();
    assert!(dial(&mut c, 0, 60, "c4").is_err(), "one channel, not two");
    answer(&mut c, 0, 70, &b, 200);
    assert_eq!(c[0].dialog_stats().bye_unknown, 1);
}

#[test]
fn a_final_non_2xx_and_a_cancel_release_the_channel() {
    let mut c = one(server(1, 0));
    let a = dial(&mut c, 0, 10, "c1").unwrap();
    let busy = answer(&mut c, 0, 20, &a, 486);
    assert!(busy.iter().any(|o| o.status() == Some(486)));
    let b = dial(&mut c, 0, 30, "c2").unwrap();
    answer(&mut c, 0, 35, &b, 180);
    // CANCEL (RFC 3261 §9.2): 200 to the CANCEL, 487 once bob answers the CANCEL.
    let cancel = request(
        "CANCEL",
        &format!("sip:bob@{DOMAIN}"),
        "z9hG4bK-c2",
        "c2",
        "",
    );
    let out = send(&mut c[0], 40, ALICE, &cancel);
    let to_bob = out
        .iter()
        .find(|o| o.method().as_deref() == Some("CANCEL"))
        .unwrap();
    send(&mut c[0], 45, BOB, &respond(to_bob, 200, "OK", "b1", ""));
    let t = send(
        &mut c[0],
        50,
        BOB,
        &respond(&b, 487, "Request Terminated", "b1", ""),
    );
    assert!(t.iter().any(|o| o.status() == Some(487)));
    assert!(
        dial(&mut c, 0, 60, "c3").is_ok(),
        "the cancelled call holds nothing"
    );
}

#[test]
fn an_unanswered_invite_releases_at_timeout() {
    let mut c = one(server(1, 0));
    let _a = dial(&mut c, 0, 0, "c1").unwrap();
    // Timer C (3 min) cancels the branch, then 487/408 goes up; nothing answers at all.
    advance(&mut c[0], 400_000);
    assert!(dial(&mut c, 0, 400_000, "c2").is_ok());
}

#[test]
fn cps_refuses_the_extra_call_of_a_second_only() {
    let mut c = one(server(0, 2));
    assert!(dial(&mut c, 0, 1000, "c1").is_ok());
    assert!(dial(&mut c, 0, 1500, "c2").is_ok());
    let r = dial(&mut c, 0, 1999, "c3").unwrap_err();
    assert!(String::from_utf8_lossy(&r.bytes).contains("limit: server_cps"));
    assert!(dial(&mut c, 0, 2000, "c4").is_ok(), "a new second");
}

#[test]
fn callee_user_limits_count_calls_to_it_unless_outbound_only() {
    let auth = spec_with(vec![bob_user(Some(1))], vec![acme(None)]);
    let mut c = edge(1, &auth, LimitsSpec::default(), DialogConfig::default());
    assert!(dial(&mut c, 0, 10, "c1").is_ok());
    let r = dial(&mut c, 0, 20, "c2").unwrap_err();
    assert!(String::from_utf8_lossy(&r.bytes).contains("limit: user_channels"));
    let outbound = LimitsSpec {
        count: sipedge_core::limits::CountMode::Outbound,
        ..LimitsSpec::default()
    };
    let mut c = edge(1, &auth, outbound, DialogConfig::default());
    assert!(dial(&mut c, 0, 10, "c1").is_ok());
    assert!(
        dial(&mut c, 0, 20, "c2").is_ok(),
        "calls to bob are not his"
    );
}

#[test]
fn callee_account_limits_count_too() {
    let auth = spec_with(vec![bob_user(None)], vec![acme(Some(1))]);
    let mut c = edge(1, &auth, LimitsSpec::default(), DialogConfig::default());
    assert!(dial(&mut c, 0, 10, "c1").is_ok());
    let r = dial(&mut c, 0, 20, "c2").unwrap_err();
    assert!(String::from_utf8_lossy(&r.bytes).contains("limit: account_channels"));
}

#[test]
fn redirect_answers_302_with_the_user_kept() {
    let mut c = one(LimitsSpec {
        at_capacity: AtCapacity::Redirect,
        redirect_to: vec![
            "sip:edge2.example.net".into(),
            "sip:198.51.100.99:5080".into(),
        ],
        ..server(1, 0)
    });
    assert!(dial(&mut c, 0, 10, "c1").is_ok());
    let r = dial(&mut c, 0, 20, "c2").unwrap_err();
    assert!(r.bytes.starts_with(b"SIP/2.0 302 Moved Temporarily\r\n"));
    let contacts: Vec<String> = r
        .msg()
        .header_values(HeaderName::Contact)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(
        contacts,
        [
            "<sip:bob@edge2.example.net>",
            "<sip:bob@198.51.100.99:5080>"
        ]
    );
    assert!(r.header(HeaderName::RetryAfter).is_none());
}

#[test]
fn reject_code_is_configurable() {
    let mut c = one(LimitsSpec {
        reject_code: 486,
        retry_after_secs: 0,
        ..server(1, 0)
    });
    assert!(dial(&mut c, 0, 10, "c1").is_ok());
    let r = dial(&mut c, 0, 20, "c2").unwrap_err();
    assert_eq!(r.status(), Some(486));
    assert!(r.header(HeaderName::RetryAfter).is_none());
}

#[test]
fn max_duration_releases_a_call_whose_bye_never_comes() {
    let dialogs = DialogConfig {
        max_duration_secs: 60,
        ..DialogConfig::default()
    };
    let mut c = edge(1, &spec_with(Vec::new(), Vec::new()), server(1, 0), dialogs);
    let a = dial(&mut c, 0, 0, "c1").unwrap();
    answer(&mut c, 0, 100, &a, 200);
    advance(&mut c[0], 59_000);
    assert!(dial(&mut c, 0, 59_000, "c2").is_err(), "still up at 59 s");
    advance(&mut c[0], 60_200);
    assert_eq!(c[0].dialog_stats().expired, 1);
    assert!(dial(&mut c, 0, 60_200, "c3").is_ok());
}

#[test]
fn a_full_dialog_table_refuses_new_calls() {
    let dialogs = DialogConfig {
        max_dialogs: 1,
        ..DialogConfig::default()
    };
    let mut c = edge(
        1,
        &spec_with(Vec::new(), Vec::new()),
        LimitsSpec::default(),
        dialogs,
    );
    assert!(dial(&mut c, 0, 10, "c1").is_ok());
    let r = dial(&mut c, 0, 20, "c2").unwrap_err();
    assert!(String::from_utf8_lossy(&r.bytes).contains("limit: dialog_table_full"));
}

#[test]
fn exact_across_four_shards_and_a_bye_on_another_shard_releases() {
    let mut c = edge(
        4,
        &spec_with(Vec::new(), Vec::new()),
        server(3, 0),
        DialogConfig::default(),
    );
    let mut admitted = Vec::new();
    let mut refused = 0;
    for i in 0..16 {
        let call = format!("x{i}");
        match dial(&mut c, i % 4, 10 + i as u64, &call) {
            Ok(inv) => admitted.push((i % 4, inv, call)),
            Err(r) => {
                assert_eq!(r.status(), Some(503));
                refused += 1;
            }
        }
    }
    assert_eq!(admitted.len(), 3, "never one call over the limit");
    assert_eq!(refused, 13);
    for (k, inv, _) in &admitted {
        answer(&mut c, *k, 100, inv, 200);
    }
    // Each BYE arrives on the next shard over: the dialog's owner gets it over the mesh.
    for (k, inv, call) in &admitted {
        bye(&mut c, (k + 1) % 4, 200, inv, call);
        bye(&mut c, (k + 2) % 4, 201, inv, call);
    }
    let mut again = 0;
    for i in 0..8 {
        if dial(&mut c, i % 4, 300, &format!("y{i}")).is_ok() {
            again += 1;
        }
    }
    assert_eq!(again, 3, "all three channels back, no more");
    let ended: u64 = c.iter().map(|k| k.dialog_stats().ended_bye).sum();
    assert_eq!(ended, 3, "released exactly once each");
    let handed: u64 = c.iter().map(|k| k.dialog_stats().handed_off).sum();
    assert!(handed > 0, "some dialogs and BYEs crossed shards");
}

#[test]
fn a_reload_keeps_calls_and_a_lowered_limit_refuses_new_ones_only() {
    let auth = spec_with(vec![bob_user(Some(3))], vec![acme(None)]);
    let mut c = edge(1, &auth, LimitsSpec::default(), DialogConfig::default());
    let a = dial(&mut c, 0, 10, "c1").unwrap();
    answer(&mut c, 0, 15, &a, 200);
    let b = dial(&mut c, 0, 20, "c2").unwrap();
    answer(&mut c, 0, 25, &b, 200);
    // The limit goes down to 1 while two calls are up.
    let t = c[0].tables();
    let db = AuthDb::build(&spec_with(vec![bob_user(Some(1))], vec![acme(None)]))
        .unwrap()
        .into_handle();
    let limits = LimitsTable::build(&db, LimitsSpec::default(), Some(&t.limits)).into_handle();
    assert_eq!(limits.user("", "bob"), Some((Limit::new(Some(1), None), 2)));
    c[0].handle_config(&ReloadTables {
        auth: db,
        limits,
        ..t
    });
    assert!(dial(&mut c, 0, 30, "c3").is_err());
    bye(&mut c, 0, 40, &a, "c1");
    assert!(
        dial(&mut c, 0, 50, "c4").is_err(),
        "one call still up: at the new limit"
    );
    bye(&mut c, 0, 60, &b, "c2");
    assert!(dial(&mut c, 0, 70, "c5").is_ok());
}
