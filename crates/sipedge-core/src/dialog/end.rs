//! Ending a call from the edge (issue 16 item 1; Kamailio's dialog `send_bye`): an end
//! gone silent or unknown to the dialog, or `[dialogs] max_duration_secs` reached. Both
//! ends are sent a BYE inside the dialog (RFC 3261 §15.1.1, built from [`super::ends`])
//! with a Reason header (RFC 3326) saying why, then the entry is dropped — which releases
//! its channels, once ([`crate::limits::Charge`]).
//!
//! The BYEs are sent once, statelessly (branch [`super::keepalive`]): the edge forgets the
//! call at once and their answers are absorbed. A BYE lost on the way leaves that end up
//! until its own session timer or user; the channels are released either way.

use super::ends::{Own, Side};
use super::DialogCx;
use crate::time::Millis;

/// Why the edge ends a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// An end answered no keepalive within 64·T1.
    KeepaliveTimeout,
    /// An end answered a keepalive 481 (no such dialog, §12.2.2) or 408.
    Gone(u16),
    /// `[dialogs] max_duration_secs`.
    MaxDuration,
}

impl Cause {
    /// The Reason header value (RFC 3326 §2: `SIP;cause=<status>;text="…"`).
    pub(crate) fn reason(self) -> &'static [u8] {
        match self {
            Cause::KeepaliveTimeout => b"SIP;cause=408;text=\"in-dialog keepalive timed out\"",
            Cause::Gone(481) => b"SIP;cause=481;text=\"dialog gone at one end\"",
            Cause::Gone(_) => b"SIP;cause=408;text=\"dialog gone at one end\"",
            Cause::MaxDuration => b"SIP;cause=200;text=\"maximum call duration reached\"",
        }
    }
}

impl DialogCx<'_> {
    /// Ends the tracked call `key` (on its owner): BYE to both ends when the dialog kept
    /// them, then its channels released. Nothing when the call is already gone.
    pub(crate) fn end_call(&mut self, now: Millis, key: u64, cause: Cause) {
        let Some(entry) = self.dialogs.table.remove(&key) else {
            return;
        };
        self.bye_ends(now, key, &entry, cause);
        // `entry` drops here: the charge is released.
    }

    /// A BYE to both ends of the removed `entry` (when it kept its ends).
    pub(crate) fn bye_ends(&mut self, now: Millis, key: u64, entry: &super::Entry, cause: Cause) {
        let Some(block) = entry.ends.as_deref() else {
            return;
        };
        self.dialogs.stats.ended_by_edge += 1;
        let sent = now.0 as u32;
        for side in [Side::A, Side::B] {
            self.send_own(key, block, (Own::Bye, side), sent, cause.reason());
        }
    }
}
