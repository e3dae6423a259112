//! The relay's steady state allocates nothing per message: once the transaction cells have
//! been used and freed, relaying a 180 and a 200 upstream and absorbing a retransmitted
//! INVITE allocate nothing (a new transaction may: its branch and lookup result).
#![allow(unsafe_code, clippy::unwrap_used)]

use std::net::SocketAddr;

use sipedge_core::{Core, CoreConfig, LocalId, Millis, ProxyConfig};
use sipedge_msg::{HeaderName, Message};

mod counting;
use counting::allocs;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

const BOB: &str = "10.30.0.9:5062";
const CALLS: u64 = 64;

fn invite(i: u64, round: u64) -> (SocketAddr, Vec<u8>) {
    let src: SocketAddr = format!("10.20.0.{}:5060", 1 + i).parse().unwrap();
    let m = format!(
        "INVITE sip:bob@sip.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{round}x{i};rport\r\nMax-Forwards: 70\r\nFrom: <sip:a{i}@sip.example.com>;tag=f{i}\r\nTo: <sip:bob@sip.example.com>\r\nCall-ID: {round}-{i}@10.20.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:a{i}@{src}>\r\nContent-Length: 0\r\n\r\n"
    );
    (src, m.into_bytes())
}

fn respond(req: &[u8], status: &str) -> Vec<u8> {
    let m = Message::parse(req).unwrap();
    let mut s = format!("SIP/2.0 {status}\r\n");
    for v in m.header_values(HeaderName::Via) {
        s.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    let h = |n| String::from_utf8_lossy(m.header(n).unwrap()).into_owned();
    s.push_str(&format!(
        "From: {}\r\nTo: {};tag=b\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:bob@{BOB}>\r\nContent-Length: 0\r\n\r\n",
        h(HeaderName::From),
        h(HeaderName::To),
        h(HeaderName::CallId),
        h(HeaderName::CSeq)
    ));
    s.into_bytes()
}

fn drain(core: &mut Core, to: SocketAddr, keep: &mut Vec<Vec<u8>>) -> usize {
    let mut n = 0;
    while let Some(t) = core.poll_transmit() {
        n += 1;
        if t.remote == to {
            keep.push(t.data.to_vec());
        }
    }
    n
}

/// One round of CALLS calls: INVITEs in, then (measured from the second round) their
/// retransmissions, 180s and 200s; then time runs until every cell is freed.
fn round(core: &mut Core, r: u64, now: &mut u64) -> u64 {
    let bob: SocketAddr = BOB.parse().unwrap();
    let invites: Vec<(SocketAddr, Vec<u8>)> = (0..CALLS).map(|i| invite(i, r)).collect();
    let mut fwd = Vec::new();
    for (src, m) in &invites {
        core.handle_datagram(Millis(*now), LocalId(0), *src, m);
        drain(core, bob, &mut fwd);
    }
    assert_eq!(fwd.len() as u64, CALLS);
    let ringing: Vec<Vec<u8>> = fwd.iter().map(|f| respond(f, "180 Ringing")).collect();
    let ok: Vec<Vec<u8>> = fwd.iter().map(|f| respond(f, "200 OK")).collect();
    let mut sink = Vec::with_capacity(0);
    let before = allocs();
    let mut out = 0;
    for (src, m) in &invites {
        core.handle_datagram(Millis(*now), LocalId(0), *src, m); // retransmission → 100
        out += drain(core, bob, &mut sink);
    }
    for r in &ringing {
        core.handle_datagram(Millis(*now), LocalId(0), bob, r);
        out += drain(core, bob, &mut sink);
    }
    for r in &ok {
        core.handle_datagram(Millis(*now), LocalId(0), bob, r);
        out += drain(core, bob, &mut sink);
    }
    let spent = allocs() - before;
    assert_eq!(
        out as u64,
        3 * CALLS,
        "100 again, 180 and 200 upstream for every call"
    );
    *now += 100_000;
    core.handle_timeout(Millis(*now));
    while core.poll_transmit().is_some() {}
    assert_eq!(core.transaction_count(), 0);
    spent
}

#[test]
fn relaying_responses_and_absorbing_retransmissions_allocates_nothing() {
    let mut core = Core::new(CoreConfig {
        domains: vec!["sip.example.com".into(), "192.0.2.1".into()],
        proxy: ProxyConfig {
            advertise: vec!["192.0.2.1:5060".parse().unwrap()],
            ..ProxyConfig::default()
        },
        ..CoreConfig::default()
    });
    let reg = format!(
        "REGISTER sip:sip.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKr1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@sip.example.com>;tag=r\r\nTo: <sip:bob@sip.example.com>\r\nCall-ID: reg-bob\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{BOB}>\r\nExpires: 7200\r\nContent-Length: 0\r\n\r\n"
    );
    core.handle_datagram(Millis(0), LocalId(0), BOB.parse().unwrap(), reg.as_bytes());
    while core.poll_transmit().is_some() {}
    let mut now = 1;
    // Warm-up rounds: cells, buffers, wheel and index grow to their working size.
    round(&mut core, 0, &mut now);
    round(&mut core, 1, &mut now);
    assert_eq!(round(&mut core, 2, &mut now), 0);
}
