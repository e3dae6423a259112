//! Issue 16's metrics: dialogs per shard (`sipedge_dialogs_*`, published by each shard
//! like the others) and the call limits, read at scrape time from the counters every shard
//! shares (`sipedge_limits_*`): channels in use and calls this second for the server and per
//! account (accounts are few; users are not labelled — millions of series — and are read
//! per user on request from `LimitsTable::user`), and refusals by limit kind.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use sipedge_core::limits::{LimitRefusal, LimitsTable};
use sipedge_core::{Core, Refusal};

use crate::metrics::ShardMetrics;

/// One shard's dialog counters, written only by that shard.
#[derive(Debug, Default)]
pub struct DialogMetrics {
    cells: [AtomicU64; 14],
}

type Row = (&'static str, &'static str, &'static str);

const ROWS: [Row; 14] = [
    (
        "dialogs_pending",
        "gauge",
        "INVITEs admitted and holding channels, no final response yet.",
    ),
    (
        "dialogs_confirmed",
        "gauge",
        "Confirmed calls tracked (owned) by the shard.",
    ),
    (
        "dialogs_opened_total",
        "counter",
        "Calls confirmed (first 2xx) and tracked.",
    ),
    (
        "dialogs_ended_bye_total",
        "counter",
        "Tracked calls ended by BYE.",
    ),
    (
        "dialogs_expired_total",
        "counter",
        "Tracked calls ended by [dialogs] max_duration_secs.",
    ),
    (
        "dialogs_untracked_total",
        "counter",
        "Calls that went on untracked (dialog table full at the 2xx).",
    ),
    (
        "dialogs_bye_unknown_total",
        "counter",
        "BYEs that found no tracked call (second BYE, untracked call).",
    ),
    (
        "dialogs_handed_off_total",
        "counter",
        "Dialog messages sent to the owner shard.",
    ),
    (
        "dialogs_keepalives_sent_total",
        "counter",
        "In-dialog OPTIONS sent to call ends ([dialogs] keepalive_secs; resends included).",
    ),
    (
        "dialogs_keepalives_answered_total",
        "counter",
        "In-dialog OPTIONS answered (a final response other than 481/408).",
    ),
    (
        "dialogs_keepalive_timeouts_total",
        "counter",
        "Calls ended because an end answered no keepalive within 64*T1.",
    ),
    (
        "dialogs_keepalive_gone_total",
        "counter",
        "Calls ended because an end answered a keepalive 481 or 408.",
    ),
    (
        "dialogs_byes_sent_total",
        "counter",
        "BYEs the edge sent itself (keepalive loss or max duration; two per call).",
    ),
    (
        "dialogs_unreachable_total",
        "counter",
        "Tracked calls kept without their ends (no keepalives, no BYE at max duration).",
    ),
];

impl DialogMetrics {
    /// Copies the core's dialog counters.
    pub fn publish(&self, core: &Core) {
        let (pending, confirmed) = core.dialog_count();
        let s = core.dialog_stats();
        let v = [
            pending as u64,
            confirmed as u64,
            s.opened,
            s.ended_bye,
            s.expired,
            s.untracked,
            s.bye_unknown,
            s.handed_off,
            s.keepalives_sent,
            s.keepalives_answered,
            s.keepalive_timeouts,
            s.keepalive_gone,
            s.byes_sent,
            s.unreachable,
        ];
        for (c, v) in self.cells.iter().zip(v) {
            c.store(v, Relaxed);
        }
    }
}

/// Renders every shard's dialog counters.
pub fn render(out: &mut String, shards: &[Arc<ShardMetrics>]) {
    for (k, (name, kind, help)) in ROWS.iter().enumerate() {
        let _ = writeln!(
            out,
            "# HELP sipedge_{name} {help}\n# TYPE sipedge_{name} {kind}"
        );
        for (i, m) in shards.iter().enumerate() {
            let v = m.dialogs.cells[k].load(Relaxed);
            let _ = writeln!(out, "sipedge_{name}{{shard=\"{i}\"}} {v}");
        }
    }
}

/// Label values are config names: quotes and backslashes escaped (Prometheus text format).
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders the shared limit counters at second `sec` of the cores' clock.
pub fn render_limits(out: &mut String, t: &LimitsTable, sec: u32) {
    let _ = writeln!(
        out,
        "# HELP sipedge_limits_channels_in_use Concurrent calls tracked (scope server or account).\n# TYPE sipedge_limits_channels_in_use gauge"
    );
    let _ = writeln!(
        out,
        "sipedge_limits_channels_in_use{{scope=\"server\"}} {}",
        t.server_channels()
    );
    for (name, _, ch, _) in t.accounts(sec) {
        let _ = writeln!(
            out,
            "sipedge_limits_channels_in_use{{scope=\"account\",account=\"{}\"}} {ch}",
            label(name)
        );
    }
    let _ = writeln!(
        out,
        "# HELP sipedge_limits_cps Calls admitted during the current second.\n# TYPE sipedge_limits_cps gauge"
    );
    let _ = writeln!(
        out,
        "sipedge_limits_cps{{scope=\"server\"}} {}",
        t.server_cps(sec)
    );
    for (name, _, _, cps) in t.accounts(sec) {
        let _ = writeln!(
            out,
            "sipedge_limits_cps{{scope=\"account\",account=\"{}\"}} {cps}",
            label(name)
        );
    }
    let _ = writeln!(
        out,
        "# HELP sipedge_limits_refused_total Calls refused at capacity, by the limit that tripped.\n# TYPE sipedge_limits_refused_total counter"
    );
    for k in LimitRefusal::ALL {
        let _ = writeln!(
            out,
            "sipedge_limits_refused_total{{limit=\"{}\"}} {}",
            k.label(),
            t.counts().refused(*k)
        );
    }
    let _ = writeln!(
        out,
        "# HELP sipedge_limits_admitted_total Calls admitted by the limiter.\n# TYPE sipedge_limits_admitted_total counter\nsipedge_limits_admitted_total {}",
        t.counts().admitted()
    );
    let _ = writeln!(
        out,
        "# HELP sipedge_limits_ip_keys Source IPs counted for [[ip_auth]] limits.\n# TYPE sipedge_limits_ip_keys gauge\nsipedge_limits_ip_keys {}",
        t.ip_keys_used()
    );
}

/// The shared limit counters of the tables in force, at the shards' clock (`epoch`:
/// CPS windows are seconds of it), for
/// `GET /metrics` (issue 16).
pub fn render_shared_limits(out: &mut String, tables: &crate::shard::SharedTables, epoch: Instant) {
    let sec = (epoch.elapsed().as_millis() / 1000) as u32;
    render_limits(out, &tables.current().limits, sec);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_render_per_account_and_per_kind() {
        let spec = sipedge_core::auth::AuthSpec {
            accounts: vec![sipedge_core::auth::AccountSpec {
                name: "ac\"me".into(),
                channels: Some(3),
                ..Default::default()
            }],
            ..Default::default()
        };
        let db = sipedge_core::auth::AuthDb::build(&spec)
            .unwrap_or_else(|e| panic!("{e}"))
            .into_handle();
        let t = LimitsTable::build(&db, Default::default(), None);
        let mut out = String::new();
        render_limits(&mut out, &t, 0);
        assert!(
            out.contains("sipedge_limits_channels_in_use{scope=\"server\"} 0"),
            "{out}"
        );
        assert!(
            out.contains(
                "sipedge_limits_channels_in_use{scope=\"account\",account=\"ac\\\"me\"} 0"
            ),
            "{out}"
        );
        assert!(
            out.contains("sipedge_limits_refused_total{limit=\"user_cps\"} 0"),
            "{out}"
        );
    }
}
