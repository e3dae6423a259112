//! NAT handling and keepalives, sans-IO on a virtual clock: detection (Via, private
//! Contact, per-user force/disable), the received address of NATed bindings, one simulated
//! hour of 100k bindings pinged exactly once per interval, timeout deregistration after
//! exactly N misses (journalled), answers with RTT, answers landing on the wrong shard.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::DOMAIN;
use sipedge_core::{
    Core, CoreConfig, CoreEvent, LocalId, Millis, NatConfig, NatMode, NatUser, PingMethod,
    PingMode, ShardId,
};
use sipedge_msg::Message;

const TICK: u64 = 10;

fn config(nat: NatConfig) -> CoreConfig {
    CoreConfig {
        nat: NatConfig {
            advertise: vec!["203.0.113.1:5060".into()],
            ..nat
        },
        ..common::config()
    }
}

/// A REGISTER for `user` from `source` with the given Via sent-by and Contact URI.
fn register(user: &str, via: &str, contact: &str, expires: u32, cseq: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK-{user}-{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=f\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: {user}-call\r\nCSeq: {cseq} REGISTER\r\nContact: <{contact}>\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn aor(user: &str) -> String {
    format!("sip:{user}@{DOMAIN}")
}

/// Everything queued, as (destination, bytes).
fn drain(core: &mut Core) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(t) = core.poll_transmit() {
        out.push((t.remote, t.data.to_vec()));
    }
    out
}

fn send(core: &mut Core, now: u64, from: &str, bytes: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
    core.handle_datagram(Millis(now), LocalId(0), from.parse().unwrap(), bytes);
    drain(core)
}

/// The 200 OK a phone sends to an OPTIONS ping (Via, From, To, Call-ID, CSeq copied).
fn answer(options: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(options);
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in text.split("\r\n").skip(1) {
        if line.is_empty() {
            break;
        }
        if !line.starts_with("Max-Forwards") && !line.starts_with("Content-Length") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

fn is_options(bytes: &[u8]) -> bool {
    bytes.starts_with(b"OPTIONS ")
}

/// Runs the core's timers tick by tick up to `until`, collecting what they send.
fn run_until(core: &mut Core, until: u64, mut sent: impl FnMut(u64, SocketAddr, &[u8])) {
    while let Some(due) = core.poll_timeout() {
        if due.0 > until {
            break;
        }
        core.handle_timeout(due);
        while let Some(t) = core.poll_transmit() {
            sent(due.0, t.remote, t.data);
        }
    }
}

#[test]
fn detection_and_the_received_address() {
    let mut core = Core::new(config(NatConfig::default()));
    // Via = source, public contact: not NATed.
    let src = "198.51.100.7:5060";
    let r = send(
        &mut core,
        0,
        src,
        &register("clean", src, "sip:clean@198.51.100.7", 600, 1),
    );
    assert_eq!(Message::parse(&r[0].1).unwrap().status(), Some(200));
    let c = &core.lookup(Millis(0), aor("clean").as_bytes()).unwrap()[0];
    assert_eq!(c.received, None);

    // Via sent-by (private, 5060) is not the source: NATed; the reply carries received
    // and rport, the Contact is listed as registered, the binding is reached at the source.
    let src = "198.51.100.8:40001";
    let r = send(
        &mut core,
        0,
        src,
        &register("via", "10.0.0.8:5060", "sip:via@10.0.0.8:5060", 600, 1),
    );
    let reply = String::from_utf8(r[0].1.clone()).unwrap();
    assert!(reply.contains("received=198.51.100.8"), "{reply}");
    assert!(reply.contains("rport=40001"), "{reply}");
    assert!(
        reply.contains("Contact: <sip:via@10.0.0.8:5060>;expires=600"),
        "{reply}"
    );
    let c = &core.lookup(Millis(0), aor("via").as_bytes()).unwrap()[0];
    assert_eq!(c.uri, b"sip:via@10.0.0.8:5060");
    assert_eq!(c.received, Some(src.parse().unwrap()));

    // Via equal to the source but a private (RFC 6598) contact behind a public source.
    let src = "198.51.100.9:5060";
    send(
        &mut core,
        0,
        src,
        &register("cgn", src, "sip:cgn@100.64.1.2:5060", 600, 1),
    );
    let c = &core.lookup(Millis(0), aor("cgn").as_bytes()).unwrap()[0];
    assert_eq!(c.received, Some(src.parse().unwrap()));

    // A private contact from a private source (same LAN): not NATed.
    let src = "192.168.1.20:5060";
    send(
        &mut core,
        0,
        src,
        &register("lan", src, "sip:lan@192.168.1.20", 600, 1),
    );
    let c = &core.lookup(Millis(0), aor("lan").as_bytes()).unwrap()[0];
    assert_eq!(c.received, None);
    assert_eq!(core.stats().nat.nated_registrations, 2);
}

#[test]
fn per_user_force_and_disable() {
    let mut users = HashMap::new();
    users.insert(
        aor("forced").into_bytes(),
        NatUser {
            nat: Some(NatMode::Force),
            ping: None,
        },
    );
    users.insert(
        aor("never").into_bytes(),
        NatUser {
            nat: Some(NatMode::Disabled),
            ping: Some(PingMode::Timeout),
        },
    );
    let mut core = Core::new(config(NatConfig {
        users: users.into(),
        ..NatConfig::default()
    }));
    assert_eq!(
        core.nat_user(aor("never").as_bytes()),
        (NatMode::Disabled, PingMode::Timeout)
    );
    assert_eq!(
        core.nat_user(aor("other").as_bytes()),
        (NatMode::Auto, PingMode::Enabled)
    );
    let src = "198.51.100.10:5060";
    send(
        &mut core,
        0,
        src,
        &register("forced", src, "sip:forced@198.51.100.10", 600, 1),
    );
    let c = &core.lookup(Millis(0), aor("forced").as_bytes()).unwrap()[0];
    assert_eq!(
        c.received,
        Some(src.parse().unwrap()),
        "force: always the source"
    );
    let src = "198.51.100.11:40000";
    send(
        &mut core,
        0,
        src,
        &register("never", "10.0.0.11", "sip:never@10.0.0.11", 600, 1),
    );
    let c = &core.lookup(Millis(0), aor("never").as_bytes()).unwrap()[0];
    assert_eq!(c.received, None, "disabled: never rewritten");
}

/// Unique public source and private contact of binding `i` (all NATed).
fn phone(i: u32) -> (String, String) {
    let src = format!(
        "203.0.{}.{}:{}",
        1 + i / 60_000 / 250,
        1 + i / 60_000 % 250,
        1024 + i % 60_000
    );
    let contact = format!(
        "sip:u{i}@10.{}.{}.{}:5060",
        i >> 16 & 255,
        i >> 8 & 255,
        i & 255
    );
    (src, contact)
}

#[test]
fn an_hour_of_100k_bindings_pinged_once_per_interval() {
    const N: u32 = 100_000;
    const INTERVAL: u64 = 60_000;
    const HOUR: u64 = 3_600_000;
    // CRLF keepalives: the destination identifies the binding without parsing 6M pings.
    let mut core = Core::new(config(NatConfig {
        method: PingMethod::Crlf,
        ..NatConfig::default()
    }));
    let mut who: HashMap<SocketAddr, u32> = HashMap::new();
    for i in 0..N {
        let (src, contact) = phone(i);
        core.handle_datagram(
            Millis(0),
            LocalId(0),
            src.parse().unwrap(),
            &register(&format!("u{i}"), &src, &contact, 7200, 1),
        );
        assert!(core.poll_transmit().is_some());
        while core.poll_transmit().is_some() {}
        who.insert(src.parse().unwrap(), i);
    }
    assert_eq!(core.binding_count(), N as usize);
    // Per binding: pings, the last ping time; removed bindings and when.
    let mut count = vec![0u32; N as usize];
    let mut last = vec![u64::MAX; N as usize];
    let mut removed_at: HashMap<u32, u64> = HashMap::new();
    let mut bad = Vec::new();
    let mut check = |at: u64, to: SocketAddr, data: &[u8], removed: &HashMap<u32, u64>| {
        assert_eq!(data, b"\r\n\r\n", "CRLF keepalives are 4 bytes");
        let i = who[&to];
        let l = last[i as usize];
        let gap_ok = if l == u64::MAX {
            at <= INTERVAL + TICK // the first ping within one interval (+ a tick)
        } else {
            (INTERVAL - TICK..=INTERVAL + TICK).contains(&(at - l))
        };
        if !gap_ok || removed.contains_key(&i) {
            bad.push((i, l, at));
        }
        last[i as usize] = at;
        count[i as usize] += 1;
    };
    // Step through the hour; at 20 min refresh every 10th binding, at 30 min unregister
    // every 7th.
    for (at, action) in [(1_200_000u64, 10u32), (1_800_000, 7), (HOUR, 0)] {
        run_until(&mut core, at, |t, to, d| check(t, to, d, &removed_at));
        let now = at;
        if action == 0 {
            break;
        }
        for i in (0..N).step_by(action as usize) {
            let (src, contact) = phone(i);
            let (expires, cseq) = if action == 7 { (0, 3) } else { (7200, 2) };
            let r = send(
                &mut core,
                now,
                &src,
                &register(&format!("u{i}"), &src, &contact, expires, cseq),
            );
            for (to, d) in &r {
                if !d.starts_with(b"SIP/2.0 200") {
                    check(now, *to, d, &removed_at);
                }
            }
            if action == 7 {
                removed_at.insert(i, now);
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} pings off schedule, e.g. {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    for i in 0..N {
        let expect = match removed_at.get(&i) {
            // Pinged once per interval until removed at 30 min.
            Some(_) => 30,
            None => 60,
        };
        let c = count[i as usize];
        assert!(
            c == expect || c + 1 == expect || c == expect + 1,
            "binding {i}: {c} pings, expected {expect} ±1"
        );
    }
    let never_after_removal = removed_at.iter().all(|(i, t)| last[*i as usize] <= *t);
    assert!(never_after_removal, "a removed binding was pinged");
    let s = &core.stats().nat;
    assert_eq!(
        s.pings_sent,
        count.iter().map(|&c| u64::from(c)).sum::<u64>()
    );
    assert_eq!(s.ping_max_late_ticks, 0);
    assert_eq!(core.binding_count(), (N - N.div_ceil(7)) as usize);
}

/// One NATed binding of `user` in `core`; returns its source.
fn one_binding(core: &mut Core, user: &str, i: u32) -> SocketAddr {
    let (src, contact) = phone(i);
    let r = send(core, 0, &src, &register(user, &src, &contact, 7200, 1));
    assert_eq!(r.len(), 1);
    src.parse().unwrap()
}

#[test]
fn timeout_deregisters_after_exactly_n_misses_and_journals_it() {
    for n in 1..=4u8 {
        let mut core = Core::new(CoreConfig {
            journal: true,
            ..config(NatConfig {
                ping: PingMode::Timeout,
                ping_failures_max: n,
                ..NatConfig::default()
            })
        });
        let src = one_binding(&mut core, "mute", 1);
        while core.poll_journal().is_some() {}
        let mut pings = Vec::new();
        run_until(&mut core, 7_000_000, |t, to, d| {
            assert_eq!(to, src, "pinged at the received address");
            assert!(is_options(d));
            pings.push(t);
        });
        assert_eq!(pings.len(), usize::from(n), "N = {n}: pings before removal");
        assert_eq!(core.binding_count(), 0, "N = {n}: deregistered");
        let s = &core.stats().nat;
        assert_eq!(
            (s.ping_deregistrations, s.pings_timed_out),
            (1, u64::from(n))
        );
        assert!(matches!(
            core.poll_event(),
            Some(CoreEvent::PingTimeout { source, misses }) if source == src && misses == n
        ));
        let rec = core
            .poll_journal()
            .expect("the removal is journalled")
            .to_vec();
        // Replayed into a fresh core after the upsert, the binding stays removed.
        let mut upsert = Core::new(config(NatConfig::default()));
        one_binding(&mut upsert, "mute", 1);
        upsert.restore_record(Millis(0), &rec).unwrap();
        assert_eq!(upsert.binding_count(), 0, "a restart does not resurrect it");
    }
}

#[test]
fn an_answering_contact_stays_and_its_rtt_is_kept() {
    let mut core = Core::new(config(NatConfig {
        ping: PingMode::Timeout,
        ..NatConfig::default()
    }));
    let src = one_binding(&mut core, "talk", 2);
    let mut answered = 0;
    let mut t = 0;
    while t < 600_000 {
        let due = core.poll_timeout().unwrap();
        core.handle_timeout(due);
        t = due.0;
        for (to, ping) in drain(&mut core) {
            assert_eq!(to, src);
            // Answer 30 ms later (alternate 30 and 70 ms for the smoothed RTT).
            let rtt = if answered % 2 == 0 { 30 } else { 70 };
            let r = send(&mut core, t + rtt, &src.to_string(), &answer(&ping));
            assert!(r.is_empty(), "an answer is absorbed");
            answered += 1;
        }
    }
    assert_eq!(answered, 10, "one ping per minute");
    // The published buckets follow the histogram within a second.
    run_until(&mut core, t + 1_000, |_, _, _| {});
    let c = &core.lookup(Millis(t), aor("talk").as_bytes()).unwrap()[0];
    assert_eq!(c.rtt_ms, Some(70));
    assert!(
        c.srtt_ms.is_some_and(|s| (30..=70).contains(&s)),
        "{:?}",
        c.srtt_ms
    );
    let s = &core.stats().nat;
    assert_eq!(
        (s.pings_sent, s.pings_answered, s.pings_timed_out),
        (10, 10, 0)
    );
    assert_eq!((s.rtt_count, s.rtt_sum_ms), (10, 500));
    assert_eq!(s.rtt_buckets[4], 0, "none within 20 ms");
    assert_eq!(s.rtt_buckets[5], 5, "five within 50 ms");
    assert_eq!(s.rtt_buckets[6], 10, "all within 100 ms");
    assert_eq!(core.ping_rtt_quantile_ms(1.0), 70);
    assert_eq!(core.binding_count(), 1);
}

#[test]
fn refreshes_count_as_alive_and_do_not_double_pings() {
    let mut core = Core::new(config(NatConfig {
        ping: PingMode::Timeout,
        ping_failures_max: 1,
        ..NatConfig::default()
    }));
    let (src, contact) = phone(3);
    send(
        &mut core,
        0,
        &src,
        &register("silent", &src, &contact, 7200, 1),
    );
    let mut pings = 0;
    for minute in 1..=10u64 {
        run_until(&mut core, minute * 60_000 - 1, |_, _, _| pings += 1);
        // A refresh each minute: never answers a ping but is alive.
        let r = send(
            &mut core,
            minute * 60_000 - 1,
            &src,
            &register("silent", &src, &contact, 7200, 1 + minute as u32),
        );
        assert_eq!(r.len(), 1);
    }
    assert_eq!(core.binding_count(), 1, "refreshes keep it registered");
    assert!((9..=10).contains(&pings), "{pings} pings in 10 minutes");
    assert_eq!(core.stats().nat.ping_deregistrations, 0);
}

#[test]
fn answers_reach_the_owner_shard_and_stale_ones_are_counted() {
    let mk = |s| {
        Core::new(CoreConfig {
            shard: ShardId(s),
            shards: 2,
            seed: 99 + u64::from(s),
            ..config(NatConfig::default())
        })
    };
    let mut shards = [mk(0), mk(1)];
    // Find a user owned by shard 1, register it through shard 1.
    let user = (0..)
        .map(|i| format!("x{i}"))
        .find(|u| shards[1].lookup(Millis(0), aor(u).as_bytes()).is_ok())
        .unwrap();
    let src = one_binding(&mut shards[1], &user, 4);
    let mut ping = None;
    run_until(&mut shards[1], 61_000, |_, _, d| ping = Some(d.to_vec()));
    let ping = ping.expect("pinged within the interval");
    // The answer lands on shard 0's socket: handed to shard 1, which matches it.
    shards[0].handle_datagram(Millis(61_005), LocalId(0), src, &answer(&ping));
    let (to, msg) = shards[0].poll_shard_msg().expect("handed to the owner");
    assert_eq!(to, ShardId(1));
    assert_eq!(shards[0].stats().nat.ping_answers_forwarded, 1);
    shards[1].handle_shard_msg(Millis(61_006), ShardId(0), msg);
    assert_eq!(shards[1].stats().nat.pings_answered, 1);
    // A forged token and an answer after the binding is gone are stale.
    let text = String::from_utf8(answer(&ping)).unwrap();
    let at = text.find("branch=z9hG4bK").unwrap() + 14 + 30; // the MAC's first digit
    let mut forged = text.into_bytes();
    forged[at] = if forged[at] == b'0' { b'1' } else { b'0' };
    send(&mut shards[1], 61_010, &src.to_string(), &forged);
    let (s, c) = phone(4);
    send(&mut shards[1], 61_020, &s, &register(&user, &s, &c, 0, 2));
    assert_eq!(shards[1].binding_count(), 0);
    send(&mut shards[1], 61_030, &src.to_string(), &answer(&ping));
    let st = &shards[1].stats().nat;
    assert_eq!((st.pings_answered, st.ping_answers_stale), (1, 2));
}

#[test]
fn restore_recomputes_the_nat_flag() {
    let mut a = Core::new(CoreConfig {
        journal: true,
        ..config(NatConfig::default())
    });
    let src = one_binding(&mut a, "back", 5);
    let rec = a.poll_journal().unwrap().to_vec();
    let mut b = Core::new(config(NatConfig::default()));
    b.restore_record(Millis(0), &rec).unwrap();
    let c = &b.lookup(Millis(0), aor("back").as_bytes()).unwrap()[0];
    assert_eq!(c.received, Some(src));
    let mut pings = 0;
    run_until(&mut b, 61_000, |_, to, _| {
        assert_eq!(to, src);
        pings += 1;
    });
    assert_eq!(pings, 1, "a restored NATed binding is pinged");
}

#[test]
fn the_pinger_sleeps_without_nated_bindings() {
    let mut core = Core::new(config(NatConfig::default()));
    let src = "198.51.100.20:5060";
    send(
        &mut core,
        0,
        src,
        &register("plain", src, "sip:plain@198.51.100.20", 600, 1),
    );
    // The wheel may wake earlier than the expiry (a level cascade), never every tick.
    let asleep = |core: &Core| core.poll_timeout().is_some_and(|t| t.0 > 100_000);
    assert!(
        asleep(&core),
        "only the expiry: no keepalive wake-ups for a binding that is not NATed"
    );
    let (nsrc, contact) = phone(6);
    send(
        &mut core,
        0,
        &nsrc,
        &register("nated", &nsrc, &contact, 300, 1),
    );
    assert!(
        core.poll_timeout().is_some_and(|t| t.0 <= TICK),
        "the pinger runs"
    );
    send(
        &mut core,
        5,
        &nsrc,
        &register("nated", &nsrc, &contact, 0, 2),
    );
    core.handle_timeout(Millis(10));
    assert_eq!(core.binding_count(), 1);
    assert!(asleep(&core), "asleep again");
}

#[test]
fn any_request_from_the_contact_counts_as_alive() {
    let mut core = Core::new(config(NatConfig {
        ping: PingMode::Timeout,
        ping_failures_max: 3,
        ..NatConfig::default()
    }));
    let src = one_binding(&mut core, "chatty", 3);
    // Two pings go unanswered…
    let (mut pings, mut t) = (0, 0);
    while pings < 2 {
        let due = core.poll_timeout().expect("the pinger is armed");
        core.handle_timeout(due);
        t = due.0;
        pings += drain(&mut core)
            .iter()
            .filter(|(_, d)| is_options(d))
            .count();
    }
    // …then the phone sends a MESSAGE of its own: that is a sign of life (issue 8).
    let message = format!(
        "MESSAGE sip:nobody@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK-m1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:chatty@{DOMAIN}>;tag=m\r\nTo: <sip:nobody@{DOMAIN}>\r\nCall-ID: m1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
    );
    send(&mut core, t + 1_000, &src.to_string(), message.as_bytes());
    run_until(&mut core, t + 10_000_000, |_, _, d| {
        if is_options(d) {
            pings += 1;
        }
    });
    assert_eq!(
        core.binding_count(),
        0,
        "removed after three misses in a row"
    );
    assert_eq!(
        pings,
        2 + 3,
        "the MESSAGE reset the miss count after two misses"
    );
}
