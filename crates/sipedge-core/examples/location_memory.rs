//! Resident memory per binding: registers N typical phones (default 1 000 000) through the
//! real REGISTER path of one core and prints the RSS growth per binding.
//!
//! ```sh
//! nice -n 19 cargo run --release -p sipedge-core --example location_memory [N]
//! ```
//!
//! A typical phone: AoR `sip:user0001234@sip.example.com` (31 B), contact
//! `<sip:user0001234@10.x.y.z:port;transport=udp;rinstance=…>` (~60 B), a 45-byte Call-ID,
//! one of a few User-Agents, a distinct source address. Every field the registrar records
//! is stored (source, socket, shard, UA, Call-ID/CSeq, times, q), plus its expiry timer.
//! Runs with mimalloc, the binary's allocator.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use mimalloc::MiMalloc;
use sipedge_core::{Core, CoreConfig, LocalId, Millis};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

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

const AGENTS: [&str; 4] = [
    "Yealink SIP-T46S 66.86.0.15",
    "Grandstream GXP2170 1.0.11.23",
    "PolycomVVX-VVX_411-UA/6.3.1.8427",
    "Linphone/5.2.0 (belle-sip/5.2.0)",
];

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut core = Core::new(CoreConfig {
        domains: vec!["sip.example.com".into()],
        ..CoreConfig::default()
    });
    let mut req = String::with_capacity(1024);
    let mut send = |core: &mut Core, i: u32, cseq: u32| {
        use std::fmt::Write as _;
        let ip = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
        let port = 1024 + (i.wrapping_mul(7919) % 60000) as u16;
        req.clear();
        let _ = write!(
            req,
            "REGISTER sip:sip.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{i:08x}{cseq};rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:user{i:07}@sip.example.com>;tag={i:x}\r\n\
To: <sip:user{i:07}@sip.example.com>\r\n\
Call-ID: {:016x}{:016x}@{ip}\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: <sip:user{i:07}@{ip}:{port};transport=udp;rinstance={:08x}>\r\n\
Expires: 3600\r\n\
User-Agent: {}\r\n\
Content-Length: 0\r\n\r\n",
            u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            u64::from(i) ^ 0x5555,
            i.wrapping_mul(2_654_435_761),
            AGENTS[i as usize % AGENTS.len()],
        );
        let remote = SocketAddr::new(IpAddr::V4(ip), port);
        core.handle_datagram(Millis(1), LocalId(0), remote, req.as_bytes());
        while core.poll_transmit().is_some() {}
    };
    // Warm the reused buffers before the first reading.
    send(&mut core, u32::MAX, 1);
    let before = rss_kib();
    let start = Instant::now();
    for i in 0..n {
        send(&mut core, i, 1);
    }
    let inserted = start.elapsed();
    let after = rss_kib();
    assert_eq!(
        core.binding_count(),
        n as usize + 1,
        "every REGISTER made a binding"
    );
    let start = Instant::now();
    for i in 0..n {
        send(&mut core, i, 2);
    }
    let refreshed = start.elapsed();
    assert_eq!(core.stats().bindings_refreshed, u64::from(n));
    let per = (after.saturating_sub(before) * 1024) as f64 / f64::from(n);
    println!("bindings: {n}");
    println!("rss before: {before} KiB, after: {after} KiB");
    println!("rss per binding: {per:.1} bytes");
    println!(
        "new REGISTERs: {:.0}/s, refreshes: {:.0}/s (one core, parse + registrar + 200 OK)",
        f64::from(n) / inserted.as_secs_f64(),
        f64::from(n) / refreshed.as_secs_f64()
    );
}
