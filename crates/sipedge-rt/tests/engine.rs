//! The engines against real loopback sockets, in both modes (io_uring only where the probe
//! passes). Every engine runs on its own thread and every test is bounded in time: the main
//! thread gives up after `LIMIT`.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use sipedge_rt::{
    bind_udp_reuseport, probe_uring, Engine, EngineConfig, EngineKind, EngineStats, IoMode, Mesh,
    SocketOptions, WakeFd,
};

const LIMIT: Duration = Duration::from_secs(20);
const TICK: Duration = Duration::from_millis(20);

/// The modes to test: mmsg always, io_uring where it works.
fn modes() -> Vec<IoMode> {
    match probe_uring() {
        Ok(()) => vec![IoMode::Uring, IoMode::Mmsg],
        Err(reason) => {
            eprintln!("io_uring unavailable, testing mmsg only: {reason}");
            vec![IoMode::Mmsg]
        }
    }
}

fn kind_of(mode: IoMode) -> EngineKind {
    match mode {
        IoMode::Uring => EngineKind::Uring,
        _ => EngineKind::Mmsg,
    }
}

/// Two SO_REUSEPORT sockets on one ephemeral port of `ip`.
fn reuseport_pair(ip: &str) -> (Vec<UdpSocket>, SocketAddr) {
    let opts = SocketOptions::default();
    let first = bind_udp_reuseport(format!("{ip}:0").parse().expect("literal"), &opts)
        .expect("bind the first socket");
    let addr = first.local_addr().expect("local addr");
    let second = bind_udp_reuseport(addr, &opts).expect("bind the second socket to the same port");
    (vec![first, second], addr)
}

fn client(ip: &str) -> UdpSocket {
    let c = UdpSocket::bind(format!("{ip}:0")).expect("bind the client");
    c.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    c
}

/// Runs an echo engine on its own thread until `stop`; returns its address, the stop flag,
/// the "go" sender (the engine waits for it before its first `wait`) and the stats receiver.
struct Echo {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    go: mpsc::Sender<()>,
    done: mpsc::Receiver<(EngineKind, EngineStats, usize)>,
}

fn spawn_echo(mode: IoMode, ip: &str, cfg: EngineConfig) -> Echo {
    let (sockets, addr) = reuseport_pair(ip);
    let stop = Arc::new(AtomicBool::new(false));
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let stop2 = Arc::clone(&stop);
    thread::spawn(move || {
        let wake = WakeFd::new().expect("eventfd");
        let max_batch = cfg.max_batch;
        let mut engine = Engine::new(mode, sockets, wake, &cfg).expect("engine");
        let _ = go_rx.recv();
        let mut largest_batch = 0;
        let mut pending = Vec::new();
        while !stop2.load(Ordering::Relaxed) {
            let n = engine
                .wait(
                    Some(TICK),
                    || false,
                    |d| {
                        pending.push((d.socket, d.remote, d.data.to_vec(), d.truncated));
                    },
                )
                .expect("wait");
            assert_eq!(n, pending.len());
            assert!(
                n <= max_batch,
                "a wait delivered {n} > max_batch {max_batch}"
            );
            largest_batch = largest_batch.max(n);
            for (socket, to, mut data, truncated) in pending.drain(..) {
                if truncated {
                    data.extend_from_slice(b"|truncated");
                }
                assert!(engine.send(socket, to, &data), "send slots exhausted");
            }
        }
        engine.flush().expect("flush");
        let _ = done_tx.send((engine.kind(), engine.stats().clone(), largest_batch));
    });
    Echo {
        addr,
        stop,
        go: go_tx,
        done: done_rx,
    }
}

impl Echo {
    fn finish(self) -> (EngineKind, EngineStats, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.done
            .recv_timeout(LIMIT)
            .expect("the engine thread finished in time")
    }
}

fn recv_all(c: &UdpSocket, from: SocketAddr, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while got.len() < n {
        let (len, src) = c.recv_from(&mut buf).expect("a reply within 5 s");
        assert_eq!(src, from, "replies come from the shared address");
        got.push(buf[..len].to_vec());
    }
    got.sort();
    got
}

#[test]
fn echoes_datagrams_in_each_mode() {
    for (i, mode) in modes().into_iter().enumerate() {
        let ip = format!("127.0.3.{}", 1 + 2 * i);
        let echo = spawn_echo(mode, &ip, EngineConfig::default());
        echo.go.send(()).expect("go");
        // Many source ports, so the kernel spreads them over both sockets.
        let clients: Vec<UdpSocket> = (0..8)
            .map(|_| client(&format!("127.0.3.{}", 2 + 2 * i)))
            .collect();
        let mut want = Vec::new();
        for (k, c) in clients.iter().enumerate() {
            for j in 0..10 {
                let msg = format!("{mode:?} client {k} message {j}").into_bytes();
                c.send_to(&msg, echo.addr).expect("send");
                want.push(msg);
            }
        }
        let mut got: Vec<Vec<u8>> = clients
            .iter()
            .flat_map(|c| recv_all(c, echo.addr, 10))
            .collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);
        let (kind, stats, _) = echo.finish();
        assert_eq!(kind, kind_of(mode));
        assert_eq!(stats.datagrams_in, 80);
        assert_eq!(stats.datagrams_out, 80);
        assert_eq!(
            (stats.send_drops, stats.send_errors, stats.recv_truncated),
            (0, 0, 0)
        );
        assert!(stats.recv_batches >= 1 && stats.recv_batches <= 80);
        assert!(stats.submits > 0);
    }
}

#[test]
fn a_burst_larger_than_the_receive_buffers_arrives_whole_in_small_batches() {
    for (i, mode) in modes().into_iter().enumerate() {
        let ip = format!("127.0.4.{}", 1 + 2 * i);
        let cfg = EngineConfig {
            recv_slots: 4,
            max_batch: 3,
            ..EngineConfig::default()
        };
        let echo = spawn_echo(mode, &ip, cfg);
        let c = client(&format!("127.0.4.{}", 2 + 2 * i));
        // Queue the whole burst before the engine's first wait: io_uring runs out of its 4
        // provided buffers at once (ENOBUFS ends the multishot receive, which is re-armed).
        let want: Vec<Vec<u8>> = (0..50)
            .map(|j| format!("burst {j:02}").into_bytes())
            .collect();
        for m in &want {
            c.send_to(m, echo.addr).expect("send");
        }
        echo.go.send(()).expect("go");
        assert_eq!(recv_all(&c, echo.addr, 50), want);
        let (_, stats, largest) = echo.finish();
        assert_eq!(stats.datagrams_in, 50);
        assert!((1..=3).contains(&largest));
        assert!(
            stats.recv_batches >= 17,
            "50 datagrams in batches of at most 3"
        );
        if mode == IoMode::Uring {
            assert!(stats.recv_errors >= 1, "ENOBUFS was seen: {stats:?}");
            assert!(
                stats.recv_rearms >= 1,
                "the multishot receive was re-armed: {stats:?}"
            );
        }
    }
}

#[test]
fn flags_truncated_datagrams() {
    for (i, mode) in modes().into_iter().enumerate() {
        let ip = format!("127.0.5.{}", 1 + 2 * i);
        let cfg = EngineConfig {
            recv_buf_bytes: 100,
            ..EngineConfig::default()
        };
        let echo = spawn_echo(mode, &ip, cfg);
        echo.go.send(()).expect("go");
        let c = client(&format!("127.0.5.{}", 2 + 2 * i));
        c.send_to(&[b'x'; 300], echo.addr).expect("send");
        c.send_to(&[b'y'; 100], echo.addr).expect("send");
        let got = recv_all(&c, echo.addr, 2);
        let mut cut = vec![b'x'; 100];
        cut.extend_from_slice(b"|truncated");
        assert_eq!(got, vec![cut, vec![b'y'; 100]], "{mode:?}");
        let (_, stats, _) = echo.finish();
        assert_eq!(stats.recv_truncated, 1);
    }
}

/// Runs `f` on an engine built on its own thread; fails the test if it does not finish.
fn on_engine_thread<R: Send + 'static>(
    mode: IoMode,
    ip: &str,
    cfg: EngineConfig,
    f: impl FnOnce(&mut Engine, SocketAddr) -> R + Send + 'static,
) -> R {
    let (sockets, addr) = reuseport_pair(ip);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut engine =
            Engine::new(mode, sockets, WakeFd::new().expect("eventfd"), &cfg).expect("engine");
        let _ = tx.send(f(&mut engine, addr));
    });
    rx.recv_timeout(LIMIT)
        .expect("the engine thread finished in time")
}

#[test]
fn send_fails_when_every_slot_is_busy_and_recovers() {
    for (i, mode) in modes().into_iter().enumerate() {
        let c = client(&format!("127.0.6.{}", 2 + 2 * i));
        let to = c.local_addr().expect("addr");
        let cfg = EngineConfig {
            send_slots: 2,
            ..EngineConfig::default()
        };
        let stats = on_engine_thread(mode, &format!("127.0.6.{}", 1 + 2 * i), cfg, move |e, _| {
            assert!(e.send(0, to, b"one"));
            assert!(e.send(1, to, b"two"));
            assert!(!e.send(0, to, b"three"), "both slots are queued");
            assert!(!e.send(7, to, b"bad socket index"));
            // Once the kernel has taken the datagrams, the slots are free again.
            let mut freed = false;
            for _ in 0..100 {
                e.wait(Some(Duration::ZERO), || false, |_| {})
                    .expect("wait");
                if e.send(0, to, b"four") {
                    freed = true;
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
            assert!(freed, "a slot came back");
            e.flush().expect("flush");
            e.stats().clone()
        });
        assert!(stats.send_drops >= 2, "{stats:?}");
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        for _ in 0..3 {
            let (n, _) = c.recv_from(&mut buf).expect("datagram");
            got.push(buf[..n].to_vec());
        }
        got.sort();
        assert_eq!(
            got,
            vec![b"four".to_vec(), b"one".to_vec(), b"two".to_vec()]
        );
    }
}

#[test]
fn a_timeout_ends_an_idle_wait_and_zero_does_not_block() {
    for (i, mode) in modes().into_iter().enumerate() {
        let ip = format!("127.0.7.{}", 1 + 2 * i);
        let n = on_engine_thread(mode, &ip, EngineConfig::default(), |e, _| {
            let a = e
                .wait(Some(Duration::ZERO), || false, |_| {})
                .expect("wait");
            let b = e
                .wait(Some(Duration::from_millis(30)), || false, |_| {})
                .expect("wait");
            a + b
        });
        assert_eq!(n, 0);
    }
}

#[test]
fn a_waker_ends_a_wait_without_timeout() {
    for (i, mode) in modes().into_iter().enumerate() {
        let ip = format!("127.0.8.{}", 1 + 2 * i);
        let (sockets, _) = reuseport_pair(&ip);
        let wake = WakeFd::new().expect("eventfd");
        let waker = wake.waker();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut e = Engine::new(mode, sockets, wake, &EngineConfig::default()).expect("engine");
            let n = e.wait(None, || false, |_| {}).expect("wait");
            let _ = tx.send((n, e.stats().wakeups));
        });
        // `wake` writes only to a shard that announced its sleep, so keep waking until the
        // engine thread reports back.
        let mut result = None;
        for _ in 0..(LIMIT.as_millis() / 10) {
            waker.wake();
            if let Ok(r) = rx.recv_timeout(Duration::from_millis(10)) {
                result = Some(r);
                break;
            }
        }
        assert_eq!(result, Some((0, 1)), "{mode:?}: woken once, no datagram");
    }
}

/// The mesh and the engine together: a message queued by a peer is never missed, whether
/// it lands before the engine checks `has_pending` or after it blocked.
#[test]
fn a_mesh_message_wakes_a_sleeping_shard() {
    for (i, mode) in modes().into_iter().enumerate() {
        for delay_ms in [0, 30] {
            let ip = format!("127.0.9.{}", 1 + 2 * i);
            let (sockets, _) = reuseport_pair(&ip);
            let wakes = [
                WakeFd::new().expect("eventfd"),
                WakeFd::new().expect("eventfd"),
            ];
            let mut ends = Mesh::<u32>::new(
                2,
                sipedge_rt::MeshLimits::messages(8),
                wakes.iter().map(WakeFd::waker).collect(),
            );
            let mut shard1 = ends.pop().expect("two endpoints");
            let mut shard0 = ends.pop().expect("two endpoints");
            let [_wake0, wake1] = wakes;
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                let mut e =
                    Engine::new(mode, sockets, wake1, &EngineConfig::default()).expect("engine");
                let mut got = Vec::new();
                while got.is_empty() {
                    e.wait(None, || shard1.has_pending(), |_| {}).expect("wait");
                    shard1.recv(16, |from, m| got.push((from, m)));
                }
                let _ = tx.send(got);
            });
            thread::sleep(Duration::from_millis(delay_ms));
            shard0.send(1, 42).expect("room in the queue");
            shard0.flush_wakeups();
            let got = rx.recv_timeout(LIMIT).expect("the shard woke up");
            assert_eq!(got, vec![(0, 42)], "{mode:?} after {delay_ms} ms");
        }
    }
}
