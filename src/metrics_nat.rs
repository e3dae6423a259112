//! NAT keepalive metrics: per-shard counters and the RTT histogram (from the core's
//! hdrhistogram, refreshed once a second) as Prometheus buckets in seconds.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sipedge_core::{NatStats, RTT_BUCKETS_MS};

/// One shard's NAT counters, written only by that shard.
#[derive(Debug, Default)]
pub struct NatMetrics {
    pings_sent: AtomicU64,
    pings_answered: AtomicU64,
    pings_timed_out: AtomicU64,
    deregistrations: AtomicU64,
    answers_stale: AtomicU64,
    nated_registrations: AtomicU64,
    max_late_ticks: AtomicU64,
    late_sweeps: AtomicU64,
    rtt_buckets: [AtomicU64; RTT_BUCKETS_MS.len()],
    rtt_count: AtomicU64,
    rtt_sum_ms: AtomicU64,
}

impl NatMetrics {
    /// Copies the shard's counters.
    pub fn publish(&self, s: &NatStats) {
        self.pings_sent.store(s.pings_sent, Relaxed);
        self.pings_answered.store(s.pings_answered, Relaxed);
        self.pings_timed_out.store(s.pings_timed_out, Relaxed);
        self.deregistrations.store(s.ping_deregistrations, Relaxed);
        self.answers_stale.store(s.ping_answers_stale, Relaxed);
        self.nated_registrations
            .store(s.nated_registrations, Relaxed);
        self.max_late_ticks.store(s.ping_max_late_ticks, Relaxed);
        self.late_sweeps.store(s.ping_late_sweeps, Relaxed);
        for (a, v) in self.rtt_buckets.iter().zip(s.rtt_buckets) {
            a.store(v, Relaxed);
        }
        // The sum and count of the histogram are those of the refreshed buckets' snapshot
        // only approximately (they are exact, the buckets lag by up to a second).
        self.rtt_count.store(s.rtt_count, Relaxed);
        self.rtt_sum_ms.store(s.rtt_sum_ms, Relaxed);
    }
}

type Field = fn(&NatMetrics) -> &AtomicU64;

const COUNTERS: &[(&str, &str, &str, Field)] = &[
    (
        "nat_pings_sent_total",
        "counter",
        "NAT keepalives sent (OPTIONS or CRLF).",
        |m| &m.pings_sent,
    ),
    (
        "nat_pings_answered_total",
        "counter",
        "OPTIONS keepalives answered.",
        |m| &m.pings_answered,
    ),
    (
        "nat_pings_timed_out_total",
        "counter",
        "OPTIONS keepalives unanswered at the next slot.",
        |m| &m.pings_timed_out,
    ),
    (
        "nat_ping_deregistrations_total",
        "counter",
        "Bindings removed after ping_failures_max unanswered keepalives.",
        |m| &m.deregistrations,
    ),
    (
        "nat_ping_answers_stale_total",
        "counter",
        "Keepalive answers for a binding that is gone, or forged.",
        |m| &m.answers_stale,
    ),
    (
        "nat_registrations_total",
        "counter",
        "Contacts registered or refreshed as NATed.",
        |m| &m.nated_registrations,
    ),
    (
        "nat_ping_late_sweeps_total",
        "counter",
        "Keepalive ticks swept more than one tick late.",
        |m| &m.late_sweeps,
    ),
    (
        "nat_ping_max_late_ticks",
        "gauge",
        "Most wheel ticks a keepalive slot was swept late.",
        |m| &m.max_late_ticks,
    ),
];

/// Appends the NAT metrics of every shard.
pub fn render(out: &mut String, shards: &[&NatMetrics]) {
    for (name, kind, help, field) in COUNTERS {
        let _ = writeln!(
            out,
            "# HELP sipedge_{name} {help}\n# TYPE sipedge_{name} {kind}"
        );
        for (i, m) in shards.iter().enumerate() {
            let _ = writeln!(
                out,
                "sipedge_{name}{{shard=\"{i}\"}} {}",
                field(m).load(Relaxed)
            );
        }
    }
    let name = "sipedge_nat_ping_rtt_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Keepalive round-trip time.\n# TYPE {name} histogram"
    );
    for (i, m) in shards.iter().enumerate() {
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
