//! The stale drop's measure (issue 17: "keep the queue short under pressure so what is
//! admitted is answered quickly"): how long the datagrams a turn is serving waited in the
//! receive queue — the kernel's receive time of the datagram the socket's reader took last
//! ([`sipedge_rt::socket_last_read_stamp`], `SIOCGSTAMPNS`) against the clock — and
//! whether that is past `[overload] max_queue_delay_ms`. While it is, the core drops new
//! requests before parsing ([`sipedge_core::Core::handle_queue_delay`]).
//!
//! When: both engines take a turn's datagrams off the socket before handing the first one
//! over (io_uring's multishot receive fills its buffers in the kernel's task work when the
//! ring is entered; recvmmsg reads its batch in one call), so the stamp read during the
//! batch is that of its youngest datagram: if even that one waited past the bound, every
//! datagram of the batch did. The meter reads it at the [`MIN_BATCH`]-th datagram of a turn
//! (a turn with fewer found the queue short: nothing to measure, no cost) and, while late,
//! at the first one (so lateness ends as soon as a batch is fresh); a turn that read
//! nothing ends it. The datagrams of a late batch after the measure are dropped before
//! they are served — no answer is sent late.
//!
//! Why the sojourn and not the fill: what makes an admitted request late is the time it
//! queues, and the fill says that only through the shard's service rate, which a CPU quota,
//! preemption or a change of the traffic mix moves (a 16 MiB queue is 0.1 s of OPTIONS on
//! an idle core and over a second of REGISTERs under a tenth of one); the receive stamp
//! is the wait itself (CoDel's measure at dequeue, RFC 8289 §4.2).
//!
//! Why drop at the head: the kernel filter ([`crate::overload::Pressure`]) cuts what
//! enters, but a queue that filled before it caught up (a flood's first tens of ms; a shard
//! throttled by a quota) holds seconds of work, and serving it in order makes every request
//! behind it as late. Reading a datagram to drop it costs a small fraction of serving it,
//! so a backlog of new requests drains in a fraction of the time, and what comes after is
//! served fresh; their clients retransmit (RFC 3261 §17.1.1.2) into a short queue.
//!
//! The kernel shed controller's sojourn ([`crate::overload::Pressure::note_wait`]): while
//! it watches ([`QueueDelay::watch`]), the stamp is also read at each turn's first
//! datagram — the youngest datagram the engine took off the socket for the turn, so its
//! wait is the queue the turn found beyond one batch, without the turn's own work — and
//! handed over at the turn's end ([`QueueDelay::take_turn_wait`]).
//!
//! Cost: at most two `ioctl`s per turn of [`MIN_BATCH`] datagrams or more, one per turn
//! while late, none otherwise; and the kernel's per-packet receive timestamp (one clock
//! read), switched on by the first call.

use std::os::fd::RawFd;
use std::time::Duration;

/// The datagram of a turn at which the meter measures: a turn that read fewer found the
/// queue short.
pub const MIN_BATCH: u32 = 32;

/// One shard's queue-delay meter.
#[derive(Debug)]
pub struct QueueDelay {
    /// `[overload] max_queue_delay_ms`; zero: off.
    max: Duration,
    /// The engine's sockets, by engine index.
    fds: Vec<RawFd>,
    late: bool,
    /// Datagrams handed over in this turn so far.
    in_turn: u32,
    /// The wait measured last (exported).
    pub last_wait: Duration,
    /// Measure each turn's first datagram too, for the kernel shed controller (set by the
    /// shard from [`crate::overload::Pressure::watching`]).
    pub watch: bool,
    /// Read the stamps at all: a bound, or a sojourn target for the controller.
    stamps: bool,
    /// The wait measured at this turn's first datagram while watching.
    turn_wait: Option<Duration>,
}

impl QueueDelay {
    /// A meter over the engine's sockets `fds` (by engine index), bounding the wait at
    /// `max` (zero: off); `sojourn`: the kernel shed controller may watch the wait too.
    /// Switches the sockets' receive stamps on when either is.
    pub fn new(max: Duration, sojourn: bool, fds: Vec<RawFd>) -> QueueDelay {
        let stamps = !max.is_zero() || sojourn;
        if stamps {
            for &fd in &fds {
                // The first call switches the stamps on (its answer is of no use yet).
                let _ = sipedge_rt::socket_last_read_stamp(fd);
            }
        }
        QueueDelay {
            max,
            fds,
            late: false,
            in_turn: 0,
            last_wait: Duration::ZERO,
            watch: false,
            stamps,
            turn_wait: None,
        }
    }

    /// Whether the queue is late now.
    #[cfg(test)]
    pub fn late(&self) -> bool {
        self.late
    }

    /// Before the core sees a datagram read from engine socket `socket`; `now()` the clock
    /// since the Unix epoch (the stamps' clock), read only when measuring. The new
    /// lateness when it changed.
    #[inline]
    pub fn on_datagram(&mut self, socket: usize, now: impl FnOnce() -> Duration) -> Option<bool> {
        if !self.stamps {
            return None;
        }
        self.in_turn = self.in_turn.saturating_add(1);
        let first = self.in_turn == 1;
        let bound = !self.max.is_zero() && (self.in_turn == MIN_BATCH || (self.late && first));
        if !(bound || (self.watch && first)) {
            return None;
        }
        let stamp = sipedge_rt::socket_last_read_stamp(*self.fds.get(socket)?).ok()??;
        let wait = now().saturating_sub(stamp);
        if first && self.watch {
            self.turn_wait = Some(wait);
        }
        if !bound {
            return None;
        }
        self.last_wait = wait;
        self.set(self.last_wait > self.max)
    }

    /// At the end of a turn, the wait its first datagram found while watching.
    pub fn take_turn_wait(&mut self) -> Option<Duration> {
        self.turn_wait.take()
    }

    /// At the end of a turn: one that read nothing found the queue empty. The new
    /// lateness when it changed.
    pub fn end_turn(&mut self) -> Option<bool> {
        let read = std::mem::take(&mut self.in_turn);
        if read == 0 {
            self.last_wait = Duration::ZERO;
            return self.set(false);
        }
        None
    }

    fn set(&mut self, late: bool) -> Option<bool> {
        (late != self.late).then(|| {
            self.late = late;
            late
        })
    }
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

    /// A turn is measured at its MIN_BATCH-th datagram (and, while late, at its first):
    /// a batch that waited 150 ms makes the queue late (bound 100 ms) before the rest of
    /// it is served; a fresh batch, or a turn that read nothing, ends it; small turns are
    /// not measured.
    #[test]
    fn a_batch_that_waited_past_the_bound_makes_the_queue_late() {
        let rx = std::net::UdpSocket::bind("127.0.44.253:0").unwrap_or_else(|e| panic!("{e}"));
        let tx = std::net::UdpSocket::bind("127.0.44.254:0").unwrap_or_else(|e| panic!("{e}"));
        let to = rx.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let mut q = QueueDelay::new(Duration::from_millis(100), false, vec![rx.as_raw_fd()]);
        let mut buf = [0u8; 64];
        // The kernel switches packet stamps on host-wide in a deferred work item: wait
        // until a probe that queued 5 ms shows it.
        for _ in 0..200 {
            let _ = tx.send_to(b"probe", to);
            std::thread::sleep(Duration::from_millis(5));
            let _ = rx.recv(&mut buf);
            q.in_turn = MIN_BATCH - 1;
            let _ = q.on_datagram(0, unix_now);
            let _ = q.end_turn();
            if q.last_wait >= Duration::from_millis(5) {
                break;
            }
        }
        assert!(!q.late());
        // A batch read at once (as the engines do), then handed over one by one.
        let mut batch = |q: &mut QueueDelay, n: u32, wait_ms: u64| {
            for _ in 0..n {
                let _ = tx.send_to(b"REGISTER", to);
            }
            std::thread::sleep(Duration::from_millis(wait_ms));
            for _ in 0..n {
                let _ = rx.recv(&mut buf);
            }
            let changes: Vec<(u32, bool)> = (1..=n)
                .filter_map(|i| q.on_datagram(0, unix_now).map(|l| (i, l)))
                .collect();
            let _ = q.end_turn();
            changes
        };
        assert_eq!(batch(&mut q, 40, 150), vec![(MIN_BATCH, true)]);
        assert!(q.last_wait >= Duration::from_millis(150));
        // Late: the next turn is measured at its first datagram; still late.
        assert_eq!(batch(&mut q, 3, 150), vec![]);
        assert!(q.late());
        // A fresh batch ends it at once.
        assert_eq!(batch(&mut q, 3, 0), vec![(1, false)]);
        // Not late: a small turn is not measured, whatever it waited.
        assert_eq!(batch(&mut q, 3, 150), vec![]);
        assert!(!q.late());
        // A turn that read nothing ends lateness.
        assert_eq!(batch(&mut q, 40, 150), vec![(MIN_BATCH, true)]);
        assert_eq!(q.end_turn(), Some(false));
        // Off.
        let mut off = QueueDelay::new(Duration::ZERO, false, vec![rx.as_raw_fd()]);
        for _ in 0..MIN_BATCH {
            assert_eq!(off.on_datagram(0, unix_now), None);
        }
    }
}
