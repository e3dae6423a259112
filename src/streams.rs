//! The shard's side of stream transports (issue 19): what moves between the core and a
//! shard's [`Streams`], and writes handed to the shard that owns a connection.
//!
//! The core stays UDP-shaped: a message read from a connection is a datagram from
//! `(listener LocalId, peer)`, and a `Transmit` whose `local` is a stream listener is written
//! to the connection of `(local, remote)`. That connection belongs to one shard (the one
//! that accepted or opened it, [`Directory`]); another shard whose core emits the Transmit
//! hands the bytes to it over the mesh ([`Wire::Write`]) — RFC 5626 §5.3: a request to a
//! flow goes down that flow's connection, never a new one. With no connection anywhere
//! (after a restart, before the phone reconnects) the sending shard connects out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sipedge_core::{Millis, ShardMsg};
use sipedge_rt::stream::{AcceptFilter, Directory, Sent, StreamLimits, StreamListener, Streams};
use sipedge_rt::{Engine, MeshEndpoint};

/// How often connections are checked against their header and idle timeouts.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What travels on the shard mesh: the core's hand-offs, and writes for a connection the
/// receiving shard owns.
#[derive(Debug)]
pub enum Wire {
    /// A core hand-off.
    Core(ShardMsg),
    /// One SIP message to write to the receiver's connection of `(local, remote)`.
    Write {
        /// The listener (LocalId) of the flow.
        local: u16,
        /// The peer.
        remote: SocketAddr,
        /// The whole message.
        bytes: Box<[u8]>,
    },
}

impl Wire {
    /// Bytes held, for the mesh's per-queue byte limit.
    pub fn weight(&self) -> usize {
        match self {
            Wire::Core(m) => m.weight(),
            Wire::Write { bytes, .. } => std::mem::size_of::<Wire>() + bytes.len(),
        }
    }
}

/// LocalId → the engine's socket index (`None`: a stream listener), from the LocalId of
/// each engine socket.
pub fn udp_index(udp_locals: &[u16]) -> Vec<Option<usize>> {
    let mut index = Vec::new();
    for (i, l) in udp_locals.iter().enumerate() {
        let l = usize::from(*l);
        if index.len() <= l {
            index.resize(l + 1, None);
        }
        index[l] = Some(i);
    }
    index
}

/// What a shard needs to serve its stream listeners, prepared by `main`.
pub struct StreamSetup {
    /// This shard's listeners, one per stream entry of `[server] listen`.
    pub listeners: Vec<StreamListener>,
    /// This shard's share of `[tcp]`.
    pub limits: StreamLimits,
    /// The process-wide connection directory.
    pub directory: Arc<Directory>,
    /// Sources closed at accept: the banned (issue 17, `bans::accept_filter`).
    pub refuse: Option<AcceptFilter>,
}

impl std::fmt::Debug for StreamSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSetup")
            .field("listeners", &self.listeners)
            .field("limits", &self.limits)
            .finish()
    }
}

/// A shard's stream side in its loop.
#[derive(Debug)]
pub struct ShardStreams {
    streams: Streams,
    /// Writes handed to the owning shard.
    forwarded: u64,
    last_sweep: Instant,
}

impl ShardStreams {
    /// Builds the shard's stream side (`None`: no stream listener).
    pub fn new(shard: u16, setup: StreamSetup) -> std::io::Result<Option<ShardStreams>> {
        if setup.listeners.is_empty() {
            return Ok(None);
        }
        let mut streams = Streams::new(shard, setup.listeners, setup.limits, setup.directory)?;
        if let Some(refuse) = setup.refuse {
            streams.set_accept_filter(refuse);
        }
        Ok(Some(ShardStreams {
            streams,
            forwarded: 0,
            last_sweep: Instant::now(),
        }))
    }

    /// The epoll fd the engine also waits on.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self.streams.raw_fd()
    }

    /// Work left over from the last turn: the shard must not block.
    pub fn has_pending(&self) -> bool {
        self.streams.has_pending()
    }

    /// Whether `local` is a stream listener.
    pub fn serves(&self, local: u16) -> bool {
        self.streams.serves(local)
    }

    /// Applies the writes `engine`'s ring completed, accepts and reads; each whole message
    /// goes to `on_message(local, remote, bytes)`. Once a second, closes connections past
    /// their timeouts first.
    pub fn poll(
        &mut self,
        now: Millis,
        engine: &mut Engine,
        on_message: &mut dyn FnMut(u16, SocketAddr, &[u8]),
    ) -> std::io::Result<()> {
        self.streams.complete_sends(now.0, engine);
        if self.last_sweep.elapsed() >= SWEEP_EVERY {
            self.last_sweep = Instant::now();
            self.streams.sweep(now.0);
        }
        self.streams.poll(now.0, on_message)
    }

    /// Each flow whose connection closed since the last call, as `f(listener, peer)`: the
    /// core fails an Outbound flow (`Core::handle_flow_closed`, RFC 5626 §5.3).
    pub fn drain_closed(&mut self, f: &mut dyn FnMut(u16, SocketAddr)) {
        self.streams.drain_closed(f);
    }

    /// A core Transmit for a stream listener: queued on our connection, handed to the
    /// owner shard, or dropped (counted).
    pub fn send(
        &mut self,
        now: Millis,
        local: u16,
        remote: SocketAddr,
        data: &[u8],
        mesh: &mut MeshEndpoint<Wire>,
    ) {
        if let Sent::Owner(owner) = self.streams.send(now.0, local, remote, data, false) {
            let w = Wire::Write {
                local,
                remote,
                bytes: data.into(),
            };
            if mesh.send(usize::from(owner), w).is_ok() {
                self.forwarded += 1;
            }
            // A full queue is counted by the mesh.
        }
    }

    /// A write handed to us by another shard: our connection, or a new one.
    pub fn handle_write(&mut self, now: Millis, local: u16, remote: SocketAddr, bytes: &[u8]) {
        let _ = self.streams.send(now.0, local, remote, bytes, true);
    }

    /// Writes what the turn queued: one send per connection, on `engine`'s ring (io_uring,
    /// submitted with the UDP sends) or as a `write`.
    pub fn flush(&mut self, now: Millis, engine: &mut Engine) {
        self.streams.flush_on(now.0, engine);
    }

    /// Publishes the counters.
    pub fn publish(&self, m: &crate::metrics_streams::StreamMetrics) {
        m.publish(self.streams.stats(), self.forwarded);
    }

    /// The longest the shard may block: the next sweep.
    pub fn max_wait(&self) -> Duration {
        SWEEP_EVERY.saturating_sub(self.last_sweep.elapsed())
    }
}
