//! Behaviour of the journal as the shard loop and start-up see it: what is on disk after a
//! turn, what a restart gets back after torn writes, corruption and a change of shard count.

use std::collections::BTreeMap;
use std::fs;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use sipedge_journal::{
    recover, JournalError, JournalOptions, Layout, RecordBatch, ReplayStats, ShardJournal,
    SyncPolicy,
};

/// A record `key=value`; value `-` deletes the key. Replayed "later record wins".
fn kv(k: u32, v: &str) -> Vec<u8> {
    format!("k{k}={v}").into_bytes()
}

fn key_of(rec: &[u8]) -> u32 {
    let s = std::str::from_utf8(rec).expect("utf8 record");
    s[1..s.find('=').expect("=")].parse().expect("key")
}

fn apply(map: &mut BTreeMap<u32, String>, rec: &[u8]) {
    let s = std::str::from_utf8(rec).expect("utf8 record");
    let (_, v) = s.split_once('=').expect("=");
    if v == "-" {
        map.remove(&key_of(rec));
    } else {
        map.insert(key_of(rec), v.to_string());
    }
}

/// The owner of a record under `shards` shards (the caller's function, here a mix of the key).
fn owner(rec: &[u8], shards: u16) -> u16 {
    (key_of(rec).wrapping_mul(2_654_435_761) % u32::from(shards)) as u16
}

/// Fresh directory with an empty layout of `shards` shards.
fn fresh(shards: u16) -> (tempfile::TempDir, Layout) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = recover(tmp.path())
        .expect("recover empty")
        .finish(shards, |_, _| {})
        .expect("finish");
    (tmp, layout)
}

/// Everything a restart would see: records per old shard, in order, plus the stats.
fn records_on_disk(dir: &Path) -> (BTreeMap<u16, Vec<Vec<u8>>>, ReplayStats) {
    let mut rec = recover(dir).expect("recover");
    let mut out: BTreeMap<u16, Vec<Vec<u8>>> = BTreeMap::new();
    let stats = rec
        .replay(|s, r| out.entry(s).or_default().push(r.to_vec()))
        .expect("replay");
    (out, stats)
}

fn state_on_disk(dir: &Path) -> BTreeMap<u32, String> {
    let mut map = BTreeMap::new();
    for recs in records_on_disk(dir).0.values() {
        for r in recs {
            apply(&mut map, r);
        }
    }
    map
}

fn count_on_disk(dir: &Path) -> usize {
    records_on_disk(dir).0.values().map(Vec::len).sum()
}

fn every() -> JournalOptions {
    JournalOptions::new(SyncPolicy::Every)
}

fn batch(changes: u32, ms: u64) -> JournalOptions {
    JournalOptions::new(SyncPolicy::Batch {
        changes: NonZeroU32::new(changes).expect("non-zero"),
        ms,
    })
}

fn journals_of(layout: &Layout) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(layout.dir())
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_per_shard_in_order() {
    let (tmp, layout) = fresh(2);
    let mut j0 = layout.open_shard(0, every()).expect("open 0");
    let mut j1 = layout.open_shard(1, every()).expect("open 1");
    for i in 0..10 {
        j0.append(&kv(i, "a")).expect("append");
        j1.append(&kv(100 + i, "b")).expect("append");
    }
    j0.end_turn(1).expect("end_turn");
    j1.end_turn(1).expect("end_turn");
    drop((j0, j1));
    let (recs, stats) = records_on_disk(tmp.path());
    assert_eq!(recs[&0], (0..10).map(|i| kv(i, "a")).collect::<Vec<_>>());
    assert_eq!(
        recs[&1],
        (0..10).map(|i| kv(100 + i, "b")).collect::<Vec<_>>()
    );
    assert_eq!(stats.records, 20);
    assert_eq!((stats.torn_records, stats.corrupt_records), (0, 0));
    assert_eq!(
        recover(tmp.path()).expect("recover").written_by_shards(),
        Some(2)
    );
}

#[test]
fn open_via_current_and_out_of_range() {
    let (tmp, _layout) = fresh(2);
    let mut j = ShardJournal::open(tmp.path(), 1, SyncPolicy::Every).expect("open");
    j.append(&kv(1, "x")).expect("append");
    j.end_turn(0).expect("end_turn");
    assert_eq!(count_on_disk(tmp.path()), 1);
    assert!(matches!(
        ShardJournal::open(tmp.path(), 2, SyncPolicy::Every),
        Err(JournalError::ShardOutOfRange {
            shard: 2,
            shards: 2
        })
    ));
    let empty = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        ShardJournal::open(empty.path(), 0, SyncPolicy::Every),
        Err(JournalError::NoLayout(_))
    ));
}

#[test]
fn every_is_durable_at_end_of_turn() {
    let (tmp, layout) = fresh(1);
    let mut j = layout.open_shard(0, every()).expect("open");
    j.append(&kv(1, "a")).expect("append");
    j.append(&kv(2, "a")).expect("append");
    assert_eq!(count_on_disk(tmp.path()), 0, "append alone writes nothing");
    j.end_turn(5).expect("end_turn");
    assert_eq!(count_on_disk(tmp.path()), 2);
    assert_eq!(j.next_deadline(), None);
    assert_eq!(j.stats().syncs, 1);
    j.end_turn(6).expect("idle turn");
    assert_eq!(j.stats().syncs, 1, "an idle turn does not sync");
    std::mem::forget(j); // a crash: nothing pending, nothing lost
    assert_eq!(count_on_disk(tmp.path()), 2);
}

#[test]
fn batch_syncs_by_count_and_by_age() {
    let (tmp, layout) = fresh(1);
    let mut j = layout.open_shard(0, batch(3, 100)).expect("open");
    j.append(&kv(1, "a")).expect("append");
    j.append(&kv(2, "a")).expect("append");
    j.end_turn(1000).expect("end_turn");
    assert_eq!(count_on_disk(tmp.path()), 0, "below both thresholds");
    assert_eq!(j.next_deadline(), Some(1100));
    j.end_turn(1099).expect("end_turn");
    assert_eq!(count_on_disk(tmp.path()), 0);
    j.end_turn(1100).expect("end_turn");
    assert_eq!(
        count_on_disk(tmp.path()),
        2,
        "oldest pending is batch_ms old"
    );
    assert_eq!(j.next_deadline(), None);
    for k in 3..6 {
        j.append(&kv(k, "a")).expect("append");
    }
    j.end_turn(1101).expect("end_turn");
    assert_eq!(count_on_disk(tmp.path()), 5, "batch_changes reached");
    j.append(&kv(6, "a")).expect("append");
    j.end_turn(1102).expect("end_turn");
    std::mem::forget(j); // kill -9: the pending record is lost, nothing else
    assert_eq!(count_on_disk(tmp.path()), 5);
}

#[test]
fn batch_is_synced_in_the_background() {
    let (tmp, layout) = fresh(1);
    let mut j = layout.open_shard(0, batch(2, 100)).expect("open");
    j.append(&kv(1, "a")).expect("append");
    j.append(&kv(2, "a")).expect("append");
    j.end_turn(0).expect("end_turn");
    assert_eq!(count_on_disk(tmp.path()), 2, "written by end_turn");
    // Wait (bounded) for the syncer thread; this asserts that it syncs, not how fast.
    for _ in 0..1000 {
        if j.stats().syncs > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(j.stats().syncs, 1);
    assert_eq!((j.stats().written, j.stats().errors), (2, 0));
}

#[test]
fn clean_shutdown_flushes() {
    let (tmp, layout) = fresh(1);
    let mut j = layout.open_shard(0, batch(1000, 100_000)).expect("open");
    for k in 0..5 {
        j.append(&kv(k, "a")).expect("append");
    }
    j.end_turn(0).expect("end_turn");
    j.flush().expect("flush");
    assert_eq!(count_on_disk(tmp.path()), 5);
    j.append(&kv(5, "a")).expect("append");
    drop(j);
    assert_eq!(count_on_disk(tmp.path()), 6, "drop flushes too");
}

#[test]
fn empty_and_oversized_records_are_refused() {
    let (_tmp, layout) = fresh(1);
    let mut opts = every();
    opts.max_record_bytes = 16;
    let mut j = layout.open_shard(0, opts).expect("open");
    assert!(matches!(
        j.append(b""),
        Err(JournalError::RecordSize { len: 0, .. })
    ));
    assert!(matches!(
        j.append(&[7u8; 17]),
        Err(JournalError::RecordSize { len: 17, max: 16 })
    ));
    assert!(j.append(&[7u8; 16]).is_ok());
    assert_eq!(j.pending_records(), 1);
}

/// Three records, the file bytes, and the offset where the last record starts.
fn three_records() -> (tempfile::TempDir, PathBuf, Vec<u8>, usize) {
    let (tmp, layout) = fresh(1);
    let mut j = layout.open_shard(0, every()).expect("open");
    j.append(&kv(1, "first")).expect("append");
    j.append(&kv(2, "second-record")).expect("append");
    j.end_turn(0).expect("end_turn");
    let before_last = fs::metadata(&journals_of(&layout)[0]).expect("stat").len() as usize;
    j.append(&kv(3, "the-last-record-of-the-file"))
        .expect("append");
    j.end_turn(1).expect("end_turn");
    drop(j);
    let path = journals_of(&layout)[0].clone();
    let bytes = fs::read(&path).expect("read");
    (tmp, path, bytes, before_last)
}

#[test]
fn torn_tail_at_every_byte_of_the_last_record() {
    let (tmp, path, bytes, last) = three_records();
    for cut in last..bytes.len() {
        fs::write(&path, &bytes[..cut]).expect("write");
        let (recs, stats) = records_on_disk(tmp.path());
        assert_eq!(
            recs[&0],
            vec![kv(1, "first"), kv(2, "second-record")],
            "cut {cut}"
        );
        let torn = u64::from(cut != last);
        assert_eq!(stats.torn_records, torn, "cut at {cut}");
        assert_eq!(stats.corrupt_records, 0, "cut at {cut}");
    }
    // A crash can also leave a zero-filled tail after the last complete record.
    let mut padded = bytes.clone();
    padded.extend_from_slice(&[0u8; 4096]);
    fs::write(&path, &padded).expect("write");
    let (recs, stats) = records_on_disk(tmp.path());
    assert_eq!(recs[&0].len(), 3);
    assert_eq!((stats.torn_records, stats.corrupt_records), (1, 0));
}

#[test]
fn crc_failure_in_the_last_record_is_a_torn_tail() {
    let (tmp, path, mut bytes, _) = three_records();
    let n = bytes.len();
    bytes[n - 1] ^= 0x40;
    fs::write(&path, &bytes).expect("write");
    let (recs, stats) = records_on_disk(tmp.path());
    assert_eq!(recs[&0].len(), 2);
    assert_eq!((stats.torn_records, stats.corrupt_records), (1, 0));
}

#[test]
fn corruption_in_the_middle_stops_that_file_only() {
    let (tmp, path, mut bytes, _) = three_records();
    // Flip a payload byte of the second record: header 24 + record 1 (8 + 8) + 8 + 2.
    let at = 24 + 8 + kv(1, "first").len() + 8 + 2;
    bytes[at] ^= 0x01;
    fs::write(&path, &bytes).expect("write");
    // The next run appends to a new generation, which must still be replayed.
    let layout = recover(tmp.path())
        .expect("recover")
        .finish(1, |_, _| {})
        .expect("finish");
    let mut j = layout.open_shard(0, every()).expect("open");
    j.append(&kv(4, "after-restart")).expect("append");
    j.end_turn(0).expect("end_turn");
    drop(j);
    let (recs, stats) = records_on_disk(tmp.path());
    assert_eq!(recs[&0], vec![kv(1, "first"), kv(4, "after-restart")]);
    assert_eq!((stats.torn_records, stats.corrupt_records), (0, 1));
}

#[test]
fn empty_or_foreign_files_are_skipped_not_fatal() {
    let (tmp, layout) = fresh(1);
    let mut j = layout.open_shard(0, every()).expect("open");
    j.append(&kv(1, "a")).expect("append");
    j.end_turn(0).expect("end_turn");
    drop(j);
    // A journal whose creation was cut short by a crash, and a file that is not ours.
    fs::write(layout.dir().join("shard-0-7.log"), b"").expect("write");
    fs::write(layout.dir().join("shard-0-8.log"), [0xAAu8; 64]).expect("write");
    fs::write(layout.dir().join("notes.txt"), b"hello").expect("write");
    let (recs, stats) = records_on_disk(tmp.path());
    assert_eq!(recs[&0], vec![kv(1, "a")]);
    assert_eq!(stats.skipped_files, 2);
}

#[test]
fn snapshot_then_journal_replay_order_later_wins() {
    let (tmp, layout) = fresh(1);
    let mut j = layout.open_shard(0, every()).expect("open");
    let mut live = BTreeMap::new();
    for k in 0..50 {
        let r = kv(k, "v1");
        apply(&mut live, &r);
        j.append(&r).expect("append");
    }
    j.end_turn(0).expect("end_turn");
    let snap = j
        .write_snapshot(|w| {
            for (k, v) in &live {
                w.emit(&kv(*k, v));
            }
        })
        .expect("snapshot");
    assert_eq!(snap.records, 50);
    // Later changes override and delete what the snapshot holds.
    for k in 0..10 {
        let r = kv(k, if k % 2 == 0 { "v2" } else { "-" });
        apply(&mut live, &r);
        j.append(&r).expect("append");
    }
    j.end_turn(1).expect("end_turn");
    drop(j);
    let (recs, _) = records_on_disk(tmp.path());
    assert_eq!(
        recs[&0].len(),
        60,
        "snapshot 50, then journal 10; old journal retired"
    );
    assert_eq!(recs[&0][0], kv(0, "v1"), "snapshot first");
    assert_eq!(recs[&0][50], kv(0, "v2"), "then the journal");
    assert_eq!(state_on_disk(tmp.path()), live);
    let names = names_in(layout.dir());
    assert!(!names.contains(&"shard-0-2.log".to_string()), "{names:?}");
    assert!(names.contains(&"shard-0-3.snap".to_string()), "{names:?}");
}

#[test]
fn background_snapshot_commits_off_thread_and_loses_nothing() {
    let (tmp, layout) = fresh(1);
    let mut opts = batch(1000, 100);
    opts.snapshot_min_bytes = 100;
    let mut j = layout.open_shard(0, opts).expect("open");
    for k in 0..20 {
        j.append(&kv(k, "a")).expect("append");
    }
    j.end_turn(0).expect("end_turn");
    assert!(!j.wants_snapshot(), "pending records do not count");
    j.flush().expect("flush");
    assert!(j.wants_snapshot());
    j.write_snapshot_in_background(|w| (0..20).for_each(|k| w.emit(&kv(k, "a"))))
        .expect("snapshot");
    assert!(!j.wants_snapshot(), "not while one is committing");
    j.append(&kv(0, "b")).expect("append");
    let mut outcome = None;
    for _ in 0..1000 {
        outcome = j.poll_snapshot();
        if outcome.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let stats = outcome.expect("the commit finishes").expect("commit");
    assert_eq!(stats.records, 20);
    assert!(j.poll_snapshot().is_none(), "reported once");
    drop(j);
    assert_eq!(
        names_in(layout.dir()),
        vec!["shard-0-3.log", "shard-0-3.snap"]
    );
    let mut expect: BTreeMap<u32, String> = (0..20).map(|k| (k, "a".to_string())).collect();
    expect.insert(0, "b".into());
    assert_eq!(state_on_disk(tmp.path()), expect);
}

#[test]
fn dropping_the_journal_waits_for_its_background_snapshot() {
    let (tmp, layout) = fresh(1);
    let mut j = layout.open_shard(0, every()).expect("open");
    j.append(&kv(1, "a")).expect("append");
    j.end_turn(0).expect("end_turn");
    j.write_snapshot_in_background(|w| w.emit(&kv(1, "a")))
        .expect("snapshot");
    drop(j);
    assert_eq!(
        names_in(layout.dir()),
        vec!["shard-0-3.log", "shard-0-3.snap"]
    );
    assert_eq!(count_on_disk(tmp.path()), 1);
}

#[test]
fn wants_snapshot_once_the_journal_outgrows_its_threshold() {
    let (_tmp, layout) = fresh(1);
    let mut opts = every();
    opts.snapshot_min_bytes = 2000;
    let mut j = layout.open_shard(0, opts).expect("open");
    let mut k = 0;
    while !j.wants_snapshot() {
        j.append(&kv(k % 10, "some-value")).expect("append");
        j.end_turn(u64::from(k)).expect("end_turn");
        k += 1;
        assert!(k < 1000, "never wanted a snapshot");
    }
    assert!(k > 50, "wanted too early: {k} records");
    j.write_snapshot(|w| (0..10).for_each(|i| w.emit(&kv(i, "some-value"))))
        .expect("snapshot");
    assert!(!j.wants_snapshot());
    // A reopened journal counts what the files hold.
    drop(j);
    let j = layout.open_shard(0, opts).expect("reopen");
    assert!(!j.wants_snapshot());
}

#[test]
fn abandoned_snapshot_loses_nothing() {
    let (tmp, layout) = fresh(1);
    let mut j = layout.open_shard(0, every()).expect("open");
    for k in 0..5 {
        j.append(&kv(k, "a")).expect("append");
    }
    j.end_turn(0).expect("end_turn");
    let mut w = j.begin_snapshot().expect("begin");
    w.emit(&kv(0, "a"));
    drop(w); // the snapshot is given up half-way: its .tmp goes
    j.append(&kv(9, "b")).expect("append");
    j.end_turn(1).expect("end_turn");
    std::mem::forget(j);
    assert_eq!(state_on_disk(tmp.path()).len(), 6);
    assert!(names_in(layout.dir()).iter().all(|n| !n.ends_with(".tmp")));
}

fn write_with_shards(dir: &Path, shards: u16, keys: std::ops::Range<u32>) -> BTreeMap<u32, String> {
    let layout = recover(dir)
        .expect("recover")
        .finish(shards, |_, _| {})
        .expect("finish");
    let mut js: Vec<ShardJournal> = (0..shards)
        .map(|s| layout.open_shard(s, every()).expect("open"))
        .collect();
    let mut live = BTreeMap::new();
    for k in keys {
        for v in ["x", "y"] {
            let r = kv(k, v);
            apply(&mut live, &r);
            js[owner(&r, shards) as usize].append(&r).expect("append");
        }
    }
    for j in &mut js {
        j.end_turn(0).expect("end_turn");
    }
    live
}

/// What start-up does: recover, route by owner, relayout if needed.
fn restart(dir: &Path, shards: u16) -> (Layout, Vec<RecordBatch>, ReplayStats) {
    let mut rec = recover(dir).expect("recover");
    let mut routed = vec![RecordBatch::new(); usize::from(shards)];
    let stats = rec
        .replay(|_, r| routed[owner(r, shards) as usize].push(r))
        .expect("replay");
    let layout = rec
        .finish(shards, |s, w| {
            routed[usize::from(s)].iter().for_each(|r| w.emit(r))
        })
        .expect("finish");
    (layout, routed, stats)
}

#[test]
fn restart_with_another_shard_count_rehashes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let live = write_with_shards(tmp.path(), 4, 0..200);
    let (layout, routed, stats) = restart(tmp.path(), 3);
    assert_eq!(stats.records, 400);
    assert_eq!(layout.shards(), 3);
    assert_eq!(
        names_in(tmp.path()),
        vec!["CURRENT", "layout-2"],
        "old layout retired"
    );
    let (recs, _) = records_on_disk(tmp.path());
    assert_eq!(recs.len(), 3);
    for (s, rs) in &recs {
        assert_eq!(rs.len(), routed[usize::from(*s)].len());
        assert!(
            rs.iter().all(|r| owner(r, 3) == *s),
            "record on the wrong shard"
        );
    }
    assert_eq!(state_on_disk(tmp.path()), live);
    // And the new layout is appended to like any other.
    let mut j = layout.open_shard(2, every()).expect("open");
    j.append(&kv(7, "z")).expect("append");
    j.end_turn(0).expect("end_turn");
    drop(j);
    let mut expect = live.clone();
    expect.insert(7, "z".into());
    assert_eq!(state_on_disk(tmp.path()), expect);
}

#[test]
fn restart_with_the_same_shard_count_rewrites_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let live = write_with_shards(tmp.path(), 2, 0..20);
    let before = names_in(&tmp.path().join("layout-1"));
    let rec = recover(tmp.path()).expect("recover");
    assert!(!rec.needs_relayout(2));
    let mut called = false;
    let layout = rec.finish(2, |_, _| called = true).expect("finish");
    assert!(!called, "fill must not run for the same shard count");
    assert_eq!(layout.id(), 1);
    assert_eq!(names_in(layout.dir()), before);
    assert_eq!(state_on_disk(tmp.path()), live);
}

#[test]
fn crash_during_relayout_keeps_the_old_layout() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let live = write_with_shards(tmp.path(), 4, 0..100);
    let mut rec = recover(tmp.path()).expect("recover");
    let mut routed = vec![RecordBatch::new(); 3];
    rec.replay(|_, r| routed[owner(r, 3) as usize].push(r))
        .expect("replay");
    // The process dies while writing the second new snapshot.
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rec.relayout(3, |s, w| {
            routed[usize::from(s)]
                .iter()
                .take(5)
                .for_each(|r| w.emit(r));
            assert!(s < 1, "simulated crash");
        })
    }));
    assert!(crashed.is_err());
    assert!(
        tmp.path().join("layout-2").exists(),
        "half-built layout left"
    );
    let rec = recover(tmp.path()).expect("recover");
    assert_eq!(
        rec.written_by_shards(),
        Some(4),
        "CURRENT still names the old layout"
    );
    assert_eq!(state_on_disk(tmp.path()), live);
    let (layout, _, _) = restart(tmp.path(), 3);
    assert_eq!(layout.id(), 3);
    assert_eq!(names_in(tmp.path()), vec!["CURRENT", "layout-3"]);
    assert_eq!(state_on_disk(tmp.path()), live);
}

#[test]
fn crash_after_switching_layouts_ignores_the_old_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let live = write_with_shards(tmp.path(), 4, 0..100);
    let saved = tmp.path().join("saved-layout-1");
    copy_dir(&tmp.path().join("layout-1"), &saved);
    let (layout, _, _) = restart(tmp.path(), 2);
    // The old directory's deletion never happened.
    copy_dir(&saved, &tmp.path().join("layout-1"));
    fs::remove_dir_all(&saved).expect("rm");
    let (recs, stats) = records_on_disk(tmp.path());
    assert_eq!(recs.len(), 2);
    assert_eq!(
        stats.files, 2,
        "only the new layout's two snapshots are read"
    );
    assert_eq!(state_on_disk(tmp.path()), live);
    let again = recover(tmp.path()).expect("recover").finish(2, |_, _| {});
    assert_eq!(again.expect("finish"), layout);
    assert_eq!(names_in(tmp.path()), vec!["CURRENT", "layout-2"]);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(from).expect("list") {
        let e = e.expect("entry");
        fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

#[test]
fn bad_current_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(tmp.path().join("CURRENT"), "something else\n").expect("write");
    let e = recover(tmp.path()).expect_err("must refuse");
    assert!(matches!(e, JournalError::BadCurrent { .. }));
    assert!(e.to_string().contains("CURRENT"), "{e}");
}

#[test]
fn record_batch_round_trip() {
    let mut b = RecordBatch::new();
    assert!(b.is_empty());
    b.push(b"one");
    b.push(b"");
    b.push(&[9u8; 300]);
    assert_eq!(b.len(), 3);
    let v: Vec<&[u8]> = b.iter().collect();
    assert_eq!(v, vec![&b"one"[..], &b""[..], &[9u8; 300][..]]);
}
