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
