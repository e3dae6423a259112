//! Sans-IO scenarios for what the edge answers without state: no sockets, no clock.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use sipedge_core::{Core, CoreConfig, CoreEvent, LocalId, Millis, ShardId, ShardMsg};
use sipedge_msg::{HeaderName, Message, ParseErrorKind, RPort};

const PHONE: &str = "192.0.2.50:40123";

fn core() -> Core {
    Core::new(CoreConfig {
        domains: vec!["edge.example.com".into(), "127.0.0.1".into()],
        ..CoreConfig::default()
    })
}

fn request(method: &str, uri: &str, via_params: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} {uri} SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK-{method}{via_params}\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@edge.example.com>;tag=a1\r\n\
To: <{uri}>\r\n\
Call-ID: call-{method}@10.0.0.5\r\n\
CSeq: 3 {method}\r\n{extra}\
Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Feeds one datagram and returns every reply as (destination, bytes).
fn exchange(core: &mut Core, bytes: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
    core.handle_datagram(Millis(1), LocalId(0), PHONE.parse().unwrap(), bytes);
    let mut out = Vec::new();
    while let Some(t) = core.poll_transmit() {
        assert_eq!(
            t.local,
            LocalId(0),
            "replies leave from the socket the request came in on"
        );
        out.push((t.remote, t.data.to_vec()));
    }
    out
}

fn only_reply(core: &mut Core, bytes: &[u8]) -> (SocketAddr, Vec<u8>) {
    let mut replies = exchange(core, bytes);
    assert_eq!(replies.len(), 1, "exactly one reply expected");
    replies.remove(0)
}

#[test]
fn options_to_the_edge_gets_200_with_capabilities() {
    let mut c = core();
    let (dest, bytes) = only_reply(
        &mut c,
        &request("OPTIONS", "sip:edge.example.com", ";rport", ""),
    );
    let r = Message::parse(&bytes).unwrap();
    r.validate().unwrap();
    assert_eq!(r.status(), Some(200));
    assert!(r
        .header(HeaderName::Allow)
        .unwrap()
        .windows(7)
        .any(|w| w == b"OPTIONS"));
    assert!(r.header(HeaderName::Accept).is_some());
    assert!(r.header_values(HeaderName::Supported).next().is_some());
    assert!(
        r.to().unwrap().tag().is_some(),
        "RFC 3261 §8.2.6.2: To tag added"
    );
    assert_eq!(r.call_id().unwrap(), b"call-OPTIONS@10.0.0.5");
    // rport requested: reply to the source address and port, and say what they were.
    assert_eq!(dest, PHONE.parse().unwrap());
    let via = r.top_via().unwrap();
    assert_eq!(via.rport(), RPort::Port(40123));
    assert_eq!(via.received(), Some(&b"192.0.2.50"[..]));
    assert_eq!(c.stats().replies_out, 1);
}

#[test]
fn without_rport_the_reply_goes_to_the_via_port() {
    let mut c = core();
    let (dest, bytes) = only_reply(&mut c, &request("OPTIONS", "sip:127.0.0.1", "", ""));
    assert_eq!(dest, "192.0.2.50:5070".parse().unwrap());
    let r = Message::parse(&bytes).unwrap();
    assert_eq!(r.top_via().unwrap().received(), Some(&b"192.0.2.50"[..]));
}

#[test]
fn retransmission_gets_the_same_to_tag() {
    let mut c = core();
    let req = request("OPTIONS", "sip:edge.example.com", "", "");
    let (_, a) = only_reply(&mut c, &req);
    let (_, b) = only_reply(&mut c, &req);
    let tag = |b: &[u8]| {
        Message::parse(b)
            .unwrap()
            .to()
            .unwrap()
            .tag()
            .unwrap()
            .to_vec()
    };
    assert_eq!(tag(&a), tag(&b));
    // Another request (another branch, another From tag) gets another tag.
    let other = request("OPTIONS", "sip:edge.example.com", "-2", "");
    let (_, c2) = only_reply(&mut c, &other);
    assert_ne!(tag(&a), tag(&c2));
    let other = String::from_utf8(req).unwrap().replace("tag=a1", "tag=a2");
    let (_, c3) = only_reply(&mut c, other.as_bytes());
    assert_ne!(tag(&a), tag(&c3));
}

fn status_of(c: &mut Core, req: &[u8]) -> u16 {
    let (_, bytes) = only_reply(c, req);
    Message::parse(&bytes).unwrap().status().unwrap()
}

#[test]
fn methods_the_edge_does_not_handle_itself() {
    let mut c = core();
    // An INVITE is relayed now (issue 7): an unregistered callee gets one stateless 404,
    // no 100 before it (issue 13).
    let replies = exchange(
        &mut c,
        &request("INVITE", "sip:bob@edge.example.com", "", ""),
    );
    let codes: Vec<u16> = replies
        .iter()
        .map(|(_, b)| Message::parse(b).unwrap().status().unwrap())
        .collect();
    assert_eq!(codes, [404]);
    let (_, bytes) = only_reply(&mut c, &request("PUBLISH", "sip:edge.example.com", "", ""));
    let r = Message::parse(&bytes).unwrap();
    assert_eq!(r.status(), Some(405), "the edge itself is the UAS");
    assert!(
        r.header(HeaderName::Allow).is_some(),
        "RFC 3261 §21.4.6: 405 carries Allow"
    );
    let (_, bytes) = only_reply(
        &mut c,
        &request("SUBSCRIBE", "sip:elsewhere.example.net", "", ""),
    );
    let r = Message::parse(&bytes).unwrap();
    assert_eq!(r.status(), Some(403), "not an open relay");
    assert_eq!(
        status_of(
            &mut c,
            &request("FROBNICATE", "sip:edge.example.com", "", "")
        ),
        501
    );
    assert_eq!(
        status_of(
            &mut c,
            &request("CANCEL", "sip:bob@edge.example.com", "", "")
        ),
        481
    );
    assert_eq!(
        status_of(
            &mut c,
            &request("OPTIONS", "sip:elsewhere.example.net", "", "")
        ),
        403
    );
    assert_eq!(
        status_of(&mut c, &request("OPTIONS", "tel:+15551234567", "", "")),
        416
    );
    assert!(exchange(&mut c, &request("ACK", "sip:bob@edge.example.com", "", "")).is_empty());
}

#[test]
fn unsupported_require_gets_420_naming_the_tag() {
    let mut c = core();
    let (_, bytes) = only_reply(
        &mut c,
        &request(
            "OPTIONS",
            "sip:edge.example.com",
            "",
            "Require: nonsenseext\r\n",
        ),
    );
    let r = Message::parse(&bytes).unwrap();
    assert_eq!(r.status(), Some(420));
    assert_eq!(r.header(HeaderName::Unsupported), Some(&b"nonsenseext"[..]));
}

#[test]
fn malformed_requests_get_their_error_reply_and_are_counted() {
    let mut c = core();
    let bad_cseq = request("OPTIONS", "sip:edge.example.com", "", "").replace_cseq();
    let (_, bytes) = only_reply(&mut c, &bad_cseq);
    let r = Message::parse(&bytes).unwrap();
    assert_eq!(r.status(), Some(400));
    assert_eq!(r.reason(), Some(&b"CSeq Method Mismatch"[..]));
    let idx = ParseErrorKind::CSeqMethodMismatch.index();
    assert_eq!(c.stats().parse_errors[idx], 1);
    assert!(matches!(
        c.poll_event(),
        Some(CoreEvent::Malformed {
            kind: ParseErrorKind::CSeqMethodMismatch,
            answered: true,
            ..
        })
    ));

    let v7 = String::from_utf8(request("OPTIONS", "sip:edge.example.com", "", ""))
        .unwrap()
        .replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1);
    assert_eq!(status_of(&mut c, v7.as_bytes()), 505);

    // Garbage and unanswerable messages are dropped and counted, never answered.
    assert!(exchange(&mut c, b"\x16\x03\x01\x02\x00garbage").is_empty());
    assert!(exchange(&mut c, b"OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n").is_empty());
    assert_eq!(c.stats().dropped, 2);
}

#[test]
fn responses_and_keepalives_are_absorbed() {
    let mut c = core();
    let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKnone\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    assert!(exchange(&mut c, resp).is_empty());
    assert_eq!(c.stats().responses_unmatched, 1);
    assert!(exchange(&mut c, b"\r\n\r\n").is_empty());
    assert_eq!(c.stats().keepalives_in, 1);
}

#[test]
fn a_handed_off_datagram_is_answered_by_the_receiving_shard() {
    let mut c = core();
    c.handle_shard_msg(
        Millis(5),
        ShardId(1),
        ShardMsg::Datagram {
            local: LocalId(2),
            remote: PHONE.parse().unwrap(),
            arrived: Millis(4),
            bytes: request("OPTIONS", "sip:edge.example.com", ";rport", ""),
            parsed: None,
        },
    );
    let t = c.poll_transmit().unwrap();
    assert_eq!((t.local, t.remote), (LocalId(2), PHONE.parse().unwrap()));
    assert_eq!(c.stats().shard_msgs_in, 1);
}

trait ReplaceCseq {
    fn replace_cseq(self) -> Vec<u8>;
}

impl ReplaceCseq for Vec<u8> {
    fn replace_cseq(self) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replace("CSeq: 3 OPTIONS", "CSeq: 3 INVITE")
            .into_bytes()
    }
}

/// Issue 13: the To tags of stateless replies go on the wire, so they are keyed by the node
/// secret and never by the location table's seed (collected outputs of the table hasher
/// would let an attacker aim collisions at the table). Same secret, different seeds: the
/// same tag; another secret: another tag.
#[test]
fn stateless_to_tags_depend_on_the_secret_not_the_table_seed() {
    let tag_with = |seed: u64, secret: u8| {
        let mut cfg = CoreConfig {
            domains: vec!["edge.example.com".into()],
            seed,
            ..CoreConfig::default()
        };
        cfg.proxy.secret =
            sipedge_core::NodeSecret::from_hex(&format!("{secret:02x}").repeat(32)).unwrap();
        let mut c = Core::new(cfg);
        let (_, bytes) = only_reply(
            &mut c,
            &request("OPTIONS", "sip:edge.example.com", ";rport", ""),
        );
        let r = Message::parse(&bytes).unwrap();
        String::from_utf8(r.to().unwrap().tag().unwrap().to_vec()).unwrap()
    };
    assert_eq!(tag_with(1, 7), tag_with(0xdead_beef, 7));
    assert_ne!(tag_with(1, 7), tag_with(1, 8));
}
