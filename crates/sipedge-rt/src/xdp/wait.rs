//! The XDP engine's turn: the fallback sockets' check, the receive kick and the wait
//! (`xdp_poll_us` ring checks while traffic flows, a blocking wait when idle; module docs of
//! [`super`]).

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::{XdpEngine, FALLBACK_CHECK, IDLE_CHECKS, NETLINK_TAG};
use crate::Datagram;

impl XdpEngine {
    /// Reads the fallback sockets that have data, when a blocking wait saw one readable or
    /// every [`FALLBACK_CHECK`].
    fn fallback_pass<F: FnMut(Datagram<'_>)>(&mut self, on_datagram: &mut F) -> usize {
        let now = Instant::now();
        self.now = now;
        if !self.fallback_ready && now < self.fallback_due {
            return 0;
        }
        self.fallback_ready = false;
        self.fallback_due = now + FALLBACK_CHECK;
        self.own.submits += 1;
        // SAFETY: `events` is a live array of its length; zero timeout.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as libc::c_int,
                0,
            )
        };
        let budget = self.max_batch as usize;
        let mut delivered = 0;
        for k in 0..n.max(0) as usize {
            if self.events[k].u64 == NETLINK_TAG {
                self.kernel_pass();
                continue;
            }
            let s = self.events[k].u64 as usize;
            delivered += self
                .fallback
                .recv_socket(s, budget - delivered, on_datagram);
            if delivered == budget {
                break;
            }
        }
        // More may be waiting: look again next turn.
        self.fallback_ready = n as usize == self.events.len() || delivered == budget;
        delivered
    }

    pub(super) fn kick_rx(&mut self) {
        self.own.submits += 1;
        // SAFETY: a zero-length, nonblocking receive on our AF_XDP socket: it only lets the
        // kernel process the fill ring; no buffer is written.
        let _ = unsafe {
            libc::recvfrom(
                self.xsk.fd.as_raw_fd(),
                std::ptr::null_mut(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
    }

    /// See [`Engine::watch_readable`](crate::Engine::watch_readable): one more pollfd
    /// between the fallback epoll (index 1) and the eventfd (last).
    pub(crate) fn watch_readable(&mut self, fd: libc::c_int) {
        let mut fds = std::mem::take(&mut self.pollfds);
        let at = fds.len().saturating_sub(1);
        fds.insert(
            at,
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
        );
        self.pollfds = fds;
    }

    /// See [`Engine::wait`](crate::Engine::wait).
    pub(crate) fn wait<H, F>(
        &mut self,
        timeout: Option<Duration>,
        has_pending: H,
        on_datagram: &mut F,
    ) -> io::Result<usize>
    where
        H: Fn() -> bool,
        F: FnMut(Datagram<'_>),
    {
        self.flush()?;
        let mut delivered = self.rx_pass(on_datagram) + self.fallback_pass(on_datagram);
        if delivered == 0
            && timeout != Some(Duration::ZERO)
            && self.fallback.wake().prepare_sleep(&has_pending)
        {
            // While traffic flows, check the rings every poll_us instead of being woken per
            // packet; when idle, block on the XDP socket too.
            // Frames still in the TX ring (the device was full) need a kick soon.
            let batching = (self.poll_us > 0 && self.idle_checks < IDLE_CHECKS)
                || self.xsk.tx.outstanding() > 0;
            let t = if batching {
                let p = Duration::from_micros(u64::from(self.poll_us.max(50)));
                Some(timeout.map_or(p, |t| t.min(p)))
            } else {
                timeout
            };
            let blocked = self.block(t, !batching);
            self.fallback.wake().awake();
            blocked?;
            delivered = self.rx_pass(on_datagram) + self.fallback_pass(on_datagram);
            if delivered == 0 {
                self.idle_checks = self.idle_checks.saturating_add(1);
            }
        }
        if delivered > 0 {
            self.idle_checks = 0;
            self.own.recv_batches += 1;
        }
        self.merge();
        Ok(delivered)
    }

    fn block(&mut self, timeout: Option<Duration>, with_xsk: bool) -> io::Result<()> {
        for p in self.pollfds.iter_mut() {
            p.revents = 0;
        }
        let fds = if with_xsk {
            &mut self.pollfds[..]
        } else {
            &mut self.pollfds[1..]
        };
        self.own.submits += 1;
        crate::poll::ppoll(fds, timeout)?;
        // A fallback socket or the rtnetlink socket is readable: read it this turn instead of
        // waking again (level-triggered) until the next periodic check.
        if self.pollfds[1].revents & libc::POLLIN != 0 {
            self.fallback_ready = true;
        }
        if self
            .pollfds
            .last()
            .is_some_and(|p| p.revents & libc::POLLIN != 0)
        {
            self.fallback.wake().drain_readable();
            self.own.wakeups += 1;
        }
        Ok(())
    }
}
