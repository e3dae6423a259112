//! The four AF_XDP rings (fill, completion, RX, TX): single-producer single-consumer queues
//! shared with the kernel through an mmap, indices published with release stores.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

use super::sys::{self, Mapping, XdpDesc};

/// One mmapped ring. Producer rings (fill, TX) advance `cached_prod`, consumer rings (RX,
/// completion) `cached_cons`; the shared indices are published with release stores.
pub(super) struct Ring {
    _map: Mapping,
    prod: *const AtomicU32,
    cons: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
    mask: u32,
    cached_prod: u32,
    cached_cons: u32,
}

impl Ring {
    pub(super) fn new(
        fd: RawFd,
        off: &sys::RingOffset,
        entries: u32,
        elem: usize,
        pgoff: i64,
    ) -> io::Result<Ring> {
        let len = off.desc as usize + entries as usize * elem;
        let map = Mapping::new(fd, len, pgoff)?;
        let at = |o: u64| map.ptr.wrapping_add(o as usize);
        let mut ring = Ring {
            prod: at(off.producer).cast(),
            cons: at(off.consumer).cast(),
            flags: at(off.flags).cast(),
            desc: at(off.desc),
            mask: entries - 1,
            cached_prod: 0,
            cached_cons: 0,
            _map: map,
        };
        ring.cached_prod = ring.load(ring.prod);
        ring.cached_cons = ring.load(ring.cons);
        Ok(ring)
    }
    pub(super) fn load(&self, p: *const AtomicU32) -> u32 {
        // SAFETY: `p` points at a 4-byte aligned index inside `self.map`, alive while `self`
        // is; the kernel writes it concurrently, hence the atomic.
        unsafe { (*p).load(Ordering::Acquire) }
    }
    pub(super) fn store(&self, p: *const AtomicU32, v: u32) {
        // SAFETY: as in `load`; only this thread writes our side's index.
        unsafe { (*p).store(v, Ordering::Release) }
    }
    pub(super) fn needs_wakeup(&self) -> bool {
        self.load(self.flags) & sys::XDP_RING_NEED_WAKEUP != 0
    }
    /// Producer: entries free to fill.
    pub(super) fn free(&self) -> u32 {
        (self.mask + 1).wrapping_sub(self.cached_prod.wrapping_sub(self.load(self.cons)))
    }
    /// Producer: entries handed over and not yet consumed by the kernel.
    pub(super) fn outstanding(&self) -> u32 {
        self.load(self.prod).wrapping_sub(self.load(self.cons))
    }
    /// Consumer: entries ready.
    pub(super) fn ready(&self) -> u32 {
        self.load(self.prod).wrapping_sub(self.cached_cons)
    }
    pub(super) fn slot<T>(&self, index: u32) -> *mut T {
        self.desc
            .wrapping_add((index & self.mask) as usize * std::mem::size_of::<T>())
            .cast()
    }
    pub(super) fn put_addr(&mut self, addr: u64) {
        // SAFETY: the slot is inside the descriptor array (index masked) and owned by the
        // producer (us) until `publish`.
        unsafe { self.slot::<u64>(self.cached_prod).write(addr) };
        self.cached_prod = self.cached_prod.wrapping_add(1);
    }
    pub(super) fn put_desc(&mut self, d: XdpDesc) {
        // SAFETY: as in `put_addr`.
        unsafe { self.slot::<XdpDesc>(self.cached_prod).write(d) };
        self.cached_prod = self.cached_prod.wrapping_add(1);
    }
    pub(super) fn publish(&self) {
        self.store(self.prod, self.cached_prod);
    }
    pub(super) fn addr_at(&self, k: u32) -> u64 {
        // SAFETY: a slot the kernel published (k < ready()), masked into the array.
        unsafe { self.slot::<u64>(self.cached_cons.wrapping_add(k)).read() }
    }
    pub(super) fn desc_at(&self, k: u32) -> XdpDesc {
        // SAFETY: as in `addr_at`.
        unsafe {
            self.slot::<XdpDesc>(self.cached_cons.wrapping_add(k))
                .read()
        }
    }
    pub(super) fn release(&mut self, n: u32) {
        self.cached_cons = self.cached_cons.wrapping_add(n);
        self.store(self.cons, self.cached_cons);
    }
}
