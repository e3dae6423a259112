//! [`Wheel`]: slab of entries, intrusive per-slot lists, occupancy bitmaps and cascading.
//! The design is described in the crate docs.

use std::fmt;

use crate::{Tick, TimerId, LEVELS, SLOTS, SLOT_BITS};

/// Null link in the intrusive lists and the free list.
const NIL: u32 = u32::MAX;
/// Mask of one level's digit.
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Ticks spanned by the whole wheel (the top-level block): `2^36`.
const TOP_BITS: u32 = LEVELS as u32 * SLOT_BITS;
/// List of timers already due when inserted (fired first by the next advance).
const PENDING: u16 = (LEVELS * SLOTS) as u16;
/// List of timers beyond the current top-level block.
const OVERFLOW: u16 = PENDING + 1;
/// Number of list heads: every wheel slot, then `PENDING` and `OVERFLOW`.
const LISTS: usize = OVERFLOW as usize + 1;
/// `Entry::list` of an entry on the free list.
const FREE: u16 = u16::MAX;

#[derive(Clone, Copy, Debug)]
struct Entry<T> {
    deadline: u64,
    key: T,
    /// Next in the slot list, or in the free list when `list == FREE`.
    next: u32,
    prev: u32,
    generation: u32,
    /// Which list the entry is on: `level * SLOTS + slot`, `PENDING`, `OVERFLOW` or `FREE`.
    list: u16,
}

/// A hierarchical timer wheel over integer [`Tick`]s, yielding keys of type `T`.
///
/// See the crate docs for the design. All operations are O(1) except [`Wheel::advance`],
/// which is O(slots visited + timers fired or cascaded).
pub struct Wheel<T> {
    entries: Vec<Entry<T>>,
    free_head: u32,
    heads: [u32; LISTS],
    /// Bit `s` of `occupied[l]` is set iff slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    now: u64,
    len: usize,
    /// Slots taken by `advance` so far; lets tests check that big jumps stay cheap.
    #[cfg(test)]
    slots_processed: u64,
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("now", &self.now)
            .field("len", &self.len)
            .field("slab", &self.entries.len())
            .field("occupied", &self.occupied)
            .finish_non_exhaustive()
    }
}

impl<T: Copy> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy> Wheel<T> {
    /// An empty wheel at [`Tick::ZERO`].
    #[must_use]
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty wheel at [`Tick::ZERO`] whose slab holds `capacity` timers before it grows.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Wheel {
            entries: Vec::with_capacity(capacity),
            free_head: NIL,
            heads: [NIL; LISTS],
            occupied: [0; LEVELS],
            now: 0,
            len: 0,
            #[cfg(test)]
            slots_processed: 0,
        }
    }

    /// The tick the wheel has been advanced to.
    #[must_use]
    pub fn now(&self) -> Tick {
        Tick(self.now)
    }

    /// Number of armed timers (inserted, not yet fired or cancelled).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` if no timer is armed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Arms a timer firing `key` at `at`. O(1); allocates only while the slab grows to its
    /// peak size.
    ///
    /// A deadline `<= now()` is already due: it fires on the next [`Wheel::advance`], whatever
    /// its target.
    ///
    /// # Panics
    ///
    /// If more than `u32::MAX - 1` timers are armed at once.
    pub fn insert(&mut self, at: Tick, key: T) -> TimerId {
        let entry = Entry {
            deadline: at.0,
            key,
            next: NIL,
            prev: NIL,
            generation: 0,
            list: FREE,
        };
        let index = if self.free_head != NIL {
            let index = self.free_head;
            let slot = &mut self.entries[index as usize];
            self.free_head = slot.next;
            *slot = Entry {
                generation: slot.generation,
                ..entry
            };
            index
        } else {
            let index = u32::try_from(self.entries.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("sipedge-wheel: more than u32::MAX - 1 timers armed");
            self.entries.push(entry);
            index
        };
        self.link(index, self.list_for(at.0));
        self.len += 1;
        TimerId {
            index,
            generation: self.entries[index as usize].generation,
        }
    }

    /// Disarms the timer `id` and returns its key, or `None` if `id` is stale (its timer has
    /// fired or was cancelled, even if the slab entry now holds another timer). O(1).
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        let entry = self.live(id)?;
        let key = entry.key;
        self.unlink(id.index);
        self.release(id.index);
        Some(key)
    }

    /// The deadline of timer `id`, or `None` if `id` is stale.
    #[must_use]
    pub fn deadline(&self, id: TimerId) -> Option<Tick> {
        self.live(id).map(|e| Tick(e.deadline))
    }

    /// A tick at which the caller should next call [`Wheel::advance`], or `None` if no timer
    /// is armed. Never reads a clock; O(`LEVELS`).
    ///
    /// Guarantees, with `d` the earliest armed deadline:
    ///
    /// * `Some(now())` iff some timer is already due (`d <= now()`, inserted in the past).
    /// * Otherwise `now() < next_expiry() <= d`: never later than the true earliest deadline.
    ///   It is *exact* (`== d`) when `d` lies in the same 64-tick block as `now()` (level 0).
    ///   For `d` on level `l > 0` it is the first tick of `d`'s slot, i.e. `d` rounded down to
    ///   a multiple of `64^l` (so at most `64^l - 1` ticks early); advancing there cascades `d`
    ///   to a finer level and the estimate tightens. Beyond the top level it is the first tick
    ///   of the next `2^36`-tick block.
    ///
    /// So a shard that sleeps until `next_expiry()` and then advances never misses a deadline
    /// and wakes up spuriously at most `LEVELS - 1` times per timer.
    #[must_use]
    pub fn next_expiry(&self) -> Option<Tick> {
        if self.heads[PENDING as usize] != NIL {
            return Some(Tick(self.now));
        }
        self.next_slot().map(|(_, start)| Tick(start))
    }

    /// Advances time to `to`, appending the key of every timer due at or before `to` to
    /// `fired`, and returns how many fired.
    ///
    /// Every timer with deadline `<= to` fires exactly once, here; none with a later deadline
    /// fires. Timers inserted with a deadline `<= now()` fire too. Order within one call is
    /// unspecified (roughly slot order, not sorted by deadline). Afterwards
    /// `now() == max(now(), to)`: time never goes back, so `to < now()` only fires what was
    /// already due.
    ///
    /// Cost is O(occupied slots up to `to` + timers fired or cascaded), independent of how
    /// many ticks are crossed.
    ///
    /// Fired keys go to any `Extend<T>` (a `Vec`, a `VecDeque`, a counter…) rather than
    /// `(TimerId, T)` pairs: the key is the owner's handle, and the id is dead once fired.
    pub fn advance<E: Extend<T>>(&mut self, to: Tick, fired: &mut E) -> usize {
        let to = to.0.max(self.now);
        let mut count = self.drain(PENDING, to, fired);
        while let Some((list, start)) = self.next_slot() {
            if start > to {
                break;
            }
            self.now = start;
            count += self.drain(list, to, fired);
        }
        self.now = to;
        count
    }

    /// The live entry behind `id`, if `id` is current.
    fn live(&self, id: TimerId) -> Option<&Entry<T>> {
        self.entries
            .get(id.index as usize)
            .filter(|e| e.generation == id.generation && e.list != FREE)
    }

    /// The list a timer due at `deadline` belongs on, given the current `now`.
    fn list_for(&self, deadline: u64) -> u16 {
        if deadline <= self.now {
            return PENDING;
        }
        // Highest differing digit; `| SLOT_MASK` maps digit 0 differences to level 0.
        let top_bit = 63 - ((deadline ^ self.now) | SLOT_MASK).leading_zeros();
        let level = top_bit / SLOT_BITS;
        if level as usize >= LEVELS {
            return OVERFLOW;
        }
        let slot = (deadline >> (level * SLOT_BITS)) & SLOT_MASK;
        (level as usize * SLOTS + slot as usize) as u16
    }

    /// The earliest occupied slot as `(list, first tick)`, or the overflow list at the start of
    /// the next top-level block.
    fn next_slot(&self) -> Option<(u16, u64)> {
        for (level, &occupied) in self.occupied.iter().enumerate() {
            if occupied == 0 {
                continue;
            }
            let shift = level as u32 * SLOT_BITS;
            // Invariant: no occupied slot lies before `now`'s slot on its level.
            debug_assert_eq!(
                occupied & ((1u64 << ((self.now >> shift) & SLOT_MASK)) - 1),
                0
            );
            let slot = u64::from(occupied.trailing_zeros());
            let block = self.now & !((1u64 << (shift + SLOT_BITS)) - 1);
            return Some((
                (level * SLOTS) as u16 + slot as u16,
                block + (slot << shift),
            ));
        }
        if self.heads[OVERFLOW as usize] == NIL {
            return None;
        }
        // Overflow entries lie in a later block, so the next block exists.
        let next_block = ((self.now >> TOP_BITS) + 1).checked_shl(TOP_BITS);
        debug_assert!(next_block.is_some());
        next_block.map(|start| (OVERFLOW, start))
    }

    /// Empties `list`: fires entries due by `to`, re-places the others. Returns the fire count.
    fn drain<E: Extend<T>>(&mut self, list: u16, to: u64, fired: &mut E) -> usize {
        let mut index = std::mem::replace(&mut self.heads[list as usize], NIL);
        if (list as usize) < LEVELS * SLOTS {
            self.occupied[list as usize / SLOTS] &= !(1u64 << (list as usize % SLOTS));
            #[cfg(test)]
            {
                self.slots_processed += 1;
            }
        }
        let mut count = 0;
        while index != NIL {
            let entry = self.entries[index as usize];
            if entry.deadline <= to {
                fired.extend(Some(entry.key));
                self.release(index);
                count += 1;
            } else {
                self.link(index, self.list_for(entry.deadline));
            }
            index = entry.next;
        }
        count
    }

    /// Pushes entry `index` onto the front of `list`.
    fn link(&mut self, index: u32, list: u16) {
        let head = self.heads[list as usize];
        let entry = &mut self.entries[index as usize];
        entry.list = list;
        entry.prev = NIL;
        entry.next = head;
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        self.heads[list as usize] = index;
        if (list as usize) < LEVELS * SLOTS {
            self.occupied[list as usize / SLOTS] |= 1u64 << (list as usize % SLOTS);
        }
    }

    /// Removes entry `index` from the list it is on.
    fn unlink(&mut self, index: u32) {
        let Entry {
            prev, next, list, ..
        } = self.entries[index as usize];
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        if prev != NIL {
            self.entries[prev as usize].next = next;
        } else {
            self.heads[list as usize] = next;
            if next == NIL && (list as usize) < LEVELS * SLOTS {
                self.occupied[list as usize / SLOTS] &= !(1u64 << (list as usize % SLOTS));
            }
        }
    }

    /// Returns unlinked entry `index` to the free list, staling its ids.
    fn release(&mut self, index: u32) {
        let entry = &mut self.entries[index as usize];
        entry.list = FREE;
        entry.generation = entry.generation.wrapping_add(1);
        entry.next = self.free_head;
        self.free_head = index;
        self.len -= 1;
    }

    /// Slots taken by `advance` since creation (test hook for the big-jump cost).
    #[cfg(test)]
    pub(crate) fn slots_processed(&self) -> u64 {
        self.slots_processed
    }

    /// Slab size: the peak number of simultaneously armed timers (test hook).
    #[cfg(test)]
    pub(crate) fn slab_len(&self) -> usize {
        self.entries.len()
    }
}
