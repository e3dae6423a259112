//! [`Slab`]: the wheel's entry storage, a vector in fixed-size chunks so that growing it
//! never copies what is already stored.
//!
//! Why: a `Vec` doubles by copying every element in one call. With an entry per binding
//! (32 bytes), the copy at 2 M timers moved 64 MiB and took ~160–280 ms in one loop turn of
//! the shard that owned the wheel (PERFORMANCE.md, "Stalls while the table grows"). In
//! chunks of [`SLAB_CHUNK`] entries, growth allocates one chunk; only the small vector of
//! chunk pointers doubles.

/// Writes one zeroed element per 4 KiB of `v`'s reserved, unused capacity, so the kernel
/// backs those pages now rather than on first use (a first touch of anonymous memory
/// measured 3–9 µs per 4 KiB page on the project's VMs, a 2 MiB huge page 1.5–4.6 ms).
/// The values stay unused room: `v`'s length does not change.
pub(crate) fn fault_in_spare<E>(v: &mut Vec<E>) {
    let step = (4096 / std::mem::size_of::<E>().max(1)).max(1);
    for slot in v.spare_capacity_mut().iter_mut().step_by(step) {
        // Opaque to the optimiser, so the store to fresh (zeroed) memory is kept.
        *slot = std::hint::black_box(std::mem::MaybeUninit::zeroed());
    }
}

/// Entries per chunk (a power of two: indexing is a shift and a mask).
pub(crate) const SLAB_CHUNK: usize = 4096;

/// A growable sequence of `E` stored in chunks of [`SLAB_CHUNK`].
pub(crate) struct Slab<E> {
    chunks: Vec<Vec<E>>,
    len: usize,
}

impl<E> Slab<E> {
    /// An empty slab with room for `capacity` entries before it allocates a chunk.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let n = capacity.div_ceil(SLAB_CHUNK);
        let mut chunks = Vec::with_capacity(n.max(4));
        chunks.extend((0..n).map(|_| Vec::with_capacity(SLAB_CHUNK)));
        Slab { chunks, len: 0 }
    }

    /// Writes the chunks' reserved, unused room (see [`fault_in_spare`]).
    pub(crate) fn prefault(&mut self) {
        for c in &mut self.chunks {
            fault_in_spare(c);
        }
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `e` at index `len()`.
    pub(crate) fn push(&mut self, e: E) {
        let c = self.len / SLAB_CHUNK;
        if c == self.chunks.len() {
            self.chunks.push(Vec::with_capacity(SLAB_CHUNK));
        }
        self.chunks[c].push(e);
        self.len += 1;
    }

    /// Entry `i`, if `i < len()`.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&E> {
        self.chunks.get(i / SLAB_CHUNK)?.get(i % SLAB_CHUNK)
    }

    /// Entry `i` for writing, if `i < len()`.
    #[inline]
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut E> {
        self.chunks.get_mut(i / SLAB_CHUNK)?.get_mut(i % SLAB_CHUNK)
    }
}

impl<E> std::ops::Index<usize> for Slab<E> {
    type Output = E;
    #[inline]
    fn index(&self, i: usize) -> &E {
        &self.chunks[i / SLAB_CHUNK][i % SLAB_CHUNK]
    }
}

impl<E> std::ops::IndexMut<usize> for Slab<E> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut E {
        &mut self.chunks[i / SLAB_CHUNK][i % SLAB_CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_stay_valid_across_chunks() {
        let mut s = Slab::with_capacity(10);
        let n = 3 * SLAB_CHUNK + 5;
        for i in 0..n {
            s.push(i as u64 * 3);
        }
        assert_eq!(s.len(), n);
        assert_eq!(s[SLAB_CHUNK], SLAB_CHUNK as u64 * 3);
        assert_eq!(s.get(n - 1), Some(&((n as u64 - 1) * 3)));
        assert_eq!(s.get(n), None);
        *s.get_mut(7).expect("in range") = 1;
        s[SLAB_CHUNK + 1] = 2;
        assert_eq!((s[7], s[SLAB_CHUNK + 1]), (1, 2));
    }
}
