//! Each shard has its own descriptor table (issue 19, `sipedge_rt::own_fd_table`), so
//! RLIMIT_NOFILE bounds the connections of one shard, not of the edge; and a full table
//! refuses connections (closed, counted) instead of leaving them in the listen backlog with
//! the shard spinning on EMFILE. On 127.0.62.0/24 and 127.0.63.0/24.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use crate::common::Edge;
use crate::tcp::{edge, Tcp};

/// A shard with the edge's RLIMIT_NOFILE lowered to `limit` (soft and hard) from outside,
/// once it runs (the edge raises its own limit at start).
fn edge_limited(tag: &str, ip: &str, shards: usize, limit: u64) -> Edge {
    // This process holds the connections too (CI's soft limit may be 1024).
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let e = edge(tag, ip, shards, "[tcp]\nmax_connections_per_ip = 1000\n");
    let pid = i32::try_from(e.child.as_ref().unwrap().id()).unwrap();
    rlimit::prlimit(pid, rlimit::Resource::NOFILE, Some((limit, limit)), None).unwrap();
    e
}

/// `n` connections from 20 sources of `net`, each sending a double-CRLF ping (RFC 5626
/// §4.4.1); returns the connections that got a pong within `limit` in all.
fn ping_all(net: &str, e: &Edge, n: usize, limit: Duration) -> (Vec<Tcp>, Vec<Tcp>) {
    let mut conns: Vec<Tcp> = (0..n)
        .map(|i| Tcp::connect(&format!("{net}.{}", 10 + i % 20), e.sip))
        .collect();
    for c in &mut conns {
        c.send(b"\r\n\r\n");
    }
    let deadline = Instant::now() + limit;
    let (mut ponged, mut not) = (Vec::new(), Vec::new());
    for mut c in conns {
        let left = deadline.saturating_duration_since(Instant::now());
        if c.pong_within(left.max(Duration::from_millis(1))) {
            ponged.push(c);
        } else {
            not.push(c);
        }
    }
    (ponged, not)
}

#[test]
fn a_two_shard_edge_holds_more_connections_than_one_descriptor_table_allows() {
    // 440 connections: more than one table under 300 can hold, fewer than two can (the
    // kernel spreads them over the two shards' listeners by a hash of the source port).
    let e = edge_limited("fd-tables", "127.0.62.1", 2, 300);
    let (ponged, not) = ping_all("127.0.62", &e, 440, Duration::from_secs(10));
    assert_eq!(
        (ponged.len(), not.len()),
        (440, 0),
        "every connection is served"
    );
    let open = e.await_metric("sipedge_tcp_connections_open", 440, Duration::from_secs(5));
    assert_eq!(open, 440);
}

#[test]
fn a_full_descriptor_table_refuses_connections_and_keeps_serving() {
    let e = edge_limited("fd-full", "127.0.62.2", 1, 120);
    let (ponged, mut not) = ping_all("127.0.63", &e, 200, Duration::from_secs(10));
    assert!(
        ponged.len() >= 50,
        "served until the table is full: {}",
        ponged.len()
    );
    assert!(!not.is_empty(), "the table holds fewer than 200");
    // Those over the limit are closed by the edge, not left hanging in its backlog.
    let hanging = not
        .iter_mut()
        .filter_map(|c| (!c.closed_within(Duration::from_secs(3))).then_some(()))
        .count();
    assert_eq!(hanging, 0, "every connection over the limit is closed");
    let refused = e.metric("sipedge_tcp_refused_fd_limit_total", None);
    assert_eq!(refused, not.len() as u64, "each refusal is counted");
    // Room again: a new connection is served.
    drop(ponged);
    drop(not);
    std::thread::sleep(Duration::from_millis(300));
    let (ponged, not) = ping_all("127.0.63", &e, 1, Duration::from_secs(5));
    assert_eq!(
        (ponged.len(), not.len()),
        (1, 0),
        "served once descriptors are free"
    );
}
