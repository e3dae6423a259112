//! One limit key's counters, shared by every shard: concurrent calls (channels) and calls
//! admitted in the current second (CPS). Exact across shards: each take is one
//! compare-and-swap that never lets the count pass the limit, whatever thread runs it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A limit pair; 0 means unlimited (issue 16: "calls per second (0 = unlimited)").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limit {
    /// Concurrent calls.
    pub channels: u32,
    /// Calls admitted per second.
    pub cps: u32,
}

impl Limit {
    /// From the optional config values (absent = 0 = unlimited).
    pub fn new(channels: Option<u32>, cps: Option<u32>) -> Limit {
        Limit {
            channels: channels.unwrap_or(0),
            cps: cps.unwrap_or(0),
        }
    }

    /// Neither limit set: nothing to count against.
    pub fn is_unlimited(self) -> bool {
        self.channels == 0 && self.cps == 0
    }
}

/// The counters of one key. Survive a reload (the new table shares the `Arc`), so calls in
/// progress keep counting against the new limit (a lowered limit refuses new calls only).
#[derive(Debug, Default)]
pub struct Counter {
    channels: AtomicU32,
    /// `second << 32 | count`: the CPS window, fed by the core's clock (`now`).
    cps: AtomicU64,
}

/// Which half of a limit refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Over {
    Channels,
    Cps,
}

impl Counter {
    /// Channels in use.
    pub fn channels(&self) -> u32 {
        self.channels.load(Ordering::Relaxed)
    }

    /// Calls admitted during second `sec` (0 when the window holds another second).
    pub fn cps_at(&self, sec: u32) -> u32 {
        let w = self.cps.load(Ordering::Relaxed);
        if (w >> 32) as u32 == sec {
            w as u32
        } else {
            0
        }
    }

    /// One call per second more, unless `limit` (0: unlimited, still counted) is reached.
    pub(crate) fn take_cps(&self, limit: u32, sec: u32) -> bool {
        let mut cur = self.cps.load(Ordering::Relaxed);
        loop {
            let (s, n) = ((cur >> 32) as u32, cur as u32);
            let n = if s == sec { n } else { 0 };
            if limit != 0 && n >= limit {
                return false;
            }
            let next = u64::from(sec) << 32 | u64::from(n.saturating_add(1));
            match self
                .cps
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => cur = seen,
            }
        }
    }

    /// Gives back a CPS unit taken in second `sec` by an admission that was then refused
    /// at another key (a refused call does not use up anyone's rate).
    pub(crate) fn untake_cps(&self, sec: u32) {
        let _ = self
            .cps
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |w| {
                ((w >> 32) as u32 == sec && w as u32 > 0).then_some(w - 1)
            });
    }

    /// One channel more, unless `limit` (0: unlimited, still counted) is reached.
    pub(crate) fn take_channel(&self, limit: u32) -> bool {
        self.channels
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (limit == 0 || n < limit).then(|| n.saturating_add(1))
            })
            .is_ok()
    }

    /// A channel taken unconditionally (a cloned [`super::Charge`]).
    pub(crate) fn force_channel(&self) {
        self.channels.fetch_add(1, Ordering::AcqRel);
    }

    /// One channel back (never below zero).
    pub(crate) fn release_channel(&self) {
        let _ = self
            .channels
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Takes `limit` at `sec`: CPS first, then a channel; nothing held when refused.
    pub(crate) fn take(&self, limit: Limit, sec: u32) -> Result<(), Over> {
        if !self.take_cps(limit.cps, sec) {
            return Err(Over::Cps);
        }
        if !self.take_channel(limit.channels) {
            self.untake_cps(sec);
            return Err(Over::Channels);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_stop_at_the_limit_and_come_back() {
        let c = Counter::default();
        let l = Limit {
            channels: 2,
            cps: 0,
        };
        assert!(c.take(l, 1).is_ok());
        assert!(c.take(l, 1).is_ok());
        assert_eq!(c.take(l, 1), Err(Over::Channels));
        assert_eq!(c.cps_at(1), 2, "the refused call gave its CPS unit back");
        c.release_channel();
        assert!(c.take(l, 1).is_ok());
        for _ in 0..5 {
            c.release_channel();
        }
        assert_eq!(c.channels(), 0, "never below zero");
    }

    #[test]
    fn cps_window_is_per_second() {
        let c = Counter::default();
        let l = Limit {
            channels: 0,
            cps: 3,
        };
        for _ in 0..3 {
            assert!(c.take(l, 7).is_ok());
        }
        assert_eq!(c.take(l, 7), Err(Over::Cps));
        assert!(c.take(l, 8).is_ok(), "a new second, a new window");
        assert_eq!(c.cps_at(8), 1);
    }

    #[test]
    fn exact_under_threads() {
        let c = std::sync::Arc::new(Counter::default());
        let l = Limit {
            channels: 1000,
            cps: 0,
        };
        let ok: u32 = (0..4)
            .map(|_| {
                let c = std::sync::Arc::clone(&c);
                std::thread::spawn(move || (0..10_000).filter(|_| c.take(l, 0).is_ok()).count())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap_or(0) as u32)
            .sum();
        assert_eq!(ok, 1000);
        assert_eq!(c.channels(), 1000);
    }
}
