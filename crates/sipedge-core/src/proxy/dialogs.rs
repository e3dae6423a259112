//! The relay's hooks into dialog tracking and call limits (issue 16, `dialog`): a new
//! INVITE is admitted or refused, holds its charge while its cell lives, and a 2xx or a BYE
//! moves or ends the call. Each is one line where the relay makes that decision.

use std::net::SocketAddr;

use sipedge_msg::{Message, Validated};

use crate::auth::AuthOk;
use crate::dialog::DialogCx;
use crate::limits::Charge;
use crate::output::LocalId;
use crate::proxy::RelayCx;
use crate::time::Millis;

impl RelayCx<'_> {
    /// The dialog subsystem, lent the sink.
    fn dialog(&mut self) -> DialogCx<'_> {
        DialogCx {
            io: self.io,
            dialogs: self.dialogs,
        }
    }

    /// An out-of-dialog INVITE takes its channels and CPS (`dialog::admit`); `None`:
    /// refused, answered and counted.
    pub(super) fn limits_admit(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        (msg, req): (&Message<'_>, &Validated<'_>),
        who: Option<&AuthOk>,
        callee_aor: &[u8],
    ) -> Option<Charge> {
        let c = self
            .dialog()
            .admit(now, local, remote, (msg, req), who, callee_aor);
        if c.is_none() {
            self.relay.stats.refused += 1;
        }
        c
    }

    /// The INVITE of the new cell `idx` holds `charge` until its final response.
    pub(super) fn dialog_hold(&mut self, idx: u32, charge: Charge) {
        self.dialogs.hold(idx, charge);
    }

    /// The cell `idx`'s INVITE ended without a 2xx (final non-2xx, CANCEL → 487, timeout,
    /// or the cell freed): its charge, if it still holds one, is released.
    pub(super) fn dialog_failed(&mut self, idx: u32) {
        self.dialogs.fail(idx);
    }

    /// The first 2xx (from branch `b`) of cell `idx`'s INVITE went upstream: the call is
    /// confirmed and moves to its dialog's owner shard.
    pub(super) fn dialog_confirmed(
        &mut self,
        now: Millis,
        (idx, b): (u32, usize),
        (msg, v): (&Message<'_>, &Validated<'_>),
    ) {
        let cell = self.relay.txns.cell(idx);
        let mut cx = DialogCx {
            io: &mut *self.io,
            dialogs: &mut *self.dialogs,
        };
        cx.confirmed(now, (idx, cell, b), (msg, v));
    }

    /// A BYE inside a dialog of ours (RFC 3261 §15.1.2): the call's channels are released.
    pub(super) fn dialog_bye(&mut self, req: &Validated<'_>) {
        self.dialog().bye(req);
    }
}
