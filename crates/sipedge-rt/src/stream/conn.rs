//! One shard's connection table: a slab of [`Conn`]s with generations (a stale mio token
//! never reaches a reused slot), the limits they live under and their counters.

use std::net::SocketAddr;

use mio::net::TcpStream;

use super::codec::StreamCodec;
use super::framing::Framer;

/// Default `[tcp] max_connections` (the whole edge; split per shard).
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
/// Default `[tcp] max_connections_per_ip`.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: u32 = 64;
/// Default `[tcp] max_connection_bytes`: read + write bytes held per connection.
pub const DEFAULT_MAX_CONNECTION_BYTES: usize = 256 * 1024;
/// Default `[tcp] header_timeout_secs`.
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Default `[tcp] idle_timeout_secs`.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 3600;

/// The limits one shard's connections live under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Connections this shard holds at most (accepted and outgoing).
    pub max_connections: usize,
    /// Connections one source IP may hold in the whole edge.
    pub max_connections_per_ip: u32,
    /// Bytes held per connection: a message under way plus replies not yet written.
    pub max_connection_bytes: usize,
    /// Largest SIP message (`max_message_bytes`).
    pub max_message_bytes: usize,
    /// A connection must complete a message within this many ms of its accept or of the
    /// first byte of a message (slowloris); outgoing connections must connect within it.
    pub header_timeout_ms: u64,
    /// A connection with no byte either way for this long closes.
    pub idle_timeout_ms: u64,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_connection_bytes: DEFAULT_MAX_CONNECTION_BYTES,
            max_message_bytes: crate::DEFAULT_RECV_BUF_BYTES,
            header_timeout_ms: DEFAULT_HEADER_TIMEOUT_SECS * 1000,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_SECS * 1000,
        }
    }
}

/// Why a connection closed (a counter each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed it, or reset it.
    Peer,
    /// No whole message within `header_timeout` (slowloris), or a connect that did not
    /// complete within it.
    TimeoutHeader,
    /// No byte either way within `idle_timeout`.
    TimeoutIdle,
    /// A message over `max_message_bytes`, or more than `max_connection_bytes` held.
    TooLarge,
    /// The stream cannot be framed (no Content-Length) or the codec refused it.
    Protocol,
    /// A socket error, or an outgoing connect that failed.
    Error,
}

/// Counters of one shard's streams. Plain integers, published by the shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Connections open now (gauge).
    pub open: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Outgoing connections opened (connect started).
    pub connects: u64,
    /// Connections refused at accept: the total cap was reached.
    pub refused_total: u64,
    /// Connections refused at accept: the source IP holds `max_connections_per_ip`.
    pub refused_per_ip: u64,
    /// Connections refused at accept: the source IP is banned (issue 17).
    pub refused_banned: u64,
    /// Connections accepted and closed at once: the shard's descriptor table is full
    /// (RLIMIT_NOFILE; the reserve descriptor was spent to take them off the backlog).
    pub refused_fd_limit: u64,
    /// Closed by the peer.
    pub closed_peer: u64,
    /// Closed: header timeout (slowloris) or connect timeout.
    pub closed_timeout_header: u64,
    /// Closed: idle.
    pub closed_timeout_idle: u64,
    /// Closed: too large (message or bytes held).
    pub closed_too_large: u64,
    /// Closed: protocol error.
    pub closed_protocol: u64,
    /// Closed: socket error or failed connect.
    pub closed_error: u64,
    /// Bytes read from connections.
    pub bytes_in: u64,
    /// Bytes written to connections.
    pub bytes_out: u64,
    /// SIP messages read.
    pub messages_in: u64,
    /// SIP messages queued to write.
    pub messages_out: u64,
    /// CRLFCRLF pings answered.
    pub pings: u64,
    /// Messages not sent: no connection and none could be opened.
    pub send_drops: u64,
}

impl StreamStats {
    pub(super) fn count_close(&mut self, why: CloseReason) {
        self.open = self.open.saturating_sub(1);
        *match why {
            CloseReason::Peer => &mut self.closed_peer,
            CloseReason::TimeoutHeader => &mut self.closed_timeout_header,
            CloseReason::TimeoutIdle => &mut self.closed_timeout_idle,
            CloseReason::TooLarge => &mut self.closed_too_large,
            CloseReason::Protocol => &mut self.closed_protocol,
            CloseReason::Error => &mut self.closed_error,
        } += 1;
    }
}

/// One connection, owned by one shard.
pub(super) struct Conn {
    pub(super) sock: TcpStream,
    /// The listener (LocalId) the flow belongs to.
    pub(super) local: u16,
    pub(super) remote: SocketAddr,
    pub(super) codec: Box<dyn StreamCodec>,
    pub(super) framer: Framer,
    /// Wire bytes to write; `out[out_at..]` is still pending.
    pub(super) out: Vec<u8>,
    pub(super) out_at: usize,
    /// Bytes of a send in flight on the shard's ring (its buffer is the ring's until the
    /// completion); 0: none. Nothing else is written meanwhile (order).
    pub(super) sending: usize,
    /// The last sent buffer, emptied, reused as `out` (no allocation per message).
    pub(super) spare: Vec<u8>,
    /// An outgoing connect not completed yet.
    pub(super) connecting: bool,
    /// Counted against its source IP (accepted connections).
    pub(super) counted_ip: bool,
    /// A whole message must arrive by then (ms), else the connection closes.
    pub(super) header_deadline: Option<u64>,
    pub(super) last_activity: u64,
    /// Queued in the shard's dirty list (pending output).
    pub(super) dirty: bool,
    /// Queued in the shard's ready list (may have more to read; edge-triggered).
    pub(super) ready: bool,
    /// The peer's FIN (or an error) was signalled: read until EOF or `WouldBlock`, a short
    /// read does not mean drained (the FIN's edge has been consumed).
    pub(super) hup: bool,
    /// Its codec's handshake is over (it never restarts): not asked again, so a turn does
    /// not touch a cold TLS state just for the handshake budget.
    pub(super) established: bool,
}

impl Conn {
    pub(super) fn pending_out(&self) -> usize {
        self.out.len().saturating_sub(self.out_at)
    }

    pub(super) fn held(&self) -> usize {
        self.pending_out()
            .saturating_add(self.sending)
            .saturating_add(self.framer.buffered())
    }
}

/// Slots with generations: a key is `(index, generation)` packed in a `usize` (mio token).
pub(super) struct Slab {
    slots: Vec<(u32, Option<Conn>)>,
    free: Vec<u32>,
    len: usize,
}

impl Slab {
    pub(super) fn new() -> Slab {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn insert(&mut self, c: Conn) -> usize {
        self.len += 1;
        if let Some(i) = self.free.pop() {
            let slot = &mut self.slots[i as usize];
            slot.0 = slot.0.wrapping_add(1) & 0x7fff_ffff;
            slot.1 = Some(c);
            return key(i, slot.0);
        }
        let i = self.slots.len() as u32;
        self.slots.push((0, Some(c)));
        key(i, 0)
    }

    pub(super) fn get_mut(&mut self, k: usize) -> Option<&mut Conn> {
        let (i, g) = unkey(k);
        match self.slots.get_mut(i) {
            Some((gen, Some(c))) if *gen == g => Some(c),
            _ => None,
        }
    }

    pub(super) fn remove(&mut self, k: usize) -> Option<Conn> {
        let (i, g) = unkey(k);
        match self.slots.get_mut(i) {
            Some((gen, c @ Some(_))) if *gen == g => {
                self.len -= 1;
                self.free.push(i as u32);
                c.take()
            }
            _ => None,
        }
    }

    /// Every live connection with its key (for the once-a-second sweep).
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &Conn)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, (g, c))| Some((key(i as u32, *g), c.as_ref()?)))
    }

    /// Every live key.
    pub(super) fn keys(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, (_, c))| c.is_some())
            .map(|(i, (g, _))| key(i as u32, *g))
    }
}

/// Listener tokens live above every connection key.
pub(super) const LISTENER_BASE: usize = usize::MAX - u16::MAX as usize - 1;

fn key(i: u32, g: u32) -> usize {
    // Generations stay below 2^31 in the key so no key reaches LISTENER_BASE.
    ((g as usize & 0x7fff_ffff) << 32) | i as usize
}

fn unkey(k: usize) -> (usize, u32) {
    (k & 0xffff_ffff, (k >> 32) as u32)
}
