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
