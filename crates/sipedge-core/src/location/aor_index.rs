//! The AoR index of a shard's location table, split into [`PARTS`] hash tables by 8 bits
//! of the AoR's hash, so that growing it never stalls the shard loop.
//!
//! Why: a single `HashTable` doubles by rehashing every entry in one call, and our entries
//! store no key (the key is read back from the binding and its arena block: two random
//! memory reads per AoR). Measured by `examples/table_growth_turns.rs` (PERFORMANCE.md,
//! "Stalls while the table grows"): one table doubling at 3.67 M AoRs took 1.7 s, longer
//! than SIP's T1 (500 ms), so every peer retransmitted. Split in 256, each part doubles on
//! its own, when its own load crosses the threshold, and rehashes 1/256 of the AoRs
//! (≈ 14 000 at 3.67 M: a few milliseconds); the parts reach their thresholds at different
//! moments, so the doublings are spread over the storm instead of stacked in one turn.
//! Lookups cost one more indexed load (the parts' headers, 8 KiB, stay in cache); memory is
//! the same as one table's.
//!
//! The part is chosen by bits 32..40 of the hash: `hashbrown` takes the bucket from the
//! low bits and its control tag from the top 7, so both stay as varied within a part as in
//! one big table.

use hashbrown::HashTable;

/// Number of parts (a power of two).
pub(crate) const PARTS: usize = 256;
const PART_SHIFT: u32 = 32;

/// AoR hash → the AoR's first binding index.
#[derive(Debug)]
pub(crate) struct AorIndex {
    parts: Box<[HashTable<u32>]>,
    len: usize,
}

#[inline]
fn part_of(hash: u64) -> usize {
    (hash >> PART_SHIFT) as usize & (PARTS - 1)
}

impl AorIndex {
    /// An index that holds `capacity` AoRs before any part grows (0: grow on demand).
    pub(crate) fn with_capacity(capacity: usize) -> AorIndex {
        // A little headroom per part: the parts fill unevenly (binomially).
        let per = if capacity == 0 {
            0
        } else {
            let mean = capacity.div_ceil(PARTS);
            mean + 4 * mean.isqrt() + 16
        };
        AorIndex {
            parts: (0..PARTS).map(|_| HashTable::with_capacity(per)).collect(),
            len: 0,
        }
    }

    /// Number of AoRs indexed.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The entry with hash `hash` for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u64, eq: impl FnMut(&u32) -> bool) -> Option<u32> {
        self.parts[part_of(hash)].find(hash, eq).copied()
    }

    /// Adds `idx` (not yet indexed) under `hash`; `rehash` gives the hash of an entry when
    /// its part grows.
    #[inline]
    pub(crate) fn insert_unique(&mut self, hash: u64, idx: u32, rehash: impl Fn(&u32) -> u64) {
        self.parts[part_of(hash)].insert_unique(hash, idx, rehash);
        self.len += 1;
    }

    /// Removes `idx` indexed under `hash`; false when it was not there.
    pub(crate) fn remove(&mut self, hash: u64, idx: u32) -> bool {
        match self.parts[part_of(hash)].find_entry(hash, |&i| i == idx) {
            Ok(e) => {
                e.remove();
                self.len -= 1;
                true
            }
            Err(_) => false,
        }
    }

    /// Every indexed entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.parts.iter().flat_map(|p| p.iter().copied())
    }

    /// Slots the index can hold before some part grows (for the tests).
    #[cfg(test)]
    fn headroom(&self) -> usize {
        self.parts
            .iter()
            .map(|p| p.capacity() - p.len())
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the table's hash of an AoR (any well-mixed 64-bit value).
    fn h(i: u32) -> u64 {
        let x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^ (x >> 29) ^ (x << 17)
    }

    #[test]
    fn finds_what_was_inserted_across_growth_and_forgets_what_was_removed() {
        let mut ix = AorIndex::with_capacity(0);
        for i in 0..50_000 {
            ix.insert_unique(h(i), i, |&k| h(k));
        }
        assert_eq!(ix.len(), 50_000);
        assert!((0..50_000).all(|i| ix.find(h(i), |&k| k == i) == Some(i)));
        for i in (0..50_000).step_by(2) {
            assert!(ix.remove(h(i), i));
        }
        assert!(!ix.remove(h(0), 0), "removed twice");
        assert_eq!(ix.len(), 25_000);
        assert_eq!(ix.find(h(10), |&k| k == 10), None);
        assert_eq!(ix.find(h(11), |&k| k == 11), Some(11));
        let mut all: Vec<u32> = ix.iter().collect();
        all.sort_unstable();
        assert_eq!(all, (1..50_000).step_by(2).collect::<Vec<_>>());
    }

    #[test]
    fn a_sized_index_holds_its_capacity_without_growing() {
        let mut ix = AorIndex::with_capacity(100_000);
        let before = ix.headroom();
        assert!(before > 0);
        for i in 0..100_000 {
            ix.insert_unique(h(i), i, |_| panic!("a sized index must not rehash"));
        }
        assert_eq!(ix.len(), 100_000);
    }
}
