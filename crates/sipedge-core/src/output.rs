//! Outgoing datagrams, queued in one reused byte arena: no allocation per reply once the
//! arena has grown to a loop turn's working size.

use std::collections::VecDeque;
use std::net::SocketAddr;

/// One end of a dialog as our neighbour: the socket we reach it from and its address
/// (the relay's Record-Route token, `dialog::ends`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flow {
    pub(crate) local: LocalId,
    pub(crate) addr: SocketAddr,
}

/// Which of the shard's sockets (index in the shard's socket list; the same on every shard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LocalId(pub u16);

/// Index of a shard (0..shards). Here, beside [`LocalId`], so that the leaves (`aor`'s
/// owner hash) need not name the hand-off messages of `shard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ShardId(pub u16);

/// A datagram to send, borrowed from the core until the next `poll_transmit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Socket to send from.
    pub local: LocalId,
    /// Destination.
    pub remote: SocketAddr,
    /// Payload.
    pub data: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    local: LocalId,
    remote: SocketAddr,
    start: usize,
    end: usize,
}

/// FIFO of datagrams stored back to back in `bytes`.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    bytes: Vec<u8>,
    queue: VecDeque<Pending>,
    /// Bytes before this offset were already handed out; reclaimed when the queue empties.
    read: usize,
}

impl Outbox {
    /// Appends a datagram whose bytes are in `data`.
    pub(crate) fn push(&mut self, local: LocalId, remote: SocketAddr, data: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.queue.push_back(Pending {
            local,
            remote,
            start,
            end: self.bytes.len(),
        });
    }

    pub(crate) fn pop(&mut self) -> Option<Transmit<'_>> {
        let Some(p) = self.queue.pop_front() else {
            self.bytes.clear();
            self.read = 0;
            return None;
        };
        self.read = p.end;
        Some(Transmit {
            local: p.local,
            remote: p.remote,
            data: &self.bytes[p.start..p.end],
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_reuse() {
        let mut o = Outbox::default();
        let a: SocketAddr = "127.0.0.1:5060".parse().unwrap_or_else(|_| unreachable!());
        o.push(LocalId(0), a, b"one");
        o.push(LocalId(1), a, b"two");
        assert_eq!(o.len(), 2);
        assert_eq!(o.pop().map(|t| t.data.to_vec()), Some(b"one".to_vec()));
        assert_eq!(
            o.pop().map(|t| (t.local, t.data.to_vec())),
            Some((LocalId(1), b"two".to_vec()))
        );
        assert!(o.pop().is_none());
        let cap = o.bytes.capacity();
        o.push(LocalId(0), a, b"three");
        assert_eq!(o.bytes.capacity(), cap);
    }
}

/// Records waiting for `Core::poll_journal`, back to back in one reused buffer.
#[derive(Debug, Default)]
pub(crate) struct JournalQueue {
    bytes: Vec<u8>,
    ends: VecDeque<usize>,
    read: usize,
}

impl JournalQueue {
    pub(crate) fn push_with(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.bytes);
        self.ends.push_back(self.bytes.len());
    }

    pub(crate) fn pop(&mut self) -> Option<&[u8]> {
        let Some(end) = self.ends.pop_front() else {
            self.bytes.clear();
            self.read = 0;
            return None;
        };
        let start = self.read;
        self.read = end;
        Some(&self.bytes[start..end])
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }
}
