//! `sipedge-wheel`: the per-shard hierarchical timer wheel (ticks in, expired keys out).
//!
//! One [`Wheel`] per shard holds every timer the shard owns — RFC 3261 transaction timers
//! (T1/T2/T4, A…K), binding expiry and NAT keepalives (ARCHITECTURE.md §4). Timers are
//! `(deadline, key)` pairs; the key is a small `Copy` value the owner chooses (a transaction
//! index, a binding id plus generation, …) and gets back when the timer fires.
//!
//! # What it does not do
//!
//! * It **never reads a clock**. Time is an integer [`Tick`] the caller supplies to
//!   [`Wheel::advance`]; the wheel is unit-agnostic ([`DEFAULT_TICK_MILLIS`] is the shard
//!   default). Tests and simulations drive it deterministically.
//! * It is not thread-safe and does not need to be: shards share nothing.
//! * It does not run callbacks: fired keys are appended to a caller-provided buffer, and the
//!   caller decides what they mean.
//!
//! # Layout
//!
//! * `lib.rs` — this overview, [`Tick`], [`TimerId`] and the geometry constants.
//! * `wheel.rs` — [`Wheel`]: entry slab, chunked slot lists, occupancy bitmaps, cascading.
//! * `tests.rs` — unit tests; `tests/model.rs` — proptest against a `BTreeMap` model;
//!   `benches/wheel.rs` — criterion throughput benches.
//!
//! # Design
//!
//! * **Levels.** [`LEVELS`] = 6 levels of [`SLOTS`] = 64 slots ([`SLOT_BITS`] = 6). A slot at
//!   level `l` spans `64^l` ticks, level `l` spans `64^(l+1)`, the whole wheel `2^36` ticks
//!   (≈ 21.8 years at 10 ms). All index arithmetic is shifts and masks.
//! * **Placement** (as in Linux and tokio): a deadline `d > now` goes to the level of the
//!   highest 6-bit digit in which `d` and `now` differ, into the slot named by that digit of
//!   `d`. So a level holds only deadlines inside the current block of the level above, and
//!   everything on a lower level expires before anything on a higher one.
//! * **Cascading.** When time reaches the first tick of an occupied slot, entries due by the
//!   advance target fire and the rest move down to a finer level. A timer cascades at most
//!   `LEVELS - 1` times in its life.
//! * **Occupancy bitmaps**, one `u64` per level, let [`Wheel::advance`] jump straight to the
//!   next occupied slot with `trailing_zeros`: its cost is proportional to the slots that hold
//!   timers, not to the ticks crossed — advancing a million ticks past three timers touches
//!   at most `3 × LEVELS` slots.
//! * **Due on insert.** A deadline `<= now` goes to a *pending* list that the next
//!   [`Wheel::advance`] fires first (even `advance(now)`).
//! * **Beyond the top level.** A deadline outside the current `2^36`-tick top-level block is
//!   clamped into an extra top-level *overflow* slot. It comes due at the first tick of the
//!   block holding the earliest overflow deadline (a lower bound kept on insert, so cancel
//!   stays O(1)); there all its entries are re-cascaded: placed afresh, or left in overflow if
//!   still beyond. At 10 ms a block is 21.8 years, so this is for "never" (`Tick(u64::MAX)`),
//!   which costs nothing until then.
//! * **Slab.** Timers live in a slab of entries (32 bytes with a `u64` key), reused through
//!   a free stack of `(index, generation)`. The slab is stored in chunks of 4096 entries
//!   (`slab.rs`): growing it never copies the entries, so a wheel of millions of timers
//!   does not stall its caller when it grows.
//! * **Chunked slot lists.** A slot is a chain of 256-byte chunks of 63 entry indices, taken
//!   from a second slab with its own free list; every chunk but the head is full, and each
//!   entry records where its index sits. Insert appends to the head chunk; cancel is O(1) and
//!   fills the hole with the list's last index. Once both slabs have grown to the peak number
//!   of live timers, nothing allocates; chunks number at most `live / 63` plus one partial
//!   head per non-empty list.
//! * **Why not intrusive linked lists.** Walking one is a chain of dependent cache misses
//!   (≈ 200 ns each once the slab outgrows the cache on the 2-core VM), which held a 1M-timer
//!   insert+expire to 2 M/s. A chunk's indices are known up front, so [`Wheel::advance`] first
//!   gathers a chunk's deadlines in a tight loop whose misses overlap, then cascades or fires
//!   from L1.
//! * **Generations.** Every slab entry carries a `u32` generation, bumped when the entry is
//!   freed. A [`TimerId`] is `(index, generation)`, so cancelling with an id whose timer has
//!   fired or been cancelled returns `None` and can never hit the entry's next tenant (short of
//!   `2^32` reuses of one entry while the stale id is held).
//!
//! # Lazy cancellation with owner generations
//!
//! Cancelling needs the [`TimerId`]. The alternative, used for binding expiry, is to never
//! cancel: the owner keeps its own generation counter, puts it in the key, bumps it on every
//! refresh and ignores fired keys whose generation is stale. This saves storing the id but
//! leaves dead entries in the wheel until their old deadline passes.
//!
//! ```
//! use sipedge_wheel::{Tick, Wheel};
//!
//! #[derive(Clone, Copy, Debug, PartialEq)]
//! struct Expire { binding: usize, gen: u32 }
//!
//! let mut generations = vec![0u32; 1]; // one per binding, owned by the location service
//! let mut wheel = Wheel::new();
//! wheel.insert(Tick(3_600), Expire { binding: 0, gen: generations[0] });
//!
//! // A REGISTER refresh: bump the generation and arm a new timer. No cancel.
//! generations[0] += 1;
//! wheel.insert(Tick(7_200), Expire { binding: 0, gen: generations[0] });
//!
//! let mut fired = Vec::new();
//! wheel.advance(Tick(3_600), &mut fired);
//! assert_eq!(fired.len(), 1); // the old timer did fire…
//! fired.retain(|e: &Expire| e.gen == generations[e.binding]);
//! assert!(fired.is_empty()); // …but it is stale and ignored.
//!
//! wheel.advance(Tick(7_200), &mut fired);
//! fired.retain(|e: &Expire| e.gen == generations[e.binding]);
//! assert_eq!(fired, [Expire { binding: 0, gen: 1 }]);
//! ```

mod slab;
mod wheel;

#[cfg(test)]
mod tests;

pub use wheel::Wheel;

/// Default tick length of a shard's wheel, in milliseconds. The wheel itself never sees units.
pub const DEFAULT_TICK_MILLIS: u64 = 10;

/// Bits of a tick consumed per level: each level has `2^SLOT_BITS` slots.
pub const SLOT_BITS: u32 = 6;

/// Slots per level.
pub const SLOTS: usize = 1 << SLOT_BITS;

/// Number of levels. The wheel spans `2^(LEVELS × SLOT_BITS)` = `2^36` ticks before clamping.
pub const LEVELS: usize = 6;

/// A point in time, in ticks since an epoch the caller chooses (typically shard start).
///
/// Integer ticks keep the wheel exact and clock-free; the tick length is the caller's choice
/// ([`DEFAULT_TICK_MILLIS`] by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tick(pub u64);

impl Tick {
    /// Tick zero, where a fresh [`Wheel`] starts.
    pub const ZERO: Tick = Tick(0);

    /// The raw tick count.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + ticks`, saturating at `u64::MAX` (a deadline of "never").
    #[must_use]
    pub const fn saturating_add(self, ticks: u64) -> Tick {
        Tick(self.0.saturating_add(ticks))
    }
}

/// Handle to one armed timer, returned by [`Wheel::insert`] and accepted by
/// [`Wheel::cancel`].
///
/// It is a slab index plus that entry's generation, so an id outlives its timer safely: once
/// the timer fires or is cancelled, the id is stale and every lookup with it returns `None`,
/// even after the entry is reused by another timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    generation: u32,
}
