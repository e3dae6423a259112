//! Password guessing spread over many sources (issue 17 item 4, per user): the wrong digest
//! answers for one user, whatever their source. Past `[protect] user_auth_failures_max` in
//! `auth_failures_window_secs`, every source that failed for the user lately, and every one
//! that fails for it next within the window, is banned — except the source the user last
//! authenticated from (its registered phone), which keeps its own per-source rule only.

use super::table::Weighed;

/// Recent failing sources remembered per user.
pub(crate) const RECENT: usize = 4;

/// One user's counters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct UserFails {
    pub(crate) fail_start: u64,
    pub(crate) fails: u32,
    /// The last sources that failed (keys; 0: none), newest at `next - 1`.
    pub(crate) recent: [u128; RECENT],
    next: usize,
    /// The source the user last authenticated from (0: none known).
    pub(crate) good: u128,
    last: u64,
}

impl Weighed for UserFails {
    fn weight(&self) -> u32 {
        self.fails.saturating_add(u32::from(self.good != 0) * 4)
    }
    fn last(&self) -> u64 {
        self.last
    }
}

impl UserFails {
    /// Counts a failure of `src` at `now_ms`; returns the failures in the window.
    pub(crate) fn fail(&mut self, src: u128, now_ms: u64, window_ms: u64) -> u32 {
        if self.fails == 0 || now_ms.saturating_sub(self.fail_start) > window_ms {
            self.fail_start = now_ms;
            self.fails = 0;
            self.recent = [0; RECENT];
        }
        self.fails = self.fails.saturating_add(1);
        self.last = now_ms;
        if !self.recent.contains(&src) {
            self.recent[self.next % RECENT] = src;
            self.next = (self.next + 1) % RECENT;
        }
        self.fails
    }

    /// A success of `src`: it is the user's own source from now on.
    pub(crate) fn succeed(&mut self, src: u128, now_ms: u64) {
        self.good = src;
        self.last = now_ms;
    }

    /// The sources to ban now (the recent ones but the good one), forgetting them.
    pub(crate) fn take_guessers(&mut self) -> impl Iterator<Item = u128> {
        let good = self.good;
        let out = std::mem::take(&mut self.recent);
        out.into_iter().filter(move |&k| k != 0 && k != good)
    }
}
