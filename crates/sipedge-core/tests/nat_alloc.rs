//! Zero heap allocations for NAT keepalives in steady state: after one interval of warm-up,
//! sweeping, building the OPTIONS pings, and matching their answers (RTT into the
//! hdrhistogram) allocates nothing.
#![allow(unsafe_code, clippy::unwrap_used)]

use std::net::SocketAddr;

use sipedge_core::{Core, CoreConfig, LocalId, Millis, NatConfig, PingMode};

mod counting;
use counting::allocs;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

fn register(user: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK{user};rport\r\nMax-Forwards: 70\r\nFrom: <sip:u{user}@127.0.0.1>;tag=t{user}\r\nTo: <sip:u{user}@127.0.0.1>\r\nCall-ID: reg-{user}@10.1.2.3\r\nCSeq: 1 REGISTER\r\nContact: <sip:u{user}@10.1.2.3:5060>;expires=600\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// A phone's 200 OK to `ping`.
fn answer(ping: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(ping);
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in text.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        if !line.starts_with("Max-Forwards") && !line.starts_with("Content-Length") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

#[test]
fn keepalives_and_their_answers_allocate_nothing() {
    let mut core = Core::new(CoreConfig {
        nat: NatConfig {
            ping: PingMode::Timeout,
            ping_interval_secs: 1,
            ..NatConfig::default()
        },
        ..CoreConfig::default()
    });
    // NATed: the source is not the Via's sent-by.
    for u in 0..500u32 {
        let src = SocketAddr::from(([198, 51, 100, (u % 200) as u8 + 1], 10_000 + u as u16));
        core.handle_datagram(Millis(0), LocalId(0), src, &register(u));
    }
    while core.poll_transmit().is_some() {}
    assert_eq!(core.stats().nat.nated_registrations, 500);
    // Two intervals: the first warms the buffers; only core calls of the second are counted.
    let mut counted = 0u64;
    let mut pings = Vec::new();
    for tick in 1..=200u64 {
        let now = Millis(tick * 10);
        let before = allocs();
        core.handle_timeout(now);
        while let Some(t) = core.poll_transmit() {
            if tick > 100 {
                continue;
            }
            pings.push((t.remote, t.data.to_vec()));
        }
        let after = allocs();
        if tick > 100 {
            counted += after - before;
        }
        // Answers from the phones, prepared outside the counted calls.
        let answers: Vec<_> = if tick <= 100 {
            pings.drain(..).map(|(r, p)| (r, answer(&p))).collect()
        } else {
            Vec::new()
        };
        for (r, a) in &answers {
            core.handle_datagram(now, LocalId(0), *r, a);
        }
    }
    assert_eq!(
        core.stats().nat.pings_sent,
        1000,
        "500 bindings, two intervals"
    );
    assert_eq!(counted, 0, "allocations while sweeping and pinging");
    // Answers in steady state: one more interval, answers prepared first from the pings.
    let mut batch = Vec::new();
    for tick in 201..=300u64 {
        core.handle_timeout(Millis(tick * 10));
        while let Some(t) = core.poll_transmit() {
            batch.push((tick, t.remote, answer(t.data)));
        }
    }
    let before = allocs();
    for (tick, r, a) in &batch {
        core.handle_datagram(Millis(tick * 10 + 5), LocalId(0), *r, a);
    }
    let after = allocs();
    assert_eq!(core.stats().nat.pings_answered, 1000);
    assert_eq!(after - before, 0, "allocations while matching 500 answers");
}
