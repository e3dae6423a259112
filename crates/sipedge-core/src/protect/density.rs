//! Per-source state: the request density (Kamailio pike, issue 17 item 2) and the digest
//! failures of one source (item 4), in one fixed-size table entry.

use super::table::Weighed;

/// Length of one density bucket: the window is one second, sliding (two buckets, the
/// previous one weighted by how much of it still overlaps the last second).
pub(crate) const BUCKET_MS: u64 = 1000;

/// One source's counters. All arithmetic saturates: counts come from the wire.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Source {
    /// Index of the current one-second bucket (`now / BUCKET_MS`).
    bucket: u64,
    /// Datagrams in the current bucket and in the one before.
    cur: u32,
    prev: u32,
    /// Start of the digest-failure window, and failures in it.
    pub(crate) fail_start: u64,
    pub(crate) fails: u32,
    /// Last touched (ms).
    last: u64,
    /// Found exempt (trusted or `[[ip_auth]]`) until this time: not checked again before.
    pub(crate) exempt_until: u64,
}

impl Weighed for Source {
    fn weight(&self) -> u32 {
        self.cur
            .saturating_add(self.prev)
            .saturating_add(self.fails.saturating_mul(8))
    }
    fn last(&self) -> u64 {
        self.last
    }
}

impl Source {
    /// Counts one datagram at `now_ms`; returns the sliding estimate of datagrams in the last
    /// second.
    pub(crate) fn count(&mut self, now_ms: u64) -> u32 {
        let bucket = now_ms / BUCKET_MS;
        if bucket == self.bucket {
            self.cur = self.cur.saturating_add(1);
        } else {
            self.prev = if bucket == self.bucket.saturating_add(1) {
                self.cur
            } else {
                0
            };
            self.cur = 1;
            self.bucket = bucket;
        }
        self.last = now_ms;
        let into = now_ms % BUCKET_MS;
        let carried = u64::from(self.prev) * (BUCKET_MS - into) / BUCKET_MS;
        u32::try_from(carried)
            .unwrap_or(u32::MAX)
            .saturating_add(self.cur)
    }

    /// Counts one digest failure at `now_ms` in a window of `window_ms`; returns the
    /// failures in the window.
    pub(crate) fn fail(&mut self, now_ms: u64, window_ms: u64) -> u32 {
        if self.fails == 0 || now_ms.saturating_sub(self.fail_start) > window_ms {
            self.fail_start = now_ms;
            self.fails = 0;
        }
        self.fails = self.fails.saturating_add(1);
        self.last = now_ms;
        self.fails
    }

    /// Forgets the counts (an unban: the source starts clean).
    pub(crate) fn reset(&mut self) {
        *self = Source {
            last: self.last,
            ..Source::default()
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliding_window() {
        let mut s = Source::default();
        for i in 0..10 {
            assert_eq!(s.count(10_000 + i), i as u32 + 1);
        }
        // Half a second into the next bucket: half of the previous one still counts.
        assert_eq!(s.count(11_500), 5 + 1);
        // Two buckets later: nothing carried.
        assert_eq!(s.count(13_000), 1);
    }

    #[test]
    fn failure_window() {
        let mut s = Source::default();
        assert_eq!(s.fail(0, 1000), 1);
        assert_eq!(s.fail(500, 1000), 2);
        assert_eq!(s.fail(1600, 1000), 1);
    }
}
