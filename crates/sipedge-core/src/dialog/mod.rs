//! Dialog tracking for limits (issue 16; what Kamailio's `dialog` module does for them): a
//! call holds its [`Charge`] from the admitted INVITE until its final non-2xx (CANCEL ends
//! it with 487), its BYE, an end lost to the in-dialog keepalives ([`keepalive`]), or
//! `[dialogs] max_duration_secs` — the last two end it with a BYE to both ends ([`end`]).
//!
//! | phase | owner | ends when |
//! | --- | --- | --- |
//! | INVITE admitted, no final response yet | the shard of the INVITE's cell (`pending`, by cell index) | final non-2xx sent upstream, or the cell is freed without a 2xx |
//! | first 2xx forwarded | the dialog's owner shard: `key % shards`, `key` = MAC(Call-ID, the two tags in byte order) — computable from the BYE of either end on any shard | BYE from either end (the first one; a retransmission or the other end's BYE finds nothing), an end silent or 481 to the keepalives, max duration |
//!
//! A dialog changes owner once, over the mesh ([`DialogMsg::Open`]); a BYE landing on
//! another shard sends [`DialogMsg::End`] to the owner. The charge is a value released by
//! `Drop`, so it is given back exactly once whoever drops it — a mesh message the shell
//! could not queue included (the call then goes on untracked, counted).
//!
//! Not kept across a restart: the table is memory only (README "What a restart forgets").
//!
//! **Shape** (issue 14): a subsystem. The dispatcher owns [`Dialogs`] and lends it with the
//! sink as a [`DialogCx`]; the relay (`proxy`) is lent it too and calls the hooks of
//! `calls` (admission in `admit`, the 2xx, the non-2xx final, the BYE) with the cell it
//! works on. This module names no `proxy`, and no `core`.

mod admit;
mod calls;
pub(crate) mod end;
pub(crate) mod ends;
pub(crate) mod keepalive;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::limits::Charge;
use crate::time::Millis;

pub use crate::config::dialogs::{
    DialogConfig, DEFAULT_KEEPALIVE_SECS, DEFAULT_MAX_DIALOGS, DEFAULT_MAX_DURATION_SECS,
};
pub use crate::shard::DialogMsg;
pub use crate::stats::DialogStats;

/// The dialog subsystem lent the sink: what the relay's hooks, the mesh and the clock call.
pub(crate) struct DialogCx<'a> {
    pub(crate) io: &'a mut crate::io::Io,
    pub(crate) dialogs: &'a mut Dialogs,
}

/// Keys are MAC outputs or cell indices, not attacker-plannable: one multiply spreads them.
#[derive(Default)]
pub(crate) struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)) ^ (self.0 >> 56);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

/// A confirmed call.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Held for its `Drop`: removing the entry releases the call's channels.
    #[allow(dead_code)]
    pub(crate) charge: Charge,
    pub(crate) created: Millis,
    /// Flows, URIs, tags and keepalive state for requests of our own ([`ends`]); `None`
    /// when neither keepalives nor a max duration are configured (nothing to send).
    pub(crate) ends: Option<Box<[u8]>>,
}

/// One shard's dialogs: INVITEs in progress with a charge, and confirmed calls it owns.
#[derive(Debug, Default)]
pub(crate) struct Dialogs {
    pending: Map<u32, Charge>,
    table: Map<u64, Entry>,
    /// Confirmed calls in creation order, for the max duration (stale keys skipped).
    order: VecDeque<(u64, Millis)>,
    /// Keepalive rounds due ([`keepalive`]).
    ka_due: VecDeque<(u64, Millis)>,
    /// Keepalive checks due, 32·T1 apart ([`keepalive`]).
    ka_check: VecDeque<(u64, Millis)>,
    pub stats: DialogStats,
}

impl Dialogs {
    /// Calls this shard holds (pending + confirmed).
    pub(crate) fn len(&self) -> usize {
        self.pending.len() + self.table.len()
    }

    /// Confirmed calls owned here.
    pub(crate) fn confirmed(&self) -> usize {
        self.table.len()
    }

    /// The INVITE of cell `idx` holds `charge` until its final response.
    pub(crate) fn hold(&mut self, idx: u32, charge: Charge) {
        self.pending.insert(idx, charge);
    }

    /// The charge of cell `idx`'s INVITE, taken out (its 2xx came).
    pub(crate) fn take_pending(&mut self, idx: u32) -> Option<Charge> {
        self.pending.remove(&idx)
    }

    /// The call of cell `idx` ended without a 2xx: its charge is released.
    pub(crate) fn fail(&mut self, idx: u32) {
        self.pending.remove(&idx);
    }

    /// A confirmed call: tracked unless the table holds `cap` already (then released).
    /// False when it was not tracked as a new entry (table full, or a repeated 2xx).
    pub(crate) fn open(
        &mut self,
        key: u64,
        (charge, ends): (Charge, Option<Box<[u8]>>),
        now: Millis,
        cap: usize,
        timed: bool,
    ) -> bool {
        if self.table.contains_key(&key) {
            // A second 2xx for the same dialog (a retransmission) keeps the first entry.
            return false;
        }
        if self.table.len() >= cap {
            self.stats.untracked += 1;
            return false;
        }
        self.stats.opened += 1;
        if timed {
            self.order.push_back((key, now));
            if self.order.len() > 2 * self.table.len() + 1024 {
                let table = &self.table;
                self.order
                    .retain(|(k, at)| table.get(k).is_some_and(|e| e.created == *at));
            }
        }
        self.table.insert(
            key,
            Entry {
                charge,
                created: now,
                ends,
            },
        );
        true
    }

    /// BYE: the dialog `key` ends (its charge released); false when there was none.
    pub(crate) fn end(&mut self, key: u64) -> bool {
        let found = self.table.remove(&key).is_some();
        if found {
            self.stats.ended_bye += 1;
        } else {
            self.stats.bye_unknown += 1;
        }
        found
    }

    /// Ends every confirmed call older than `max_ms` at `now`; the ended entries are
    /// pushed on `ended` (their charges released when the caller drops them).
    pub(crate) fn expire(&mut self, now: Millis, max_ms: u64, ended: &mut Vec<(u64, Entry)>) {
        while let Some(&(key, at)) = self.order.front() {
            if at.plus(max_ms) > now {
                break;
            }
            self.order.pop_front();
            if self.table.get(&key).is_some_and(|e| e.created == at) {
                if let Some(e) = self.table.remove(&key) {
                    ended.push((key, e));
                }
                self.stats.expired += 1;
            }
        }
    }

    /// When the oldest confirmed call reaches `max_ms`.
    pub(crate) fn next_expiry(&self, max_ms: u64) -> Option<Millis> {
        self.order.front().map(|&(_, at)| at.plus(max_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialog_entry_fits_the_budget() {
        // Issue 16 Must-reach: ≤ 400 bytes per tracked dialog with keepalives on. One
        // dialog: its map slot (key + entry + 1 control byte) at the worst load, 7/16 just
        // after the table grows; its keepalive and max-duration queue slots, each at the
        // worst a doubled VecDeque's 2 × 16 bytes; and its ends block (mimalloc's size
        // class) for a call of typical field sizes whose Contacts are their flows.
        // Counters are per key, not per call (a `Charge` names them by index).
        assert!(
            std::mem::size_of::<crate::limits::Charge>() <= 32,
            "{}",
            std::mem::size_of::<crate::limits::Charge>()
        );
        assert!(
            std::mem::size_of::<Entry>() <= 56,
            "{}",
            std::mem::size_of::<Entry>()
        );
        let slot = std::mem::size_of::<(u64, Entry)>() + 1;
        let map = slot * 16 / 7;
        let queue = 2 * std::mem::size_of::<(u64, Millis)>();
        let flow = |s: &str| crate::output::Flow {
            local: crate::output::LocalId(0),
            addr: s.parse().unwrap_or_else(|_| unreachable!()),
        };
        let fields: [&[u8]; ends::FIELDS] = [
            b"0000000000035b9fb2e4@10.20.0.5",
            b"35b9f9c1",
            b"b0b",
            b"sip:alice219999@sip.example.com",
            b"sip:bob@sip.example.com",
            b"sip:alice219999@10.20.3.90:5150",
            b"sip:bob@198.51.100.10:5062",
            b"",
            b"",
        ];
        let block = ends::pack(
            flow("10.20.3.90:5150"),
            flow("198.51.100.10:5062"),
            1,
            &fields,
        )
        .unwrap_or_else(|| unreachable!());
        // 146 bytes: mimalloc's 160-byte size class (189 / 192 with the targets whole).
        assert!(block.len() <= 160, "{} bytes of ends", block.len());
        let with_ends = map + 2 * queue + 160;
        assert!(
            with_ends <= 400,
            "{with_ends} bytes per dialog with its ends ({map} map, {} queues)",
            2 * queue
        );
    }

    #[test]
    fn end_is_once_and_expiry_skips_ended_calls() {
        let mut d = Dialogs::default();
        d.open(1, (Charge::default(), None), Millis(0), 10, true);
        d.open(2, (Charge::default(), None), Millis(5), 10, true);
        assert!(d.end(1));
        assert!(!d.end(1), "a retransmitted BYE finds nothing");
        assert_eq!(d.next_expiry(100), Some(Millis(100)));
        let mut ended = Vec::new();
        d.expire(Millis(104), 100, &mut ended);
        assert_eq!(d.confirmed(), 1);
        d.expire(Millis(105), 100, &mut ended);
        assert_eq!(ended.len(), 1);
        assert_eq!(d.confirmed(), 0);
        assert_eq!(d.stats.expired, 1);
        d.open(3, (Charge::default(), None), Millis(5), 0, false);
        assert_eq!(d.stats.untracked, 1, "a full table tracks nothing more");
    }
}
