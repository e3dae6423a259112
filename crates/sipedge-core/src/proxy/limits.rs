//! The relay under load (issue 13): a transaction that does not fit the table's caps is
//! refused with one stateless 503, and a cell that waits for a location lookup on another
//! shard gives up when the answer does not come.
//!
//! | event | rule | what the caller sees |
//! | --- | --- | --- |
//! | `[limits] max_transactions` or `max_transaction_bytes` reached | RFC 3261 §21.5.4: the server is temporarily overloaded; Retry-After (§20.33) says when to come back. Stateless (no cell, no retransmission, no 100 first), so the refusal itself costs no state | one 503 with Retry-After |
//! | no lookup answer within T2 (the mesh dropped the question or the answer) | §21.5.4 again: the edge could not process the request for a temporary internal overload (a full shard-to-shard queue). 480 would claim the callee was reached (§21.4.18), 500 would hide that a retry may succeed; 503 lets an RFC 3263 client try another edge at once | 503 with Retry-After, the cell completes (timer G/H or J) and is freed |
//! | the shell could not queue our lookup at all ([`Core::handle_undelivered`]) | as above, without waiting for the timer | the same 503, at once |

use std::net::SocketAddr;

use sipedge_msg::{Message, Validated};

use crate::output::LocalId;
use crate::proxy::RelayCx;
use crate::refusal::{Refusal, RelayRefusal};
use crate::shard::ShardMsg;
use crate::stateless::Req;
use crate::time::Millis;
use crate::txn::table::Full;
use crate::txn::{timer_key, Timer, GEN_MASK};

/// Seconds in the Retry-After of an overload 503 (RFC 3261 §20.33): long enough for a
/// burst's transactions to end (non-INVITE cells live up to 64·T1 = 32 s, most far less),
/// short enough that a refused phone is back soon.
pub const OVERLOAD_RETRY_AFTER_SECS: u32 = 5;

impl RelayCx<'_> {
    /// Before a new cell: `false` when the table is at a cap — the request has had its one
    /// stateless 503 (RFC 3261 §21.5.4) and is counted.
    pub(crate) fn admit_transaction(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        req: &Validated<'_>,
    ) -> bool {
        let full = match self.relay.txns.has_room(msg.as_bytes().len()) {
            Ok(()) => return true,
            Err(full) => full,
        };
        match full {
            Full::Transactions => self.io.stats.overload.txn_full += 1,
            Full::Bytes => self.io.stats.overload.txn_bytes_full += 1,
        }
        self.relay.stats.refused += 1;
        let r = RelayRefusal::Overloaded.reply();
        self.io
            .respond(local, remote, Req::Valid(msg, req), r, |w| {
                w.header_u32(b"Retry-After", OVERLOAD_RETRY_AFTER_SECS);
            });
        false
    }

    /// The cell `idx` now waits for a lookup answer from another shard: it gives up after
    /// T2 (an answer takes one loop turn of the owner; T2 leaves the caller's own timers —
    /// B, F = 64·T1 — room to receive our 503).
    pub(crate) fn arm_lookup_timer(&mut self, now: Millis, idx: u32) {
        let gen = self.relay.txns.cell(idx).gen;
        let wait = self.io.cfg.sip.t2_ms;
        self.arm(now, wait, timer_key(Timer::Lookup, idx, gen, 0));
    }

    /// No lookup answer came (timer `Lookup`, or the question could not be queued).
    pub(crate) fn lookup_lost(&mut self, now: Millis, idx: u32) {
        let c = self.relay.txns.cell_mut(idx);
        if !c.lookup_pending || c.remote {
            return;
        }
        c.lookup_pending = false;
        self.io.stats.overload.lookups_lost += 1;
        self.finish_own(now, idx, RelayRefusal::Overloaded);
    }

    /// A message for another shard was not delivered (`Core::handle_undelivered`).
    pub(crate) fn handle_undelivered(&mut self, now: Millis, msg: ShardMsg) {
        self.io.stats.overload.shard_msgs_undelivered += 1;
        if let ShardMsg::Lookup { token, .. } = msg {
            if crate::proxy::is_relay_token(token) {
                let idx = token as u32;
                let gen = (token >> 32) as u32 & GEN_MASK;
                if self.relay.txns.get(idx, gen).is_some() {
                    self.lookup_lost(now, idx);
                }
            }
        }
    }
}
