//! Zero heap allocations per datagram in steady state: after a warm-up, a burst of OPTIONS
//! (and of malformed requests that get a 400) through the core allocates nothing.
#![allow(unsafe_code, clippy::unwrap_used)]

use std::net::SocketAddr;

use sipedge_core::{Core, CoreConfig, LocalId, Millis};

mod counting;
use counting::allocs;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

fn options(port: u16, cseq: u32) -> Vec<u8> {
    format!(
        "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:{port};branch=z9hG4bK{cseq}x{port};rport\r\nMax-Forwards: 70\r\nFrom: <sip:ping@10.1.2.3>;tag={port}\r\nTo: <sip:127.0.0.1>\r\nCall-ID: {cseq}-{port}@10.1.2.3\r\nCSeq: {cseq} OPTIONS\r\nUser-Agent: load\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// One loop turn: feed the burst, drain every reply.
fn turn(core: &mut Core, burst: &[(SocketAddr, Vec<u8>)]) -> usize {
    for (remote, bytes) in burst {
        core.handle_datagram(Millis(1), LocalId(0), *remote, bytes);
    }
    let mut n = 0;
    while let Some(t) = core.poll_transmit() {
        n += t.data.len().min(1);
    }
    while core.poll_event().is_some() {}
    n
}

#[test]
fn a_burst_of_datagrams_allocates_nothing() {
    let mut core = Core::new(CoreConfig::default());
    let mut burst: Vec<(SocketAddr, Vec<u8>)> = (0..256u16)
        .map(|i| {
            let remote: SocketAddr = format!("10.1.2.3:{}", 20000 + i).parse().unwrap();
            (remote, options(20000 + i, u32::from(i) + 1))
        })
        .collect();
    // A malformed request (CSeq method mismatch → 400) and garbage (dropped) in the burst.
    let bad = String::from_utf8(options(1, 1))
        .unwrap()
        .replace("1 OPTIONS", "1 INVITE");
    burst.push(("10.1.2.4:5060".parse().unwrap(), bad.into_bytes()));
    burst.push((
        "10.1.2.5:5060".parse().unwrap(),
        b"\x01\x02garbage".to_vec(),
    ));

    assert_eq!(
        turn(&mut core, &burst),
        257,
        "warm-up: every OPTIONS and the 400 answered"
    );
    let before = allocs();
    let mut replies = 0;
    for _ in 0..20 {
        replies += turn(&mut core, &burst);
    }
    let after = allocs();
    assert_eq!(replies, 20 * 257);
    assert_eq!(
        after - before,
        0,
        "allocations in steady state over {} datagrams",
        20 * burst.len()
    );
    // The counter does count: a fresh core's first reply grows its buffers.
    let mut fresh = Core::new(CoreConfig::default());
    let before = allocs();
    turn(&mut fresh, &burst[..1]);
    assert!(allocs() > before, "the counting allocator saw nothing");
}

fn register(user: u32, cseq: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK{user}x{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:u{user}@127.0.0.1>;tag=t{user}\r\nTo: <sip:u{user}@127.0.0.1>\r\nCall-ID: reg-{user}@10.1.2.3\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:u{user}@10.1.2.3:5060;transport=udp>;expires=600\r\nUser-Agent: load/1\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn a_register_refresh_allocates_nothing() {
    let mut core = Core::new(CoreConfig {
        journal: true,
        ..CoreConfig::default()
    });
    let remote: SocketAddr = "10.1.2.3:5060".parse().unwrap();
    let rounds: Vec<Vec<Vec<u8>>> = (1..=5u32)
        .map(|cseq| (0..128u32).map(|u| register(u, cseq)).collect())
        .collect();
    let run = |core: &mut Core, round: &[Vec<u8>]| {
        let mut ok = 0;
        for bytes in round {
            core.handle_datagram(Millis(1), LocalId(0), remote, bytes);
        }
        while let Some(t) = core.poll_transmit() {
            ok += usize::from(t.data.starts_with(b"SIP/2.0 200 OK"));
        }
        while core.poll_journal().is_some() {}
        ok
    };
    // New bindings (may allocate), then one refresh round to warm the buffers.
    assert_eq!(run(&mut core, &rounds[0]), 128);
    assert_eq!(run(&mut core, &rounds[1]), 128);
    let before = allocs();
    let mut ok = 0;
    for round in &rounds[2..] {
        ok += run(&mut core, round);
    }
    let after = allocs();
    assert_eq!(ok, 3 * 128, "every refresh answered 200");
    assert_eq!(core.binding_count(), 128);
    assert_eq!(core.stats().bindings_refreshed, 4 * 128);
    assert_eq!(after - before, 0, "allocations over {} refreshes", 3 * 128);
}
