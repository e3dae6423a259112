//! Issue 13, sans-IO: every table has a cap, and a cap reached is one stateless 503 with
//! Retry-After (RFC 3261 §21.5.4), counted, and forgotten once load falls.
#![allow(clippy::unwrap_used)]

#[path = "relay/harness.rs"]
mod harness;

use harness::*;
use sipedge_core::{Core, CoreConfig, Millis, ShardId, ShardMsg, TxnLimits};

fn core_with(limits: TxnLimits) -> Core {
    let mut c = Core::new(CoreConfig {
        txn_limits: limits,
        ..config()
    });
    register(&mut c, 0, "bob", &format!("sip:bob@{BOB}"), BOB);
    c
}

/// The Retry-After value of a datagram the edge sent.
fn retry_after(o: &Out) -> Option<String> {
    String::from_utf8_lossy(&o.bytes)
        .lines()
        .find_map(|l| l.strip_prefix("Retry-After: ").map(str::to_owned))
}

fn labels(out: &[Out]) -> Vec<String> {
    out.iter().map(Out::label).collect()
}

#[test]
fn at_max_transactions_a_new_request_gets_one_503_and_the_edge_recovers() {
    let mut c = core_with(TxnLimits {
        max_transactions: 2,
        max_bytes: 1 << 30,
    });
    let first = send(&mut c, 10, ALICE, &invite("c1"));
    assert_eq!(labels(&first), ["100", "INVITE"]);
    assert_eq!(
        labels(&send(&mut c, 20, ALICE, &invite("c2"))),
        ["100", "INVITE"]
    );
    // The third does not fit: one 503 with Retry-After, nothing forwarded, no cell.
    let refused = send(&mut c, 30, ALICE, &invite("c3"));
    assert_eq!(labels(&refused), ["503"]);
    assert_eq!(refused[0].to, addr(ALICE));
    assert_eq!(retry_after(&refused[0]).as_deref(), Some("5"));
    assert_eq!(c.transaction_count(), 2);
    assert_eq!(c.stats().overload.txn_full, 1);
    // Load falls (bob answers, the cells end).
    let busy = send(
        &mut c,
        40,
        BOB,
        &respond(&first[1], 486, "Busy Here", "b1", ""),
    );
    assert_eq!(labels(&busy), ["ACK", "486"]);
    // The 503 was stateless: never retransmitted, whatever the clock does.
    let later = advance(&mut c, 41 + 64 * 500);
    assert!(
        later.iter().all(|o| o.status() != Some(503)),
        "the 503 is not retransmitted: {:?}",
        labels(&later)
    );
    advance(&mut c, 300_000);
    assert_eq!(c.transaction_count(), 0);
    assert_eq!(
        labels(&send(&mut c, 300_010, ALICE, &invite("c4"))),
        ["100", "INVITE"]
    );
}

#[test]
fn at_max_transaction_bytes_a_large_request_gets_503() {
    let mut c = core_with(TxnLimits {
        max_transactions: 1000,
        max_bytes: 16 * 1024,
    });
    let body = "v=0\r\n".repeat(2000); // 10 kB of SDP
    let big = |call: &str| {
        let mut m = String::from_utf8(invite(call)).unwrap();
        m = m.replace(
            "Content-Length: 0\r\n\r\n",
            &format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        m.into_bytes()
    };
    assert_eq!(
        labels(&send(&mut c, 10, ALICE, &big("b1"))),
        ["100", "INVITE"]
    );
    let refused = send(&mut c, 20, ALICE, &big("b2"));
    assert_eq!(labels(&refused), ["503"]);
    assert_eq!(c.stats().overload.txn_bytes_full, 1);
    assert_eq!(c.transaction_count(), 1);
    assert!(
        c.transaction_bytes() <= 16 * 1024,
        "{}",
        c.transaction_bytes()
    );
    // A small request still fits beside it.
    assert_eq!(
        labels(&send(&mut c, 30, ALICE, &invite("s1"))),
        ["100", "INVITE"]
    );
}

/// The AoR of `user` lives on shard 1 of a two-shard edge (the cores are seeded alike).
fn user_owned_by_shard_1(a: &mut Core) -> String {
    for i in 0..100 {
        let user = format!("u{i}");
        let uri = format!("sip:{user}@{DOMAIN}");
        if let Err(sipedge_core::LookupError::NotOwner(ShardId(1))) =
            a.lookup(Millis(0), uri.as_bytes())
        {
            return user;
        }
    }
    panic!("no AoR on shard 1");
}

fn invite_to(user: &str, call: &str) -> Vec<u8> {
    request(
        "INVITE",
        &format!("sip:{user}@{DOMAIN}"),
        &format!("z9hG4bK-{call}"),
        call,
        "",
    )
}

#[test]
fn a_lookup_whose_answer_is_lost_ends_in_503_and_frees_the_cell() {
    let (mut a, mut b) = two_shards();
    let user = user_owned_by_shard_1(&mut a);
    let out = send(&mut a, 10, ALICE, &invite_to(&user, "lost"));
    // The 100 Trying waits for the owner's answer (issue 13: no reply before the decision).
    assert!(labels(&out).is_empty(), "{:?}", labels(&out));
    // The mesh drops the question (a full queue): nothing reaches shard 1.
    let (to, _lost) = a.poll_shard_msg().expect("a lookup for shard 1");
    assert_eq!(to, ShardId(1));
    assert_eq!(a.transaction_count(), 1);
    let _ = &mut b;
    // T2 later the cell gives up: one 503 to the caller, then the cell is freed.
    let out = advance(&mut a, 10 + 4_000);
    assert_eq!(labels(&out), ["503"]);
    assert_eq!(out[0].to, addr(ALICE));
    assert!(retry_after(&out[0]).is_some());
    assert_eq!(a.stats().overload.lookups_lost, 1);
    // The caller's ACK for the 503 (or timer H) ends the server transaction.
    advance(&mut a, 200_000);
    assert_eq!(a.transaction_count(), 0, "the cell is freed");
}

#[test]
fn a_lookup_the_shell_could_not_queue_ends_at_once() {
    let (mut a, _b) = two_shards();
    let user = user_owned_by_shard_1(&mut a);
    send(&mut a, 10, ALICE, &invite_to(&user, "full"));
    let (to, msg) = a.poll_shard_msg().expect("a lookup for shard 1");
    assert!(matches!(msg, ShardMsg::Lookup { .. }));
    a.handle_undelivered(Millis(11), to, msg);
    let out = drain(&mut a);
    assert_eq!(labels(&out), ["503"]);
    assert_eq!(a.stats().overload.shard_msgs_undelivered, 1);
}
