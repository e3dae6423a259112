//! The end-to-end benchmarks a user runs first: what one shard's core spends on the three
//! things an edge does all day, each fed through `Core::handle_datagram` and drained with
//! `Core::poll_transmit` exactly as a shard loop does (parse, rules, tables, serialized
//! replies; no sockets, no kernel). The allocator is mimalloc, as in the binary.
//!
//! * `e2e/register_refresh`: 10 000 bound phones refresh in turn (CSeq rising).
//! * `e2e/register_new_binding`: REGISTERs of phones never seen before (100 000 per batch,
//!   a fresh core each batch).
//! * `e2e/auth_round_trip`: REGISTER without credentials → 401, REGISTER with SHA-256
//!   digest credentials → 200 (10 000 users), the client side built untimed.
//! * `e2e/relayed_call`: a whole call through the relay — INVITE, 180, 200, ACK, BYE, 200
//!   (six messages in, seven out) with the virtual clock moving 1 ms per call so every
//!   transaction runs its timers; the callee's responses are built in the timed loop.
//!
//! Run: `nice -n 19 cargo bench --bench end_to_end -- --warm-up-time 1 --measurement-time 3`
//! (`cargo test --bench end_to_end` runs each once, as a smoke test). Per-crate micro
//! benchmarks stay beside their crate (`crates/*/benches/`); instruction counts for
//! PERFORMANCE.md come from the callgrind examples in `crates/sipedge-core/examples/`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mimalloc::MiMalloc;

use sipedge_core::auth::{Algorithm, NonceKey};
use sipedge_core::{Core, CoreConfig, LocalId, Millis};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

mod support;
use support::call;
use support::digest;

/// Feeds one datagram at time 1 and drains what the core sends; returns the bytes sent.
fn feed(core: &mut Core, remote: SocketAddr, bytes: &[u8]) -> usize {
    core.handle_datagram(Millis(1), LocalId(0), remote, bytes);
    let mut n = 0;
    while let Some(t) = core.poll_transmit() {
        n += t.data.len();
    }
    n
}

fn register(user: u32, cseq: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:sip.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK{user:x}.{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:user{user:07}@sip.example.com>;tag={user:x}\r\nTo: <sip:user{user:07}@sip.example.com>\r\nCall-ID: {user:016x}a5f3c9e1@10.1.2.3\r\nCSeq: {cseq:09} REGISTER\r\nContact: <sip:user{user:07}@10.1.{}.{}:5060;transport=udp>\r\nExpires: 3600\r\nUser-Agent: Yealink SIP-T46S 66.86.0.15\r\nContent-Length: 0\r\n\r\n",
        user >> 8 & 255,
        user & 255
    )
    .into_bytes()
}

fn registrar() -> Core {
    Core::new(CoreConfig {
        domains: vec!["sip.example.com".into()],
        ..CoreConfig::default()
    })
}

fn remote() -> SocketAddr {
    "10.1.2.3:5060".parse().expect("addr")
}

fn register_benches(c: &mut Criterion) {
    const PHONES: u32 = 10_000;
    let mut g = c.benchmark_group("e2e");
    g.throughput(Throughput::Elements(1));
    let mut bound = registrar();
    for u in 0..PHONES {
        feed(&mut bound, remote(), &register(u, 1));
    }
    let mut refreshes: Vec<Vec<u8>> = (0..PHONES).map(|u| register(u, 2)).collect();
    let at: Vec<usize> = refreshes
        .iter()
        .map(|r| r.windows(6).position(|w| w == b"CSeq: ").expect("CSeq") + 6)
        .collect();
    let (mut round, mut i) = (2u32, 0usize);
    g.bench_function("register_refresh", |b| {
        b.iter(|| {
            if i == refreshes.len() {
                // Next round: the CSeq must rise for a refresh to be accepted.
                i = 0;
                round += 1;
                let digits = format!("{round:09}");
                for (r, &a) in refreshes.iter_mut().zip(&at) {
                    r[a..a + 9].copy_from_slice(digits.as_bytes());
                }
            }
            i += 1;
            black_box(feed(&mut bound, remote(), &refreshes[i - 1]))
        });
    });
    assert!(bound.stats().bindings_refreshed > 0, "refreshes refreshed");
    assert_eq!(bound.stats().register_retransmissions, 0);
    g.finish();

    const NEW: u32 = 100_000;
    let mut g = c.benchmark_group("e2e");
    g.throughput(Throughput::Elements(u64::from(NEW)));
    g.sample_size(10);
    let fresh: Vec<Vec<u8>> = (0..NEW).map(|u| register(u, 1)).collect();
    g.bench_function("register_new_binding", |b| {
        b.iter_batched_ref(
            registrar,
            |c| {
                for req in &fresh {
                    black_box(feed(c, remote(), req));
                }
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

fn auth_benches(c: &mut Criterion) {
    const CHUNK: u64 = 2048;
    let mut g = c.benchmark_group("e2e");
    g.throughput(Throughput::Elements(1));
    g.bench_function("auth_round_trip", |b| {
        let mut core = digest::core();
        let key = NonceKey::new(digest::SECRET, 7);
        let uri = format!("sip:{}", digest::REALM);
        let mut counter = 0u32;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(CHUNK);
                left -= n;
                // The nonces the core issues are predictable (same key, shard 0, counters
                // in order, time 1): the client side is built untimed.
                let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
                    .map(|_| {
                        counter += 1;
                        let name = format!("user{:07}", counter % digest::USERS);
                        let nonce = key.issue(0, counter, 1);
                        let nonce = String::from_utf8_lossy(&nonce);
                        let a =
                            digest::creds(Algorithm::Sha256, &name, &nonce, 1, "REGISTER", &uri);
                        (
                            digest::register(&name, 2 * counter, None),
                            digest::register(&name, 2 * counter + 1, Some(&a)),
                        )
                    })
                    .collect();
                let start = Instant::now();
                for (first, second) in &pairs {
                    black_box(feed(&mut core, remote(), first));
                    black_box(feed(&mut core, remote(), second));
                }
                total += start.elapsed();
            }
            total
        });
        assert_eq!(
            core.auth_stats().digest_ok,
            u64::from(counter),
            "every second REGISTER authenticated"
        );
    });
    g.finish();
}

fn call_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("e2e");
    g.throughput(Throughput::Elements(1));
    g.bench_function("relayed_call", |b| {
        let mut core = call::core();
        let mut scratch = call::Scratch::default();
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let sent = call::call(&mut core, i, i, &mut scratch);
            assert_eq!(sent, 7, "100, INVITE, 180, 200, ACK, BYE, 200");
        });
        assert_eq!(core.proxy_stats().refused, 0);
    });
    g.finish();
}

criterion_group!(e2e, register_benches, auth_benches, call_benches);
criterion_main!(e2e);
