//! RFC 3261 retransmission of non-INVITE requests over UDP (§17.1.2.2), and the timer queues.
//!
//! Timer E starts at T1 and doubles up to T2 (in the Proceeding state, after a provisional
//! response, it is T2); Timer F = 64 × T1 ends the transaction with a timeout.
//!
//! Every first retransmission is due exactly T1 after its send, and sends happen in time order,
//! so those timers sit in a FIFO (O(1), the hot path). Later ones — requests that were already
//! lost once — go to a binary heap. Entries are not removed when a reply arrives: a popped key
//! whose transaction is gone is simply ignored (lazy cancellation).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use crate::txn::TxnKey;

/// RFC 3261 T1 default, the RTT estimate (§17.1.1.1).
pub(crate) const DEFAULT_T1_MS: u64 = 500;
/// RFC 3261 T2 default, the longest retransmit interval for non-INVITE requests.
pub(crate) const DEFAULT_T2_MS: u64 = 4000;

/// The retransmission timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetxPolicy {
    pub(crate) t1: Duration,
    pub(crate) t2: Duration,
    /// Timer F.
    pub(crate) timeout: Duration,
}

impl RetxPolicy {
    /// T1 as given, T2 at least T1, Timer F = 64 × T1.
    pub(crate) fn new(t1: Duration, t2: Duration) -> RetxPolicy {
        RetxPolicy {
            t1,
            t2: t2.max(t1),
            timeout: t1 * 64,
        }
    }

    /// Time from the `sends`-th transmission to the next: min(T1 × 2^(sends−1), T2), or T2
    /// once proceeding.
    pub(crate) fn interval(&self, sends: u32, proceeding: bool) -> Duration {
        if proceeding {
            return self.t2;
        }
        let doublings = sends.saturating_sub(1).min(16);
        (self.t1 * (1u32 << doublings)).min(self.t2)
    }
}

impl RetxPolicy {
    /// INVITE client transaction, RFC 3261 §17.1.1.2: Timer A starts at T1 and doubles with
    /// no T2 cap; once a provisional arrived (Proceeding) nothing is retransmitted, and
    /// `None` means: wait for Timer B (the deadline) only.
    pub(crate) fn invite_interval(&self, sends: u32, proceeding: bool) -> Option<Duration> {
        if proceeding {
            return None;
        }
        let doublings = sends.saturating_sub(1).min(16);
        Some(self.t1 * (1u32 << doublings))
    }
}

/// Pending retransmission timers.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    first: VecDeque<(Instant, TxnKey)>,
    later: BinaryHeap<Reverse<(Instant, TxnKey)>>,
}

impl Timers {
    /// Schedules a first retransmission. `due` must not be earlier than the last one given
    /// here (it is always send time + T1).
    pub(crate) fn schedule_first(&mut self, due: Instant, key: TxnKey) {
        debug_assert!(self.first.back().is_none_or(|(d, _)| *d <= due));
        self.first.push_back((due, key));
    }

    /// Schedules any later timer.
    pub(crate) fn schedule(&mut self, due: Instant, key: TxnKey) {
        self.later.push(Reverse((due, key)));
    }

    /// The earliest due time, if any.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let a = self.first.front().map(|(d, _)| *d);
        let b = self.later.peek().map(|Reverse((d, _))| *d);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Pops one timer due at `now` or earlier.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TxnKey> {
        let a = self.first.front().map(|(d, _)| *d).filter(|d| *d <= now);
        let b = self
            .later
            .peek()
            .map(|Reverse((d, _))| *d)
            .filter(|d| *d <= now);
        match (a, b) {
            (Some(a), Some(b)) if b < a => self.later.pop().map(|Reverse((_, k))| k),
            (Some(_), _) => self.first.pop_front().map(|(_, k)| k),
            (None, Some(_)) => self.later.pop().map(|Reverse((_, k))| k),
            (None, None) => None,
        }
    }

    /// Drops every timer (between phases, once no transaction is left).
    pub(crate) fn clear(&mut self) {
        self.first.clear();
        self.later.clear();
    }
}

/// What a due timer means for its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerAction {
    /// Timer F has passed: the transaction timed out.
    Timeout,
    /// Resend, then call again at this instant.
    Retransmit { next: Instant },
    /// Do not resend; call again at this instant (an INVITE in Proceeding waits for Timer B).
    Wait { next: Instant },
}

/// Decides a due timer: `sends` transmissions so far (this retransmission not counted).
pub(crate) fn on_timer(
    policy: &RetxPolicy,
    now: Instant,
    deadline: Instant,
    sends: u32,
    proceeding: bool,
) -> TimerAction {
    if now >= deadline {
        return TimerAction::Timeout;
    }
    let next = (now + policy.interval(sends + 1, proceeding)).min(deadline);
    TimerAction::Retransmit { next }
}

/// Like [`on_timer`] for an INVITE client transaction (Timers A and B, §17.1.1.2).
pub(crate) fn on_invite_timer(
    policy: &RetxPolicy,
    now: Instant,
    deadline: Instant,
    sends: u32,
    proceeding: bool,
) -> TimerAction {
    if now >= deadline {
        return TimerAction::Timeout;
    }
    match policy.invite_interval(sends + 1, proceeding) {
        Some(gap) => TimerAction::Retransmit {
            next: (now + gap).min(deadline),
        },
        None => TimerAction::Wait { next: deadline },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Sends of one never-answered request, as offsets from the first send, and when it
    /// times out — driven through `Timers` and `on_timer` as the runner drives them.
    fn schedule(policy: RetxPolicy, proceeding_after: Option<u32>) -> (Vec<Duration>, Duration) {
        let t0 = Instant::now();
        let deadline = t0 + policy.timeout;
        let key = TxnKey { slot: 1, gen: 0 };
        let mut timers = Timers::default();
        timers.schedule_first(t0 + policy.t1, key);
        let mut sends = vec![Duration::ZERO];
        loop {
            let now = timers.next_due().expect("a timer is pending");
            assert_eq!(timers.pop_due(now), Some(key));
            let n = sends.len() as u32;
            let proceeding = proceeding_after.is_some_and(|p| n >= p);
            match on_timer(&policy, now, deadline, n, proceeding) {
                TimerAction::Timeout => return (sends, now - t0),
                TimerAction::Retransmit { next } => {
                    sends.push(now - t0);
                    timers.schedule(next, key);
                }
                TimerAction::Wait { .. } => panic!("non-INVITE transactions always resend"),
            }
        }
    }

    #[test]
    fn rfc3261_non_invite_schedule_with_default_timers() {
        let (sends, timeout) = schedule(RetxPolicy::new(ms(500), ms(4000)), None);
        let want: Vec<Duration> = [
            0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
        ]
        .into_iter()
        .map(ms)
        .collect();
        assert_eq!(sends, want);
        assert_eq!(timeout, ms(32_000), "Timer F = 64 × T1");
    }

    #[test]
    fn a_short_t1_scales_the_schedule_and_timer_f() {
        let (sends, timeout) = schedule(RetxPolicy::new(ms(50), ms(4000)), None);
        assert_eq!(&sends[..5], &[ms(0), ms(50), ms(150), ms(350), ms(750)]);
        // 50 × 2^k stays below T2 until the deadline: the last gap is cut by Timer F.
        assert_eq!(*sends.last().expect("sent"), ms(3150));
        assert_eq!(timeout, ms(3200));
    }

    #[test]
    fn invite_timer_a_doubles_past_t2_and_stops_when_proceeding() {
        let p = RetxPolicy::new(ms(500), ms(4000));
        let t0 = Instant::now();
        let deadline = t0 + p.timeout;
        let mut at = t0 + ms(500);
        let mut gaps = Vec::new();
        for sends in 1..=6 {
            match on_invite_timer(&p, at, deadline, sends, false) {
                TimerAction::Retransmit { next } => {
                    gaps.push(next - at);
                    at = next;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            gaps,
            [ms(1000), ms(2000), ms(4000), ms(8000), ms(16000), ms(500)],
            "the last gap is cut by Timer B"
        );
        assert_eq!(
            on_invite_timer(&p, t0 + ms(600), deadline, 2, true),
            TimerAction::Wait { next: deadline }
        );
        assert_eq!(
            on_invite_timer(&p, deadline, deadline, 2, true),
            TimerAction::Timeout
        );
    }

    #[test]
    fn proceeding_retransmits_at_t2() {
        let (sends, _) = schedule(RetxPolicy::new(ms(500), ms(4000)), Some(2));
        // The timer set before the provisional keeps its value; from then on every gap is T2.
        assert_eq!(&sends[..4], &[ms(0), ms(500), ms(1500), ms(5500)]);
    }

    #[test]
    fn timers_pop_in_due_order_across_both_queues() {
        let t0 = Instant::now();
        let k = |slot| TxnKey { slot, gen: 0 };
        let mut t = Timers::default();
        t.schedule_first(t0 + ms(10), k(1));
        t.schedule_first(t0 + ms(30), k(3));
        t.schedule(t0 + ms(20), k(2));
        t.schedule(t0 + ms(5), k(0));
        assert_eq!(t.next_due(), Some(t0 + ms(5)));
        assert_eq!(t.pop_due(t0 + ms(4)), None);
        let popped: Vec<_> = std::iter::from_fn(|| t.pop_due(t0 + ms(25))).collect();
        assert_eq!(popped, vec![k(0), k(1), k(2)]);
        assert_eq!(t.next_due(), Some(t0 + ms(30)));
        t.clear();
        assert_eq!(t.next_due(), None);
    }
}
