//! A fixed-size, set-associative table keyed by source address (or user hash): the per-source
//! and per-user state of the protection rules. Its size never changes after start; when the
//! set a new key hashes to is full, the lightest entry goes (ties: the one seen longest ago),
//! so a spoofed flood of one-packet sources evicts only other light sources and the heavy
//! ones — the sources a rule is about to ban — stay.

use std::net::IpAddr;

/// Entries per set.
const WAYS: usize = 4;

/// A source address as a table key: IPv4 (and IPv4-mapped IPv6) as `::ffff:a.b.c.d`, so one
/// host is one key whatever socket family it arrived on. 0 is never a valid key (`::` is
/// not a source address), so it marks a free slot.
pub fn ip_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The address of a key made by [`ip_key`].
pub(crate) fn key_ip(key: u128) -> IpAddr {
    std::net::Ipv6Addr::from(key).to_canonical()
}

/// What an entry exposes for eviction.
pub(crate) trait Weighed: Copy + Default {
    /// How much the entry has seen lately (the lightest is evicted first).
    fn weight(&self) -> u32;
    /// When it was last touched (ms).
    fn last(&self) -> u64;
}

/// The table: `sets × WAYS` slots, keyed by a seeded hash of the key.
#[derive(Debug)]
pub(crate) struct FixedTable<V> {
    keys: Vec<u128>,
    vals: Vec<V>,
    mask: usize,
    k0: u64,
    k1: u64,
    /// Entries pushed out to make room (counted by the caller's stats).
    pub(crate) evicted: u64,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

impl<V: Weighed> FixedTable<V> {
    /// A table of at least `capacity` slots (rounded up to a power of two, at least one set).
    pub(crate) fn new(capacity: usize, seed: u64) -> FixedTable<V> {
        let sets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        let slots = sets.saturating_mul(WAYS);
        FixedTable {
            keys: vec![0; slots],
            vals: vec![V::default(); slots],
            mask: sets - 1,
            k0: mix(seed ^ 0x243f_6a88_85a3_08d3) | 1,
            k1: mix(seed.rotate_left(29) ^ 0x1319_8a2e_0370_7344),
            evicted: 0,
        }
    }

    fn set_of(&self, key: u128) -> usize {
        let h = mix((key as u64) ^ self.k1).wrapping_mul(self.k0)
            ^ mix(((key >> 64) as u64).wrapping_add(self.k0));
        (mix(h) as usize & self.mask) * WAYS
    }

    /// The entry of `key`, if tracked.
    pub(crate) fn get_mut(&mut self, key: u128) -> Option<&mut V> {
        let base = self.set_of(key);
        let i = (base..base + WAYS).find(|&i| self.keys[i] == key)?;
        Some(&mut self.vals[i])
    }

    /// The entry of `key`, created (default value) when absent — evicting the lightest,
    /// then oldest, entry of its set when the set is full.
    pub(crate) fn entry(&mut self, key: u128) -> &mut V {
        let base = self.set_of(key);
        let mut victim = base;
        for i in base..base + WAYS {
            if self.keys[i] == key {
                return &mut self.vals[i];
            }
            if self.keys[i] == 0 {
                victim = i;
                break;
            }
            let (v, w) = (&self.vals[victim], &self.vals[i]);
            if (w.weight(), w.last()) < (v.weight(), v.last()) {
                victim = i;
            }
        }
        if self.keys[victim] != 0 {
            self.evicted = self.evicted.saturating_add(1);
        }
        self.keys[victim] = key;
        self.vals[victim] = V::default();
        &mut self.vals[victim]
    }

    /// Slots (the cap).
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, Default)]
    struct W(u32, u64);
    impl Weighed for W {
        fn weight(&self) -> u32 {
            self.0
        }
        fn last(&self) -> u64 {
            self.1
        }
    }

    #[test]
    fn bounded_and_keeps_the_heavy() {
        let mut t: FixedTable<W> = FixedTable::new(64, 7);
        assert_eq!(t.capacity(), 64);
        let heavy = ip_key("192.0.2.1".parse().unwrap_or_else(|_| unreachable!()));
        *t.entry(heavy) = W(1000, 0);
        for i in 0..100_000u32 {
            let k = ip_key(IpAddr::V4(i.into()));
            if k == heavy {
                continue;
            }
            *t.entry(k) = W(1, u64::from(i));
        }
        assert_eq!(t.get_mut(heavy).map(|w| w.0), Some(1000));
        assert!(t.evicted > 90_000);
        assert_eq!(t.keys.len(), 64);
    }

    #[test]
    fn v4_and_mapped_are_one_key() {
        let a: IpAddr = "198.51.100.7".parse().unwrap_or_else(|_| unreachable!());
        let b: IpAddr = "::ffff:198.51.100.7"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert_eq!(ip_key(a), ip_key(b));
        assert_eq!(key_ip(ip_key(b)), a);
    }
}
