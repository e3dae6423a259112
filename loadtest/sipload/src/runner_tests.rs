//! The runner against small loopback peers: reply matching, retransmission, timeouts, echo
//! counting. Bounded in time (short T1, short phases); counts are asserted, never durations.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use sipedge_rt::{Engine, EngineConfig, IoMode, WakeFd};

use crate::retx::RetxPolicy;
use crate::runner::{PhaseOutcome, PhaseSpec, Runner, Setup};
use crate::scenario::{self, Kind};

/// How a test peer treats the n-th datagram it receives (0-based).
#[derive(Clone, Copy)]
enum Peer {
    /// Answers 200 OK, except that it ignores every `drop_every`-th datagram.
    Ok200 { drop_every: u64 },
    /// Answers 404.
    NotFound,
    /// Sends the datagram back unchanged.
    Echo,
    /// Never answers.
    Silent,
}

fn spawn_peer(peer: Peer) -> (SocketAddr, Arc<AtomicBool>, JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind peer");
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let addr = sock.local_addr().expect("bound");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let h = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut n = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            let Ok((len, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            n += 1;
            let req = &buf[..len];
            let body_after_start_line = req
                .iter()
                .position(|&b| b == b'\n')
                .map_or(req, |i| &req[i + 1..]);
            let reply = |status: &[u8]| [status, body_after_start_line].concat();
            let out = match peer {
                Peer::Ok200 { drop_every } if n.is_multiple_of(drop_every) => continue,
                Peer::Ok200 { .. } => reply(b"SIP/2.0 200 OK\r\n"),
                Peer::NotFound => reply(b"SIP/2.0 404 Not Found\r\n"),
                Peer::Echo => req.to_vec(),
                Peer::Silent => continue,
            };
            let _ = sock.send_to(&out, from);
        }
    });
    (addr, stop, h)
}

fn runner(target: SocketAddr, uas: usize, t1_ms: u64, count_any_reply: bool) -> Runner {
    let sockets: Vec<UdpSocket> = (0..uas)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind UA");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    let locals = sockets
        .iter()
        .map(|s| s.local_addr().expect("bound"))
        .collect();
    let engine = Engine::new(
        IoMode::Auto,
        sockets,
        WakeFd::new().expect("eventfd"),
        &EngineConfig::default(),
    )
    .expect("engine");
    let setup = Setup {
        target,
        locals,
        policy: RetxPolicy::new(
            Duration::from_millis(t1_ms),
            Duration::from_millis(4 * t1_ms),
        ),
        count_any_reply,
        drain: Duration::from_millis(64 * t1_ms + 500),
        max_burst: 64,
        hold: Duration::ZERO,
    };
    let mut p = scenario::testkit::params(uas);
    p.target = target;
    Runner::new(engine, scenario::build(Kind::Options, &p), setup)
}

fn run(peer: Peer, spec: PhaseSpec, t1_ms: u64, count_any_reply: bool) -> PhaseOutcome {
    let (addr, stop, h) = spawn_peer(peer);
    let out = runner(addr, 7, t1_ms, count_any_reply)
        .run_phase(&spec)
        .expect("phase runs");
    stop.store(true, Ordering::Relaxed);
    h.join().expect("peer thread");
    out
}

fn open(rate: f64, n: u64) -> PhaseSpec {
    PhaseSpec {
        rate,
        outstanding: 1,
        duration: Duration::from_secs(5),
        max_requests: n,
    }
}

#[test]
fn every_request_is_answered_and_matched_to_its_own_send() {
    let out = run(
        Peer::Ok200 {
            drop_every: u64::MAX,
        },
        open(20_000.0, 2000),
        200,
        false,
    );
    let c = &out.stats.c;
    assert_eq!(c.sent, 2000);
    assert_eq!(c.replies, 2000);
    assert_eq!(c.successes, 2000);
    assert_eq!(c.codes.get(&200), Some(&2000));
    assert_eq!(
        (c.unmatched, c.unexpected, c.timeouts, c.unfinished),
        (0, 0, 0, 0)
    );
    assert_eq!(out.stats.latency.len(), 2000);
}

#[test]
fn an_open_loop_window_offers_exactly_rate_times_duration() {
    let spec = PhaseSpec {
        duration: Duration::from_millis(300),
        ..open(2000.0, u64::MAX)
    };
    let out = run(
        Peer::Ok200 {
            drop_every: u64::MAX,
        },
        spec,
        200,
        false,
    );
    assert_eq!(out.stats.c.sent, 600);
    assert_eq!(out.stats.c.replies, 600);
    assert_eq!(out.send_time, Duration::from_millis(300));
}

#[test]
fn lost_requests_are_retransmitted_and_still_succeed() {
    // Every 10th datagram is ignored: its retransmission (T1 later) is answered.
    let out = run(
        Peer::Ok200 { drop_every: 10 },
        open(10_000.0, 500),
        20,
        false,
    );
    let c = &out.stats.c;
    assert_eq!(c.sent, 500);
    assert_eq!(c.successes, 500, "{c:?}");
    assert!(c.retransmissions >= 50, "{c:?}");
    assert_eq!(c.failed(), 0);
    // A retransmitted request waited at least T1 for its reply.
    assert!(out.stats.latency.max() >= 20_000);
}

#[test]
fn failure_codes_and_timeouts_are_counted() {
    let out = run(Peer::NotFound, open(5000.0, 100), 50, false);
    assert_eq!((out.stats.c.failures, out.stats.c.successes), (100, 0));
    assert_eq!(out.stats.c.codes.get(&404), Some(&100));
    // Silent peer, T1 = 5 ms: Timer F (320 ms) ends every request, after 10 retransmissions.
    let out = run(Peer::Silent, open(5000.0, 20), 5, false);
    let c = &out.stats.c;
    assert_eq!((c.timeouts, c.replies, c.unfinished), (20, 0, 0), "{c:?}");
    assert!(c.retransmissions >= 20 * 6, "{c:?}");
}

#[test]
fn echoes_count_only_when_asked() {
    let closed = PhaseSpec {
        rate: 0.0,
        outstanding: 16,
        duration: Duration::from_secs(5),
        max_requests: 1000,
    };
    let out = run(Peer::Echo, closed, 50, true);
    assert_eq!(out.stats.c.replies, 1000);
    assert_eq!(out.stats.c.codes.get(&0), Some(&1000));
    // Without --count-any-reply an echoed request is not a response.
    let mut short = open(1000.0, 10);
    short.duration = Duration::from_millis(200);
    let (addr, stop, h) = spawn_peer(Peer::Echo);
    let mut r = runner(addr, 2, 50, false);
    let out = r
        .run_phase(&PhaseSpec {
            max_requests: 10,
            ..short
        })
        .expect("phase");
    stop.store(true, Ordering::Relaxed);
    h.join().expect("peer");
    assert_eq!(out.stats.c.replies, 0);
    assert!(out.stats.c.unexpected >= 10);
}
