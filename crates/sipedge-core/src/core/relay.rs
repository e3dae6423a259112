//! The relay's public hooks on [`Core`] (thin glue: `proxy` does the work).

use crate::core::Core;
use crate::shard::{ShardId, ShardMsg};
use crate::time::Millis;

impl Core {
    /// Bytes held by this shard's live transactions (what `[limits]
    /// max_transaction_bytes` caps).
    pub fn transaction_bytes(&mut self) -> usize {
        self.relay.txns.held_bytes()
    }

    /// The shell could not queue `msg` (which this core produced with
    /// [`Core::poll_shard_msg`]) to shard `to`: its mesh queue was full. A lookup the
    /// relay asked ends its cell at once (503, as when its timer fires); anything else is
    /// counted (the peer retransmits a hand-off; a lost lookup answer is the asker's timer).
    pub fn handle_undelivered(&mut self, now: Millis, to: ShardId, msg: ShardMsg) {
        let _ = to;
        self.relay().handle_undelivered(now, msg);
    }
}
