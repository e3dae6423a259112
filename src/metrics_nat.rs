//! NAT keepalive metrics: per-shard counters and the RTT histogram (from the core's
//! hdrhistogram, refreshed once a second) as Prometheus buckets in seconds.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sipedge_core::{NatStats, RTT_BUCKETS_MS};

use crate::metrics::{render_cells, Cells, ShardMetrics};

/// One shard's NAT counters, written only by that shard.
#[derive(Debug, Default)]
pub struct NatMetrics {
    /// The counters declared with `NatStats` (`sipedge_core::stats`).
    counters: Cells<NatStats>,
    rtt_buckets: [AtomicU64; RTT_BUCKETS_MS.len()],
    rtt_count: AtomicU64,
    rtt_sum_ms: AtomicU64,
}

impl NatMetrics {
    /// Copies the shard's counters.
    pub fn publish(&self, s: &NatStats) {
        self.counters.publish(s);
        for (a, v) in self.rtt_buckets.iter().zip(s.rtt_buckets) {
            a.store(v, Relaxed);
        }
        // The sum and count of the histogram are those of the refreshed buckets' snapshot
        // only approximately (they are exact, the buckets lag by up to a second).
        self.rtt_count.store(s.rtt_count, Relaxed);
        self.rtt_sum_ms.store(s.rtt_sum_ms, Relaxed);
    }
}

/// Appends the NAT metrics of every shard.
pub fn render(out: &mut String, shards: &[std::sync::Arc<ShardMetrics>]) {
    render_cells(out, shards, |m| &m.nat.counters);
    let name = "sipedge_nat_ping_rtt_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Keepalive round-trip time.\n# TYPE {name} histogram"
    );
    for (i, m) in shards.iter().map(|m| &m.nat).enumerate() {
        for (le, v) in RTT_BUCKETS_MS.iter().zip(&m.rtt_buckets) {
            let le = *le as f64 / 1000.0;
            let _ = writeln!(
                out,
                "{name}_bucket{{shard=\"{i}\",le=\"{le}\"}} {}",
                v.load(Relaxed)
            );
        }
        let count = m.rtt_count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{shard=\"{i}\",le=\"+Inf\"}} {count}");
        let sum = m.rtt_sum_ms.load(Relaxed) as f64 / 1000.0;
        let _ = writeln!(out, "{name}_sum{{shard=\"{i}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{shard=\"{i}\"}} {count}");
    }
}
