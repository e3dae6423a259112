//! The admin queries' public hooks on [`Core`] (thin glue: `admin` does the work; a
//! MESSAGE is originated by the relay, `proxy::originate`).

use crate::admin::{Admin, AdminQuery, AdminReply, Delivery, OutgoingMessage};
use crate::core::Core;
use crate::proxy::originate::{Consumer, NewRequest, Refused};
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
    /// [`Core::poll_admin_reply`] with `token` — at once, except for a MESSAGE that was
    /// sent ([`AdminQuery::Message`]): its answer comes once every contact has its final
    /// response (timer F at the latest). No answer at all means the queue was full.
    pub fn handle_admin(&mut self, now: Millis, token: u64, query: AdminQuery) {
        match query {
            AdminQuery::Message(m) => self.admin_message(now, token, &m),
            q => self.admin().handle(now, token, q),
        }
    }

    fn admin_message(&mut self, now: Millis, token: u64, m: &OutgoingMessage) {
        if !self.admin.has_room() {
            return;
        }
        let req = NewRequest {
            method: b"MESSAGE",
            aor: &m.aor,
            from: &m.from,
            content_type: &m.content_type,
            body: &m.body,
        };
        let refused = match self.relay().originate(now, &req, Consumer::Admin { token }) {
            Ok(_) => return,
            Err(Refused::NotAnAor) => AdminReply::NotAnAor,
            Err(Refused::NotOwner(s)) => AdminReply::NotOwner(s),
            Err(Refused::NotRegistered) => AdminReply::NotRegistered,
            Err(Refused::BadRequest(reason)) => AdminReply::Refused { code: 400, reason },
            Err(Refused::TooLarge) => AdminReply::Refused {
                code: 413,
                reason: "the body does not fit one UDP datagram (RFC 3428 §7)",
            },
            Err(Refused::Busy) => AdminReply::Refused {
                code: 503,
                reason: "too many requests in flight on the owner shard, retry",
            },
        };
        self.admin.push(token, refused);
    }

    /// The next answer to [`Core::handle_admin`].
    pub fn poll_admin_reply(&mut self) -> Option<(u64, AdminReply)> {
        if let Some(r) = self.admin.pop() {
            return Some(r);
        }
        let done = self.relay.originated.pop_done()?;
        let Consumer::Admin { token } = done.consumer;
        let results = done
            .results
            .into_iter()
            .map(|f| Delivery {
                contact: f.contact,
                code: f.code,
                reason: f.reason,
            })
            .collect();
        Some((
            token,
            AdminReply::Delivered {
                owner: self.shard(),
                results,
            },
        ))
    }

    /// Requests the edge originated (a MESSAGE from the admin API) still waiting for a
    /// final response on this shard.
    pub fn originated_in_flight(&self) -> usize {
        self.relay.originated.in_flight()
    }
}
