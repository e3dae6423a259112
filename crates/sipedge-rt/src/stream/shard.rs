//! [`Streams`]: one shard's stream listeners and connections, over an epoll set (mio) whose
//! fd the shard's UDP engine also waits on ([`Engine::watch_readable`](crate::Engine::watch_readable)).
//!
//! A turn: [`poll`](Streams::poll) accepts, reads, frames and hands each whole SIP message
//! to the caller as `(listener, peer, bytes)` — the core's datagram shape; the caller then
//! [`send`](Streams::send)s what the core emits for a stream listener, and
//! [`flush`](Streams::flush) writes each connection's queue with at most one `write` per
//! connection per turn. [`sweep`](Streams::sweep) (once a second) closes connections past
//! their header or idle timeout. All sockets are nonblocking; nothing here blocks.
//!
//! With the io_uring engine the shell calls [`flush_on`](Streams::flush_on) and
//! [`complete_sends`](Streams::complete_sends) instead: each write becomes one send on the
//! shard's ring, submitted with the turn's UDP sends (`ring_send`).
//!
//! Ownership: a connection is read and written only by the shard that accepted (or opened)
//! it; the [`Directory`] says which shard that is, so another shard hands it the bytes.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::codec::{Plain, StreamCodec};
use super::conn::{CloseReason, Conn, Slab, StreamLimits, StreamStats, LISTENER_BASE};
use super::directory::Directory;
use super::framing::{Frame, FrameError, Framer, PONG};

/// Builds the codec of each new connection of a listener, given the peer's address (TCP:
/// [`PlainCodec`](super::PlainCodec); an outgoing TLS connection checks the peer's certificate
/// against it).
pub type CodecFactory = Arc<dyn Fn(SocketAddr) -> Box<dyn StreamCodec> + Send + Sync>;

/// Says whether a source IP is refused at accept (banned, issue 17): the connection is
/// closed before a byte is read or a handshake started.
pub type AcceptFilter = Arc<dyn Fn(std::net::IpAddr) -> bool + Send + Sync>;

/// Bytes read per `read` call (one scratch buffer per shard).
const READ_CHUNK: usize = 16 * 1024;
/// Reads per connection per turn, at most: a busy connection cannot starve the others
/// (it stays on the ready list for the next turn).
const READS_PER_TURN: usize = 4;
/// Reads of connections still in their handshake per turn, at most (TLS, WebSocket
/// upgrade): bounds the handshake work of one turn to a few milliseconds.
const HANDSHAKE_READS_PER_TURN: usize = 8;
/// Accepts per listener per turn, at most.
const ACCEPTS_PER_TURN: usize = 256;
/// Readiness events taken per `poll`.
const EVENTS: usize = 1024;
/// Listen backlog of each shard's listener.
pub const LISTEN_BACKLOG: i32 = 1024;

/// One stream listener of a shard.
pub struct StreamListener {
    /// The LocalId of the listen entry (index in `[server] listen`).
    pub local: u16,
    /// This shard's SO_REUSEPORT listener ([`bind_tcp_reuseport`](crate::socket::bind_tcp_reuseport)).
    pub socket: TcpListener,
    /// The codec of each accepted connection.
    pub codec: CodecFactory,
    /// Codec of outgoing connections toward a peer without one (`None`: never connect out,
    /// e.g. WebSocket, which a browser opens).
    pub connect: Option<CodecFactory>,
}

impl std::fmt::Debug for StreamListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamListener")
            .field("local", &self.local)
            .field("socket", &self.socket)
            .field("connects", &self.connect.is_some())
            .finish()
    }
}

struct Listener {
    local: u16,
    sock: mio::net::TcpListener,
    addr: SocketAddr,
    codec: CodecFactory,
    connect: Option<CodecFactory>,
    /// Accepts left over (edge-triggered): accept again next turn without an event.
    backlog: bool,
}

/// What [`Streams::send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued on this shard's connection (or a connection this shard is opening).
    Queued,
    /// Another shard owns the connection: hand it the bytes.
    Owner(u16),
    /// Not sent (counted): no connection and none may be opened, or the connection closed.
    Dropped,
}

/// One shard's stream transports.
pub struct Streams {
    shard: u16,
    poll: Poll,
    events: Events,
    listeners: Vec<Listener>,
    pub(super) conns: Slab,
    by_flow: std::collections::HashMap<(u16, SocketAddr), usize>,
    directory: Arc<Directory>,
    limits: StreamLimits,
    pub(super) stats: StreamStats,
    /// Connections that may have more to read (edge-triggered readiness, read budget hit).
    ready: Vec<usize>,
    /// Connections with output to write at `flush`.
    pub(super) dirty: Vec<usize>,
    /// Ring sends completed, being applied (kept for its capacity, `ring_send`).
    pub(super) done: Vec<crate::StreamSendDone>,
    /// Closed connections whose ring send is still in flight (`ring_send`).
    pub(super) zombies: Vec<super::ring_send::Zombie>,
    rbuf: Box<[u8]>,
    /// Flows whose connection closed since [`Streams::drain_closed`] (issue 19: the core
    /// fails an Outbound flow, RFC 5626 §5.3).
    closed: Vec<(u16, SocketAddr)>,
    /// Sources refused at accept ([`Streams::set_accept_filter`]).
    refuse: Option<AcceptFilter>,
    /// A descriptor held in reserve (/dev/null): when the table is full (EMFILE), it is
    /// closed to accept the waiting connection and close it, so a full table refuses
    /// connections (counted) instead of leaving them in the backlog with the listener
    /// readable forever (a busy loop).
    reserve: Option<std::fs::File>,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("shard", &self.shard)
            .field("connections", &self.conns.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Streams {
    /// The shard's stream side over `listeners` (each already bound, nonblocking).
    pub fn new(
        shard: u16,
        listeners: Vec<StreamListener>,
        limits: StreamLimits,
        directory: Arc<Directory>,
    ) -> io::Result<Streams> {
        let poll = Poll::new()?;
        let mut ls = Vec::with_capacity(listeners.len());
        for (i, l) in listeners.into_iter().enumerate() {
            l.socket.set_nonblocking(true)?;
            let addr = l.socket.local_addr()?;
            let mut sock = mio::net::TcpListener::from_std(l.socket);
            poll.registry()
                .register(&mut sock, Token(LISTENER_BASE + i), Interest::READABLE)?;
            ls.push(Listener {
                local: l.local,
                sock,
                addr,
                codec: l.codec,
                connect: l.connect,
                backlog: true,
            });
        }
        Ok(Streams {
            shard,
            poll,
            events: Events::with_capacity(EVENTS),
            listeners: ls,
            conns: Slab::new(),
            by_flow: std::collections::HashMap::new(),
            directory,
            limits,
            stats: StreamStats::default(),
            ready: Vec::new(),
            dirty: Vec::new(),
            done: Vec::new(),
            zombies: Vec::new(),
            rbuf: vec![0; READ_CHUNK].into_boxed_slice(),
            closed: Vec::new(),
            refuse: None,
            reserve: std::fs::File::open("/dev/null").ok(),
        })
    }

    /// Connections from a source `refuse` says yes to are closed at accept, counted
    /// ([`StreamStats::refused_banned`]).
    pub fn set_accept_filter(&mut self, refuse: AcceptFilter) {
        self.refuse = Some(refuse);
    }

    /// Hands each flow whose connection closed since the last call to `f(listener, peer)`
    /// (once per connection that was its flow's current one).
    pub fn drain_closed(&mut self, f: &mut dyn FnMut(u16, SocketAddr)) {
        for (local, remote) in self.closed.drain(..) {
            f(local, remote);
        }
    }

    /// The epoll fd to wait on with the UDP sockets.
    pub fn raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }

    /// Counters.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }

    /// Whether `local` is one of this shard's stream listeners.
    pub fn serves(&self, local: u16) -> bool {
        self.listeners.iter().any(|l| l.local == local)
    }

    /// Work left from the last turn (reads or accepts over budget): do not block.
    pub fn has_pending(&self) -> bool {
        !self.ready.is_empty()
            || !self.closed.is_empty()
            || self.listeners.iter().any(|l| l.backlog)
    }

    /// Takes readiness without blocking, accepts, reads; calls `on_message(listener, peer,
    /// message)` for each whole SIP message, in order per connection. `now`: ms, the
    /// shard's clock.
    pub fn poll(
        &mut self,
        now: u64,
        on_message: &mut dyn FnMut(u16, SocketAddr, &[u8]),
    ) -> io::Result<()> {
        match self
            .poll
            .poll(&mut self.events, Some(std::time::Duration::ZERO))
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for ev in events.iter() {
            let k = ev.token().0;
            if k >= LISTENER_BASE {
                if let Some(l) = self.listeners.get_mut(k - LISTENER_BASE) {
                    l.backlog = true;
                }
                continue;
            }
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            if ev.is_writable() {
                if c.connecting {
                    // The outgoing connect completed: refused or unreachable, or up.
                    let failed =
                        c.sock.take_error().ok().flatten().is_some() || c.sock.peer_addr().is_err();
                    if failed {
                        super::log_connect_failed(c.remote, &"refused or unreachable");
                        self.close(k, CloseReason::Error);
                        continue;
                    }
                    c.connecting = false;
                    c.header_deadline = None;
                }
                if !c.dirty && c.pending_out() > 0 {
                    c.dirty = true;
                    self.dirty.push(k);
                }
            }
            if ev.is_read_closed() || ev.is_error() {
                c.hup = true;
            }
            if (ev.is_readable() || ev.is_read_closed() || ev.is_error()) && !c.ready {
                c.ready = true;
                self.ready.push(k);
            }
        }
        events.clear();
        self.events = events;
        for i in 0..self.listeners.len() {
            if self.listeners[i].backlog {
                self.accept(i, now);
            }
        }
        let ready = std::mem::take(&mut self.ready);
        let mut handshakes = 0;
        for k in ready {
            // A TLS handshake costs the server ~0.1–1 ms of CPU: a storm of reconnecting
            // phones must not make one turn long enough to shed SIP (issue 17's turn-lag
            // levels); the rest wait on the ready list for the next turn.
            let handshaking = self.conns.get_mut(k).is_some_and(|c| {
                if c.connecting || c.established {
                    return false;
                }
                c.established = !c.codec.is_handshaking();
                !c.established
            });
            if handshaking {
                if handshakes == HANDSHAKE_READS_PER_TURN {
                    if let Some(c) = self.conns.get_mut(k) {
                        c.ready = true;
                        self.ready.push(k);
                    }
                    continue;
                }
                handshakes += 1;
            }
            self.read(k, now, on_message);
        }
        Ok(())
    }

    fn accept(&mut self, i: usize, now: u64) {
        for _ in 0..ACCEPTS_PER_TURN {
            let l = &self.listeners[i];
            let (sock, remote) = match l.sock.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.listeners[i].backlog = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_fd_limit(&e) => {
                    if !self.refuse_at_fd_limit(i) {
                        // No reserve to spend: wait for the next connection's event.
                        self.listeners[i].backlog = false;
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    // ECONNABORTED…: logged, retried next turn.
                    tracing::debug!(target: "sip::tcp", error = %e, "accept failed");
                    return;
                }
            };
            if self.refuse.as_ref().is_some_and(|r| r(remote.ip())) {
                self.stats.refused_banned += 1;
                crate_log_refused(remote, "banned");
                continue;
            }
            if self.conns.len() >= self.limits.max_connections {
                self.stats.refused_total += 1;
                crate_log_refused(remote, "max_connections");
                continue; // dropping `sock` closes it
            }
            if !self
                .directory
                .try_open_ip(remote.ip(), self.limits.max_connections_per_ip)
            {
                self.stats.refused_per_ip += 1;
                crate_log_refused(remote, "max_connections_per_ip");
                continue;
            }
            let _ = sock.set_nodelay(true);
            let (local, codec) = (l.local, (l.codec)(remote));
            let conn = Conn {
                sock,
                local,
                remote,
                codec,
                framer: Framer::new(self.limits.max_message_bytes),
                out: Vec::new(),
                out_at: 0,
                sending: 0,
                spare: Vec::new(),
                connecting: false,
                counted_ip: true,
                header_deadline: Some(now.saturating_add(self.limits.header_timeout_ms)),
                last_activity: now,
                dirty: false,
                ready: true,
                hup: false,
                established: false,
            };
            if let Some(k) = self.adopt(conn) {
                self.stats.accepted += 1;
                // Bytes may have arrived with the connection: read them this turn.
                self.ready.push(k);
            }
        }
        // Budget spent: `backlog` stays set, accept again next turn.
    }

    /// The table is full: spends the reserve descriptor to take one connection off
    /// listener `i`'s backlog and close it (counted), then takes the reserve back. False
    /// when there was no reserve.
    fn refuse_at_fd_limit(&mut self, i: usize) -> bool {
        if self.reserve.take().is_none() {
            return false;
        }
        if let Ok((sock, remote)) = self.listeners[i].sock.accept() {
            drop(sock);
            self.stats.refused_fd_limit += 1;
            crate_log_refused(remote, "RLIMIT_NOFILE");
        }
        self.reserve = std::fs::File::open("/dev/null").ok();
        true
    }

    /// Registers a new connection and records its flow; `None`: it could not be registered.
    fn adopt(&mut self, conn: Conn) -> Option<usize> {
        let (local, remote, counted) = (conn.local, conn.remote, conn.counted_ip);
        let k = self.conns.insert(conn);
        let c = self.conns.get_mut(k)?;
        let reg = self.poll.registry().register(
            &mut c.sock,
            Token(k),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = reg {
            tracing::debug!(target: "sip::tcp", error = %e, "cannot register a connection");
            self.conns.remove(k);
            if counted {
                self.directory.close_ip(remote.ip());
            }
            return None;
        }
        self.stats.open += 1;
        // A newer connection of the same flow replaces the older one for sending.
        self.by_flow.insert((local, remote), k);
        self.directory.insert(local, remote, self.shard);
        Some(k)
    }

    fn read(&mut self, k: usize, now: u64, on_message: &mut dyn FnMut(u16, SocketAddr, &[u8])) {
        let limits = self.limits;
        let Some(c) = self.conns.get_mut(k) else {
            return;
        };
        c.ready = false;
        if c.connecting {
            return;
        }
        let mut close = None;
        let mut more = false;
        for n in 0..=READS_PER_TURN {
            if n == READS_PER_TURN {
                more = true;
                break;
            }
            let got = match c.sock.read(&mut self.rbuf) {
                Ok(0) => {
                    close = Some(CloseReason::Peer);
                    break;
                }
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    close = Some(match e.kind() {
                        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                            CloseReason::Peer
                        }
                        _ => CloseReason::Error,
                    });
                    break;
                }
            };
            self.stats.bytes_in += got as u64;
            c.last_activity = now;
            let (local, remote) = (c.local, c.remote);
            let mut pings = 0usize;
            let mut messages = 0u64;
            let mut frame_err: Option<FrameError> = None;
            let Conn {
                codec, framer, out, ..
            } = c;
            let max = limits.max_message_bytes;
            let read = codec.read(
                &self.rbuf[..got],
                &mut |p| {
                    if frame_err.is_some() {
                        return;
                    }
                    match p {
                        Plain::Stream(bytes) => {
                            let r = framer.push(bytes, &mut |f| match f {
                                Frame::Message(m) => {
                                    messages += 1;
                                    on_message(local, remote, m);
                                }
                                Frame::Ping => pings += 1,
                            });
                            if let Err(e) = r {
                                frame_err = Some(e);
                            }
                        }
                        // RFC 7118 §5: one SIP message per WebSocket message.
                        Plain::Message(m) if m.len() > max => {
                            frame_err = Some(FrameError::TooLarge);
                        }
                        Plain::Message(m) => {
                            messages += 1;
                            on_message(local, remote, m);
                        }
                    }
                },
                out,
            );
            self.stats.messages_in += messages;
            self.stats.pings += pings as u64;
            for _ in 0..pings {
                // RFC 5626 §4.4.1: a CRLFCRLF ping gets a CRLF pong.
                if c.codec.write(PONG, &mut c.out).is_err() {
                    close = Some(CloseReason::Protocol);
                }
            }
            // Slowloris: the header clock runs from accept or from a message's first byte.
            if messages > 0 || pings > 0 {
                c.header_deadline = None;
            }
            if c.framer.buffered() > 0 && c.header_deadline.is_none() {
                c.header_deadline = Some(now.saturating_add(limits.header_timeout_ms));
            }
            match (read, frame_err) {
                (_, Some(FrameError::TooLarge)) | (Err(super::CodecError::TooLarge), _) => {
                    close = Some(CloseReason::TooLarge);
                }
                (_, Some(e)) => {
                    tracing::debug!(target: "sip::tcp", %remote, error = %e, "stream framing failed");
                    close = Some(CloseReason::Protocol);
                }
                (Err(super::CodecError::Closed), None) => close = Some(CloseReason::Peer),
                (Err(e), None) => {
                    tracing::debug!(target: "sip::tcp", %remote, error = %e, "codec refused the stream");
                    close = Some(CloseReason::Protocol);
                }
                (Ok(()), None) => {}
            }
            if close.is_none() && c.held() > limits.max_connection_bytes {
                close = Some(CloseReason::TooLarge);
            }
            if close.is_some() {
                break;
            }
            // A short read drained the socket (a stream socket returns what it holds, up to
            // the buffer): no `read` just to see `WouldBlock` — bytes arriving later raise a
            // new edge. Unless the FIN came with this edge: read on until EOF.
            if got < self.rbuf.len() && !c.hup {
                break;
            }
        }
        if c.pending_out() > 0 && !c.dirty {
            c.dirty = true;
            self.dirty.push(k);
        }
        if let Some(why) = close {
            // A last reply (a codec's close, a pong) goes out first, best effort.
            let _ = Self::write_once(c, &mut self.stats);
            self.close(k, why);
        } else if more {
            c.ready = true;
            self.ready.push(k);
        }
    }

    /// Queues one SIP message to `(local, remote)`'s connection. `forwarded`: the bytes came
    /// from another shard that found this one in the directory (never forwarded again).
    pub fn send(
        &mut self,
        now: u64,
        local: u16,
        remote: SocketAddr,
        data: &[u8],
        forwarded: bool,
    ) -> Sent {
        if let Some(&k) = self.by_flow.get(&(local, remote)) {
            return self.queue(k, data);
        }
        if !forwarded {
            if let Some(owner) = self.directory.owner(local, remote) {
                if owner != self.shard {
                    return Sent::Owner(owner);
                }
            }
        }
        match self.connect(now, local, remote) {
            Some(k) => self.queue(k, data),
            None => {
                self.stats.send_drops += 1;
                Sent::Dropped
            }
        }
    }

    fn queue(&mut self, k: usize, data: &[u8]) -> Sent {
        let limit = self.limits.max_connection_bytes;
        let Some(c) = self.conns.get_mut(k) else {
            self.stats.send_drops += 1;
            return Sent::Dropped;
        };
        if c.out_at > 0 && c.out_at == c.out.len() {
            c.out.clear();
            c.out_at = 0;
        }
        if c.codec.write(data, &mut c.out).is_err() || c.held() > limit {
            // A peer that does not read what it is sent holds our memory: it goes.
            self.stats.send_drops += 1;
            self.close(k, CloseReason::TooLarge);
            return Sent::Dropped;
        }
        self.stats.messages_out += 1;
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(k);
        }
        Sent::Queued
    }

    /// Opens an outgoing connection from listener `local`'s address toward `remote`
    /// (nonblocking; bytes queue until it is up). `None`: not allowed or failed (counted).
    fn connect(&mut self, now: u64, local: u16, remote: SocketAddr) -> Option<usize> {
        let l = self.listeners.iter().find(|l| l.local == local)?;
        let codec = (l.connect.as_ref()?)(remote);
        if self.conns.len() >= self.limits.max_connections {
            self.stats.refused_total += 1;
            return None;
        }
        let sock = match super::socket::connect_from(l.addr, remote) {
            Ok(s) => s,
            Err(e) => {
                super::log_connect_failed(remote, &e);
                self.stats.closed_error += 1;
                return None;
            }
        };
        let _ = sock.set_nodelay(true);
        self.stats.connects += 1;
        let conn = Conn {
            sock: TcpStream::from_std(sock),
            local,
            remote,
            codec,
            framer: Framer::new(self.limits.max_message_bytes),
            out: Vec::new(),
            out_at: 0,
            sending: 0,
            spare: Vec::new(),
            connecting: true,
            counted_ip: false,
            // The connect must complete within the header timeout.
            header_deadline: Some(now.saturating_add(self.limits.header_timeout_ms)),
            last_activity: now,
            dirty: false,
            ready: false,
            hup: false,
            established: false,
        };
        self.adopt(conn)
    }

    /// Writes each connection's pending output, one `write` per connection. `now` (ms):
    /// bytes written count as activity (idle timeout).
    pub fn flush(&mut self, now: u64) {
        let dirty = std::mem::take(&mut self.dirty);
        for k in dirty {
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            c.dirty = false;
            if c.connecting {
                // Written once the connect completes (its writable event).
                continue;
            }
            match Self::write_once(c, &mut self.stats) {
                Ok(true) => c.last_activity = now,
                Ok(false) => {}
                Err(why) => self.close(k, why),
            }
        }
    }

    /// One `write` of the pending output; true if bytes went out. Partial: the rest waits
    /// for a writable event. Not while a ring send is in flight (it goes first).
    pub(super) fn write_once(c: &mut Conn, stats: &mut StreamStats) -> Result<bool, CloseReason> {
        if c.pending_out() == 0 || c.connecting || c.sending > 0 {
            return Ok(false);
        }
        match c.sock.write(&c.out[c.out_at..]) {
            Ok(n) => {
                stats.bytes_out += n as u64;
                c.out_at += n;
                if c.out_at == c.out.len() {
                    c.out.clear();
                    c.out_at = 0;
                } else if c.out_at > c.out.len() / 2 {
                    c.out.drain(..c.out_at);
                    c.out_at = 0;
                }
                Ok(n > 0)
            }
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Ok(false)
            }
            Err(e)
                if e.kind() == io::ErrorKind::BrokenPipe
                    || e.kind() == io::ErrorKind::ConnectionReset =>
            {
                Err(CloseReason::Peer)
            }
            Err(_) => Err(CloseReason::Error),
        }
    }

    /// Closes connections past their header timeout (slowloris, or a connect that did not
    /// complete) or idle timeout. Call about once a second.
    pub fn sweep(&mut self, now: u64) {
        let idle = self.limits.idle_timeout_ms;
        let mut due = Vec::new();
        for (k, c) in self.conns.iter() {
            if c.header_deadline.is_some_and(|d| d <= now) {
                due.push((k, CloseReason::TimeoutHeader));
            } else if now.saturating_sub(c.last_activity) >= idle {
                due.push((k, CloseReason::TimeoutIdle));
            }
        }
        for (k, why) in due {
            if why == CloseReason::TimeoutHeader {
                if let Some(c) = self.conns.get_mut(k) {
                    tracing::debug!(target: "sip::tcp", remote = %c.remote, connecting = c.connecting, "connection closed: no whole message within header_timeout");
                }
            }
            self.close(k, why);
        }
    }

    pub(super) fn close(&mut self, k: usize, why: CloseReason) {
        let Some(mut c) = self.conns.remove(k) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.sock);
        if self.by_flow.get(&(c.local, c.remote)) == Some(&k) {
            self.by_flow.remove(&(c.local, c.remote));
            self.directory.remove(c.local, c.remote, self.shard);
            self.closed.push((c.local, c.remote));
        }
        if c.counted_ip {
            self.directory.close_ip(c.remote.ip());
        }
        self.stats.count_close(why);
        if c.sending > 0 {
            // The ring still sends from this socket: it stays open until the completion.
            self.zombies
                .push(super::ring_send::Zombie::new(k, c.sock, c.out, c.out_at));
        }
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        let keys: Vec<usize> = self.conns.keys().collect();
        for k in keys {
            self.close(k, CloseReason::Peer);
        }
    }
}

/// EMFILE / ENFILE: the descriptor table (or the system's) is full.
fn is_fd_limit(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

fn crate_log_refused(remote: SocketAddr, cap: &'static str) {
    tracing::debug!(target: "sip::tcp", %remote, cap, "connection refused at accept");
}
