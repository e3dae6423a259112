//! Throughput of the timer wheel, per timer (`Throughput::Elements`).
//!
//! * `insert_expire_tick_by_tick`: insert 1M timers spread uniformly over the next 60 s at
//!   10 ms ticks (6000 ticks), then advance one tick at a time, as a shard does, until all
//!   fired. The wheel is reused across iterations, so this is the steady state (slab grown).
//! * `insert_expire_one_jump`: the same, but a single `advance` over the 60 s.
//! * `insert_cancel`: insert 1M timers, then cancel each by id.
//!
//! Run: `cargo bench -p sipedge-wheel --bench wheel -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sipedge_wheel::{Tick, TimerId, Wheel};

const TIMERS: usize = 1_000_000;
/// 60 s of 10 ms ticks.
const SPREAD_TICKS: u64 = 6_000;

/// Deadline offsets in `1..=SPREAD_TICKS`, from a fixed xorshift so runs are comparable.
fn offsets() -> Vec<u64> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..TIMERS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            1 + x % SPREAD_TICKS
        })
        .collect()
}

fn insert_all(wheel: &mut Wheel<u64>, offsets: &[u64]) {
    let base = wheel.now().get();
    for (key, &offset) in (0u64..).zip(offsets) {
        wheel.insert(Tick(base + offset), key);
    }
}

fn bench(c: &mut Criterion) {
    let offsets = offsets();
    let mut group = c.benchmark_group("wheel");
    group.throughput(Throughput::Elements(TIMERS as u64));
    group.sample_size(10);

    let mut wheel = Wheel::with_capacity(TIMERS);
    let mut fired = Vec::with_capacity(TIMERS);
    group.bench_function("insert_expire_tick_by_tick", |b| {
        b.iter(|| {
            let base = wheel.now().get();
            insert_all(&mut wheel, &offsets);
            let mut count = 0;
            for t in 1..=SPREAD_TICKS {
                fired.clear();
                count += wheel.advance(Tick(base + t), &mut fired);
                black_box(&fired);
            }
            assert_eq!(count, TIMERS);
        });
    });

    group.bench_function("insert_expire_one_jump", |b| {
        b.iter(|| {
            let base = wheel.now().get();
            insert_all(&mut wheel, &offsets);
            fired.clear();
            let count = wheel.advance(Tick(base + SPREAD_TICKS), &mut fired);
            black_box(&fired);
            assert_eq!(count, TIMERS);
        });
    });

    let mut ids: Vec<TimerId> = Vec::with_capacity(TIMERS);
    group.bench_function("insert_cancel", |b| {
        b.iter(|| {
            let base = wheel.now().get();
            ids.clear();
            for (key, &offset) in (0u64..).zip(&offsets) {
                ids.push(wheel.insert(Tick(base + offset), key));
            }
            for &id in &ids {
                black_box(wheel.cancel(id));
            }
            assert!(wheel.is_empty());
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
