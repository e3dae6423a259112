//! [`Wheel`]: entry slab, chunked slot lists, occupancy bitmaps and cascading.
//! The design is described in the crate docs.

use std::fmt;

use crate::slab::Slab;
use crate::{Tick, TimerId, LEVELS, SLOTS, SLOT_BITS};

/// Null chunk / list link.
const NIL: u32 = u32::MAX;
/// Mask of one level's digit.
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Ticks spanned by the whole wheel (the top-level block): `2^36`.
const TOP_BITS: u32 = LEVELS as u32 * SLOT_BITS;
/// Number of wheel slots; lists below this are slots `level * SLOTS + slot`.
const WHEEL_LISTS: u16 = (LEVELS * SLOTS) as u16;
/// List of timers already due when inserted (fired first by the next advance).
const PENDING: u16 = WHEEL_LISTS;
/// List of timers beyond the current top-level block.
const OVERFLOW: u16 = PENDING + 1;
/// Number of lists: every wheel slot, then `PENDING` and `OVERFLOW`.
const LISTS: usize = OVERFLOW as usize + 1;
/// `Entry::list` of a free entry.
const FREE: u16 = u16::MAX;
/// Entry indices per chunk, sized so that a chunk is 256 bytes.
const CHUNK_ITEMS: usize = 63;

/// One armed (or free) timer in the slab.
#[derive(Clone, Copy, Debug)]
struct Entry<T> {
    deadline: u64,
    key: T,
    /// Bumped on release, so ids of the previous tenant go stale.
    generation: u32,
    /// Where the entry's index is stored: `chunks[chunk].items[pos]`, on list `list`.
    chunk: u32,
    /// `level * SLOTS + slot`, `PENDING`, `OVERFLOW`, or `FREE`.
    list: u16,
    pos: u8,
}

/// A block of entry indices. Each list is a chain of chunks, all full except the head, whose
/// fill count is in `Wheel::head_len`.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    items: [u32; CHUNK_ITEMS],
    /// Next chunk of the same list, or of the free chunk list.
    next: u32,
}

/// A hierarchical timer wheel over integer [`Tick`]s, yielding keys of type `T`.
///
/// See the crate docs for the design. All operations are O(1) except [`Wheel::advance`],
/// which is O(slots visited + timers fired or cascaded).
pub struct Wheel<T> {
    entries: Slab<Entry<T>>,
    /// Free entries as `(index, generation)`: inserting writes the slab without reading it.
    free: Vec<(u32, u32)>,
    chunks: Vec<Chunk>,
    /// Head of the free chunk list, linked through `Chunk::next`.
    free_chunk: u32,
    /// Head chunk of each list (the only one that may be partly filled), or `NIL`.
    heads: [u32; LISTS],
    /// Indices in each list's head chunk (kept here, hot, rather than in the chunk).
    head_len: [u8; LISTS],
    /// Bit `s` of `occupied[l]` is set iff slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    now: u64,
    /// Lower bound of the overflow deadlines (stale after a cancel, which is safe).
    overflow_floor: u64,
    /// Slots taken by `advance` so far; lets tests check that big jumps stay cheap.
    #[cfg(test)]
    slots_processed: u64,
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("now", &self.now)
            .field("len", &(self.entries.len() - self.free.len()))
            .field("slab", &self.entries.len())
            .field("chunks", &self.chunks.len())
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

    /// An empty wheel at [`Tick::ZERO`] that holds `capacity` timers before it allocates.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Wheel {
            entries: Slab::with_capacity(capacity),
            free: Vec::with_capacity(capacity),
            chunks: Vec::with_capacity(capacity / CHUNK_ITEMS + 2 * LISTS),
            free_chunk: NIL,
            heads: [NIL; LISTS],
            head_len: [0; LISTS],
            occupied: [0; LEVELS],
            now: 0,
            overflow_floor: u64::MAX,
            #[cfg(test)]
            slots_processed: 0,
        }
    }

    /// Writes, now, the memory `with_capacity` reserved (entries, free list, chunks), so the
    /// first timers armed under load pay no first-touch page faults (`[registrar] prefault`).
    pub fn prefault(&mut self) {
        self.entries.prefault();
        crate::slab::fault_in_spare(&mut self.free);
        crate::slab::fault_in_spare(&mut self.chunks);
    }

    /// The tick the wheel has been advanced to.
    #[must_use]
    pub fn now(&self) -> Tick {
        Tick(self.now)
    }

    /// Number of armed timers (inserted, not yet fired or cancelled).
    #[must_use]
    pub fn len(&self) -> usize {
        // Every slab entry is either armed or free.
        self.entries.len() - self.free.len()
    }

    /// Calls `f(deadline, key)` for every armed timer, in no particular order. O(slab size);
    /// for invariant checks and tests, not for the data path.
    pub fn for_each_armed(&self, mut f: impl FnMut(Tick, &T)) {
        for i in 0..self.entries.len() {
            if let Some(e) = self.entries.get(i).filter(|e| e.list != FREE) {
                f(Tick(e.deadline), &e.key);
            }
        }
    }

    /// `true` if no timer is armed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let (index, generation) = match self.free.pop() {
            Some(free) => free,
            None => {
                let index = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&i| i != NIL)
                    .expect("sipedge-wheel: more than u32::MAX - 1 timers armed");
                (index, 0)
            }
        };
        let (list, chunk, pos) = self.place(index, at.0);
        let entry = Entry {
            deadline: at.0,
            key,
            generation,
            chunk,
            list,
            pos,
        };
        match self.entries.get_mut(index as usize) {
            Some(slot) => *slot = entry,
            None => self.entries.push(entry),
        }
        TimerId { index, generation }
    }

    /// Disarms the timer `id` and returns its key, or `None` if `id` is stale (its timer has
    /// fired or was cancelled, even if the slab entry now holds another timer). O(1).
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        let entry = *self.live(id)?;
        self.remove(entry.list, entry.chunk, entry.pos);
        self.release(id.index);
        Some(entry.key)
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
    ///   to a finer level and the estimate tightens. Beyond the top level (`d` in a later
    ///   `2^36`-tick block than `now()`) it is the first tick of `d`'s block, or of an earlier
    ///   block (never `now()`'s) if an even earlier far timer was cancelled since.
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

    /// The earliest occupied slot as `(list, first tick)`, else the overflow list with the
    /// first tick of the block holding its earliest deadline.
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
        // The floor (possibly of a cancelled timer) is always in a later block than `now`.
        let start = self.overflow_floor & !((1u64 << TOP_BITS) - 1);
        debug_assert!(start > self.now);
        Some((OVERFLOW, start))
    }

    /// Empties `list`: fires entries due by `to`, re-places the others. Returns the fire count.
    ///
    /// The indices of a chunk are known up front, so the slab reads overlap in the CPU instead
    /// of waiting on each other as a linked-list walk would.
    fn drain<E: Extend<T>>(&mut self, list: u16, to: u64, fired: &mut E) -> usize {
        let mut chunk = std::mem::replace(&mut self.heads[list as usize], NIL);
        let mut len = std::mem::replace(&mut self.head_len[list as usize], 0) as usize;
        if list < WHEEL_LISTS {
            self.set_occupied(list, false);
            #[cfg(test)]
            {
                self.slots_processed += 1;
            }
        }
        let mut count = 0;
        let mut deadlines = [0u64; CHUNK_ITEMS];
        while chunk != NIL {
            // Gather first: a tight loop of independent loads (one store each, to stay within
            // the store buffer) keeps dozens of cache misses in flight; the second loop then
            // finds every entry in L1. Re-placing entries may allocate chunks, but never this
            // one (it is not free yet), so `items` is stable.
            let Chunk { items, next } = self.chunks[chunk as usize];
            let (items, deadlines) = (&items[..len], &mut deadlines[..len]);
            for (deadline, &index) in deadlines.iter_mut().zip(items) {
                *deadline = self.entries[index as usize].deadline;
            }
            for (&index, &deadline) in items.iter().zip(&*deadlines) {
                if deadline <= to {
                    fired.extend(Some(self.entries[index as usize].key));
                    self.release(index);
                    count += 1;
                } else {
                    let (list, chunk, pos) = self.place(index, deadline);
                    let entry = &mut self.entries[index as usize];
                    entry.list = list;
                    entry.chunk = chunk;
                    entry.pos = pos;
                }
            }
            self.free_chunk(chunk);
            chunk = next;
            len = CHUNK_ITEMS;
        }
        count
    }

    /// Appends entry `index`, due at `deadline`, to the list it belongs on, and returns its new
    /// `(list, chunk, pos)` for the caller to store in the entry.
    #[inline]
    fn place(&mut self, index: u32, deadline: u64) -> (u16, u32, u8) {
        let list = self.list_for(deadline);
        let mut head = self.heads[list as usize];
        let mut len = self.head_len[list as usize] as usize;
        if list == OVERFLOW {
            // A fresh list forgets the floor of cancelled entries, which may be in the past.
            let floor = if head == NIL {
                u64::MAX
            } else {
                self.overflow_floor
            };
            self.overflow_floor = floor.min(deadline);
        }
        if head == NIL || len == CHUNK_ITEMS {
            head = self.alloc_chunk(head);
            self.heads[list as usize] = head;
            len = 0;
            if list < WHEEL_LISTS {
                self.set_occupied(list, true);
            }
        }
        self.chunks[head as usize].items[len] = index;
        self.head_len[list as usize] = len as u8 + 1;
        (list, head, len as u8)
    }

    /// Removes the index stored at `chunks[chunk].items[pos]` from `list`, filling the hole
    /// with the list's last index (from the head chunk), so every chunk but the head stays full.
    fn remove(&mut self, list: u16, chunk: u32, pos: u8) {
        let head = self.heads[list as usize];
        let last = self.head_len[list as usize] - 1;
        let moved = self.chunks[head as usize].items[last as usize];
        self.chunks[chunk as usize].items[pos as usize] = moved;
        let entry = &mut self.entries[moved as usize];
        entry.chunk = chunk;
        entry.pos = pos;
        self.head_len[list as usize] = last;
        if last == 0 {
            let next = self.chunks[head as usize].next;
            self.heads[list as usize] = next;
            if next != NIL {
                self.head_len[list as usize] = CHUNK_ITEMS as u8;
            }
            self.free_chunk(head);
            if next == NIL && list < WHEEL_LISTS {
                self.set_occupied(list, false);
            }
        }
    }

    /// Returns entry `index` (already off its list) to the free stack, staling its ids.
    fn release(&mut self, index: u32) {
        let entry = &mut self.entries[index as usize];
        entry.list = FREE;
        entry.generation = entry.generation.wrapping_add(1);
        self.free.push((index, entry.generation));
    }

    /// An empty chunk whose `next` is `next`.
    fn alloc_chunk(&mut self, next: u32) -> u32 {
        if self.free_chunk != NIL {
            let index = self.free_chunk;
            let chunk = &mut self.chunks[index as usize];
            self.free_chunk = chunk.next;
            chunk.next = next;
            index
        } else {
            // Every chunk in use holds an index (bar one being drained), so this fits a u32.
            let index = self.chunks.len() as u32;
            self.chunks.push(Chunk {
                items: [NIL; CHUNK_ITEMS],
                next,
            });
            index
        }
    }

    fn free_chunk(&mut self, index: u32) {
        self.chunks[index as usize].next = self.free_chunk;
        self.free_chunk = index;
    }

    fn set_occupied(&mut self, list: u16, occupied: bool) {
        let (level, bit) = (list as usize / SLOTS, 1u64 << (list as usize % SLOTS));
        if occupied {
            self.occupied[level] |= bit;
        } else {
            self.occupied[level] &= !bit;
        }
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

    /// Chunks allocated so far (test hook for bounded memory).
    #[cfg(test)]
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}
