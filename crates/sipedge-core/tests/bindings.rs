//! Bindings over time and across shards: expiry on the wheel, the hand-off of a REGISTER to
//! the AoR's owner, lookups over the mesh, and journal records replayed into a new core.
#![allow(clippy::unwrap_used)]

mod common;

use common::{answer_at, bindings, config, drain, reg, send_at, DOMAIN, PHONE};
use sipedge_core::{
    record_owner, Core, CoreConfig, LocalId, Millis, RestoreError, ShardId, ShardMsg,
};

const C1: &str = "sip:alice@192.0.2.50:40123";
const AOR: &str = "sip:alice@edge.example.com";

/// Runs the core's timers at every instant it asks for, up to `until`.
fn run_timers(core: &mut Core, until: u64) {
    while let Some(due) = core.poll_timeout() {
        if due.0 > until {
            break;
        }
        core.handle_timeout(due);
    }
    core.handle_timeout(Millis(until));
}

#[test]
fn a_binding_disappears_at_its_expiry_not_later_than_one_tick() {
    let mut core = Core::new(config());
    answer_at(
        &mut core,
        0,
        &reg().contact(&format!("<{C1}>")).expires("60"),
    );
    assert!(core.poll_timeout().is_some_and(|t| t.0 <= 60_000));
    run_timers(&mut core, 59_999);
    assert_eq!(
        core.binding_count(),
        1,
        "still there just before its expiry"
    );
    run_timers(&mut core, 60_010);
    assert_eq!(core.binding_count(), 0, "gone within a tick of its expiry");
    assert_eq!(core.stats().bindings_expired, 1);
    assert_eq!(core.poll_timeout(), None, "nothing left on the wheel");
}

#[test]
fn a_refresh_moves_the_expiry_later_and_earlier() {
    let mut core = Core::new(config());
    answer_at(
        &mut core,
        0,
        &reg().contact(&format!("<{C1}>")).expires("60"),
    );
    // Refreshed at 30 s for 60 s: the old timer (60 s) fires and re-arms at 90 s.
    answer_at(
        &mut core,
        30_000,
        &reg().contact(&format!("<{C1}>")).expires("60").cseq(2),
    );
    run_timers(&mut core, 89_990);
    assert_eq!(bindings(&core, 89_990, AOR), vec![C1]);
    // Refreshed at 89.99 s for 3600 s, then at 100 s shortened to 60 s: gone at 160 s.
    answer_at(
        &mut core,
        89_990,
        &reg().contact(&format!("<{C1}>")).expires("3600").cseq(3),
    );
    answer_at(
        &mut core,
        100_000,
        &reg().contact(&format!("<{C1}>")).expires("60").cseq(4),
    );
    run_timers(&mut core, 159_999);
    assert_eq!(core.binding_count(), 1);
    run_timers(&mut core, 160_010);
    assert_eq!(core.binding_count(), 0);
    assert_eq!(core.stats().bindings_expired, 1);
    // The stale timer of the 3600 s refresh fires later and finds nothing.
    run_timers(&mut core, 3_700_000);
    assert_eq!(core.stats().bindings_expired, 1);
    assert_eq!(core.poll_timeout(), None);
}

fn shard_cfg(shard: u16, shards: u16) -> CoreConfig {
    CoreConfig {
        shard: ShardId(shard),
        shards,
        ..config()
    }
}

/// A user whose AoR the given shard (of 2) owns.
fn user_owned_by(shard: u16) -> String {
    (0..)
        .map(|i| format!("user{i}"))
        .find(|u| {
            let probe = Core::new(shard_cfg(shard, 2));
            probe
                .lookup(Millis(0), format!("sip:{u}@{DOMAIN}").as_bytes())
                .is_ok()
        })
        .unwrap()
}

/// Issue 14 item 7, parse once across the mesh: the hand-off carries what the receiving
/// shard parsed, and the owner answers from it exactly as from the raw bytes.
#[test]
fn a_handed_off_register_carries_its_parse_and_the_owner_answers_the_same() {
    let mut s0 = Core::new(shard_cfg(0, 2));
    let user = user_owned_by(1);
    let aor = format!("sip:{user}@{DOMAIN}");
    let req = reg().to(&format!("<{aor}>")).contact(&format!(
        "<sip:{user}@192.0.2.50:40123>;expires=600, <sip:{user}@[2001:db8::5]>"
    ));
    s0.handle_datagram(Millis(10), LocalId(3), PHONE.parse().unwrap(), &req.bytes());
    let (_, msg) = s0.poll_shard_msg().unwrap();
    let ShardMsg::Datagram {
        local,
        remote,
        arrived,
        bytes,
        parsed,
    } = msg
    else {
        panic!("a datagram hand-off")
    };
    assert!(parsed.is_some(), "the parse travels with the bytes");
    let raw = ShardMsg::Datagram {
        local,
        remote,
        arrived,
        bytes: bytes.clone(),
        parsed: None,
    };
    let with = ShardMsg::Datagram {
        local,
        remote,
        arrived,
        bytes,
        parsed,
    };
    let answer = |m: ShardMsg| {
        let mut s1 = Core::new(shard_cfg(1, 2));
        s1.handle_shard_msg(Millis(11), ShardId(0), m);
        let out: Vec<(u16, Vec<String>, LocalId)> = drain(&mut s1)
            .iter()
            .map(|a| (a.status(), a.contacts(), a.local))
            .collect();
        (out, s1.binding_count())
    };
    let (from_parse, n) = answer(with);
    assert_eq!(from_parse.len(), 1);
    assert_eq!(from_parse[0].0, 200);
    assert_eq!(n, 2);
    assert_eq!(answer(raw), (from_parse, n));
}

#[test]
fn a_register_landing_on_another_shard_is_answered_by_the_owner() {
    let mut s0 = Core::new(shard_cfg(0, 2));
    let mut s1 = Core::new(shard_cfg(1, 2));
    let user = user_owned_by(1);
    let aor = format!("sip:{user}@{DOMAIN}");
    let req = reg()
        .to(&format!("<{aor}>"))
        .contact(&format!("<sip:{user}@192.0.2.50:40123>"));
    // Shard 0 receives it on socket 3: no reply of its own, one hand-off to shard 1.
    s0.handle_datagram(Millis(10), LocalId(3), PHONE.parse().unwrap(), &req.bytes());
    assert!(drain(&mut s0).is_empty(), "the non-owner does not answer");
    let (to, msg) = s0.poll_shard_msg().unwrap();
    assert_eq!(to, ShardId(1));
    assert!(matches!(msg, ShardMsg::Datagram { .. }));
    assert_eq!(s0.binding_count(), 0);
    // The owner answers from its own socket 3 to the phone.
    s1.handle_shard_msg(Millis(11), ShardId(0), msg);
    let replies = drain(&mut s1);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].status(), 200);
    assert_eq!(
        (replies[0].local, replies[0].to),
        (LocalId(3), PHONE.parse().unwrap())
    );
    assert_eq!(
        replies[0].contacts(),
        vec![format!("<sip:{user}@192.0.2.50:40123>;expires=3600")]
    );
    let b = s1.lookup(Millis(11), aor.as_bytes()).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].arrival, ShardId(0), "the receiving shard is recorded");
    assert_eq!(b[0].local, LocalId(3));
    assert_eq!(s1.stats().registers_ok, 1);

    // A lookup from shard 0 goes over the mesh and comes back with the binding.
    s0.request_lookup(Millis(12), aor.as_bytes(), 77);
    assert!(s0.poll_lookup().is_none());
    let (to, ask) = s0.poll_shard_msg().unwrap();
    assert_eq!(to, ShardId(1));
    s1.handle_shard_msg(Millis(12), ShardId(0), ask);
    let (back, answer) = s1.poll_shard_msg().unwrap();
    assert_eq!(back, ShardId(0));
    s0.handle_shard_msg(Millis(12), ShardId(1), answer);
    let r = s0.poll_lookup().unwrap();
    assert_eq!((r.token, r.owner), (77, ShardId(1)));
    assert_eq!(r.contacts, b);
    // A local lookup on the owner answers at once.
    s1.request_lookup(Millis(12), aor.as_bytes(), 78);
    assert_eq!(s1.poll_lookup().unwrap().contacts, b);
}

fn journal_cfg() -> CoreConfig {
    CoreConfig {
        journal: true,
        ..config()
    }
}

fn records(core: &mut Core) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(r) = core.poll_journal() {
        out.push(r.to_vec());
    }
    out
}

const WALL: u64 = 1_800_000_000_000;

#[test]
fn journal_records_rebuild_the_bindings() {
    let mut core = Core::new(journal_cfg());
    core.set_wall_clock(Millis(0), WALL);
    let c2 = "sip:alice@198.51.100.7:5060";
    answer_at(
        &mut core,
        1000,
        &reg()
            .contact(&format!("<{C1}>;q=0.5"))
            .contact(&format!("<{c2}>")),
    );
    answer_at(
        &mut core,
        2000,
        &reg()
            .contact(&format!("<{C1}>;q=0.5"))
            .expires("600")
            .cseq(2),
    );
    answer_at(
        &mut core,
        3000,
        &reg().contact(&format!("<{c2}>;expires=0")).cseq(3),
    );
    answer_at(
        &mut core,
        3000,
        &reg()
            .to("<sip:bob@edge.example.com>")
            .contact("<sip:bob@192.0.2.9>"),
    );
    let recs = records(&mut core);
    assert_eq!(recs.len(), 5, "two upserts, a refresh, a removal, bob");
    assert!(core.poll_journal().is_none());

    // A restart 10 s later: the new process's monotonic clock starts at 0 again.
    let mut restarted = Core::new(journal_cfg());
    restarted.set_wall_clock(Millis(0), WALL + 10_000);
    for r in &recs {
        restarted.restore_record(Millis(0), r).unwrap();
    }
    let b = restarted.lookup(Millis(0), AOR.as_bytes()).unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].uri, C1.as_bytes());
    assert_eq!(b[0].q, Some(500));
    assert_eq!(b[0].cseq, 2);
    assert_eq!(b[0].source, PHONE.parse().unwrap());
    // Registered at 2 s for 600 s; restarted at 10 s: 592 s left.
    assert_eq!(b[0].expires_at, Millis(592_000));
    assert_eq!(
        bindings(&restarted, 0, "sip:bob@edge.example.com"),
        vec!["sip:bob@192.0.2.9"]
    );
    assert!(
        restarted.poll_journal().is_none(),
        "restoring journals nothing"
    );
    // The restored binding expires on the wheel.
    run_timers(&mut restarted, 592_010);
    assert!(bindings(&restarted, 592_010, AOR).is_empty());

    // A snapshot of the original core restores to the same state.
    let mut snap = Vec::new();
    core.for_each_binding_record(|r| snap.push(r.to_vec()));
    assert_eq!(snap.len(), 2);
    let mut from_snap = Core::new(journal_cfg());
    from_snap.set_wall_clock(Millis(0), WALL + 10_000);
    for r in &snap {
        from_snap.restore_record(Millis(0), r).unwrap();
    }
    assert_eq!(from_snap.lookup(Millis(0), AOR.as_bytes()).unwrap(), b);

    // Restored much later: everything has expired, and is counted.
    let mut late = Core::new(journal_cfg());
    late.set_wall_clock(Millis(0), WALL + 100_000_000);
    for r in &recs {
        late.restore_record(Millis(0), r).unwrap();
    }
    assert_eq!(late.binding_count(), 0);
    assert_eq!(late.stats().restore_expired, 4);

    // Routing records to shards: each is accepted by its owner only.
    let mut shards: Vec<Core> = (0..3)
        .map(|i| {
            Core::new(CoreConfig {
                shard: ShardId(i),
                shards: 3,
                ..journal_cfg()
            })
        })
        .collect();
    for r in &recs {
        let owner = record_owner(r, 3).unwrap();
        for s in &mut shards {
            s.set_wall_clock(Millis(0), WALL + 10_000);
            let res = s.restore_record(Millis(0), r);
            if s.shard() == owner {
                res.unwrap();
            } else {
                assert_eq!(res, Err(RestoreError::NotOwner(owner)));
            }
        }
    }
    assert_eq!(shards.iter().map(Core::binding_count).sum::<usize>(), 2);
    assert!(restarted
        .restore_record(Millis(0), b"\x01\x01garbage")
        .is_err());
}

#[test]
fn without_a_journal_nothing_is_queued() {
    let mut core = Core::new(config());
    let r = send_at(&mut core, 0, &reg().contact(&format!("<{C1}>")));
    assert_eq!(r[0].status(), 200);
    assert!(core.poll_journal().is_none());
}

/// A REGISTER from `source` with everything a record carries: a User-Agent longer than the
/// table keeps, q, an outbound flow, Path.
fn rich_register(cseq: u32, expires: u32) -> Vec<u8> {
    let ua = "P".repeat(200);
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.8.7:5070;branch=z9hG4bK-rich-{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:carol@{DOMAIN}>;tag=c{cseq}\r\nTo: <sip:carol@{DOMAIN}>\r\nCall-ID: rich-1@10.9.8.7\r\nCSeq: {cseq} REGISTER\r\nSupported: path, outbound\r\nPath: <sip:p1.example.net;lr>\r\nContact: <sip:carol@10.9.8.7:5070;transport=udp>;q=0.7;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000000000001>\";reg-id=1;expires={expires}\r\nUser-Agent: {ua}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn a_journal_upsert_is_the_record_a_snapshot_writes() {
    for source in [
        "198.51.100.20:5070",
        "[::ffff:198.51.100.20]:5070",
        "[2001:db8::20]:5070",
    ] {
        let mut core = Core::new(journal_cfg());
        core.set_wall_clock(Millis(0), WALL);
        // A new binding, a refresh that shortens it, one that lengthens it.
        for (cseq, expires, now) in [(1, 3600, 1000), (2, 600, 2000), (3, 7200, 3500)] {
            core.handle_datagram(
                Millis(now),
                LocalId(0),
                source.parse().unwrap(),
                &rich_register(cseq, expires),
            );
            let replies = drain(&mut core);
            assert_eq!(replies[0].status(), 200, "{source} CSeq {cseq}");
            let mut recs = records(&mut core);
            assert_eq!(recs.len(), 1, "{source} CSeq {cseq}");
            // The new binding is journalled as a creation (record kind 3), a refresh as an
            // upsert (kind 1), which is what a snapshot (the table's state) writes.
            assert_eq!(
                recs[0][1],
                if cseq == 1 { 3 } else { 1 },
                "{source} CSeq {cseq}: kind"
            );
            recs[0][1] = 1;
            let mut snap = Vec::new();
            core.for_each_binding_record(|r| snap.push(r.to_vec()));
            assert_eq!(
                snap, recs,
                "{source} CSeq {cseq}: journal and snapshot agree"
            );
        }
    }
}
