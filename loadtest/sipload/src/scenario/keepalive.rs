//! `keepalive`: the setup registers `--aors` AoRs (default one per UA); measured phases send
//! nothing. Each UA answers the edge's OPTIONS pings (RFC 3261 §11.2: 200 OK) and counts its
//! keepalive datagrams (CRLF, RFC 5626 §3.5.1, or nathelper's NUL bytes). A phase reports how
//! many pings each UA and each binding got per ping interval, how many UAs were never pinged,
//! and the gap between consecutive pings of a UA — what decides whether a NAT binding stays
//! open.
//!
//! The round-trip time of a ping is the edge's own measurement (it sends the ping and reads
//! our reply); from the UA side the generator reports the gaps, and its own answer time is one
//! loop turn.

use std::time::Instant;

use hdrhistogram::Histogram;
use serde_json::json;
use sipedge_msg::{Message, Method};

use super::register::{RegMode, Register};
use super::sip::{self, ReplyExtras};
use super::{Params, Scenario, UaCtx, Verdict};

/// The keepalive scenario.
#[derive(Debug)]
pub(crate) struct Keepalive {
    reg: Register,
    uas: usize,
    aors: u64,
    interval_s: f64,
    window_s: f64,
    in_setup: bool,
    /// Per UA: pings this phase, and when the last one arrived.
    pings: Vec<u32>,
    last: Vec<Option<Instant>>,
    options: u64,
    crlf: u64,
    /// Gaps between consecutive pings of a UA, ms.
    gaps: Histogram<u64>,
    /// Per binding (AoR `sl<k>` named in the ping's Request-URI): when its last OPTIONS ping
    /// arrived, and the gaps between its pings, ms.
    binding_last: Vec<Option<Instant>>,
    binding_gaps: Histogram<u64>,
}

impl Keepalive {
    pub(crate) fn new(p: &Params) -> Keepalive {
        let aors = p.aors.unwrap_or(p.uas as u64);
        let mut rp = p.clone();
        rp.aors = Some(aors);
        Keepalive {
            reg: Register::new(RegMode::Refresh, &rp),
            uas: p.uas,
            aors,
            interval_s: p.ping_interval_s,
            window_s: 0.0,
            in_setup: true,
            pings: vec![0; p.uas],
            last: vec![None; p.uas],
            options: 0,
            crlf: 0,
            gaps: Histogram::new_with_bounds(1, 3_600_000, 3)
                .expect("1 ms..1 h at 3 significant digits is a valid histogram"),
            binding_last: vec![None; usize::try_from(aors).unwrap_or(0).min(1 << 26)],
            binding_gaps: Histogram::new_with_bounds(1, 3_600_000, 3)
                .expect("1 ms..1 h at 3 significant digits is a valid histogram"),
        }
    }

    /// An OPTIONS ping for binding `k` (the edge pings the registered Contact,
    /// `sip:sl<k>@<UA address>`).
    fn binding_ping(&mut self, k: usize) {
        let now = Instant::now();
        let Some(last) = self.binding_last.get_mut(k) else {
            return;
        };
        if let Some(t) = *last {
            let ms = now.saturating_duration_since(t).as_millis();
            self.binding_gaps
                .saturating_record(u64::try_from(ms).unwrap_or(u64::MAX).max(1));
        }
        *last = Some(now);
    }

    fn ping(&mut self, ua: usize) {
        let now = Instant::now();
        if let Some(t) = self.last[ua] {
            let ms = now.saturating_duration_since(t).as_millis();
            self.gaps
                .saturating_record(u64::try_from(ms).unwrap_or(u64::MAX).max(1));
        }
        self.last[ua] = Some(now);
        self.pings[ua] += 1;
    }
}

impl Scenario for Keepalive {
    fn name(&self) -> &'static str {
        "keepalive"
    }

    fn setup_flows(&self) -> u64 {
        self.aors
    }

    fn end_setup(&mut self) {
        self.in_setup = false;
        self.reg.end_setup();
    }

    fn passive(&self) -> bool {
        !self.in_setup
    }

    fn write_request(&mut self, ua: &UaCtx<'_>, out: &mut Vec<u8>) -> bool {
        self.in_setup && self.reg.write_request(ua, out)
    }

    fn on_final(
        &mut self,
        ua: &UaCtx<'_>,
        msg: &Message<'_>,
        next: &mut Vec<u8>,
        extra: &mut Vec<u8>,
    ) -> Verdict {
        self.reg.on_final(ua, msg, next, extra)
    }

    fn on_request(&mut self, ua: &UaCtx<'_>, msg: &Message<'_>, out: &mut Vec<Vec<u8>>) -> bool {
        if msg.method() != Some(Method::Options) {
            return false;
        }
        let Some(reply) = sip::response(msg, 200, "OK", ReplyExtras::default()) else {
            return false;
        };
        out.push(reply);
        self.options += 1;
        self.ping(ua.index);
        let binding = msg
            .request_uri()
            .ok()
            .and_then(|u| {
                u.user()
                    .and_then(|n| n.strip_prefix(b"sl"))
                    .map(<[u8]>::to_vec)
            })
            .and_then(|d| std::str::from_utf8(&d).ok()?.parse::<usize>().ok());
        if let Some(k) = binding {
            self.binding_ping(k);
        }
        true
    }

    fn on_keepalive(&mut self, ua: usize) -> bool {
        self.crlf += 1;
        self.ping(ua);
        true
    }

    fn begin_phase(&mut self, window_s: f64) {
        self.window_s = window_s;
        self.pings.iter_mut().for_each(|p| *p = 0);
        self.options = 0;
        self.crlf = 0;
        self.gaps.reset();
        self.binding_gaps.reset();
    }

    fn phase_extra(&mut self) -> Option<serde_json::Value> {
        let intervals = (self.window_s / self.interval_s).max(1e-9);
        let min = self.pings.iter().copied().min().unwrap_or(0);
        let max = self.pings.iter().copied().max().unwrap_or(0);
        let total: u64 = self.pings.iter().map(|&p| u64::from(p)).sum();
        let never = self.pings.iter().filter(|&&p| p == 0).count();
        let per_ua = |n: f64| n / intervals;
        Some(json!({
            "window_s": self.window_s,
            "ping_interval_s": self.interval_s,
            "uas": self.uas,
            "bindings": self.aors,
            "options_pings": self.options,
            "crlf_pings": self.crlf,
            "uas_never_pinged": never,
            "pings_per_ua_per_interval": {
                "min": per_ua(f64::from(min)),
                "mean": per_ua(total as f64 / self.uas.max(1) as f64),
                "max": per_ua(f64::from(max)),
            },
            "pings_per_binding_per_interval": total as f64 / self.aors.max(1) as f64 / intervals,
            "gap_ms": {
                "count": self.gaps.len(),
                "p50": self.gaps.value_at_quantile(0.5),
                "p99": self.gaps.value_at_quantile(0.99),
                "max": self.gaps.max(),
            },
            "binding_gap_ms": {
                "count": self.binding_gaps.len(),
                "p50": self.binding_gaps.value_at_quantile(0.5),
                "p99": self.binding_gaps.value_at_quantile(0.99),
                "max": self.binding_gaps.max(),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::testkit::{ctx, params};

    #[test]
    fn registers_then_answers_pings_and_counts_them() {
        let mut k = Keepalive::new(&params(2));
        assert_eq!(k.setup_flows(), 2);
        assert!(!k.passive());
        let mut out = Vec::new();
        assert!(k.write_request(&ctx(0, "z9hG4bKsl0.0"), &mut out));
        let m = Message::parse(&out).expect("REGISTER");
        assert_eq!(m.method(), Some(Method::Register));
        k.end_setup();
        assert!(k.passive());
        out.clear();
        assert!(
            !k.write_request(&ctx(1, "b"), &mut out),
            "nothing is sent once measuring"
        );
        k.begin_phase(2.0);
        let ping = b"OPTIONS sip:sl0@127.0.41.1:4000 SIP/2.0\r\n\
            Via: SIP/2.0/UDP 127.0.40.1:5060;branch=z9hG4bKping1\r\nFrom: <sip:ping@edge>;tag=p\r\n\
            To: <sip:sl0@127.0.41.1:4000>\r\nCall-ID: p1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let pm = Message::parse(ping).expect("ping parses");
        let mut replies = Vec::new();
        assert!(k.on_request(&ctx(0, "-"), &pm, &mut replies));
        assert!(k.on_request(&ctx(0, "-"), &pm, &mut replies));
        let r = Message::parse(&replies[0]).expect("reply parses");
        assert_eq!(r.status(), Some(200));
        assert_eq!(
            r.top_via().expect("via").branch(),
            Some(&b"z9hG4bKping1"[..])
        );
        assert!(k.on_keepalive(0));
        assert!(k.on_keepalive(0));
        let x = k.phase_extra().expect("a report");
        assert_eq!(x["options_pings"], 2);
        assert_eq!(x["crlf_pings"], 2);
        assert_eq!(x["uas_never_pinged"], 1, "UA 1 got no ping");
        assert_eq!(
            x["pings_per_ua_per_interval"]["max"], 2.0,
            "4 pings over 2 intervals"
        );
        assert_eq!(x["gap_ms"]["count"], 3);
        assert_eq!(
            x["binding_gap_ms"]["count"], 1,
            "binding sl0 was pinged twice"
        );
        // Anything but OPTIONS is not expected here.
        let bye = String::from_utf8_lossy(ping).replace("OPTIONS", "BYE");
        let bm = Message::parse(bye.as_bytes()).expect("parses");
        assert!(!k.on_request(&ctx(0, "-"), &bm, &mut replies));
    }
}
