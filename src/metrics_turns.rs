//! How long each shard loop turn works: `sipedge_shard_turn_seconds` (histogram) and
//! `sipedge_shard_longest_turn_seconds` (gauge, the longest since start).
//!
//! A turn's work is timed from the moment the engine hands over its first datagram (or
//! returns without one) to the end of the turn: parsing, the core, the journal, the
//! snapshot hook, draining and publishing. The time spent blocked in the kernel waiting
//! for traffic is not work and is not counted. A turn longer than SIP's T1 (500 ms,
//! RFC 3261 §17.1.1.1) makes every peer whose request arrived during it retransmit: this is
//! the metric that shows a stall (a table growing, a snapshot) before the peers notice.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::metrics::ShardMetrics;

/// Upper bounds of the histogram buckets, seconds (`+Inf` is implied).
pub const TURN_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0,
];

/// The same bounds in nanoseconds (what the shard compares against).
const BUCKET_NS: [u64; 12] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    100_000_000,
    500_000_000,
    1_000_000_000,
];

/// The shard's own tally of turn durations (kept on the shard, published each turn).
#[derive(Debug, Default, Clone, Copy)]
pub struct TurnStats {
    /// Turns per bucket (not cumulative); the last one is `+Inf`.
    buckets: [u64; BUCKET_NS.len() + 1],
    sum_ns: u64,
    count: u64,
    longest_ns: u64,
}

impl TurnStats {
    /// Counts one turn that worked for `d`.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let b = BUCKET_NS.partition_point(|&le| le < ns);
        self.buckets[b] += 1;
        self.sum_ns = self.sum_ns.saturating_add(ns);
        self.count += 1;
        self.longest_ns = self.longest_ns.max(ns);
    }

    /// The longest turn so far.
    pub fn longest(&self) -> Duration {
        Duration::from_nanos(self.longest_ns)
    }
}

/// The published copy of [`TurnStats`], written only by its shard.
#[derive(Debug, Default)]
pub struct TurnMetrics {
    buckets: [AtomicU64; BUCKET_NS.len() + 1],
    sum_ns: AtomicU64,
    count: AtomicU64,
    longest_ns: AtomicU64,
}

impl TurnMetrics {
    /// Copies the shard's tally (relaxed stores, once per turn).
    pub fn publish(&self, t: &TurnStats) {
        for (a, v) in self.buckets.iter().zip(t.buckets) {
            a.store(v, Relaxed);
        }
        self.sum_ns.store(t.sum_ns, Relaxed);
        self.count.store(t.count, Relaxed);
        self.longest_ns.store(t.longest_ns, Relaxed);
    }
}

/// Renders the histogram and the gauge of every shard.
pub fn render(out: &mut String, shards: &[std::sync::Arc<ShardMetrics>]) {
    out.push_str(
        "# HELP sipedge_shard_turn_seconds Work time of each shard loop turn (kernel waits excluded).\n\
         # TYPE sipedge_shard_turn_seconds histogram\n",
    );
    for (i, m) in shards.iter().enumerate() {
        let t = &m.turns;
        let mut cumulative = 0u64;
        for (k, le) in TURN_BUCKETS.iter().enumerate() {
            cumulative += t.buckets[k].load(Relaxed);
            let _ = writeln!(
                out,
                "sipedge_shard_turn_seconds_bucket{{shard=\"{i}\",le=\"{le}\"}} {cumulative}"
            );
        }
        cumulative += t.buckets[TURN_BUCKETS.len()].load(Relaxed);
        let _ = writeln!(
            out,
            "sipedge_shard_turn_seconds_bucket{{shard=\"{i}\",le=\"+Inf\"}} {cumulative}"
        );
        let sum = t.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "sipedge_shard_turn_seconds_sum{{shard=\"{i}\"}} {sum}");
        let _ = writeln!(
            out,
            "sipedge_shard_turn_seconds_count{{shard=\"{i}\"}} {}",
            t.count.load(Relaxed)
        );
    }
    out.push_str(
        "# HELP sipedge_shard_longest_turn_seconds Longest shard loop turn since start.\n\
         # TYPE sipedge_shard_longest_turn_seconds gauge\n",
    );
    for (i, m) in shards.iter().enumerate() {
        let v = m.turns.longest_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "sipedge_shard_longest_turn_seconds{{shard=\"{i}\"}} {v}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn turns_land_in_their_buckets_and_render_cumulatively() {
        let mut t = TurnStats::default();
        t.record(Duration::from_micros(10)); // ≤ 50 µs
        t.record(Duration::from_micros(50)); // ≤ 50 µs (bounds are inclusive)
        t.record(Duration::from_millis(3)); // ≤ 5 ms
        t.record(Duration::from_millis(700)); // ≤ 1 s
        t.record(Duration::from_secs(2)); // +Inf
        assert_eq!(t.longest(), Duration::from_secs(2));
        let m = Arc::new(ShardMetrics::default());
        m.turns.publish(&t);
        let mut out = String::new();
        render(&mut out, &[m]);
        for line in [
            "sipedge_shard_turn_seconds_bucket{shard=\"0\",le=\"0.00005\"} 2",
            "sipedge_shard_turn_seconds_bucket{shard=\"0\",le=\"0.0025\"} 2",
            "sipedge_shard_turn_seconds_bucket{shard=\"0\",le=\"0.005\"} 3",
            "sipedge_shard_turn_seconds_bucket{shard=\"0\",le=\"0.5\"} 3",
            "sipedge_shard_turn_seconds_bucket{shard=\"0\",le=\"1\"} 4",
            "sipedge_shard_turn_seconds_bucket{shard=\"0\",le=\"+Inf\"} 5",
            "sipedge_shard_turn_seconds_count{shard=\"0\"} 5",
            "sipedge_shard_longest_turn_seconds{shard=\"0\"} 2",
        ] {
            assert!(out.contains(line), "missing {line} in\n{out}");
        }
    }
}
