//! The stale drop's measure (issue 17: "keep the queue short under pressure so what is
//! admitted is answered quickly"): after each turn that read datagrams, how long the
//! datagram each socket read last waited in its receive queue — the kernel's receive time
//! of that datagram ([`sipedge_rt::socket_last_read_stamp`], `SIOCGSTAMPNS`) against the
//! clock — and whether that is past `[overload] max_queue_delay_ms`. While it is, the core
//! drops new requests before parsing ([`sipedge_core::Core::handle_queue_delay`]).
//!
//! Why the sojourn and not the fill: what makes an admitted request late is the time it
//! queues, and the fill says that only through the shard's service rate, which a CPU quota,
//! preemption or a change of the traffic mix moves (a 16 MiB queue is 0.1 s of OPTIONS on
//! an idle core and over a second of REGISTERs under a tenth of one); the receive stamp
//! is the wait itself (CoDel's measure at dequeue, RFC 8289 §4.2). Measured at the end of
//! the turn, it includes the turn's work after the read, which the reply waits for too.
//!
//! Why drop at the head: the kernel filter ([`crate::overload::Pressure`]) cuts what
//! enters, but a queue that filled before it caught up (a flood's first tens of ms; a shard
//! throttled by a quota) holds seconds of work, and serving it in order makes every request
//! behind it as late. Reading a datagram to drop it costs a small fraction of serving it,
//! so a backlog of new requests drains in a fraction of the time, and what comes after is
//! served fresh; their clients retransmit (RFC 3261 §17.1.1.2) into a short queue.
//!
//! Cost: one `ioctl` per socket that read after a turn of at least [`MIN_BATCH`]
//! datagrams or while late — a turn that read fewer found the queue short — and the
//! kernel's per-packet receive timestamp (one clock read), switched on by the first call.

use std::os::fd::RawFd;
use std::time::Duration;

/// A turn that read fewer datagrams than this found a short queue: no measure.
pub const MIN_BATCH: u32 = 32;

/// One shard's queue-delay meter.
#[derive(Debug)]
pub struct QueueDelay {
    /// `[overload] max_queue_delay_ms`; zero: off.
    max: Duration,
    /// The engine's sockets, by engine index.
    fds: Vec<RawFd>,
    late: bool,
    /// The longest wait measured at the last measure (exported).
    pub last_wait: Duration,
}

impl QueueDelay {
    /// A meter over the engine's sockets `fds` (by engine index), bounding the wait at
    /// `max` (zero: off). Switches the sockets' receive stamps on.
    pub fn new(max: Duration, fds: Vec<RawFd>) -> QueueDelay {
        if !max.is_zero() {
            for &fd in &fds {
                // The first call switches the stamps on (its answer is of no use yet).
                let _ = sipedge_rt::socket_last_read_stamp(fd);
            }
        }
        QueueDelay {
            max,
            fds,
            late: false,
            last_wait: Duration::ZERO,
        }
    }

    /// Whether the queue is late now.
    #[cfg(test)]
    pub fn late(&self) -> bool {
        self.late
    }

    /// After a turn: `reads[i]` the datagrams engine socket `i` read in it, `now` the clock
    /// (since the Unix epoch, the stamps' clock). The new lateness when it changed.
    pub fn end_turn(&mut self, now: Duration, reads: &[u32]) -> Option<bool> {
        if self.max.is_zero() {
            return None;
        }
        let total: u32 = reads.iter().fold(0, |n, &r| n.saturating_add(r));
        let late = if total == 0 {
            false // nothing was waiting
        } else if !self.late && total < MIN_BATCH {
            false
        } else {
            let stamps = self
                .fds
                .iter()
                .zip(reads)
                .filter(|(_, &r)| r > 0)
                .filter_map(|(&fd, _)| sipedge_rt::socket_last_read_stamp(fd).ok().flatten());
            self.last_wait = longest_wait(now, stamps);
            self.last_wait > self.max
        };
        (late != self.late).then(|| {
            self.late = late;
            late
        })
    }
}

/// The longest wait of datagrams received at `stamps`, at `now` (a stamp in the future, a
/// clock step, counts as no wait).
fn longest_wait(now: Duration, stamps: impl Iterator<Item = Duration>) -> Duration {
    stamps
        .map(|s| now.saturating_sub(s))
        .max()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn unix_now() -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
    }

    #[test]
    fn the_longest_wait_of_the_sockets_that_read() {
        let now = Duration::from_secs(100);
        let s = |ms| now - Duration::from_millis(ms);
        assert_eq!(
            longest_wait(now, [s(10), s(300), s(5)].into_iter()),
            Duration::from_millis(300)
        );
        assert_eq!(
            longest_wait(now, [now + Duration::from_secs(1)].into_iter()),
            Duration::ZERO,
            "a stamp ahead of the clock"
        );
        assert_eq!(longest_wait(now, std::iter::empty()), Duration::ZERO);
    }

    /// A datagram that waited 150 ms in the queue makes the queue late (bound 100 ms); a
    /// batch read at once after it is not; a turn that read nothing ends the lateness.
    #[test]
    fn a_datagram_that_waited_past_the_bound_makes_the_queue_late() {
        let rx = std::net::UdpSocket::bind("127.0.44.253:0").unwrap_or_else(|e| panic!("{e}"));
        let tx = std::net::UdpSocket::bind("127.0.44.254:0").unwrap_or_else(|e| panic!("{e}"));
        let to = rx.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let mut q = QueueDelay::new(Duration::from_millis(100), vec![rx.as_raw_fd()]);
        let mut buf = [0u8; 64];
        // The kernel switches packet stamps on host-wide in a deferred work item: wait
        // until a probe that queued 5 ms shows it.
        for _ in 0..200 {
            let _ = tx.send_to(b"probe", to);
            std::thread::sleep(Duration::from_millis(5));
            let _ = rx.recv(&mut buf);
            let _ = q.end_turn(unix_now(), &[MIN_BATCH]);
            if q.last_wait >= Duration::from_millis(5) {
                break;
            }
        }
        for _ in 0..MIN_BATCH {
            let _ = tx.send_to(b"REGISTER", to);
        }
        std::thread::sleep(Duration::from_millis(150));
        for _ in 0..MIN_BATCH {
            let _ = rx.recv(&mut buf);
        }
        assert_eq!(q.end_turn(unix_now(), &[MIN_BATCH]), Some(true));
        assert!(q.late() && q.last_wait >= Duration::from_millis(150));
        // Late: even a small batch is measured; a fresh datagram ends it.
        let _ = tx.send_to(b"REGISTER", to);
        let _ = rx.recv(&mut buf);
        assert_eq!(q.end_turn(unix_now(), &[1]), Some(false));
        // Not late: a small batch is not measured, whatever it waited.
        let _ = tx.send_to(b"REGISTER", to);
        std::thread::sleep(Duration::from_millis(150));
        let _ = rx.recv(&mut buf);
        assert_eq!(q.end_turn(unix_now(), &[1]), None);
        assert_eq!(q.end_turn(unix_now(), &[]), None);
        // Off.
        let mut off = QueueDelay::new(Duration::ZERO, vec![rx.as_raw_fd()]);
        assert_eq!(off.end_turn(unix_now(), &[MIN_BATCH]), None);
    }
}
