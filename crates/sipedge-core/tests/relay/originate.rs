//! A MESSAGE the edge originates for the admin API (issue 18, RFC 3428): built right, sent
//! to each contact's flow, every final collected for the operator, a timeout an answer of
//! 408 to the operator only — and never a response on the wire.

use sipedge_core::admin::{AdminQuery, AdminReply, Delivery, OutgoingMessage, MAX_MESSAGE_BODY};
use sipedge_core::{Core, Millis};
use sipedge_msg::HeaderName;

use super::harness::*;
use super::{core_with_bob, labels, T1};

fn message(to: &str, body: &str) -> AdminQuery {
    AdminQuery::Message(OutgoingMessage {
        aor: to.as_bytes().to_vec(),
        from: b"sip:noc@edge.example.com".to_vec(),
        content_type: b"text/plain".to_vec(),
        body: body.as_bytes().to_vec(),
    })
}

fn bob() -> String {
    format!("sip:bob@{DOMAIN}")
}

fn replies(c: &mut Core) -> Vec<(u64, AdminReply)> {
    std::iter::from_fn(|| c.poll_admin_reply()).collect()
}

fn delivered(code: u16, reason: &str, contact: &str) -> Delivery {
    Delivery {
        contact: contact.as_bytes().to_vec(),
        code,
        reason: reason.as_bytes().to_vec(),
    }
}

#[test]
fn the_message_is_built_per_rfc_3428_and_its_200_goes_to_the_operator_only() {
    let mut c = core_with_bob();
    c.handle_admin(Millis(10), 7, message(&bob(), "Maintenance at 22:00"));
    assert!(replies(&mut c).is_empty(), "no answer before the contact's");
    let out = drain(&mut c);
    assert_eq!(labels(&out), ["MESSAGE"]);
    let m = &out[0];
    assert_eq!(m.to, addr(BOB));
    // RFC 3428 §4: Request-URI the contact, To the AoR, From ours with a tag, CSeq 1.
    assert_eq!(m.ruri(), format!("sip:bob@{BOB}"));
    assert_eq!(m.header(HeaderName::To).unwrap(), format!("<{}>", bob()));
    let from = m.header(HeaderName::From).unwrap();
    assert!(
        from.starts_with("<sip:noc@edge.example.com>;tag="),
        "{from}"
    );
    assert_eq!(m.header(HeaderName::CSeq).as_deref(), Some("1 MESSAGE"));
    assert_eq!(m.header(HeaderName::MaxForwards).as_deref(), Some("70"));
    assert_eq!(
        m.header(HeaderName::ContentType).as_deref(),
        Some("text/plain")
    );
    assert!(m.bytes.ends_with(b"\r\n\r\nMaintenance at 22:00"));
    assert_eq!(m.via_count(), 1, "our Via alone");
    assert!(m.top_branch().starts_with("z9hG4bKsE"), "a branch of ours");
    assert!(m.header(HeaderName::CallId).unwrap().len() >= 32);

    // The phone answers: the operator gets it, nobody gets a response on the wire.
    let back = send(&mut c, 20, BOB, &respond(m, 200, "OK", "b1", ""));
    assert!(back.is_empty(), "nothing sent: {:?}", labels(&back));
    assert_eq!(
        replies(&mut c),
        [(
            7,
            AdminReply::Delivered {
                owner: c.shard(),
                results: vec![delivered(200, "OK", &format!("sip:bob@{BOB}"))],
            }
        )]
    );
    // A retransmitted 200 changes nothing; the cell ends after timer K.
    assert!(send(&mut c, 30, BOB, &respond(m, 200, "OK", "b1", "")).is_empty());
    assert!(replies(&mut c).is_empty());
    assert!(advance(&mut c, 20_000).is_empty());
    assert_eq!(c.transaction_count(), 0);
    assert_eq!(c.originated_in_flight(), 0);
    c.check_invariants().unwrap();
}

#[test]
fn a_nated_contact_is_reached_at_its_flow() {
    let mut c = Core::new(config());
    register(
        &mut c,
        0,
        "bob",
        "sip:bob@10.0.0.7:5060",
        "198.51.100.10:40000",
    );
    c.handle_admin(Millis(10), 1, message(&bob(), "hi"));
    let out = drain(&mut c);
    assert_eq!(labels(&out), ["MESSAGE"]);
    assert_eq!(
        out[0].to,
        addr("198.51.100.10:40000"),
        "the received source"
    );
    assert_eq!(out[0].ruri(), "sip:bob@10.0.0.7:5060");
}

#[test]
fn two_contacts_each_final_is_listed() {
    let mut c = core_with_bob();
    register(&mut c, 0, "bob", &format!("sip:bob@{BOB2}"), BOB2);
    c.handle_admin(Millis(10), 3, message(&bob(), "x"));
    let out = drain(&mut c);
    assert_eq!(labels(&out), ["MESSAGE", "MESSAGE"]);
    let to = |a: &str| out.iter().find(|o| o.to == addr(a)).unwrap().clone();
    let (m1, m2) = (to(BOB), to(BOB2));
    assert_ne!(m1.top_branch(), m2.top_branch());
    assert!(send(&mut c, 15, BOB2, &respond(&m2, 180, "Ringing", "c", "")).is_empty());
    assert!(send(&mut c, 20, BOB2, &respond(&m2, 486, "Busy Here", "c", "")).is_empty());
    assert!(replies(&mut c).is_empty(), "one contact still to answer");
    assert!(send(&mut c, 30, BOB, &respond(&m1, 200, "OK", "b", "")).is_empty());
    let r = replies(&mut c);
    assert_eq!(r.len(), 1);
    let AdminReply::Delivered { results, .. } = &r[0].1 else {
        panic!("{r:?}")
    };
    let mut got: Vec<(String, u16)> = results
        .iter()
        .map(|d| (String::from_utf8_lossy(&d.contact).into_owned(), d.code))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (format!("sip:bob@{BOB}"), 200),
            (format!("sip:bob@{BOB2}"), 486)
        ]
    );
}

#[test]
fn a_silent_contact_is_a_408_for_the_operator_and_nothing_on_the_wire() {
    let mut c = core_with_bob();
    c.handle_admin(Millis(0), 9, message(&bob(), "anyone?"));
    let first = drain(&mut c);
    let mut at = Vec::new();
    let mut t = 0;
    while t < 40_000 {
        t += 10;
        for o in advance(&mut c, t) {
            assert_eq!(o.to, addr(BOB), "only bob hears from us");
            assert_eq!(o.bytes, first[0].bytes, "the MESSAGE again, byte for byte");
            at.push(t);
        }
        if let Some(r) = c.poll_admin_reply() {
            assert_eq!(t, 64 * T1, "timer F");
            assert_eq!(
                r,
                (
                    9,
                    AdminReply::Delivered {
                        owner: c.shard(),
                        results: vec![delivered(408, "Request Timeout", &format!("sip:bob@{BOB}"))],
                    }
                )
            );
        }
    }
    // Timer E: T1, 2T1, 4T1, then T2 apart (§17.1.2.2), stopped by F.
    assert_eq!(&at[..4], [500, 1500, 3500, 7500]);
    assert!(*at.last().unwrap() < 64 * T1);
    assert_eq!(c.transaction_count(), 0);
    c.check_invariants().unwrap();
}

#[test]
fn refusals_are_answered_at_once_and_send_nothing() {
    let mut c = core_with_bob();
    let ask = |c: &mut Core, q| {
        c.handle_admin(Millis(5), 4, q);
        assert!(drain(c).is_empty(), "nothing sent");
        replies(c)
    };
    let unknown = format!("sip:nobody@{DOMAIN}");
    assert_eq!(
        ask(&mut c, message(&unknown, "x")),
        [(4, AdminReply::NotRegistered)]
    );
    let big = "x".repeat(MAX_MESSAGE_BODY + 1);
    assert!(matches!(
        &ask(&mut c, message(&bob(), &big))[..],
        [(4, AdminReply::Refused { code: 413, .. })]
    ));
    let mut q = message(&bob(), "x");
    if let AdminQuery::Message(m) = &mut q {
        m.from = b"sip:noc@edge.example.com>\r\nX-Injected: 1".to_vec();
    }
    assert!(matches!(
        &ask(&mut c, q)[..],
        [(4, AdminReply::Refused { code: 400, .. })]
    ));
    let mut q = message(&bob(), "x");
    if let AdminQuery::Message(m) = &mut q {
        m.content_type = b"text/plain\r\nX-Injected: 1".to_vec();
    }
    assert!(matches!(
        &ask(&mut c, q)[..],
        [(4, AdminReply::Refused { code: 400, .. })]
    ));
    assert_eq!(
        ask(&mut c, message("tel:+15551234", "x")),
        [(4, AdminReply::NotAnAor)]
    );
    assert_eq!(c.transaction_count(), 0);
}

#[test]
fn in_flight_originations_are_capped() {
    let mut c = core_with_bob();
    let mut busy = 0;
    for i in 0..100 {
        c.handle_admin(Millis(1), i, message(&bob(), "x"));
        for (_, r) in replies(&mut c) {
            assert!(matches!(r, AdminReply::Refused { code: 503, .. }), "{r:?}");
            busy += 1;
        }
    }
    assert_eq!(c.originated_in_flight(), 64);
    assert_eq!(busy, 36);
    drain(&mut c);
    advance(&mut c, 64 * T1 + 10);
    assert_eq!(replies(&mut c).len(), 64, "every sent one answered (408)");
    assert_eq!(c.originated_in_flight(), 0);
}

#[test]
fn the_owner_shard_sends_and_a_response_landing_elsewhere_reaches_it() {
    let (mut s0, mut s1) = two_shards();
    let owner_is_0 = s0.lookup(Millis(0), bob().as_bytes()).is_ok();
    let (owner, other) = if owner_is_0 {
        (&mut s0, &mut s1)
    } else {
        (&mut s1, &mut s0)
    };
    register(owner, 0, "bob", &format!("sip:bob@{BOB}"), BOB);
    other.handle_admin(Millis(5), 2, message(&bob(), "x"));
    assert!(matches!(
        other.poll_admin_reply(),
        Some((2, AdminReply::NotOwner(_)))
    ));
    owner.handle_admin(Millis(5), 2, message(&bob(), "x"));
    let out = drain(owner);
    // bob's 200 lands on the other shard's socket: one hop to the owner.
    assert!(send(other, 10, BOB, &respond(&out[0], 200, "OK", "b", "")).is_empty());
    let (to, msg) = other.poll_shard_msg().unwrap();
    assert_eq!(to, owner.shard());
    owner.handle_shard_msg(Millis(10), other.shard(), msg);
    assert!(drain(owner).is_empty());
    assert!(matches!(
        owner.poll_admin_reply(),
        Some((2, AdminReply::Delivered { .. }))
    ));
}
