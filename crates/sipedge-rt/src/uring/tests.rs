//! Unit tests of the io_uring engine's internals.

use super::*;

/// Drop's precondition: after `cancel_all`, nothing is in flight, so freeing the buffers
/// is sound. Runs on its own thread (the ring's teardown interrupts its creator once).
#[test]
fn cancel_all_ends_every_operation() {
    let Ok(features) = probe_uring_features() else {
        return; // no io_uring here; the mmsg engine is tested instead
    };
    let t = std::thread::spawn(move || {
        let sock = UdpSocket::bind("127.0.12.1:0").expect("bind");
        sock.set_nonblocking(true).expect("nonblocking");
        let to = sock.local_addr().expect("addr");
        let cfg = EngineConfig {
            send_slots: 4,
            ..EngineConfig::default()
        };
        let mut e = UringEngine::new(&features, vec![sock], WakeFd::new().expect("eventfd"), &cfg)
            .map_err(|(e, _, _)| e)
            .expect("engine");
        e.wait(Some(Duration::ZERO), || false, &mut |_| {})
            .expect("wait");
        assert!(
            e.recv_armed[0] && e.wake_armed,
            "receive and wake-up are in flight"
        );
        assert!(e.send(0, to, b"in flight at shutdown"));
        e.queue_sends().expect("queue");
        let clean = e.cancel_all();
        (clean, e.recv_armed[0], e.wake_armed, e.sends_in_flight)
    });
    assert_eq!(t.join().expect("thread"), (true, false, false, 0));
}

/// A stream send goes out with the next wait and comes back with its buffer and count; one
/// still queued at shutdown is ended by `cancel_all` (its buffer is then safe to free).
#[test]
fn stream_sends_complete_with_their_buffer_and_are_cancelled_at_shutdown() {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    let Ok(features) = probe_uring_features() else {
        return;
    };
    let t = std::thread::spawn(move || {
        let l = TcpListener::bind("127.0.48.20:0").expect("listen");
        let mut peer = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (s, _) = l.accept().expect("accept");
        s.set_nonblocking(true).expect("nonblocking");
        let udp = UdpSocket::bind("127.0.48.20:0").expect("bind");
        udp.set_nonblocking(true).expect("nonblocking");
        let cfg = EngineConfig::default();
        let mut e = UringEngine::new(&features, vec![udp], WakeFd::new().expect("eventfd"), &cfg)
            .map_err(|(e, _, _)| e)
            .expect("engine");
        let fd = s.as_raw_fd();
        e.send_stream(fd, 7, b"xxSIP/2.0 200 OK\r\n".to_vec(), 2)
            .expect("queued");
        let mut done = Vec::new();
        for _ in 0..10 {
            e.wait(Some(Duration::from_millis(50)), || false, &mut |_| {})
                .expect("wait");
            e.take_stream_sends(&mut done);
            if !done.is_empty() {
                break;
            }
        }
        let got = done
            .iter()
            .map(|d| (d.token, d.result, d.buf.len(), d.at))
            .collect::<Vec<_>>();
        let mut buf = [0u8; 64];
        let n = peer.read(&mut buf).expect("read");
        let read = buf[..n].to_vec();
        // Queued, never submitted: the shutdown cancel must still account for it.
        e.send_stream(fd, 8, b"late".to_vec(), 0).expect("queued");
        let clean = e.cancel_all();
        (got, read, clean, e.mem.streams.in_flight())
    });
    let (got, read, clean, in_flight) = t.join().expect("thread");
    assert_eq!(got, vec![(7, 16, 18, 2)]);
    assert_eq!(read, b"SIP/2.0 200 OK\r\n");
    assert!(clean, "nothing in flight after cancel_all");
    assert_eq!(in_flight, 0);
}
