//! Stream writes on the shard's ring (issue 19): a connection's pending bytes go out as one
//! `Send` SQE, submitted in the same `io_uring_enter` as the turn's UDP sends and its wait,
//! instead of one `write` system call per connection per turn.
//!
//! Ownership: the ring owns each buffer from [`send_stream`](UringEngine::send_stream) until
//! its completion hands it back ([`StreamSendDone`]); it lives in `KernelMem`, which is freed
//! only once nothing is in flight (or leaked), so the kernel never reads freed memory. The
//! caller keeps the socket open until the completion (a connection closed meanwhile is held
//! until then, `stream::shard`), so the fd in the SQE never names another socket.
//!
//! Each send carries `MSG_DONTWAIT`, so a full send buffer completes at once with `-EAGAIN`
//! (io_uring does not park it on a poll until the socket drains: a peer that stops reading
//! cannot keep a send, or a closed connection's socket, in flight), and a partial send
//! completes with the count written: the caller handles both as it does a `write`'s.

use io_uring::{opcode, types};

use super::{user_data, UringEngine, TAG_STREAM};

/// One stream send handed back by the ring.
#[derive(Debug)]
pub struct StreamSendDone {
    /// The caller's token given to [`Engine::send_stream`](crate::Engine::send_stream).
    pub token: u64,
    /// The `send` result: bytes written from `buf[at..]`, or `-errno`.
    pub result: i32,
    /// The buffer, back to the caller.
    pub buf: Vec<u8>,
    /// Where the send started in `buf`.
    pub at: usize,
}

pub(super) struct StreamSlot {
    token: u64,
    buf: Vec<u8>,
    at: usize,
}

/// The buffers of stream sends in flight (part of `KernelMem`), by slot.
#[derive(Default)]
pub(super) struct StreamSlots {
    slots: Vec<Option<StreamSlot>>,
    free: Vec<u32>,
    in_flight: usize,
}

impl StreamSlot {
    /// The completion handed back to the caller, with the send's `result`.
    pub(super) fn into_done(self, result: i32) -> StreamSendDone {
        StreamSendDone {
            token: self.token,
            result,
            buf: self.buf,
            at: self.at,
        }
    }
}

impl StreamSlots {
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Frees slot `index` (its completion came); `None` for an unknown slot.
    pub(super) fn release(&mut self, index: usize) -> Option<StreamSlot> {
        let s = self.slots.get_mut(index)?.take()?;
        self.free.push(index as u32);
        self.in_flight -= 1;
        Some(s)
    }

    fn insert(&mut self, s: StreamSlot) -> usize {
        self.in_flight += 1;
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(s);
            return i as usize;
        }
        // At most one send per connection is in flight: far below user_data's 56 index bits.
        self.slots.push(Some(s));
        self.slots.len() - 1
    }
}

impl UringEngine {
    /// Queues a send of `buf[at..]` on stream socket `fd` (nonblocking, open until the
    /// completion); it reaches the kernel at the next wait or flush. `Err(buf)`: not queued.
    pub(crate) fn send_stream(
        &mut self,
        fd: i32,
        token: u64,
        buf: Vec<u8>,
        at: usize,
    ) -> Result<(), Vec<u8>> {
        let len = buf.len().saturating_sub(at);
        let Ok(len32) = u32::try_from(len) else {
            return Err(buf);
        };
        if len == 0 {
            return Err(buf);
        }
        // The Vec's heap block stays put while the slot table grows (only its header moves).
        let ptr = buf[at..].as_ptr();
        let index = self.mem.streams.insert(StreamSlot { token, buf, at });
        let sqe = opcode::Send::new(types::Fd(fd), ptr, len32)
            .flags(libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
            .build()
            .user_data(user_data(TAG_STREAM, index));
        // SAFETY: the payload lives in `KernelMem` until the completion releases the slot;
        // the caller keeps `fd` open until then.
        if let Err(e) = unsafe { Self::push(&mut self.ring, &mut self.stats, &sqe) } {
            tracing::debug!(error = %e, "stream send not queued");
            let s = self.mem.streams.release(index).expect("just inserted");
            return Err(s.buf);
        }
        Ok(())
    }

    /// Moves the stream sends completed so far into `out`.
    pub(crate) fn take_stream_sends(&mut self, out: &mut Vec<StreamSendDone>) {
        out.append(&mut self.stream_done);
    }
}
