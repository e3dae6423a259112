//! [`Engine`]: one shard's UDP I/O, over io_uring or recvmmsg/sendmmsg. An enum, so the
//! per-datagram path is monomorphic (no trait object).

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use crate::mmsg::MmsgEngine;
use crate::uring::{probe_uring_features, StreamSendDone, UringEngine};
use crate::wake::WakeFd;
use crate::xdp::XdpEngine;
use crate::{Datagram, EngineConfig, EngineKind, EngineStats, IoMode};

/// One shard's UDP engine: receives on its sockets, sends from them, and sleeps until a
/// datagram, a wake-up or a timeout. Not `Send`: build it on the thread that uses it.
///
/// Dropping an io_uring engine cancels its operations and waits (at most ~1 s) for them to
/// end before freeing their buffers. The kernel then tears the ring down asynchronously and
/// notifies the owning thread, which interrupts one later blocking syscall of that thread with
/// `EINTR`; drop the engine when the shard thread is about to exit.
pub struct Engine {
    inner: Inner,
}

// One engine per shard, built once and never moved on the hot path: boxing the larger
// variant would only add a pointer hop to every call.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Uring(UringEngine),
    Mmsg(MmsgEngine),
    Xdp(XdpEngine),
}

impl Engine {
    /// Builds the engine for this shard on the calling thread (an io_uring ring set up with
    /// SINGLE_ISSUER belongs to the thread that creates it). `IoMode::Auto` picks io_uring when
    /// [`probe_uring`](crate::probe_uring) passes and recvmmsg/sendmmsg otherwise;
    /// `IoMode::Uring` fails, naming the reason, when io_uring is unusable.
    ///
    /// `sockets` are nonblocking UDP sockets (see
    /// [`bind_udp_reuseport`](crate::bind_udp_reuseport)); datagrams and sends name them by
    /// their index in this vector. `wake` is this shard's [`WakeFd`]; its wakers end a blocking
    /// [`wait`](Self::wait).
    pub fn new(
        mode: IoMode,
        sockets: Vec<UdpSocket>,
        wake: WakeFd,
        cfg: &EngineConfig,
    ) -> io::Result<Engine> {
        let inner = match mode {
            IoMode::Mmsg => Inner::Mmsg(MmsgEngine::new(sockets, wake, cfg)),
            IoMode::Xdp => Inner::Xdp(
                XdpEngine::new(sockets, wake, cfg)
                    .map_err(|e| io::Error::new(e.kind(), format!("io = \"xdp\": {e}")))?,
            ),
            IoMode::Uring => {
                let features = probe_uring_features().map_err(|reason| {
                    io::Error::other(format!(
                        "io = \"uring\", but io_uring is unusable here: {reason}"
                    ))
                })?;
                let engine =
                    UringEngine::new(&features, sockets, wake, cfg).map_err(|(e, _, _)| {
                        io::Error::new(
                            e.kind(),
                            format!("io = \"uring\": setting up the ring failed: {e}"),
                        )
                    })?;
                Inner::Uring(engine)
            }
            IoMode::Auto => match probe_uring_features() {
                Ok(features) => match UringEngine::new(&features, sockets, wake, cfg) {
                    Ok(engine) => Inner::Uring(engine),
                    Err((e, sockets, wake)) => {
                        tracing::warn!(error = %e, "setting up io_uring failed; using recvmmsg/sendmmsg");
                        Inner::Mmsg(MmsgEngine::new(sockets, wake, cfg))
                    }
                },
                Err(reason) => {
                    tracing::info!(%reason, "io_uring unavailable; using recvmmsg/sendmmsg");
                    Inner::Mmsg(MmsgEngine::new(sockets, wake, cfg))
                }
            },
        };
        Ok(Engine { inner })
    }

    /// The engine this shard runs.
    pub fn kind(&self) -> EngineKind {
        match &self.inner {
            Inner::Uring(_) => EngineKind::Uring,
            Inner::Mmsg(_) => EngineKind::Mmsg,
            Inner::Xdp(e) => EngineKind::Xdp {
                zero_copy: e.zero_copy(),
            },
        }
    }

    /// One loop turn's input side: submits queued sends, waits until at least one datagram or
    /// a wake-up arrives or `timeout` passes (`None`: no limit; `Some(ZERO)`: do not block),
    /// then calls `on_datagram` for each datagram received, at most
    /// [`EngineConfig::max_batch`] per call. Returns how many it delivered.
    ///
    /// Sleep protocol (see the crate docs): before blocking, the engine sets this shard's
    /// `sleeping` flag, fences, and calls `has_pending` (e.g. the mesh's
    /// [`has_pending`](crate::MeshEndpoint::has_pending)); if it returns true the engine does
    /// not block. So a peer that queued work and then called [`Waker::wake`](crate::Waker::wake)
    /// is never missed, whether it raced with the check or not. `has_pending` is called at
    /// most once per block and never when not blocking.
    ///
    /// `on_datagram` cannot call back into the engine (it is borrowed): queue replies with
    /// [`send`](Self::send) after `wait` returns.
    ///
    /// Interrupted waits (`EINTR`) return `Ok` with what was received; provided buffers
    /// running out (`ENOBUFS`) and ended multishot receives are re-armed internally.
    pub fn wait(
        &mut self,
        timeout: Option<Duration>,
        has_pending: impl Fn() -> bool,
        mut on_datagram: impl FnMut(Datagram<'_>),
    ) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Uring(e) => e.wait(timeout, has_pending, &mut on_datagram),
            Inner::Mmsg(e) => e.wait(timeout, has_pending, &mut on_datagram),
            Inner::Xdp(e) => e.wait(timeout, has_pending, &mut on_datagram),
        }
    }

    /// Queues `data` to be sent from socket `socket` to `to`. The bytes are copied into a send
    /// slot, so `data` may be reused at once; they reach the kernel at the next
    /// [`wait`](Self::wait) or [`flush`](Self::flush). Returns false (counted in
    /// [`EngineStats::send_drops`]) when every send slot is queued or in flight, or `socket`
    /// is out of range.
    pub fn send(&mut self, socket: usize, to: SocketAddr, data: &[u8]) -> bool {
        match &mut self.inner {
            Inner::Uring(e) => e.send(socket, to, data),
            Inner::Mmsg(e) => e.send(socket, to, data),
            Inner::Xdp(e) => e.send(socket, to, data),
        }
    }

    /// Hands queued sends to the kernel now (io_uring: one submit; mmsg: `sendmmsg` per run of
    /// datagrams on one socket, waiting briefly on a full socket buffer, then dropping the
    /// rest with a count).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Uring(e) => e.flush(),
            Inner::Mmsg(e) => e.flush(),
            Inner::Xdp(e) => e.flush(),
        }
    }

    /// Also ends a blocking [`wait`](Self::wait) when `fd` becomes readable (a stream
    /// poller's epoll fd, `crate::stream`); the caller then polls `fd` itself. Call before
    /// the first `wait`; `fd` must stay open as long as the engine lives. io_uring: a
    /// one-shot `PollAdd` re-armed each wait; mmsg and XDP: one more entry of the `ppoll`
    /// set (AF_XDP does not carry streams: they keep the kernel's socket path).
    pub fn watch_readable(&mut self, fd: std::os::fd::RawFd) {
        match &mut self.inner {
            Inner::Uring(e) => e.watch_readable(fd),
            Inner::Mmsg(e) => e.watch_readable(fd),
            Inner::Xdp(e) => e.watch_readable(fd),
        }
    }

    /// Whether [`send_stream`](Self::send_stream) takes stream writes (io_uring); the
    /// other engines leave them to a plain `write` per connection.
    pub fn sends_streams(&self) -> bool {
        matches!(self.inner, Inner::Uring(_))
    }

    /// Queues one send of `buf[at..]` on the stream socket `fd` (nonblocking), to reach the
    /// kernel with the next [`wait`](Self::wait) or [`flush`](Self::flush), in the same
    /// `io_uring_enter` as the UDP sends. The engine owns `buf` until the completion hands it
    /// back ([`take_stream_sends`](Self::take_stream_sends), with `token`); the caller keeps
    /// `fd` open until then and sends nothing else on it meanwhile. `Err(buf)`: not queued
    /// (not io_uring, nothing to send, or the ring refused it): write it another way.
    pub fn send_stream(
        &mut self,
        fd: std::os::fd::RawFd,
        token: u64,
        buf: Vec<u8>,
        at: usize,
    ) -> Result<(), Vec<u8>> {
        match &mut self.inner {
            Inner::Uring(e) => e.send_stream(fd, token, buf, at),
            Inner::Mmsg(_) | Inner::Xdp(_) => Err(buf),
        }
    }

    /// Moves the stream sends completed so far (reaped by [`wait`](Self::wait)) into `out`.
    pub fn take_stream_sends(&mut self, out: &mut Vec<StreamSendDone>) {
        if let Inner::Uring(e) = &mut self.inner {
            e.take_stream_sends(out);
        }
    }

    /// Counters since the engine was built.
    pub fn stats(&self) -> &EngineStats {
        match &self.inner {
            Inner::Uring(e) => e.stats(),
            Inner::Mmsg(e) => e.stats(),
            Inner::Xdp(e) => e.stats(),
        }
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("kind", &self.kind())
            .field("stats", self.stats())
            .finish()
    }
}
