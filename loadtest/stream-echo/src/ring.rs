//! `--mech uring`: readiness from epoll, then every ready connection's read and every
//! answer's send as SQEs on one io_uring of our own, submitted together: one
//! `io_uring_enter` per turn carries the turn's reads and the previous turn's sends (instead
//! of one `read` system call per connection). Reads and sends carry `MSG_DONTWAIT` (a
//! drained socket completes at once with `-EAGAIN`, never parks on the ring).

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use io_uring::{opcode, types, IoUring};

use crate::conn::{ingest, Server};

const READ_CHUNK: usize = 16 * 1024;
/// Marks a send's user_data (a read's carries the connection and its buffer slot).
const SEND: u64 = 1 << 63;

/// The ring, the turn's read buffers and the send buffers in flight.
pub(crate) struct Ring {
    ring: IoUring,
    bufs: Vec<Box<[u8]>>,
    /// Sends pushed and not submitted yet.
    unsubmitted: usize,
    /// Connections whose last read filled its buffer: read again without an event.
    again: Vec<usize>,
    ready: Vec<usize>,
    /// Per connection: the buffer of its send in flight.
    in_flight: Vec<Option<Vec<u8>>>,
}

impl Ring {
    pub(crate) fn new() -> io::Result<Ring> {
        Ok(Ring {
            ring: IoUring::new(4096)?,
            bufs: Vec::new(),
            unsubmitted: 0,
            again: Vec::new(),
            ready: Vec::new(),
            in_flight: Vec::new(),
        })
    }
}

impl Server {
    /// One turn: readiness (not blocking while sends wait to be submitted), then the reads
    /// and the pending sends in one submission, their completions, and the new answers'
    /// sends pushed for the next turn.
    pub(crate) fn turn_ring(&mut self, r: &mut Ring, timeout: Duration) -> io::Result<()> {
        let mut wait = Duration::ZERO;
        loop {
            match self.poll.poll(&mut self.events, Some(wait)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            if !self.events.is_empty() || !r.again.is_empty() || wait != Duration::ZERO {
                break;
            }
            // Nothing ready: hand the sends to the kernel before blocking (the peers wait
            // for them), then block.
            if r.unsubmitted > 0 {
                r.ring.submit()?;
                r.unsubmitted = 0;
                self.reap(r);
            }
            wait = timeout;
        }
        r.ready.clear();
        r.ready.append(&mut r.again);
        self.dispatch(|_, k| r.ready.push(k));
        // One read per ready connection, each into its own buffer of this turn.
        let mut reads = 0usize;
        for i in 0..r.ready.len() {
            let k = r.ready[i];
            let Some(Some(c)) = self.conns.get(k) else {
                continue;
            };
            if c.dead {
                continue;
            }
            if r.bufs.len() <= reads {
                r.bufs.push(vec![0; READ_CHUNK].into_boxed_slice());
            }
            let buf = &mut r.bufs[reads];
            let sqe = opcode::Recv::new(
                types::Fd(c.sock.as_raw_fd()),
                buf.as_mut_ptr(),
                READ_CHUNK as u32,
            )
            .flags(libc::MSG_DONTWAIT)
            .build()
            .user_data(((reads as u64) << 32) | k as u64);
            // SAFETY: `buf` lives in `r.bufs`, untouched until this read's completion is
            // reaped below in this turn (we wait for every read before returning); the fd
            // stays open until then (a close waits for the turn's end).
            if unsafe { r.ring.submission().push(&sqe) }.is_err() {
                r.ring.submit()?;
                // SAFETY: as above.
                let _ = unsafe { r.ring.submission().push(&sqe) };
            }
            reads += 1;
        }
        r.ring.submit_and_wait(reads)?;
        r.unsubmitted = 0;
        // Reads with MSG_DONTWAIT complete within the submission; wait anyway until every
        // read of this turn is back (its buffer is reused next turn).
        let mut left = reads - self.reap(r);
        while left > 0 {
            r.ring.submit_and_wait(1)?;
            left = left.saturating_sub(self.reap(r));
        }
        // The answers' sends, submitted with the next turn's reads.
        for k in std::mem::take(&mut self.dirty) {
            let Some(Some(c)) = self.conns.get_mut(k) else {
                continue;
            };
            c.dirty = false;
            if c.out.is_empty() || c.sending || c.dead {
                continue;
            }
            let buf = std::mem::replace(&mut c.out, std::mem::take(&mut c.spare));
            let sqe = opcode::Send::new(
                types::Fd(c.sock.as_raw_fd()),
                buf.as_ptr(),
                buf.len() as u32,
            )
            .flags(libc::MSG_DONTWAIT)
            .build()
            .user_data(SEND | k as u64);
            if r.in_flight.len() <= k {
                r.in_flight.resize_with(k + 1, || None);
            }
            // SAFETY: the buffer moves into `in_flight[k]` (its heap block does not move)
            // until the completion; the connection's fd stays open while `sending`.
            if unsafe { r.ring.submission().push(&sqe) }.is_err() {
                r.ring.submit()?;
                // SAFETY: as above.
                let _ = unsafe { r.ring.submission().push(&sqe) };
            }
            r.in_flight[k] = Some(buf);
            c.sending = true;
            self.writes += 1;
            r.unsubmitted += 1;
        }
        Ok(())
    }

    /// Applies every completion: reads are answered, sends return their buffer. Returns
    /// how many reads completed.
    fn reap(&mut self, r: &mut Ring) -> usize {
        let mut reads = 0;
        let done: Vec<(u64, i32)> = r
            .ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (ud, res) in done {
            if ud & SEND != 0 {
                let k = (ud & !SEND) as usize;
                let buf = r.in_flight.get_mut(k).and_then(Option::take);
                self.send_completed(k, buf, 0, res);
                continue;
            }
            reads += 1;
            let k = (ud & 0xffff_ffff) as usize;
            let slot = (ud >> 32) as usize;
            let Some(Some(c)) = self.conns.get_mut(k) else {
                continue;
            };
            match usize::try_from(res) {
                Ok(0) => self.close(k),
                Ok(n) => {
                    self.reads += 1;
                    let input = &r.bufs[slot][..n];
                    if !ingest(c, input, &mut self.scratch, &mut self.answered) {
                        self.close(k);
                        continue;
                    }
                    if n == READ_CHUNK {
                        r.again.push(k);
                    }
                    self.mark_dirty(k);
                }
                Err(_) if res == -libc::EAGAIN || res == -libc::EINTR => {}
                Err(_) => self.close(k),
            }
        }
        reads
    }
}
