//! Dialog tracking's public hooks on [`Core`] (thin glue: `dialog` does the work).

use crate::core::Core;
use crate::dialog::{DialogCx, DialogStats};

impl Core {
    /// The dialog subsystem, lent the sink.
    pub(crate) fn dialog(&mut self) -> DialogCx<'_> {
        DialogCx {
            io: &mut self.io,
            dialogs: &mut self.dialogs,
        }
    }

    /// Dialog counters of this shard.
    pub fn dialog_stats(&self) -> DialogStats {
        self.dialogs.stats
    }

    /// Calls this shard tracks: INVITEs in progress holding channels, and confirmed calls
    /// it owns.
    pub fn dialog_count(&self) -> (usize, usize) {
        self.dialogs.counts()
    }
}
