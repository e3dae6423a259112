//! The admin queries' public hooks on [`Core`] (thin glue: `admin` does the work).

use crate::admin::{Admin, AdminQuery, AdminReply};
use crate::core::Core;
use crate::time::Millis;

impl Core {
    /// The admin view, lent the store, the sink and the reply queue.
    pub(crate) fn admin(&mut self) -> Admin<'_> {
        Admin {
            owner: self.owner(),
            io: &mut self.io,
            loc: &mut self.loc,
            queue: &mut self.admin,
        }
    }

    /// An admin query, between two turns; its answer comes out of
    /// [`Core::poll_admin_reply`] with `token`.
    pub fn handle_admin(&mut self, now: Millis, token: u64, query: AdminQuery) {
        self.admin().handle(now, token, query);
    }

    /// The next answer to [`Core::handle_admin`].
    pub fn poll_admin_reply(&mut self) -> Option<(u64, AdminReply)> {
        self.admin.pop()
    }
}
