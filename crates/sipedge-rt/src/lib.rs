//! `sipedge-rt`: the per-core runtime — io_uring (or recvmmsg/sendmmsg) UDP sockets with
//! SO_REUSEPORT, provided-buffer rings, the lock-free mesh between shards, and CPU pinning.
//!
//! It knows nothing about SIP: it moves datagrams and opaque messages between shards. It does
//! not parse, decide, or keep protocol state; timeouts are given to it (it reads the monotonic
//! clock only to keep a blocking wait within the timeout it was given).
//!
//! This is the only crate allowed to contain `unsafe`. Every `unsafe` block carries a
//! `// SAFETY:` comment, and every one is exercised by a test.
//!
//! # Modules
//!
//! | module | what |
//! | --- | --- |
//! | [`socket`] | [`bind_udp_reuseport`], socket buffer sizes, [`pin_current_thread`], [`available_cores`] |
//! | `wake` | [`WakeFd`] (per-shard eventfd + `sleeping` flag) and its [`Waker`] handles |
//! | `mesh` | [`Mesh`]: bounded lock-free queues between every pair of shards |
//! | `engine` | [`Engine`]: one shard's UDP I/O, an enum over the two engines below |
//! | `uring` | the io_uring engine (multishot `RecvMsg` into a provided-buffer ring, `SendMsg`, eventfd `Read`), its shutdown, and [`probe_uring`] |
//! | `mmsg` | the fallback engine: `recvmmsg`/`sendmmsg` + `ppoll` |
//! | `xdp` | the AF_XDP engine: its filtering XDP program, UMEM and rings, frames ⇄ datagrams |
//! | `sendq` | send slots shared by both engines (preallocated, reused) |
//! | `sockaddr` | `SocketAddr` ⇄ raw `sockaddr_in`/`sockaddr_in6` bytes |
//! | `cputime` | [`thread_cpu_time`]: the calling thread's CPU time (a shard turn's work, without the time it waited for a CPU) |
//! | `pktinfo` | wildcard binds: each datagram's destination (`IP_PKTINFO`/`IPV6_RECVPKTINFO`) remembered per peer and used as the source of what we send it |
//!
//! # A shard loop turn
//!
//! ```text
//! engine.wait(timeout, || mesh.has_pending(), |dgram| core.handle_datagram(..))
//! mesh.recv(max, |from, msg| core.handle_shard_msg(..))
//! while let Some(t) = core.poll_transmit() { engine.send(..) }   // copied into send slots
//! while let Some((to, m)) = core.poll_shard_msg() { mesh.send(to, m) }
//! mesh.flush_wakeups()                                              // at most one wake per peer
//! ```
//!
//! Sends queued during a turn are submitted at the next `wait` (or an explicit `flush`), so one
//! turn costs one `io_uring_enter` under load.
//!
//! # The sleep/wake protocol
//!
//! A shard that has nothing to do blocks inside [`Engine::wait`]. Before blocking it sets its
//! `sleeping` flag (SeqCst), issues a full fence, and then calls the caller's `has_pending`
//! (e.g. [`MeshEndpoint::has_pending`]); if that reports work it does not block. A peer pushes
//! its message first, issues a full fence, and then calls [`Waker::wake`], which writes the
//! eventfd only if it swapped `sleeping` from `true` to `false`. Either the sleeper sees the
//! message, or the waker sees the flag (the two fences forbid both missing), so no wake-up is
//! lost, and an awake shard costs its peers one atomic swap and no syscall.
#![allow(unsafe_code)]

mod bpf;
mod cputime;
mod engine;
mod filter;
mod meminfo;
mod mesh;
mod mmsg;
mod pktinfo;
mod poll;
mod sendq;
mod sockaddr;
pub mod socket;
pub mod stream;
mod uring;
mod wake;
mod xdp;

use std::fmt;
use std::net::SocketAddr;

pub use cputime::thread_cpu_time;
pub use engine::Engine;
pub use filter::{BanFilter, KernelShed, SHED_ALL};
pub use meminfo::{socket_last_read_stamp, socket_meminfo, SocketMemInfo};
pub use mesh::{Mesh, MeshEndpoint, MeshLimits, MeshStats};
pub use socket::{
    available_cores, bind_udp_reuseport, own_fd_table, pin_current_thread, socket_buffer_sizes,
    SocketBuffers, SocketOptions,
};
pub use uring::{probe_uring, probe_uring_features, StreamSendDone, UringFeatures};
pub use wake::{WakeFd, Waker};
pub use xdp::{XdpAttach, XdpConfig};

/// Default number of receive buffers per shard (io_uring provided buffers; rounded up to a
/// power of two).
pub const DEFAULT_RECV_SLOTS: usize = 1024;
/// Default largest datagram payload received without truncation, in bytes. The shard should
/// set this from its configured maximum message size; larger datagrams are delivered with
/// [`Datagram::truncated`] set.
pub const DEFAULT_RECV_BUF_BYTES: usize = 16 * 1024;
/// Default number of send slots per shard (queued or in flight at once).
pub const DEFAULT_SEND_SLOTS: usize = 1024;
/// Default most datagrams delivered by one [`Engine::wait`].
pub const DEFAULT_MAX_BATCH: usize = 256;

/// Which engine the configuration asks for (`io = "auto" | "uring" | "mmsg" | "xdp"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    /// io_uring if [`probe_uring`] passes, otherwise recvmmsg/sendmmsg.
    #[default]
    Auto,
    /// io_uring, or fail to start.
    Uring,
    /// recvmmsg/sendmmsg with `ppoll`.
    Mmsg,
    /// AF_XDP on [`EngineConfig::xdp`]'s interface, with recvmmsg/sendmmsg on the UDP
    /// sockets for what XDP does not carry; or fail to start.
    Xdp,
}

/// The engine a shard actually runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    /// io_uring.
    Uring,
    /// recvmmsg/sendmmsg.
    Mmsg,
    /// AF_XDP (plus recvmmsg/sendmmsg on the UDP sockets).
    Xdp {
        /// Zero-copy mode ran (else copy mode).
        zero_copy: bool,
    },
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EngineKind::Uring => "io_uring",
            EngineKind::Mmsg => "mmsg",
            EngineKind::Xdp { zero_copy: true } => "xdp_zerocopy",
            EngineKind::Xdp { zero_copy: false } => "xdp_copy",
        })
    }
}

/// Sizes of one shard's engine. All memory is allocated when the engine is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Receive buffers (io_uring: provided buffers shared by the shard's sockets, rounded up to
    /// a power of two, at most 32768). Default [`DEFAULT_RECV_SLOTS`].
    pub recv_slots: usize,
    /// Largest payload per receive buffer, in bytes (the engine adds room for its own
    /// headers). Default [`DEFAULT_RECV_BUF_BYTES`].
    pub recv_buf_bytes: usize,
    /// Datagrams queued or in flight at once; [`Engine::send`] returns false beyond this.
    /// Default [`DEFAULT_SEND_SLOTS`].
    pub send_slots: usize,
    /// Most datagrams delivered by one [`Engine::wait`]. Default [`DEFAULT_MAX_BATCH`].
    pub max_batch: usize,
    /// The AF_XDP engine's settings (used by [`IoMode::Xdp`] only).
    pub xdp: XdpConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            recv_slots: DEFAULT_RECV_SLOTS,
            recv_buf_bytes: DEFAULT_RECV_BUF_BYTES,
            send_slots: DEFAULT_SEND_SLOTS,
            max_batch: DEFAULT_MAX_BATCH,
            xdp: XdpConfig::default(),
        }
    }
}

/// One datagram received by a shard.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Index into the sockets given to [`Engine::new`].
    pub socket: usize,
    /// The sender.
    pub remote: SocketAddr,
    /// The payload; borrows the engine's receive buffer, valid only inside the callback.
    pub data: &'a [u8],
    /// The datagram was larger than the buffer (`MSG_TRUNC`); `data` holds its beginning.
    pub truncated: bool,
}

/// Counters of one engine. Plain integers: the shard reads them and publishes its own metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Datagrams delivered to the callback.
    pub datagrams_in: u64,
    /// Datagrams the kernel accepted for sending.
    pub datagrams_out: u64,
    /// Datagrams not sent: no free send slot, or the socket buffer stayed full.
    pub send_drops: u64,
    /// Datagrams the kernel refused for another reason (e.g. `EMSGSIZE`, unreachable).
    pub send_errors: u64,
    /// Datagrams delivered with [`Datagram::truncated`] set.
    pub recv_truncated: u64,
    /// Receive errors (including provided buffers running out, `ENOBUFS`).
    pub recv_errors: u64,
    /// Times a receive was re-armed after it ended (io_uring multishot termination).
    pub recv_rearms: u64,
    /// Submissions to the kernel: `io_uring_enter` calls, or `recvmmsg`/`sendmmsg`/`ppoll` calls.
    pub submits: u64,
    /// Wake-ups received through the eventfd.
    pub wakeups: u64,
    /// Calls of `wait` that delivered at least one datagram; `datagrams_in / recv_batches` is
    /// the average batch.
    pub recv_batches: u64,
    /// XDP: datagrams received as frames through the AF_XDP socket.
    pub xdp_rx_frames: u64,
    /// XDP: frames handed to the TX ring.
    pub xdp_tx_frames: u64,
    /// XDP: frames dropped (malformed, bad checksum, not for a listen address).
    pub xdp_rx_rejected: u64,
    /// XDP: datagrams sent through the UDP socket instead (peer MAC unknown, larger than the
    /// MTU, TX ring full).
    pub xdp_tx_via_socket: u64,
    /// XDP: 1 when the socket runs in zero-copy mode.
    pub xdp_zero_copy: u64,
    /// XDP: 1 when the program runs in native (driver) mode, 0 generic.
    pub xdp_native: u64,
}
