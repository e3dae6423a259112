//! A byte arena for the bindings' strings: 64 KiB pages carved into blocks with 8-byte
//! granularity, one free list per block size, 4-byte handles.
//!
//! Why not one `Box<[u8]>` per binding: the fat pointer costs 16 bytes where a handle
//! costs 4, and a general-purpose allocator rounds to its size classes (mimalloc: 128 →
//! 160 → 192 …), so a binding whose strings grow by a few bytes past a class boundary
//! pays up to 25 % more. Here a block is its length rounded up to 8. The block's length is
//! not stored: the owner knows it (the binding's field lengths).

/// Page size, bytes; also the largest block.
pub(crate) const PAGE_BYTES: usize = 64 * 1024;
const GRAIN: usize = 8;
const OFFSET_BITS: u32 = 13; // PAGE_BYTES / GRAIN = 8192 = 2^13
const CLASSES: usize = PAGE_BYTES / GRAIN + 1;
/// The handle of the empty blob (nothing allocated).
pub(crate) const EMPTY: u32 = u32::MAX;

/// The arena. Freed blocks are reused by blocks of the same rounded size; the next free
/// block's handle is kept in the first four bytes of a free block.
#[derive(Debug)]
pub(crate) struct Blobs {
    pages: Vec<Box<[u8]>>,
    /// Pages faulted in at start (`prefault`), taken before allocating a new one.
    spare: Vec<Box<[u8]>>,
    /// Where the next fresh block of the last page starts.
    bump: usize,
    /// Head of the free list of each size class (size = class × 8), or [`EMPTY`].
    free: Vec<u32>,
}

impl Default for Blobs {
    fn default() -> Self {
        Blobs {
            pages: Vec::new(),
            spare: Vec::new(),
            bump: PAGE_BYTES,
            free: vec![EMPTY; CLASSES],
        }
    }
}

fn class_of(len: usize) -> usize {
    len.div_ceil(GRAIN)
}

impl Blobs {
    fn locate(h: u32) -> (usize, usize) {
        (
            (h >> OFFSET_BITS) as usize,
            (h & ((1 << OFFSET_BITS) - 1)) as usize * GRAIN,
        )
    }

    /// A block of at least `len` bytes (`len <= PAGE_BYTES`); [`EMPTY`] for 0.
    pub(crate) fn alloc(&mut self, len: usize) -> u32 {
        if len == 0 {
            return EMPTY;
        }
        let class = class_of(len.min(PAGE_BYTES));
        let head = self.free[class];
        if head != EMPTY {
            let (p, o) = Self::locate(head);
            let next = u32::from_le_bytes(
                self.pages[p][o..o + 4]
                    .try_into()
                    .expect("a free block holds a 4-byte link"),
            );
            self.free[class] = next;
            return head;
        }
        let size = class * GRAIN;
        if self.bump + size > PAGE_BYTES {
            // The page's tail becomes a free block of its own size.
            let rest = PAGE_BYTES - self.bump;
            if rest >= GRAIN && !self.pages.is_empty() {
                let h = self.handle(self.pages.len() - 1, self.bump);
                self.release_class(h, rest / GRAIN);
            }
            let page = self.spare.pop().unwrap_or_else(Self::new_page);
            self.pages.push(page);
            self.bump = 0;
        }
        let h = self.handle(self.pages.len() - 1, self.bump);
        self.bump += size;
        h
    }

    fn new_page() -> Box<[u8]> {
        vec![0u8; PAGE_BYTES].into_boxed_slice()
    }

    /// Allocates and writes, now, pages for `bytes` of blocks (`[registrar] prefault`), so
    /// a registration storm pays no first-touch page faults for its strings.
    pub(crate) fn prefault(&mut self, bytes: usize) {
        let n = bytes.div_ceil(PAGE_BYTES);
        self.pages.reserve(n);
        self.spare.reserve(n);
        for _ in 0..n {
            let mut page = Self::new_page();
            for i in (0..PAGE_BYTES).step_by(4096) {
                // Opaque to the optimiser, so the store to fresh (zeroed) memory is kept.
                page[i] = std::hint::black_box(0);
            }
            self.spare.push(page);
        }
    }

    /// Pages allocated, in use or spare.
    #[cfg(test)]
    pub(crate) fn pages(&self) -> (usize, usize) {
        (self.pages.len(), self.spare.len())
    }

    fn handle(&self, page: usize, offset: usize) -> u32 {
        ((page as u32) << OFFSET_BITS) | (offset / GRAIN) as u32
    }

    fn release_class(&mut self, h: u32, class: usize) {
        let (p, o) = Self::locate(h);
        let next = self.free[class];
        self.pages[p][o..o + 4].copy_from_slice(&next.to_le_bytes());
        self.free[class] = h;
    }

    /// Returns the block `h` of length `len` (as allocated) to its free list.
    pub(crate) fn free(&mut self, h: u32, len: usize) {
        if h != EMPTY && len > 0 {
            self.release_class(h, class_of(len));
        }
    }

    /// The first `len` bytes of block `h`.
    pub(crate) fn get(&self, h: u32, len: usize) -> &[u8] {
        if h == EMPTY {
            return &[];
        }
        let (p, o) = Self::locate(h);
        &self.pages[p][o..o + len]
    }

    /// The first `len` bytes of block `h`, writable.
    pub(crate) fn get_mut(&mut self, h: u32, len: usize) -> &mut [u8] {
        if h == EMPTY {
            return &mut [];
        }
        let (p, o) = Self::locate(h);
        &mut self.pages[p][o..o + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_disjoint_and_reused() {
        let mut b = Blobs::default();
        let lens = [1usize, 7, 8, 9, 121, 4000, 62_000, 33];
        let hs: Vec<u32> = lens.iter().map(|&l| b.alloc(l)).collect();
        for (i, (&h, &l)) in hs.iter().zip(&lens).enumerate() {
            b.get_mut(h, l).fill(i as u8 + 1);
        }
        for (i, (&h, &l)) in hs.iter().zip(&lens).enumerate() {
            assert!(b.get(h, l).iter().all(|&x| x == i as u8 + 1), "block {i}");
        }
        // A freed block is handed out again for the same rounded size.
        b.free(hs[4], 121);
        assert_eq!(b.alloc(124), hs[4]);
        assert_eq!(b.alloc(0), EMPTY);
        assert!(b.get(EMPTY, 0).is_empty());
        // 62 000 bytes did not fit after the others: a second page.
        assert_eq!(b.pages.len(), 2);
    }
}
