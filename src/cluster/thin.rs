//! Refresh thinning for the write-behind (each shard's `ShardTee`, before the copy into the
//! writer's queue): a re-REGISTER that changes nothing but its CSeq
//! and expiry is written to Redis only when the copy there would otherwise have less than
//! half of the new lifetime left. A phone refreshing once per interval is written every
//! time; a refresh storm (a phone refreshing every second, a benchmark) is written about
//! twice per interval instead of once per request — the shards' own tables stay exact,
//! Redis is only what other edges read, and a binding there never expires before it does
//! here. Cleared on every resync (Redis may have lost what it held).
//!
//! A change that created the binding (the core journals it as such, record kind 3) is
//! written without a look-up and is not remembered: a new binding has nothing to thin, and
//! the look-up (a keyed hash and a cache miss in a map of millions) was the thinner's whole
//! cost on a registration storm. The trade-off: the first refresh of every binding finds
//! nothing remembered and is written (then remembered), one more Redis write per binding
//! than before (a phone refreshing once per interval is written every time anyway). A
//! stale entry a creation leaves in place (the binding expired here, which is not
//! journalled) holds an expiry already past, so it never thins the next refresh.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

use sipedge_core::BindingChange;

/// Bindings remembered at most; past it the table starts over (everything is written once).
pub const THIN_CAP: usize = 4_000_000;

/// What was last written per binding: (expiry, Unix seconds; hash of everything but CSeq,
/// times and expiry).
#[derive(Debug, Default)]
pub struct Thinner {
    /// Keyed by the binding's keyed hash (SipHash with this table's random key), which the
    /// map takes as it is ([`Prehashed`]): one hash per change, not two.
    written: HashMap<u64, (u32, u32), BuildHasherDefault<Prehashed>>,
    hasher: std::collections::hash_map::RandomState,
}

/// A `Hasher` for keys that already are keyed hashes (a peer cannot aim at buckets
/// without the random key).
#[derive(Debug, Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by a `u64` key; anything else is folded in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

impl Thinner {
    /// True when `change` must be written; remembers what is written.
    pub fn must_write(&mut self, change: &BindingChange<'_>, now_unix_ms: u64) -> bool {
        match *change {
            BindingChange::Upsert {
                aor,
                contact,
                instance,
                reg_id,
                path,
                q,
                expires_unix_ms,
                source,
                call_id,
                created,
                ..
            } => {
                if created {
                    return true;
                }
                // One keyed SipHash pass: the binding's identity is the key; the state
                // carried on over what a refresh may change gives the content's hash.
                let mut h = self.hasher.build_hasher();
                (aor, contact, instance, reg_id).hash(&mut h);
                let key = h.finish();
                (path, q, source, call_id).hash(&mut h);
                let content = h.finish() as u32;
                let expires = u32::try_from(expires_unix_ms / 1000).unwrap_or(u32::MAX);
                let now = u32::try_from(now_unix_ms / 1000).unwrap_or(u32::MAX);
                let half_life = expires.saturating_sub(now) / 2;
                if self.written.len() >= THIN_CAP && !self.written.contains_key(&key) {
                    self.written.clear();
                }
                // One probe: a new binding (nothing to thin) is a plain insert.
                match self.written.entry(key) {
                    Entry::Occupied(mut o) => {
                        let (stored, c) = *o.get();
                        if c == content && stored >= now.saturating_add(half_life) {
                            return false;
                        }
                        o.insert((expires, content));
                    }
                    Entry::Vacant(v) => {
                        v.insert((expires, content));
                    }
                }
                true
            }
            BindingChange::Remove {
                aor,
                contact,
                instance,
                reg_id,
                ..
            } => {
                let key = self.hash(&(aor, contact, instance, reg_id));
                self.written.remove(&key);
                true
            }
        }
    }

    /// Forget everything: the next change of every binding is written.
    pub fn clear(&mut self) {
        self.written.clear();
    }

    fn hash<T: Hash>(&self, v: &T) -> u64 {
        self.hasher.hash_one(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(cseq: u32, now_s: u64, source: &str) -> BindingChange<'static> {
        change(cseq, now_s, source, false)
    }

    fn change(cseq: u32, now_s: u64, source: &str, created: bool) -> BindingChange<'static> {
        BindingChange::Upsert {
            aor: b"sip:alice@edge.test",
            contact: b"sip:alice@198.18.0.7:5060",
            instance: b"",
            reg_id: 0,
            path: b"",
            call_id: b"c1",
            cseq,
            q: None,
            expires_unix_ms: (now_s + 3600) * 1000,
            registered_unix_ms: now_s * 1000,
            source: source.parse().unwrap_or_else(|e| panic!("{e}")),
            created,
        }
    }

    #[test]
    fn a_creation_is_written_without_being_remembered_and_later_refreshes_are_thinned() {
        let mut t = Thinner::default();
        let t0 = 1_800_000_000u64;
        let ms = |s: u64| s * 1000;
        // A registration storm: every first write is written, and nothing is looked up or
        // remembered for it.
        for i in 0..1000u64 {
            let src = format!("198.18.{}.{}:5060", i / 256, i % 256);
            assert!(t.must_write(&change(1, t0, &src, true), ms(t0)), "new");
        }
        assert!(t.written.is_empty(), "creations are not remembered");
        // The first refresh (nothing remembered) is written; a refresh within the window
        // after it is thinned; past half the lifetime, written again.
        assert!(t.must_write(&up(2, t0 + 1, "198.18.0.7:5060"), ms(t0 + 1)));
        assert!(!t.must_write(&up(3, t0 + 2, "198.18.0.7:5060"), ms(t0 + 2)));
        assert!(t.must_write(&up(4, t0 + 1802, "198.18.0.7:5060"), ms(t0 + 1802)));
        // Created again (after a removal, or an expiry that left the entry): written.
        assert!(t.must_write(
            &change(5, t0 + 1803, "198.18.0.7:5060", true),
            ms(t0 + 1803)
        ));
    }

    #[test]
    fn a_refresh_storm_is_thinned_and_a_timely_refresh_or_a_change_is_written() {
        let mut t = Thinner::default();
        let t0 = 1_800_000_000u64;
        let ms = |s: u64| s * 1000;
        assert!(t.must_write(&up(1, t0, "198.18.0.7:5060"), ms(t0)), "new");
        // Refreshed every second: Redis's copy still has ~an hour left.
        for i in 1..100 {
            assert!(!t.must_write(&up(1 + i as u32, t0 + i, "198.18.0.7:5060"), ms(t0 + i)));
        }
        // Past half the lifetime of what was written: written again.
        assert!(t.must_write(&up(200, t0 + 1801, "198.18.0.7:5060"), ms(t0 + 1801)));
        // The NAT address moved: written at once.
        assert!(t.must_write(&up(201, t0 + 1802, "198.18.0.9:4000"), ms(t0 + 1802)));
        // Removed, then registered again: both written.
        let rm = BindingChange::Remove {
            aor: b"sip:alice@edge.test",
            contact: b"sip:alice@198.18.0.7:5060",
            instance: b"",
            reg_id: 0,
        };
        assert!(t.must_write(&rm, ms(t0 + 1803)));
        assert!(t.must_write(&up(202, t0 + 1804, "198.18.0.9:4000"), ms(t0 + 1804)));
        // A resync clears it: the next refresh is written.
        t.clear();
        assert!(t.must_write(&up(203, t0 + 1805, "198.18.0.9:4000"), ms(t0 + 1805)));
    }
}
