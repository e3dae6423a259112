//! `flood`: issue 17's overload offer. New REGISTERs (a new AoR, Call-ID, tag and branch per
//! request, `--aors N` makes the AoRs wrap) from `--uas` sockets over `--sources` addresses,
//! paced open loop at `--rate` for `--duration`; every reply is counted by its status code only
//! (200, 503, other) — no transaction state, no retransmissions, no latency (measure latency
//! beside the flood with a low-rate `register`). `--flood-method invite`: new INVITEs (a new
//! Call-ID per request) to the same AoRs — unregistered users, so the edge's answer is a
//! final error (404/480) or a 503 — each non-2xx final ACKed (RFC 3261 §17.1.1.3) so the
//! edge does not retransmit it; provisionals are counted apart.
//!
//! Cheap by construction: one prebuilt datagram per socket whose fixed-width decimal fields
//! (request number, AoR number) are rewritten in place before each send, batched sends and
//! receives through the same engine as the other scenarios.
//!
//! The report says what was really offered: `achieved_rate` (datagrams the kernel accepted per
//! second of sending) and `valid` = achieved ≥ 95 % of the asked rate. A run that is not valid
//! measured the generator, not the server, and its callers must not report a result.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;
use sipedge_rt::Engine;

use crate::pacer::{Pacer, TICK};

/// Width of the rewritten decimal fields: room for 10^12 requests.
const DIGITS: usize = 12;
/// Achieved offered rate below this share of the asked rate: the run is not valid.
pub(crate) const MIN_ACHIEVED: f64 = 0.95;

/// What `flood` is asked to do.
#[derive(Debug, Clone)]
pub(crate) struct FloodSpec {
    pub(crate) target: SocketAddr,
    pub(crate) domain: String,
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    /// Replies are still counted this long after sending ends.
    pub(crate) drain: Duration,
    /// AoRs wrap after this many (`None`: a new AoR per request).
    pub(crate) aors: Option<u64>,
    pub(crate) expires: u32,
    pub(crate) run_id: u32,
    pub(crate) max_burst: u64,
    /// What is flooded.
    pub(crate) method: FloodMethod,
}

/// `--flood-method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum FloodMethod {
    /// New-binding REGISTERs.
    #[default]
    Register,
    /// New INVITEs to unregistered users (each non-2xx final ACKed).
    Invite,
}

/// The flood's result (JSON).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub(crate) struct FloodReport {
    pub(crate) scenario: &'static str,
    pub(crate) offered_rate: f64,
    /// Datagrams the kernel accepted.
    pub(crate) sent: u64,
    /// Datagrams the engine could not hand to the kernel (full socket buffers or send slots).
    pub(crate) send_drops: u64,
    pub(crate) send_seconds: f64,
    pub(crate) achieved_rate: f64,
    /// `achieved_rate ≥ 95 % of offered_rate`.
    pub(crate) valid: bool,
    /// Replies by status code.
    pub(crate) ok: u64,
    pub(crate) unavailable: u64,
    pub(crate) other: u64,
    /// Datagrams that were not a SIP response.
    pub(crate) not_responses: u64,
    /// 200 OKs per second of sending.
    pub(crate) ok_rate: f64,
    /// 200 OKs received in each second since the start (the last entry includes the drain).
    pub(crate) ok_per_second: Vec<u64>,
    /// Final responses other than 503 in each second since the start: what the server
    /// completed (for INVITEs to unregistered users, their 404/480).
    pub(crate) done_per_second: Vec<u64>,
    /// Provisional responses (1xx), not counted in `other`.
    pub(crate) provisional: u64,
    /// ACKs sent for non-2xx finals to INVITE.
    pub(crate) acks: u64,
    /// CPU seconds of this process during the run.
    pub(crate) generator_cpu_seconds: Option<f64>,
    /// CPU seconds of `--server-pid` during the run.
    pub(crate) server_cpu_seconds: Option<f64>,
}

/// One socket's datagram and where its rewritten fields are.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub(crate) bytes: Vec<u8>,
    /// Offsets of the request number (branch, tag, Call-ID).
    seq_at: Vec<usize>,
    /// Offsets of the AoR number (From, To, Contact user).
    aor_at: Vec<usize>,
}

/// `n` as `DIGITS` decimal digits (wrapping past 10^DIGITS) into `out`.
fn put_digits(out: &mut [u8], mut n: u64) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

impl Template {
    /// A new-binding REGISTER (RFC 3261 §10.2) from `local` for the domain of `spec`.
    pub(crate) fn new(spec: &FloodSpec, local: SocketAddr) -> Template {
        const SEQ: &str = "\u{1}";
        const AOR: &str = "\u{2}";
        let host = match local.ip() {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        let (d, port, run, exp) = (&spec.domain, local.port(), spec.run_id, spec.expires);
        let text = if spec.method == FloodMethod::Invite {
            format!(
                "INVITE sip:fl{AOR}@{d} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bKfl{run:08x}{SEQ}\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:caller@{d}>;tag=fl{SEQ}\r\n\
                 To: <sip:fl{AOR}@{d}>\r\n\
                 Call-ID: {SEQ}-{run:08x}@flood\r\n\
                 CSeq: 1 INVITE\r\n\
                 Contact: <sip:caller@{host}:{port}>\r\n\
                 User-Agent: sipload-flood\r\n\
                 Content-Length: 0\r\n\r\n"
            )
        } else {
            Self::register_text(d, &host, port, run, exp)
        };
        Self::from_text(&text)
    }

    fn register_text(d: &str, host: &str, port: u16, run: u32, exp: u32) -> String {
        const SEQ: &str = "\u{1}";
        const AOR: &str = "\u{2}";
        format!(
            "REGISTER sip:{d} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {host}:{port};rport;branch=z9hG4bKfl{run:08x}{SEQ}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:fl{AOR}@{d}>;tag=fl{SEQ}\r\n\
             To: <sip:fl{AOR}@{d}>\r\n\
             Call-ID: {SEQ}-{run:08x}@flood\r\n\
             CSeq: 1 REGISTER\r\n\
             Contact: <sip:fl{AOR}@{host}:{port}>\r\n\
             Expires: {exp}\r\n\
             User-Agent: sipload-flood\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    /// The template of `text`, whose \u{1} / \u{2} mark the request / AoR numbers.
    fn from_text(text: &str) -> Template {
        let mut bytes = Vec::with_capacity(text.len() + 8 * DIGITS);
        let (mut seq_at, mut aor_at) = (Vec::new(), Vec::new());
        for c in text.bytes() {
            match c {
                1 | 2 => {
                    if c == 1 { &mut seq_at } else { &mut aor_at }.push(bytes.len());
                    bytes.extend_from_slice(&[b'0'; DIGITS]);
                }
                _ => bytes.push(c),
            }
        }
        Template {
            bytes,
            seq_at,
            aor_at,
        }
    }

    /// Rewrites the fields for request `seq` of AoR `aor`.
    pub(crate) fn set(&mut self, seq: u64, aor: u64) {
        for &at in &self.seq_at {
            put_digits(&mut self.bytes[at..at + DIGITS], seq);
        }
        for &at in &self.aor_at {
            put_digits(&mut self.bytes[at..at + DIGITS], aor);
        }
    }
}

/// The status code of a SIP response (`SIP/2.0 NNN`), if `data` is one.
pub(crate) fn status_of(data: &[u8]) -> Option<u16> {
    let rest = data.strip_prefix(b"SIP/2.0 ")?;
    let d = rest.get(..3)?;
    d.iter()
        .all(u8::is_ascii_digit)
        .then(|| d.iter().fold(0u16, |a, &b| a * 10 + u16::from(b - b'0')))
}

/// Adds one to `v[second]`.
fn bump(v: &mut Vec<u64>, second: usize) {
    if v.len() <= second {
        v.resize(second + 1, 0);
    }
    v[second] += 1;
}

/// Counts one reply into `r` (`t`: seconds since the start); true for a final response
/// that is not a 2xx (to be ACKed if it answers an INVITE).
fn count(r: &mut FloodReport, data: &[u8], second: usize) -> bool {
    let code = status_of(data);
    if code.is_some_and(|c| c >= 200 && c != 503) {
        bump(&mut r.done_per_second, second);
    }
    match code {
        Some(100..=199) => r.provisional += 1,
        Some(200) => {
            r.ok += 1;
            bump(&mut r.ok_per_second, second);
        }
        Some(503) => r.unavailable += 1,
        Some(_) => r.other += 1,
        None => r.not_responses += 1,
    }
    code.is_some_and(|c| c >= 300)
}

/// Runs the flood on `engine` (its sockets bound at `locals`).
pub(crate) fn run(
    spec: &FloodSpec,
    engine: &mut Engine,
    locals: &[SocketAddr],
    server_pid: &[u32],
) -> std::io::Result<FloodReport> {
    let mut templates: Vec<Template> = locals.iter().map(|&l| Template::new(spec, l)).collect();
    let mut r = FloodReport {
        scenario: "flood",
        offered_rate: spec.rate,
        ..FloodReport::default()
    };
    let gen0 = crate::procstat::cpu_seconds(None);
    let srv0 = crate::procstat::total_cpu_seconds(server_pid);
    let out0 = engine.stats().datagrams_out;
    let drops0 = engine.stats().send_drops + engine.stats().send_errors;
    let start = Instant::now();
    let end = start + spec.duration;
    let mut pacer = Pacer::new(spec.rate, start, u64::MAX, spec.max_burst);
    let (mut seq, mut ua) = (0u64, 0usize);
    let mut sending = true;
    let mut send_end = end;
    // ACKs for the INVITE finals a wait delivered, sent after it.
    let mut acks: Vec<(usize, Vec<u8>)> = Vec::new();
    loop {
        let now = Instant::now();
        if sending && now >= end {
            sending = false;
            send_end = now;
            engine.flush()?;
        }
        if !sending && now >= send_end + spec.drain {
            break;
        }
        if sending {
            let due = pacer.due(now);
            for _ in 0..due {
                let t = &mut templates[ua];
                t.set(seq, spec.aors.map_or(seq, |n| seq % n));
                if !engine.send(ua, spec.target, &t.bytes) {
                    // Counted in send_drops; the pacer does not wait for the generator.
                    let _ = engine.flush();
                }
                seq += 1;
                ua = (ua + 1) % templates.len();
            }
        }
        let second = now.saturating_duration_since(start).as_secs() as usize;
        let timeout = if sending {
            TICK
        } else {
            Duration::from_millis(20)
        };
        let invite = spec.method == FloodMethod::Invite;
        engine.wait(
            Some(timeout),
            || false,
            |d| {
                if count(&mut r, d.data, second) && invite {
                    let mut ack = Vec::new();
                    let parsed = sipedge_msg::Message::parse(d.data).ok();
                    if parsed
                        .and_then(|m| crate::scenario::error_ack(&mut ack, &m))
                        .is_some()
                    {
                        acks.push((d.socket, ack));
                    }
                }
            },
        )?;
        for (ua, ack) in acks.drain(..) {
            if engine.send(ua, spec.target, &ack) {
                r.acks += 1;
            }
        }
    }
    let stats = engine.stats();
    r.sent = stats.datagrams_out - out0;
    r.send_drops = stats.send_drops + stats.send_errors - drops0;
    r.send_seconds = send_end.saturating_duration_since(start).as_secs_f64();
    let secs = r.send_seconds.max(1e-9);
    r.achieved_rate = r.sent as f64 / secs;
    r.valid = r.achieved_rate >= MIN_ACHIEVED * spec.rate;
    r.ok_rate = r.ok as f64 / secs;
    let delta = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
    r.generator_cpu_seconds = delta(gen0, crate::procstat::cpu_seconds(None));
    r.server_cpu_seconds = delta(srv0, crate::procstat::total_cpu_seconds(server_pid));
    Ok(r)
}

/// The human-readable summary.
pub(crate) fn human(r: &FloodReport) -> String {
    format!(
        "flood: offered {:.0}/s, achieved {:.0}/s ({:.1} %){}; sent {} in {:.2} s ({} not sent)\n\
         replies: 200 {} ({:.0}/s), 503 {}, other {}, not a response {}\n",
        r.offered_rate,
        r.achieved_rate,
        100.0 * r.achieved_rate / r.offered_rate.max(1e-9),
        if r.valid {
            ""
        } else {
            " — NOT VALID: the generator offered less than 95 % of the asked rate"
        },
        r.sent,
        r.send_seconds,
        r.send_drops,
        r.ok,
        r.ok_rate,
        r.unavailable,
        r.other,
        r.not_responses
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> FloodSpec {
        FloodSpec {
            target: "127.0.0.1:5060".parse().expect("addr"),
            domain: "localhost".into(),
            rate: 1000.0,
            duration: Duration::from_secs(1),
            drain: Duration::ZERO,
            aors: None,
            expires: 60,
            run_id: 0xabc,
            max_burst: 64,
            method: FloodMethod::Register,
        }
    }

    #[test]
    fn invites_are_new_calls_that_parse() {
        let spec = FloodSpec {
            method: FloodMethod::Invite,
            ..spec()
        };
        let mut t = Template::new(&spec, "127.0.41.7:40000".parse().expect("addr"));
        t.set(42, 7);
        let m = sipedge_msg::Message::parse(&t.bytes).expect("parses");
        assert!(m.validate().is_ok(), "{:?}", m.validate());
        assert_eq!(m.method(), Some(sipedge_msg::Method::Invite));
        assert_eq!(
            m.request_uri_raw(),
            Some(&b"sip:fl000000000007@localhost"[..])
        );
        assert_eq!(m.call_id().ok(), Some(&b"000000000042-00000abc@flood"[..]));
    }

    #[test]
    fn each_request_is_a_new_registration_that_parses() {
        let mut t = Template::new(&spec(), "127.0.41.7:40000".parse().expect("addr"));
        t.set(42, 7);
        let text = String::from_utf8(t.bytes.clone()).expect("utf-8");
        assert!(
            text.contains("branch=z9hG4bKfl00000abc000000000042\r\n"),
            "{text}"
        );
        assert!(text.contains("Call-ID: 000000000042-00000abc@flood\r\n"));
        assert!(text.contains("Contact: <sip:fl000000000007@127.0.41.7:40000>\r\n"));
        let m = sipedge_msg::Message::parse(&t.bytes).expect("parses");
        assert_eq!(m.method(), Some(sipedge_msg::Method::Register));
        t.set(43, 8);
        assert!(String::from_utf8_lossy(&t.bytes).contains("tag=fl000000000043"));
        assert_eq!(t.bytes.len(), text.len(), "fixed width: rewritten in place");
    }

    #[test]
    fn replies_are_counted_by_status_code() {
        assert_eq!(status_of(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(status_of(b"SIP/2.0 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(status_of(b"SIP/2.0 2x0"), None);
        assert_eq!(status_of(b"OPTIONS sip:x SIP/2.0"), None);
        let mut r = FloodReport::default();
        assert!(!count(&mut r, b"SIP/2.0 200 OK", 2));
        assert!(count(&mut r, b"SIP/2.0 503 x", 0), "a final error: ACKed");
        assert!(count(&mut r, b"SIP/2.0 401 x", 0));
        assert!(!count(&mut r, b"SIP/2.0 100 Trying", 0));
        assert!(!count(&mut r, b"junk", 0));
        assert_eq!(
            (r.ok, r.unavailable, r.other, r.not_responses, r.provisional),
            (1, 1, 1, 1, 1)
        );
        assert_eq!(r.ok_per_second, [0, 0, 1]);
        assert_eq!(r.done_per_second, [1, 0, 1], "finals but 503");
    }
}
