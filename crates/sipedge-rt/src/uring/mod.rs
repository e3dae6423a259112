//! The io_uring engine: one ring per shard, created on the shard's thread.
//!
//! * Receive: one multishot `RecvMsg` per socket, selecting buffers from one provided-buffer
//!   ring shared by the shard's sockets. Each completion carries one datagram (header, source
//!   address, payload — parsed with `RecvMsgOut`); its buffer goes back to the ring right after
//!   the callback. A multishot that ends (no `F_MORE`: buffers ran out (`ENOBUFS`), or the
//!   kernel stopped it) is re-armed before the next wait.
//! * Send: `SendMsg` from a send slot whose `msghdr`/`iovec`/address stay put until the
//!   completion frees the slot.
//! * Wake-ups: a `Read` of the shard's eventfd, re-armed after each completion, so a peer's
//!   [`Waker::wake`](crate::Waker::wake) ends a blocking wait.
//! * Waiting: `io_uring_enter` with `GETEVENTS`, `min_complete = 1` and an `EXT_ARG` timeout;
//!   one enter per loop turn also submits the turn's sends.

mod bufring;
mod probe;
mod shutdown;
mod stream_send;

pub use probe::{probe_uring, probe_uring_features, UringFeatures};
pub use stream_send::StreamSendDone;

use std::cell::UnsafeCell;
use std::io;
use std::mem::ManuallyDrop;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use self::bufring::BufRing;
use crate::pktinfo::{self, SourceCache};
use crate::sendq::SendSlots;
use crate::sockaddr::{self, SOCKADDR_MAX};
use crate::wake::WakeFd;
use crate::{Datagram, EngineConfig, EngineStats};

const TAG_SHIFT: u32 = 56;
const INDEX_MASK: u64 = (1 << TAG_SHIFT) - 1;
const TAG_RECV: u64 = 1;
const TAG_SEND: u64 = 2;
const TAG_WAKE: u64 = 3;
const TAG_CANCEL: u64 = 4;
const TAG_EXTRA: u64 = 5;
/// A stream connection's send (`stream_send`).
const TAG_STREAM: u64 = 6;
/// Our only buffer group (buffer group ids are per ring).
const BGID: u16 = 0;
/// Blocks one `wait` may retry when they end on completions other than datagrams and
/// wake-ups (sends finishing, a multishot receive ending).
const MAX_BLOCKS_PER_WAIT: usize = 8;
/// `struct io_uring_recvmsg_out`, which opens every received buffer.
const RECVMSG_OUT_BYTES: usize = 16;

fn user_data(tag: u64, index: usize) -> u64 {
    (tag << TAG_SHIFT) | index as u64
}

fn zeroed_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is plain C data; all-zero is a valid value (null pointers, zero lengths).
    unsafe { std::mem::zeroed() }
}

struct SendHdr {
    msg: libc::msghdr,
    iov: libc::iovec,
}

/// Memory the kernel reads or writes while operations are in flight. Freed only when none
/// are (see `Drop`); leaked otherwise.
struct KernelMem {
    bufs: BufRing,
    /// Template for the multishot receives: only `msg_namelen` / `msg_controllen` matter.
    recv_msg: Box<libc::msghdr>,
    send_hdrs: Box<[SendHdr]>,
    sendq: SendSlots,
    wake_buf: Box<UnsafeCell<u64>>,
    /// Stream sends in flight and their buffers.
    streams: stream_send::StreamSlots,
}

pub(crate) struct UringEngine {
    ring: ManuallyDrop<IoUring>,
    mem: ManuallyDrop<KernelMem>,
    sockets: Vec<UdpSocket>,
    wake: WakeFd,
    recv_armed: Vec<bool>,
    /// Per socket: bound to a wildcard address (`crate::pktinfo`).
    wildcard: Box<[bool]>,
    /// Where each peer reached us, for wildcard sockets (`None`: no wildcard socket).
    sources: Option<SourceCache>,
    wake_armed: bool,
    /// `Engine::watch_readable`'s fd and whether its one-shot poll is in flight.
    extra: Option<(i32, bool)>,
    sends_in_flight: usize,
    /// Stream sends completed, not yet taken (`take_stream_sends`).
    stream_done: Vec<StreamSendDone>,
    max_batch: usize,
    /// Wait with `IORING_ENTER_NO_IOWAIT`, so an idle shard does not show as iowait.
    no_iowait: bool,
    stats: EngineStats,
}

enum Entered {
    /// Completions may be waiting.
    Ready,
    TimedOut,
    Interrupted,
}

impl UringEngine {
    /// Builds the ring and its memory. On failure the sockets and eventfd are handed back so
    /// the caller can fall back to another engine.
    pub(crate) fn new(
        features: &UringFeatures,
        sockets: Vec<UdpSocket>,
        wake: WakeFd,
        cfg: &EngineConfig,
    ) -> Result<UringEngine, (io::Error, Vec<UdpSocket>, WakeFd)> {
        let wildcard: Box<[bool]> = sockets
            .iter()
            .map(|s| s.local_addr().is_ok_and(|a| a.ip().is_unspecified()))
            .collect();
        let any_wildcard = wildcard.iter().any(|w| *w);
        let (mut ring, mem) = match Self::build(features, sockets.len(), any_wildcard, cfg) {
            Ok(built) => built,
            Err(e) => return Err((e, sockets, wake)),
        };
        let mut recv_armed = vec![false; sockets.len()];
        let mut wake_armed = false;
        let mut stats = EngineStats::default();
        let armed = arm(
            &mut ring,
            &mem,
            &sockets,
            &wake,
            &mut recv_armed,
            &mut wake_armed,
            &mut None,
            &mut stats,
        );
        if let Err(e) = armed {
            // Nothing was submitted; close the ring before freeing what it registered.
            drop(ring);
            drop(mem);
            return Err((e, sockets, wake));
        }
        stats.recv_rearms = 0; // the first arming is not a re-arm
        Ok(UringEngine {
            ring: ManuallyDrop::new(ring),
            mem: ManuallyDrop::new(mem),
            recv_armed,
            sources: any_wildcard.then(SourceCache::new),
            wildcard,
            sockets,
            wake,
            wake_armed,
            extra: None,
            sends_in_flight: 0,
            stream_done: Vec::new(),
            max_batch: cfg.max_batch.max(1),
            no_iowait: features.no_iowait,
            stats,
        })
    }

    fn build(
        features: &UringFeatures,
        sockets: usize,
        pktinfo: bool,
        cfg: &EngineConfig,
    ) -> io::Result<(IoUring, KernelMem)> {
        // Wildcard sockets: room for the destination-address control message too.
        let ctl = if pktinfo { pktinfo::CTL_BYTES } else { 0 };
        let send_slots = cfg.send_slots.max(1);
        let sq = (send_slots.min(4096) + sockets + 8).next_power_of_two() as u32;
        // Outstanding completions: one per receive buffer, per send slot, per armed op.
        let cq = (cfg.recv_slots.clamp(1, 1 << 15).next_power_of_two() + send_slots + sockets + 8)
            .next_power_of_two()
            .max(2 * sq as usize) as u32;
        let ring = features.builder(cq).build(sq)?;
        // Each buffer: recvmsg_out header, source address, then exactly `recv_buf_bytes` of payload.
        let buf_len = RECVMSG_OUT_BYTES + SOCKADDR_MAX + ctl + cfg.recv_buf_bytes.max(1);
        let bufs = BufRing::new(cfg.recv_slots, buf_len)?;
        // SAFETY: the ring mapping stays valid until the ring is closed: `KernelMem` is freed
        // only after the ring (see `Drop for UringEngine`), or leaked.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                bufs.ring_addr(),
                bufs.entries(),
                BGID,
                0,
            )?;
        }
        let mut recv_msg = Box::new(zeroed_msghdr());
        recv_msg.msg_namelen = SOCKADDR_MAX as libc::socklen_t;
        recv_msg.msg_controllen = ctl;
        let send_hdrs = (0..send_slots)
            .map(|_| SendHdr {
                msg: zeroed_msghdr(),
                iov: libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0,
                },
            })
            .collect();
        let mem = KernelMem {
            bufs,
            recv_msg,
            send_hdrs,
            sendq: SendSlots::new(send_slots),
            wake_buf: Box::new(UnsafeCell::new(0)),
            streams: stream_send::StreamSlots::default(),
        };
        Ok((ring, mem))
    }

    pub(crate) fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// See [`Engine::watch_readable`](crate::Engine::watch_readable).
    pub(crate) fn watch_readable(&mut self, fd: i32) {
        self.extra = Some((fd, false));
    }

    pub(crate) fn send(&mut self, socket: usize, to: SocketAddr, data: &[u8]) -> bool {
        let src = self.sources.as_ref().and_then(|c| c.lookup(socket, &to));
        if socket < self.sockets.len() && self.mem.sendq.queue_from(socket, src, &to, data) {
            return true;
        }
        self.stats.send_drops += 1;
        false
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.queue_sends()?;
        self.stats.submits += 1;
        self.ring.submit()?;
        Ok(())
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
        self.queue_sends()?;
        let mut delivered = 0;
        let mut started: Option<Instant> = None;
        // Bounded, so a receive that keeps failing cannot spin here; the caller loops anyway.
        for _ in 0..MAX_BLOCKS_PER_WAIT {
            self.arm()?;
            // Block only with nothing left to reap and a non-zero timeout.
            let mut wait_for = Some(Duration::ZERO);
            if timeout != Some(Duration::ZERO) && self.ring.completion().is_empty() {
                wait_for = match timeout {
                    None => None,
                    Some(t) => {
                        let start = *started.get_or_insert_with(Instant::now);
                        Some(t.saturating_sub(start.elapsed()))
                    }
                };
            }
            let block = wait_for != Some(Duration::ZERO) && self.wake.prepare_sleep(&has_pending);
            let entered = self.enter(if block {
                wait_for
            } else {
                Some(Duration::ZERO)
            });
            if block {
                self.wake.awake();
            }
            let entered = entered?;
            let (n, woke) = self.reap(on_datagram);
            delivered += n;
            // A block that ended on other completions only (sends) blocks again for the rest
            // of the timeout.
            if delivered > 0 || woke || !block || !matches!(entered, Entered::Ready) {
                break;
            }
        }
        if delivered > 0 {
            self.stats.recv_batches += 1;
        }
        Ok(delivered)
    }

    /// Submits what is queued and waits for one completion at most `timeout` (`None`:
    /// without limit; zero: not at all, but still collect completions the kernel deferred).
    fn enter(&mut self, timeout: Option<Duration>) -> io::Result<Entered> {
        self.stats.submits += 1;
        let flags = if self.no_iowait {
            io_uring::EnterFlags::NO_IOWAIT
        } else {
            io_uring::EnterFlags::empty()
        };
        let ts;
        let args = match timeout {
            None => types::SubmitArgs::new(),
            Some(t) => {
                ts = types::Timespec::new()
                    .sec(t.as_secs())
                    .nsec(t.subsec_nanos());
                types::SubmitArgs::new().timespec(&ts)
            }
        };
        let result = self
            .ring
            .submitter()
            .submit_with_args_and_flags(1, &args, flags);
        match result {
            Ok(_) => Ok(Entered::Ready),
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME) => Ok(Entered::TimedOut),
                Some(libc::EINTR) => Ok(Entered::Interrupted),
                // Completions are backed up (CQ overflow) or the kernel is short of memory:
                // reaping is what helps.
                Some(libc::EBUSY) | Some(libc::EAGAIN) => Ok(Entered::Ready),
                _ => Err(e),
            },
        }
    }

    /// Pushes one SQE, handing the queue to the kernel first when it is full.
    ///
    /// # Safety
    ///
    /// Every pointer in `sqe` must stay valid until its completion: they point into
    /// `KernelMem` (freed only once nothing is in flight) or at our own open fds.
    unsafe fn push(
        ring: &mut IoUring,
        stats: &mut EngineStats,
        sqe: &squeue::Entry,
    ) -> io::Result<()> {
        loop {
            // SAFETY: forwarded from this function's contract.
            if unsafe { ring.submission().push(sqe) }.is_ok() {
                return Ok(());
            }
            stats.submits += 1;
            ring.submit()?;
        }
    }

    /// Arms the multishot receive of every socket that has none, and the eventfd read.
    fn arm(&mut self) -> io::Result<()> {
        let Self {
            ring,
            mem,
            sockets,
            wake,
            recv_armed,
            wake_armed,
            extra,
            stats,
            ..
        } = self;
        arm(
            ring, mem, sockets, wake, recv_armed, wake_armed, extra, stats,
        )
    }

    /// Turns queued send slots into `SendMsg` SQEs.
    fn queue_sends(&mut self) -> io::Result<()> {
        let Self {
            ring,
            mem,
            sockets,
            sends_in_flight,
            stats,
            ..
        } = self;
        let mem: &mut KernelMem = mem;
        while let Some(idx) = mem.sendq.pop_pending() {
            let slot = mem.sendq.slot_mut(idx);
            let fd = types::Fd(sockets[slot.socket].as_raw_fd());
            let h = &mut mem.send_hdrs[idx as usize];
            h.iov.iov_base = slot.buf.as_mut_ptr().cast();
            h.iov.iov_len = slot.buf.len();
            h.msg.msg_name = slot.addr.as_mut_ptr();
            h.msg.msg_namelen = slot.addr_len;
            h.msg.msg_iov = &mut h.iov;
            h.msg.msg_iovlen = 1;
            if slot.ctl_len > 0 {
                h.msg.msg_control = slot.ctl.bytes.as_mut_ptr().cast();
                h.msg.msg_controllen = slot.ctl_len;
            } else {
                h.msg.msg_control = std::ptr::null_mut();
                h.msg.msg_controllen = 0;
            }
            let sqe = opcode::SendMsg::new(fd, &h.msg)
                .build()
                .user_data(user_data(TAG_SEND, idx as usize));
            // SAFETY: the msghdr, iovec, address, control buffer and payload all live in this slot of
            // `KernelMem`; the slot is not reused before its completion releases it.
            if let Err(e) = unsafe { Self::push(ring, stats, &sqe) } {
                mem.sendq.release(idx);
                stats.send_drops += 1;
                return Err(e);
            }
            *sends_in_flight += 1;
        }
        Ok(())
    }

    /// Handles up to `max_batch` datagrams' worth of completions. Returns (datagrams
    /// delivered, woken by the eventfd).
    fn reap<F: FnMut(Datagram<'_>)>(&mut self, on_datagram: &mut F) -> (usize, bool) {
        let Self {
            ring,
            mem,
            recv_armed,
            wake_armed,
            extra,
            sends_in_flight,
            max_batch,
            stats,
            wildcard,
            sources,
            stream_done,
            ..
        } = self;
        let mem: &mut KernelMem = mem;
        let (mut delivered, mut woke, mut recycled) = (0, false, false);
        let mut cq = ring.completion();
        while delivered < *max_batch {
            let Some(cqe) = cq.next() else { break };
            let (res, flags) = (cqe.result(), cqe.flags());
            let index = (cqe.user_data() & INDEX_MASK) as usize;
            match cqe.user_data() >> TAG_SHIFT {
                TAG_RECV => {
                    if !cqueue::more(flags) {
                        recv_armed[index] = false;
                    }
                    if let Some(bid) = cqueue::buffer_select(flags) {
                        let buf = mem.bufs.buffer(bid);
                        let buf = &buf[..usize::try_from(res).unwrap_or(0).min(buf.len())];
                        let parsed = types::RecvMsgOut::parse(buf, &mem.recv_msg).ok();
                        match parsed.and_then(|m| Some((sockaddr::decode(m.name_data())?, m))) {
                            Some((remote, m)) => {
                                if let Some(cache) = sources.as_mut().filter(|_| wildcard[index]) {
                                    if let Some(l) = pktinfo::parse_dst(m.control_data()) {
                                        cache.learn(index, remote, l);
                                    }
                                }
                                let truncated = m.is_payload_truncated();
                                stats.recv_truncated += u64::from(truncated);
                                delivered += 1;
                                on_datagram(Datagram {
                                    socket: index,
                                    remote,
                                    data: m.payload_data(),
                                    truncated,
                                });
                            }
                            None => stats.recv_errors += 1,
                        }
                        mem.bufs.push(bid);
                        recycled = true;
                    } else if res < 0 {
                        stats.recv_errors += 1;
                        if res != -libc::ENOBUFS {
                            tracing::debug!(
                                socket = index,
                                errno = -res,
                                "multishot receive ended"
                            );
                        }
                    }
                }
                TAG_SEND => {
                    *sends_in_flight -= 1;
                    mem.sendq.release(index as u32);
                    match res {
                        0.. => stats.datagrams_out += 1,
                        _ if res == -libc::EAGAIN || res == -libc::ENOBUFS => stats.send_drops += 1,
                        _ => stats.send_errors += 1,
                    }
                }
                TAG_STREAM => {
                    if let Some(done) = mem.streams.release(index) {
                        let done = done.into_done(res);
                        // A short or failed send needs the caller now (the rest to resend,
                        // or a close): end the wait. A whole one is only bookkeeping.
                        woke |= usize::try_from(res).ok() != Some(done.buf.len() - done.at);
                        stream_done.push(done);
                    }
                }
                TAG_EXTRA => {
                    if let Some((_, armed)) = extra.as_mut() {
                        *armed = false;
                    }
                    woke = true;
                }
                TAG_WAKE => {
                    *wake_armed = false;
                    if res > 0 {
                        woke = true;
                        stats.wakeups += 1;
                    }
                }
                _ => {}
            }
        }
        drop(cq);
        if recycled {
            mem.bufs.publish();
        }
        stats.datagrams_in += delivered as u64;
        (delivered, woke)
    }
}

/// Arms the multishot receive of every socket that has none, and the eventfd read.
#[allow(clippy::too_many_arguments)] // the engine's fields, split for the borrow checker
fn arm(
    ring: &mut IoUring,
    mem: &KernelMem,
    sockets: &[UdpSocket],
    wake: &WakeFd,
    recv_armed: &mut [bool],
    wake_armed: &mut bool,
    extra: &mut Option<(i32, bool)>,
    stats: &mut EngineStats,
) -> io::Result<()> {
    if let Some((fd, armed)) = extra.as_mut().filter(|(_, a)| !*a) {
        let sqe = opcode::PollAdd::new(types::Fd(*fd), libc::POLLIN as u32)
            .build()
            .user_data(user_data(TAG_EXTRA, 0));
        // SAFETY: a poll carries no pointers; the caller keeps the fd open while the engine
        // lives (`Engine::watch_readable`), and the kernel holds its own reference anyway.
        unsafe { UringEngine::push(ring, stats, &sqe)? };
        *armed = true;
    }
    for (i, armed) in recv_armed.iter_mut().enumerate().filter(|(_, a)| !**a) {
        let fd = types::Fd(sockets[i].as_raw_fd());
        let sqe = opcode::RecvMsgMulti::new(fd, &*mem.recv_msg, BGID)
            .build()
            .user_data(user_data(TAG_RECV, i));
        // SAFETY: `recv_msg` and the buffer ring live in `KernelMem`; the socket is ours.
        unsafe { UringEngine::push(ring, stats, &sqe)? };
        *armed = true;
        stats.recv_rearms += 1;
    }
    if !*wake_armed {
        let sqe = opcode::Read::new(types::Fd(wake.raw_fd()), mem.wake_buf.get().cast(), 8)
            .build()
            .user_data(user_data(TAG_WAKE, 0));
        // SAFETY: `wake_buf` (8 bytes) lives in `KernelMem` and is never read by us; the
        // eventfd is owned by `wake`, which lives as long as the engine.
        unsafe { UringEngine::push(ring, stats, &sqe)? };
        *wake_armed = true;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
