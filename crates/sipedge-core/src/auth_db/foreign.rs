//! Nonce-counts of nonces another edge issued (issue 20 item 6; `nonce`, "Across edges"):
//! RFC 7616 §3.4 asks the server to check that `nc` grows; the issuer's window cannot be
//! asked from here, so the edge that receives a foreign nonce remembers it itself.
//!
//! A fixed table, 4-way set-associative, keyed by the nonce's identity (node, epoch,
//! issuing shard, counter) with its issue time and the highest `nc` seen. An entry stays
//! until its nonce has expired (`nonce_ttl_secs`): before that it is never evicted, so a
//! (nonce, nc) once seen is refused for as long as the nonce itself would verify. A set
//! whose four entries all hold live nonces refuses the newcomer ([`ForeignVerdict::Full`]:
//! a `stale` challenge with a local nonce — one more round trip, never a replay).

use super::nonce::{nonce_age_ms, NonceInfo};

/// Ways per set.
const WAYS: usize = 4;

/// One remembered foreign nonce.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// `instance << 48 | shard << 32 | counter` hashed to 64 bits with the instance; 0 =
    /// empty.
    key: u64,
    issued_ms: u64,
    nc: u32,
}

/// What the table says about a foreign (nonce, nc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForeignVerdict {
    /// A higher nonce-count than any seen here for this nonce: accepted and remembered.
    Fresh,
    /// Seen here with this nonce-count or a higher one: a replay.
    Replayed,
    /// No room for it until older nonces expire: challenge again (stale).
    Full,
}

/// The table (per shard; only allocated with the cluster on).
#[derive(Debug)]
pub(crate) struct ForeignNc {
    sets: Vec<[Entry; WAYS]>,
}

/// The identity of a nonce as one 64-bit key (never 0).
fn key_of(info: &NonceInfo) -> u64 {
    let hi = u64::from(info.instance) << 32 | u64::from(info.shard) << 16;
    let mut k = (hi ^ u64::from(info.counter)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    k ^= u64::from(info.instance).rotate_left(7) ^ u64::from(info.counter) << 40;
    k ^= k >> 29;
    k.max(1)
}

impl ForeignNc {
    /// A table for about `entries` nonces (rounded up to a power of two of sets; 0: none,
    /// every foreign nonce is [`ForeignVerdict::Full`]).
    pub(crate) fn new(entries: usize) -> ForeignNc {
        let sets = if entries == 0 {
            0
        } else {
            entries.div_ceil(WAYS).next_power_of_two()
        };
        ForeignNc {
            sets: vec![[Entry::default(); WAYS]; sets],
        }
    }

    /// Records `nc` for the foreign nonce `info` at `now_ms` (the clock nonces are issued
    /// on); entries older than `ttl_ms` are free.
    pub(crate) fn check(
        &mut self,
        info: &NonceInfo,
        nc: u32,
        now_ms: u64,
        ttl_ms: u64,
    ) -> ForeignVerdict {
        if self.sets.is_empty() {
            return ForeignVerdict::Full;
        }
        let key = key_of(info);
        let mask = self.sets.len() - 1;
        let set = &mut self.sets[(key as usize) & mask];
        if let Some(e) = set.iter_mut().find(|e| e.key == key) {
            if nc <= e.nc {
                return ForeignVerdict::Replayed;
            }
            e.nc = nc;
            return ForeignVerdict::Fresh;
        }
        let free = set
            .iter_mut()
            .find(|e| e.key == 0 || nonce_age_ms(e.issued_ms, now_ms) > ttl_ms);
        match free {
            Some(e) => {
                *e = Entry {
                    key,
                    issued_ms: info.issued_ms,
                    nc,
                };
                ForeignVerdict::Fresh
            }
            None => ForeignVerdict::Full,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(counter: u32) -> NonceInfo {
        NonceInfo {
            instance: 0xA_0001,
            shard: 0,
            counter,
            issued_ms: 1_000,
            algorithms: 3,
            foreign: true,
        }
    }

    #[test]
    fn counts_grow_replays_are_refused_and_a_full_set_refuses() {
        let mut t = ForeignNc::new(4); // one set of four
        assert_eq!(t.check(&info(1), 1, 1_000, 30_000), ForeignVerdict::Fresh);
        assert_eq!(
            t.check(&info(1), 1, 1_001, 30_000),
            ForeignVerdict::Replayed
        );
        assert_eq!(t.check(&info(1), 2, 1_002, 30_000), ForeignVerdict::Fresh);
        for c in 2..5 {
            assert_eq!(t.check(&info(c), 1, 1_003, 30_000), ForeignVerdict::Fresh);
        }
        assert_eq!(t.check(&info(9), 1, 1_004, 30_000), ForeignVerdict::Full);
        // Once the nonces have expired their entries are free again.
        assert_eq!(t.check(&info(9), 1, 40_000, 30_000), ForeignVerdict::Fresh);
        assert_eq!(
            ForeignNc::new(0).check(&info(1), 1, 0, 1),
            ForeignVerdict::Full
        );
    }
}
