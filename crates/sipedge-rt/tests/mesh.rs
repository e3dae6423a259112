//! The mesh between shards, through its public API.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sipedge_rt::{Mesh, MeshEndpoint, MeshLimits, MeshStats, WakeFd};

fn mesh(shards: usize, capacity: usize) -> (Vec<WakeFd>, Vec<MeshEndpoint<String>>) {
    let wakes: Vec<WakeFd> = (0..shards)
        .map(|_| WakeFd::new().expect("eventfd"))
        .collect();
    let ends = Mesh::new(
        shards,
        MeshLimits::messages(capacity),
        wakes.iter().map(WakeFd::waker).collect(),
    );
    (wakes, ends)
}

#[test]
fn messages_reach_their_shard_with_their_sender() {
    let (_wakes, mut ends) = mesh(3, 4);
    assert_eq!(ends.len(), 3);
    assert_eq!((ends[2].id(), ends[2].shards()), (2, 3));
    assert!(!ends[2].has_pending());
    ends[0].send(2, "from 0".into()).expect("room");
    ends[1].send(2, "from 1".into()).expect("room");
    ends[1].send(0, "to 0".into()).expect("room");
    assert!(ends[2].has_pending());
    assert!(!ends[1].has_pending());
    let mut got = Vec::new();
    assert_eq!(ends[2].recv(16, |from, m| got.push((from, m))), 2);
    got.sort();
    assert_eq!(
        got,
        vec![(0, "from 0".to_string()), (1, "from 1".to_string())]
    );
    assert!(!ends[2].has_pending());
    assert_eq!(
        ends[0].recv(16, |from, m| assert_eq!((from, m.as_str()), (1, "to 0"))),
        1
    );
    assert_eq!(
        ends[1].stats(),
        MeshStats {
            sent: 2,
            received: 0,
            dropped: 0
        }
    );
    assert_eq!(
        ends[2].stats(),
        MeshStats {
            sent: 0,
            received: 2,
            dropped: 0
        }
    );
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let (_wakes, mut ends) = mesh(2, 2);
    ends[0].send(1, "a".into()).expect("room");
    ends[0].send(1, "b".into()).expect("room");
    assert_eq!(ends[0].send(1, "c".into()), Err("c".to_string()));
    // Another sender has its own queue into shard 1.
    ends[1]
        .send(1, "self".into())
        .expect("a shard may queue to itself");
    assert_eq!(
        ends[0].stats(),
        MeshStats {
            sent: 2,
            received: 0,
            dropped: 1
        }
    );
    let mut got = Vec::new();
    ends[1].recv(usize::MAX, |_, m| got.push(m));
    got.sort();
    assert_eq!(got, ["a", "b", "self"]);
    ends[0]
        .send(1, "d".into())
        .expect("room again after the peer drained");
}

#[test]
fn recv_honours_its_budget_and_keeps_the_rest() {
    let (_wakes, mut ends) = mesh(3, 8);
    for i in 0..4 {
        ends[0].send(2, format!("0-{i}")).expect("room");
        ends[1].send(2, format!("1-{i}")).expect("room");
    }
    let mut got = Vec::new();
    assert_eq!(ends[2].recv(3, |_, m| got.push(m)), 3);
    assert!(ends[2].has_pending());
    assert_eq!(ends[2].recv(100, |_, m| got.push(m)), 5);
    assert_eq!(got.len(), 8);
    assert!(!ends[2].has_pending());
    // The second call started where the budget ran out, so both senders were served.
    assert!(got[3..].iter().any(|m| m.starts_with("1-")));
}

#[test]
fn endpoints_move_to_their_threads() {
    let (_wakes, ends) = mesh(2, 1024);
    let (tx, rx) = mpsc::channel();
    let mut it = ends.into_iter();
    let mut a = it.next().expect("endpoint 0");
    let mut b = it.next().expect("endpoint 1");
    let producer = thread::spawn(move || {
        let mut sent = 0;
        for i in 0..1000 {
            if a.send(1, i.to_string()).is_ok() {
                sent += 1;
            }
            a.flush_wakeups();
        }
        (sent, a.stats())
    });
    thread::spawn(move || {
        let mut n = 0u64;
        while n < 1000 {
            n += b.recv(64, |from, _| assert_eq!(from, 0)) as u64;
            thread::yield_now();
        }
        let _ = tx.send(b.stats());
    });
    let (sent, sender_stats) = producer.join().expect("producer");
    assert_eq!(sent, 1000, "capacity 1024 never fills");
    assert_eq!(sender_stats.sent, 1000);
    let receiver_stats = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("all received in time");
    assert_eq!(receiver_stats.received, 1000);
}

#[test]
fn a_queue_is_bounded_by_bytes_too() {
    let wakes: Vec<WakeFd> = (0..2).map(|_| WakeFd::new().expect("eventfd")).collect();
    let limits = MeshLimits {
        messages: 1000,
        bytes: 10_000,
        weigh: |m: &Vec<u8>| m.len(),
    };
    let mut ends = Mesh::new(2, limits, wakes.iter().map(WakeFd::waker).collect());
    ends[0].send(1, vec![0; 6_000]).expect("room");
    assert!(ends[0].send(1, vec![0; 6_000]).is_err(), "12 kB > 10 kB");
    ends[0].send(1, vec![0; 4_000]).expect("exactly 10 kB");
    assert!(ends[0].send(1, vec![0; 1]).is_err());
    assert!(
        ends[0].send(1, vec![0; 20_000]).is_err(),
        "heavier than a whole queue"
    );
    assert_eq!(ends[0].stats().dropped, 3);
    assert_eq!(ends[1].recv(usize::MAX, |_, _| ()), 2);
    ends[0]
        .send(1, vec![0; 10_000])
        .expect("room again once the peer took its messages");
}

/// Resident memory of this process, bytes (Linux).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("resident pages");
    pages * 4096
}

#[test]
fn an_idle_mesh_of_64_shards_costs_no_more_than_a_few_megabytes() {
    // 4096 queues of 16384 messages each: preallocated slots would be gigabytes.
    let wakes: Vec<WakeFd> = (0..64).map(|_| WakeFd::new().expect("eventfd")).collect();
    let before = rss_bytes();
    let ends = Mesh::<[u64; 4]>::new(
        64,
        MeshLimits::messages(16 * 1024),
        wakes.iter().map(WakeFd::waker).collect(),
    );
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 16 << 20, "the mesh took {grown} bytes at start");
    drop(ends);
}
