//! Per-shard counters published by each shard loop (relaxed atomics, no locks) and rendered
//! as Prometheus text at scrape time on the admin thread.
//!
//! The text exposition format is rendered directly: our counters are per-shard atomics
//! labelled at scrape time, which `prometheus-client`'s owned-metric registry does not model
//! without a custom collector larger than this file.

use std::fmt::Write as _;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};

use sipedge_core::auth::AuthStats;
use sipedge_core::{CoreStats, Counters, Row};
use sipedge_msg::ParseErrorKind;
use sipedge_rt::{EngineKind, EngineStats, MeshStats};

/// The published copy of one [`Counters`] struct: one relaxed atomic per row, written only
/// by its shard, read at scrape time.
#[derive(Debug)]
pub struct Cells<T> {
    cells: Box<[AtomicU64]>,
    of: PhantomData<fn(&T)>,
}

impl<T: Counters> Default for Cells<T> {
    fn default() -> Self {
        Cells {
            cells: T::ROWS.iter().map(|_| AtomicU64::new(0)).collect(),
            of: PhantomData,
        }
    }
}

impl<T: Counters> Cells<T> {
    /// Copies every counter of `s` (relaxed stores, once per turn).
    pub fn publish(&self, s: &T) {
        s.each(|i, v| self.cells[i].store(v, Relaxed));
    }

    /// Appends `# HELP`, `# TYPE` and one line per shard for every row of `T`.
    fn render<'a>(out: &mut String, shards: impl Iterator<Item = &'a Self> + Clone)
    where
        T: 'a,
    {
        for (k, row) in T::ROWS.iter().enumerate() {
            let Row { name, kind, help } = row;
            let kind = kind.as_str();
            let _ = writeln!(
                out,
                "# HELP sipedge_{name} {help}\n# TYPE sipedge_{name} {kind}"
            );
            for (i, m) in shards.clone().enumerate() {
                let _ = writeln!(
                    out,
                    "sipedge_{name}{{shard=\"{i}\"}} {}",
                    m.cells[k].load(Relaxed)
                );
            }
        }
    }
}

sipedge_core::counters! {
    /// Counts the shell keeps about its loop, its I/O engine and its mesh queues.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct ShellStats {
        /// [`LoopStats::turns`].
        loop_turns: "loop_turns_total", counter, "Shard loop turns.";
        /// [`LoopStats::recv_batches`].
        recv_batches: "recv_batches_total", counter, "Loop turns that received datagrams.";
        /// [`LoopStats::recv_batch_datagrams`].
        recv_batch_datagrams: "recv_batch_datagrams_total", counter,
            "Datagrams received in batches (divide by recv_batches_total for the mean batch).";
        /// [`EngineStats::xdp_rx_frames`].
        xdp_rx_frames: "xdp_rx_frames_total", counter,
            "io = xdp: datagrams received as frames on the AF_XDP socket.";
        /// [`EngineStats::xdp_tx_frames`].
        xdp_tx_frames: "xdp_tx_frames_total", counter,
            "io = xdp: datagrams sent as frames on the AF_XDP socket.";
        /// [`EngineStats::xdp_rx_rejected`].
        xdp_rx_rejected: "xdp_rx_rejected_total", counter,
            "io = xdp: frames dropped (malformed, bad checksum, not for a listen address).";
        /// [`EngineStats::xdp_tx_via_socket`].
        xdp_tx_via_socket: "xdp_tx_via_socket_total", counter,
            "io = xdp: datagrams sent through the UDP socket instead (peer MAC unknown, above the MTU, ring full).";
        /// [`EngineStats::datagrams_in`].
        datagrams_in: "datagrams_in_total", counter, "UDP datagrams received.";
        /// [`EngineStats::datagrams_out`].
        datagrams_out: "datagrams_out_total", counter, "UDP datagrams sent.";
        /// [`EngineStats::send_drops`] plus [`LoopStats::send_drops`].
        send_drops: "send_drops_total", counter,
            "Datagrams dropped because no send slot was free or the socket stayed full.";
        /// [`EngineStats::recv_truncated`].
        recv_truncated: "recv_truncated_total", counter,
            "Datagrams larger than the receive buffer.";
        /// [`MeshStats::sent`].
        mesh_sent: "mesh_handoffs_total", counter, "Messages handed to another shard.";
        /// [`MeshStats::received`].
        mesh_received: "mesh_received_total", counter, "Messages received from other shards.";
        /// [`MeshStats::dropped`].
        mesh_dropped: "mesh_drops_total", counter,
            "Hand-offs dropped because the peer's queue was full.";
    }
}

impl ShellStats {
    fn new(engine: &EngineStats, mesh: &MeshStats, lp: &LoopStats) -> ShellStats {
        ShellStats {
            loop_turns: lp.turns,
            recv_batches: lp.recv_batches,
            recv_batch_datagrams: lp.recv_batch_datagrams,
            xdp_rx_frames: engine.xdp_rx_frames,
            xdp_tx_frames: engine.xdp_tx_frames,
            xdp_rx_rejected: engine.xdp_rx_rejected,
            xdp_tx_via_socket: engine.xdp_tx_via_socket,
            datagrams_in: engine.datagrams_in,
            datagrams_out: engine.datagrams_out,
            send_drops: engine.send_drops + lp.send_drops,
            recv_truncated: engine.recv_truncated,
            mesh_sent: mesh.sent,
            mesh_received: mesh.received,
            mesh_dropped: mesh.dropped,
        }
    }
}

/// Counters of one shard, written only by that shard.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    engine: AtomicU8,
    shell: Cells<ShellStats>,
    core: Cells<CoreStats>,
    parse_errors: [AtomicU64; ParseErrorKind::COUNT],
    /// The NAT pinger's counters and RTT histogram (`metrics_nat.rs`).
    pub(crate) nat: crate::metrics_nat::NatMetrics,
    auth: Cells<AuthStats>,
    bindings: AtomicU64,
    aors: AtomicU64,
    /// The relay's counters (`metrics_relay.rs`).
    pub relay: crate::metrics_relay::RelayMetrics,
    /// Turn durations (`metrics_turns.rs`).
    pub turns: crate::metrics_turns::TurnMetrics,
    /// Caps and journal (`metrics_limits.rs`, issue 13).
    pub limits: crate::metrics_limits::LimitsMetrics,
    /// Bans, drops, shedding and pressure (`metrics_protect.rs`, issue 17).
    pub protect: crate::metrics_protect::ProtectMetrics,
    /// Dialogs (`metrics_dialogs.rs`, issue 16).
    pub dialogs: crate::metrics_dialogs::DialogMetrics,
    /// Stream connections (`metrics_streams.rs`, issue 19).
    pub streams: crate::metrics_streams::StreamMetrics,
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
        self.shell.publish(&ShellStats::new(engine, mesh, lp));
        self.core.publish(core);
        for (a, v) in self.parse_errors.iter().zip(core.parse_errors) {
            a.store(v, Relaxed);
        }
        self.nat.publish(&core.nat);
    }

    /// The size of the shard's slice of the location table.
    pub fn publish_location(&self, bindings: usize, aors: usize) {
        self.bindings.store(bindings as u64, Relaxed);
        self.aors.store(aors as u64, Relaxed);
    }

    /// Copies the authenticator's counters (called by the shard once per turn).
    pub fn publish_auth(&self, a: &AuthStats) {
        self.auth.publish(a);
    }
}

/// Renders the rows of one [`Counters`] list for every shard.
pub(crate) fn render_cells<'a, T: Counters + 'a>(
    out: &mut String,
    shards: &'a [std::sync::Arc<ShardMetrics>],
    cells: impl Fn(&'a ShardMetrics) -> &'a Cells<T> + Clone,
) {
    Cells::<T>::render(out, shards.iter().map(|m| cells(m)));
}

type Field = fn(&ShardMetrics) -> &AtomicU64;

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
    render_cells(&mut out, shards, |m| &m.shell);
    render_cells(&mut out, shards, |m| &m.core);
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
    render_cells(&mut out, shards, |m| &m.auth);
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
    crate::metrics_nat::render(&mut out, shards);
    let _ = writeln!(
        out,
        "# HELP sipedge_shards Number of shards.\n# TYPE sipedge_shards gauge\nsipedge_shards {}",
        shards.len()
    );
    crate::metrics_relay::render(&mut out, shards);
    crate::metrics_turns::render(&mut out, shards);
    crate::metrics_limits::render(&mut out, shards);
    crate::metrics_protect::render(&mut out, shards);
    crate::metrics_dialogs::render(&mut out, shards);
    crate::metrics_streams::render(&mut out, shards);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sipedge_core::{NatStats, OverloadStats, ProxyStats};
    use std::collections::HashSet;
    use std::sync::Arc;

    /// A `T` whose every counter holds a value no other counter holds.
    fn fill<T: Counters + Default>(next: &mut u64) -> T {
        let mut t = T::default();
        t.each_mut(|_, v| {
            *next += 1;
            *v = *next;
        });
        t
    }

    /// The exposition line every counter of `s` must produce on shard 0.
    fn lines<T: Counters>(s: &T, out: &mut Vec<String>) {
        s.each(|i, v| out.push(format!("sipedge_{}{{shard=\"0\"}} {v}", T::ROWS[i].name)));
    }

    /// Issue 14: each counter is declared once (`sipedge_core::stats`, `ShellStats`) and this
    /// fails when one is counted but not published or not rendered.
    #[test]
    fn every_declared_counter_is_exported_with_its_value() {
        let mut n = 1000;
        let mut core: CoreStats = fill(&mut n);
        core.nat = fill(&mut n);
        core.overload = fill(&mut n);
        let proxy: ProxyStats = fill(&mut n);
        let auth: AuthStats = fill(&mut n);
        let shell: ShellStats = fill(&mut n);
        let m = Arc::new(ShardMetrics::default());
        m.publish(
            &core,
            &EngineStats::default(),
            &MeshStats::default(),
            &LoopStats::default(),
        );
        m.shell.publish(&shell);
        m.relay.publish(&proxy, 0);
        m.publish_auth(&auth);
        m.limits.publish(&core.overload, 0);
        let text = render(&[m]);
        let mut want = Vec::new();
        lines(&core, &mut want);
        lines(&core.nat, &mut want);
        lines(&core.overload, &mut want);
        lines(&proxy, &mut want);
        lines(&auth, &mut want);
        lines(&shell, &mut want);
        let rows = CoreStats::ROWS.len()
            + NatStats::ROWS.len()
            + OverloadStats::ROWS.len()
            + ProxyStats::ROWS.len()
            + AuthStats::ROWS.len()
            + ShellStats::ROWS.len();
        assert_eq!(want.len(), rows);
        let got: HashSet<&str> = text.lines().collect();
        let missing: Vec<&String> = want.iter().filter(|l| !got.contains(l.as_str())).collect();
        assert!(missing.is_empty(), "not exported: {missing:#?}");
    }

    /// Before issue 14 these three were counted by the core and never exported.
    #[test]
    fn counters_that_had_drifted_are_exported() {
        let core = CoreStats {
            bindings_evicted: 7,
            shard_msgs_in: 8,
            lookups_answered: 9,
            ..CoreStats::default()
        };
        let m = Arc::new(ShardMetrics::default());
        m.publish(
            &core,
            &EngineStats::default(),
            &MeshStats::default(),
            &LoopStats::default(),
        );
        let text = render(&[m]);
        for line in [
            "sipedge_bindings_evicted_total{shard=\"0\"} 7",
            "sipedge_shard_messages_in_total{shard=\"0\"} 8",
            "sipedge_lookups_answered_total{shard=\"0\"} 9",
        ] {
            assert!(text.contains(line), "missing {line}");
        }
    }

    /// Every metric name is declared once, with one `# TYPE` line.
    #[test]
    fn metric_names_are_unique() {
        let text = render(&[Arc::new(ShardMetrics::default())]);
        let mut seen = HashSet::new();
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(seen.insert(l.split(' ').nth(2)), "declared twice: {l}");
        }
    }
}
