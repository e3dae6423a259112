//! Open-loop rate control: how many new requests are due at a given instant.
//!
//! The pacer never looks at replies. At time `t` after its start it has owed
//! `floor(rate × t)` requests in total; each call hands out what is owed and not yet sent, at
//! most `max_burst` at once (the rest stays owed for the next turn). So the offered rate is exact
//! over the run whatever the loop's tick, and a generator that falls behind catches up instead of
//! silently offering less — while [`Pacer::behind`] says by how much.

use std::time::{Duration, Instant};

/// Length of one pacing tick: the loop wakes at least this often while it has requests to pace.
pub(crate) const TICK: Duration = Duration::from_millis(1);

/// Offered-rate pacer for one phase.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    rate: f64,
    start: Instant,
    sent: u64,
    limit: u64,
    max_burst: u64,
}

impl Pacer {
    /// `rate` requests per second from `start`, never more than `limit` in total, at most
    /// `max_burst` per call of [`Pacer::due`].
    pub(crate) fn new(rate: f64, start: Instant, limit: u64, max_burst: u64) -> Pacer {
        Pacer {
            rate,
            start,
            sent: 0,
            limit,
            max_burst: max_burst.max(1),
        }
    }

    /// Requests owed by `now` in total (not capped by the burst).
    fn owed(&self, now: Instant) -> u64 {
        let t = now.saturating_duration_since(self.start).as_secs_f64();
        ((self.rate * t).floor() as u64).min(self.limit)
    }

    /// Requests to send now; the caller sends them and they count as sent.
    pub(crate) fn due(&mut self, now: Instant) -> u64 {
        let n = self.owed(now).saturating_sub(self.sent).min(self.max_burst);
        self.sent += n;
        n
    }

    /// Like [`Pacer::due`] without the burst cap: everything owed by `now`.
    pub(crate) fn due_all(&mut self, now: Instant) -> u64 {
        let n = self.owed(now).saturating_sub(self.sent);
        self.sent += n;
        n
    }

    /// Hands back `n` requests of the last [`Pacer::due`] that could not be started.
    pub(crate) fn give_back(&mut self, n: u64) {
        self.sent = self.sent.saturating_sub(n);
    }

    /// Requests owed by `now` and not yet handed out (the generator is behind by this many).
    pub(crate) fn behind(&self, now: Instant) -> u64 {
        self.owed(now).saturating_sub(self.sent)
    }

    /// Requests handed out so far.
    #[cfg(test)]
    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }

    /// How long until the next request is owed (zero if one is owed already).
    pub(crate) fn until_next(&self, now: Instant) -> Duration {
        if self.sent >= self.limit {
            return Duration::MAX;
        }
        if self.rate <= 0.0 {
            return Duration::MAX;
        }
        let next_at = Duration::from_secs_f64((self.sent + 1) as f64 / self.rate);
        (self.start + next_at).saturating_duration_since(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a pacer on a virtual clock with a given tick and returns the total handed out.
    fn run(rate: f64, tick: Duration, secs: u64, burst: u64) -> u64 {
        let t0 = Instant::now();
        let mut p = Pacer::new(rate, t0, u64::MAX, burst);
        let mut now = t0;
        let end = t0 + Duration::from_secs(secs);
        let mut total = 0;
        while now < end {
            now += tick;
            total += p.due(now.min(end));
        }
        total
    }

    #[test]
    fn offered_count_is_exact_whatever_the_tick() {
        for tick_us in [1, 250, 1000, 1700, 10_000] {
            let got = run(123_457.0, Duration::from_micros(tick_us), 3, u64::MAX);
            assert_eq!(got, 370_371, "tick {tick_us} µs");
        }
    }

    #[test]
    fn a_late_loop_catches_up_within_the_burst_cap() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10_000.0, t0, u64::MAX, 100);
        // 50 ms late: 500 owed, handed out 100 per turn.
        let late = t0 + Duration::from_millis(50);
        assert_eq!(p.behind(late), 500);
        let mut turns = 0;
        while p.due(late) > 0 {
            turns += 1;
        }
        assert_eq!(turns, 5);
        assert_eq!(p.sent(), 500);
        assert_eq!(p.behind(late), 0);
    }

    #[test]
    fn due_all_ignores_the_burst_cap() {
        let t0 = Instant::now();
        let mut p = Pacer::new(10_000.0, t0, u64::MAX, 100);
        assert_eq!(p.due(t0 + Duration::from_millis(50)), 100);
        assert_eq!(p.due_all(t0 + Duration::from_millis(50)), 400);
    }

    #[test]
    fn the_limit_bounds_the_total_and_ends_the_pacing() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000.0, t0, 7, u64::MAX);
        assert_eq!(p.due(t0 + Duration::from_secs(1)), 7);
        assert_eq!(p.due(t0 + Duration::from_secs(2)), 0);
        assert_eq!(p.until_next(t0), Duration::MAX);
    }

    #[test]
    fn given_back_requests_are_owed_again() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000.0, t0, u64::MAX, u64::MAX);
        let now = t0 + Duration::from_millis(10);
        assert_eq!(p.due(now), 10);
        p.give_back(4);
        assert_eq!(p.due(now), 4);
    }

    #[test]
    fn until_next_points_at_the_next_owed_request() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000.0, t0, u64::MAX, u64::MAX);
        let near =
            |d: Duration, ms: u64| d.abs_diff(Duration::from_millis(ms)) < Duration::from_micros(1);
        assert!(near(p.until_next(t0), 1));
        assert_eq!(p.due(t0 + Duration::from_millis(3)), 3);
        assert!(near(p.until_next(t0 + Duration::from_millis(3)), 1));
        assert_eq!(p.until_next(t0 + Duration::from_millis(5)), Duration::ZERO);
    }
}
