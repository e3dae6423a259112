//! Unit tests: exact firing ticks across every level, cancel and stale ids, far deadlines,
//! big jumps, `next_expiry` granularity, lazy generations, and slab reuse.

use crate::{Tick, Wheel, LEVELS, SLOT_BITS};

/// First tick of level `l`'s slot 1 when starting from 0: `64^l`.
fn span(level: usize) -> u64 {
    1u64 << (level as u32 * SLOT_BITS)
}

fn advance(wheel: &mut Wheel<u64>, to: u64) -> Vec<u64> {
    let mut fired = Vec::new();
    let n = wheel.advance(Tick(to), &mut fired);
    assert_eq!(n, fired.len());
    fired.sort_unstable();
    fired
}

#[test]
fn fires_on_its_tick_not_before() {
    let mut wheel = Wheel::new();
    let deadlines = [1, 2, 63, 64, 65, 127, 128, 200, 4095, 4096, 4097, 9000];
    for &d in &deadlines {
        wheel.insert(Tick(d), d);
    }
    for t in 1..=9000 {
        let fired = advance(&mut wheel, t);
        let expected: Vec<u64> = deadlines.iter().copied().filter(|&d| d == t).collect();
        assert_eq!(fired, expected, "at tick {t}");
    }
    assert!(wheel.is_empty());
}

#[test]
fn every_level_boundary_fires_exactly_on_time() {
    for level in 0..LEVELS {
        let offsets = [
            span(level) - 1,
            span(level),
            span(level) + 1,
            3 * span(level) + 5,
        ];
        for offset in offsets.into_iter().filter(|&o| o > 0) {
            let mut wheel = Wheel::new();
            wheel.advance(Tick(7), &mut Vec::new());
            let d = 7 + offset;
            wheel.insert(Tick(d), d);
            assert!(
                advance(&mut wheel, d - 1).is_empty(),
                "level {level}: {d} fired early"
            );
            assert_eq!(wheel.len(), 1);
            assert_eq!(advance(&mut wheel, d), [d], "level {level}: {d} not fired");
            assert!(wheel.is_empty());
        }
    }
}

#[test]
fn past_and_present_deadlines_fire_on_next_advance() {
    let mut wheel = Wheel::new();
    wheel.advance(Tick(1000), &mut Vec::new());
    wheel.insert(Tick(10), 10);
    wheel.insert(Tick(1000), 1000);
    assert_eq!(wheel.next_expiry(), Some(Tick(1000)));
    // Even an advance that does not move time fires what is due.
    assert_eq!(advance(&mut wheel, 1000), [10, 1000]);
    assert_eq!(wheel.next_expiry(), None);
}

#[test]
fn advancing_backwards_does_not_move_time() {
    let mut wheel = Wheel::new();
    wheel.advance(Tick(500), &mut Vec::new());
    wheel.insert(Tick(501), 501);
    assert!(advance(&mut wheel, 100).is_empty());
    assert_eq!(wheel.now(), Tick(500));
    assert_eq!(advance(&mut wheel, 501), [501]);
}

#[test]
fn cancel_returns_key_and_stops_the_timer() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(Tick(100), 1);
    let b = wheel.insert(Tick(100), 2);
    let c = wheel.insert(Tick(100), 3);
    // Unlink from the middle, the head and the tail of one slot list.
    assert_eq!(wheel.cancel(b), Some(2));
    assert_eq!(wheel.cancel(c), Some(3));
    assert_eq!(wheel.deadline(a), Some(Tick(100)));
    assert_eq!(wheel.len(), 1);
    assert_eq!(advance(&mut wheel, 100), [1]);
    assert_eq!(wheel.cancel(a), None, "fired timer cancelled");
    assert_eq!(wheel.cancel(b), None, "double cancel");
    assert_eq!(wheel.next_expiry(), None);
}

#[test]
fn cancelling_the_last_timer_of_a_slot_clears_it() {
    let mut wheel = Wheel::new();
    let id = wheel.insert(Tick(5000), 1);
    wheel.insert(Tick(9000), 2);
    wheel.cancel(id);
    assert_eq!(wheel.next_expiry(), Some(Tick(8192)));
    assert_eq!(advance(&mut wheel, 9000), [2]);
}

#[test]
fn stale_id_never_cancels_the_reused_entry() {
    let mut wheel = Wheel::new();
    let old = wheel.insert(Tick(10), 1);
    assert_eq!(wheel.cancel(old), Some(1));
    let new = wheel.insert(Tick(20), 2);
    assert_eq!(wheel.slab_len(), 1, "entry not reused");
    assert_ne!(old, new);
    assert_eq!(wheel.cancel(old), None);
    assert_eq!(wheel.deadline(old), None);
    assert_eq!(advance(&mut wheel, 20), [2]);
    // The same after firing instead of cancelling.
    let newer = wheel.insert(Tick(30), 3);
    assert_eq!(wheel.cancel(new), None);
    assert_eq!(wheel.cancel(newer), Some(3));
}

#[test]
fn deadlines_beyond_the_top_level_are_clamped_and_recascaded() {
    let top = 1u64 << (LEVELS as u32 * SLOT_BITS);
    let mut wheel = Wheel::new();
    let far = 5 * top + 12_345;
    wheel.insert(Tick(far), far);
    wheel.insert(Tick(u64::MAX), u64::MAX);
    // Due for re-cascading at the start of the earliest far deadline's block.
    assert_eq!(wheel.next_expiry(), Some(Tick(5 * top)));
    assert!(advance(&mut wheel, far - 1).is_empty());
    assert_eq!(advance(&mut wheel, far), [far]);
    assert!(advance(&mut wheel, u64::MAX - 1).is_empty());
    assert_eq!(wheel.len(), 1);
    assert_eq!(advance(&mut wheel, u64::MAX), [u64::MAX]);
}

#[test]
fn cancelled_far_timer_does_not_pin_the_overflow_slot() {
    // Regression (found by the model test): the overflow floor of a cancelled timer must not
    // outlive it, or a later far timer would come due in the past.
    let top = 1u64 << (LEVELS as u32 * SLOT_BITS);
    let mut wheel = Wheel::new();
    let id = wheel.insert(Tick(2 * top), 1);
    wheel.cancel(id);
    wheel.advance(Tick(3 * top), &mut Vec::new());
    wheel.insert(Tick(5 * top + 7), 2);
    assert_eq!(wheel.next_expiry(), Some(Tick(5 * top)));
    assert!(advance(&mut wheel, 5 * top + 6).is_empty());
    assert_eq!(advance(&mut wheel, 5 * top + 7), [2]);
}

#[test]
fn just_before_a_top_block_boundary() {
    let top = 1u64 << (LEVELS as u32 * SLOT_BITS);
    let mut wheel = Wheel::new();
    wheel.advance(Tick(top - 1), &mut Vec::new());
    wheel.insert(Tick(top), 1);
    wheel.insert(Tick(top + 1), 2);
    assert_eq!(wheel.next_expiry(), Some(Tick(top)));
    assert_eq!(advance(&mut wheel, top), [1]);
    assert_eq!(wheel.next_expiry(), Some(Tick(top + 1)));
    assert_eq!(advance(&mut wheel, top + 1), [2]);
}

#[test]
fn big_jumps_visit_slots_not_ticks() {
    let mut wheel = Wheel::new();
    for d in [3, 1_000_000, 999_999_999_999] {
        wheel.insert(Tick(d), d);
    }
    assert_eq!(
        advance(&mut wheel, 1_000_000_000_000),
        [3, 1_000_000, 999_999_999_999]
    );
    // Each timer takes at most one slot per level on its way down.
    assert!(wheel.slots_processed() <= 3 * LEVELS as u64, "{wheel:?}");
    assert_eq!(wheel.now(), Tick(1_000_000_000_000));
    // An empty wheel jumps for free.
    wheel.advance(Tick(u64::MAX), &mut Vec::new());
    assert!(wheel.slots_processed() <= 3 * LEVELS as u64);
}

#[test]
fn next_expiry_is_exact_on_level_zero_and_a_slot_start_above() {
    let mut wheel = Wheel::new();
    assert_eq!(wheel.next_expiry(), None);
    wheel.advance(Tick(4100), &mut Vec::new());
    let far = wheel.insert(Tick(5000), 5000); // level 1 relative to 4100: slot [4992, 5056)
    assert_eq!(wheel.next_expiry(), Some(Tick(4992)));
    wheel.insert(Tick(4120), 4120); // same 64-tick block as 4100: exact
    assert_eq!(wheel.next_expiry(), Some(Tick(4120)));
    assert_eq!(advance(&mut wheel, 4120), [4120]);
    assert_eq!(wheel.next_expiry(), Some(Tick(4992)));
    // Advancing to the estimate cascades the timer and the estimate becomes exact.
    assert!(advance(&mut wheel, 4992).is_empty());
    assert_eq!(wheel.next_expiry(), Some(Tick(5000)));
    assert_eq!(wheel.cancel(far), Some(5000));
    assert_eq!(wheel.next_expiry(), None);
}

#[test]
fn sleeping_until_next_expiry_never_misses_and_wakes_little() {
    let mut wheel = Wheel::new();
    let deadlines = [17, 64, 4_000, 4_096, 300_000, 20_000_000, 1 << 40];
    for &d in &deadlines {
        wheel.insert(Tick(d), d);
    }
    let (mut wakeups, mut fired) = (0, Vec::new());
    while let Some(t) = wheel.next_expiry() {
        let before = fired.len();
        wheel.advance(t, &mut fired);
        for &d in &fired[before..] {
            assert_eq!(d, t.get(), "fired at {t:?}, due {d}");
        }
        wakeups += 1;
    }
    assert_eq!(fired, deadlines);
    assert!(wakeups <= deadlines.len() * LEVELS, "{wakeups} wakeups");
}

#[test]
fn lazy_cancellation_by_owner_generation() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Expire {
        binding: usize,
        generation: u32,
    }
    let mut generations = [0u32; 2];
    let mut wheel = Wheel::new();
    for binding in 0..2 {
        wheel.insert(
            Tick(3600),
            Expire {
                binding,
                generation: 0,
            },
        );
    }
    // Binding 0 refreshes twice; nothing is cancelled, only the generation moves.
    for (now, expiry) in [(1000, 4600), (2000, 5600)] {
        wheel.advance(Tick(now), &mut Vec::new());
        generations[0] += 1;
        let generation = generations[0];
        wheel.insert(
            Tick(expiry),
            Expire {
                binding: 0,
                generation,
            },
        );
    }
    let mut expired = Vec::new();
    let mut live = |wheel: &mut Wheel<Expire>, to| {
        let mut fired = Vec::new();
        wheel.advance(Tick(to), &mut fired);
        fired.retain(|e: &Expire| e.generation == generations[e.binding]);
        expired.extend(fired.iter().map(|e| (to, e.binding)));
    };
    live(&mut wheel, 3600); // binding 0's first timer fires stale; binding 1 expires
    live(&mut wheel, 4600); // stale
    live(&mut wheel, 5600); // current
    assert_eq!(expired, [(3600, 1), (5600, 0)]);
    assert!(wheel.is_empty());
}

#[test]
fn cancel_anywhere_in_a_long_slot_list() {
    // 500 timers on one slot span several chunks; cancel a third of them in scrambled order.
    let mut wheel = Wheel::new();
    let ids: Vec<_> = (0..500u64).map(|k| wheel.insert(Tick(300), k)).collect();
    let mut cancelled: Vec<u64> = (0..500u64).filter(|k| k % 3 == 0).collect();
    cancelled.sort_unstable_by_key(|&k| (k * 7919) % 500);
    for &k in &cancelled {
        assert_eq!(wheel.cancel(ids[k as usize]), Some(k));
    }
    assert_eq!(wheel.len(), 500 - cancelled.len());
    let expected: Vec<u64> = (0..500u64).filter(|k| k % 3 != 0).collect();
    assert!(advance(&mut wheel, 299).is_empty());
    assert_eq!(advance(&mut wheel, 300), expected);
}

#[test]
fn chunk_memory_is_bounded_by_live_timers() {
    let mut wheel = Wheel::new();
    for round in 0..10u64 {
        let ids: Vec<_> = (0..10_000)
            .map(|k| wheel.insert(Tick(1000 + round), k))
            .collect();
        for id in ids {
            wheel.cancel(id);
        }
    }
    // One slot's chain of 63-index chunks, reused every round.
    assert!(wheel.chunk_count() <= 10_000 / 63 + 2, "{wheel:?}");
    assert_eq!(wheel.slab_len(), 10_000);
}

#[test]
fn steady_state_reuses_the_slab() {
    steady_state(false);
}

/// `prefault` writes only reserved room: the wheel behaves exactly as without it.
#[test]
fn a_prefaulted_wheel_fires_the_same() {
    steady_state(true);
}

fn steady_state(prefault: bool) {
    let mut wheel = Wheel::with_capacity(1000);
    if prefault {
        wheel.prefault();
        assert_eq!(wheel.len(), 0);
        assert_eq!(wheel.slab_len(), 0);
    }
    let mut fired = Vec::new();
    for round in 0..50u64 {
        let base = wheel.now().get();
        for i in 0..1000 {
            wheel.insert(Tick(base + 1 + (i * 7919 + round) % 500), i);
        }
        fired.clear();
        assert_eq!(wheel.advance(Tick(base + 500), &mut fired), 1000);
    }
    assert_eq!(
        wheel.slab_len(),
        1000,
        "slab grew beyond the peak live count"
    );
}
