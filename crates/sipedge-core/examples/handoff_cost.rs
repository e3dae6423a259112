//! Instructions per REGISTER handed across the mesh (ARCHITECTURE.md §1): a deterministic
//! run for `valgrind --tool=callgrind` of two shards' cores, the REGISTER arriving on shard 0
//! and owned by shard 1.
//!
//! N phones (default 20 000, the shape of `register_cost`) send a REGISTER to shard 0; those
//! whose AoR shard 1 owns (about half) are handed over. Phase `new_*`: first registration;
//! phase `refresh_*`: R refresh rounds. `*_receive` is shard 0's part (parse, validate, hand
//! off), `*_owner` shard 1's (`handle_shard_msg` to the 200 OK, drained).
//!
//! ```sh
//! nice -n 19 cargo build --release -p sipedge-core --example handoff_cost
//! nice -n 19 valgrind --tool=callgrind --callgrind-out-file=/tmp/h.out \
//!     target/release/examples/handoff_cost 20000 3
//! callgrind_annotate --inclusive=yes /tmp/h.out | grep handoff_cost::
//! ```
//!
//! Divide the inclusive counts by the hand-offs the program prints.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use mimalloc::MiMalloc;
use sipedge_core::{Core, CoreConfig, LocalId, Millis, ShardId, ShardMsg};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn source(k: u32) -> SocketAddr {
    let ip = Ipv4Addr::new(127, 41, (k >> 8) as u8, k as u8);
    SocketAddr::new(IpAddr::V4(ip), 5060 + (k % 1000) as u16)
}

fn register(out: &mut Vec<u8>, k: u32, cseq: u32) {
    use std::io::Write as _;
    out.clear();
    let local = source(k);
    let _ = write!(
        out,
        "REGISTER sip:localhost SIP/2.0\r\n\
Via: SIP/2.0/UDP {local};rport;branch=z9hG4bKsl{k:x}.{cseq:x}\r\n\
Max-Forwards: 70\r\n\
From: <sip:sl{k}@localhost>;tag=r{k}\r\n\
To: <sip:sl{k}@localhost>\r\n\
Call-ID: {k}-1a2b@sipload\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: <sip:sl{k}@{local}>\r\n\
Expires: 3600\r\n\
User-Agent: sipload\r\n\
Content-Length: 0\r\n\r\n"
    );
}

fn core(shard: u16) -> Core {
    Core::new(CoreConfig {
        shard: ShardId(shard),
        shards: 2,
        domains: vec!["localhost".into()],
        seed: 7,
        ..CoreConfig::default()
    })
}

/// The REGISTERs of `phones` at `cseq`, built outside the measured functions.
fn round(phones: &[u32], cseq: u32) -> Vec<(SocketAddr, Vec<u8>)> {
    phones
        .iter()
        .map(|&k| {
            let mut buf = Vec::new();
            register(&mut buf, k, cseq);
            (source(k), buf)
        })
        .collect()
}

/// Shard 0 receives `reqs`; returns the hand-offs to shard 1.
#[inline(always)]
fn receive(c: &mut Core, reqs: &[(SocketAddr, Vec<u8>)]) -> Vec<ShardMsg> {
    let mut out = Vec::with_capacity(reqs.len());
    for (from, req) in reqs {
        c.handle_datagram(Millis(1000), LocalId(0), *from, req);
        while let Some((to, m)) = c.poll_shard_msg() {
            assert_eq!(to, ShardId(1));
            out.push(m);
        }
        while c.poll_transmit().is_some() {}
    }
    out
}

/// Shard 1 handles the hand-offs; returns the replies sent.
#[inline(always)]
fn owner(c: &mut Core, msgs: Vec<ShardMsg>) -> u64 {
    let mut replies = 0;
    for m in msgs {
        c.handle_shard_msg(Millis(1000), ShardId(0), m);
        while let Some(t) = c.poll_transmit() {
            black_box(t.data);
            replies += 1;
        }
    }
    replies
}

#[inline(never)]
fn new_receive(c: &mut Core, reqs: &[(SocketAddr, Vec<u8>)]) -> Vec<ShardMsg> {
    black_box(1);
    receive(c, reqs)
}

#[inline(never)]
fn new_owner(c: &mut Core, msgs: Vec<ShardMsg>) -> u64 {
    black_box(1);
    owner(c, msgs)
}

#[inline(never)]
fn refresh_receive(c: &mut Core, reqs: &[(SocketAddr, Vec<u8>)]) -> Vec<ShardMsg> {
    black_box(2);
    receive(c, reqs)
}

#[inline(never)]
fn refresh_owner(c: &mut Core, msgs: Vec<ShardMsg>) -> u64 {
    black_box(2);
    owner(c, msgs)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let rounds: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let (mut a, mut b) = (core(0), core(1));
    let mut buf = Vec::with_capacity(512);
    // Which phones shard 1 owns: those shard 0 hands off (found on a scratch core).
    let mut probe = core(0);
    let phones: Vec<u32> = (0..n)
        .filter(|&k| {
            register(&mut buf, k, 1);
            probe.handle_datagram(Millis(0), LocalId(0), source(k), &buf);
            while probe.poll_transmit().is_some() {}
            probe.poll_shard_msg().is_some()
        })
        .collect();
    drop(probe);
    let reqs = round(&phones, 1);
    let msgs = new_receive(&mut a, &reqs);
    let handed = msgs.len();
    let mut replies = new_owner(&mut b, msgs);
    for r in 0..rounds {
        let reqs = round(&phones, 2 + r);
        let msgs = refresh_receive(&mut a, &reqs);
        replies += refresh_owner(&mut b, msgs);
    }
    println!(
        "phones {n}, handed off per round {handed}, rounds 1 + {rounds}, replies {replies}, bindings on shard 1 {}",
        b.binding_count()
    );
}
