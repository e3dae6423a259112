//! CPU time per digest verification and per authenticated registration, measured as the
//! thread's on-CPU time (`/proc/thread-self/schedstat`), so time spent preempted on a busy
//! shared VM is not counted (cache effects of neighbours still are). Same requests as
//! `benches/digest.rs`. The scheduler's accounting may tick coarsely (4 ms here: 122 ns per
//! verification at 32 768 per batch), so a second column gives the fastest slice of
//! [`SLICE`] operations timed by the wall clock: a slice that was not preempted shows the
//! cost itself, and on a busy machine the minimum is the number least moved by neighbours.
//!
//! Run: `nice -n 19 cargo run --release -p sipedge-core --example digest_cpu`

use std::net::SocketAddr;

use sipedge_core::auth::{Algorithm, AuthOutcome, NonceKey};
use sipedge_core::{LocalId, Millis};
use sipedge_msg::Message;

#[path = "../benches/support/digest.rs"]
mod support;
use support::{core, creds, invite, register, REALM, SECRET, USERS};

/// Operations per sample: long enough (tens of ms) that the scheduler's accounting
/// granularity (a tick) is a small error.
const BIG: usize = 32 * 1024;
const BATCHES: usize = 9;
/// Operations per wall-clock slice (second column).
const SLICE: usize = 512;

/// Tracks the fastest slice of [`SLICE`] operations, nanoseconds per operation.
struct Fastest {
    best: f64,
    start: std::time::Instant,
    n: usize,
}

impl Fastest {
    fn new() -> Fastest {
        Fastest {
            best: f64::MAX,
            start: std::time::Instant::now(),
            n: 0,
        }
    }

    /// One operation done.
    fn tick(&mut self) {
        self.n += 1;
        if self.n == SLICE {
            let per = self.start.elapsed().as_nanos() as f64 / SLICE as f64;
            self.best = self.best.min(per);
            self.n = 0;
            self.start = std::time::Instant::now();
        }
    }

    /// Starts a slice afresh (after untimed work).
    fn restart(&mut self) {
        self.n = 0;
        self.start = std::time::Instant::now();
    }
}

/// Nanoseconds this thread has run on a CPU.
fn on_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("schedstat")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn verify(alg: Algorithm, known: bool) -> (f64, f64) {
    let mut c = core();
    let remote: SocketAddr = "10.1.2.3:5060".parse().expect("addr");
    let probe = Message::parse(b"INVITE sip:x@sip.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3;branch=z9hG4bKx\r\nFrom: <sip:a@sip.example.com>;tag=1\r\nTo: <sip:x@sip.example.com>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").expect("probe");
    if let AuthOutcome::Rejected(r) = c.authenticate_request(Millis(1), remote, &probe) {
        c.send_auth_rejection(Millis(1), LocalId(0), remote, &probe, r);
    }
    while c.poll_transmit().is_some() {}
    let nonce = String::from_utf8(NonceKey::new(SECRET, 7).issue(0, 1, 1).to_vec()).expect("hex");
    let mut nc = 0u32;
    let mut samples = Vec::new();
    let mut fastest = Fastest::new();
    for _ in 0..BATCHES {
        let bytes: Vec<Vec<u8>> = (0..BIG)
            .map(|i| {
                nc += 1;
                let u = (nc as usize + i) as u32 % USERS;
                let name = if known {
                    format!("user{u:07}")
                } else {
                    format!("nobody{u:05}")
                };
                let uri = format!("sip:+15551234@{REALM}");
                invite(&name, &creds(alg, &name, &nonce, nc, "INVITE", &uri))
            })
            .collect();
        let msgs: Vec<Message<'_>> = bytes
            .iter()
            .map(|b| Message::parse(b).expect("parse"))
            .collect();
        let t = on_cpu_ns();
        fastest.restart();
        for m in &msgs {
            let o = c.authenticate_request(Millis(2), remote, std::hint::black_box(m));
            assert_eq!(known, matches!(o, AuthOutcome::Authenticated(_)));
            fastest.tick();
        }
        samples.push((on_cpu_ns() - t) as f64 / BIG as f64);
    }
    (median(samples), fastest.best)
}

fn round_trip() -> (f64, f64) {
    let mut core = core();
    let remote: SocketAddr = "10.1.2.3:5060".parse().expect("addr");
    let key = NonceKey::new(SECRET, 7);
    let uri = format!("sip:{REALM}");
    let mut counter = 0u32;
    let mut samples = Vec::new();
    let mut fastest = Fastest::new();
    for _ in 0..BATCHES {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..BIG)
            .map(|_| {
                counter += 1;
                let name = format!("user{:07}", counter % USERS);
                let nonce = String::from_utf8(key.issue(0, counter, 1).to_vec()).expect("hex");
                let cseq = 2 * counter;
                let a = creds(Algorithm::Sha256, &name, &nonce, 1, "REGISTER", &uri);
                (
                    register(&name, cseq, None),
                    register(&name, cseq + 1, Some(&a)),
                )
            })
            .collect();
        let t = on_cpu_ns();
        fastest.restart();
        for (first, second) in &pairs {
            core.handle_datagram(Millis(1), LocalId(0), remote, first);
            while core.poll_transmit().is_some() {}
            core.handle_datagram(Millis(1), LocalId(0), remote, second);
            while core.poll_transmit().is_some() {}
            fastest.tick();
        }
        samples.push((on_cpu_ns() - t) as f64 / BIG as f64);
    }
    assert_eq!(core.auth_stats().digest_ok, u64::from(counter));
    (median(samples), fastest.best)
}

fn main() {
    println!("ns per operation: on-CPU (median of {BATCHES} batches of {BIG}), fastest slice of {SLICE} (wall clock)");
    let rows: [(&str, (f64, f64)); 5] = [
        ("verify/sha256", verify(Algorithm::Sha256, true)),
        ("verify/md5", verify(Algorithm::Md5, true)),
        (
            "verify/sha256_unknown_user",
            verify(Algorithm::Sha256, false),
        ),
        ("verify/md5_unknown_user", verify(Algorithm::Md5, false)),
        ("register_auth/round_trip", round_trip()),
    ];
    for (name, (cpu, fast)) in rows {
        println!("{name:<28}{cpu:8.0}{fast:8.0}");
    }
}
