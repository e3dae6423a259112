//! Digest verification including the nonce check (HMAC-SHA256 MAC, age, issuer, the
//! nonce-count window), per request, through the relay's hook
//! `Core::authenticate_request` on an already parsed INVITE with Proxy-Authorization:
//! credentials located and parsed, user found among 10 000, HA2 and response hashed,
//! compared, nonce MAC and nc checked.
//!
//! * `verify/sha256`, `verify/md5`: a known user, right password, fresh nc each time.
//! * `verify/sha256_unknown_user`: the same request for a user that does not exist (the
//!   dummy-HA1 path; it should cost what `verify/sha256` costs).
//! * `register_auth/round_trip`: REGISTER without credentials → 401, then REGISTER with
//!   credentials → 200, both through `handle_datagram` (parse, challenge, verify, §10.3,
//!   location table, replies): what one authenticated registration costs a core.
//!
//! Run: `nice -n 19 cargo bench -p sipedge-core --bench digest -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use sipedge_core::auth::{Algorithm, AuthOutcome, NonceKey};
use sipedge_core::{LocalId, Millis};
use sipedge_msg::Message;

const CHUNK: usize = 2048;

#[path = "support/digest.rs"]
mod support;
use support::{core, creds, invite, register, REALM, SECRET, USERS};

/// Times `authenticate_request` over `iters` requests built in untimed chunks, each
/// answering the one nonce with a fresh nc.
fn verify_loop(alg: Algorithm, known: bool) -> impl FnMut(u64) -> Duration {
    let mut c = core();
    let remote: SocketAddr = "10.1.2.3:5060".parse().expect("addr");
    let key = NonceKey::new(SECRET, 7);
    // The core's first challenge has counter 1 at time 1 on shard 0.
    let probe = Message::parse(b"INVITE sip:x@sip.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3;branch=z9hG4bKx\r\nFrom: <sip:a@sip.example.com>;tag=1\r\nTo: <sip:x@sip.example.com>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").expect("probe");
    if let AuthOutcome::Rejected(r) = c.authenticate_request(Millis(1), remote, &probe) {
        c.send_auth_rejection(Millis(1), LocalId(0), remote, &probe, r);
    }
    while c.poll_transmit().is_some() {}
    let nonce = String::from_utf8(key.issue(0, 1, 1).to_vec()).expect("hex");
    let mut nc = 0u32;
    move |iters| {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            left -= n as u64;
            let bytes: Vec<Vec<u8>> = (0..n)
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
            let t = Instant::now();
            for m in &msgs {
                let o = c.authenticate_request(Millis(2), remote, black_box(m));
                debug_assert_eq!(known, matches!(o, AuthOutcome::Authenticated(_)));
                black_box(o);
            }
            total += t.elapsed();
        }
        total
    }
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sha256", |b| {
        b.iter_custom(verify_loop(Algorithm::Sha256, true))
    });
    g.bench_function("md5", |b| b.iter_custom(verify_loop(Algorithm::Md5, true)));
    g.bench_function("sha256_unknown_user", |b| {
        b.iter_custom(verify_loop(Algorithm::Sha256, false))
    });
    g.finish();

    let mut g = c.benchmark_group("register_auth");
    g.throughput(Throughput::Elements(1));
    g.bench_function("round_trip", |b| {
        let mut core = core();
        let remote: SocketAddr = "10.1.2.3:5060".parse().expect("addr");
        let key = NonceKey::new(SECRET, 7);
        let mut counter = 0u32;
        let uri = format!("sip:{REALM}");
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                left -= n as u64;
                // The nonces the core will issue are predictable here (same key, shard 0,
                // counters in order, time 1): the client side is built untimed.
                let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
                    .map(|_| {
                        counter += 1;
                        let name = format!("user{:07}", counter % USERS);
                        let nonce =
                            String::from_utf8(key.issue(0, counter, 1).to_vec()).expect("hex");
                        let cseq = 2 * counter;
                        let a = creds(Algorithm::Sha256, &name, &nonce, 1, "REGISTER", &uri);
                        (
                            register(&name, cseq, None),
                            register(&name, cseq + 1, Some(&a)),
                        )
                    })
                    .collect();
                let t = Instant::now();
                for (first, second) in &pairs {
                    core.handle_datagram(Millis(1), LocalId(0), remote, first);
                    while let Some(t) = core.poll_transmit() {
                        black_box(t.data.len());
                    }
                    core.handle_datagram(Millis(1), LocalId(0), remote, second);
                    while let Some(t) = core.poll_transmit() {
                        black_box(t.data.len());
                    }
                }
                total += t.elapsed();
            }
            debug_assert_eq!(core.auth_stats().digest_ok, u64::from(counter));
            total
        })
    });
    g.finish();
}

criterion_group!(digest, benches);
criterion_main!(digest);
