//! Issue 17's counters, published beside the shard's own (`metrics.rs`): the protection
//! rules' drops and bans (`sipedge_protect_*`), shedding (`sipedge_overload_shed_*`), and the
//! pressure measures (`sipedge_overload_queue_*`, `sipedge_kernel_drops_total`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sipedge_core::ProtectStats;

use crate::metrics::{render_cells, Cells, ShardMetrics};
use crate::overload::PressureSample;

/// Counters of one shard, written only by that shard.
#[derive(Debug, Default)]
pub struct ProtectMetrics {
    stats: Cells<ProtectStats>,
    queue_bytes: AtomicU64,
    queue_percent: AtomicU64,
    kernel_drops: AtomicU64,
    kernel_shed_options: AtomicU64,
    kernel_shed_register: AtomicU64,
    kernel_shed_invite: AtomicU64,
    kernel_shed_permille: AtomicU64,
    queue_wait_ms: AtomicU64,
}

impl ProtectMetrics {
    /// Copies the core's protection counters and the shell's pressure measures.
    pub fn publish(&self, s: &ProtectStats, p: &PressureSample) {
        self.stats.publish(s);
        self.queue_bytes.store(p.queue_bytes, Relaxed);
        self.queue_percent
            .store(u64::from(p.queue_percent), Relaxed);
        self.kernel_drops.store(p.kernel_drops, Relaxed);
    }

    /// The requests the kernel filter shed on the shard's sockets, by class.
    pub fn publish_kernel_shed(&self, shed: sipedge_rt::KernelShed) {
        self.kernel_shed_options.store(shed.options, Relaxed);
        self.kernel_shed_register.store(shed.register, Relaxed);
        self.kernel_shed_invite.store(shed.invite, Relaxed);
    }

    /// The stale drop's last measured wait, ms (`overload_delay.rs`).
    pub fn publish_queue_wait(&self, wait: std::time::Duration) {
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        self.queue_wait_ms.store(ms, Relaxed);
    }

    /// The share the kernel filter sheds now (0 ..= `SHED_ALL`).
    pub fn publish_kernel_shed_share(&self, share: u64) {
        let permille = share.saturating_mul(1000) / sipedge_rt::SHED_ALL;
        self.kernel_shed_permille.store(permille, Relaxed);
    }
}

type Field = fn(&ProtectMetrics) -> &AtomicU64;

const ROWS: &[(&str, &str, &str, Field)] = &[
    (
        "overload_queue_bytes",
        "gauge",
        "Bytes queued on the shard's sockets at the last sample (SO_MEMINFO).",
        |m| &m.queue_bytes,
    ),
    (
        "overload_queue_percent",
        "gauge",
        "Fill of the fullest socket queue of the shard, percent of SO_RCVBUF.",
        |m| &m.queue_percent,
    ),
    (
        "kernel_drops_total",
        "counter",
        "Datagrams the kernel dropped on the shard's sockets (receive queue full).",
        |m| &m.kernel_drops,
    ),
    (
        "overload_kernel_shed_permille",
        "gauge",
        "Share of OPTIONS/REGISTER/new-INVITE datagrams the eBPF socket filter sheds now, per mille.",
        |m| &m.kernel_shed_permille,
    ),
    (
        "overload_queue_wait_ms",
        "gauge",
        "How long the datagram the shard read last waited in its receive queue, ms, at the last measure (a turn of 32 datagrams or more, or while late).",
        |m| &m.queue_wait_ms,
    ),
];

/// Renders the counters of every shard.
pub fn render(out: &mut String, shards: &[std::sync::Arc<ShardMetrics>]) {
    render_cells(out, shards, |m| &m.protect.stats);
    for (name, kind, help, field) in ROWS {
        let _ = writeln!(
            out,
            "# HELP sipedge_{name} {help}\n# TYPE sipedge_{name} {kind}"
        );
        for (i, m) in shards.iter().enumerate() {
            let _ = writeln!(
                out,
                "sipedge_{name}{{shard=\"{i}\"}} {}",
                field(&m.protect).load(Relaxed)
            );
        }
    }
    let name = "overload_kernel_shed_total";
    let _ = writeln!(
        out,
        "# HELP sipedge_{name} Requests the eBPF socket filter dropped under pressure before \
         queueing (no 503; the client retransmits), by class.\n# TYPE sipedge_{name} counter"
    );
    for (i, m) in shards.iter().enumerate() {
        for (class, v) in [
            ("options", &m.protect.kernel_shed_options),
            ("register", &m.protect.kernel_shed_register),
            ("invite", &m.protect.kernel_shed_invite),
        ] {
            let _ = writeln!(
                out,
                "sipedge_{name}{{shard=\"{i}\",class=\"{class}\"}} {}",
                v.load(Relaxed)
            );
        }
    }
}
