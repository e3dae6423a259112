//! Calls across three edges (issue 20 items 4 and 5): register on A, call through B; array
//! mode with `share = false`; `kill -9` of A (takeover: `takeover.rs`).

use std::time::{Duration, Instant};

use crate::common::{Client, Edge, WAIT};
use crate::edges::*;
use crate::redis::{self, RedisCluster};

/// Sum of `cmdstat_<cmd>` calls over every node (`INFO commandstats`).
fn redis_calls(cluster: &RedisCluster, cmd: &str) -> u64 {
    cluster
        .nodes
        .iter()
        .map(|n| {
            let info = n.cli(&["INFO", "commandstats"]);
            info.lines()
                .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
                .and_then(|r| r.split(',').next()?.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

fn three_edges(
    tag: &str,
    cluster: &RedisCluster,
    port: u16,
    mode: &str,
    more: [&str; 3],
) -> Vec<Edge> {
    (0..3)
        .map(|i| {
            start_edge(
                &format!("{tag}-{i}"),
                i,
                port,
                &cluster_toml(i, mode, &cluster.urls(), more[i]),
            )
        })
        .collect()
}

/// Item 4: a phone registered on A is called through B. B finds the binding in Redis and
/// relays to A (its home edge), which delivers on the phone's flow — the INVITE reaches
/// the phone from A's address, carrying A's and B's Record-Route; the 200 reaches the
/// caller; ACK and BYE follow the Record-Route through B and A. A second call within the
/// expiry is answered from B's cache: no new Redis read.
#[test]
fn register_on_a_call_through_b_reaches_the_phone_via_a_and_hits_the_cache_the_second_time() {
    if !redis::available() {
        return;
    }
    let cluster = redis_cluster(7011);
    let edges = three_edges("cl-call", &cluster, 5110, "cluster", ["", "", ""]);
    let (a, b) = (&edges[0], &edges[1]);
    let phone = Client::new(PHONE_IP);
    register_phone(&phone, a, "alice", "reg-alice", 1);
    await_in_redis(&cluster, "alice", "edge-a");
    let caller = Client::new(CALLER_IP);
    let seen = full_call(&caller, b.sip, &phone, "alice", "call-1");
    assert_eq!(seen.invite_from, a.sip, "delivered by the home edge A");
    assert_eq!(
        seen.ack_from, a.sip,
        "ACK along the Record-Route, last hop A"
    );
    assert_eq!(
        seen.bye_from, a.sip,
        "BYE along the Record-Route, last hop A"
    );
    let rr = header_values(&seen.invite, &["Record-Route"]);
    assert_eq!(rr.len(), 2, "A's and B's Record-Route: {rr:?}");
    assert!(rr[0].contains(&a.sip.to_string()), "A on top: {rr:?}");
    assert!(rr[1].contains(&b.sip.to_string()), "then B: {rr:?}");
    assert_eq!(b.metric("sipedge_relay_remote_found_total", None), 1);
    assert_eq!(
        a.metric("sipedge_relay_remote_lookups_total", None),
        0,
        "A delivers from its own table (a peer's request is never looked up again)"
    );
    // The second call: B's cache, no Redis read.
    let (hits, misses) = (
        b.metric("sipedge_cluster_cache_hits_total", None),
        b.metric("sipedge_cluster_cache_misses_total", None),
    );
    assert_eq!(misses, 1);
    let reads = redis_calls(&cluster, "hgetall");
    let seen = full_call(&caller, b.sip, &phone, "alice", "call-2");
    assert_eq!(seen.invite_from, a.sip);
    assert_eq!(b.metric("sipedge_cluster_cache_hits_total", None), hits + 1);
    assert_eq!(b.metric("sipedge_cluster_cache_misses_total", None), misses);
    assert_eq!(redis_calls(&cluster, "hgetall"), reads, "no new Redis read");
    // Nobody else pings the phone: only its home edge holds the binding.
    for e in &edges[1..] {
        assert_eq!(e.metric("sipedge_bindings{", None), 0, "{}", e.sip);
    }
}

/// Item 1 (array mode): C has `share = false`, so a user registered on C is not found
/// through A (480) and nothing of C's reaches Redis; A's users are found through C.
#[test]
fn array_mode_hides_the_users_of_an_edge_that_does_not_share() {
    if !redis::available() {
        return;
    }
    let cluster = redis_cluster(7021);
    let edges = three_edges(
        "cl-array",
        &cluster,
        5120,
        "array",
        ["", "", "share = false"],
    );
    let (a, c) = (&edges[0], &edges[2]);
    let bob = Client::new(PHONE_IP);
    register_phone(&bob, c, "bob", "reg-bob", 1);
    let alice = Client::new(PHONE_IP);
    register_phone(&alice, a, "alice", "reg-alice", 1);
    await_in_redis(&cluster, "alice", "edge-a");
    // C's heartbeat does not make it write bindings: nothing of bob's in Redis.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(cluster.cli(&["EXISTS", &aor_key("bob")]).trim(), "0");
    assert_eq!(c.metric("sipedge_cluster_writes_total", None), 0);
    let caller = Client::new(CALLER_IP);
    let fin = invite_final(&caller, a.sip, "bob", "to-bob", Duration::from_secs(3))
        .expect("a final answer for bob");
    assert_eq!(status(&fin), 480, "bob is hidden from A");
    assert!(
        bob.drain_for(Duration::from_millis(300)).is_empty(),
        "nothing reached bob"
    );
    // A's user through C: C reads what A shares.
    let seen = full_call(&caller, c.sip, &alice, "alice", "to-alice");
    assert_eq!(seen.invite_from, a.sip);
}

/// Item 5 (an edge dies): A's bindings stay in Redis until they expire, but once A's
/// liveness key is gone a call through B to A's user gets 480 at once (not a lookup
/// timeout; B's cached copy of the binding is no exception). No edge has `takeover` here:
/// with it a survivor adopts A's bindings (`takeover.rs`).
#[test]
fn after_kill_9_of_a_calls_to_its_users_get_480_fast() {
    if !redis::available() {
        return;
    }
    let cluster = redis_cluster(7031);
    let slow_timeout = "lookup_timeout_ms = 2000";
    let mut edges = three_edges("cl-kill", &cluster, 5130, "cluster", ["", slow_timeout, ""]);
    let phone = Client::new(PHONE_IP);
    register_phone(&phone, &edges[0], "alice", "reg-alice", 1);
    await_in_redis(&cluster, "alice", "edge-a");
    let caller = Client::new(CALLER_IP);
    // B caches alice's binding.
    full_call(&caller, edges[1].sip, &phone, "alice", "before");
    edges[0].kill_9();
    let killed = Instant::now();
    assert!(
        wait_for(Duration::from_secs(6), || cluster
            .cli(&["EXISTS", "sipedge:node:edge-a"])
            .trim()
            == "0"),
        "A's liveness key expired"
    );
    let gone = killed.elapsed();
    assert!(
        gone <= Duration::from_millis(4500),
        "liveness gone in {gone:?}"
    );
    // The binding itself is still there, until its own expiry.
    let key = aor_key("alice");
    assert!(cluster.cli(&["HGETALL", &key]).contains("edge-a"));
    let pttl: i64 = cluster.cli(&["PTTL", &key]).trim().parse().unwrap();
    assert!(pttl > 500_000, "kept until it expires: {pttl}");
    // B's liveness view is refreshed once a second.
    std::thread::sleep(Duration::from_millis(1300));
    let b = &edges[1];
    let t = Instant::now();
    let fin = invite_final(&caller, b.sip, "alice", "after", WAIT).expect("an answer");
    let took = t.elapsed();
    assert_eq!(status(&fin), 480);
    assert!(
        took < Duration::from_millis(1000),
        "480 at once, took {took:?}"
    );
    assert_eq!(b.metric("sipedge_relay_remote_timeouts_total", None), 0);
    assert!(b.metric("sipedge_relay_remote_not_found_total", None) >= 1);
    assert!(phone.drain_for(Duration::from_millis(200)).is_empty());
}
