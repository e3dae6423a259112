//! Crashes at each step of a snapshot commit (needs the crate-internal stop points).

use std::collections::BTreeMap;
use std::fs;

use crate::journal::CommitStep;
use crate::{recover, JournalOptions, Layout, SyncPolicy};

fn kv(k: u32, v: &str) -> Vec<u8> {
    format!("k{k}={v}").into_bytes()
}

/// Replays everything "later record wins"; returns the state and the records read.
fn state(dir: &std::path::Path) -> (BTreeMap<String, String>, u64) {
    let mut map = BTreeMap::new();
    let mut rec = recover(dir).expect("recover");
    let stats = rec
        .replay(|_, r| {
            let s = std::str::from_utf8(r).expect("utf8");
            let (k, v) = s.split_once('=').expect("=");
            map.insert(k.to_string(), v.to_string());
        })
        .expect("replay");
    (map, stats.records)
}

fn names(layout: &Layout) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(layout.dir())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Journal gen 2 holds k0..k9=a; a snapshot of that state is committed up to `step`; then
/// k0=b is appended to the new journal and the process "dies" (no drop, no flush beyond
/// what `Every` already made durable).
fn crash_at(step: CommitStep) -> (tempfile::TempDir, Layout) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = recover(tmp.path())
        .expect("recover")
        .finish(1, |_, _| {})
        .expect("finish");
    let mut j = layout
        .open_shard(0, JournalOptions::new(SyncPolicy::Every))
        .expect("open");
    for k in 0..10 {
        j.append(&kv(k, "a")).expect("append");
    }
    j.end_turn(0).expect("end_turn");
    let mut w = j.begin_snapshot().expect("begin");
    for k in 0..10 {
        w.emit(&kv(k, "a"));
    }
    w.commit_until(step).expect("commit");
    j.append(&kv(0, "b")).expect("append");
    j.end_turn(1).expect("end_turn");
    std::mem::forget(j);
    (tmp, layout)
}

fn expected() -> BTreeMap<String, String> {
    let mut m: BTreeMap<String, String> = (0..10).map(|k| (format!("k{k}"), "a".into())).collect();
    m.insert("k0".into(), "b".into());
    m
}

#[test]
fn crash_with_the_snapshot_still_a_tmp_file() {
    let (tmp, layout) = crash_at(CommitStep::Synced);
    assert!(names(&layout).contains(&"shard-0-3.snap.tmp".to_string()));
    let (map, records) = state(tmp.path());
    assert_eq!(map, expected());
    assert_eq!(
        records, 11,
        "old snapshot (empty) + journal 2 (10) + journal 3 (1)"
    );
    // The next start removes the leftover, and a later restart still sees everything.
    let layout = recover(tmp.path())
        .expect("recover")
        .finish(1, |_, _| {})
        .expect("finish");
    assert!(names(&layout).iter().all(|n| !n.ends_with(".tmp")));
    assert_eq!(state(tmp.path()).0, expected());
}

#[test]
fn crash_after_rename_before_old_files_are_removed() {
    let (tmp, layout) = crash_at(CommitStep::Renamed);
    let n = names(&layout);
    assert!(n.contains(&"shard-0-2.log".to_string()), "{n:?}");
    assert!(n.contains(&"shard-0-3.snap".to_string()), "{n:?}");
    let (map, records) = state(tmp.path());
    assert_eq!(map, expected());
    assert_eq!(
        records, 11,
        "new snapshot (10) + journal 3 (1); the covered journal 2 is skipped"
    );
}

#[test]
fn completed_commit_removes_covered_files() {
    let (tmp, layout) = crash_at(CommitStep::Cleanup);
    assert_eq!(names(&layout), vec!["shard-0-3.log", "shard-0-3.snap"]);
    assert_eq!(state(tmp.path()), (expected(), 11));
}

#[test]
fn header_round_trip_and_rejections() {
    use crate::frame::{FileHeader, FileKind};
    let h = FileHeader {
        kind: FileKind::Journal,
        shard: 513,
        generation: 1 << 40,
    };
    let bytes = h.encode();
    assert_eq!(FileHeader::decode(&bytes), Ok(h));
    let mut bad = bytes;
    bad[9] ^= 1;
    assert_eq!(FileHeader::decode(&bad), Err("file header CRC mismatch"));
    let mut bad = bytes;
    bad[0] = b'X';
    assert!(FileHeader::decode(&bad).is_err());
}

#[test]
fn file_names_have_one_spelling() {
    use crate::layout::FileName;
    let n = FileName::Snapshot {
        shard: 3,
        generation: 12,
    };
    assert_eq!(FileName::parse(&n.render()), Some(n));
    for bad in [
        "shard-03-1.log",
        "shard-1-+2.log",
        "shard-1-2.txt",
        "shard-70000-1.log",
        "shard--1.log",
    ] {
        assert_eq!(FileName::parse(bad), None, "{bad}");
    }
}

/// A seeded simulation of a registrar's life: changes, turns (Every = acknowledged),
/// snapshots cut short at every commit step, crashes, clean stops, restarts with a random
/// shard count (some of them crashing mid-relayout). After every restart the recovered
/// state must be exactly what was acknowledged.
mod simulation {
    use std::collections::BTreeMap;
    use std::path::Path;

    use crate::journal::CommitStep;
    use crate::{recover, JournalOptions, RecordBatch, ShardJournal, SyncPolicy};

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // splitmix64
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    type State = BTreeMap<u32, u64>;

    fn rec(k: u32, v: Option<u64>) -> Vec<u8> {
        let mut r = k.to_le_bytes().to_vec();
        if let Some(v) = v {
            r.extend_from_slice(&v.to_le_bytes());
        }
        r
    }

    fn apply(state: &mut State, r: &[u8]) {
        let k = u32::from_le_bytes(r[0..4].try_into().expect("key"));
        match r.get(4..12) {
            Some(v) => state.insert(k, u64::from_le_bytes(v.try_into().expect("value"))),
            None => state.remove(&k),
        };
    }

    fn owner_of(r: &[u8], shards: u16) -> u16 {
        let k = u32::from_le_bytes(r[0..4].try_into().expect("key"));
        (k.wrapping_mul(2_654_435_761) >> 7) as u16 % shards
    }

    /// Start-up: recover, route, check, relayout (maybe crashing half-way), reopen.
    fn restart(dir: &Path, shards: u16, rng: &mut Rng, acked: &State) -> Vec<ShardJournal> {
        loop {
            let mut recovery = recover(dir).expect("recover");
            let mut routed = vec![RecordBatch::new(); usize::from(shards)];
            let mut state = State::new();
            recovery
                .replay(|_, r| {
                    apply(&mut state, r);
                    routed[usize::from(owner_of(r, shards))].push(r);
                })
                .expect("replay");
            assert_eq!(
                &state, acked,
                "recovered state differs from the acknowledged one"
            );
            let crash_at = (recovery.needs_relayout(shards) && rng.below(4) == 0)
                .then(|| rng.below(u64::from(shards)) as u16);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                recovery.finish(shards, |s, w| {
                    assert!(Some(s) != crash_at, "simulated crash during relayout");
                    routed[usize::from(s)].iter().for_each(|r| w.emit(r));
                })
            }));
            let Ok(layout) = result else { continue };
            let layout = layout.expect("finish");
            return (0..shards)
                .map(|s| {
                    layout
                        .open_shard(s, JournalOptions::new(SyncPolicy::Every))
                        .expect("open")
                })
                .collect();
        }
    }

    fn run(seed: u64) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let mut rng = Rng(seed);
        let mut shards = 1 + rng.below(4) as u16;
        let mut live = State::new();
        let mut acked = State::new();
        let mut journals = restart(dir, shards, &mut rng, &acked);
        for _ in 0..400 {
            match rng.below(100) {
                0..=69 => {
                    let k = rng.below(64) as u32;
                    let v = (rng.below(5) != 0).then(|| rng.next());
                    let r = rec(k, v);
                    apply(&mut live, &r);
                    journals[usize::from(owner_of(&r, shards))]
                        .append(&r)
                        .expect("append");
                }
                70..=84 => {
                    for j in &mut journals {
                        j.end_turn(0).expect("end_turn");
                    }
                    acked = live.clone();
                }
                85..=91 => {
                    // Snapshot one shard, possibly "crashing" right after a commit step.
                    let s = rng.below(u64::from(shards)) as u16;
                    let mut w = journals[usize::from(s)].begin_snapshot().expect("begin");
                    for (k, v) in &live {
                        let r = rec(*k, Some(*v));
                        if owner_of(&r, shards) == s {
                            w.emit(&r);
                        }
                    }
                    // begin_snapshot flushed shard s: its part of `live` is now durable.
                    let step = [CommitStep::Synced, CommitStep::Renamed, CommitStep::Cleanup]
                        [rng.below(3) as usize];
                    w.commit_until(step).expect("commit");
                    acked = durable_view(&acked, &live, s, shards);
                    if step != CommitStep::Cleanup {
                        crash(&mut journals, &mut live, &acked);
                        shards = 1 + rng.below(4) as u16;
                        journals = restart(dir, shards, &mut rng, &acked);
                    }
                }
                92..=96 => {
                    crash(&mut journals, &mut live, &acked);
                    shards = 1 + rng.below(4) as u16;
                    journals = restart(dir, shards, &mut rng, &acked);
                }
                _ => {
                    journals.clear(); // clean stop: drop flushes
                    acked = live.clone();
                    shards = 1 + rng.below(4) as u16;
                    journals = restart(dir, shards, &mut rng, &acked);
                }
            }
        }
    }

    /// After shard `s` alone flushed: acknowledged state plus `live`'s values of s's keys.
    fn durable_view(acked: &State, live: &State, s: u16, shards: u16) -> State {
        let mine = |k: &u32| owner_of(&rec(*k, None), shards) == s;
        let mut out: State = acked
            .iter()
            .filter(|(k, _)| !mine(k))
            .map(|(k, v)| (*k, *v))
            .collect();
        out.extend(live.iter().filter(|(k, _)| mine(k)).map(|(k, v)| (*k, *v)));
        out
    }

    /// kill -9: buffers are lost, nothing is flushed.
    fn crash(journals: &mut Vec<ShardJournal>, live: &mut State, acked: &State) {
        for j in journals.drain(..) {
            std::mem::forget(j);
        }
        *live = acked.clone();
    }

    #[test]
    fn acknowledged_changes_survive_every_crash_and_reshard() {
        for seed in 1..=4 {
            run(seed);
        }
    }
}
