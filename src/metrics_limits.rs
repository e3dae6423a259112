//! Issue 13's counters, published beside the shard's own (`metrics.rs`): what the caps
//! refused or dropped (`sipedge_overload_*`), the bytes held by transactions, and the
//! journal (`sipedge_journal_*`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sipedge_core::OverloadStats;

use crate::metrics::{render_cells, Cells, ShardMetrics};
use crate::persist::ShardPersist;

/// Counters of one shard, written only by that shard.
#[derive(Debug, Default)]
pub struct LimitsMetrics {
    /// The counters declared with `OverloadStats` (`sipedge_core::stats`).
    overload: Cells<OverloadStats>,
    txn_bytes: AtomicU64,
    journal_written: AtomicU64,
    journal_bytes: AtomicU64,
    journal_syncs: AtomicU64,
    journal_errors: AtomicU64,
    journal_refused: AtomicU64,
    journal_withheld: AtomicU64,
    journal_snapshots: AtomicU64,
    /// f64 bits.
    journal_snapshot_seconds: AtomicU64,
    journal_last_snapshot_seconds: AtomicU64,
}

impl LimitsMetrics {
    /// Copies the core's overload counters and the bytes its transactions hold.
    pub fn publish(&self, s: &OverloadStats, txn_bytes: usize) {
        self.overload.publish(s);
        self.txn_bytes.store(txn_bytes as u64, Relaxed);
    }

    /// Copies the journal's counters.
    pub fn publish_journal(&self, p: &ShardPersist) {
        let j = p.journal_stats();
        self.journal_written.store(j.written, Relaxed);
        self.journal_bytes.store(j.bytes, Relaxed);
        self.journal_syncs.store(j.syncs, Relaxed);
        self.journal_errors.store(j.errors, Relaxed);
        self.journal_refused.store(p.counters.refused, Relaxed);
        self.journal_withheld
            .store(p.counters.replies_withheld, Relaxed);
        self.journal_snapshots.store(p.counters.snapshots, Relaxed);
        self.journal_snapshot_seconds
            .store(p.counters.snapshot_seconds_total.to_bits(), Relaxed);
        self.journal_last_snapshot_seconds
            .store(p.counters.last_snapshot_seconds.to_bits(), Relaxed);
    }
}

type Field = fn(&LimitsMetrics) -> &AtomicU64;

/// The journal's counters (kept by the shell, `persist.rs`).
const COUNTERS: &[(&str, &str, Field)] = &[
    (
        "journal_records_written_total",
        "Binding-change records written to the journal.",
        |m| &m.journal_written,
    ),
    (
        "journal_bytes_written_total",
        "Bytes written to the journal (framing included).",
        |m| &m.journal_bytes,
    ),
    (
        "journal_fsyncs_total",
        "fdatasync calls on the journal.",
        |m| &m.journal_syncs,
    ),
    (
        "journal_failures_total",
        "Failed journal writes, syncs and snapshots.",
        |m| &m.journal_errors,
    ),
    (
        "journal_backlog_drops_total",
        "Records the journal refused (backlog full or too large): kept in memory only.",
        |m| &m.journal_refused,
    ),
    (
        "journal_replies_withheld_total",
        "sync = every: replies withheld because their changes did not become durable.",
        |m| &m.journal_withheld,
    ),
    (
        "journal_snapshots_total",
        "Journal snapshots that became durable.",
        |m| &m.journal_snapshots,
    ),
];

/// Renders the counters of every shard.
pub fn render(out: &mut String, shards: &[std::sync::Arc<ShardMetrics>]) {
    render_cells(out, shards, |m| &m.limits.overload);
    let mut section =
        |name: &str, help: &str, kind: &str, value: &dyn Fn(&LimitsMetrics) -> String| {
            let _ = writeln!(
                out,
                "# HELP sipedge_{name} {help}\n# TYPE sipedge_{name} {kind}"
            );
            for (i, m) in shards.iter().enumerate() {
                let _ = writeln!(out, "sipedge_{name}{{shard=\"{i}\"}} {}", value(&m.limits));
            }
        };
    for (name, help, field) in COUNTERS {
        section(name, help, "counter", &|m| {
            field(m).load(Relaxed).to_string()
        });
    }
    section(
        "transaction_bytes",
        "Bytes held by the shard's live transactions.",
        "gauge",
        &|m| m.txn_bytes.load(Relaxed).to_string(),
    );
    section(
        "journal_snapshot_seconds_total",
        "Seconds journal snapshots took, from rotation to durable commit, all together.",
        "counter",
        &|m| f64::from_bits(m.journal_snapshot_seconds.load(Relaxed)).to_string(),
    );
    section(
        "journal_last_snapshot_seconds",
        "Seconds the last journal snapshot took.",
        "gauge",
        &|m| f64::from_bits(m.journal_last_snapshot_seconds.load(Relaxed)).to_string(),
    );
}
