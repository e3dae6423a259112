//! Failures (issue 20 item 5): a Redis master killed during a registration storm, and an
//! edge killed -9 and restarted on its journal.

use std::time::Duration;

use crate::common::{register, Client, Edge, WAIT};
use crate::edges::*;
use crate::redis::{self, RedisCluster};

/// The index of the node that holds `key` (`CLUSTER COUNTKEYSINSLOT` on each).
fn holder(cluster: &RedisCluster, key: &str) -> usize {
    let slot = cluster.cli(&["CLUSTER", "KEYSLOT", key]).trim().to_string();
    (0..cluster.nodes.len())
        .find(|&i| {
            cluster.nodes[i]
                .cli(&["CLUSTER", "COUNTKEYSINSLOT", &slot])
                .trim()
                == "1"
        })
        .unwrap_or_else(|| panic!("nobody holds {key} (slot {slot})"))
}

/// Binding hashes stored over the whole cluster (`--scan` on every node).
fn stored_bindings(cluster: &RedisCluster) -> usize {
    cluster
        .nodes
        .iter()
        .map(|n| {
            n.cli(&["--scan", "--pattern", "sipedge:b:*"])
                .lines()
                .filter(|l| !l.is_empty())
                .count()
        })
        .sum()
}

/// `count` REGISTERs (users `{prefix}{n}`) spread over the edges, one client per edge,
/// paced `every`; each must be answered 200.
fn storm(edges: &[Edge], prefix: &str, count: usize, every: Duration) {
    let clients: Vec<Client> = (0..edges.len()).map(|_| Client::new(PHONE_IP)).collect();
    for n in 0..count {
        let i = n % edges.len();
        let user = format!("{prefix}{n}");
        let contact = format!("<sip:{user}@192.0.2.9:5060>");
        let c = &clients[i];
        c.send(
            edges[i].sip,
            &register(
                c,
                &user,
                Some(&contact),
                Some(600),
                &format!("st-{user}"),
                1,
            ),
        );
        let got = recv_where(c, WAIT, |m| m.is_response()).map(|(_, m)| m);
        assert_eq!(
            got.as_deref().map(status),
            Some(200),
            "REGISTER {user} at {}: {}",
            edges[i].sip,
            String::from_utf8_lossy(got.as_deref().unwrap_or_default())
        );
        std::thread::sleep(every);
    }
}

/// Item 5 (Redis fails): with `--cluster-replicas 0` a dead master's slots have no copy, and
/// with Redis' default `cluster-require-full-coverage yes` the whole cluster refuses
/// commands (CLUSTERDOWN) once the master is marked failed (`cluster-node-timeout` 2 s).
/// Expected, and asserted: every edge keeps answering REGISTERs 200 throughout and serves
/// its own users' calls; the writes fail (`write_errors`) and wait in the backlog; a
/// lookup for another edge's user is Unavailable → 480. The master comes back empty (no
/// persistence): the backlog drains to 0 and each edge re-sends its whole table (a resync
/// when Redis returns), so the AoRs the dead master held are found again.
#[test]
fn a_redis_master_killed_during_a_registration_storm() {
    if !redis::available() {
        return;
    }
    let mut cluster = redis_cluster(7041);
    let edges: Vec<Edge> = (0..3)
        .map(|i| {
            start_edge(
                &format!("cl-storm-{i}"),
                i,
                5140,
                &cluster_toml(i, "cluster", &cluster.urls(), ""),
            )
        })
        .collect();
    let phone = Client::new(PHONE_IP);
    register_phone(&phone, &edges[0], "alice", "reg-alice", 1);
    await_in_redis(&cluster, "alice", "edge-a");
    storm(&edges, "s", 150, Duration::ZERO);
    for e in &edges {
        assert_eq!(
            e.await_metric("sipedge_cluster_backlog", 0, Duration::from_secs(10)),
            0
        );
    }
    assert!(wait_for(Duration::from_secs(10), || stored_bindings(
        &cluster
    ) == 151));
    // Kill the master that holds alice, mid-storm.
    let victim = holder(&cluster, &aor_key("alice"));
    cluster.nodes[victim].kill();
    storm(&edges, "t", 150, Duration::from_millis(25));
    // The survivors declared the cluster down by now (node timeout 2 s).
    let alive = (victim + 1) % 3;
    assert!(wait_for(Duration::from_secs(10), || cluster.nodes[alive]
        .cli(&["CLUSTER", "INFO"])
        .contains("cluster_state:fail")));
    storm(&edges, "u", 30, Duration::ZERO);
    for e in &edges {
        assert!(
            wait_for(Duration::from_secs(5), || e
                .metric("sipedge_cluster_write_errors_total", None)
                > 0),
            "write errors counted at {}",
            e.sip
        );
        assert!(e.metric("sipedge_cluster_backlog", None) >= 10, "{}", e.sip);
        assert!(e.metric("sipedge_cluster_redis_up", None) == 0, "{}", e.sip);
    }
    // Calls: A still reaches its own phone; B cannot look alice up.
    let caller = Client::new(CALLER_IP);
    let seen = full_call(&caller, edges[0].sip, &phone, "alice", "local");
    assert_eq!(seen.invite_from, edges[0].sip);
    let fin = invite_final(&caller, edges[1].sip, "alice", "remote", WAIT).expect("answer");
    assert_eq!(status(&fin), 480);
    assert!(edges[1].metric("sipedge_relay_remote_unavailable_total", None) >= 1);
    // The master returns, empty: backlogs drain, every edge re-sends its table.
    cluster.nodes[victim].restart();
    assert!(wait_for(Duration::from_secs(20), || cluster
        .nodes
        .iter()
        .all(|n| n
            .cli(&["CLUSTER", "INFO"])
            .contains("cluster_state:ok"))));
    for e in &edges {
        assert_eq!(
            e.await_metric("sipedge_cluster_backlog", 0, Duration::from_secs(20)),
            0,
            "backlog drained at {}",
            e.sip
        );
    }
    let want = 1 + 150 + 150 + 30;
    assert!(
        wait_for(Duration::from_secs(20), || stored_bindings(&cluster)
            == want),
        "every binding back in Redis: {} of {want}",
        stored_bindings(&cluster)
    );
    await_in_redis(&cluster, "alice", "edge-a");
    // B's lookup connection comes back within its reconnect backoff (at most 5 s).
    let t = std::time::Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let id = format!("probe-{n}");
        caller.send(edges[1].sip, &invite(&caller, "alice", &id));
        let got = recv_where(&phone, Duration::from_millis(1500), |m| {
            m.is_request() && m.call_id().is_ok_and(|c| c == id.as_bytes())
        });
        if let Some((from, inv)) = got {
            phone.send(
                from,
                &response_to(&inv, 486, "Busy Here", "p", "<sip:x@192.0.2.1>"),
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(12),
            "B finds alice again within its backoff"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!(
        "B reached alice again {:?} after her binding was back in Redis",
        t.elapsed()
    );
    let seen = full_call(&caller, edges[1].sip, &phone, "alice", "again");
    assert_eq!(seen.invite_from, edges[0].sip);
}

/// Item 5 (an edge restarts): A is killed -9 and its binding deleted from Redis; restarted
/// on its journal, A writes its bindings back at once (a start is a resync), and a call
/// through B reaches A's phone right away — the phone does not have to register again.
#[test]
fn a_restarted_edge_rewrites_its_bindings_and_is_reached_again_at_once() {
    if !redis::available() {
        return;
    }
    let cluster = redis_cluster(7051);
    let journal = crate::common::temp_dir("cl-restart-journal");
    let persist = format!(
        "\n[registrar.persistence]\npath = \"{}\"\nsync = \"every\"\n",
        journal.path().join("journal").display()
    );
    let mut edges: Vec<Edge> = (0..2)
        .map(|i| {
            let more = if i == 0 { persist.as_str() } else { "" };
            let cfg = format!("{}{more}", cluster_toml(i, "cluster", &cluster.urls(), ""));
            start_edge(&format!("cl-restart-{i}"), i, 5150, &cfg)
        })
        .collect();
    let phone = Client::new(PHONE_IP);
    register_phone(&phone, &edges[0], "alice", "reg-alice", 1);
    await_in_redis(&cluster, "alice", "edge-a");
    let caller = Client::new(CALLER_IP);
    full_call(&caller, edges[1].sip, &phone, "alice", "before");
    edges[0].kill_9();
    cluster.cli(&["DEL", &aor_key("alice")]);
    assert!(wait_for(Duration::from_secs(6), || cluster
        .cli(&["EXISTS", "sipedge:node:edge-a"])
        .trim()
        == "0"));
    std::thread::sleep(Duration::from_millis(1200));
    let fin = invite_final(&caller, edges[1].sip, "alice", "down", WAIT).expect("answer");
    assert_eq!(status(&fin), 480, "A is down");
    respawn(&mut edges[0], 2);
    assert_eq!(
        edges[0].await_metric("sipedge_bindings{", 1, Duration::from_secs(5)),
        1,
        "A restored alice from its journal"
    );
    await_in_redis(&cluster, "alice", "edge-a");
    // B's liveness view catches up within a second.
    std::thread::sleep(Duration::from_millis(1200));
    let seen = full_call(&caller, edges[1].sip, &phone, "alice", "after");
    assert_eq!(seen.invite_from, edges[0].sip);
}
