//! The relay's counters (issue 7), published beside the shard's own (`metrics.rs`) and
//! rendered after them: `sipedge_relay_*` (declared with `ProxyStats` in `sipedge_core::stats`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sipedge_core::ProxyStats;

use crate::metrics::{render_cells, Cells, ShardMetrics};

/// Relay counters of one shard, written only by that shard.
#[derive(Debug, Default)]
pub struct RelayMetrics {
    counters: Cells<ProxyStats>,
    active: AtomicU64,
}

impl RelayMetrics {
    /// Copies the core's relay counters and the number of live transactions.
    pub fn publish(&self, s: &ProxyStats, active: usize) {
        self.counters.publish(s);
        self.active.store(active as u64, Relaxed);
    }
}

/// Appends the relay's metrics of every shard to `out`.
pub fn render(out: &mut String, shards: &[std::sync::Arc<ShardMetrics>]) {
    render_cells(out, shards, |m| &m.relay.counters);
    let name = "relay_active_transactions";
    let _ = writeln!(
        out,
        "# HELP sipedge_{name} Live relay transactions on the shard.\n# TYPE sipedge_{name} gauge"
    );
    for (i, m) in shards.iter().enumerate() {
        let _ = writeln!(
            out,
            "sipedge_{name}{{shard=\"{i}\"}} {}",
            m.relay.active.load(Relaxed)
        );
    }
}
