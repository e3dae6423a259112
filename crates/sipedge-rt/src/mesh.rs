//! The mesh: one bounded lock-free queue for every ordered pair of shards (`from` → `to`),
//! so each queue has exactly one producer and one consumer. A full queue drops the message
//! and counts it; a shard never blocks on another. Wake-ups are batched: a shard marks the
//! peers it sent to during a loop turn and wakes each of them once, at
//! [`MeshEndpoint::flush_wakeups`].
//!
//! **Memory.** A queue is bounded twice ([`MeshLimits`]): by messages and by bytes (each
//! message weighed by the caller's function — a SIP datagram of 64 KiB is not a 100-byte
//! lookup). Queues are segmented ([`SegQueue`]): nothing is allocated per slot up front,
//! an idle queue holds at most one small segment, so the mesh of 64 shards (4096 queues)
//! costs kilobytes until traffic flows, and never more than `shards² × bytes` under load.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_queue::SegQueue;

use crate::wake::Waker;

/// How much one queue (one ordered pair of shards) may hold.
#[derive(Debug, Clone, Copy)]
pub struct MeshLimits<T> {
    /// Messages queued, at most (at least 1).
    pub messages: usize,
    /// Sum of the messages' weights, at most. A message heavier than this is never queued.
    pub bytes: usize,
    /// A message's weight in bytes (what it holds on the heap and in place).
    pub weigh: fn(&T) -> usize,
}

impl<T> MeshLimits<T> {
    /// At most `messages` per queue, weight not counted.
    pub fn messages(messages: usize) -> Self {
        Self {
            messages,
            bytes: usize::MAX,
            weigh: |_| 0,
        }
    }
}

/// One queue and what it holds.
struct Pair<T> {
    queue: SegQueue<(T, usize)>,
    len: AtomicUsize,
    bytes: AtomicUsize,
}

struct Shared<T> {
    shards: usize,
    /// `queues[to * shards + from]`.
    queues: Box<[Pair<T>]>,
    limits: MeshLimits<T>,
    wakers: Box<[Waker]>,
}

/// Builder of the mesh; see [`Mesh::new`].
#[derive(Debug)]
pub struct Mesh<T> {
    _marker: std::marker::PhantomData<T>,
}

/// One shard's end of the mesh. `Send`; owned by its shard thread.
pub struct MeshEndpoint<T> {
    id: usize,
    shared: Arc<Shared<T>>,
    /// Peers sent to since the last `flush_wakeups`, each listed once.
    to_wake: Vec<usize>,
    marked: Box<[bool]>,
    /// Peer to start the next `recv` from, so no peer starves another.
    next_from: usize,
    stats: MeshStats,
}

/// Counters of one endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeshStats {
    /// Messages this shard queued to peers.
    pub sent: u64,
    /// Messages this shard took from its queues.
    pub received: u64,
    /// Messages this shard could not queue because the peer's queue was full (messages
    /// or bytes).
    pub dropped: u64,
}

impl<T: Send> Mesh<T> {
    /// Builds the queues between `shards` shards, each holding at most what `limits` says
    /// (nothing is allocated for them until they are used). `wakers[i]` wakes shard `i`.
    /// Returns one endpoint per shard, in order.
    ///
    /// # Panics
    ///
    /// When `wakers.len() != shards` — a wiring mistake at start-up.
    // `Mesh` is only a namespace: what the shards need is their endpoints.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(shards: usize, limits: MeshLimits<T>, wakers: Vec<Waker>) -> Vec<MeshEndpoint<T>> {
        assert_eq!(wakers.len(), shards, "Mesh::new needs one waker per shard");
        let limits = MeshLimits {
            messages: limits.messages.max(1),
            ..limits
        };
        let queues = (0..shards * shards)
            .map(|_| Pair {
                queue: SegQueue::new(),
                len: AtomicUsize::new(0),
                bytes: AtomicUsize::new(0),
            })
            .collect();
        let shared = Arc::new(Shared {
            shards,
            queues,
            limits,
            wakers: wakers.into_boxed_slice(),
        });
        (0..shards)
            .map(|id| MeshEndpoint {
                id,
                shared: Arc::clone(&shared),
                to_wake: Vec::with_capacity(shards),
                marked: vec![false; shards].into_boxed_slice(),
                next_from: 0,
                stats: MeshStats::default(),
            })
            .collect()
    }
}

impl<T> MeshEndpoint<T> {
    /// This shard's id.
    pub fn id(&self) -> usize {
        self.id
    }

    /// How many shards the mesh joins.
    pub fn shards(&self) -> usize {
        self.shared.shards
    }

    fn queue(&self, to: usize, from: usize) -> &Pair<T> {
        &self.shared.queues[to * self.shared.shards + from]
    }

    /// Queues `msg` for shard `to` (which may be this shard). `Err(msg)` when that queue is
    /// full — by messages or by bytes (counted in [`MeshStats::dropped`]). `to` is woken
    /// at the next [`flush_wakeups`](Self::flush_wakeups).
    ///
    /// # Panics
    ///
    /// When `to >= shards()`.
    pub fn send(&mut self, to: usize, msg: T) -> Result<(), T> {
        let limits = &self.shared.limits;
        let cost = (limits.weigh)(&msg);
        let pair = self.queue(to, self.id);
        // One producer per queue: nobody else adds between the check and the add; the
        // consumer only takes away.
        let fits = pair.len.load(Ordering::Acquire) < limits.messages
            && pair
                .bytes
                .load(Ordering::Acquire)
                .checked_add(cost)
                .is_some_and(|b| b <= limits.bytes);
        let result = if fits {
            pair.len.fetch_add(1, Ordering::AcqRel);
            pair.bytes.fetch_add(cost, Ordering::AcqRel);
            pair.queue.push((msg, cost));
            Ok(())
        } else {
            Err(msg)
        };
        match result {
            Ok(()) => self.stats.sent += 1,
            Err(_) => self.stats.dropped += 1,
        }
        // Mark even on a full queue: the peer has work either way.
        if to != self.id && !self.marked[to] {
            self.marked[to] = true;
            self.to_wake.push(to);
        }
        result
    }

    /// Takes up to `max` messages queued for this shard, from all peers, calling
    /// `f(from, msg)` for each. Returns how many it took.
    pub fn recv(&mut self, max: usize, mut f: impl FnMut(usize, T)) -> usize {
        let n = self.shared.shards;
        let mut taken = 0;
        for i in 0..n {
            let from = (self.next_from + i) % n;
            while taken < max {
                let pair = self.queue(self.id, from);
                let Some((msg, cost)) = pair.queue.pop() else {
                    break;
                };
                pair.len.fetch_sub(1, Ordering::AcqRel);
                pair.bytes.fetch_sub(cost, Ordering::AcqRel);
                taken += 1;
                f(from, msg);
            }
            if taken == max {
                // Start after the peer that filled the budget next time.
                self.next_from = (from + 1) % n;
                break;
            }
        }
        self.stats.received += taken as u64;
        taken
    }

    /// True when any queue into this shard holds a message. Used as `has_pending` before
    /// sleeping.
    pub fn has_pending(&self) -> bool {
        (0..self.shared.shards).any(|from| !self.queue(self.id, from).queue.is_empty())
    }

    /// Wakes each peer sent to since the last call, once.
    pub fn flush_wakeups(&mut self) {
        for &to in &self.to_wake {
            self.marked[to] = false;
            self.shared.wakers[to].wake();
        }
        self.to_wake.clear();
    }

    /// Counters of this endpoint.
    pub fn stats(&self) -> MeshStats {
        self.stats
    }
}

impl<T> fmt::Debug for MeshEndpoint<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MeshEndpoint")
            .field("id", &self.id)
            .field("shards", &self.shared.shards)
            .field("stats", &self.stats)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake::WakeFd;

    /// The eventfd counter of `w` (reset by reading), or 0 when it was not written.
    fn take_count(w: &WakeFd) -> u64 {
        let mut p = libc::pollfd {
            fd: w.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        if unsafe { libc::poll(&mut p, 1, 0) } != 1 {
            return 0;
        }
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from a readable eventfd.
        let n = unsafe { libc::read(w.raw_fd(), (&mut v as *mut u64).cast(), 8) };
        assert_eq!(n, 8);
        v
    }

    #[test]
    fn flush_wakeups_wakes_each_peer_once_per_turn() {
        let wakes: Vec<WakeFd> = (0..3).map(|_| WakeFd::new().expect("eventfd")).collect();
        let mut ends = Mesh::<u8>::new(
            3,
            MeshLimits::messages(16),
            wakes.iter().map(WakeFd::waker).collect(),
        );
        // Shards 1 and 2 are asleep.
        assert!(wakes[1].prepare_sleep(|| false));
        assert!(wakes[2].prepare_sleep(|| false));
        for i in 0..5 {
            ends[0].send(1, i).expect("room");
        }
        assert_eq!(
            ends[0].to_wake,
            vec![1],
            "shard 1 marked once, shard 2 not at all"
        );
        assert_eq!(take_count(&wakes[1]), 0, "no wake-up before flush_wakeups");
        ends[0].flush_wakeups();
        assert_eq!(take_count(&wakes[1]), 1, "one write for five messages");
        assert_eq!(take_count(&wakes[2]), 0, "shard 2 was sent nothing");
        assert!(ends[0].to_wake.is_empty());
        // Next turn, shard 1 asleep again: a new message wakes it again, once.
        assert!(wakes[1].prepare_sleep(|| false));
        ends[0].flush_wakeups();
        assert_eq!(take_count(&wakes[1]), 0, "nothing sent this turn");
        ends[0].send(1, 9).expect("room");
        ends[0]
            .send(0, 9)
            .expect("a shard may queue to itself; it is awake");
        ends[0].flush_wakeups();
        assert_eq!(take_count(&wakes[1]), 1);
        assert_eq!(take_count(&wakes[0]), 0);
    }

    #[test]
    #[should_panic(expected = "one waker per shard")]
    fn refuses_a_waker_count_mismatch() {
        let w = WakeFd::new().expect("eventfd");
        let _ = Mesh::<u8>::new(2, MeshLimits::messages(4), vec![w.waker()]);
    }
}
