//! Waking a sleeping shard: an eventfd plus a `sleeping` flag, so that waking an awake shard
//! costs one atomic swap and no syscall. The protocol is described in the crate docs.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;

struct Shared {
    /// Blocking eventfd (no `EFD_NONBLOCK`): io_uring `Read` on it completes when it is
    /// written; the mmsg engine reads it only after `ppoll` reported it readable.
    fd: OwnedFd,
    /// Set by the owning shard right before it blocks; swapped back by whoever wakes it.
    sleeping: AtomicBool,
}

/// The receiving side of a shard's wake-ups. Created per shard before the threads start,
/// so that [`Waker`]s can be handed to every peer; then moved into the shard's engine.
pub struct WakeFd {
    shared: Arc<Shared>,
}

/// A handle that wakes one shard. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Waker {
    shared: Arc<Shared>,
}

impl WakeFd {
    /// Creates the eventfd.
    pub fn new() -> io::Result<WakeFd> {
        // SAFETY: eventfd has no memory preconditions; the result is checked below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd, is open, and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(WakeFd {
            shared: Arc::new(Shared {
                fd,
                sleeping: AtomicBool::new(false),
            }),
        })
    }

    /// A handle for peers (and for the shard's own tests).
    pub fn waker(&self) -> Waker {
        Waker {
            shared: Arc::clone(&self.shared),
        }
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.shared.fd.as_raw_fd()
    }

    /// Announces that this shard is about to block. Returns true when it may block: the
    /// flag is set and then — after a full fence, pairing with the one in [`Waker::wake`] —
    /// `has_pending` reported nothing. When it returns false the flag is already cleared.
    pub(crate) fn prepare_sleep(&self, has_pending: impl Fn() -> bool) -> bool {
        self.shared.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if has_pending() {
            self.shared.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Called after blocking, whatever ended it: later wakes are cheap again. A waker that
    /// raced with this still wrote the eventfd; that token ends the next block at once, which
    /// is harmless.
    pub(crate) fn awake(&self) {
        self.shared.sleeping.store(false, Ordering::Relaxed);
    }

    /// Reads and resets the eventfd counter. Only call when it is known to be readable
    /// (otherwise it blocks).
    pub(crate) fn drain_readable(&self) {
        let mut value = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from an open eventfd; the caller checked that
        // the counter is non-zero, so this does not block.
        let _ = unsafe { libc::read(self.raw_fd(), (&mut value as *mut u64).cast(), 8) };
    }
}

impl Waker {
    /// Wakes the shard if it is blocked (or about to block). Call it after publishing the
    /// work (e.g. after pushing to its mesh queue).
    pub fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.shared.sleeping.swap(false, Ordering::SeqCst) {
            let one = 1u64;
            // SAFETY: writes 8 bytes from a live u64 to an open eventfd. It cannot block: the
            // counter would have to reach u64::MAX - 1 first.
            let _ =
                unsafe { libc::write(self.shared.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }
}

impl fmt::Debug for WakeFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WakeFd")
            .field("fd", &self.shared.fd.as_raw_fd())
            .field("sleeping", &self.shared.sleeping.load(Ordering::Relaxed))
            .finish()
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker")
            .field("fd", &self.shared.fd.as_raw_fd())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n == 1 && p.revents & libc::POLLIN != 0
    }

    #[test]
    fn waking_an_awake_shard_writes_nothing() {
        let w = WakeFd::new().expect("eventfd");
        w.waker().wake();
        assert!(!readable(w.raw_fd()));
    }

    #[test]
    fn waking_a_sleeper_writes_once_and_clears_the_flag() {
        let w = WakeFd::new().expect("eventfd");
        assert!(w.prepare_sleep(|| false));
        let k = w.waker();
        k.wake();
        k.wake(); // the flag is already cleared: no second write
        assert!(readable(w.raw_fd()));
        w.drain_readable();
        assert!(!readable(w.raw_fd()));
        w.awake();
    }

    #[test]
    fn pending_work_cancels_the_sleep() {
        let w = WakeFd::new().expect("eventfd");
        assert!(!w.prepare_sleep(|| true));
        w.waker().wake();
        assert!(!readable(w.raw_fd()), "flag was cleared, so no syscall");
    }
}
