//! Append + end_turn throughput (Batch, 100-byte records) and recovery speed of a snapshot of
//! one million records. Run: `nice -n 19 cargo bench -p sipedge-journal`.

use std::hint::black_box;
use std::num::NonZeroU32;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sipedge_journal::{recover, JournalOptions, SyncPolicy};

const RECORD_BYTES: usize = 100;
/// Records per simulated loop turn.
const PER_TURN: usize = 64;
const SNAPSHOT_RECORDS: u64 = 1_000_000;

fn append_batch(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = recover(tmp.path())
        .expect("recover")
        .finish(1, |_, _| {})
        .expect("finish");
    let mut opts = JournalOptions::new(SyncPolicy::Batch {
        changes: NonZeroU32::new(1000).expect("non-zero"),
        ms: 100,
    });
    opts.snapshot_min_bytes = u64::MAX;
    let mut j = layout.open_shard(0, opts).expect("open");
    let rec = [0x5Au8; RECORD_BYTES];
    let mut now = 0u64;
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(PER_TURN as u64));
    g.bench_function("append_end_turn_batch1000_100B_x64", |b| {
        b.iter(|| {
            for _ in 0..PER_TURN {
                j.append(black_box(&rec)).expect("append");
            }
            now += 1;
            j.end_turn(now).expect("end_turn");
        })
    });
    g.finish();
    j.flush().expect("flush");
    drop(j);
    let mut j = layout
        .open_shard(0, JournalOptions::new(SyncPolicy::Every))
        .expect("open");
    let mut g = c.benchmark_group("journal");
    g.throughput(Throughput::Elements(PER_TURN as u64));
    g.bench_function("append_end_turn_every_100B_x64", |b| {
        b.iter(|| {
            for _ in 0..PER_TURN {
                j.append(black_box(&rec)).expect("append");
            }
            j.end_turn(0).expect("end_turn");
        })
    });
    g.finish();
}

fn recovery(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rec = [0u8; RECORD_BYTES];
    recover(tmp.path())
        .expect("recover")
        .finish(1, |_, w| {
            for i in 0..SNAPSHOT_RECORDS {
                rec[..8].copy_from_slice(&i.to_le_bytes());
                w.emit(&rec);
            }
        })
        .expect("finish");
    let mut g = c.benchmark_group("journal");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SNAPSHOT_RECORDS));
    g.bench_function("recover_snapshot_1M_x_100B", |b| {
        b.iter(|| {
            let mut r = recover(tmp.path()).expect("recover");
            let mut sum = 0u64;
            let stats = r
                .replay(|_, rec| sum = sum.wrapping_add(u64::from(rec[0])))
                .expect("replay");
            assert_eq!(stats.records, SNAPSHOT_RECORDS);
            black_box(sum)
        })
    });
    g.finish();
}

/// A restart with another shard count: 1M recovered records rewritten as two new shards'
/// snapshots (write, fsync, rename, CURRENT switch, old layout removed).
fn relayout(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut batch = sipedge_journal::RecordBatch::new();
    let mut rec = [0u8; RECORD_BYTES];
    for i in 0..SNAPSHOT_RECORDS {
        rec[..8].copy_from_slice(&i.to_le_bytes());
        batch.push(&rec);
    }
    let mut g = c.benchmark_group("journal");
    g.sample_size(10);
    g.throughput(Throughput::Elements(SNAPSHOT_RECORDS));
    g.bench_function("relayout_1M_x_100B_to_2_shards", |b| {
        b.iter(|| {
            recover(tmp.path())
                .expect("recover")
                .relayout(2, |s, w| {
                    batch
                        .iter()
                        .filter(|r| u16::from(r[0] & 1) == s)
                        .for_each(|r| w.emit(r))
                })
                .expect("relayout")
        })
    });
    g.finish();
}

criterion_group!(benches, append_batch, recovery, relayout);
criterion_main!(benches);
