//! Stream transports against real loopback sockets (127.0.60.0/24): an engine's blocking
//! wait ends when a connection has bytes (`Engine::watch_readable`, both engines), whole
//! messages come out of `Streams::poll`, replies go back on the connection, another
//! shard is told who owns it, a source IP past its cap is refused at accept, and the read
//! path stops at a short read without missing a FIN or a long burst (127.0.48.20–21).

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sipedge_rt::stream::{
    bind_tcp_reuseport, CodecFactory, Directory, PlainCodec, Sent, StreamLimits, StreamListener,
    Streams,
};
use sipedge_rt::{probe_uring, Engine, EngineConfig, IoMode, WakeFd};

const MSG: &[u8] = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 3\r\n\r\nabc";

fn listener(ip: &str) -> (StreamListener, SocketAddr) {
    let socket = bind_tcp_reuseport(format!("{ip}:0").parse().unwrap(), 16).unwrap();
    let addr = socket.local_addr().unwrap();
    let f: CodecFactory = Arc::new(|_| Box::new(PlainCodec));
    (
        StreamListener {
            local: 1,
            socket,
            codec: Arc::clone(&f),
            connect: Some(f),
        },
        addr,
    )
}

fn limits() -> StreamLimits {
    StreamLimits {
        max_connections_per_ip: 2,
        ..StreamLimits::default()
    }
}

/// Polls `s` until `want` messages came or 5 s passed.
fn poll_messages(s: &mut Streams, want: usize) -> Vec<(u16, SocketAddr, Vec<u8>)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.len() < want && Instant::now() < deadline {
        s.poll(0, &mut |l, r, m| got.push((l, r, m.to_vec())))
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    got
}

#[test]
fn a_blocked_engine_wakes_for_a_connection_and_the_message_comes_out_whole() {
    let mut modes = vec![IoMode::Mmsg];
    if probe_uring().is_ok() {
        modes.push(IoMode::Uring);
    }
    for (i, mode) in modes.into_iter().enumerate() {
        let ip = format!("127.0.60.{}", 100 + i);
        let t = std::thread::spawn(move || {
            let (l, addr) = listener(&ip);
            let mut s = Streams::new(0, vec![l], limits(), Arc::new(Directory::new())).unwrap();
            let udp = UdpSocket::bind(format!("{ip}:0")).unwrap();
            udp.set_nonblocking(true).unwrap();
            let mut e = Engine::new(
                mode,
                vec![udp],
                WakeFd::new().unwrap(),
                &EngineConfig::default(),
            )
            .unwrap();
            e.watch_readable(s.raw_fd());
            let client = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                let mut c = TcpStream::connect(addr).unwrap();
                c.write_all(&MSG[..10]).unwrap();
                std::thread::sleep(Duration::from_millis(50));
                c.write_all(&MSG[10..]).unwrap();
                c
            });
            let start = Instant::now();
            let mut got = Vec::new();
            while got.is_empty() && start.elapsed() < Duration::from_secs(5) {
                // Blocks up to 10 s: only the connection's readiness can end it early.
                e.wait(Some(Duration::from_secs(10)), || false, |_| {})
                    .unwrap();
                s.poll(0, &mut |l, r, m| got.push((l, r, m.to_vec())))
                    .unwrap();
            }
            let woke_in = start.elapsed();
            let mut c = client.join().unwrap();
            assert_eq!(got.len(), 1, "{mode:?}");
            assert_eq!(got[0].2, MSG);
            assert_eq!(got[0].0, 1, "the listener's LocalId");
            assert_eq!(got[0].1, c.local_addr().unwrap(), "the peer");
            assert!(
                woke_in < Duration::from_secs(5),
                "{mode:?} woke for the stream"
            );
            // A reply goes down the same connection.
            assert_eq!(
                s.send(0, 1, got[0].1, b"SIP/2.0 200 OK\r\n\r\n", false),
                Sent::Queued
            );
            s.flush(0);
            let mut buf = [0u8; 64];
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let n = c.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"SIP/2.0 200 OK\r\n\r\n");
        });
        t.join().unwrap();
    }
}

#[test]
fn another_shard_is_told_the_owner_and_a_source_past_its_cap_is_refused() {
    let dir = Arc::new(Directory::new());
    let (l0, addr) = listener("127.0.60.110");
    let mut owner = Streams::new(0, vec![l0], limits(), Arc::clone(&dir)).unwrap();
    let (l1, _) = listener("127.0.60.111");
    let mut other = Streams::new(1, vec![l1], limits(), Arc::clone(&dir)).unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(MSG).unwrap();
    let got = poll_messages(&mut owner, 1);
    let peer = got[0].1;
    assert_eq!(
        other.send(0, 1, peer, b"x", false),
        Sent::Owner(0),
        "hand it to shard 0"
    );
    // Two connections per IP: the third is closed at accept.
    let _second = TcpStream::connect(addr).unwrap();
    let mut third = TcpStream::connect(addr).unwrap();
    for _ in 0..20 {
        owner.poll(0, &mut |_, _, _| {}).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    third
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 8];
    assert!(
        matches!(third.read(&mut buf), Ok(0) | Err(_)),
        "closed at accept"
    );
    assert_eq!(owner.stats().refused_per_ip, 1);
    assert_eq!(owner.stats().open, 2);
    // The owner closes on EOF and forgets the flow.
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(2);
    while owner.stats().closed_peer == 0 && Instant::now() < deadline {
        owner.poll(0, &mut |_, _, _| {}).unwrap();
    }
    assert_eq!(dir.owner(1, peer), None);
}

/// A read shorter than the buffer ends a connection's reads (no `read` just to see
/// `WouldBlock`), but a FIN that came with the same edge still closes the connection: the
/// message is delivered and the flow is closed, with no further event to come.
#[test]
fn a_message_then_the_fin_in_one_edge_is_delivered_and_closes_the_connection() {
    let (l, addr) = listener("127.0.48.20");
    let mut s = Streams::new(0, vec![l], limits(), Arc::new(Directory::new())).unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while s.stats().accepted == 0 && Instant::now() < deadline {
        s.poll(0, &mut |_, _, _| {}).unwrap();
    }
    assert_eq!(s.stats().accepted, 1);
    // Both reach the socket before the next poll: one edge carries data and FIN.
    c.write_all(MSG).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let got = poll_messages(&mut s, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2, MSG);
    for _ in 0..20 {
        s.poll(0, &mut |_, _, _| {}).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(s.stats().closed_peer, 1, "closed on the FIN");
    assert_eq!(s.stats().open, 0);
}

/// Reads that fill the buffer go on: pipelined messages of more than one read (16 KiB) in
/// one write all come out, in order.
#[test]
fn pipelined_messages_longer_than_one_read_all_come_out() {
    let (l, addr) = listener("127.0.48.21");
    let mut s = Streams::new(0, vec![l], limits(), Arc::new(Directory::new())).unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    let mut burst = Vec::new();
    let n = 2000; // 47 bytes each: ~94 KB, six full reads and more
    for _ in 0..n {
        burst.extend_from_slice(MSG);
    }
    c.write_all(&burst).unwrap();
    let got = poll_messages(&mut s, n);
    assert_eq!(got.len(), n);
    assert!(got.iter().all(|m| m.2 == MSG));
}
