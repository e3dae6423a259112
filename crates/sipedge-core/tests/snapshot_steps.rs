//! A snapshot spread over many turns (`Core::binding_records_step`) while REGISTERs keep
//! changing the table: the snapshot followed by the records journalled since it began
//! restores exactly the table the shard ends with (bindings added, refreshed, moved to
//! another contact and removed during the snapshot included).
#![allow(clippy::unwrap_used)]

mod common;

use common::{answer_at, config, reg, DOMAIN};
use sipedge_core::{Core, CoreConfig, Millis, SnapshotCursor};

const WALL: u64 = 1_800_000_000_000;

fn journal_core() -> Core {
    let mut core = Core::new(CoreConfig {
        journal: true,
        ..config()
    });
    core.set_wall_clock(Millis(0), WALL);
    core
}

fn aor(i: u32) -> String {
    format!("sip:u{i}@{DOMAIN}")
}

/// REGISTER of user `i` with `contacts` (each `<uri>` or `<uri>;expires=0`).
fn register(core: &mut Core, now: u64, i: u32, cseq: u32, contacts: &[String]) {
    let mut r = reg()
        .to(&format!("<{}>", aor(i)))
        .call_id(&format!("c{i}@192.0.2.50"))
        .cseq(cseq)
        .expires("3600");
    for c in contacts {
        r = r.contact(c);
    }
    assert_eq!(answer_at(core, now, &r).status(), 200, "REGISTER of u{i}");
}

fn contact(i: u32, port: u32) -> String {
    format!("<sip:u{i}@192.0.2.{}:{port}>", i % 200 + 1)
}

fn drain_journal(core: &mut Core) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(r) = core.poll_journal() {
        out.push(r.to_vec());
    }
    out
}

/// One contact as the test compares it: (uri, expiry, CSeq).
type Contact = (Vec<u8>, u64, u32);

/// Every AoR's contacts, sorted.
fn table(core: &Core, users: u32) -> Vec<(u32, Vec<Contact>)> {
    (0..users)
        .filter_map(|i| {
            let mut c: Vec<_> = core
                .lookup(Millis(0), aor(i).as_bytes())
                .ok()?
                .into_iter()
                .map(|b| (b.uri, b.expires_at.0, b.cseq))
                .collect();
            c.sort();
            (!c.is_empty()).then_some((i, c))
        })
        .collect()
}

#[test]
fn a_snapshot_taken_in_steps_plus_the_later_journal_restores_the_final_table() {
    let mut core = journal_core();
    const USERS: u32 = 3000;
    // Before the snapshot: 3000 AoRs, every tenth with three contacts.
    for i in 0..USERS {
        let n = if i % 10 == 0 { 3 } else { 1 };
        let cs: Vec<String> = (0..n).map(|k| contact(i, 5060 + k)).collect();
        register(&mut core, 1000, i, 1, &cs);
    }
    drain_journal(&mut core); // what the old journal file holds, covered by the snapshot
    let before = core.binding_count();

    // The journal rotates here; then the snapshot is filled 97 slots a step, and between
    // steps REGISTERs change the table.
    let mut cursor = SnapshotCursor::default();
    let mut snapshot = Vec::new();
    let mut later = Vec::new();
    let (mut step, mut next_new) = (0u32, USERS);
    let mut cseq = 2;
    while !core.binding_records_step(&mut cursor, 97, |r| snapshot.push(r.to_vec())) {
        step += 1;
        let now = 2000 + u64::from(step);
        // Remove an AoR whose slot the cursor has not reached, and one it has passed.
        for i in [(step * 31) % USERS, (step * 7) % USERS] {
            let r = reg()
                .to(&format!("<{}>", aor(i)))
                .call_id(&format!("c{i}@192.0.2.50"))
                .cseq(cseq)
                .contact("*")
                .expires("0");
            answer_at(&mut core, now, &r);
        }
        // A new AoR (it may take a freed slot behind the cursor).
        register(&mut core, now, next_new, 1, &[contact(next_new, 5070)]);
        // A refresh with a shorter expiry, and a multi-contact AoR that drops one contact
        // and gains another.
        let i = (step * 13) % USERS;
        register(
            &mut core,
            now,
            i,
            cseq,
            &[format!("{};expires=1800", contact(i, 5060))],
        );
        let m = (step * 10) % USERS;
        register(
            &mut core,
            now,
            m,
            cseq,
            &[format!("{};expires=0", contact(m, 5060)), contact(m, 6000)],
        );
        cseq += 1;
        next_new += 1;
        later.extend(drain_journal(&mut core));
    }
    assert!(step > 30, "the snapshot took many steps ({step})");
    assert_ne!(
        core.binding_count(),
        before,
        "the table changed during the snapshot"
    );

    let mut restored = journal_core();
    for r in snapshot.iter().chain(&later) {
        restored.restore_record(Millis(0), r).unwrap();
    }
    assert_eq!(restored.binding_count(), core.binding_count());
    assert_eq!(table(&restored, next_new), table(&core, next_new));
}
