//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`), built on two anonymous mappings:
//! the ring of `{addr, len, bid}` entries the kernel takes buffers from, and the buffers.
//!
//! The kernel consumes entries from its private head up to the `tail` we publish (the
//! `resv` field of entry 0, read by the kernel with acquire semantics). We give a buffer back
//! by writing the entry at our local tail and publishing the new tail with a release store.
//! Memory is mapped lazily: untouched buffers cost nothing.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

/// The kernel's `struct io_uring_buf`.
#[repr(C)]
struct RingEntry {
    addr: u64,
    len: u32,
    bid: u16,
    /// In entry 0 this is the ring's tail.
    resv: u16,
}

/// An anonymous private mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh anonymous private mapping at an address the kernel picks; no
        // existing memory is affected. The result is checked against MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping created in `new`, unmapped only here.
        // The owner guarantees the kernel no longer uses it (see `UringEngine`'s drop).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

pub(crate) struct BufRing {
    ring: Mapping,
    bufs: Mapping,
    entries: u16,
    mask: u16,
    /// Distance between buffers.
    stride: usize,
    /// Bytes of each buffer offered to the kernel (`<= stride`).
    buf_len: usize,
    /// Our tail; published to the kernel by `publish`.
    tail: u16,
}

impl BufRing {
    /// `entries` is rounded up to a power of two (at most 32768); every buffer offers the
    /// kernel `buf_len` bytes, and buffers start 64-byte aligned. All buffers start in the
    /// ring. Register with `ring_addr()` / `entries()`.
    pub(crate) fn new(entries: usize, buf_len: usize) -> io::Result<BufRing> {
        let entries = entries.clamp(1, 1 << 15).next_power_of_two();
        let buf_len = buf_len.clamp(1, u32::MAX as usize);
        let stride = buf_len.next_multiple_of(64);
        let ring_bytes = entries * std::mem::size_of::<RingEntry>();
        let bufs_bytes = entries
            .checked_mul(stride)
            .ok_or_else(|| io::Error::other("receive buffers too large"))?;
        let mut br = BufRing {
            ring: Mapping::new(ring_bytes)?,
            bufs: Mapping::new(bufs_bytes)?,
            entries: entries as u16, // at most 32768, which fits
            mask: (entries - 1) as u16,
            stride,
            buf_len,
            tail: 0,
        };
        for bid in 0..entries {
            br.push(bid as u16);
        }
        br.publish();
        Ok(br)
    }

    pub(crate) fn ring_addr(&self) -> u64 {
        self.ring.ptr.as_ptr() as u64
    }

    pub(crate) fn entries(&self) -> u16 {
        self.entries
    }

    /// The whole of buffer `bid`.
    ///
    /// The caller must only ask for a buffer the kernel handed back (in a CQE) and not yet
    /// returned with `push`: then the kernel does not write it.
    pub(crate) fn buffer(&self, bid: u16) -> &[u8] {
        let bid = usize::from(bid & self.mask);
        // SAFETY: `bid < entries` and `buf_len <= stride`, so the range lies inside the `bufs` mapping, which lives as
        // long as `self`. Per the contract above, the kernel is not writing this buffer while
        // the returned borrow lives (the borrow of `self` keeps `push` from being called).
        unsafe {
            std::slice::from_raw_parts(self.bufs.ptr.as_ptr().add(bid * self.stride), self.buf_len)
        }
    }

    /// Puts buffer `bid` back at our tail (visible to the kernel after `publish`).
    pub(crate) fn push(&mut self, bid: u16) {
        let bid = bid & self.mask;
        let slot = usize::from(self.tail & self.mask);
        // SAFETY: `slot < entries`, inside the ring mapping. Entries between the kernel's head
        // and the published tail belong to the kernel; the one at our (unpublished) tail does
        // not, so we may write it. Only `addr`, `len` and `bid` are written, through raw
        // pointers: `resv` of entry 0 is the tail, which the kernel may read concurrently.
        unsafe {
            let e = self.ring.ptr.as_ptr().cast::<RingEntry>().add(slot);
            let addr = self.bufs.ptr.as_ptr().add(usize::from(bid) * self.stride);
            std::ptr::addr_of_mut!((*e).addr).write(addr as u64);
            std::ptr::addr_of_mut!((*e).len).write(self.buf_len as u32);
            std::ptr::addr_of_mut!((*e).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every pushed buffer available to the kernel.
    pub(crate) fn publish(&self) {
        // SAFETY: the tail lives at bytes 14..16 of entry 0, inside the ring mapping, 2-byte
        // aligned (the mapping is page aligned). Only we write it; the kernel reads it
        // atomically, so all our accesses are atomic too.
        let tail = unsafe {
            let e = self.ring.ptr.as_ptr().cast::<RingEntry>();
            AtomicU16::from_ptr(std::ptr::addr_of_mut!((*e).resv))
        };
        tail.store(self.tail, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(br: &BufRing, slot: usize) -> (u64, u32, u16) {
        // SAFETY: test-only read of an entry inside the ring mapping; no kernel involved.
        unsafe {
            let e = br.ring.ptr.as_ptr().cast::<RingEntry>().add(slot);
            ((*e).addr, (*e).len, (*e).bid)
        }
    }

    #[test]
    fn starts_full_and_wraps_its_tail() {
        let mut br = BufRing::new(3, 100).expect("mmap");
        assert_eq!(br.entries(), 4, "rounded up to a power of two");
        assert_eq!(
            br.ring_addr() % 4096,
            0,
            "page aligned, as the kernel requires"
        );
        // All four buffers are in the ring, the tail published as 4.
        for slot in 0..4 {
            let (addr, len, bid) = entry(&br, slot);
            assert_eq!(bid as usize, slot);
            assert_eq!(len, 100);
            assert_eq!(addr, br.buffer(bid).as_ptr() as u64);
            assert_eq!(addr % 64, 0);
        }
        assert_eq!(
            // SAFETY: as above.
            unsafe { (*br.ring.ptr.as_ptr().cast::<RingEntry>()).resv },
            4
        );
        // Returning buffer 2 writes slot 4 & 3 = 0 and leaves the tail field alone until
        // published.
        br.push(2);
        assert_eq!(entry(&br, 0).2, 2);
        br.publish();
        // SAFETY: as above.
        assert_eq!(
            unsafe { (*br.ring.ptr.as_ptr().cast::<RingEntry>()).resv },
            5
        );
        assert_eq!(br.buffer(3).len(), 100);
        assert!(br.buffer(3).iter().all(|&b| b == 0));
    }
}
