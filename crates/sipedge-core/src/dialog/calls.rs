//! Where dialog tracking meets the relay, the mesh and the clock: the INVITE's final
//! response, the BYE, a dialog changing owner, the max duration. Each hook is a line or two
//! in the relay (`proxy`), which lends the INVITE's cell.

use sipedge_msg::{Message, Validated};

use super::{DialogCx, Dialogs};
use crate::config::dialogs::DialogConfig;
use crate::limits::Charge;
use crate::shard::{DialogMsg, ShardId, ShardMsg};
use crate::time::Millis;
use crate::txn::table::Cell;

impl DialogCx<'_> {
    /// The dialog key: MAC of the Call-ID and both tags in byte order, so the caller's and
    /// the callee's requests (From/To swapped) give the same key on every shard.
    pub(crate) fn key(&self, call_id: &[u8], a: &[u8], b: &[u8]) -> u64 {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        self.io
            .mac
            .digest(crate::secret::Purpose::Dialog, &[call_id, lo, hi])
    }

    pub(crate) fn owner(&self, key: u64) -> ShardId {
        ShardId((key % u64::from(self.io.cfg.shards.max(1))) as u16)
    }

    /// The first 2xx (from branch `b`) of cell `idx`'s INVITE went upstream: the call is
    /// confirmed and its charge — with its ends when keepalives or a max duration need
    /// them — moves to the dialog's owner shard.
    pub(crate) fn confirmed(
        &mut self,
        now: Millis,
        (idx, cell, b): (u32, &Cell, usize),
        (msg, v): (&Message<'_>, &Validated<'_>),
    ) {
        let Some(charge) = self.dialogs.take_pending(idx) else {
            return;
        };
        let d = self.io.cfg.dialogs;
        let ends = if d.keepalive_secs > 0 || d.max_duration_secs > 0 {
            self.ends(cell, b, (msg, v))
        } else {
            None
        };
        let from = v.from.tag().unwrap_or_default();
        let to = v.to.tag().unwrap_or_default();
        let key = self.key(v.call_id, from, to);
        let owner = self.owner(key);
        if owner == self.io.cfg.shard {
            self.open(now, key, charge, ends);
        } else {
            self.dialogs.stats.handed_off += 1;
            self.io.shard_out.push_back((
                owner,
                ShardMsg::Dialog(DialogMsg::Open { key, charge, ends }),
            ));
        }
    }

    fn open(&mut self, now: Millis, key: u64, charge: Charge, ends: Option<Box<[u8]>>) {
        let cap = self.io.cfg.dialogs.max_dialogs;
        let timed = self.io.cfg.dialogs.max_duration_secs > 0;
        let pinged = ends.is_some() && self.io.cfg.dialogs.keepalive_secs > 0;
        if self.dialogs.open(key, (charge, ends), now, cap, timed) && pinged {
            let period = u64::from(self.io.cfg.dialogs.keepalive_secs) * 1000;
            self.dialogs.schedule_keepalive(key, now, period);
        }
    }

    /// A BYE (RFC 3261 §15.1.2) inside a dialog of ours, from either end: the call's
    /// channels are released at once (the first BYE; the rest find nothing).
    pub(crate) fn bye(&mut self, req: &Validated<'_>) {
        let from = req.from.tag().unwrap_or_default();
        let to = req.to.tag().unwrap_or_default();
        let key = self.key(req.call_id, from, to);
        let owner = self.owner(key);
        if owner == self.io.cfg.shard {
            self.dialogs.end(key);
        } else {
            self.dialogs.stats.handed_off += 1;
            self.io
                .shard_out
                .push_back((owner, ShardMsg::Dialog(DialogMsg::End { key })));
        }
    }

    /// A dialog message from another shard.
    pub(crate) fn shard_msg(&mut self, now: Millis, msg: DialogMsg) {
        match msg {
            DialogMsg::Open { key, charge, ends } => self.open(now, key, charge, ends),
            DialogMsg::End { key } => {
                self.dialogs.end(key);
            }
            DialogMsg::Alive {
                key,
                b_side,
                sent,
                code,
            } => {
                use super::ends::Side;
                let side = if b_side { Side::B } else { Side::A };
                self.answered(now, key, side, sent, code);
            }
        }
    }

    /// `[dialogs] max_duration_secs`: confirmed calls that reached it are ended (a BYE to
    /// both ends, [`super::end`]) and their channels released; then the in-dialog
    /// keepalives due ([`super::keepalive`]).
    pub(crate) fn timeout(&mut self, now: Millis) {
        let max = self.io.cfg.dialogs.max_duration_secs;
        if max > 0 {
            let mut ended = Vec::new();
            self.dialogs.expire(now, u64::from(max) * 1000, &mut ended);
            for (key, entry) in ended {
                self.bye_ends(now, key, &entry, super::end::Cause::MaxDuration);
            }
        }
        self.keepalive_timeout(now);
    }
}

impl Dialogs {
    /// When the next call reaches its maximum duration, or the next keepalive event.
    pub(crate) fn poll_timeout(&self, cfg: &DialogConfig) -> Option<Millis> {
        let max = cfg.max_duration_secs;
        let expiry = (max > 0)
            .then(|| self.next_expiry(u64::from(max) * 1000))
            .flatten();
        match (expiry, self.next_keepalive()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Calls this shard tracks: INVITEs in progress holding channels, and confirmed calls
    /// it owns.
    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.len() - self.confirmed(), self.confirmed())
    }
}
