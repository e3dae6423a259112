//! The shard's ban list: banned source → until when, and why. A datagram from a banned
//! source is dropped before parsing at the cost of this lookup (nothing when the list is
//! empty). Capped: past `max_bans`, expired bans go first, then the one ending soonest of a
//! small sample (an attacker who fills the list with spoofed scanner bans pushes out only
//! bans that are about to end anyway; the scanner drop itself does not depend on the list).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use crate::time::Millis;

/// Why a source was banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BanReason {
    /// More than `[protect] max_requests_per_sec` (Kamailio's pike).
    Density,
    /// A User-Agent of `[protect] scanner_user_agents`.
    Scanner,
    /// `[protect] auth_failures_max` wrong digest answers from this source.
    Guessing,
    /// One of the sources of `[protect] user_auth_failures_max` wrong answers for one user.
    UserGuessing,
    /// Banned by the operator or by another shard (through the shell).
    External,
}

impl BanReason {
    /// A label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            BanReason::Density => "density",
            BanReason::Scanner => "scanner",
            BanReason::Guessing => "guessing",
            BanReason::UserGuessing => "user_guessing",
            BanReason::External => "external",
        }
    }
}

/// A seeded multiply-xorshift hash of the u128 keys (the core draws no randomness of its own,
/// so std's `RandomState` is not used).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyHash(u64);

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.0)
    }
}

/// See [`KeyHash`].
#[derive(Debug)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..c.len()].copy_from_slice(c);
            self.0 = (self.0 ^ u64::from_le_bytes(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            self.0 ^= self.0 >> 29;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Ban {
    until: Millis,
    reason: BanReason,
}

/// Banned sources (keys of [`super::table::ip_key`]).
#[derive(Debug)]
pub(crate) struct BanList {
    map: HashMap<u128, Ban, KeyHash>,
    cap: usize,
}

impl BanList {
    pub(crate) fn new(cap: usize, seed: u64) -> BanList {
        BanList {
            map: HashMap::with_hasher(KeyHash(seed ^ 0x6a09_e667_f3bc_c908)),
            cap: cap.max(1),
        }
    }

    /// Why `key` is banned at `now`, if it is; an expired ban is forgotten here.
    #[inline]
    pub(crate) fn check(&mut self, key: u128, now: Millis) -> Option<BanReason> {
        if self.map.is_empty() {
            return None;
        }
        let ban = *self.map.get(&key)?;
        if ban.until > now {
            return Some(ban.reason);
        }
        self.map.remove(&key);
        None
    }

    /// Bans `key` until `until` (a later end of an existing ban wins). False: it already
    /// was banned at least that long.
    pub(crate) fn insert(
        &mut self,
        key: u128,
        until: Millis,
        reason: BanReason,
        now: Millis,
    ) -> bool {
        if let Some(b) = self.map.get_mut(&key) {
            if b.until >= until {
                return false;
            }
            b.until = until;
            return true;
        }
        if self.map.len() >= self.cap {
            self.map.retain(|_, b| b.until > now);
        }
        if self.map.len() >= self.cap {
            // A small sample, not a scan of the whole list: bounded work per ban.
            let victim = self
                .map
                .iter()
                .take(16)
                .min_by_key(|(_, b)| b.until)
                .map(|(k, _)| *k);
            if let Some(k) = victim {
                self.map.remove(&k);
            }
        }
        self.map.insert(key, Ban { until, reason });
        true
    }

    /// Lifts the ban of `key`. True when there was one.
    pub(crate) fn remove(&mut self, key: u128) -> bool {
        self.map.remove(&key).is_some()
    }

    /// Lifts every ban.
    pub(crate) fn clear(&mut self) {
        self.map.clear();
    }

    /// Bans held (some possibly expired, not yet looked at).
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_cap_and_removal() {
        let mut b = BanList::new(4, 1);
        assert_eq!(b.check(1, Millis(0)), None);
        assert!(b.insert(1, Millis(1000), BanReason::Density, Millis(0)));
        assert_eq!(b.check(1, Millis(999)), Some(BanReason::Density));
        assert_eq!(b.check(1, Millis(1000)), None);
        assert_eq!(b.len(), 0);
        for k in 10..100u128 {
            b.insert(k, Millis(5000 + k as u64), BanReason::Scanner, Millis(0));
            assert!(b.len() <= 4);
        }
        assert_eq!(b.check(99, Millis(0)), Some(BanReason::Scanner));
        assert!(b.remove(99));
        assert_eq!(b.check(99, Millis(0)), None);
    }
}
