//! Counters and the latency histogram of one phase, and the report they become.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency recorded, µs (beyond this the histogram saturates); above Timer F anyway.
const MAX_LATENCY_US: u64 = 120_000_000;
/// Share of failures + timeouts a sustained step may have (0.1 %).
pub(crate) const SUSTAINED_MAX_FAILURE_RATIO: f64 = 0.001;
/// Share of requests a sustained step may retransmit (0.1 %): a retransmission means a request
/// or its reply was lost, or delayed past T1, which an edge that keeps up does not do.
pub(crate) const SUSTAINED_MAX_RETX_RATIO: f64 = 0.001;
/// Share of the offered rate a sustained step must answer within its window (99.9 %).
pub(crate) const SUSTAINED_MIN_REPLY_RATIO: f64 = 0.999;

/// Raw counts of one phase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Flows started by the pacer (an OPTIONS, a REGISTER with its authenticated retry, a
    /// whole call); not counting retransmissions.
    pub(crate) sent: u64,
    /// Client transactions started: flows plus their follow-up requests.
    pub(crate) requests: u64,
    pub(crate) retransmissions: u64,
    /// Final responses (or echoes, with `--count-any-reply`) matched to a request.
    pub(crate) replies: u64,
    /// Flows that ended (success or failure) while the phase was still sending.
    pub(crate) replies_in_window: u64,
    pub(crate) provisional: u64,
    pub(crate) successes: u64,
    /// Final responses the scenario judged failures.
    pub(crate) failures: u64,
    /// Timer F fired without a final response.
    pub(crate) timeouts: u64,
    /// Still without a final response when the phase's drain time ran out.
    pub(crate) unfinished: u64,
    /// Well-formed replies that match no live request: duplicates (replies to retransmissions),
    /// replies past a timeout, or foreign branches.
    pub(crate) unmatched: u64,
    /// Datagrams that are not SIP we expect: unparseable, truncated, requests from the peer.
    pub(crate) unexpected: u64,
    /// Requests from the edge that a UA answered (or, for ACK, took).
    pub(crate) answered: u64,
    /// Keepalive datagrams (CRLF or NUL only) the scenario counted.
    pub(crate) keepalives: u64,
    /// Sends the engine refused (no free send slot); such a request waits for its retransmit.
    pub(crate) send_drops: u64,
    /// Final responses by code; echoes of our own requests count under code 0.
    pub(crate) codes: BTreeMap<u16, u64>,
}

impl Counters {
    /// Failed transactions: failure responses, timeouts and unfinished ones.
    pub(crate) fn failed(&self) -> u64 {
        self.failures + self.timeouts + self.unfinished
    }
}

/// Counters plus latency of one phase.
#[derive(Debug, Clone)]
pub(crate) struct PhaseStats {
    pub(crate) c: Counters,
    pub(crate) latency: Histogram<u64>,
    /// INVITE transactions only (INVITE → final response), for `call`.
    pub(crate) invite_latency: Histogram<u64>,
}

impl Default for PhaseStats {
    fn default() -> Self {
        PhaseStats {
            c: Counters::default(),
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("1 µs..120 s at 3 significant digits is a valid histogram"),
            invite_latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("1 µs..120 s at 3 significant digits is a valid histogram"),
        }
    }
}

impl PhaseStats {
    /// Records a final response's latency (of an INVITE transaction: also in
    /// `invite_latency`).
    pub(crate) fn record_latency(&mut self, latency: Duration, invite: bool) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.latency.saturating_record(us);
        if invite {
            self.invite_latency.saturating_record(us);
        }
    }
}

/// Latency percentiles, µs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Latency {
    pub(crate) count: u64,
    pub(crate) mean: f64,
    pub(crate) p50: u64,
    pub(crate) p90: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
}

impl Latency {
    pub(crate) fn of(h: &Histogram<u64>) -> Latency {
        Latency {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// One phase (a whole run, or one ramp step) as reported.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PhaseReport {
    /// Offered requests/s; `null` in closed-loop mode.
    pub(crate) offered_rate: Option<f64>,
    /// Requests kept in flight in closed-loop mode.
    pub(crate) outstanding: Option<u64>,
    /// Length of the sending window, s.
    pub(crate) send_seconds: f64,
    /// Flows started.
    pub(crate) sent: u64,
    /// Client transactions started (flows and their follow-ups).
    pub(crate) requests: u64,
    /// `sent / send_seconds`: what the generator actually offered.
    pub(crate) sent_rate: f64,
    pub(crate) replies: u64,
    /// Flows ended during the sending window per second of it (for `options` and `register`,
    /// replies/s).
    pub(crate) achieved_rps: f64,
    pub(crate) successes: u64,
    pub(crate) failures: u64,
    pub(crate) timeouts: u64,
    pub(crate) unfinished: u64,
    /// (failures + timeouts + unfinished) / sent.
    pub(crate) failure_ratio: f64,
    pub(crate) retransmissions: u64,
    pub(crate) provisional: u64,
    pub(crate) unmatched: u64,
    pub(crate) unexpected: u64,
    pub(crate) send_drops: u64,
    /// Requests from the edge our UAs answered.
    pub(crate) answered: u64,
    /// Keepalive datagrams received.
    pub(crate) keepalives: u64,
    /// What the scenario measured itself (keepalive ping counts); `null` otherwise.
    pub(crate) scenario: Option<serde_json::Value>,
    /// Final responses by code ("echo" for echoed requests with `--count-any-reply`).
    pub(crate) codes: BTreeMap<String, u64>,
    pub(crate) latency_us: Latency,
    /// INVITE → final response only (`call`); `null` when the phase sent no INVITE.
    pub(crate) invite_latency_us: Option<Latency>,
    pub(crate) generator_cpu_s: Option<f64>,
    pub(crate) server_cpu_s: Option<f64>,
    pub(crate) server_cpu_s_per_m_replies: Option<f64>,
    pub(crate) generator_cpu_s_per_m_replies: Option<f64>,
    /// Failures ≤ 0.1 % and retransmissions ≤ 0.1 % of sent, and (open loop) achieved ≥
    /// 99.9 % of offered.
    pub(crate) sustained: bool,
}

/// CPU seconds per million replies.
fn per_million(cpu: Option<f64>, replies: u64) -> Option<f64> {
    cpu.filter(|_| replies > 0)
        .map(|c| c * 1e6 / replies as f64)
}

impl PhaseReport {
    /// Builds the report of a phase.
    pub(crate) fn new(
        s: &PhaseStats,
        offered_rate: Option<f64>,
        outstanding: Option<u64>,
        send_time: Duration,
        generator_cpu_s: Option<f64>,
        server_cpu_s: Option<f64>,
    ) -> PhaseReport {
        let c = &s.c;
        let secs = send_time.as_secs_f64().max(1e-9);
        let achieved = c.replies_in_window as f64 / secs;
        let failure_ratio = if c.sent == 0 {
            0.0
        } else {
            c.failed() as f64 / c.sent as f64
        };
        let retx_ratio = c.retransmissions as f64 / c.requests.max(c.sent).max(1) as f64;
        let sustained = c.sent > 0
            && failure_ratio <= SUSTAINED_MAX_FAILURE_RATIO
            && retx_ratio <= SUSTAINED_MAX_RETX_RATIO
            && offered_rate.is_none_or(|r| achieved >= SUSTAINED_MIN_REPLY_RATIO * r);
        PhaseReport {
            offered_rate,
            outstanding,
            send_seconds: secs,
            sent: c.sent,
            requests: c.requests,
            sent_rate: c.sent as f64 / secs,
            replies: c.replies,
            achieved_rps: achieved,
            successes: c.successes,
            failures: c.failures,
            timeouts: c.timeouts,
            unfinished: c.unfinished,
            failure_ratio,
            retransmissions: c.retransmissions,
            provisional: c.provisional,
            unmatched: c.unmatched,
            unexpected: c.unexpected,
            send_drops: c.send_drops,
            answered: c.answered,
            keepalives: c.keepalives,
            scenario: None,
            codes: c
                .codes
                .iter()
                .map(|(code, n)| {
                    (
                        if *code == 0 {
                            "echo".into()
                        } else {
                            code.to_string()
                        },
                        *n,
                    )
                })
                .collect(),
            latency_us: Latency::of(&s.latency),
            invite_latency_us: (!s.invite_latency.is_empty())
                .then(|| Latency::of(&s.invite_latency)),
            generator_cpu_s,
            server_cpu_s,
            server_cpu_s_per_m_replies: per_million(server_cpu_s, c.replies),
            generator_cpu_s_per_m_replies: per_million(generator_cpu_s, c.replies),
            sustained,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(sent: u64, in_window: u64, failed: u64) -> PhaseStats {
        let mut s = PhaseStats::default();
        s.c.sent = sent;
        s.c.replies = sent - failed;
        s.c.replies_in_window = in_window;
        s.c.timeouts = failed;
        s
    }

    #[test]
    fn a_step_is_sustained_only_within_both_thresholds() {
        let secs = Duration::from_secs(5);
        let ok = PhaseReport::new(
            &stats(500_000, 499_600, 500),
            Some(100_000.0),
            None,
            secs,
            None,
            None,
        );
        assert!(ok.sustained);
        assert!((ok.achieved_rps - 99_920.0).abs() < 1e-6);
        let lossy = PhaseReport::new(
            &stats(500_000, 499_600, 501),
            Some(100_000.0),
            None,
            secs,
            None,
            None,
        );
        assert!(!lossy.sustained, "0.1002 % failed");
        let slow = PhaseReport::new(
            &stats(500_000, 499_000, 0),
            Some(100_000.0),
            None,
            secs,
            None,
            None,
        );
        assert!(!slow.sustained, "answered 99.8 % of offered in the window");
        let mut retx = stats(500_000, 500_000, 0);
        retx.c.retransmissions = 501;
        let retx = PhaseReport::new(&retx, Some(100_000.0), None, secs, None, None);
        assert!(!retx.sustained, "0.1002 % retransmitted");
        let closed = PhaseReport::new(&stats(500_000, 1, 0), None, Some(256), secs, None, None);
        assert!(closed.sustained, "closed loop has no offered rate to meet");
    }

    #[test]
    fn cpu_per_million_replies_and_codes() {
        let mut s = stats(2_000_000, 2_000_000, 0);
        s.c.codes.insert(200, 1_999_000);
        s.c.codes.insert(0, 1000);
        let r = PhaseReport::new(
            &s,
            None,
            Some(1),
            Duration::from_secs(1),
            Some(3.0),
            Some(9.0),
        );
        assert_eq!(r.server_cpu_s_per_m_replies, Some(4.5));
        assert_eq!(r.generator_cpu_s_per_m_replies, Some(1.5));
        assert_eq!(r.codes.get("echo"), Some(&1000));
        assert_eq!(r.codes.get("200"), Some(&1_999_000));
    }

    #[test]
    fn latency_percentiles_come_from_the_histogram() {
        let mut s = PhaseStats::default();
        for us in 1..=1000u64 {
            s.record_latency(Duration::from_micros(us), false);
        }
        let l = Latency::of(&s.latency);
        assert_eq!(l.count, 1000);
        assert_eq!(l.p50, 500);
        assert_eq!(l.p99, 990);
        assert_eq!(l.max, 1000);
    }
}
