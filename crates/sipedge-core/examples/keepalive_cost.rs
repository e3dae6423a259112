//! CPU cost of NAT keepalives, sans-IO: registers N NATed phones (default 1 000 000) on one
//! core, then drives M minutes (default 60) of virtual time tick by tick: every OPTIONS
//! ping the core sends is answered 20 ms later with a 200 OK (built outside the timed
//! region, as a phone would), and every binding refreshes its registration once per hour
//! (spread evenly, 278/s at 1M). Prints the core's time per ping (sweep + build + answer
//! parse and match + RTT), the implied share of one core at the target rate, what one
//! core could sustain, and the schedule checks (pings per binding, lateness).
//!
//! ```sh
//! nice -n 19 cargo run --release -p sipedge-core --example keepalive_cost [N] [MINUTES]
//! ```
//!
//! The kernel's UDP cost is not in here (no sockets): see PERFORMANCE.md "NAT keepalives".

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mimalloc::MiMalloc;
use sipedge_core::{Core, CoreConfig, LocalId, Millis, NatConfig, PingMode};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

const TICK: u64 = 10;
const ANSWER_DELAY_MS: u64 = 20;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Public source (behind a NAT) of phone `i`.
fn source(i: u32) -> SocketAddr {
    let ip = Ipv4Addr::new(
        20 + (i >> 22) as u8,
        (i >> 14) as u8,
        (i >> 6) as u8,
        1 + (i & 63) as u8,
    );
    SocketAddr::new(IpAddr::V4(ip), 1024 + (i % 50_000) as u16)
}

fn register(out: &mut String, i: u32, cseq: u32) {
    use std::fmt::Write as _;
    out.clear();
    let lan = Ipv4Addr::new(192, 168, (i >> 8) as u8, i as u8);
    let _ = write!(
        out,
        "REGISTER sip:sip.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP {lan}:5060;branch=z9hG4bK{i:08x}{cseq};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:user{i:07}@sip.example.com>;tag={i:x}\r\n\
To: <sip:user{i:07}@sip.example.com>\r\n\
Call-ID: {:016x}@{lan}\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: <sip:user{i:07}@{lan}:5060;transport=udp>\r\n\
Expires: 7200\r\n\
User-Agent: Yealink SIP-T46S 66.86.0.15\r\n\
Content-Length: 0\r\n\r\n",
        u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
}

/// The phone's 200 OK to one of our pings: Via, From, To, Call-ID, CSeq copied.
fn answer(out: &mut Vec<u8>, ping: &[u8]) {
    out.clear();
    out.extend_from_slice(b"SIP/2.0 200 OK\r\n");
    let mut lines = ping.split(|&b| b == b'\n').skip(1);
    for line in lines.by_ref() {
        if line == b"\r" {
            break;
        }
        let keep = [&b"Via:"[..], b"From:", b"To:", b"Call-ID:", b"CSeq:"]
            .iter()
            .any(|h| line.starts_with(h));
        if keep {
            if line.starts_with(b"To:") {
                out.extend_from_slice(&line[..line.len() - 1]);
                out.extend_from_slice(b";tag=8d7c6e\r\n");
            } else {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
        }
    }
    out.extend_from_slice(b"User-Agent: Yealink SIP-T46S 66.86.0.15\r\nContent-Length: 0\r\n\r\n");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let minutes: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let mut core = Core::new(CoreConfig {
        domains: vec!["sip.example.com".into()],
        nat: NatConfig {
            ping: PingMode::Timeout,
            advertise: vec!["198.51.100.1:5060".into()],
            ..NatConfig::default()
        },
        ..CoreConfig::default()
    });
    let mut req = String::with_capacity(1024);
    let before = rss_kib();
    for i in 0..n {
        register(&mut req, i, 1);
        core.handle_datagram(Millis(0), LocalId(0), source(i), req.as_bytes());
        while core.poll_transmit().is_some() {}
    }
    let after = rss_kib();
    assert_eq!(core.binding_count(), n as usize);
    assert_eq!(core.stats().nat.nated_registrations, u64::from(n));

    let end = minutes * 60_000;
    let refresh_every_ticks = (3_600_000 / TICK).max(1);
    let mut pings: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
    // Answers due in a later turn: (due ms, source, bytes).
    let mut inflight: std::collections::VecDeque<(u64, SocketAddr, Vec<u8>)> =
        std::collections::VecDeque::new();
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let (mut t_ping, mut t_answer, mut t_refresh) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut refreshed = 0u64;
    let mut next_refresh = 0u32;
    let mut cseq = vec![1u32; 0];
    cseq.resize(n as usize, 1);
    let wall = Instant::now();
    let mut now = TICK;
    while now <= end {
        // Answers that arrive in this turn.
        let t0 = Instant::now();
        while inflight.front().is_some_and(|(due, ..)| *due <= now) {
            let (_, from, bytes) = inflight.pop_front().expect("front");
            core.handle_datagram(Millis(now), LocalId(0), from, &bytes);
            spare.push(bytes);
        }
        t_answer += t0.elapsed();
        // REGISTER refreshes, spread over the hour.
        let quota = (u64::from(n) * (now / TICK) / refresh_every_ticks) as u32;
        while next_refresh < quota.min(n) {
            let i = next_refresh;
            cseq[i as usize] += 1;
            register(&mut req, i, cseq[i as usize]);
            let t0 = Instant::now();
            core.handle_datagram(Millis(now), LocalId(0), source(i), req.as_bytes());
            while core.poll_transmit().is_some() {}
            t_refresh += t0.elapsed();
            refreshed += 1;
            next_refresh += 1;
        }
        // The tick's pings.
        let t0 = Instant::now();
        core.handle_timeout(Millis(now));
        while let Some(t) = core.poll_transmit() {
            let mut b = spare.pop().unwrap_or_default();
            b.clear();
            b.extend_from_slice(t.data);
            pings.push((t.remote, b));
        }
        t_ping += t0.elapsed();
        // The phones answer (not timed: that is the phones' work).
        for (to, ping) in pings.drain(..) {
            let mut a = spare.pop().unwrap_or_default();
            answer(&mut a, &ping);
            spare.push(ping);
            inflight.push_back((now + ANSWER_DELAY_MS, to, a));
        }
        now += TICK;
    }
    let wall = wall.elapsed();
    let s = core.stats().nat.clone();
    let core_time = t_ping + t_answer;
    let per_ping_ns = core_time.as_nanos() as f64 / s.pings_sent.max(1) as f64;
    let rate = f64::from(n) / 60.0;
    println!("bindings: {n} (all NATed, ping = \"timeout\", interval 60 s), {minutes} min of virtual time");
    println!(
        "rss per binding: {:.1} bytes (registration, incl. ping state)",
        ((after - before) * 1024) as f64 / f64::from(n)
    );
    println!(
        "pings sent: {}, answered: {}, timed out: {}, deregistered: {}, stale: {}, max late ticks: {}",
        s.pings_sent, s.pings_answered, s.pings_timed_out, s.ping_deregistrations, s.ping_answers_stale, s.ping_max_late_ticks
    );
    println!(
        "refreshes: {refreshed} ({:.0} ns each)",
        t_refresh.as_nanos() as f64 / refreshed.max(1) as f64
    );
    println!(
        "core time per ping: {per_ping_ns:.0} ns (sweep + build {:.0} ns, answer parse + match {:.0} ns)",
        t_ping.as_nanos() as f64 / s.pings_sent.max(1) as f64,
        t_answer.as_nanos() as f64 / s.pings_answered.max(1) as f64,
    );
    println!(
        "at {rate:.0} pings/s (1 per binding per minute): {:.2}% of one core (core work only)",
        rate * per_ping_ns / 1e7
    );
    println!(
        "one core (core work only) sustains {:.0} answered pings/s = {:.1} M/min",
        1e9 / per_ping_ns,
        60.0 / per_ping_ns * 1e3
    );
    println!(
        "rtt p50 {} ms, p99 {} ms; wall {:.1} s",
        core.ping_rtt_quantile_ms(0.5),
        core.ping_rtt_quantile_ms(0.99),
        wall.as_secs_f64()
    );
}
