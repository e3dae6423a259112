//! [`HandshakeBucket`]: how many TLS handshakes a shard starts per second (issue 19, limits
//! against abuse: a handshake costs the server a signature, a flood of them is cheap to
//! send). A token bucket, sans-IO: the caller passes the time.

use std::time::{Duration, Instant};

/// Default `[tls] handshakes_per_sec` (per shard).
pub const DEFAULT_TLS_HANDSHAKES_PER_SEC: u32 = 1000;

/// A token bucket of handshakes: `rate` per second, up to `rate` saved (one second's worth
/// of burst). A rate of 0 means unlimited.
#[derive(Debug, Clone)]
pub struct HandshakeBucket {
    rate: u32,
    /// Tokens held, in millionths of a handshake (integer: no drift).
    micro_tokens: u64,
    last: Option<Instant>,
}

const MICRO: u64 = 1_000_000;

impl HandshakeBucket {
    /// A full bucket of `rate` handshakes per second (0: unlimited).
    pub fn new(rate: u32) -> Self {
        Self {
            rate,
            micro_tokens: u64::from(rate) * MICRO,
            last: None,
        }
    }

    /// `true` (and one token spent) when a handshake may start at `now`; `false`: refuse
    /// the connection (close it unanswered) and count it.
    pub fn try_start(&mut self, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let cap = u64::from(self.rate) * MICRO;
        if let Some(last) = self.last {
            let elapsed = now
                .saturating_duration_since(last)
                .min(Duration::from_secs(1));
            // ≤ 1 s × rate × 1e6 per second / 1e6 µs: no overflow for any u32 rate.
            let earned = u64::try_from(elapsed.as_micros()).unwrap_or(MICRO) * u64::from(self.rate);
            self.micro_tokens = self.micro_tokens.saturating_add(earned).min(cap);
        }
        if self.last.is_none_or(|l| now > l) {
            self.last = Some(now);
        }
        if self.micro_tokens >= MICRO {
            self.micro_tokens -= MICRO;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_past_the_rate_is_refused_then_refilled() {
        let t0 = Instant::now();
        let mut b = HandshakeBucket::new(10);
        let started = (0..25).filter(|_| b.try_start(t0)).count();
        assert_eq!(started, 10, "one second's worth of burst");
        // 100 ms later: one more token.
        assert!(b.try_start(t0 + Duration::from_millis(100)));
        assert!(!b.try_start(t0 + Duration::from_millis(100)));
        // A long idle refills only to the cap.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..25).filter(|_| b.try_start(later)).count(), 10);
    }

    #[test]
    fn zero_is_unlimited_and_a_clock_going_back_earns_nothing() {
        let t0 = Instant::now();
        let mut u = HandshakeBucket::new(0);
        assert!((0..10_000).all(|_| u.try_start(t0)));
        let mut b = HandshakeBucket::new(1);
        let t1 = t0 + Duration::from_secs(5);
        assert!(b.try_start(t1));
        assert!(!b.try_start(t0));
        assert!(!b.try_start(t1));
    }
}
