//! Issue 20 item 5, `[cluster] takeover = true`: when an edge dies, ONE surviving edge with
//! `takeover` adopts its bindings — they move into its location table, it pings them, and
//! calls reach the phone from its address. On loopback 127.0.66.0/24: Redis 127.0.66.1–3
//! (7661–7663), edges A, B, C on 127.0.66.11–13 (SIP 5660, admin 5661), phone .31, caller
//! .32.
//!
//! The floating address itself (A's address moving to B's host) is outside a loopback
//! test: B delivering from its own address to the phone's NAT address is what a floating
//! deployment needs once the address has moved (B then also listens on it, and picks that
//! socket for the adopted bindings).

use std::time::{Duration, Instant};

use crate::common::{Client, Edge};
use crate::edges::*;
use crate::redis::{self, RedisCluster};

const EDGES: [&str; 3] = ["127.0.66.11", "127.0.66.12", "127.0.66.13"];
const PORT: u16 = 5660;

fn edge(i: usize, cluster: &RedisCluster, more: &str) -> Edge {
    let urls: Vec<String> = cluster.urls().iter().map(|u| format!("\"{u}\"")).collect();
    let peers: Vec<String> = EDGES
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .map(|(_, ip)| format!("\"{ip}\""))
        .collect();
    // NAT pings forced on every binding, every 2 s (the phone answers them).
    let extra = format!(
        "\n[cluster]\nmode = \"cluster\"\nnode = \"{}\"\nredis = [{}]\npeers = [{}]\n{more}\n\
         [nat]\nmode = \"force\"\nping_interval_secs = 2\nping_nated_only = false\n\
         ping_failures_max = 7\n[overload]\nenabled = false\n",
        node_name(i),
        urls.join(", "),
        peers.join(", ")
    );
    Edge::start_with(&format!("takeover-{i}"), EDGES[i], PORT, 2, "auto", &extra)
}

/// A and B have `takeover = true`, C does not. A phone registers on A; `kill -9` A; within
/// a few seconds B (the only survivor with takeover) claims A and adopts the phone's
/// binding: counted, in B's table, rewritten in Redis as B's (A's stale value cannot win:
/// B's is versioned at the adoption), pinged from B's address, and a call through C (which
/// has no takeover) reaches the phone from B's address.
#[test]
fn a_survivor_with_takeover_adopts_a_dead_edges_bindings_pings_them_and_delivers_calls() {
    if !redis::available() {
        return;
    }
    let cluster = RedisCluster::start(&[
        ("127.0.66.1", 7661),
        ("127.0.66.2", 7662),
        ("127.0.66.3", 7663),
    ]);
    let mut a = edge(0, &cluster, "takeover = true");
    let b = edge(1, &cluster, "takeover = true");
    let c = edge(2, &cluster, "");
    let phone = Client::new("127.0.66.31");
    register_phone(&phone, &a, "alice", "reg-alice", 1);
    await_in_redis(&cluster, "alice", "edge-a");
    assert_eq!(
        b.metric("sipedge_bindings{", None),
        0,
        "B has nothing of its own"
    );
    // Both survivors have seen A alive (liveness is read once a second).
    std::thread::sleep(Duration::from_millis(1500));
    a.kill_9();
    let killed = Instant::now();
    assert!(
        wait_for(Duration::from_secs(8), || b
            .metric("sipedge_cluster_adopted_total", None)
            >= 1),
        "B adopted A's binding"
    );
    let took = killed.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "adopted {took:?} after the kill"
    );
    assert_eq!(b.metric("sipedge_cluster_takeovers_total", None), 1);
    assert_eq!(c.metric("sipedge_cluster_takeovers_total", None), 0);
    assert_eq!(
        cluster.cli(&["GET", "sipedge:takeover:edge-a"]).trim(),
        "edge-b",
        "B holds the claim"
    );
    assert_eq!(
        b.metric("sipedge_bindings{", None),
        1,
        "in B's location table"
    );
    // The write-behind rewrote it as B's.
    let key = aor_key("alice");
    assert!(
        wait_for(Duration::from_secs(5), || {
            let v = cluster.cli(&["HGETALL", &key]);
            v.contains("edge-b")
                && v.contains(&format!("{}:{PORT}", EDGES[1]))
                && !v.contains("edge-a")
        }),
        "Redis holds alice as B's: {}",
        cluster.cli(&["HGETALL", &key])
    );
    // B pings the phone (and the phone answers); A's pings from before the kill may still
    // wait in the phone's socket.
    let deadline = Instant::now() + Duration::from_secs(6);
    let pinged_by_b = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some((from, ping)) = recv_where(&phone, left, |m| {
            m.is_request() && m.cseq().is_ok_and(|c| c.method.as_bytes() == b"OPTIONS")
        }) else {
            break false;
        };
        phone.send(from, &response_to(&ping, 200, "OK", "p0", ""));
        if from == b.sip {
            break true;
        }
    };
    assert!(pinged_by_b, "B's NAT ping reached the phone");
    // A call through C (no takeover) reaches the phone from B.
    let caller = Client::new("127.0.66.32");
    let seen = full_call(&caller, c.sip, &phone, "alice", "after-takeover");
    assert_eq!(seen.invite_from, b.sip, "delivered by B");
}
