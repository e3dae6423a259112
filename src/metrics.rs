//! Per-shard counters published by each shard loop (relaxed atomics, no locks) and rendered
//! as Prometheus text at scrape time on the admin thread.
//!
//! The text exposition format is rendered directly: our counters are per-shard atomics
//! labelled at scrape time, which `prometheus-client`'s owned-metric registry does not model
//! without a custom collector larger than this file.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

use sipedge_core::CoreStats;
use sipedge_msg::ParseErrorKind;
use sipedge_rt::{EngineKind, EngineStats, MeshStats};

/// Counters of one shard, written only by that shard.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    engine: AtomicU8,
    loop_turns: AtomicU64,
    recv_batches: AtomicU64,
    recv_batch_datagrams: AtomicU64,
    datagrams_in: AtomicU64,
    datagrams_out: AtomicU64,
    send_drops: AtomicU64,
    recv_truncated: AtomicU64,
    mesh_sent: AtomicU64,
    mesh_received: AtomicU64,
    mesh_dropped: AtomicU64,
    requests_in: AtomicU64,
    responses_in: AtomicU64,
    keepalives_in: AtomicU64,
    replies_out: AtomicU64,
    dropped: AtomicU64,
    responses_unmatched: AtomicU64,
    parse_errors: [AtomicU64; ParseErrorKind::COUNT],
    nat: crate::metrics_nat::NatMetrics,
}

/// Loop-level counts the shard keeps itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoopStats {
    /// Loop turns.
    pub turns: u64,
    /// Turns that received at least one datagram.
    pub recv_batches: u64,
    /// Datagrams received in those turns (average batch = this / recv_batches).
    pub recv_batch_datagrams: u64,
    /// Replies that found no free send slot.
    pub send_drops: u64,
}

impl ShardMetrics {
    /// Records which engine the shard runs.
    pub fn set_engine(&self, kind: EngineKind) {
        let v = match kind {
            EngineKind::Uring => 1,
            EngineKind::Mmsg => 2,
        };
        self.engine.store(v, Relaxed);
    }

    /// Copies the shard's current counters (called by the shard once per turn).
    pub fn publish(
        &self,
        core: &CoreStats,
        engine: &EngineStats,
        mesh: &MeshStats,
        lp: &LoopStats,
    ) {
        self.loop_turns.store(lp.turns, Relaxed);
        self.recv_batches.store(lp.recv_batches, Relaxed);
        self.recv_batch_datagrams
            .store(lp.recv_batch_datagrams, Relaxed);
        self.datagrams_in.store(engine.datagrams_in, Relaxed);
        self.datagrams_out.store(engine.datagrams_out, Relaxed);
        self.send_drops
            .store(engine.send_drops + lp.send_drops, Relaxed);
        self.recv_truncated.store(engine.recv_truncated, Relaxed);
        self.mesh_sent.store(mesh.sent, Relaxed);
        self.mesh_received.store(mesh.received, Relaxed);
        self.mesh_dropped.store(mesh.dropped, Relaxed);
        self.requests_in.store(core.requests_in, Relaxed);
        self.responses_in.store(core.responses_in, Relaxed);
        self.keepalives_in.store(core.keepalives_in, Relaxed);
        self.replies_out.store(core.replies_out, Relaxed);
        self.dropped.store(core.dropped, Relaxed);
        self.responses_unmatched
            .store(core.responses_unmatched, Relaxed);
        for (a, v) in self.parse_errors.iter().zip(core.parse_errors) {
            a.store(v, Relaxed);
        }
        self.nat.publish(&core.nat);
    }
}

type Field = fn(&ShardMetrics) -> &AtomicU64;

const COUNTERS: &[(&str, &str, Field)] = &[
    ("loop_turns_total", "Shard loop turns.", |m| &m.loop_turns),
    (
        "recv_batches_total",
        "Loop turns that received datagrams.",
        |m| &m.recv_batches,
    ),
    (
        "recv_batch_datagrams_total",
        "Datagrams received in batches (divide by recv_batches_total for the mean batch).",
        |m| &m.recv_batch_datagrams,
    ),
    ("datagrams_in_total", "UDP datagrams received.", |m| {
        &m.datagrams_in
    }),
    ("datagrams_out_total", "UDP datagrams sent.", |m| {
        &m.datagrams_out
    }),
    (
        "send_drops_total",
        "Datagrams dropped because no send slot was free or the socket stayed full.",
        |m| &m.send_drops,
    ),
    (
        "recv_truncated_total",
        "Datagrams larger than the receive buffer.",
        |m| &m.recv_truncated,
    ),
    (
        "mesh_handoffs_total",
        "Messages handed to another shard.",
        |m| &m.mesh_sent,
    ),
    (
        "mesh_received_total",
        "Messages received from other shards.",
        |m| &m.mesh_received,
    ),
    (
        "mesh_drops_total",
        "Hand-offs dropped because the peer's queue was full.",
        |m| &m.mesh_dropped,
    ),
    ("requests_total", "Valid SIP requests received.", |m| {
        &m.requests_in
    }),
    ("responses_total", "Valid SIP responses received.", |m| {
        &m.responses_in
    }),
    ("keepalives_total", "CRLF keepalives received.", |m| {
        &m.keepalives_in
    }),
    ("replies_total", "Responses generated by the edge.", |m| {
        &m.replies_out
    }),
    (
        "dropped_total",
        "Messages dropped without an answer.",
        |m| &m.dropped,
    ),
    (
        "responses_unmatched_total",
        "Responses that matched no transaction.",
        |m| &m.responses_unmatched,
    ),
];

/// Renders every shard's metrics in the Prometheus text format (version 0.0.4).
pub fn render(shards: &[std::sync::Arc<ShardMetrics>]) -> String {
    let mut out = String::with_capacity(8192);
    for (name, help, field) in COUNTERS {
        let _ = writeln!(
            out,
            "# HELP sipedge_{name} {help}\n# TYPE sipedge_{name} counter"
        );
        for (i, m) in shards.iter().enumerate() {
            let _ = writeln!(
                out,
                "sipedge_{name}{{shard=\"{i}\"}} {}",
                field(m).load(Relaxed)
            );
        }
    }
    out.push_str("# HELP sipedge_parse_errors_total Messages that failed to parse or validate, by kind.\n# TYPE sipedge_parse_errors_total counter\n");
    for (i, m) in shards.iter().enumerate() {
        for (k, label) in ParseErrorKind::LABELS.iter().enumerate() {
            let v = m.parse_errors[k].load(Relaxed);
            let _ = writeln!(
                out,
                "sipedge_parse_errors_total{{shard=\"{i}\",kind=\"{label}\"}} {v}"
            );
        }
    }
    out.push_str("# HELP sipedge_io_engine I/O engine each shard runs (value 1).\n# TYPE sipedge_io_engine gauge\n");
    for (i, m) in shards.iter().enumerate() {
        let engine = match m.engine.load(Relaxed) {
            1 => "io_uring",
            2 => "mmsg",
            _ => "starting",
        };
        let _ = writeln!(
            out,
            "sipedge_io_engine{{shard=\"{i}\",engine=\"{engine}\"}} 1"
        );
    }
    crate::metrics_nat::render(&mut out, &shards.iter().map(|m| &m.nat).collect::<Vec<_>>());
    let _ = writeln!(
        out,
        "# HELP sipedge_shards Number of shards.\n# TYPE sipedge_shards gauge\nsipedge_shards {}",
        shards.len()
    );
    out
}
