//! Durability of the location table (issue 5), on the real binary: bindings survive a clean
//! restart (also with another shard count), `kill -9` under load loses nothing acknowledged
//! with `sync = "every"`, and at most `batch_ms` worth with `sync = "batch"`.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{listed_contacts, register, temp_dir, Client, Edge, TempDir, WAIT};
use sipedge_msg::Message;

const IP: &str = "127.0.50.200";

fn persistence(dir: &TempDir, sync: &str, batch_ms: u64) -> String {
    format!(
        "\n[registrar.persistence]\npath = \"{}\"\nsync = \"{sync}\"\nbatch_changes = 1000000\nbatch_ms = {batch_ms}\n",
        dir.path().join("journal").display()
    )
}

fn contact_of(user: &str) -> String {
    format!("<sip:{user}@192.0.2.7:5062>")
}

/// Registers `user` (3600 s) and returns true when the edge acknowledged it with a 200 OK.
fn register_one(edge: SocketAddr, c: &Client, user: &str, timeout: Duration) -> bool {
    c.send(
        edge,
        &register(
            c,
            user,
            Some(&contact_of(user)),
            Some(3600),
            &format!("ci-{user}"),
            1,
        ),
    );
    c.status(timeout) == Some(200)
}

/// The contacts a REGISTER query (no Contact, §10.2.3) lists for `user`.
fn query(edge: SocketAddr, c: &Client, user: &str, n: u32) -> Vec<(String, Option<u32>)> {
    for attempt in 0..3 {
        c.send(
            edge,
            &register(c, user, None, None, &format!("q-{user}-{n}"), 1 + attempt),
        );
        if let Some(reply) = c.recv(WAIT) {
            let m = Message::parse(&reply).unwrap();
            assert_eq!(m.status(), Some(200), "query of {user}");
            return listed_contacts(&reply);
        }
    }
    panic!("no answer to the query of {user}");
}

#[test]
fn bindings_survive_a_restart_and_a_new_shard_count() {
    let journal = temp_dir("persist-restart");
    let extra = persistence(&journal, "batch", 100);
    let port = 5300;
    let mut edge = Edge::start_with("persist-restart-a", IP, port, 2, "auto", &extra);
    let c = Client::new(IP);
    let users: Vec<String> = (0..64).map(|i| format!("restart{i}")).collect();
    for u in &users {
        assert!(
            register_one(edge.sip, &c, u, WAIT),
            "REGISTER {u} not acknowledged"
        );
    }
    assert!(edge.terminate().success(), "clean shutdown exits 0");
    // Not an event to await: at least a second must pass so the remaining expires the
    // restarted edge lists (whole seconds) has visibly run down.
    std::thread::sleep(Duration::from_millis(1200));

    for (round, shards) in [(1u32, 2usize), (2, 3)] {
        let mut edge = Edge::start_with("persist-restart-b", IP, port, shards, "auto", &extra);
        assert_eq!(
            edge.await_metric("sipedge_bindings{", users.len() as u64, WAIT),
            users.len() as u64,
            "every binding is back (restart {round}, {shards} shards) before any query"
        );
        for u in &users {
            let listed = query(edge.sip, &c, u, round);
            let want = format!("sip:{u}@192.0.2.7:5062");
            let (_, expires) = listed
                .iter()
                .find(|(uri, _)| *uri == want)
                .unwrap_or_else(|| {
                    panic!("{u} lost after restart {round} ({shards} shards): {listed:?}")
                });
            let expires = expires.expect("listed contacts carry expires");
            assert!(
                (3000..3600).contains(&expires),
                "{u}: remaining expires {expires} must have run down across the restart"
            );
        }
        assert!(edge.terminate().success());
    }
}

/// Registers distinct users from `workers` threads until `stop`, recording when each 200 OK
/// arrived; then kills the edge with SIGKILL mid-load.
fn load_then_kill_9(
    edge: &mut Edge,
    tag: &str,
    run_for: Duration,
) -> (Vec<(String, Instant)>, Instant) {
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let target = edge.sip;
    let threads: Vec<_> = (0..4)
        .map(|w| {
            let acked = Arc::clone(&acked);
            let stop = Arc::clone(&stop);
            let tag = tag.to_string();
            std::thread::spawn(move || {
                let c = Client::new(IP);
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) || i > 20_000 {
                        break;
                    }
                    let user = format!("{tag}{w}x{i}");
                    if register_one(target, &c, &user, Duration::from_millis(300)) {
                        acked.lock().unwrap().push((user, Instant::now()));
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(run_for);
    let killed_at = Instant::now();
    edge.kill_9();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    (acked, killed_at)
}

fn restored(port: u16, extra: &str, users: &[String]) -> HashSet<String> {
    let edge = Edge::start_with("persist-kill-b", IP, port, 2, "auto", extra);
    let c = Client::new(IP);
    users
        .iter()
        .filter(|u| {
            let want = format!("sip:{u}@192.0.2.7:5062");
            query(edge.sip, &c, u, 9)
                .iter()
                .any(|(uri, _)| *uri == want)
        })
        .cloned()
        .collect()
}

#[test]
fn kill_9_with_sync_every_loses_nothing_acknowledged() {
    let journal = temp_dir("persist-every");
    let extra = persistence(&journal, "every", 100);
    let port = 5310;
    let mut edge = Edge::start_with("persist-every-a", IP, port, 2, "auto", &extra);
    let (acked, _) = load_then_kill_9(&mut edge, "every", Duration::from_millis(1500));
    assert!(
        acked.len() > 200,
        "the load registered too little: {}",
        acked.len()
    );
    let users: Vec<String> = acked.iter().map(|(u, _)| u.clone()).collect();
    let back = restored(port, &extra, &users);
    let lost: Vec<_> = users.iter().filter(|u| !back.contains(*u)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged bindings lost: {:?}",
        lost.len(),
        users.len(),
        &lost[..lost.len().min(10)]
    );
}

#[test]
fn kill_9_with_sync_batch_loses_at_most_batch_ms() {
    const BATCH_MS: u64 = 100;
    // Scheduling slack on a loaded 2-core VM: a shard may run its flush a little late.
    const SLACK_MS: u64 = 250;
    let journal = temp_dir("persist-batch");
    let extra = persistence(&journal, "batch", BATCH_MS);
    let port = 5320;
    let mut edge = Edge::start_with("persist-batch-a", IP, port, 2, "auto", &extra);
    let (acked, killed_at) = load_then_kill_9(&mut edge, "batch", Duration::from_millis(1500));
    assert!(
        acked.len() > 200,
        "the load registered too little: {}",
        acked.len()
    );
    let users: Vec<String> = acked.iter().map(|(u, _)| u.clone()).collect();
    let back = restored(port, &extra, &users);
    let window = Duration::from_millis(BATCH_MS + SLACK_MS);
    let old_lost: Vec<_> = acked
        .iter()
        .filter(|(u, at)| !back.contains(u) && killed_at.duration_since(*at) > window)
        .map(|(u, _)| u)
        .collect();
    assert!(
        old_lost.is_empty(),
        "bindings acknowledged more than {window:?} before the kill were lost: {} of {}",
        old_lost.len(),
        acked.len()
    );
    assert!(
        back.len() * 2 > users.len(),
        "most bindings must come back: {} of {}",
        back.len(),
        users.len()
    );
}
