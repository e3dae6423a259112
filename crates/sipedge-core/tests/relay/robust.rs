//! Bad input never panics the relay: mutated INVITEs, CANCELs, ACKs, in-dialog requests and
//! mutated responses carrying our branches, with time moving. Afterwards a call still
//! completes and every transaction ends.

use crate::harness::*;
use crate::mutate::Rng;
use sipedge_core::Core;
use sipedge_msg::Message;

/// A request the edge sent that is well-formed (error replies echo bad headers).
fn good_request(o: &Out) -> bool {
    Message::parse(&o.bytes).is_ok_and(|m| m.is_request() && m.validate().is_ok())
}

const INTERESTING: &[&[u8]] = &[
    b"z9hG4bKsE",
    b"z9hG4bKsE0000ffffffff00000f00000000",
    b"\r\nRoute: <sip:192.0.2.1:5060;lr>",
    b"\r\nRoute: <sip:192.0.2.1:5060;lr>, <sip:10.0.0.1;lr>",
    b"\r\nRecord-Route: <sip:x;lr>",
    b"\r\nMax-Forwards: 0",
    b"\r\nProxy-Require: x",
    b";tag=zz",
    b"\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKsE00000000000000000000000000000000",
    b"CANCEL",
    b"ACK",
    b"SIP/2.0 ",
    b"699",
    b"100",
    b",",
    b";",
    b"<",
    b">",
    b"@",
    b"%00",
    b"[::1]",
    b"99999999999",
];

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    crate::mutate::mutate(rng, base, INTERESTING, 3)
}

#[test]
fn mutated_relay_traffic_never_panics() {
    let mut c = Core::new(config());
    register(&mut c, 0, "bob", &format!("sip:bob@{BOB}"), BOB);
    register(&mut c, 0, "bob", &format!("sip:bob@{BOB2}"), BOB2);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut now = 10;
    let mut forwarded: Vec<Out> = Vec::new();
    for i in 0..20_000u64 {
        let id = format!("m{}", i % 97);
        let base = match rng.below(5) {
            0 => invite(&id),
            1 => request(
                "CANCEL",
                &format!("sip:bob@{DOMAIN}"),
                &format!("z9hG4bK-{id}"),
                &id,
                "",
            ),
            2 => request(
                "ACK",
                &format!("sip:bob@{DOMAIN}"),
                &format!("z9hG4bK-{id}"),
                &id,
                "",
            ),
            3 => request(
                "BYE",
                &format!("sip:bob@{BOB}"),
                &format!("z9hG4bK-b{id}"),
                &id,
                "Route: <sip:192.0.2.1:5060;lr>\r\n",
            ),
            _ => match forwarded.get(rng.below(forwarded.len().max(1))) {
                Some(f) if good_request(f) => {
                    let code = [100, 180, 200, 486, 487, 603][rng.below(6)];
                    respond(f, code, "X", "t", "")
                }
                _ => invite(&id),
            },
        };
        let bytes = if rng.below(4) == 0 {
            base
        } else {
            mutate(&mut rng, &base)
        };
        let from = if rng.below(2) == 0 { ALICE } else { BOB };
        for o in send(&mut c, now, from, &bytes) {
            if good_request(&o) && forwarded.len() < 512 {
                forwarded.push(o);
            }
        }
        if rng.below(50) == 0 {
            now += rng.below(40_000) as u64;
            for o in advance(&mut c, now) {
                if good_request(&o) && forwarded.len() < 512 {
                    forwarded.push(o);
                }
            }
        }
        if forwarded.len() >= 512 {
            forwarded.drain(..256);
        }
    }
    // Still relaying: a clean call completes (bob registers again: hours have passed).
    now += 4_000_000;
    advance(&mut c, now);
    register(&mut c, now, "bob", &format!("sip:bob@{BOB}"), BOB);
    register(&mut c, now, "bob", &format!("sip:bob@{BOB2}"), BOB2);
    let out = send(&mut c, now, ALICE, &invite("after"));
    let labels: Vec<String> = out.iter().map(Out::label).collect();
    assert_eq!(labels, ["100", "INVITE", "INVITE"]);
    let ok = send(&mut c, now, BOB, &respond(&out[1], 200, "OK", "b", ""));
    assert_eq!(ok.first().map(Out::label).as_deref(), Some("200"));
    advance(&mut c, now + 400_000);
    assert_eq!(c.transaction_count(), 0, "every transaction ends");
}
