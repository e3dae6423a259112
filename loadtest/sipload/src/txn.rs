//! Client transactions in flight, and how a reply finds its request.
//!
//! Every request gets a slot in a slab and a [`TxnKey`] (slot + generation). The key is written
//! into the top Via branch (after the RFC 3261 `z9hG4bK` cookie, §8.1.1.7), so a reply is
//! matched by decoding its top Via branch — O(1), no hash map, no allocation — and a late or
//! duplicate reply (its slot since reused) fails the generation check instead of matching the
//! wrong request. A slot keeps the request's bytes for retransmission and its buffer keeps its
//! capacity when the slot is reused.

use std::fmt::Write as _;
use std::time::Instant;

/// The magic cookie every RFC 3261 branch starts with (§8.1.1.7), then our own marker.
const BRANCH_PREFIX: &str = "z9hG4bKsl";

/// Identifies one transaction: slab slot and the slot's generation when it was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TxnKey {
    pub(crate) slot: u32,
    pub(crate) gen: u32,
}

impl TxnKey {
    /// Appends the Via branch for this key: `z9hG4bKsl<slot hex>.<gen hex>`.
    pub(crate) fn write_branch(self, out: &mut String) {
        out.push_str(BRANCH_PREFIX);
        // Writing into a String cannot fail.
        let _ = write!(out, "{:x}.{:x}", self.slot, self.gen);
    }

    /// The key a branch carries, if it is one of ours.
    pub(crate) fn from_branch(branch: &[u8]) -> Option<TxnKey> {
        let rest = branch.strip_prefix(BRANCH_PREFIX.as_bytes())?;
        let dot = rest.iter().position(|&b| b == b'.')?;
        Some(TxnKey {
            slot: parse_hex(&rest[..dot])?,
            gen: parse_hex(&rest[dot + 1..])?,
        })
    }
}

fn parse_hex(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &b| {
        let d = (b as char).to_digit(16)?;
        Some(acc << 4 | d)
    })
}

/// One request in flight.
#[derive(Debug)]
pub(crate) struct Txn {
    gen: u32,
    live: bool,
    /// The UA (socket index) that sent it; replies must arrive on the same socket.
    pub(crate) ua: usize,
    /// When the request was first sent: latency is measured from here, as SIPp does.
    pub(crate) first_sent: Instant,
    /// Timer F (64 × T1 for non-INVITE): no final response by then is a timeout.
    pub(crate) deadline: Instant,
    /// Times sent so far (1 = the original).
    pub(crate) sends: u32,
    /// A provisional response arrived (retransmissions go at T2, RFC 3261 §17.1.2.2; an
    /// INVITE stops retransmitting, §17.1.1.2).
    pub(crate) proceeding: bool,
    /// An INVITE client transaction (Timer A is not capped at T2, §17.1.1.2).
    pub(crate) invite: bool,
    /// The request's bytes, resent unchanged on retransmission.
    pub(crate) bytes: Vec<u8>,
}

/// The slab of transactions in flight.
#[derive(Debug, Default)]
pub(crate) struct TxnTable {
    slots: Vec<Txn>,
    free: Vec<u32>,
    live: usize,
}

impl TxnTable {
    /// Takes a free slot (reusing its buffer) for a request first sent at `now`. The caller
    /// writes the request into the returned transaction's `bytes` (empty on return).
    pub(crate) fn start(
        &mut self,
        ua: usize,
        now: Instant,
        deadline: Instant,
    ) -> (TxnKey, &mut Txn) {
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Txn {
                    gen: 0,
                    live: false,
                    ua,
                    first_sent: now,
                    deadline,
                    sends: 0,
                    proceeding: false,
                    invite: false,
                    bytes: Vec::with_capacity(512),
                });
                u32::try_from(self.slots.len() - 1).expect("fewer than 2^32 requests in flight")
            }
        };
        let txn = &mut self.slots[slot as usize];
        txn.live = true;
        txn.ua = ua;
        txn.first_sent = now;
        txn.deadline = deadline;
        txn.sends = 1;
        txn.proceeding = false;
        txn.invite = false;
        txn.bytes.clear();
        self.live += 1;
        (TxnKey { slot, gen: txn.gen }, txn)
    }

    /// The live transaction with this key; `None` for a finished one or a stale key.
    pub(crate) fn get_mut(&mut self, key: TxnKey) -> Option<&mut Txn> {
        self.slots
            .get_mut(key.slot as usize)
            .filter(|t| t.live && t.gen == key.gen)
    }

    /// Ends a transaction (final response, timeout, or abandoned); its key goes stale.
    /// Returns when it was first sent, or `None` when the key was not live.
    pub(crate) fn finish(&mut self, key: TxnKey) -> Option<Instant> {
        let txn = self.get_mut(key)?;
        txn.live = false;
        txn.gen = txn.gen.wrapping_add(1);
        let first = txn.first_sent;
        self.free.push(key.slot);
        self.live -= 1;
        Some(first)
    }

    /// Ends every live transaction; returns how many there were.
    pub(crate) fn abandon_all(&mut self) -> usize {
        let keys: Vec<TxnKey> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, t)| t.live)
            .map(|(i, t)| TxnKey {
                slot: i as u32,
                gen: t.gen,
            })
            .collect();
        for k in &keys {
            self.finish(*k);
        }
        keys.len()
    }

    /// Transactions in flight.
    pub(crate) fn live(&self) -> usize {
        self.live
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn branch_round_trips_and_rejects_foreign_branches() {
        for key in [
            TxnKey { slot: 0, gen: 0 },
            TxnKey {
                slot: 0xdead,
                gen: 7,
            },
            TxnKey {
                slot: u32::MAX,
                gen: u32::MAX,
            },
        ] {
            let mut b = String::new();
            key.write_branch(&mut b);
            assert!(b.starts_with("z9hG4bK"));
            assert_eq!(TxnKey::from_branch(b.as_bytes()), Some(key), "{b}");
        }
        for foreign in [
            &b"z9hG4bK776asdhds"[..],
            b"z9hG4bKsl",
            b"z9hG4bKsl12",
            b"z9hG4bKsl12.",
            b"z9hG4bKsl.3",
            b"z9hG4bKslzz.1",
            b"z9hG4bKsl123456789.1",
            b"",
        ] {
            assert_eq!(TxnKey::from_branch(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn a_reply_matches_only_its_own_live_request() {
        let now = Instant::now();
        let later = now + Duration::from_secs(32);
        let mut t = TxnTable::default();
        let (a, txn) = t.start(3, now, later);
        txn.bytes.extend_from_slice(b"OPTIONS a");
        let (b, _) = t.start(4, now, later);
        assert_ne!(a, b);
        assert_eq!(t.live(), 2);
        assert_eq!(t.get_mut(a).map(|x| x.ua), Some(3));
        assert_eq!(t.finish(a), Some(now));
        // A duplicate reply (to a retransmission) no longer matches.
        assert_eq!(t.finish(a), None);
        assert!(t.get_mut(a).is_none());
        // The slot is reused with a new generation: the old key stays stale.
        let (c, txn) = t.start(5, now, later);
        assert_eq!(c.slot, a.slot);
        assert_ne!(c.gen, a.gen);
        assert!(
            txn.bytes.is_empty(),
            "a reused slot starts with an empty request"
        );
        assert!(txn.bytes.capacity() >= 9, "and keeps its buffer");
        assert!(t.get_mut(a).is_none());
        assert_eq!(t.get_mut(c).map(|x| x.ua), Some(5));
    }

    #[test]
    fn abandon_all_ends_what_is_live() {
        let now = Instant::now();
        let mut t = TxnTable::default();
        let keys: Vec<_> = (0..5).map(|i| t.start(i, now, now).0).collect();
        t.finish(keys[1]);
        assert_eq!(t.abandon_all(), 4);
        assert_eq!(t.live(), 0);
        assert!(keys.iter().all(|k| t.get_mut(*k).is_none()));
    }
}
