//! Over-the-socket keepalive cost: a swarm of UA sockets on loopback registers N NATed
//! bindings (private Contacts) with a running sipedge, answers every OPTIONS ping with a
//! 200 OK and optionally refreshes registrations; then the edge's CPU (from
//! `/proc/PID/stat`) and its NAT counters (from `/metrics`) are sampled over a window.
//!
//! ```sh
//! sipedge --config cfg.toml --shards 1 &     # [nat] ping_interval_secs = 10, say
//! nice -n 19 cargo run --release --example keepalive_swarm -- \
//!     EDGE_ADDR ADMIN_ADDR EDGE_PID BINDINGS [SOCKETS] [WINDOW_SECS] [REFRESH_PER_SEC]
//! ```
//!
//! Bounded: every loop stops at its deadline (registration 120 s, then the window + 30 s).
//! Loopback only: UA sockets bind 127.0.80.10–127.0.80.73.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn register(me: SocketAddr, user: u32, cseq: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{user}-{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:u{user}@edge.test>;tag=t{user}\r\nTo: <sip:u{user}@edge.test>\r\nCall-ID: swarm-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:u{user}@10.{}.{}.{}:5060>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
        user >> 16 & 255,
        user >> 8 & 255,
        user & 255
    )
    .into_bytes()
}

/// The 200 OK to an OPTIONS (Via, From, To, Call-ID, CSeq copied).
fn ok_for(req: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(b"SIP/2.0 200 OK\r\n");
    for line in req.split(|&b| b == b'\n').skip(1) {
        if line == b"\r" || line.is_empty() {
            break;
        }
        if [&b"Via:"[..], b"From:", b"To:", b"Call-ID:", b"CSeq:"]
            .iter()
            .any(|h| line.starts_with(h))
        {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the state.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn metric(admin: SocketAddr, name: &str) -> u64 {
    // No admin endpoint (Kamailio): every metric reads 0.
    let Ok(mut s) = TcpStream::connect_timeout(&admin, Duration::from_secs(2)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 4 {
        eprintln!("usage: keepalive_swarm EDGE ADMIN PID BINDINGS [SOCKETS] [WINDOW_SECS] [REFRESH_PER_SEC]");
        std::process::exit(2);
    }
    let edge: SocketAddr = a[0].parse().unwrap();
    let admin: SocketAddr = a[1].parse().unwrap();
    // The edge's process ids, comma-separated (Kamailio runs several processes).
    let pids: Vec<u32> = a[2].split(',').map(|p| p.parse().unwrap()).collect();
    let n: u32 = a[3].parse().unwrap();
    let sockets: u32 = a.get(4).map_or(16, |s| s.parse().unwrap());
    let window: u64 = a.get(5).map_or(20, |s| s.parse().unwrap());
    let refresh_rate: u64 = a.get(6).map_or(0, |s| s.parse().unwrap());
    // REGISTERs outstanding per socket while registering (SWARM_WINDOW, default 64).
    let window_regs: usize = std::env::var("SWARM_WINDOW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let stop = Arc::new(AtomicBool::new(false));
    let registered = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(120 + window + 30);
    let mut threads = Vec::new();
    for k in 0..sockets {
        let sock = UdpSocket::bind(format!("127.0.80.{}:0", 10 + k % 64)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let (stop, registered, answered) = (stop.clone(), registered.clone(), answered.clone());
        threads.push(std::thread::spawn(move || {
            let me = sock.local_addr().unwrap();
            let users: Vec<u32> = (k..n).step_by(sockets as usize).collect();
            let mut buf = vec![0u8; 65536];
            let mut out = Vec::with_capacity(1024);
            let mut next = 0usize;
            let mut pending = 0usize;
            let mut cseq = 1u32;
            let mut last_refresh = Instant::now();
            let per_sock_rate = refresh_rate as f64 / f64::from(sockets);
            let mut refreshed = 0f64;
            while !stop.load(Relaxed) && Instant::now() < deadline {
                // Registration in windows of `window_regs` outstanding.
                while next < users.len() && pending < window_regs {
                    sock.send_to(&register(me, users[next], cseq), edge)
                        .unwrap();
                    next += 1;
                    pending += 1;
                }
                // Refreshes after registration, at the asked rate.
                if next == users.len() && per_sock_rate > 0.0 && pending == 0 {
                    let due = last_refresh.elapsed().as_secs_f64() * per_sock_rate;
                    if due >= 1.0 {
                        cseq += 1;
                        let u = users[refreshed as usize % users.len()];
                        sock.send_to(&register(me, u, cseq), edge).unwrap();
                        refreshed += 1.0;
                        last_refresh = Instant::now();
                    }
                }
                let Ok((len, from)) = sock.recv_from(&mut buf) else {
                    pending = 0; // lost replies do not stall the window
                    continue;
                };
                let d = &buf[..len];
                if d.starts_with(b"OPTIONS ") {
                    ok_for(d, &mut out);
                    let _ = sock.send_to(&out, from);
                    answered.fetch_add(1, Relaxed);
                } else if d.starts_with(b"SIP/2.0 200") {
                    pending = pending.saturating_sub(1);
                    if d.windows(20).any(|w| w == b"\r\nCSeq: 1 REGISTER\r\n") {
                        registered.fetch_add(1, Relaxed);
                    }
                }
            }
        }));
    }
    let reg_deadline = Instant::now() + Duration::from_secs(120);
    while registered.load(Relaxed) < u64::from(n) && Instant::now() < reg_deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let interval = Duration::from_secs(10);
    println!("registered: {} of {n}", registered.load(Relaxed));
    std::thread::sleep(interval.min(Duration::from_secs(window)));
    let names = [
        "sipedge_nat_pings_sent_total",
        "sipedge_nat_pings_answered_total",
        "sipedge_nat_pings_timed_out_total",
        "sipedge_nat_ping_deregistrations_total",
        "sipedge_requests_total",
        "sipedge_nat_ping_late_sweeps_total",
    ];
    let before: Vec<u64> = names.iter().map(|m| metric(admin, m)).collect();
    let cpu_all = || pids.iter().map(|&p| cpu_ticks(p)).sum::<u64>();
    let (c0, t0, a0) = (cpu_all(), Instant::now(), answered.load(Relaxed));
    std::thread::sleep(Duration::from_secs(window));
    let (c1, secs, a1) = (
        cpu_all(),
        t0.elapsed().as_secs_f64(),
        answered.load(Relaxed),
    );
    let after: Vec<u64> = names.iter().map(|m| metric(admin, m)).collect();
    stop.store(true, Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let hz = 100.0; // USER_HZ
    let cpu = (c1 - c0) as f64 / hz / secs;
    println!("window: {secs:.1} s");
    println!(
        "OPTIONS pings received and answered by the UAs: {:.0}/s",
        (a1 - a0) as f64 / secs
    );
    for (i, name) in names.iter().enumerate() {
        println!("{name}: {:.0}/s", (after[i] - before[i]) as f64 / secs);
    }
    println!("edge CPU: {:.1}% of one core", cpu * 100.0);
    if names.iter().all(|m| metric(admin, m) == 0) {
        return; // not a sipedge (Kamailio): no /metrics
    }
    println!(
        "late ticks (max since start): {}",
        metric(admin, "sipedge_nat_ping_max_late_ticks")
    );
}
