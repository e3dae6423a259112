//! Issue 13: the relay is no open relay, no reflector, no oracle and no credential
//! collector. Each test is what an attacker would try, and asserts the datagram NOT sent.

use crate::auth::{invite_from, with_auth, TRUNK};
use crate::harness::*;
use crate::{call, core_with_bob, labels};
use sipedge_core::{Core, CoreConfig, LocalId, Millis, NodeSecret, ProxyConfig, ShardId};
use sipedge_msg::HeaderName;

const GATEWAY: &str = "198.51.100.250:5060";

/// alice calls bob and he answers: the Record-Route alice got in the 200 (her route set).
fn answered_call(c: &mut Core, id: &str) -> String {
    let inv = call(c, 0, id);
    let ok = send(c, 10, BOB, &respond(&inv, 200, "OK", "b1", ""));
    assert_eq!(labels(&ok), ["200"]);
    ok[0].header(HeaderName::RecordRoute).unwrap()
}

fn with_to_tag(req: Vec<u8>, tag: &str) -> Vec<u8> {
    String::from_utf8(req)
        .unwrap()
        .replacen(
            "\r\nTo: <sip:bob@edge.example.com>",
            &format!("\r\nTo: <sip:bob@edge.example.com>;tag={tag}"),
            1,
        )
        .into_bytes()
}

#[test]
fn a_replayed_record_route_token_does_not_reach_a_gateway() {
    let mut c = core_with_bob();
    let rr = answered_call(&mut c, "toll1");
    // The caller reuses the dialog's Call-ID and Route to reach a premium number at any
    // gateway: with the dialog's tags the request can only go to the dialog's own end
    // (bob), without them it is refused — never to the gateway.
    let attack = |to_tag: Option<&str>, branch: &str| {
        let r = request(
            "INVITE",
            &format!("sip:+900123@{GATEWAY}"),
            branch,
            "toll1",
            &format!("Route: {rr}\r\n"),
        );
        match to_tag {
            Some(t) => with_to_tag(r, t),
            None => r,
        }
    };
    let mut sent = Vec::new();
    for (tag, branch) in [
        (Some("b1"), "z9hG4bK-t1"),
        (Some("other"), "z9hG4bK-t2"),
        (None, "z9hG4bK-t3"),
    ] {
        sent.extend(send(&mut c, 100, ALICE, &attack(tag, branch)));
        sent.extend(advance(&mut c, 40_000));
    }
    assert!(
        sent.iter().all(|o| o.to != addr(GATEWAY)),
        "relayed to the gateway: {:?}",
        labels(&sent)
    );
    assert!(sent
        .iter()
        .all(|o| o.to == addr(ALICE) || o.to == addr(BOB)));
}

#[test]
fn the_token_is_keyed_by_the_node_secret_not_the_table_seed() {
    // Two edges with the same table seed but different secrets: a token of one is
    // refused by the other (before: the token key was the seed).
    let mk = |secret: u8| {
        let mut c = Core::new(CoreConfig {
            seed: 42,
            proxy: ProxyConfig {
                secret: NodeSecret([secret; 32]),
                ..config().proxy
            },
            ..config()
        });
        register(&mut c, 0, "bob", &format!("sip:bob@{BOB}"), BOB);
        c
    };
    let (mut a, mut b) = (mk(1), mk(2));
    let rr = answered_call(&mut a, "k1");
    let bye = with_to_tag(
        request(
            "BYE",
            &format!("sip:bob@{BOB}"),
            "z9hG4bK-k1b",
            "k1",
            &format!("Route: {rr}\r\n"),
        ),
        "b1",
    );
    assert_eq!(labels(&send(&mut a, 100, ALICE, &bye)), ["BYE"]);
    assert_eq!(labels(&send(&mut b, 100, ALICE, &bye)), ["404"]);
}

#[test]
fn a_to_tag_alone_does_not_skip_authentication() {
    let mut c = with_auth(false);
    // carol is a local digest user: out of dialog she is challenged.
    let out = send(
        &mut c,
        0,
        ALICE,
        &invite_from("carol", &format!("sip:bob@{DOMAIN}"), "a1"),
    );
    assert_eq!(labels(&out), ["407"]);
    // A forged To tag (no Route of ours) must not make it in-dialog: 404, nothing to bob.
    let forged = with_to_tag(
        invite_from("carol", &format!("sip:bob@{DOMAIN}"), "a2"),
        "x",
    );
    let out = send(&mut c, 0, ALICE, &forged);
    assert_eq!(labels(&out), ["404"]);
    assert!(out.iter().all(|o| o.to != addr(BOB)));
    assert_eq!(c.proxy_stats().tokens_refused, 1);
    // Its ACK is absorbed silently.
    let ack = with_to_tag(
        request("ACK", &format!("sip:bob@{DOMAIN}"), "z9hG4bK-a2", "a2", ""),
        "x",
    );
    assert!(send(&mut c, 10, ALICE, &ack).is_empty());
}

#[test]
fn a_response_with_a_guessed_branch_is_dropped_not_reflected() {
    let mut c = core_with_bob();
    let inv = call(&mut c, 0, "g1");
    let branch = inv.top_branch();
    // Another slot, same MAC: our shape, not ours. Its second Via names a victim.
    let mut guessed = branch.clone().into_bytes();
    let at = "z9hG4bKsE".len() + 11;
    guessed[at] = if guessed[at] == b'0' { b'1' } else { b'0' };
    let guessed = String::from_utf8(guessed).unwrap();
    let victim = "192.0.2.99:5060";
    let resp = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={guessed}\r\nVia: SIP/2.0/UDP {victim};branch=z9hG4bKv\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: g1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(send(&mut c, 10, BOB, resp.as_bytes()).is_empty());
    assert_eq!(c.proxy_stats().responses_forged, 1);
    // The genuine branch with a gone cell: dropped too (RFC 6026), not sent to the victim.
    let real = resp.replace(&guessed, &branch);
    let out = send(&mut c, 20, BOB, real.as_bytes());
    assert!(out.iter().all(|o| o.to != addr(victim)));
}

#[test]
fn a_forged_branch_is_not_handed_to_another_shard() {
    let (mut s0, _s1) = two_shards();
    // A branch of our shape naming shard 1, with a MAC that is not ours.
    // shard 0001, slot, generation, branch number, loop hash, MAC.
    let b = [
        "z9hG4bKsE",
        "0001",
        "00000000",
        "00000",
        "0",
        "12345678",
        "deadbeefdeadbeef",
    ]
    .concat();
    let resp = format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch={b}\r\nVia: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bKv\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: h1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    );
    assert!(send(&mut s0, 0, BOB, resp.as_bytes()).is_empty());
    assert!(
        s0.poll_shard_msg().is_none(),
        "no hand-off for a forged branch"
    );
    assert_eq!(s0.proxy_stats().responses_forged, 1);
}

#[test]
fn a_refused_invite_gets_one_small_reply_and_nothing_more() {
    let mut c = core_with_bob();
    // An unauthenticated INVITE, foreign From, spoofed source, to nobody: one 404 — no
    // 100 Trying, no timer G retransmission until timer H.
    let inv = String::from_utf8(request(
        "INVITE",
        &format!("sip:nobody@{DOMAIN}"),
        "z9hG4bK-refl",
        "refl",
        "",
    ))
    .unwrap()
    .replace("sip:alice@edge.example.com", "sip:x@foreign.example.net");
    let victim = "192.0.2.77:5060";
    let mut out = send(&mut c, 0, victim, inv.as_bytes());
    out.extend(advance(&mut c, 64 * 500 + 1_000));
    assert_eq!(labels(&out), ["404"]);
    let sent: usize = out.iter().map(|o| o.bytes.len()).sum();
    assert!(
        sent <= 3 * inv.len(),
        "{sent} bytes out for {} in",
        inv.len()
    );
    assert_eq!(c.transaction_count(), 0);
    // Its ACK is absorbed silently.
    let ack = with_to_tag(
        request(
            "ACK",
            &format!("sip:nobody@{DOMAIN}"),
            "z9hG4bK-refl",
            "refl",
            "",
        ),
        "t",
    );
    assert!(send(&mut c, 100, victim, &ack).is_empty());
    // A retransmission gets the same single answer, not more.
    assert_eq!(labels(&send(&mut c, 200, victim, inv.as_bytes())), ["404"]);
}

#[test]
fn credentials_for_our_realm_are_not_relayed() {
    let mut c = with_auth(false);
    // An IP trunk sends credentials for our realm (and for a realm further on).
    let ours = format!(
        "Proxy-Authorization: Digest username=\"carol\", realm=\"{DOMAIN}\", nonce=\"n\", uri=\"sip:bob@{DOMAIN}\", response=\"00000000000000000000000000000000\"\r\n"
    );
    let theirs = "Proxy-Authorization: Digest username=\"c\", realm=\"carrier.example.net\", nonce=\"m\", uri=\"sip:bob@x\", response=\"11111111111111111111111111111111\"\r\n";
    let inv = String::from_utf8(request(
        "INVITE",
        &format!("sip:bob@{DOMAIN}"),
        "z9hG4bK-cr1",
        "cr1",
        &format!("{ours}{theirs}"),
    ))
    .unwrap();
    let out = send(&mut c, 0, TRUNK, inv.as_bytes());
    assert_eq!(labels(&out), ["100", "INVITE"]);
    let fwd = String::from_utf8_lossy(&out[1].bytes).into_owned();
    assert!(!fwd.contains(&format!("realm=\"{DOMAIN}\"")), "{fwd}");
    assert!(fwd.contains("realm=\"carrier.example.net\""), "{fwd}");
    assert_eq!(c.proxy_stats().credentials_consumed, 1);
    // The 2xx ACK along the route set loses them too.
    let ok = send(&mut c, 10, BOB, &respond(&out[1], 200, "OK", "b1", ""));
    let rr = ok[0].header(HeaderName::RecordRoute).unwrap();
    let ack = with_to_tag(
        request(
            "ACK",
            &format!("sip:bob@{BOB}"),
            "z9hG4bK-cr1a",
            "cr1",
            &format!("Route: {rr}\r\n{ours}"),
        ),
        "b1",
    );
    let out = send(&mut c, 20, TRUNK, &ack);
    assert_eq!(labels(&out), ["ACK"]);
    assert!(out[0].header(HeaderName::ProxyAuthorization).is_none());
}

#[test]
fn a_forged_ping_answer_is_not_handed_off() {
    let (mut s0, _s1) = two_shards();
    // A ping branch of our shape naming shard 1, with a MAC that is not ours.
    let resp = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnp0001000000010000000100000001deadbeefdeadbeef\r\nFrom: <sip:keepalive@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: p1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    s0.handle_datagram(Millis(0), LocalId(0), addr(BOB), resp.as_bytes());
    assert!(
        s0.poll_shard_msg().is_none(),
        "no hand-off for a forged ping"
    );
    assert_eq!(s0.stats().nat.ping_answers_forwarded, 0);
    assert_eq!(s0.stats().nat.ping_answers_stale, 1);
    let _ = ShardId(0);
}

#[test]
fn every_stateless_refusal_is_at_most_three_times_the_request() {
    // The smallest valid INVITE we accept, from a spoofed source, for each refusal path.
    let minimal = |ruri: &str, from: &str, extra: &str| {
        format!(
            "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.77:5060;branch=z9hG4bKm\r\nMax-Forwards: 70\r\nFrom: <sip:{from}>;tag=1\r\nTo: <{ruri}>{extra}\r\nCall-ID: m\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let mut c = with_auth(false);
    for req in [
        minimal(
            &format!("sip:carol@{DOMAIN}"),
            &format!("carol@{DOMAIN}"),
            "",
        ), // 407
        minimal(&format!("sip:nobody@{DOMAIN}"), "x@y.example", ""), // 404
        minimal("sip:x@elsewhere.example", "x@y.example", ""),       // 403
        minimal(&format!("sip:bob@{DOMAIN}"), "x@y.example", ";tag=t"), // 404 Not Here
    ] {
        let out = send(&mut c, 0, "192.0.2.77:5060", req.as_bytes());
        assert_eq!(out.len(), 1, "{:?}", labels(&out));
        assert!(
            out[0].bytes.len() <= 3 * req.len(),
            "{} bytes for {}: {}",
            out[0].bytes.len(),
            req.len(),
            String::from_utf8_lossy(&out[0].bytes)
        );
    }
}
