//! No heap allocation per datagram in steady state, on either engine: counted with a global
//! allocator that counts only on threads that ask it to.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sipedge_rt::{
    bind_udp_reuseport, probe_uring, Engine, EngineConfig, IoMode, SocketOptions, WakeFd,
};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY (of the impl, required by GlobalAlloc): every call is forwarded unchanged to the
// system allocator; counting touches only an atomic and a const-initialised thread local,
// neither of which allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BURST: usize = 64;

/// One echo round trip of `BURST` datagrams, all on this thread.
fn round(
    engine: &mut Engine,
    client: &UdpSocket,
    server: SocketAddr,
    inbox: &mut Vec<(usize, SocketAddr, [u8; 32], usize)>,
) {
    for i in 0..BURST {
        let msg = [i as u8; 32];
        client
            .send_to(&msg[..8 + i % 24], server)
            .expect("client send");
    }
    inbox.clear();
    for _ in 0..10_000 {
        engine
            .wait(
                Some(Duration::from_millis(1)),
                || false,
                |d| {
                    let mut copy = [0u8; 32];
                    copy[..d.data.len()].copy_from_slice(d.data);
                    inbox.push((d.socket, d.remote, copy, d.data.len()));
                },
            )
            .expect("wait");
        if inbox.len() == BURST {
            break;
        }
    }
    assert_eq!(inbox.len(), BURST, "all datagrams arrived");
    for (socket, to, data, len) in inbox.iter() {
        assert!(engine.send(*socket, *to, &data[..*len]));
    }
    engine.flush().expect("flush");
    let mut buf = [0u8; 64];
    for _ in 0..BURST {
        client.recv_from(&mut buf).expect("echo within the timeout");
    }
}

#[test]
fn steady_state_echo_allocates_nothing() {
    let mut modes = vec![IoMode::Mmsg];
    if probe_uring().is_ok() {
        modes.push(IoMode::Uring);
    }
    for (i, mode) in modes.into_iter().enumerate() {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let ip = format!("127.0.10.{}", 1 + 2 * i);
            let opts = SocketOptions::default();
            let a = bind_udp_reuseport(format!("{ip}:0").parse().expect("literal"), &opts)
                .expect("bind");
            let server = a.local_addr().expect("addr");
            let b = bind_udp_reuseport(server, &opts).expect("bind");
            let client = UdpSocket::bind(format!("127.0.10.{}:0", 2 + 2 * i)).expect("client");
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let cfg = EngineConfig {
                recv_slots: 256,
                ..EngineConfig::default()
            };
            let mut engine = Engine::new(mode, vec![a, b], WakeFd::new().expect("eventfd"), &cfg)
                .expect("engine");
            let mut inbox = Vec::with_capacity(BURST);
            for _ in 0..3 {
                round(&mut engine, &client, server, &mut inbox); // warm-up: slots grow once
            }
            COUNTING.with(|c| c.set(true));
            for _ in 0..10 {
                round(&mut engine, &client, server, &mut inbox);
            }
            COUNTING.with(|c| c.set(false));
            let _ = tx.send((
                ALLOCATIONS.swap(0, Ordering::Relaxed),
                engine.stats().datagrams_in,
            ));
        });
        let (allocs, received) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("finished in time");
        assert_eq!(received, 13 * BURST as u64);
        assert_eq!(
            allocs, 0,
            "{mode:?}: heap allocations in 10 rounds of {BURST} datagrams"
        );
    }
}
