//! Bad input never panics the registrar: mutated REGISTERs (through two shards, hand-offs
//! included) and mutated journal records. Afterwards the edge still registers and answers.
#![allow(clippy::unwrap_used)]

mod common;

use common::{answer_at, bindings, config, drain, reg, DOMAIN, PHONE};
use sipedge_core::{Core, CoreConfig, LocalId, Millis, ShardId};
mod mutate;
use mutate::Rng;

const INTERESTING: &[&[u8]] = &[
    b"*",
    b",",
    b";",
    b"<",
    b">",
    b"@",
    b":",
    b"\"",
    b"%",
    b"%00",
    b"expires=0",
    b"q=2",
    b";reg-id=1;+sip.instance=\"<urn:x>\"",
    b"\r\nContact: *",
    b"\r\nExpires: 0",
    b"\r\nPath: <sip:p;lr>",
    b"\r\nSupported: path, outbound",
    b"sips:",
    b"tel:",
    b"[::1]",
    b"4294967296",
    b"99999999999999999999",
];

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    mutate::mutate(rng, base, INTERESTING, 4)
}

#[test]
fn mutated_registers_never_panic() {
    let mut shards: Vec<Core> = (0..2)
        .map(|i| {
            Core::new(CoreConfig {
                shard: ShardId(i),
                shards: 2,
                journal: true,
                ..config()
            })
        })
        .collect();
    let bases: Vec<Vec<u8>> = vec![
        reg().contact("<sip:alice@192.0.2.50:40123>;q=0.5").bytes(),
        reg()
            .to(&format!("<sip:bob@{DOMAIN}>"))
            .contact("<sip:bob@[2001:db8::1]>;+sip.instance=\"<urn:uuid:1>\";reg-id=1")
            .extra("Path: <sip:p1.example.net;lr>")
            .extra("Supported: path, outbound")
            .bytes(),
        reg().contact("*").expires("0").cseq(9).bytes(),
        reg().cseq(3).bytes(),
    ];
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut now = 0u64;
    for i in 0..20_000 {
        let base = &bases[i % bases.len()];
        let bytes = mutate(&mut rng, base);
        let s = rng.below(2);
        shards[s].handle_datagram(Millis(now), LocalId(0), PHONE.parse().unwrap(), &bytes);
        // Deliver hand-offs both ways, run timers now and then, drain everything.
        for from in 0..2 {
            while let Some((to, msg)) = shards[from].poll_shard_msg() {
                shards[to.0 as usize].handle_shard_msg(Millis(now), ShardId(from as u16), msg);
            }
        }
        for core in &mut shards {
            drain(core);
            while core.poll_journal().is_some() {}
            while core.poll_event().is_some() {}
        }
        if i % 500 == 0 {
            now += 61_000;
            for core in &mut shards {
                core.handle_timeout(Millis(now));
            }
        }
    }
    // Still registering.
    let mut fresh = Core::new(config());
    let a = answer_at(
        &mut fresh,
        now,
        &reg().contact("<sip:alice@192.0.2.50:40123>"),
    );
    assert_eq!(a.status(), 200);
    let owner = shards
        .iter_mut()
        .position(|c| c.lookup(Millis(now), b"sip:carol@edge.example.com").is_ok())
        .unwrap();
    let a = answer_at(
        &mut shards[owner],
        now,
        &reg()
            .to(&format!("<sip:carol@{DOMAIN}>"))
            .contact("<sip:carol@192.0.2.7>"),
    );
    assert_eq!(a.status(), 200);
    assert_eq!(
        bindings(&shards[owner], now, "sip:carol@edge.example.com"),
        vec!["sip:carol@192.0.2.7"]
    );
}

#[test]
fn mutated_records_never_panic() {
    let mut core = Core::new(CoreConfig {
        journal: true,
        ..config()
    });
    core.set_wall_clock(Millis(0), 1_800_000_000_000);
    answer_at(
        &mut core,
        1000,
        &reg()
            .contact("<sip:alice@192.0.2.50:40123>;q=0.5")
            .contact("<sip:alice@[2001:db8::1]>;+sip.instance=\"<urn:uuid:1>\";reg-id=1")
            .extra("Path: <sip:p1.example.net;lr>"),
    );
    answer_at(
        &mut core,
        2000,
        &reg()
            .contact("<sip:alice@192.0.2.50:40123>;expires=0")
            .cseq(2),
    );
    let mut records = Vec::new();
    while let Some(r) = core.poll_journal() {
        records.push(r.to_vec());
    }
    assert_eq!(records.len(), 3);
    let mut target = Core::new(config());
    target.set_wall_clock(Millis(0), 1_800_000_000_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for i in 0..20_000 {
        let rec = mutate(&mut rng, &records[i % records.len()]);
        if target.restore_record(Millis(5000), &rec).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted > 0, "some mutations are still valid records");
    // The untouched records still restore to what the journal said.
    let mut clean = Core::new(config());
    clean.set_wall_clock(Millis(0), 1_800_000_000_000);
    for r in &records {
        clean.restore_record(Millis(5000), r).unwrap();
    }
    assert_eq!(
        bindings(&clean, 5000, "sip:alice@edge.example.com"),
        vec!["sip:alice@[2001:db8::1]"]
    );
}
