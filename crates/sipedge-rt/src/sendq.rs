//! Send slots shared by both engines: a fixed set of reusable buffers, each holding one
//! datagram and its destination from [`Engine::send`](crate::Engine::send) until the kernel
//! has taken it. No allocation in steady state: a slot's buffer grows once to the largest
//! datagram it carried and keeps that capacity.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::pktinfo::{self, CtlBuf, LocalAddr};
use crate::sockaddr::RawAddr;

/// Capacity each slot's buffer starts with; larger datagrams grow it once.
const SLOT_INITIAL_BYTES: usize = 2048;

pub(crate) struct SendSlot {
    pub(crate) buf: Vec<u8>,
    pub(crate) addr: RawAddr,
    pub(crate) addr_len: libc::socklen_t,
    pub(crate) socket: usize,
    /// `IP_PKTINFO` / `IPV6_PKTINFO` naming the source (wildcard sockets); `ctl_len` 0: none.
    pub(crate) ctl: CtlBuf,
    pub(crate) ctl_len: usize,
}

pub(crate) struct SendSlots {
    slots: Box<[SendSlot]>,
    /// Free slot indices (LIFO, so recently used buffers are reused while cache-warm).
    free: Vec<u32>,
    /// Queued and not yet handed to the kernel, in order.
    pending: VecDeque<u32>,
}

impl SendSlots {
    pub(crate) fn new(count: usize) -> Self {
        let count = count.clamp(1, u32::MAX as usize);
        let slots = (0..count)
            .map(|_| SendSlot {
                buf: Vec::with_capacity(SLOT_INITIAL_BYTES),
                addr: RawAddr::zeroed(),
                addr_len: 0,
                socket: 0,
                ctl: CtlBuf::zeroed(),
                ctl_len: 0,
            })
            .collect();
        SendSlots {
            slots,
            free: (0..count as u32).rev().collect(),
            pending: VecDeque::with_capacity(count),
        }
    }

    /// Copies a datagram into a free slot and queues it. False when every slot is taken.
    #[cfg(test)]
    pub(crate) fn queue(&mut self, socket: usize, to: &SocketAddr, data: &[u8]) -> bool {
        self.queue_from(socket, None, to, data)
    }

    /// [`queue`](Self::queue), with the source address to send from (wildcard sockets).
    pub(crate) fn queue_from(
        &mut self,
        socket: usize,
        src: Option<LocalAddr>,
        to: &SocketAddr,
        data: &[u8],
    ) -> bool {
        let Some(idx) = self.free.pop() else {
            return false;
        };
        let slot = &mut self.slots[idx as usize];
        slot.buf.clear();
        slot.buf.extend_from_slice(data);
        slot.addr_len = slot.addr.encode(to);
        slot.socket = socket;
        slot.ctl_len = match src {
            Some(src) => pktinfo::encode_src(&mut slot.ctl, src),
            None => 0,
        };
        self.pending.push_back(idx);
        true
    }

    pub(crate) fn pending_front(&self) -> Option<u32> {
        self.pending.front().copied()
    }

    pub(crate) fn pop_pending(&mut self) -> Option<u32> {
        self.pending.pop_front()
    }

    pub(crate) fn slot(&self, idx: u32) -> &SendSlot {
        &self.slots[idx as usize]
    }

    pub(crate) fn slot_mut(&mut self, idx: u32) -> &mut SendSlot {
        &mut self.slots[idx as usize]
    }

    /// Returns a slot the kernel is done with.
    pub(crate) fn release(&mut self, idx: u32) {
        debug_assert!(!self.free.contains(&idx), "send slot {idx} released twice");
        self.free.push(idx);
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_and_come_back() {
        let to: SocketAddr = "127.0.0.1:9".parse().expect("literal");
        let mut q = SendSlots::new(2);
        assert!(q.queue(0, &to, b"a"));
        assert!(q.queue(1, &to, b"bb"));
        assert!(!q.queue(0, &to, b"c"));
        let first = q.pop_pending().expect("queued");
        assert_eq!(q.slot(first).buf, b"a");
        assert_eq!(q.slot(first).socket, 0);
        q.release(first);
        assert!(q.queue(0, &to, b"c"));
        assert_eq!(q.capacity(), 2);
    }
}
