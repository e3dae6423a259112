//! Connection writes through the shard's io_uring (issue 19): [`Streams::flush_on`] hands
//! each dirty connection's pending bytes to the engine as one send, submitted with the
//! turn's UDP sends in the next `io_uring_enter`, instead of one `write` system call each;
//! [`Streams::complete_sends`] takes the results back.
//!
//! Per connection at most one send is in flight (`Conn::sending`), so bytes leave in order:
//! what the turn queues meanwhile waits in `out`. The buffer is the ring's until the
//! completion returns it; it then becomes `spare`, the next `out` (two buffers per busy
//! connection, no allocation per message). A completion is handled as a `write`'s result:
//! a partial send puts the rest back in front of `out` and retries next turn, `EAGAIN` (the
//! send carries `MSG_DONTWAIT`, so a full socket buffer completes at once) waits for the
//! writable edge, `EPIPE`/`ECONNRESET` close as the peer's doing, other errors as ours.
//!
//! A connection closed while its send is in flight keeps its socket open (a [`Zombie`]) until
//! the completion, so the fd in the SQE never names a socket accepted after it; a last reply
//! queued behind the send (a TLS alert, a close_notify) is written then, best effort.

use std::io::Write;
use std::os::fd::AsRawFd;

use mio::net::TcpStream;

use super::{CloseReason, Streams};
use crate::{Engine, StreamSendDone};

/// A closed connection whose ring send has not completed yet.
pub(super) struct Zombie {
    key: usize,
    sock: TcpStream,
    /// Bytes queued behind the send: written once it completes, best effort.
    out: Vec<u8>,
}

impl Zombie {
    pub(super) fn new(key: usize, sock: TcpStream, mut out: Vec<u8>, out_at: usize) -> Zombie {
        out.drain(..out_at.min(out.len()));
        Zombie { key, sock, out }
    }
}

impl Streams {
    /// Writes each connection's pending output: one send on `engine`'s ring per connection
    /// (io_uring), else one `write` ([`flush`](Streams::flush)). `now` (ms): bytes written
    /// count as activity (idle timeout), once they complete.
    pub fn flush_on(&mut self, now: u64, engine: &mut Engine) {
        if !engine.sends_streams() {
            return self.flush(now);
        }
        let dirty = std::mem::take(&mut self.dirty);
        for k in dirty {
            let Some(c) = self.conns.get_mut(k) else {
                continue;
            };
            c.dirty = false;
            // Connecting: written at its writable edge. Sending: at the completion.
            if c.connecting || c.sending > 0 || c.pending_out() == 0 {
                continue;
            }
            let at = c.out_at;
            let buf = std::mem::replace(&mut c.out, std::mem::take(&mut c.spare));
            c.out_at = 0;
            let len = buf.len() - at;
            match engine.send_stream(c.sock.as_raw_fd(), k as u64, buf, at) {
                Ok(()) => c.sending = len,
                Err(buf) => {
                    // Not queued (the ring refused it): the plain write, as without a ring.
                    c.spare = std::mem::replace(&mut c.out, buf);
                    c.out_at = at;
                    match Self::write_once(c, &mut self.stats) {
                        Ok(true) => c.last_activity = now,
                        Ok(false) => {}
                        Err(why) => self.close(k, why),
                    }
                }
            }
        }
    }

    /// Takes the ring sends `engine` completed and applies them (bytes out, the rest of a
    /// partial send, closes on errors). Call once a turn after the engine's wait, before
    /// [`poll`](Streams::poll)'s reads.
    pub fn complete_sends(&mut self, now: u64, engine: &mut Engine) {
        let mut done = std::mem::take(&mut self.done);
        engine.take_stream_sends(&mut done);
        for d in done.drain(..) {
            self.sent(now, d);
        }
        self.done = done;
    }

    fn sent(&mut self, now: u64, d: StreamSendDone) {
        let k = d.token as usize;
        let StreamSendDone {
            result, buf, at, ..
        } = d;
        let Some(c) = self.conns.get_mut(k) else {
            return self.zombie_sent(k, result, buf.len().saturating_sub(at));
        };
        c.sending = 0;
        let n = match usize::try_from(result) {
            Ok(n) => n,
            Err(_) => {
                match -result {
                    libc::EAGAIN | libc::EINTR | libc::ENOBUFS => {
                        // Nothing written: the bytes go back in front. A full socket buffer
                        // (EAGAIN) raises the writable edge when it drains; otherwise retry.
                        let retry = -result != libc::EAGAIN;
                        put_back(c, buf, at);
                        if retry && !c.dirty {
                            c.dirty = true;
                            self.dirty.push(k);
                        }
                    }
                    libc::EPIPE | libc::ECONNRESET => self.close(k, CloseReason::Peer),
                    _ => self.close(k, CloseReason::Error),
                }
                return;
            }
        };
        self.stats.bytes_out += n as u64;
        if n > 0 {
            c.last_activity = now;
        }
        let end = at.saturating_add(n);
        if end < buf.len() {
            // Partial: the rest first, next turn (a 0-byte send waits for the writable edge).
            put_back(c, buf, end);
            if n == 0 {
                return;
            }
        } else {
            let mut buf = buf;
            buf.clear();
            if buf.capacity() > c.spare.capacity() {
                c.spare = buf;
            }
            if c.pending_out() == 0 {
                return;
            }
        }
        if !c.dirty {
            c.dirty = true;
            self.dirty.push(k);
        }
    }

    /// The send of a connection closed meanwhile completed: the bytes queued behind it go
    /// (best effort, one `write`) and the socket closes.
    fn zombie_sent(&mut self, k: usize, result: i32, len: usize) {
        let Some(i) = self.zombies.iter().position(|z| z.key == k) else {
            return;
        };
        let mut z = self.zombies.swap_remove(i);
        if let Ok(n) = usize::try_from(result) {
            self.stats.bytes_out += n as u64;
            if n == len && !z.out.is_empty() {
                if let Ok(n) = z.sock.write(&z.out) {
                    self.stats.bytes_out += n as u64;
                }
            }
        }
    }
}

/// `buf[from..]` was not sent: it goes back in front of what `c` queued since.
fn put_back(c: &mut super::conn::Conn, buf: Vec<u8>, from: usize) {
    if c.pending_out() == 0 {
        let mut old = std::mem::replace(&mut c.out, buf);
        old.clear();
        if old.capacity() > c.spare.capacity() {
            c.spare = old;
        }
        c.out_at = from.min(c.out.len());
    } else {
        let mut v = Vec::with_capacity(buf.len() - from + c.pending_out());
        v.extend_from_slice(&buf[from..]);
        v.extend_from_slice(&c.out[c.out_at..]);
        c.out = v;
        c.out_at = 0;
    }
}
