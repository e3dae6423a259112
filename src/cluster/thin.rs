//! Refresh thinning for the write-behind (each shard's `ShardTee`, before the copy into the
//! writer's queue): a re-REGISTER that changes nothing but its CSeq
//! and expiry is written to Redis only when the copy there would otherwise have less than
//! half of the new lifetime left. A phone refreshing once per interval is written every
//! time; a refresh storm (a phone refreshing every second, a benchmark) is written about
//! twice per interval instead of once per request — the shards' own tables stay exact,
//! Redis is only what other edges read, and a binding there never expires before it does
//! here. Cleared on every resync (Redis may have lost what it held).

use std::hash::{BuildHasher, Hash, Hasher};

use sipedge_core::BindingChange;

/// Bindings remembered at most; past it the table starts over (everything is written once).
pub const THIN_CAP: usize = 4_000_000;

/// What was last written per binding: (expiry, Unix seconds; hash of everything but CSeq,
/// times and expiry).
#[derive(Debug, Default)]
pub struct Thinner {
    /// Keyed by the binding's keyed hash (SipHash with this table's random key), which the
    /// table takes as it is: one hash per change, not two.
    written: Slots,
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
                ..
            } => {
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
                // One probe, one cache line: a new binding (nothing to thin) is a plain
                // insert.
                let slot = match self.written.find(key) {
                    Ok(i) => {
                        let s = &mut self.written.slots[i];
                        if s.content == content && s.expires >= now.saturating_add(half_life) {
                            return false;
                        }
                        s
                    }
                    Err(i) => self.written.insert_at(i, key),
                };
                slot.expires = expires;
                slot.content = content;
                true
            }
            BindingChange::Remove {
                aor,
                contact,
                instance,
                reg_id,
                ..
            } => {
                let mut h = self.hasher.build_hasher();
                (aor, contact, instance, reg_id).hash(&mut h);
                self.written.remove(h.finish());
                true
            }
        }
    }

    /// Forget everything: the next change of every binding is written.
    pub fn clear(&mut self) {
        self.written = Slots::default();
    }
}

/// What was written of one binding: its key (0: the slot is free), expiry and content hash.
#[derive(Debug, Default, Clone, Copy)]
#[repr(C, align(16))]
struct Slot {
    key: u64,
    expires: u32,
    content: u32,
}

/// The thinner's table: open addressing with linear probing over 16-byte slots, so a probe
/// is one cache line (a `HashMap` reads its control bytes, then the bucket: two cache misses
/// per new binding in a table of millions, most of the thinner's cost, issue 20). Keys are
/// keyed hashes (uniform; a peer cannot aim at slots); key 0 is stored as 1. At most
/// [`THIN_CAP`] keys, at most 3/4 full.
#[derive(Debug, Default)]
struct Slots {
    slots: Vec<Slot>,
    len: usize,
}

impl Slots {
    fn key(key: u64) -> u64 {
        key.max(1)
    }

    /// `Ok(index)` of `key`'s slot, or `Err(index)` of the free slot it would take (the
    /// table then has room for it: grown, or cleared at [`THIN_CAP`]).
    fn find(&mut self, key: u64) -> Result<usize, usize> {
        let key = Self::key(key);
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        match self.probe(key) {
            Err(_) if self.len >= THIN_CAP => {
                self.clear();
                self.probe(key)
            }
            found => found,
        }
    }

    fn probe(&self, key: u64) -> Result<usize, usize> {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = key as usize & mask;
        // Never full (at most 3/4), so a free slot ends every probe.
        loop {
            let s = self.slots[i];
            if s.key == key {
                return Ok(i);
            }
            if s.key == 0 {
                return Err(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Takes free slot `i` (from [`Slots::find`]) for `key`.
    fn insert_at(&mut self, i: usize, key: u64) -> &mut Slot {
        self.len += 1;
        let s = &mut self.slots[i];
        s.key = Self::key(key);
        s
    }

    fn remove(&mut self, key: u64) {
        if self.slots.is_empty() {
            return;
        }
        let Ok(mut hole) = self.probe(Self::key(key)) else {
            return;
        };
        // Backward-shift deletion: later keys of the run move up into the hole when their
        // home slot is not after it (cyclically), so every probe still finds them.
        let mask = self.slots.len() - 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if s.key == 0 {
                break;
            }
            let home = s.key as usize & mask;
            // `home` lies cyclically in (hole, j]: the key stays.
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = Slot::default();
        self.len -= 1;
    }

    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); cap]);
        for s in old.into_iter().filter(|s| s.key != 0) {
            if let Err(i) = self.probe(s.key) {
                self.slots[i] = s;
            }
        }
    }

    fn clear(&mut self) {
        self.slots.fill(Slot::default());
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(cseq: u32, now_s: u64, source: &str) -> BindingChange<'static> {
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
        }
    }

    #[test]
    fn the_table_finds_what_it_holds_through_growth_and_removals() {
        // A model check: random keys (some colliding in their low bits, and key 0) inserted
        // and removed; the table answers as a `HashSet` does.
        let mut t = Slots::default();
        let mut model = std::collections::HashSet::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Few distinct keys, many sharing their low bits: long runs, wrapping ones too.
            let key = (x % 5_000) << 40 | (x % 7) | u64::from(round % 3 == 0) * (x % 2048);
            let key = if round % 997 == 0 { 0 } else { key };
            if x % 3 == 0 {
                t.remove(key);
                model.remove(&Slots::key(key));
            } else {
                match t.find(key) {
                    Ok(_) => assert!(model.contains(&Slots::key(key)), "{key}"),
                    Err(i) => {
                        assert!(!model.contains(&Slots::key(key)), "{key}");
                        t.insert_at(i, key);
                        model.insert(Slots::key(key));
                    }
                }
            }
            assert_eq!(t.len, model.len());
        }
        for &k in &model {
            assert!(t.probe(k).is_ok(), "{k}");
        }
        assert_eq!(t.slots.iter().filter(|s| s.key != 0).count(), model.len());
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
