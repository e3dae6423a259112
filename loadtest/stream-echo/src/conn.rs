//! The connections of stream-echo and the work of one turn: accept, read, answer, write.

use std::io::{self, BufRead, Read, Write};
use std::net::TcpListener as StdListener;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use sipedge_rt::stream::rustls::{ServerConfig, ServerConnection};
use sipedge_rt::{Engine, StreamSendDone};

/// Bytes per `read` (sipedge's `Streams` reads 16 KiB at a time too).
const READ_CHUNK: usize = 16 * 1024;
pub(crate) const LISTENER: Token = Token(usize::MAX);

pub(crate) struct Conn {
    pub(crate) sock: TcpStream,
    tls: Option<ServerConnection>,
    /// Plaintext received and not yet answered (a partial message).
    held: Vec<u8>,
    /// Wire bytes to send.
    pub(crate) out: Vec<u8>,
    /// A finished send buffer, the next `out` (no allocation per message).
    pub(crate) spare: Vec<u8>,
    /// A ring send is in flight (its buffer is the engine's).
    pub(crate) sending: bool,
    pub(crate) dirty: bool,
    /// Closed while its send was in flight: dropped at the completion.
    pub(crate) dead: bool,
}

/// The listener, the connections and the counters.
pub(crate) struct Server {
    pub(crate) poll: Poll,
    pub(crate) events: Events,
    listener: TcpListener,
    pub(crate) conns: Vec<Option<Conn>>,
    pub(crate) free: Vec<usize>,
    pub(crate) dirty: Vec<usize>,
    rbuf: Box<[u8]>,
    /// Answers in plaintext, before TLS encrypts them.
    pub(crate) scratch: Vec<u8>,
    done: Vec<StreamSendDone>,
    tls: Option<Arc<ServerConfig>>,
    pub(crate) answered: u64,
    pub(crate) accepted: u64,
    pub(crate) reads: u64,
    pub(crate) writes: u64,
}

/// Appends the answer to one message `msg` (its header block, `\r\n\r\n` included): a
/// request's start line becomes `SIP/2.0 200 OK`, the rest is kept; a double-CRLF ping gets
/// a CRLF pong (RFC 5626 §4.4.1); anything else is echoed.
fn answer(msg: &[u8], out: &mut Vec<u8>) {
    if msg == b"\r\n\r\n" {
        out.extend_from_slice(b"\r\n");
        return;
    }
    if !msg.starts_with(b"SIP/2.0 ") {
        if let Some(eol) = memchr::memmem::find(msg, b"\r\n") {
            out.extend_from_slice(b"SIP/2.0 200 OK");
            out.extend_from_slice(&msg[eol..]);
            return;
        }
    }
    out.extend_from_slice(msg);
}

/// Answers every whole message at the front of `data`; returns (bytes used, messages).
fn answer_all(data: &[u8], out: &mut Vec<u8>) -> (usize, u64) {
    let mut at = 0;
    let mut n = 0;
    while let Some(e) = memchr::memmem::find(&data[at..], b"\r\n\r\n") {
        let end = at + e + 4;
        answer(&data[at..end], out);
        at = end;
        n += 1;
    }
    (at, n)
}

/// Answers what `plain` completes (after what `held` keeps) into `out`.
fn take_plain(held: &mut Vec<u8>, plain: &[u8], out: &mut Vec<u8>) -> u64 {
    if held.is_empty() {
        let (used, n) = answer_all(plain, out);
        held.extend_from_slice(&plain[used..]);
        n
    } else {
        held.extend_from_slice(plain);
        let (used, n) = answer_all(held, out);
        held.drain(..used);
        n
    }
}

/// Answers what `input` (bytes off the socket) completes into `c.out`; false: a TLS error
/// (the connection closes).
pub(crate) fn ingest(
    c: &mut Conn,
    input: &[u8],
    scratch: &mut Vec<u8>,
    answered: &mut u64,
) -> bool {
    let Some(t) = &mut c.tls else {
        *answered += take_plain(&mut c.held, input, &mut c.out);
        return true;
    };
    let mut rest = input;
    let mut ok = true;
    while !rest.is_empty() {
        ok = matches!(t.read_tls(&mut rest), Ok(n) if n > 0) && t.process_new_packets().is_ok();
        if !ok {
            break;
        }
        scratch.clear();
        let mut reader = t.reader();
        while let Ok(chunk) = reader.fill_buf() {
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len();
            *answered += take_plain(&mut c.held, chunk, scratch);
            reader.consume(n);
        }
        if !scratch.is_empty() {
            let _ = t.writer().write_all(scratch);
        }
    }
    while t.wants_write() {
        if !matches!(t.write_tls(&mut c.out), Ok(n) if n > 0) {
            break;
        }
    }
    ok
}

impl Server {
    pub(crate) fn new(listener: StdListener, tls: Option<Arc<ServerConfig>>) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Server {
            poll,
            events: Events::with_capacity(1024),
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            dirty: Vec::new(),
            rbuf: vec![0; READ_CHUNK].into_boxed_slice(),
            scratch: Vec::new(),
            done: Vec::new(),
            tls,
            answered: 0,
            accepted: 0,
            reads: 0,
            writes: 0,
        })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }

    /// Waits up to `timeout` for readiness, accepts, reads and answers.
    pub(crate) fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        self.dispatch(|c, k| c.read(k));
        Ok(())
    }

    /// Acts on the events the last poll returned: accepts on the listener, marks writable
    /// connections dirty, hands each readable (or closed) connection to `readable`.
    pub(crate) fn dispatch(&mut self, mut readable: impl FnMut(&mut Self, usize)) {
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for ev in events.iter() {
            if ev.token() == LISTENER {
                self.accept();
                continue;
            }
            let k = ev.token().0;
            if ev.is_writable() {
                self.mark_dirty(k);
            }
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                readable(self, k);
            }
        }
        events.clear();
        self.events = events;
    }

    pub(crate) fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut sock, _)) => {
                    let _ = sock.set_nodelay(true);
                    let tls = match &self.tls {
                        Some(cfg) => match ServerConnection::new(Arc::clone(cfg)) {
                            Ok(c) => Some(c),
                            Err(_) => continue,
                        },
                        None => None,
                    };
                    let k = self.free.pop().unwrap_or(self.conns.len());
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if self
                        .poll
                        .registry()
                        .register(&mut sock, Token(k), interest)
                        .is_err()
                    {
                        continue;
                    }
                    let c = Conn {
                        sock,
                        tls,
                        held: Vec::new(),
                        out: Vec::new(),
                        spare: Vec::new(),
                        sending: false,
                        dirty: false,
                        dead: false,
                    };
                    if k == self.conns.len() {
                        self.conns.push(Some(c));
                    } else {
                        self.conns[k] = Some(c);
                    }
                    self.accepted += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Reads connection `k` until a short read (edge-triggered: a short read means drained)
    /// and answers each whole message.
    fn read(&mut self, k: usize) {
        let Some(Some(c)) = self.conns.get_mut(k) else {
            return;
        };
        if c.dead {
            return;
        }
        let mut close = false;
        loop {
            let got = match c.sock.read(&mut self.rbuf) {
                Ok(0) => {
                    close = true;
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    close = true;
                    break;
                }
            };
            self.reads += 1;
            if !ingest(c, &self.rbuf[..got], &mut self.scratch, &mut self.answered) {
                close = true;
            }
            if close || got < self.rbuf.len() {
                break;
            }
        }
        if close {
            self.close(k);
        } else {
            self.mark_dirty(k);
        }
    }

    pub(crate) fn mark_dirty(&mut self, k: usize) {
        if let Some(Some(c)) = self.conns.get_mut(k) {
            if !c.dirty && !c.out.is_empty() && !c.dead {
                c.dirty = true;
                self.dirty.push(k);
            }
        }
    }

    pub(crate) fn close(&mut self, k: usize) {
        let Some(slot) = self.conns.get_mut(k) else {
            return;
        };
        let Some(c) = slot.as_mut() else { return };
        let _ = self.poll.registry().deregister(&mut c.sock);
        if c.sending {
            // The fd stays open until the ring hands the send back.
            c.dead = true;
            return;
        }
        *slot = None;
        self.free.push(k);
    }

    /// One `write` per dirty connection; the rest waits for the writable edge.
    pub(crate) fn flush_writes(&mut self) {
        for k in std::mem::take(&mut self.dirty) {
            let Some(Some(c)) = self.conns.get_mut(k) else {
                continue;
            };
            c.dirty = false;
            if c.out.is_empty() {
                continue;
            }
            self.writes += 1;
            match c.sock.write(&c.out) {
                Ok(n) => {
                    c.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => self.close(k),
            }
        }
    }

    /// One ring send per dirty connection without one in flight, submitted by the engine's
    /// next wait.
    pub(crate) fn flush_on(&mut self, engine: &mut Engine) {
        for k in std::mem::take(&mut self.dirty) {
            let Some(Some(c)) = self.conns.get_mut(k) else {
                continue;
            };
            c.dirty = false;
            if c.out.is_empty() || c.sending {
                continue;
            }
            let buf = std::mem::replace(&mut c.out, std::mem::take(&mut c.spare));
            self.writes += 1;
            match engine.send_stream(c.sock.as_raw_fd(), k as u64, buf, 0) {
                Ok(()) => c.sending = true,
                Err(buf) => {
                    c.spare = std::mem::replace(&mut c.out, buf);
                    if let Ok(n) = c.sock.write(&c.out) {
                        c.out.drain(..n);
                    }
                }
            }
        }
    }

    /// Applies the ring sends that completed: the buffer comes back, a partial send's rest
    /// goes in front of what was queued since.
    pub(crate) fn complete_sends(&mut self, engine: &mut Engine) {
        let mut done = std::mem::take(&mut self.done);
        engine.take_stream_sends(&mut done);
        for d in done.drain(..) {
            self.send_completed(d.token as usize, Some(d.buf), d.at, d.result);
        }
        self.done = done;
    }

    /// A send of `buf[at..]` on connection `k` completed with `result` (bytes or −errno): a
    /// dead connection is freed, a full send's buffer is kept for reuse, a partial send's
    /// rest goes in front of what was queued since, an error closes the connection.
    pub(crate) fn send_completed(
        &mut self,
        k: usize,
        buf: Option<Vec<u8>>,
        at: usize,
        result: i32,
    ) {
        let Some(Some(c)) = self.conns.get_mut(k) else {
            return;
        };
        c.sending = false;
        if c.dead {
            self.conns[k] = None;
            self.free.push(k);
            return;
        }
        let Some(mut buf) = buf else { return };
        match usize::try_from(result) {
            Ok(n) if at + n >= buf.len() => {
                buf.clear();
                c.spare = buf;
            }
            Ok(n) => {
                buf.drain(..at + n);
                buf.extend_from_slice(&c.out);
                c.out = buf;
            }
            Err(_) if result == -libc::EAGAIN => {
                buf.drain(..at);
                buf.extend_from_slice(&c.out);
                c.out = buf;
                return; // the writable edge marks it dirty
            }
            Err(_) => {
                self.close(k);
                return;
            }
        }
        self.mark_dirty(k);
    }
}

#[cfg(test)]
mod tests {
    use super::take_plain;

    #[test]
    fn answers_whole_messages_and_keeps_the_rest() {
        let req =
            b"REGISTER sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 1.2.3.4:5\r\nContent-Length: 0\r\n\r\n";
        let mut held = Vec::new();
        let mut out = Vec::new();
        assert_eq!(take_plain(&mut held, &req[..30], &mut out), 0);
        assert!(out.is_empty());
        let mut two = req[30..].to_vec();
        two.extend_from_slice(req);
        assert_eq!(take_plain(&mut held, &two, &mut out), 2);
        assert!(held.is_empty());
        let one = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 1.2.3.4:5\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(out, [&one[..], &one[..]].concat());
    }
}
