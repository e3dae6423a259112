//! The relay, sans-IO on a virtual clock (RFC 3261 §16, §17): what the caller and the
//! callee see, with loss, duplication and reordering, and every timer firing as the RFC
//! says.
#![allow(clippy::unwrap_used)]

mod advertise;
mod auth;
mod flows;
mod hardening;
mod harness;
#[path = "../mutate/mod.rs"]
mod mutate;
mod originate;
mod path;
mod robust;
mod routing;

use harness::*;
use sipedge_core::{Core, Millis};
use sipedge_msg::HeaderName;

const T1: u64 = 500;

fn core_with_bob() -> Core {
    let mut c = Core::new(config());
    register(&mut c, 0, "bob", &format!("sip:bob@{BOB}"), BOB);
    c
}

/// The Record-Route the edge puts on an INVITE with Call-ID `call` (its dialog token).
fn record_route_for(c: &mut Core, call: &str) -> String {
    let out = send(c, 0, ALICE, &invite(call));
    out[1].header(HeaderName::RecordRoute).unwrap()
}

fn labels(out: &[Out]) -> Vec<String> {
    out.iter().map(Out::label).collect()
}

/// INVITE → 100 to alice and one INVITE to bob; returns that INVITE.
fn call(c: &mut Core, now: u64, id: &str) -> Out {
    let out = send(c, now, ALICE, &invite(id));
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!(out[0].to, addr(ALICE));
    assert_eq!(out[1].to, addr(BOB));
    out[1].clone()
}

#[test]
fn call_setup_and_bye_follow_record_route() {
    let mut c = core_with_bob();
    let inv = call(&mut c, 10, "c1");
    // §16.6: the contact as Request-URI, Max-Forwards − 1, our Record-Route and Via on top.
    assert_eq!(inv.ruri(), format!("sip:bob@{BOB}"));
    assert_eq!(inv.header(HeaderName::MaxForwards).as_deref(), Some("69"));
    let rr = inv.header(HeaderName::RecordRoute).unwrap();
    assert!(rr.starts_with("<sip:192.0.2.1:5060;lr;sed="), "{rr}");
    assert_eq!(inv.via_count(), 2);
    assert!(inv.top_branch().starts_with("z9hG4bK"));
    let ringing = send(&mut c, 20, BOB, &respond(&inv, 180, "Ringing", "b1", ""));
    assert_eq!(labels(&ringing), ["180"]);
    assert_eq!(ringing[0].to, addr(ALICE));
    assert_eq!(
        ringing[0].via_count(),
        1,
        "our Via is removed (§16.7 step 3)"
    );
    let ok = send(
        &mut c,
        30,
        BOB,
        &respond(
            &inv,
            200,
            "OK",
            "b1",
            &format!("Contact: <sip:bob@{BOB}>\r\n"),
        ),
    );
    assert_eq!(labels(&ok), ["200"]);
    assert_eq!(ok[0].to, addr(ALICE));
    // §16.7 step 4: our Record-Route in the response is rewritten to the token bound to
    // bob's tag too — alice's route set.
    let rr_up = ok[0].header(HeaderName::RecordRoute).unwrap();
    assert_eq!(rr_up.len(), rr.len());
    assert_ne!(rr_up, rr);
    // The ACK for the 2xx is a new request along the route set: forwarded end to end.
    let ack = String::from_utf8(request(
        "ACK",
        &format!("sip:bob@{BOB}"),
        "z9hG4bK-ack1",
        "c1",
        &format!("Route: {rr_up}\r\n"),
    ))
    .unwrap()
    .replace(
        &format!("To: <sip:bob@{DOMAIN}>"),
        &format!("To: <sip:bob@{DOMAIN}>;tag=b1"),
    );
    let ack = send(&mut c, 40, ALICE, ack.as_bytes());
    assert_eq!(labels(&ack), ["ACK"]);
    assert_eq!(ack[0].to, addr(BOB));
    assert!(
        ack[0].header(HeaderName::Route).is_none(),
        "our Route removed"
    );
    // BYE from bob along the route: to alice's contact, answered back to bob.
    let bye = format!(
        "BYE sip:alice@{ALICE} SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bK-bye1\r\nMax-Forwards: 70\r\nRoute: {rr}\r\nFrom: <sip:bob@{DOMAIN}>;tag=b1\r\nTo: <sip:alice@{DOMAIN}>;tag=alice1\r\nCall-ID: c1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let fwd = send(&mut c, 50, BOB, bye.as_bytes());
    assert_eq!(labels(&fwd), ["BYE"]);
    assert_eq!(fwd[0].to, addr(ALICE));
    let back = send(&mut c, 60, ALICE, &respond(&fwd[0], 200, "OK", "", ""));
    assert_eq!(labels(&back), ["200"]);
    assert_eq!(back[0].to, addr(BOB));
    // Every transaction ends once its timers have run.
    advance(&mut c, 200_000);
    assert_eq!(c.transaction_count(), 0);
}

#[test]
fn retransmitted_invite_gets_the_last_response_not_a_second_copy() {
    let mut c = core_with_bob();
    let inv = call(&mut c, 0, "c2");
    let again = send(&mut c, 100, ALICE, &invite("c2"));
    assert_eq!(labels(&again), ["100"]);
    send(&mut c, 120, BOB, &respond(&inv, 180, "Ringing", "b1", ""));
    let again = send(&mut c, 130, ALICE, &invite("c2"));
    assert_eq!(labels(&again), ["180"], "the latest provisional");
    assert_eq!(c.proxy_stats().retransmissions_absorbed, 2);
}

#[test]
fn lost_invite_is_retransmitted_by_timer_a_until_timer_b() {
    let mut c = core_with_bob();
    let inv = call(&mut c, 0, "c3");
    // Timer A: T1, 2T1, 4T1, … (§17.1.1.2), byte-identical copies.
    let mut sent_at = Vec::new();
    let mut t = 0;
    let mut final_to_alice = None;
    while t < 64 * T1 + 100 {
        t += 10;
        for o in advance(&mut c, t) {
            if o.to == addr(BOB) {
                assert_eq!(o.bytes, inv.bytes);
                sent_at.push(t);
            } else {
                final_to_alice = final_to_alice.or(Some((t, o.status().unwrap())));
            }
        }
    }
    assert_eq!(sent_at, [500, 1500, 3500, 7500, 15500, 31500]);
    // Timer B (64·T1): alice gets 408.
    assert_eq!(final_to_alice, Some((32_000, 408)));
    // Timer G retransmits the 408 until the ACK (T1, 2T1, … ≤ T2).
    let g = advance(&mut c, 32_000 + 500);
    assert_eq!(labels(&g), ["408"]);
    let ack = request("ACK", &format!("sip:bob@{DOMAIN}"), "z9hG4bK-c3", "c3", "");
    assert!(send(&mut c, 32_600, ALICE, &ack).is_empty(), "ACK absorbed");
    assert_eq!(c.proxy_stats().acks_absorbed, 1);
    assert!(
        advance(&mut c, 40_000).is_empty(),
        "no more 408 after the ACK"
    );
    advance(&mut c, 100_000);
    assert_eq!(c.transaction_count(), 0);
}

#[test]
fn final_response_without_ack_is_retransmitted_then_timer_h_ends_it() {
    let mut c = core_with_bob();
    let inv = call(&mut c, 0, "c4");
    let busy = send(&mut c, 10, BOB, &respond(&inv, 486, "Busy Here", "b1", ""));
    // Hop by hop: our ACK to bob, the 486 to alice.
    assert_eq!(labels(&busy), ["ACK", "486"]);
    assert_eq!(busy[0].to, addr(BOB));
    assert_eq!(
        busy[0].top_branch(),
        inv.top_branch(),
        "§17.1.1.3: same branch"
    );
    // bob retransmits the 486: he gets the ACK again, alice nothing new.
    let dup = send(&mut c, 20, BOB, &respond(&inv, 486, "Busy Here", "b1", ""));
    assert_eq!(labels(&dup), ["ACK"]);
    // G: 500, 1000, 2000, 4000, 4000 … until H at 64·T1.
    let mut at = Vec::new();
    let mut t = 10;
    while t < 40_000 {
        t += 10;
        for o in advance(&mut c, t) {
            assert_eq!(o.status(), Some(486));
            at.push(t - 10);
        }
    }
    let gaps: Vec<u64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(&gaps[..4], [1000, 2000, 4000, 4000]);
    assert!(*at.last().unwrap() < 10 + 64 * T1, "timer H stops it");
}

#[test]
fn message_retransmits_per_timer_e_and_times_out_per_timer_f() {
    let mut c = core_with_bob();
    let msg = request(
        "MESSAGE",
        &format!("sip:bob@{DOMAIN}"),
        "z9hG4bK-m1",
        "m1",
        "",
    );
    let out = send(&mut c, 0, ALICE, &msg);
    assert_eq!(labels(&out), ["MESSAGE"], "no 100 for a non-INVITE");
    let mut at = Vec::new();
    let mut final_code = None;
    let mut t = 0;
    while t < 40_000 {
        t += 10;
        for o in advance(&mut c, t) {
            match o.status() {
                None => at.push(t),
                Some(code) => final_code = Some((t, code)),
            }
        }
    }
    // E: T1, 2T1, 4T1, then T2 apart (§17.1.2.2).
    assert_eq!(&at[..5], [500, 1500, 3500, 7500, 11500]);
    // Timer F at 64·T1: RFC 4320 §4.2, no 408 to a non-INVITE — nothing at all.
    assert_eq!(final_code, None, "no 408 (RFC 4320 §4.2)");
    assert!(
        *at.last().unwrap() < 32_000,
        "timer F stops the retransmissions"
    );
    assert_eq!(c.proxy_stats().timeouts, 1);
    // alice's own retransmission, late: absorbed by the completed transaction, silently.
    assert!(send(&mut c, 32_100, ALICE, &msg).is_empty());
    advance(&mut c, 100_000);
    assert_eq!(c.transaction_count(), 0);
}

/// RFC 4320 §4.1: a provisional response other than 100 to a non-INVITE is not sent on;
/// the final response still is.
#[test]
fn provisional_to_a_message_is_not_forwarded() {
    let mut c = core_with_bob();
    let msg = request(
        "MESSAGE",
        &format!("sip:bob@{DOMAIN}"),
        "z9hG4bK-m180",
        "m180",
        "",
    );
    let out = send(&mut c, 0, ALICE, &msg);
    assert_eq!(labels(&out), ["MESSAGE"]);
    let ring = send(&mut c, 5, BOB, &respond(&out[0], 180, "Ringing", "b1", ""));
    assert!(ring.is_empty(), "no 180 to a MESSAGE: {:?}", labels(&ring));
    // Proceeding: E retransmits at T2 now, and the 200 still goes to alice.
    let ok = send(&mut c, 10, BOB, &respond(&out[0], 200, "OK", "b1", ""));
    assert_eq!(labels(&ok), ["200"]);
    assert_eq!(ok[0].to, addr(ALICE));
}

/// Two registered phones, one answers a MESSAGE 486 and the other never answers: the 486
/// goes upstream when the silent branch times out (a real answer beats our own 408, which
/// is never sent for a non-INVITE anyway — RFC 4320 §4.2).
#[test]
fn message_forked_one_busy_one_silent_gets_the_busy() {
    let mut c = core_with_bob();
    register(&mut c, 0, "bob", &format!("sip:bob@{BOB2}"), BOB2);
    let msg = request(
        "MESSAGE",
        &format!("sip:bob@{DOMAIN}"),
        "z9hG4bK-mf",
        "mf",
        "",
    );
    let out = send(&mut c, 0, ALICE, &msg);
    assert_eq!(labels(&out), ["MESSAGE", "MESSAGE"]);
    let to_bob = out.iter().find(|o| o.to == addr(BOB)).unwrap();
    assert!(send(&mut c, 5, BOB, &respond(to_bob, 486, "Busy Here", "b1", "")).is_empty());
    let finals: Vec<u16> = advance(&mut c, 40_000)
        .iter()
        .filter(|o| o.to == addr(ALICE))
        .filter_map(Out::status)
        .collect();
    assert_eq!(finals, [486]);
}

#[test]
fn message_to_registered_user_is_delivered_and_answered() {
    let mut c = core_with_bob();
    let msg = request(
        "MESSAGE",
        &format!("sip:bob@{DOMAIN}"),
        "z9hG4bK-m2",
        "m2",
        "",
    );
    let out = send(&mut c, 0, ALICE, &msg);
    assert_eq!(out[0].to, addr(BOB));
    let ok = send(&mut c, 5, BOB, &respond(&out[0], 200, "OK", "b1", ""));
    assert_eq!(labels(&ok), ["200"]);
    assert_eq!(ok[0].to, addr(ALICE));
    // A retransmission now gets the 200 again.
    let again = send(&mut c, 50, ALICE, &msg);
    assert_eq!(labels(&again), ["200"]);
}

#[test]
fn cancel_while_ringing_ends_both_sides() {
    let mut c = core_with_bob();
    let inv = call(&mut c, 0, "c5");
    send(&mut c, 10, BOB, &respond(&inv, 180, "Ringing", "b1", ""));
    let cancel = request(
        "CANCEL",
        &format!("sip:bob@{DOMAIN}"),
        "z9hG4bK-c5",
        "c5",
        "",
    );
    let out = send(&mut c, 20, ALICE, &cancel);
    assert_eq!(labels(&out), ["200", "CANCEL"]);
    assert_eq!(out[0].to, addr(ALICE));
    assert_eq!(out[1].to, addr(BOB));
    assert_eq!(
        out[1].top_branch(),
        inv.top_branch(),
        "§9.1: the INVITE's branch"
    );
    assert_eq!(out[1].ruri(), inv.ruri());
    let cancel_ok = send(&mut c, 30, BOB, &respond(&out[1], 200, "OK", "b1", ""));
    assert!(cancel_ok.is_empty(), "the CANCEL's 200 stays here");
    let term = send(
        &mut c,
        40,
        BOB,
        &respond(&inv, 487, "Request Terminated", "b1", ""),
    );
    assert_eq!(labels(&term), ["ACK", "487"]);
    assert_eq!(term[1].to, addr(ALICE));
}

#[test]
fn cancel_unanswered_downstream_gets_487_from_us() {
    let mut c = core_with_bob();
    let inv = call(&mut c, 0, "c6");
    send(&mut c, 10, BOB, &respond(&inv, 180, "Ringing", "b1", ""));
    let cancel = request(
        "CANCEL",
        &format!("sip:bob@{DOMAIN}"),
        "z9hG4bK-c6",
        "c6",
        "",
    );
    send(&mut c, 20, ALICE, &cancel);
    let later = advance(&mut c, 40_000);
    let to_alice: Vec<u16> = later
        .iter()
        .filter(|o| o.to == addr(ALICE))
        .map(|o| o.status().unwrap())
        .collect();
    assert_eq!(to_alice.first(), Some(&487));
    // The CANCEL itself was retransmitted (its own timer E).
    assert!(later
        .iter()
        .any(|o| o.method().as_deref() == Some("CANCEL")));
}

#[test]
fn cancel_before_any_provisional_waits_for_one() {
    let mut c = core_with_bob();
    let inv = call(&mut c, 0, "c7");
    let cancel = request(
        "CANCEL",
        &format!("sip:bob@{DOMAIN}"),
        "z9hG4bK-c7",
        "c7",
        "",
    );
    let out = send(&mut c, 10, ALICE, &cancel);
    assert_eq!(
        labels(&out),
        ["200"],
        "§9.1: no CANCEL before a provisional"
    );
    let ringing = send(&mut c, 20, BOB, &respond(&inv, 180, "Ringing", "b1", ""));
    assert_eq!(labels(&ringing), ["CANCEL", "180"]);
}

#[test]
fn unmatched_cancel_gets_481() {
    let mut c = core_with_bob();
    let cancel = request(
        "CANCEL",
        &format!("sip:bob@{DOMAIN}"),
        "z9hG4bK-none",
        "x",
        "",
    );
    let out = send(&mut c, 0, ALICE, &cancel);
    assert_eq!(labels(&out), ["481"]);
}

#[test]
fn two_phones_ring_and_the_one_that_answers_gets_the_call() {
    let mut c = core_with_bob();
    register(&mut c, 1, "bob", &format!("sip:bob@{BOB2}"), BOB2);
    let out = send(&mut c, 10, ALICE, &invite("c8"));
    assert_eq!(labels(&out), ["100", "INVITE", "INVITE"]);
    let (p1, p2) = (out[1].clone(), out[2].clone());
    let mut dests = [p1.to, p2.to];
    dests.sort();
    let mut want = [addr(BOB), addr(BOB2)];
    want.sort();
    assert_eq!(dests, want);
    assert_ne!(p1.top_branch(), p2.top_branch());
    send(
        &mut c,
        20,
        &p1.to.to_string(),
        &respond(&p1, 180, "Ringing", "p1", ""),
    );
    send(
        &mut c,
        21,
        &p2.to.to_string(),
        &respond(&p2, 180, "Ringing", "p2", ""),
    );
    let ok = send(
        &mut c,
        30,
        &p2.to.to_string(),
        &respond(&p2, 200, "OK", "p2", ""),
    );
    // The 200 goes up; the other phone is cancelled (§16.7 step 10).
    assert_eq!(labels(&ok), ["200", "CANCEL"]);
    assert_eq!(ok[0].to, addr(ALICE));
    assert_eq!(ok[1].to, p1.to);
    // The losing phone's late 180 is not passed on: a final response already went (§16.7).
    let late = send(
        &mut c,
        35,
        &p1.to.to_string(),
        &respond(&p1, 183, "Progress", "p1", ""),
    );
    assert!(late.is_empty(), "{:?}", labels(&late));
    let t = send(
        &mut c,
        40,
        &p1.to.to_string(),
        &respond(&p1, 487, "Request Terminated", "p1", ""),
    );
    assert_eq!(
        labels(&t),
        ["ACK"],
        "the 487 of the losing phone is not forwarded"
    );
    // A duplicated 200 (2xx retransmission) passes again (RFC 6026).
    let dup = send(
        &mut c,
        50,
        &p2.to.to_string(),
        &respond(&p2, 200, "OK", "p2", ""),
    );
    assert_eq!(labels(&dup), ["200"]);
}

#[test]
fn best_response_and_6xx() {
    let mut c = core_with_bob();
    register(&mut c, 1, "bob", &format!("sip:bob@{BOB2}"), BOB2);
    let out = send(&mut c, 10, ALICE, &invite("c9"));
    let (p1, p2) = (out[1].clone(), out[2].clone());
    let a = send(
        &mut c,
        20,
        &p1.to.to_string(),
        &respond(&p1, 503, "Unavailable", "p1", ""),
    );
    assert_eq!(labels(&a), ["ACK"], "held until every branch answers");
    let b = send(
        &mut c,
        30,
        &p2.to.to_string(),
        &respond(&p2, 486, "Busy Here", "p2", ""),
    );
    assert_eq!(
        labels(&b),
        ["ACK", "486"],
        "the lowest class wins (§16.7 step 6)"
    );

    let out = send(&mut c, 50, ALICE, &invite("c9b"));
    let (p1, p2) = (out[1].clone(), out[2].clone());
    send(
        &mut c,
        55,
        &p1.to.to_string(),
        &respond(&p1, 503, "Unavailable", "p1", ""),
    );
    let b = send(
        &mut c,
        60,
        &p2.to.to_string(),
        &respond(&p2, 503, "Unavailable", "p2", ""),
    );
    assert_eq!(
        labels(&b),
        ["ACK", "500"],
        "§16.7 step 6: a 503 becomes 500"
    );

    let out = send(&mut c, 100, ALICE, &invite("c10"));
    let (p1, p2) = (out[1].clone(), out[2].clone());
    send(
        &mut c,
        110,
        &p2.to.to_string(),
        &respond(&p2, 180, "Ringing", "p2", ""),
    );
    let d = send(
        &mut c,
        120,
        &p1.to.to_string(),
        &respond(&p1, 603, "Decline", "p1", ""),
    );
    assert_eq!(labels(&d), ["ACK", "CANCEL"], "a 6xx cancels the rest");
    let e = send(
        &mut c,
        130,
        &p2.to.to_string(),
        &respond(&p2, 487, "Request Terminated", "p2", ""),
    );
    assert_eq!(labels(&e), ["ACK", "603"]);
}

#[test]
fn reordered_provisional_after_2xx_is_not_forwarded() {
    let mut c = core_with_bob();
    let inv = call(&mut c, 0, "c11");
    let ok = send(&mut c, 10, BOB, &respond(&inv, 200, "OK", "b1", ""));
    assert_eq!(labels(&ok), ["200"]);
    let late = send(&mut c, 20, BOB, &respond(&inv, 180, "Ringing", "b1", ""));
    assert!(late.is_empty());
}

#[test]
fn proxy_checks_refuse_with_their_codes() {
    let mut c = core_with_bob();
    let bob = format!("sip:bob@{DOMAIN}");
    let mf0 = String::from_utf8(invite("r1"))
        .unwrap()
        .replace("Max-Forwards: 70", "Max-Forwards: 0");
    assert_eq!(labels(&send(&mut c, 0, ALICE, mf0.as_bytes())), ["483"]);
    let pr = request("INVITE", &bob, "z9hG4bK-r2", "r2", "Proxy-Require: foo\r\n");
    let out = send(&mut c, 0, ALICE, &pr);
    assert_eq!(labels(&out), ["420"]);
    assert_eq!(
        out[0].header(HeaderName::Unsupported).as_deref(),
        Some("foo")
    );
    let foreign = request(
        "INVITE",
        "sip:carol@elsewhere.example.net",
        "z9hG4bK-r3",
        "r3",
        "",
    );
    assert_eq!(labels(&send(&mut c, 0, ALICE, &foreign)), ["403"]);
    let nobody = request(
        "INVITE",
        &format!("sip:nobody@{DOMAIN}"),
        "z9hG4bK-r4",
        "r4",
        "",
    );
    assert_eq!(labels(&send(&mut c, 0, ALICE, &nobody)), ["404"]);
    // Loop: our own Via with this request's loop hash comes back.
    let inv = call(&mut c, 0, "r5");
    let looped = String::from_utf8(inv.bytes.clone()).unwrap().replace(
        &format!("INVITE sip:bob@{BOB}"),
        &format!("INVITE sip:bob@{DOMAIN}"),
    );
    let out = send(&mut c, 0, BOB, looped.as_bytes());
    assert_eq!(labels(&out), ["482"]);
}

#[test]
fn nat_binding_is_reached_at_its_source() {
    let mut c = Core::new(config());
    register(
        &mut c,
        0,
        "bob",
        "sip:bob@10.0.0.7:5060",
        "198.51.100.10:40000",
    );
    let out = send(&mut c, 10, ALICE, &invite("n1"));
    assert_eq!(out[1].to, addr("198.51.100.10:40000"));
    assert_eq!(out[1].ruri(), "sip:bob@10.0.0.7:5060");
}

#[test]
fn a_binding_not_behind_nat_is_reached_at_its_contact() {
    let mut c = Core::new(config());
    // A public Contact, registered from another public address whose Via names itself (a
    // registration on behalf of the phone): no NAT is detected, so the Contact is used.
    register(
        &mut c,
        0,
        "bob",
        "sip:bob@203.0.113.9:5070",
        "198.51.100.10:40000",
    );
    let out = send(&mut c, 10, ALICE, &invite("n2"));
    assert_eq!(out[1].to, addr("203.0.113.9:5070"));
    assert_eq!(out[1].ruri(), "sip:bob@203.0.113.9:5070");
}

#[test]
fn cross_shard_lookup_and_response_hand_off() {
    let (mut s0, mut s1) = two_shards();
    // bob registers: whichever shard owns him keeps the binding.
    let reg_target = if s0.lookup(Millis(0), b"sip:bob@edge.example.com").is_ok() {
        0
    } else {
        1
    };
    {
        let (owner, other) = if reg_target == 0 {
            (&mut s0, &mut s1)
        } else {
            (&mut s1, &mut s0)
        };
        register(owner, 0, "bob", &format!("sip:bob@{BOB}"), BOB);
        let _ = other;
    }
    // The INVITE lands on the shard that does not own bob.
    let (lander, owner) = if reg_target == 0 {
        (&mut s1, &mut s0)
    } else {
        (&mut s0, &mut s1)
    };
    let out = send(lander, 10, ALICE, &invite("x1"));
    assert!(
        out.is_empty(),
        "the lookup is asked over the mesh; 100 only once there is somewhere to go"
    );
    let (a, b) = if reg_target == 0 {
        let (o0, o1) = pump(owner, lander, 10);
        (o1, o0)
    } else {
        pump(lander, owner, 10)
    };
    assert!(b.is_empty());
    assert_eq!(labels(&a), ["100", "INVITE"]);
    assert_eq!(a[0].to, addr(ALICE));
    let a = [a[1].clone()];
    assert_eq!(a[0].to, addr(BOB));
    // bob's 180 lands on the owner shard: handed to the transaction's shard in one hop.
    let r = send(owner, 20, BOB, &respond(&a[0], 180, "Ringing", "b1", ""));
    assert!(r.is_empty());
    let (x, y) = if reg_target == 0 {
        let (o0, o1) = pump(owner, lander, 20);
        (o1, o0)
    } else {
        pump(lander, owner, 20)
    };
    assert!(y.is_empty());
    assert_eq!(labels(&x), ["180"]);
    assert_eq!(x[0].to, addr(ALICE));
}

/// Seeded loss, duplication and reordering on both legs: every call still ends with one
/// final response to alice and no transaction is left behind.
#[test]
fn lossy_network_simulation() {
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut c = core_with_bob();
    let mut finals = 0;
    for call_no in 0..200u64 {
        let id = format!("sim{call_no}");
        let start = 1_000 + call_no * 16_000;
        let mut t = start;
        let mut got_final = None;
        let mut bob_inv: Option<Out> = None;
        // alice sends the INVITE, maybe lost; she retransmits per timer A herself.
        let mut pending: Vec<(u64, String, Vec<u8>)> = vec![(t, ALICE.into(), invite(&id))];
        let mut alice_interval = T1;
        let mut next_alice = t + T1;
        while t < start + 15_000 {
            pending.sort_by_key(|p| p.0);
            while let Some(p) = pending.first().filter(|p| p.0 <= t).cloned() {
                pending.remove(0);
                if next() % 5 == 0 {
                    continue; // 20 % loss
                }
                let dup = next() % 7 == 0;
                for _ in 0..(1 + usize::from(dup)) {
                    for o in send(&mut c, t, &p.1, &p.2)
                        .into_iter()
                        .filter(|o| o.header(HeaderName::CallId).as_deref() == Some(id.as_str()))
                    {
                        let delay = 5 + next() % 40; // reordering by jitter
                        if o.to == addr(ALICE) {
                            if let Some(code) = o.status().filter(|&s| s >= 200) {
                                got_final.get_or_insert(code);
                                let ack = request(
                                    "ACK",
                                    &format!("sip:bob@{DOMAIN}"),
                                    &format!("z9hG4bK-{id}"),
                                    &id,
                                    "",
                                );
                                pending.push((t + delay, ALICE.into(), ack));
                            }
                        } else if o.method().as_deref() == Some("INVITE") {
                            bob_inv.get_or_insert(o.clone());
                            let r = respond(&o, 486, "Busy Here", "b", "");
                            pending.push((t + delay, BOB.into(), r));
                        }
                    }
                }
            }
            if got_final.is_none() && t >= next_alice && alice_interval <= 16 * T1 {
                pending.push((t, ALICE.into(), invite(&id)));
                alice_interval *= 2;
                next_alice = t + alice_interval;
            }
            t += 10;
            for o in advance(&mut c, t)
                .into_iter()
                .filter(|o| o.header(HeaderName::CallId).as_deref() == Some(id.as_str()))
            {
                if o.to == addr(ALICE) {
                    if let Some(code) = o.status().filter(|&s| s >= 200) {
                        got_final.get_or_insert(code);
                        let ack = request(
                            "ACK",
                            &format!("sip:bob@{DOMAIN}"),
                            &format!("z9hG4bK-{id}"),
                            &id,
                            "",
                        );
                        pending.push((t + 5, ALICE.into(), ack));
                    }
                } else if o.method().as_deref() == Some("INVITE") {
                    pending.push((t + 5, BOB.into(), respond(&o, 486, "Busy Here", "b", "")));
                }
            }
        }
        let code = got_final.expect("every call gets a final response");
        assert!(code == 486 || code == 408, "call {call_no}: {code}");
        finals += 1;
    }
    assert_eq!(finals, 200);
    advance(&mut c, 200 * 16_000 + 200_000);
    assert_eq!(c.transaction_count(), 0, "no transaction leaks");
}

#[test]
fn timer_c_cancels_a_branch_that_rings_forever() {
    let mut c = core_with_bob();
    let inv = call(&mut c, 0, "tc1");
    send(&mut c, 10, BOB, &respond(&inv, 180, "Ringing", "b1", ""));
    send(
        &mut c,
        60_000,
        BOB,
        &respond(&inv, 180, "Ringing", "b1", ""),
    );
    // Timer C (> 3 min) restarts at each provisional: nothing at 181 s after the first…
    let early: Vec<String> = labels(&advance(&mut c, 181_500));
    assert!(!early.contains(&"CANCEL".to_string()), "{early:?}");
    // …and a CANCEL 181 s after the last one (§16.8).
    let due = labels(&advance(&mut c, 241_500));
    assert!(due.contains(&"CANCEL".to_string()), "{due:?}");
    let term = send(
        &mut c,
        241_600,
        BOB,
        &respond(&inv, 487, "Request Terminated", "b1", ""),
    );
    assert_eq!(labels(&term), ["ACK", "487"]);
}
