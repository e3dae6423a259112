//! Longest loop turns while the location table grows: registers N new AoRs (default
//! 4 000 000) through the real REGISTER path of one core, in turns of 64 datagrams as the
//! shard loop feeds them, times every turn and prints the slowest ones with the table size
//! at which they happened. A turn that costs far more than 64 REGISTERs is a stall (an index
//! rehash, a doubling vector); the shard loop would make every peer wait that long.
//!
//! ```sh
//! nice -n 19 cargo run --release -p sipedge-core --example table_growth_turns [N]
//! ```
//!
//! The journal records are produced and taken (`CoreConfig::journal`), as in a durable
//! shard; writing them and the snapshots are the shell's (measure those on the binary with
//! `sipedge_shard_longest_turn_seconds`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mimalloc::MiMalloc;
use sipedge_core::{Core, CoreConfig, LocalId, Millis};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Datagrams per turn (a typical receive batch under load).
const BATCH: u32 = 64;

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4_000_000);
    let expected: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let mut core = Core::new(CoreConfig {
        domains: vec!["sip.example.com".into()],
        journal: true,
        expected_bindings: expected,
        ..CoreConfig::default()
    });
    let mut req = String::with_capacity(1024);
    let mut send = |core: &mut Core, i: u32| {
        use std::fmt::Write as _;
        let ip = Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
        let port = 1024 + (i.wrapping_mul(7919) % 60000) as u16;
        req.clear();
        let _ = write!(
            req,
            "REGISTER sip:sip.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP {ip}:{port};branch=z9hG4bK{i:08x}1;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:user{i:07}@sip.example.com>;tag={i:x}\r\n\
To: <sip:user{i:07}@sip.example.com>\r\n\
Call-ID: {:016x}{:016x}@{ip}\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:user{i:07}@{ip}:{port};transport=udp;rinstance={:08x}>\r\n\
Expires: 3600\r\n\
User-Agent: Yealink SIP-T46S 66.86.0.15\r\n\
Content-Length: 0\r\n\r\n",
            u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            u64::from(i) ^ 0x5555,
            i.wrapping_mul(2_654_435_761),
        );
        let remote = SocketAddr::new(IpAddr::V4(ip), port);
        core.handle_datagram(Millis(1), LocalId(0), remote, req.as_bytes());
    };
    let mut turns: Vec<(Duration, usize)> = Vec::with_capacity((n / BATCH + 1) as usize);
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let t = Instant::now();
        let end = (i + BATCH).min(n);
        for k in i..end {
            send(&mut core, k);
        }
        while core.poll_transmit().is_some() {}
        while core.poll_journal().is_some() {}
        turns.push((t.elapsed(), core.binding_count()));
        i = end;
    }
    let total = start.elapsed();
    assert_eq!(
        core.binding_count(),
        n as usize,
        "every REGISTER made a binding"
    );
    let mut sorted: Vec<usize> = (0..turns.len()).collect();
    sorted.sort_by_key(|&k| std::cmp::Reverse(turns[k].0));
    let mut median: Vec<Duration> = turns.iter().map(|t| t.0).collect();
    median.sort();
    println!(
        "{n} new AoRs in {:.2} s ({:.0}/s), {} turns of {BATCH}, median turn {:.1} µs, expected_bindings {expected}",
        total.as_secs_f64(),
        f64::from(n) / total.as_secs_f64(),
        turns.len(),
        median[median.len() / 2].as_secs_f64() * 1e6
    );
    println!("slowest turns (ms at bindings):");
    for &k in sorted.iter().take(12) {
        println!(
            "  {:8.2} ms at {}",
            turns[k].0.as_secs_f64() * 1e3,
            turns[k].1
        );
    }
}
