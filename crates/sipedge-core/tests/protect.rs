//! Issue 17, sans-IO: density bans (pike), scanner drop, password-guessing bans (per source,
//! per user), bans handed in by the shell, bounded per-source state, overload shedding.
#![allow(clippy::unwrap_used)]

mod auth_support;
mod common;

use std::net::{IpAddr, SocketAddr};

use auth_support::*;
use sipedge_core::auth::Algorithm;
use sipedge_core::{BanReason, Core, CoreEvent, LocalId, Millis, ProtectConfig};

fn protected(p: ProtectConfig) -> Core {
    let mut cfg = auth_config(b"k", 1);
    cfg.protect = p;
    Core::new(cfg)
}

fn rules() -> ProtectConfig {
    ProtectConfig {
        max_requests_per_sec: 10,
        trusted: vec!["192.0.2.200/32".parse().unwrap()],
        ..ProtectConfig::recommended()
    }
}

fn send_from(c: &mut Core, now: u64, src: &str, bytes: &[u8]) -> Vec<Answer> {
    let src: SocketAddr = src.parse().unwrap();
    c.handle_datagram(Millis(now), LocalId(0), src, bytes);
    drain(c)
}

fn options(ua: &str, n: u32) -> Vec<u8> {
    format!(
        "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-o{n}\r\nMax-Forwards: 70\r\nFrom: <sip:probe@example.org>;tag=t{n}\r\nTo: <sip:{DOMAIN}>\r\nCall-ID: o{n}\r\nCSeq: 1 OPTIONS\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn bans(c: &mut Core) -> Vec<(IpAddr, Millis, BanReason)> {
    let mut v = Vec::new();
    while let Some(e) = c.poll_event() {
        if let CoreEvent::Banned { ip, until, reason } = e {
            v.push((ip, until, reason));
        }
    }
    v
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Pike: the 11th request within a second from one source is dropped and the source banned
/// for `ban_secs`; another source is still served; after the ban it is served again.
#[test]
fn density_bans_the_flooding_source_only() {
    let mut c = protected(rules());
    for i in 0..10 {
        let r = send_from(
            &mut c,
            1000 + i,
            "192.0.2.60:5060",
            &options("Phone", i as u32),
        );
        assert_eq!(r.len(), 1, "request {i} answered");
    }
    assert!(send_from(&mut c, 1010, "192.0.2.60:5060", &options("Phone", 10)).is_empty());
    assert_eq!(
        bans(&mut c),
        [(ip("192.0.2.60"), Millis(1010 + 300_000), BanReason::Density)]
    );
    // Any port of the banned address, later on, is dropped; another source is served.
    assert!(send_from(&mut c, 5000, "192.0.2.60:7777", &options("Phone", 11)).is_empty());
    assert_eq!(
        send_from(&mut c, 5000, "192.0.2.61:5060", &options("Phone", 12)).len(),
        1
    );
    let s = c.protect_stats();
    assert_eq!(
        (s.bans_density, s.dropped_density, s.dropped_banned),
        (1, 1, 1)
    );
    assert_eq!(s.bans_active, 1);
    // The ban ends.
    assert_eq!(
        send_from(&mut c, 301_011, "192.0.2.60:5060", &options("Phone", 13)).len(),
        1
    );
}

/// The same rate spread over the window (sliding) passes.
#[test]
fn density_under_the_limit_passes() {
    let mut c = protected(rules());
    for i in 0..100u64 {
        let r = send_from(
            &mut c,
            i * 120,
            "192.0.2.60:5060",
            &options("Phone", i as u32),
        );
        assert_eq!(r.len(), 1, "request {i}");
    }
    assert!(bans(&mut c).is_empty());
}

/// Responses and CRLF keepalives do not count (like pike): a phone answering many calls is
/// not a flood.
#[test]
fn responses_and_keepalives_are_not_counted() {
    let mut c = protected(rules());
    let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-x\r\nFrom: <sip:a@example.org>;tag=1\r\nTo: <sip:b@example.org>;tag=2\r\nCall-ID: r\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    for i in 0..100 {
        send_from(&mut c, 1000 + i, "192.0.2.62:5060", resp);
        send_from(&mut c, 1000 + i, "192.0.2.62:5060", b"\r\n\r\n");
    }
    assert!(bans(&mut c).is_empty());
    assert_eq!(
        send_from(&mut c, 1100, "192.0.2.62:5060", &options("Phone", 1)).len(),
        1
    );
}

/// `trusted` and `[[ip_auth]]` sources are never banned.
#[test]
fn trusted_and_ip_auth_sources_are_never_banned() {
    let mut c = protected(rules());
    for src in [
        "192.0.2.200:5060",
        "198.51.100.7:5060",
        "[2001:db8:1::5]:5060",
    ] {
        for i in 0..100 {
            let r = send_from(&mut c, 2000 + i, src, &options("Trunk", i as u32));
            assert_eq!(r.len(), 1, "{src} request {i}");
        }
    }
    assert!(bans(&mut c).is_empty());
    assert!(c.protect_stats().exempt >= 3);
}

/// A scanner's request gets no reply and bans its source (the next request, with an
/// ordinary User-Agent, is dropped too).
#[test]
fn scanner_user_agent_is_dropped_and_banned() {
    let mut c = protected(rules());
    assert!(send_from(
        &mut c,
        0,
        "192.0.2.66:5060",
        &options("friendly-scanner", 1)
    )
    .is_empty());
    assert_eq!(
        bans(&mut c),
        [(ip("192.0.2.66"), Millis(300_000), BanReason::Scanner)]
    );
    assert!(send_from(&mut c, 10, "192.0.2.66:5061", &options("Linphone", 2)).is_empty());
    assert_eq!(c.protect_stats().dropped_scanner, 1);
    assert_eq!(c.protect_stats().dropped_banned, 1);
    // Case ignored, anywhere in the value.
    assert!(send_from(
        &mut c,
        20,
        "192.0.2.67:5060",
        &options("x SIPVicious 0.3", 3)
    )
    .is_empty());
    // Without the rules, the same request is answered (the test is about the rule).
    let mut plain = protected(ProtectConfig::default());
    assert_eq!(
        send_from(
            &mut plain,
            0,
            "192.0.2.66:5060",
            &options("friendly-scanner", 1)
        )
        .len(),
        1
    );
}

/// One wrong-password round from `src`: REGISTER → 401, REGISTER with a wrong answer → the
/// reply (empty when dropped).
fn guess(c: &mut Core, now: u64, src: &str, user: &str, cseq: u32) -> Vec<Answer> {
    let r = register_as(user).call_id(&format!("g{cseq}@x"));
    let a = send_from(c, now, src, &r.bytes());
    if a.is_empty() {
        return a;
    }
    assert_eq!(a[0].status(), 401);
    let cr = creds(
        Algorithm::Md5,
        user,
        "guess",
        &nonce_of(&a[0]),
        Some(1),
        "REGISTER",
        &ruri(),
    );
    send_from(c, now + 1, src, &with_auth(&r, &cr, cseq + 1).bytes())
}

/// `auth_failures_max` (5) wrong answers from one source ban it — unknown users count the
/// same and get the same 401 before.
#[test]
fn password_guessing_bans_the_source() {
    for user in ["alice", "mallory"] {
        let mut c = protected(rules());
        for i in 0..4u32 {
            let a = guess(&mut c, u64::from(i) * 1000, "192.0.2.70:5060", user, i * 10);
            assert_eq!(a.len(), 1);
            assert_eq!(a[0].status(), 401, "{user}: guess {i} challenged again");
        }
        assert!(bans(&mut c).is_empty());
        // The fifth wrong answer: still a 401 (same reply), and the source is banned.
        let a = guess(&mut c, 5000, "192.0.2.70:5060", user, 50);
        assert_eq!(a.len(), 1);
        assert_eq!(
            bans(&mut c),
            [(
                ip("192.0.2.70"),
                Millis(5001 + 300_000),
                BanReason::Guessing
            )],
            "{user}"
        );
        assert!(guess(&mut c, 6000, "192.0.2.70:5060", user, 60).is_empty());
        assert_eq!(c.auth_stats().digest_failed, 5);
    }
}

/// Failures older than the window are forgotten.
#[test]
fn guessing_window_slides() {
    let mut c = protected(rules());
    for i in 0..20u64 {
        let a = guess(
            &mut c,
            i * 100_000,
            "192.0.2.71:5060",
            "alice",
            i as u32 * 10,
        );
        assert_eq!(a.len(), 1, "guess {i}");
    }
    assert!(bans(&mut c).is_empty());
}

/// A guess spread over many sources, one try each, locks out the guessers once the user's
/// count passes `user_auth_failures_max` — never the source the user's phone registered
/// from, which goes on registering.
#[test]
fn distributed_guessing_bans_the_guessers_not_the_phone() {
    let mut c = protected(ProtectConfig {
        user_auth_failures_max: 6,
        ..rules()
    });
    // The phone registers.
    let r = register_as("alice");
    let n = nonce_of(&answer_at(&mut c, 0, &r));
    let cr = creds(
        Algorithm::Md5,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(answer_at(&mut c, 10, &with_auth(&r, &cr, 2)).status(), 200);
    // The phone mistypes once.
    assert_eq!(guess(&mut c, 20, PHONE, "alice", 100).len(), 1);
    let mut banned = Vec::new();
    for i in 1..=8u32 {
        let src = format!("203.0.114.{i}:5060");
        assert_eq!(
            guess(&mut c, 100 * u64::from(i), &src, "alice", i * 10).len(),
            1
        );
        banned.extend(bans(&mut c).into_iter().map(|(ip, _, why)| (ip, why)));
    }
    let phone: SocketAddr = PHONE.parse().unwrap();
    assert!(
        !banned.iter().any(|(ip, _)| *ip == phone.ip()),
        "{banned:?}"
    );
    assert!(banned
        .iter()
        .all(|(_, why)| *why == BanReason::UserGuessing));
    // The 6th failure (5th source) bans the recent guessers, each later one at once.
    for i in 5..=8 {
        assert!(
            banned.contains(&(ip(&format!("203.0.114.{i}")), BanReason::UserGuessing)),
            "{i}: {banned:?}"
        );
    }
    assert!(guess(&mut c, 2000, "203.0.114.8:5060", "alice", 900).is_empty());
    // The phone still registers.
    let n = nonce_of(&answer_at(&mut c, 3000, &r.clone().cseq(20)));
    let cr = creds(
        Algorithm::Md5,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(
        answer_at(&mut c, 3010, &with_auth(&r, &cr, 21)).status(),
        200
    );
}

/// Bans from the shell (another shard, the operator) drop datagrams; an unban lifts them.
#[test]
fn bans_from_the_shell_and_unban() {
    let mut c = protected(rules());
    c.handle_ban(Millis(0), ip("192.0.2.80"), Millis(60_000));
    assert!(send_from(&mut c, 10, "192.0.2.80:5060", &options("Phone", 1)).is_empty());
    assert!(c.is_banned(ip("192.0.2.80"), Millis(10)));
    assert!(
        bans(&mut c).is_empty(),
        "a received ban is not reported back"
    );
    c.handle_unban(ip("192.0.2.80"));
    assert_eq!(
        send_from(&mut c, 20, "192.0.2.80:5060", &options("Phone", 2)).len(),
        1
    );
    // IPv4-mapped IPv6 is the same source.
    c.handle_ban(Millis(0), ip("::ffff:192.0.2.81"), Millis(60_000));
    assert!(send_from(&mut c, 30, "192.0.2.81:5060", &options("Phone", 3)).is_empty());
}

/// A spoofed flood of one-datagram sources does not grow the per-source table past its cap
/// and does not save a heavy source from its ban.
#[test]
fn spoofed_flood_is_bounded_and_heavy_source_still_banned() {
    let mut c = protected(ProtectConfig {
        max_sources: 1024,
        ..rules()
    });
    let mut dropped_heavy = false;
    for i in 0..50_000u32 {
        let spoofed = format!("10.{}.{}.{}:5060", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        send_from(&mut c, 10_000 + u64::from(i) / 100, &spoofed, b"x\r\n\r\n");
        if i % 20 == 0 {
            let r = send_from(
                &mut c,
                10_000 + u64::from(i) / 100,
                "192.0.2.90:5060",
                &options("P", i),
            );
            dropped_heavy |= r.is_empty();
        }
    }
    assert!(dropped_heavy);
    assert!(c.is_banned(ip("192.0.2.90"), Millis(10_500)));
    assert!(c.protect_stats().sources_evicted > 40_000);
}

fn invite(n: u32, to_tag: bool) -> Vec<u8> {
    let tag = if to_tag { ";tag=callee" } else { "" };
    format!(
        "INVITE sip:bob@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.50:40123;branch=z9hG4bK-i{n}\r\nMax-Forwards: 70\r\nFrom: <sip:carl@example.org>;tag=a{n}\r\nTo: <sip:bob@{DOMAIN}>{tag}\r\nCall-ID: i{n}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn bye(n: u32) -> Vec<u8> {
    format!(
        "BYE sip:bob@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.50:40123;branch=z9hG4bK-b{n}\r\nMax-Forwards: 70\r\nFrom: <sip:carl@example.org>;tag=a{n}\r\nTo: <sip:bob@{DOMAIN}>;tag=callee\r\nCall-ID: i{n}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn status_of(a: &[Answer]) -> Option<u16> {
    a.first().map(Answer::status)
}

/// Level 1 sheds new INVITEs, OPTIONS and REGISTERs of unbound AoRs with a stateless 503
/// and a randomised Retry-After; a bound AoR's refresh, BYE and in-dialog requests pass.
/// Level 2 sheds the refresh too. Level 0 sheds nothing.
#[test]
fn overload_sheds_new_then_refreshes_never_in_dialog() {
    let mut c = protected(ProtectConfig::default());
    // alice is bound (registered before the pressure).
    let r = register_as("alice");
    let n = nonce_of(&answer_at(&mut c, 0, &r));
    let cr = creds(
        Algorithm::Md5,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    assert_eq!(answer_at(&mut c, 10, &with_auth(&r, &cr, 2)).status(), 200);
    let transactions = c.transaction_count();

    c.handle_pressure(1);
    let src = "192.0.2.50:40123";
    let mut retry = std::collections::BTreeSet::new();
    for i in 0..20 {
        let a = send_from(&mut c, 100, src, &invite(i, false));
        assert_eq!(status_of(&a), Some(503), "new INVITE shed");
        let ra: u32 = a[0].header("Retry-After").unwrap().parse().unwrap();
        assert!((5..=30).contains(&ra), "{ra}");
        retry.insert(ra);
    }
    assert!(retry.len() > 3, "Retry-After spread: {retry:?}");
    assert_eq!(
        c.transaction_count(),
        transactions,
        "no transaction for a shed request"
    );
    assert_eq!(
        status_of(&send_from(&mut c, 100, src, &options("P", 1))),
        Some(503)
    );
    let bob = register_as("bob");
    assert_eq!(
        status_of(&send_from(&mut c, 100, src, &bob.bytes())),
        Some(503)
    );
    // The bound AoR's refresh is processed (challenged), not shed.
    assert_eq!(
        status_of(&send_from(&mut c, 100, src, &r.clone().cseq(5).bytes())),
        Some(401)
    );
    // In-dialog: BYE and a re-INVITE are never shed (whatever they get, it is not a 503).
    for req in [bye(1), invite(2, true)] {
        let a = send_from(&mut c, 100, src, &req);
        assert_ne!(status_of(&a), Some(503));
    }
    let s = c.protect_stats();
    assert_eq!((s.shed_new, s.shed_refresh), (22, 0));

    c.handle_pressure(2);
    assert_eq!(
        status_of(&send_from(&mut c, 200, src, &r.clone().cseq(6).bytes())),
        Some(503)
    );
    assert_ne!(status_of(&send_from(&mut c, 200, src, &bye(3))), Some(503));
    assert_eq!(c.protect_stats().shed_refresh, 1);

    c.handle_pressure(0);
    assert_eq!(
        status_of(&send_from(&mut c, 300, src, &options("P", 2))),
        Some(200)
    );
    assert_ne!(
        status_of(&send_from(&mut c, 300, src, &invite(9, false))),
        Some(503)
    );
}

/// Issue 17 item 6: while the shell's kernel filter sheds OPTIONS, REGISTER and new INVITEs
/// by a share sized to the shard, level 1 serves what the filter admitted (a new AoR's
/// REGISTER is challenged, an OPTIONS answered, a new INVITE routed) instead of refusing it
/// a second time; level 2 still sheds every REGISTER and new INVITE.
#[test]
fn level_one_serves_what_the_kernel_filter_admitted() {
    let mut c = protected(ProtectConfig::default());
    let src = "192.0.2.50:40123";
    c.handle_pressure(1);
    c.handle_kernel_shed(true);
    let bob = register_as("bob");
    assert_eq!(
        status_of(&send_from(&mut c, 100, src, &bob.bytes())),
        Some(401),
        "a new AoR's REGISTER admitted by the filter is processed"
    );
    assert_eq!(
        status_of(&send_from(&mut c, 100, src, &options("P", 1))),
        Some(200)
    );
    let st = status_of(&send_from(&mut c, 100, src, &invite(1, false)));
    assert!(
        st.is_some_and(|s| s != 503),
        "a new INVITE the filter admitted is served: {st:?}"
    );
    assert_eq!(c.protect_stats().shed_new, 0);

    c.handle_pressure(2);
    assert_eq!(
        status_of(&send_from(&mut c, 200, src, &bob.clone().cseq(2).bytes())),
        Some(503),
        "level 2 sheds every REGISTER"
    );
    assert_eq!(
        status_of(&send_from(&mut c, 200, src, &invite(2, false))),
        Some(503),
        "and new INVITEs"
    );

    // The filter stopped shedding: level 1 refuses new AoRs again.
    c.handle_pressure(1);
    c.handle_kernel_shed(false);
    assert_eq!(
        status_of(&send_from(&mut c, 300, src, &register_as("carol").bytes())),
        Some(503)
    );
}

/// Issue 17, "keep the queue short": while the shell measures the receive queue late
/// (its last datagram waited past `max_queue_delay_ms`), new requests are dropped without
/// reply and counted — the backlog drains at the cost of a read — while a BYE and an
/// in-dialog re-INVITE are still answered; once the queue is short, new requests are
/// served again.
#[test]
fn a_late_queue_drops_new_requests_but_serves_dialogs() {
    let mut c = protected(ProtectConfig::default());
    let src = "192.0.2.50:40123";
    c.handle_queue_delay(true);
    let bob = register_as("bob");
    for req in [bob.bytes(), options("P", 1), invite(1, false)] {
        assert!(
            send_from(&mut c, 100, src, &req).is_empty(),
            "a new request behind a late queue is dropped unanswered"
        );
    }
    assert_eq!(c.protect_stats().stale_dropped, 3);
    assert_eq!(c.transaction_count(), 0, "nothing started for them");
    for req in [bye(1), invite(2, true)] {
        assert!(
            !send_from(&mut c, 100, src, &req).is_empty(),
            "in-dialog requests are answered"
        );
    }
    assert_eq!(c.protect_stats().stale_dropped, 3);

    c.handle_queue_delay(false);
    assert_eq!(
        status_of(&send_from(&mut c, 200, src, &options("P", 2))),
        Some(200)
    );
    assert_eq!(
        status_of(&send_from(&mut c, 200, src, &bob.clone().cseq(2).bytes())),
        Some(401)
    );
    assert_eq!(c.protect_stats().stale_dropped, 3);
}
