//! The run report: JSON (`--json`) or a human-readable summary.

use std::fmt::Write as _;

use serde::Serialize;
use sipedge_rt::EngineStats;

use crate::stats::PhaseReport;

/// Engine counters of the generator, for spotting its own limits.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EngineReport {
    pub(crate) kind: String,
    pub(crate) datagrams_in: u64,
    pub(crate) datagrams_out: u64,
    pub(crate) send_drops: u64,
    pub(crate) send_errors: u64,
    pub(crate) recv_errors: u64,
    pub(crate) submits: u64,
    pub(crate) avg_recv_batch: f64,
}

impl EngineReport {
    pub(crate) fn new(kind: String, s: &EngineStats) -> EngineReport {
        EngineReport {
            kind,
            datagrams_in: s.datagrams_in,
            datagrams_out: s.datagrams_out,
            send_drops: s.send_drops,
            send_errors: s.send_errors,
            recv_errors: s.recv_errors,
            submits: s.submits,
            avg_recv_batch: s.datagrams_in as f64 / s.recv_batches.max(1) as f64,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) scenario: String,
    pub(crate) target: String,
    /// "open", "closed" or "ramp".
    pub(crate) mode: String,
    pub(crate) uas: usize,
    pub(crate) sources: u32,
    pub(crate) t1_ms: u64,
    pub(crate) count_any_reply: bool,
    /// The server's processes whose CPU time is reported.
    pub(crate) server_pid: Vec<u32>,
    /// The unmeasured setup (bindings or callees registered first), if the scenario has one.
    pub(crate) setup: Option<PhaseReport>,
    pub(crate) phases: Vec<PhaseReport>,
    /// Ramp: the highest offered rate of a sustained step.
    pub(crate) best_sustained_rate: Option<f64>,
    /// The sustained step with the most replies/s (ramp), or the only phase.
    pub(crate) best: Option<PhaseReport>,
    pub(crate) engine: EngineReport,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

/// One table row for a phase.
pub(crate) fn phase_line(p: &PhaseReport) -> String {
    format!(
        "{:>9} {:>10.0} {:>10.0} {:>8} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>9} {:>8} {:>3}",
        opt(p.offered_rate, 0),
        p.sent_rate,
        p.achieved_rps,
        p.failures,
        p.timeouts,
        p.unfinished,
        p.retransmissions,
        p.latency_us.p50,
        p.latency_us.p99,
        p.latency_us.p999,
        p.latency_us.max,
        opt(p.server_cpu_s_per_m_replies, 2),
        if p.sustained { "ok" } else { "NO" },
    )
}

/// Header matching [`phase_line`].
pub(crate) fn phase_header() -> String {
    format!(
        "{:>9} {:>10} {:>10} {:>8} {:>7} {:>7} {:>7} {:>8} {:>8} {:>8} {:>9} {:>8} {:>3}",
        "offered",
        "sent/s",
        "replies/s",
        "fail",
        "timeout",
        "unfin",
        "retx",
        "p50µs",
        "p99µs",
        "p99.9µs",
        "maxµs",
        "srvCPU/M",
        "ok"
    )
}

/// The human-readable summary.
pub(crate) fn human(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "sipload {} → {} ({} mode, {} UAs over {} source address(es), T1 {} ms, engine {}{})",
        r.scenario,
        r.target,
        r.mode,
        r.uas,
        r.sources,
        r.t1_ms,
        r.engine.kind,
        if r.count_any_reply {
            ", counting any reply"
        } else {
            ""
        }
    );
    if let Some(su) = &r.setup {
        let _ = writeln!(
            s,
            "setup: {} flows, {} succeeded, {} failed, {} timed out, {:.1} s",
            su.sent,
            su.successes,
            su.failures,
            su.timeouts + su.unfinished,
            su.send_seconds
        );
    }
    let _ = writeln!(s, "{}", phase_header());
    for p in &r.phases {
        let _ = writeln!(s, "{}", phase_line(p));
    }
    if let Some(b) = &r.best {
        let codes: Vec<String> = b.codes.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(
            s,
            "best: {:.0} replies/s ({} sent, {} replies, codes {{{}}}, {} unmatched, {} unexpected, {} send drops)",
            b.achieved_rps,
            b.sent,
            b.replies,
            codes.join(", "),
            b.unmatched,
            b.unexpected,
            b.send_drops
        );
        if b.requests != b.sent || b.answered > 0 || b.keepalives > 0 {
            let _ = writeln!(
                s,
                "      {} transactions for {} flows; answered {} requests from the edge, {} keepalives",
                b.requests, b.sent, b.answered, b.keepalives
            );
        }
        let _ = writeln!(
            s,
            "      latency µs p50 {} p90 {} p99 {} p99.9 {} max {} (mean {:.1})",
            b.latency_us.p50,
            b.latency_us.p90,
            b.latency_us.p99,
            b.latency_us.p999,
            b.latency_us.max,
            b.latency_us.mean
        );
        let _ = writeln!(
            s,
            "      CPU s: generator {} ({} per M replies), server {} ({} per M replies)",
            opt(b.generator_cpu_s, 2),
            opt(b.generator_cpu_s_per_m_replies, 2),
            opt(b.server_cpu_s, 2),
            opt(b.server_cpu_s_per_m_replies, 2)
        );
    }
    for (i, p) in r.phases.iter().enumerate() {
        if let Some(x) = &p.scenario {
            let _ = writeln!(s, "phase {i} {}: {x}", r.scenario);
        }
    }
    if r.mode == "ramp" {
        let _ = writeln!(
            s,
            "highest sustained offered rate (≤ 0.1% failed, ≤ 0.1% retransmitted, ≥ 99.9% answered in time): {}",
            opt(r.best_sustained_rate, 0)
        );
    }
    let e = &r.engine;
    let _ = writeln!(
        s,
        "generator engine: {} in, {} out, {} send drops, {} send errors, {} recv errors, {} submits, avg recv batch {:.1}",
        e.datagrams_in, e.datagrams_out, e.send_drops, e.send_errors, e.recv_errors, e.submits, e.avg_recv_batch
    );
    s
}
