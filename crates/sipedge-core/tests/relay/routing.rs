//! Routing and matching details: RFC 2543 matching, strict and loose routes, the dialog
//! token of our Record-Route, NAT stamping of the caller's Via, responses by Via.

use crate::harness::*;
use crate::{call, core_with_bob, labels, record_route_for};
use sipedge_msg::HeaderName;

#[test]
fn rfc2543_request_without_cookie_still_meets_its_transaction() {
    let mut c = core_with_bob();
    // §17.2.3: no z9hG4bK branch — matched on Request-URI, From tag, Call-ID, CSeq, top Via.
    let old = request("INVITE", &format!("sip:bob@{DOMAIN}"), "1234", "old1", "");
    let out = send(&mut c, 0, ALICE, &old);
    assert_eq!(labels(&out), ["100", "INVITE"]);
    let again = send(&mut c, 100, ALICE, &old);
    assert_eq!(labels(&again), ["100"], "absorbed, not forwarded twice");
    let busy = send(
        &mut c,
        200,
        BOB,
        &respond(&out[1], 486, "Busy Here", "b1", ""),
    );
    assert_eq!(labels(&busy), ["ACK", "486"]);
    let ack = request("ACK", &format!("sip:bob@{DOMAIN}"), "1234", "old1", "");
    assert!(send(&mut c, 300, ALICE, &ack).is_empty());
    assert_eq!(c.proxy_stats().acks_absorbed, 1);
}

#[test]
fn strict_router_before_us_is_fixed_per_16_4() {
    let mut c = core_with_bob();
    let rr = record_route_for(&mut c, "sr1");
    let ruri = rr.trim_start_matches('<').trim_end_matches('>');
    // A strict router put our Record-Route in the Request-URI and the real target last in
    // Route: the target comes back as Request-URI and leaves the Route set.
    let bye = format!(
        "BYE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch=z9hG4bK-sr1\r\nMax-Forwards: 70\r\nRoute: <sip:bob@{BOB}>\r\nFrom: <sip:alice@{DOMAIN}>;tag=alice1\r\nTo: <sip:bob@{DOMAIN}>;tag=b1\r\nCall-ID: sr1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = send(&mut c, 0, ALICE, bye.as_bytes());
    assert_eq!(labels(&out), ["BYE"]);
    assert_eq!(out[0].ruri(), format!("sip:bob@{BOB}"));
    assert!(out[0].header(HeaderName::Route).is_none());
    assert_eq!(out[0].to, addr(BOB));
}

#[test]
fn in_dialog_request_goes_to_the_dialog_end_not_the_next_route() {
    let mut c = core_with_bob();
    let rr = record_route_for(&mut c, "lr1");
    // bob's BYE names a foreign Request-URI and a foreign Route after ours: the token sends
    // it to the dialog's other end (alice's flow), the Route and Request-URI travel as
    // written (RFC 5626 §5.3 flow-token routing).
    let bye = format!(
        "BYE sip:carol@203.0.113.99:5080 SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bK-lr1\r\nMax-Forwards: 70\r\nRoute: {rr}, <sip:198.51.100.77:5060;lr>\r\nFrom: <sip:bob@{DOMAIN}>;tag=b1\r\nTo: <sip:alice@{DOMAIN}>;tag=alice1\r\nCall-ID: lr1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let out = send(&mut c, 0, BOB, bye.as_bytes());
    assert_eq!(labels(&out), ["BYE"]);
    assert_eq!(
        out[0].to,
        addr(ALICE),
        "the dialog's caller end, nothing else"
    );
    assert_eq!(out[0].ruri(), "sip:carol@203.0.113.99:5080");
    assert_eq!(
        out[0].header(HeaderName::Route).as_deref(),
        Some("<sip:198.51.100.77:5060;lr>"),
        "only our own Route is removed"
    );
}

#[test]
fn late_2xx_passes_while_accepted_then_is_dropped() {
    let mut c = core_with_bob();
    let inv = call(&mut c, 0, "late1");
    let ok = respond(&inv, 200, "OK", "b1", "");
    assert_eq!(labels(&send(&mut c, 10, BOB, &ok)), ["200"]);
    // RFC 6026 §7.1: Accepted for 64·T1, 2xx retransmissions pass.
    let again = send(&mut c, 1_000, BOB, &ok);
    assert_eq!(labels(&again), ["200"]);
    assert_eq!(again[0].to, addr(ALICE));
    advance(&mut c, 100_000);
    assert_eq!(c.transaction_count(), 0);
    // After timer L nothing unmatched is forwarded: no reflection by the second Via.
    let late = send(&mut c, 100_010, BOB, &ok);
    assert!(late.is_empty(), "{:?}", labels(&late));
    assert_eq!(c.proxy_stats().responses_no_transaction, 1);
}

#[test]
fn response_to_a_branch_we_never_made_is_dropped() {
    let mut c = core_with_bob();
    let stray = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKsomeoneelse\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: stray\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    assert!(send(&mut c, 0, BOB, stray.as_bytes()).is_empty());
    assert_eq!(c.stats().responses_unmatched, 1);
}

#[test]
fn caller_behind_nat_is_stamped_and_reached_at_its_source() {
    let mut c = core_with_bob();
    // The caller's Via names its private address; it sends from a NAT's public port.
    let inv = String::from_utf8(invite("nat1"))
        .unwrap()
        .replace(&format!("UDP {ALICE};"), "UDP 10.0.0.5:5060;");
    let nat = "203.0.113.5:40000";
    let out = send(&mut c, 0, nat, inv.as_bytes());
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!(out[0].to, addr(nat), "RFC 3581: to the source port");
    let vias: Vec<String> = out[1]
        .msg()
        .header_items(HeaderName::Via)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(vias.len(), 2);
    assert_eq!(
        vias[1], "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK-nat1;received=203.0.113.5;rport=40000",
        "§18.2.1: received and rport in the copy we forward"
    );
    let ok = respond(&out[1], 200, "OK", "b1", "");
    assert_eq!(send(&mut c, 10, BOB, &ok)[0].to, addr(nat));
    // A 2xx retransmission while Accepted still finds the caller at its flow.
    assert_eq!(send(&mut c, 20, BOB, &ok)[0].to, addr(nat));
}

#[test]
fn in_dialog_request_on_a_forged_or_replayed_route_is_not_relayed_out() {
    let mut c = core_with_bob();
    let rr = record_route_for(&mut c, "d1");
    let bye = |route: &str, call: &str, from_tag: &str, to_tag: &str| {
        format!(
            "BYE sip:victim@203.0.113.200:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bK-f{call}{from_tag}\r\nMax-Forwards: 70\r\nRoute: {route}\r\nFrom: <sip:bob@{DOMAIN}>;tag={from_tag}\r\nTo: <sip:v@x>;tag={to_tag}\r\nCall-ID: {call}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // Our Route without a token, with another dialog's, or with the dialog's token but
    // other tags: 404 "Not Here", once, and nothing sent anywhere else.
    for (route, call, ft, tt) in [
        ("<sip:192.0.2.1:5060;lr>", "d1", "b1", "alice1"),
        (rr.as_str(), "d2", "b1", "alice1"),
        (rr.as_str(), "d1", "b1", "mallory"),
    ] {
        let out = send(&mut c, 0, BOB, bye(route, call, ft, tt).as_bytes());
        assert_eq!(labels(&out), ["404"], "{route} {call} {ft} {tt}");
        assert_eq!(out[0].to, addr(BOB));
    }
    assert_eq!(c.proxy_stats().tokens_refused, 3);
    // The dialog's own route set and tags: relayed — to the dialog's end (alice), never to
    // the Request-URI's 203.0.113.200.
    let ok = send(&mut c, 0, BOB, bye(&rr, "d1", "b1", "alice1").as_bytes());
    assert_eq!(labels(&ok), ["BYE"]);
    assert_eq!(ok[0].to, addr(ALICE));
}
