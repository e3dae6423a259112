//! REGISTER through one core (parse, §10.3, location table, 200 OK), per request.
//!
//! * `refresh`: 10 000 bound phones refresh in turn (CSeq rising): the steady state of a
//!   registrar, zero allocations.
//! * `new_binding`: a phone never seen before (a core is filled with 100 000 new phones,
//!   then replaced).
//! * `query`: a REGISTER without Contact for a bound AoR.
//!
//! Run: `nice -n 19 cargo bench -p sipedge-core --bench register -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use sipedge_core::{Core, CoreConfig, LocalId, Millis};

fn register(user: u32, cseq: u32, contact: bool) -> Vec<u8> {
    let contact = if contact {
        format!(
            "Contact: <sip:user{user:07}@10.1.{}.{}:5060;transport=udp>\r\nExpires: 3600\r\n",
            user >> 8 & 255,
            user & 255
        )
    } else {
        String::new()
    };
    format!(
        "REGISTER sip:sip.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK{user:x}.{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:user{user:07}@sip.example.com>;tag={user:x}\r\nTo: <sip:user{user:07}@sip.example.com>\r\nCall-ID: {user:016x}a5f3c9e1@10.1.2.3\r\nCSeq: {cseq:09} REGISTER\r\n{contact}User-Agent: Yealink SIP-T46S 66.86.0.15\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn core() -> Core {
    Core::new(CoreConfig {
        domains: vec!["sip.example.com".into()],
        ..CoreConfig::default()
    })
}

fn feed(core: &mut Core, bytes: &[u8]) -> usize {
    let remote: SocketAddr = "10.1.2.3:5060".parse().expect("addr");
    core.handle_datagram(Millis(1), LocalId(0), remote, bytes);
    let mut n = 0;
    while let Some(t) = core.poll_transmit() {
        n += t.data.len();
    }
    n
}

fn benches(c: &mut Criterion) {
    const PHONES: u32 = 10_000;
    let mut g = c.benchmark_group("register");
    g.throughput(Throughput::Elements(1));

    let mut bound = core();
    for u in 0..PHONES {
        feed(&mut bound, &register(u, 1, true));
    }
    let mut refreshes: Vec<Vec<u8>> = (0..PHONES).map(|u| register(u, 2, true)).collect();
    let at: Vec<usize> = refreshes
        .iter()
        .map(|r| {
            r.windows(6)
                .position(|w| w == b"CSeq: ")
                .expect("CSeq line")
                + 6
        })
        .collect();
    let mut round = 2u32;
    let mut i = 0usize;
    g.bench_function("refresh", |b| {
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
            black_box(feed(&mut bound, &refreshes[i - 1]))
        });
    });
    assert!(bound.stats().bindings_refreshed > 0);
    assert_eq!(bound.stats().register_retransmissions, 0);

    let queries: Vec<Vec<u8>> = (0..PHONES).map(|u| register(u, 1, false)).collect();
    let mut q = 0usize;
    g.bench_function("query", |b| {
        b.iter(|| {
            q = (q + 1) % queries.len();
            black_box(feed(&mut bound, &queries[q]))
        });
    });

    g.finish();

    const NEW: u32 = 100_000;
    let mut g = c.benchmark_group("register");
    g.throughput(Throughput::Elements(u64::from(NEW)));
    g.sample_size(10);
    let fresh: Vec<Vec<u8>> = (0..NEW).map(|u| register(u, 1, true)).collect();
    g.bench_function("new_binding", |b| {
        b.iter_batched_ref(
            core,
            |c| {
                for req in &fresh {
                    black_box(feed(c, req));
                }
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
}

criterion_group!(register_benches, benches);
criterion_main!(register_benches);
