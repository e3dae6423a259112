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
    xdp_rx_frames: AtomicU64,
    xdp_tx_frames: AtomicU64,
    xdp_rx_rejected: AtomicU64,
    xdp_tx_via_socket: AtomicU64,
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
    registers_in: AtomicU64,
    registers_handed_off: AtomicU64,
    registers_ok: AtomicU64,
    registers_failed: AtomicU64,
    register_retransmissions: AtomicU64,
    registers_table_full: AtomicU64,
    bindings_created: AtomicU64,
    bindings_refreshed: AtomicU64,
    bindings_removed: AtomicU64,
    bindings_expired: AtomicU64,
    restored: AtomicU64,
    restore_expired: AtomicU64,
    bindings: AtomicU64,
    aors: AtomicU64,
    /// The relay's counters (`metrics_relay.rs`).
    pub relay: crate::metrics_relay::RelayMetrics,
    /// Turn durations (`metrics_turns.rs`).
    pub turns: crate::metrics_turns::TurnMetrics,
    /// Caps and journal (`metrics_limits.rs`, issue 13).
    pub limits: crate::metrics_limits::LimitsMetrics,
    /// `sipedge_core::auth::AuthStats`, in `AUTH_COUNTERS` order.
    auth: [AtomicU64; AUTH_COUNTERS.len()],
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
            EngineKind::Xdp { zero_copy: false } => 3,
            EngineKind::Xdp { zero_copy: true } => 4,
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
        self.xdp_rx_frames.store(engine.xdp_rx_frames, Relaxed);
        self.xdp_tx_frames.store(engine.xdp_tx_frames, Relaxed);
        self.xdp_rx_rejected.store(engine.xdp_rx_rejected, Relaxed);
        self.xdp_tx_via_socket
            .store(engine.xdp_tx_via_socket, Relaxed);
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
        self.registers_in.store(core.registers_in, Relaxed);
        self.registers_handed_off
            .store(core.registers_handed_off, Relaxed);
        self.registers_ok.store(core.registers_ok, Relaxed);
        self.registers_failed.store(core.registers_failed, Relaxed);
        self.register_retransmissions
            .store(core.register_retransmissions, Relaxed);
        self.registers_table_full
            .store(core.registers_table_full, Relaxed);
        self.bindings_created.store(core.bindings_created, Relaxed);
        self.bindings_refreshed
            .store(core.bindings_refreshed, Relaxed);
        self.bindings_removed.store(core.bindings_removed, Relaxed);
        self.bindings_expired.store(core.bindings_expired, Relaxed);
        self.restored.store(core.restored, Relaxed);
        self.restore_expired.store(core.restore_expired, Relaxed);
        self.nat.publish(&core.nat);
    }

    /// The size of the shard's slice of the location table.
    pub fn publish_location(&self, bindings: usize, aors: usize) {
        self.bindings.store(bindings as u64, Relaxed);
        self.aors.store(aors as u64, Relaxed);
    }
}

impl ShardMetrics {
    /// Copies the authenticator's counters (called by the shard once per turn).
    pub fn publish_auth(&self, a: &sipedge_core::auth::AuthStats) {
        let values = [
            a.challenges,
            a.stale,
            a.digest_ok,
            a.digest_failed,
            a.replays,
            a.ip_ok,
            a.forbidden,
            a.malformed,
        ];
        for (m, v) in self.auth.iter().zip(values) {
            m.store(v, Relaxed);
        }
    }
}

/// Authentication counters: name and help, in `publish_auth` order.
const AUTH_COUNTERS: [(&str, &str); 8] = [
    (
        "auth_challenges_total",
        "401/407 digest challenges sent (stale ones included).",
    ),
    (
        "auth_stale_total",
        "Challenges with stale=true (right password, unusable nonce).",
    ),
    ("auth_digest_ok_total", "Digest credentials accepted."),
    (
        "auth_digest_failed_total",
        "Wrong password or unknown user (not told apart).",
    ),
    ("auth_replays_total", "Replayed (nonce, nonce-count) pairs."),
    (
        "auth_ip_ok_total",
        "Requests authenticated by source address (IP or CLI).",
    ),
    (
        "auth_forbidden_total",
        "403s from authentication (whitelist, username, CLI).",
    ),
    ("auth_malformed_total", "400s for malformed credentials."),
];

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
    (
        "xdp_rx_frames_total",
        "io = xdp: datagrams received as frames on the AF_XDP socket.",
        |m| &m.xdp_rx_frames,
    ),
    (
        "xdp_tx_frames_total",
        "io = xdp: datagrams sent as frames on the AF_XDP socket.",
        |m| &m.xdp_tx_frames,
    ),
    (
        "xdp_rx_rejected_total",
        "io = xdp: frames dropped (malformed, bad checksum, not for a listen address).",
        |m| &m.xdp_rx_rejected,
    ),
    (
        "xdp_tx_via_socket_total",
        "io = xdp: datagrams sent through the UDP socket instead (peer MAC unknown, above the MTU, ring full).",
        |m| &m.xdp_tx_via_socket,
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
    (
        "registers_total",
        "REGISTER requests received (one handed to its owner counts on both shards).",
        |m| &m.registers_in,
    ),
    (
        "registers_handed_off_total",
        "REGISTERs handed to the AoR's owner shard.",
        |m| &m.registers_handed_off,
    ),
    ("registers_ok_total", "REGISTERs answered 200 OK.", |m| {
        &m.registers_ok
    }),
    (
        "registers_failed_total",
        "REGISTERs refused (403, 404, 400, 423, 500).",
        |m| &m.registers_failed,
    ),
    (
        "registers_table_full_total",
        "REGISTERs refused with 503 because the shard held its share of [registrar] max_bindings.",
        |m| &m.registers_table_full,
    ),
    (
        "register_retransmissions_total",
        "REGISTER retransmissions answered again without change.",
        |m| &m.register_retransmissions,
    ),
    ("bindings_created_total", "Bindings added.", |m| {
        &m.bindings_created
    }),
    ("bindings_refreshed_total", "Bindings refreshed.", |m| {
        &m.bindings_refreshed
    }),
    (
        "bindings_removed_total",
        "Bindings removed by a REGISTER (expires=0, *, eviction).",
        |m| &m.bindings_removed,
    ),
    ("bindings_expired_total", "Bindings that expired.", |m| {
        &m.bindings_expired
    }),
    (
        "bindings_restored_total",
        "Bindings restored from the journal at start.",
        |m| &m.restored,
    ),
    (
        "restore_expired_total",
        "Journal records skipped at start because they had expired.",
        |m| &m.restore_expired,
    ),
];

const GAUGES: &[(&str, &str, Field)] = &[
    ("bindings", "Bindings (contacts) held by the shard.", |m| {
        &m.bindings
    }),
    (
        "aors",
        "Addresses of record with at least one binding on the shard.",
        |m| &m.aors,
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
    for (name, help, field) in GAUGES {
        let _ = writeln!(
            out,
            "# HELP sipedge_{name} {help}\n# TYPE sipedge_{name} gauge"
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
    for (k, (name, help)) in AUTH_COUNTERS.iter().enumerate() {
        let _ = writeln!(
            out,
            "# HELP sipedge_{name} {help}\n# TYPE sipedge_{name} counter"
        );
        for (i, m) in shards.iter().enumerate() {
            let _ = writeln!(
                out,
                "sipedge_{name}{{shard=\"{i}\"}} {}",
                m.auth[k].load(Relaxed)
            );
        }
    }
    out.push_str("# HELP sipedge_io_engine I/O engine each shard runs (value 1).\n# TYPE sipedge_io_engine gauge\n");
    for (i, m) in shards.iter().enumerate() {
        let engine = match m.engine.load(Relaxed) {
            1 => "io_uring",
            2 => "mmsg",
            3 => "xdp_copy",
            4 => "xdp_zerocopy",
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
    crate::metrics_relay::render(&mut out, shards);
    crate::metrics_turns::render(&mut out, shards);
    crate::metrics_limits::render(&mut out, shards);
    out
}
