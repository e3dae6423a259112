//! `[cluster]` over the real binary and a real three-master Redis Cluster (issue 20), on
//! loopback 127.0.63.0/24: Redis nodes 127.0.63.1–3 (ports 7001–7003, bus +10000), edges
//! 127.0.63.11–13 (SIP 5060, admin 5061), phones and callers 127.0.63.31–32. Each test has
//! its own Redis ports (70x1–70x3) and edge ports (51x0/51x1): `calls.rs`, `outage.rs`,
//! `nonces.rs`, helpers in `edges.rs`. Skipped with a message when `redis-server` is not
//! installed, never in CI.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;
mod redis;

mod calls;
mod edges;
mod nonces;
mod outage;
mod takeover;

use std::time::{Duration, Instant};

use common::{register, Client, Edge, DOMAIN, WAIT};
use redis::RedisCluster;

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn register_writes_behind_to_the_redis_cluster_and_deregister_leaves_a_tombstone() {
    if !redis::available() {
        return;
    }
    let cluster = RedisCluster::start(&[
        ("127.0.63.1", 7001),
        ("127.0.63.2", 7002),
        ("127.0.63.3", 7003),
    ]);
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let extra = format!(
        "\n[cluster]\nmode = \"cluster\"\nnode = \"edge-a\"\nredis = [{}]\n",
        urls.join(", ")
    );
    let edge = Edge::start_with("cluster-a", "127.0.63.11", 5060, 2, "auto", &extra);
    let phone = Client::new("127.0.63.11");
    let contact = format!("<sip:alice@{}>", phone.addr());
    phone.send(
        edge.sip,
        &register(&phone, "alice", Some(&contact), Some(600), "c1", 1),
    );
    assert_eq!(phone.status(WAIT), Some(200));
    let key = format!("sipedge:b:{{sip:alice@{DOMAIN}}}");
    let want = format!("sip:alice@{}", phone.addr());
    assert!(
        wait_for(Duration::from_secs(5), || cluster
            .cli(&["HGETALL", &key])
            .contains(&want)),
        "the binding was written: {}",
        cluster.cli(&["HGETALL", &key])
    );
    let all = cluster.cli(&["HGETALL", &key]);
    assert!(
        all.contains("edge-a") && all.contains("127.0.63.11:5060"),
        "{all}"
    );
    let pttl: i64 = cluster.cli(&["PTTL", &key]).trim().parse().unwrap();
    assert!(
        (590_000..=600_000).contains(&pttl),
        "TTL ≈ the expiry: {pttl}"
    );
    // The node's liveness key is set.
    assert!(cluster
        .cli(&["GET", "sipedge:node:edge-a"])
        .contains("127.0.63.11:5060"));
    assert!(edge.metric("sipedge_cluster_writes_total", None) >= 1);
    assert_eq!(edge.metric("sipedge_cluster_redis_up", None), 1);
    // Deregistration: the binding is gone from the store, a tombstone stands in its place.
    phone.send(
        edge.sip,
        &register(&phone, "alice", Some(&contact), Some(0), "c1", 2),
    );
    assert_eq!(phone.status(WAIT), Some(200));
    assert!(
        wait_for(Duration::from_secs(5), || {
            let v = cluster.cli(&["HGETALL", &key]);
            v.contains(":t\n") || v.contains(":t\\n")
        }),
        "a tombstone replaced the binding: {}",
        cluster.cli(&["HGETALL", &key])
    );
    assert!(!cluster.cli(&["HGETALL", &key]).contains(":u\n"));
}
