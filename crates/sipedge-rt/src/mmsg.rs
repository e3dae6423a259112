//! The fallback engine, for where io_uring is unavailable (seccomp, old kernels):
//! `recvmmsg(MSG_DONTWAIT)` over each socket into preallocated buffers, `ppoll` on the sockets
//! and the eventfd when nothing is ready, `sendmmsg` for the send queue.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::pktinfo::{self, CtlBuf, SourceCache};
use crate::sendq::SendSlots;
use crate::sockaddr::{self, RawAddr, SOCKADDR_MAX};
use crate::wake::WakeFd;
use crate::{Datagram, EngineConfig, EngineStats};

/// `UIO_MAXIOV`: the most messages one `sendmmsg` takes.
const SEND_BATCH_MAX: usize = 1024;
/// Times a full socket buffer is waited on (1 ms each) before the rest of a batch is dropped.
const SEND_EAGAIN_RETRIES: u32 = 2;

fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain C data; all-zero is a valid value (null pointers, zero lengths).
    unsafe { std::mem::zeroed() }
}

fn empty_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }
}

pub(crate) struct MmsgEngine {
    sockets: Vec<UdpSocket>,
    wake: WakeFd,
    /// `max_batch` receive buffers of `rbuf_len` bytes, back to back.
    rbufs: Box<[u8]>,
    rbuf_len: usize,
    rnames: Box<[RawAddr]>,
    riov: Box<[libc::iovec]>,
    rhdrs: Box<[libc::mmsghdr]>,
    /// Control buffers of the receives (destination addresses on wildcard sockets).
    rctl: Box<[CtlBuf]>,
    /// Per socket: bound to a wildcard address (`crate::pktinfo`).
    wildcard: Box<[bool]>,
    /// Where each peer reached us, for wildcard sockets (`None`: no wildcard socket).
    sources: Option<SourceCache>,
    /// Socket to read first next time, so one busy socket cannot starve the others.
    next_socket: usize,
    sendq: SendSlots,
    siov: Box<[libc::iovec]>,
    shdrs: Box<[libc::mmsghdr]>,
    sidx: Box<[u32]>,
    pollfds: Box<[libc::pollfd]>,
    max_batch: usize,
    stats: EngineStats,
}

impl MmsgEngine {
    pub(crate) fn new(sockets: Vec<UdpSocket>, wake: WakeFd, cfg: &EngineConfig) -> MmsgEngine {
        let batch = cfg.max_batch.max(1);
        let rbuf_len = cfg.recv_buf_bytes.max(1);
        let sendq = SendSlots::new(cfg.send_slots);
        let send_batch = sendq.capacity().min(SEND_BATCH_MAX);
        let pollfds = sockets
            .iter()
            .map(|s| s.as_raw_fd())
            .chain([wake.raw_fd()])
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let wildcard: Box<[bool]> = sockets
            .iter()
            .map(|s| s.local_addr().is_ok_and(|a| a.ip().is_unspecified()))
            .collect();
        let sources = wildcard.iter().any(|w| *w).then(SourceCache::new);
        MmsgEngine {
            rctl: vec![CtlBuf::zeroed(); batch].into_boxed_slice(),
            wildcard,
            sources,
            sockets,
            wake,
            rbufs: vec![0; batch * rbuf_len].into_boxed_slice(),
            rbuf_len,
            rnames: vec![RawAddr::zeroed(); batch].into_boxed_slice(),
            riov: (0..batch).map(|_| empty_iovec()).collect(),
            rhdrs: (0..batch).map(|_| zeroed_mmsghdr()).collect(),
            next_socket: 0,
            sendq,
            siov: (0..send_batch).map(|_| empty_iovec()).collect(),
            shdrs: (0..send_batch).map(|_| zeroed_mmsghdr()).collect(),
            sidx: vec![0; send_batch].into_boxed_slice(),
            pollfds,
            max_batch: batch,
            stats: EngineStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// See [`Engine::watch_readable`](crate::Engine::watch_readable): one more pollfd,
    /// before the eventfd (which stays last).
    pub(crate) fn watch_readable(&mut self, fd: libc::c_int) {
        let mut fds = self.pollfds.to_vec();
        let at = fds.len().saturating_sub(1);
        fds.insert(
            at,
            libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            },
        );
        self.pollfds = fds.into_boxed_slice();
    }

    /// The shard's wake-up fd (the XDP engine blocks on it itself).
    pub(crate) fn wake(&self) -> &WakeFd {
        &self.wake
    }

    /// The sockets' fds, in socket order.
    pub(crate) fn socket_fds(&self) -> Vec<libc::c_int> {
        self.sockets.iter().map(|s| s.as_raw_fd()).collect()
    }

    /// The sockets' bound addresses, in socket order.
    pub(crate) fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        self.sockets.iter().map(UdpSocket::local_addr).collect()
    }

    pub(crate) fn send(&mut self, socket: usize, to: SocketAddr, data: &[u8]) -> bool {
        let src = self.sources.as_ref().and_then(|c| c.lookup(socket, &to));
        if socket < self.sockets.len() && self.sendq.queue_from(socket, src, &to, data) {
            return true;
        }
        self.stats.send_drops += 1;
        false
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
        let mut delivered = self.recv_pass(on_datagram);
        if delivered == 0
            && timeout != Some(Duration::ZERO)
            && self.wake.prepare_sleep(&has_pending)
        {
            let blocked = self.block(timeout);
            self.wake.awake();
            blocked?;
            delivered = self.recv_pass(on_datagram);
        }
        if delivered > 0 {
            self.stats.recv_batches += 1;
        }
        Ok(delivered)
    }

    /// `ppoll` on every socket and the eventfd; drains the eventfd when it fired.
    fn block(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.stats.submits += 1;
        crate::poll::ppoll(&mut self.pollfds, timeout)?;
        let wake = self.pollfds.last().map_or(0, |p| p.revents);
        if wake & libc::POLLIN != 0 {
            self.wake.drain_readable();
            self.stats.wakeups += 1;
        }
        Ok(())
    }

    /// Reads every socket (round robin) until each would block or `max_batch` datagrams
    /// were delivered.
    pub(crate) fn recv_pass<F: FnMut(Datagram<'_>)>(&mut self, on_datagram: &mut F) -> usize {
        let n_sock = self.sockets.len();
        let mut delivered = 0;
        for k in 0..n_sock {
            let s = (self.next_socket + k) % n_sock;
            delivered += self.recv_socket(s, self.max_batch - delivered, on_datagram);
            if delivered == self.max_batch {
                self.next_socket = (s + 1) % n_sock;
                break;
            }
        }
        delivered
    }

    /// Reads socket `s` until it would block or `budget` datagrams were delivered.
    pub(crate) fn recv_socket<F: FnMut(Datagram<'_>)>(
        &mut self,
        s: usize,
        budget: usize,
        on_datagram: &mut F,
    ) -> usize {
        let mut delivered = 0;
        loop {
            let want = (budget - delivered).min(self.rhdrs.len());
            if want == 0 || s >= self.sockets.len() {
                break;
            }
            let got = self.recvmmsg(s, want);
            for i in 0..got {
                let h = &self.rhdrs[i].msg_hdr;
                let name_len = (h.msg_namelen as usize).min(SOCKADDR_MAX);
                let Some(remote) = sockaddr::decode(&self.rnames[i].bytes[..name_len]) else {
                    self.stats.recv_errors += 1;
                    continue;
                };
                if let Some(cache) = self.sources.as_mut().filter(|_| self.wildcard[s]) {
                    let ctl_len = h.msg_controllen.min(pktinfo::CTL_BYTES);
                    if let Some(l) = pktinfo::parse_dst(&self.rctl[i].bytes[..ctl_len]) {
                        cache.learn(s, remote, l);
                    }
                }
                let h = &self.rhdrs[i].msg_hdr;
                let truncated = h.msg_flags & libc::MSG_TRUNC != 0;
                self.stats.recv_truncated += u64::from(truncated);
                let len = (self.rhdrs[i].msg_len as usize).min(self.rbuf_len);
                let start = i * self.rbuf_len;
                delivered += 1;
                on_datagram(Datagram {
                    socket: s,
                    remote,
                    data: &self.rbufs[start..start + len],
                    truncated,
                });
            }
            if got < want {
                break;
            }
        }
        self.stats.datagrams_in += delivered as u64;
        delivered
    }

    /// One `recvmmsg(MSG_DONTWAIT)` of up to `want` datagrams from socket `s` into the first
    /// `want` buffers. Returns how many arrived (0 when none were ready or on error).
    fn recvmmsg(&mut self, s: usize, want: usize) -> usize {
        let base = self.rbufs.as_mut_ptr();
        for i in 0..want {
            self.riov[i] = libc::iovec {
                iov_base: base.wrapping_add(i * self.rbuf_len).cast(),
                iov_len: self.rbuf_len,
            };
            let h = &mut self.rhdrs[i];
            h.msg_len = 0;
            h.msg_hdr.msg_name = self.rnames[i].as_mut_ptr();
            h.msg_hdr.msg_namelen = SOCKADDR_MAX as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.riov[i];
            h.msg_hdr.msg_iovlen = 1;
            if self.wildcard.get(s).copied().unwrap_or(false) {
                h.msg_hdr.msg_control = self.rctl[i].bytes.as_mut_ptr().cast();
                h.msg_hdr.msg_controllen = pktinfo::CTL_BYTES;
            } else {
                h.msg_hdr.msg_control = std::ptr::null_mut();
                h.msg_hdr.msg_controllen = 0;
            }
            h.msg_hdr.msg_flags = 0;
        }
        let fd = self.sockets[s].as_raw_fd();
        loop {
            self.stats.submits += 1;
            // SAFETY: the first `want` headers point at live buffers of `rbuf_len` bytes
            // (inside `rbufs`), live name storage of SOCKADDR_MAX bytes, live control
            // buffers of CTL_BYTES (wildcard sockets) and live iovecs, all
            // owned by `self` and not otherwise borrowed during the call; nonblocking, no
            // timeout pointer.
            let rc = unsafe {
                libc::recvmmsg(
                    fd,
                    self.rhdrs.as_mut_ptr(),
                    want as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if rc >= 0 {
                return rc as usize;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => return 0,
                _ => {
                    self.stats.recv_errors += 1;
                    tracing::debug!(socket = s, error = %e, "recvmmsg failed");
                    return 0;
                }
            }
        }
    }

    /// Sends everything queued, in order, with as few `sendmmsg` calls as the sockets allow.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        while let Some(first) = self.sendq.pending_front() {
            let socket = self.sendq.slot(first).socket;
            let mut n = 0;
            while n < self.shdrs.len() {
                match self.sendq.pending_front() {
                    Some(idx) if self.sendq.slot(idx).socket == socket => {
                        self.sendq.pop_pending();
                        let slot = self.sendq.slot_mut(idx);
                        self.siov[n] = libc::iovec {
                            iov_base: slot.buf.as_mut_ptr().cast(),
                            iov_len: slot.buf.len(),
                        };
                        let h = &mut self.shdrs[n];
                        h.msg_len = 0;
                        h.msg_hdr.msg_name = slot.addr.as_mut_ptr();
                        h.msg_hdr.msg_namelen = slot.addr_len;
                        h.msg_hdr.msg_iov = &mut self.siov[n];
                        h.msg_hdr.msg_iovlen = 1;
                        if slot.ctl_len > 0 {
                            h.msg_hdr.msg_control = slot.ctl.bytes.as_mut_ptr().cast();
                            h.msg_hdr.msg_controllen = slot.ctl_len;
                        } else {
                            h.msg_hdr.msg_control = std::ptr::null_mut();
                            h.msg_hdr.msg_controllen = 0;
                        }
                        self.sidx[n] = idx;
                        n += 1;
                    }
                    _ => break,
                }
            }
            self.send_batch(socket, n);
            for i in 0..n {
                self.sendq.release(self.sidx[i]);
            }
        }
        Ok(())
    }

    fn send_batch(&mut self, socket: usize, n: usize) {
        let fd = self.sockets[socket].as_raw_fd();
        let (mut off, mut retries) = (0, 0);
        while off < n {
            self.stats.submits += 1;
            // SAFETY: headers `off..n` were filled by `flush` and point at live slot buffers,
            // addresses, control buffers and iovecs that are not touched until the slots are released after
            // this call returns.
            let rc = unsafe {
                libc::sendmmsg(
                    fd,
                    self.shdrs.as_mut_ptr().add(off),
                    (n - off) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if rc > 0 {
                off += rc as usize;
                self.stats.datagrams_out += rc as u64;
                retries = 0;
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                _ if rc == 0 => {
                    // Not expected from sendmmsg; never spin on it.
                    self.stats.send_drops += (n - off) as u64;
                    return;
                }
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN | libc::ENOBUFS) => {
                    if retries == SEND_EAGAIN_RETRIES {
                        // The socket buffer stayed full: drop the rest of the batch.
                        self.stats.send_drops += (n - off) as u64;
                        return;
                    }
                    retries += 1;
                    wait_writable(fd);
                }
                _ => {
                    // The first remaining datagram was refused (e.g. EMSGSIZE): skip it.
                    tracing::debug!(error = %e, "sendmmsg refused a datagram");
                    self.stats.send_errors += 1;
                    off += 1;
                }
            }
        }
    }
}

/// Waits up to 1 ms for `fd` to become writable.
fn wait_writable(fd: libc::c_int) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one live pollfd for an open fd; bounded timeout.
    let _ = unsafe { libc::poll(&mut p, 1, 1) };
}
