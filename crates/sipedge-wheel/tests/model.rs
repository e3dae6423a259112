//! Model test: random interleavings of insert / cancel / advance against a
//! `BTreeMap<(deadline, seq), ()>`, including past deadlines, far and "never" deadlines, large
//! jumps, top-block boundaries, and cancels of fired, cancelled and reused ids.
//!
//! After every operation: `len()` matches, and `next_expiry()` is exactly what the docs promise
//! (see `expected_next_expiry`). After every advance: the fired keys are exactly the model's
//! due set (each due timer once, none early) and `now()` is the target.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sipedge_wheel::{Tick, TimerId, Wheel, LEVELS, SLOT_BITS};

const TOP_BITS: u32 = LEVELS as u32 * SLOT_BITS;

#[derive(Clone, Debug)]
enum Deadline {
    /// `now + delta`, saturating at 0 / `u64::MAX`; `delta <= 0` is already due.
    Relative(i64),
    Never,
}

#[derive(Clone, Debug)]
enum Op {
    /// Insert this many timers (usually one) with the same deadline; bursts overflow chunks.
    Insert(usize, Deadline),
    /// Cancel the n-th id ever issued (modulo), live or not.
    Cancel(usize),
    Advance(u64),
    /// Advance exactly to `next_expiry()`, as a sleeping shard would.
    AdvanceToNextExpiry,
}

fn deadline() -> impl Strategy<Value = Deadline> {
    prop_oneof![
        2 => (-300i64..=0).prop_map(Deadline::Relative),
        // A few fixed offsets pile timers into the same slots.
        4 => prop::sample::select(vec![1i64, 2, 100, 5000]).prop_map(Deadline::Relative),
        4 => (1i64..64).prop_map(Deadline::Relative),
        4 => (1i64..10_000).prop_map(Deadline::Relative),
        2 => (1i64..1 << 24).prop_map(Deadline::Relative),
        1 => (1i64..1 << 40).prop_map(Deadline::Relative),
        1 => Just(Deadline::Never),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => deadline().prop_map(|d| Op::Insert(1, d)),
        1 => (2usize..200, deadline()).prop_map(|(n, d)| Op::Insert(n, d)),
        3 => any::<usize>().prop_map(Op::Cancel),
        2 => (0u64..4).prop_map(Op::Advance),
        2 => (0u64..200).prop_map(Op::Advance),
        2 => (0u64..20_000).prop_map(Op::Advance),
        1 => (0u64..1 << 26).prop_map(Op::Advance),
        1 => (0u64..1 << 40).prop_map(Op::Advance),
        2 => Just(Op::AdvanceToNextExpiry),
    ]
}

/// Starting ticks: zero, just before top-level block boundaries, and near the end of time.
fn start() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        ((1u64 << TOP_BITS) - 300..1 << TOP_BITS),
        ((7u64 << TOP_BITS) - 70_000..7 << TOP_BITS),
        (u64::MAX - (1 << 37)..=u64::MAX),
    ]
}

/// The documented `next_expiry()` range for earliest deadline `earliest`, as `(min, max)`:
/// exactly `now` if already due; exactly the deadline on level 0; exactly its slot start
/// (rounded down to `64^level`) above; beyond the wheel, from the next top-level block start
/// to the start of `d`'s block (earlier only if an earlier far timer was cancelled).
fn expected_next_expiry(now: u64, earliest: Option<u64>) -> Option<(u64, u64)> {
    let d = earliest?;
    if d <= now {
        return Some((now, now));
    }
    let level = (63 - ((d ^ now) | 63).leading_zeros()) / SLOT_BITS;
    if level < TOP_BITS / SLOT_BITS {
        let start = d & !((1u64 << (level * SLOT_BITS)) - 1);
        Some((start, start))
    } else {
        let block = |t: u64| t & !((1u64 << TOP_BITS) - 1);
        Some((block(now) + (1 << TOP_BITS), block(d)))
    }
}

fn run(start: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut wheel = Wheel::new();
    wheel.advance(Tick(start), &mut Vec::new());
    let mut model: BTreeMap<(u64, u64), ()> = BTreeMap::new();
    let mut ids: Vec<(TimerId, u64, u64)> = Vec::new();
    let mut seq = 0u64;
    for op in ops {
        let now = wheel.now().get();
        let to = match *op {
            Op::Insert(n, ref d) => {
                let at = match *d {
                    Deadline::Relative(delta) => now.saturating_add_signed(delta),
                    Deadline::Never => u64::MAX,
                };
                for _ in 0..n {
                    let id = wheel.insert(Tick(at), seq);
                    prop_assert_eq!(wheel.deadline(id), Some(Tick(at)));
                    model.insert((at, seq), ());
                    ids.push((id, at, seq));
                    seq += 1;
                }
                None
            }
            Op::Cancel(n) if !ids.is_empty() => {
                let (id, at, s) = ids[n % ids.len()];
                let expected = model.remove(&(at, s)).map(|()| s);
                prop_assert_eq!(wheel.cancel(id), expected);
                None
            }
            Op::Cancel(_) => None,
            Op::Advance(delta) => Some(now.saturating_add(delta)),
            Op::AdvanceToNextExpiry => wheel.next_expiry().map(Tick::get),
        };
        if let Some(to) = to {
            let mut fired = Vec::new();
            let count = wheel.advance(Tick(to), &mut fired);
            prop_assert_eq!(count, fired.len());
            fired.sort_unstable();
            let later = model.split_off(&(to.saturating_add(1), 0));
            let mut due: Vec<u64> = model.keys().map(|&(_, s)| s).collect();
            if to == u64::MAX {
                due.extend(later.keys().map(|&(_, s)| s)); // split_off saturated
                model.clear();
            } else {
                model = later;
            }
            due.sort_unstable();
            prop_assert_eq!(fired, due, "advance {} -> {}", now, to);
            prop_assert_eq!(wheel.now(), Tick(to.max(now)));
        }
        // Invariants after every operation.
        let now = wheel.now().get();
        prop_assert_eq!(wheel.len(), model.len());
        prop_assert_eq!(wheel.is_empty(), model.is_empty());
        let earliest = model.keys().next().map(|&(d, _)| d);
        let next = wheel.next_expiry().map(Tick::get);
        match (next, expected_next_expiry(now, earliest)) {
            (None, None) => {}
            (Some(next), Some((lo, hi))) => {
                prop_assert!(
                    lo <= next && next <= hi,
                    "now {} next {} not in {}..={}",
                    now,
                    next,
                    lo,
                    hi
                );
            }
            (next, expected) => {
                prop_assert!(false, "next_expiry {:?}, expected {:?}", next, expected)
            }
        }
        if let (Some(next), Some(d)) = (next, earliest) {
            prop_assert!(
                next <= d.max(now),
                "next_expiry {} later than deadline {}",
                next,
                d
            );
            prop_assert!(next >= now, "next_expiry {} before now {}", next, now);
            prop_assert!(next > now || d <= now, "spurious 'due now' at {}", now);
        }
    }
    // Draining to the end of time fires everything left, exactly once.
    let mut fired = Vec::new();
    wheel.advance(Tick(u64::MAX), &mut fired);
    fired.sort_unstable();
    let mut rest: Vec<u64> = model.keys().map(|&(_, s)| s).collect();
    rest.sort_unstable();
    prop_assert_eq!(fired, rest);
    prop_assert!(wheel.is_empty());
    prop_assert_eq!(wheel.next_expiry(), None);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn wheel_matches_model(start in start(), ops in prop::collection::vec(op(), 1..400)) {
        run(start, &ops)?;
    }
}

#[test]
fn expected_next_expiry_examples() {
    assert_eq!(expected_next_expiry(9, Some(10)), Some((10, 10)));
    assert_eq!(expected_next_expiry(0, Some(100)), Some((64, 64)));
    assert_eq!(
        expected_next_expiry(0, Some(5 << 36)),
        Some((1 << 36, 5 << 36))
    );
    assert_eq!(expected_next_expiry(50, Some(3)), Some((50, 50)));
    assert_eq!(expected_next_expiry(50, None), None);
}
