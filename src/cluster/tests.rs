//! The cluster thread against a real `redis-server` (skipped with a message when it is not
//! installed, never in CI). Loopback 127.0.63.21–29 (issue 20's range), one server each.

use std::time::{Duration, Instant};

use sipedge_core::cluster::{RemoteAnswer, RemoteLookup};
use sipedge_core::{Core, CoreConfig, LocalId, Millis};

use super::store::{connect, WRITE_SCRIPT};
use super::*;
use crate::config_cluster::{ClusterConfig, ClusterMode};

#[path = "../../tests/cluster/redis.rs"]
mod redis_harness;
use redis_harness::RedisServer;

fn cfg(node: &str, url: &str, address: &str) -> ClusterConfig {
    ClusterConfig {
        mode: ClusterMode::Cluster,
        node: node.into(),
        address: address.parse().expect("addr"),
        redis: vec![url.into()],
        share: true,
        takeover: false,
        lookup_timeout_ms: 300,
        backlog_max: 1000,
        cache_max: 1000,
        peers: Vec::new(),
    }
}

/// A core that journals, and the records a REGISTER of `user` with `contact` produces.
fn records(user: &str, contact: &str, expires: u32, cseq: u32) -> Vec<Vec<u8>> {
    let mut core = Core::new(CoreConfig {
        journal: true,
        ..CoreConfig::default()
    });
    core.set_wall_clock(Millis(0), unix_ms());
    let r = format!(
        "REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{user}{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@localhost>;tag=1\r\nTo: <sip:{user}@localhost>\r\nCall-ID: {user}\r\nCSeq: {cseq} REGISTER\r\nContact: <{contact}>\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
    );
    let from = std::net::SocketAddr::from(([127, 0, 0, 1], 5070));
    core.handle_datagram(Millis(10), LocalId(0), from, r.as_bytes());
    let mut out = Vec::new();
    while let Some(rec) = core.poll_journal() {
        out.push(rec.to_vec());
    }
    assert!(!out.is_empty(), "the REGISTER produced a journal record");
    out
}

fn waker() -> (sipedge_rt::WakeFd, sipedge_rt::Waker) {
    let w = sipedge_rt::WakeFd::new().expect("eventfd");
    let k = w.waker();
    (w, k)
}

/// Asks `aor` and waits for the answer (at most `limit`).
fn ask(
    c: &ClusterClient,
    token: u64,
    aor: &str,
    limit: Duration,
) -> Option<(RemoteAnswer, Duration)> {
    let t = Instant::now();
    c.lookup(
        0,
        RemoteLookup {
            token,
            aor: aor.into(),
        },
    )
    .ok()?;
    while t.elapsed() < limit {
        let mut got = None;
        c.drain_answers(0, |tok, a| {
            if tok == token {
                got = Some(a);
            }
        });
        if let Some(a) = got {
            return Some((a, t.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

const AOR: &str = "sip:alice@localhost";

#[test]
fn lookups_found_not_found_cached_invalidated_and_unavailable_when_redis_dies() {
    if !redis_harness::available() {
        return;
    }
    let mut redis = RedisServer::start("127.0.63.21", 7021, false);
    let (_wa, ka) = waker();
    let (_wb, kb) = waker();
    let (a, ta) = start(&cfg("edge-a", &redis.url(), "127.0.63.11:5060"), vec![ka]).expect("a");
    let (b, tb) = start(&cfg("edge-b", &redis.url(), "127.0.63.12:5060"), vec![kb]).expect("b");
    let now = unix_ms();
    for r in records("alice", "sip:alice@192.0.2.1:5060", 600, 1) {
        a.tee(&r, now);
    }
    assert!(
        wait_for(Duration::from_secs(5), || redis
            .cli(&["HGETALL", "sipedge:b:{sip:alice@localhost}"])
            .contains("sip:alice@192.0.2.1:5060")),
        "the write-behind wrote the binding"
    );
    // Found from another node's write, reached through its home edge.
    let (found, _) = ask(&b, 1, AOR, Duration::from_secs(2)).expect("answered");
    let RemoteAnswer::Found(f) = found else {
        panic!("Found expected, got {found:?}");
    };
    assert_eq!(f.len(), 1);
    assert_eq!(&*f[0].node, "edge-a");
    assert_eq!(f[0].home, "127.0.63.11:5060".parse().expect("addr"));
    assert_eq!(&*f[0].contact, "sip:alice@192.0.2.1:5060");
    // A's own lookup skips its own binding.
    assert_eq!(
        ask(&a, 2, AOR, Duration::from_secs(2)).map(|x| x.0),
        Some(RemoteAnswer::NotFound)
    );
    assert_eq!(
        ask(&b, 3, "sip:nobody@localhost", Duration::from_secs(2)).map(|x| x.0),
        Some(RemoteAnswer::NotFound)
    );
    // The second lookup of a hot callee costs no Redis round trip.
    let misses = b.stats().cache_misses.load(Ordering::Relaxed);
    let hits = b.stats().cache_hits.load(Ordering::Relaxed);
    assert!(matches!(
        ask(&b, 4, AOR, Duration::from_secs(2)),
        Some((RemoteAnswer::Found(_), _))
    ));
    assert_eq!(
        b.stats().cache_hits.load(Ordering::Relaxed),
        hits + 1,
        "a cache hit"
    );
    assert_eq!(
        b.stats().cache_misses.load(Ordering::Relaxed),
        misses,
        "no read"
    );
    // A new write invalidates the entry: the next lookup sees both contacts.
    for r in records("alice", "sip:alice@192.0.2.2:5060", 600, 2) {
        a.tee(&r, unix_ms());
    }
    assert!(
        wait_for(Duration::from_secs(5), || matches!(
            ask(&b, 5, AOR, Duration::from_secs(2)),
            Some((RemoteAnswer::Found(ref f), _)) if f.len() == 2
        )),
        "invalidated after the new write"
    );
    // Redis dies: Unavailable within the timeout; writes wait in the backlog.
    redis.kill();
    let (ans, took) = ask(&b, 6, "sip:carol@localhost", Duration::from_secs(2)).expect("answered");
    assert_eq!(ans, RemoteAnswer::Unavailable);
    assert!(took <= Duration::from_millis(300 + 200), "took {took:?}");
    // Once known down, at once.
    let (ans, took) = ask(&b, 7, "sip:dave@localhost", Duration::from_secs(2)).expect("answered");
    assert_eq!(ans, RemoteAnswer::Unavailable);
    assert!(took <= Duration::from_millis(100), "took {took:?}");
    for r in records("bob", "sip:bob@192.0.2.3:5060", 600, 1) {
        a.tee(&r, unix_ms());
    }
    assert!(wait_for(Duration::from_secs(3), || a
        .stats()
        .backlog
        .load(Ordering::Relaxed)
        >= 1));
    assert_eq!(a.stats().redis_up.load(Ordering::Relaxed), 0);
    // Redis back (empty): the backlog is flushed.
    redis.restart();
    assert!(
        wait_for(Duration::from_secs(10), || redis
            .cli(&["HGETALL", "sipedge:b:{sip:bob@localhost}"])
            .contains("sip:bob@192.0.2.3:5060")),
        "the backlog was flushed when Redis came back"
    );
    assert_eq!(a.stats().backlog.load(Ordering::Relaxed), 0);
    ta.stop();
    tb.stop();
}

#[test]
fn the_write_script_refuses_older_versions_and_keeps_tombstones() {
    if !redis_harness::available() {
        return;
    }
    let redis = RedisServer::start("127.0.63.22", 7022, false);
    let mut conn = connect(&[redis.url()], Duration::from_secs(1)).expect("connect");
    let sha = conn.load_script().expect("script");
    assert_eq!(sha, ::redis::Script::new(WRITE_SCRIPT).get_hash());
    let now = unix_ms();
    let key = "sipedge:b:{sip:x@h}";
    let up = |ms: u64, cseq: u32, node: &str| {
        format!(
            "{ms}:{cseq}:{}:u\n{node}\n127.0.0.1:5060\n1000\nsip:x@1.2.3.4\n",
            now + 600_000
        )
    };
    let tomb = |ms: u64| {
        format!(
            "{ms}:0:{}:t\nedge-a\n127.0.0.1:5060\n1000\nsip:x@1.2.3.4\n",
            ms + value::TOMBSTONE_MS
        )
    };
    let write = |conn: &mut store::Conn, v: &str| {
        let mut c = ::redis::cmd("EVALSHA");
        c.arg(&sha)
            .arg(1)
            .arg(key)
            .arg(unix_ms())
            .arg("sip:x@h")
            .arg("c:sip:x@1.2.3.4")
            .arg(v);
        conn.query(&c).expect("evalsha")
    };
    write(&mut conn, &up(now - 1000, 5, "edge-a"));
    let pttl: i64 = redis.cli(&["PTTL", key]).trim().parse().expect("pttl");
    assert!(
        (590_000..=600_000).contains(&pttl),
        "TTL = the binding's expiry: {pttl}"
    );
    // An older registration from another edge does not replace a newer one.
    write(&mut conn, &up(now - 2000, 9, "edge-b"));
    assert!(redis
        .cli(&["HGET", key, "c:sip:x@1.2.3.4"])
        .contains("edge-a"));
    // A deregistration leaves a tombstone…
    write(&mut conn, &tomb(now));
    assert!(redis.cli(&["HGET", key, "c:sip:x@1.2.3.4"]).contains(":t"));
    // …that the old write, replayed late, cannot resurrect.
    write(&mut conn, &up(now - 1000, 5, "edge-a"));
    write(&mut conn, &up(now - 1000, 6, "edge-b"));
    let v = redis.cli(&["HGET", key, "c:sip:x@1.2.3.4"]);
    assert!(v.contains(":t"), "still a tombstone: {v}");
    // The tombstone keeps at least the replaced binding's expiry (≈ 600 s here).
    let pttl: i64 = redis.cli(&["PTTL", key]).trim().parse().expect("pttl");
    assert!(pttl > 500_000, "{pttl}");
    // A newer registration does replace it.
    write(&mut conn, &up(now + 1000, 1, "edge-b"));
    assert!(redis
        .cli(&["HGET", key, "c:sip:x@1.2.3.4"])
        .contains("edge-b"));
}

#[test]
fn a_turns_records_travel_as_one_batch_and_read_back_in_order() {
    let mut buf = Vec::new();
    for r in [&b"one"[..], b"", b"three"] {
        assert!(push_record(&mut buf, r));
    }
    let back: Vec<&[u8]> = super::records(&buf).collect();
    assert_eq!(back, vec![&b"one"[..], b"", b"three"]);
    // A cut batch yields what is whole, never reads past the end.
    let cut: Vec<&[u8]> = super::records(&buf[..buf.len() - 1]).collect();
    assert_eq!(cut, vec![&b"one"[..], b""]);
}

/// A burst of new AoRs several times `backlog_max`, teed faster than Redis takes them,
/// is written whole: the writer leaves what its backlog cannot hold in the tee queue
/// instead of dropping it (a drop costs a full resync, which a resync storm would repeat).
#[test]
fn a_burst_larger_than_the_backlog_is_written_without_a_drop() {
    if !redis_harness::available() {
        return;
    }
    let redis = RedisServer::start("127.0.63.22", 7022, false);
    let (_w, k) = waker();
    let (a, ta) = start(&cfg("edge-a", &redis.url(), "127.0.63.11:5060"), vec![k]).expect("a");
    let mut core = Core::new(CoreConfig {
        journal: true,
        ..CoreConfig::default()
    });
    core.set_wall_clock(Millis(0), unix_ms());
    let from = std::net::SocketAddr::from(([127, 0, 0, 1], 5070));
    let mut recs = Vec::new();
    for i in 0..5000 {
        let r = format!(
            "REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKb{i}\r\nMax-Forwards: 70\r\nFrom: <sip:u{i}@localhost>;tag=1\r\nTo: <sip:u{i}@localhost>\r\nCall-ID: b{i}\r\nCSeq: 1 REGISTER\r\nContact: <sip:u{i}@192.0.2.1:5060>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
        );
        core.handle_datagram(Millis(10), LocalId(0), from, r.as_bytes());
        while let Some(rec) = core.poll_journal() {
            recs.push(rec.to_vec());
        }
    }
    assert_eq!(recs.len(), 5000);
    let now = unix_ms();
    for r in &recs {
        a.tee(r, now);
    }
    let stats = a.stats();
    assert!(
        wait_for(Duration::from_secs(20), || stats
            .writes
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 5000),
        "every AoR written"
    );
    assert_eq!(
        stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing dropped (cfg's backlog_max is 1000)"
    );
    ta.stop();
}
