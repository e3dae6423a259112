//! Admin queries (issue 18): what the admin API asks of the shard that owns an AoR, and the
//! answers. The shell hands a query to the owner's core between two turns
//! ([`crate::Core::handle_admin`]) and drains the answer with
//! [`crate::Core::poll_admin_reply`]; the admin thread never reads or locks a shard's table.
//!
//! Shape (issue 14): `Admin` is a view the dispatcher builds for one call, lent the
//! location store, the sink and this module's reply queue (`AdminQueue`); it names
//! `bindings` (a removal is stored and journalled like any other) and `lookup`, never
//! `core`.
//!
//! Every query does bounded work in one turn: one AoR (at most `max_contacts` bindings), or
//! one slice of at most [`MAX_SCAN_SLOTS`] slots and [`MAX_SLICE_BINDINGS`] bindings of the
//! binding table for a listing, so a listing of millions of bindings is many small queries
//! and no shard turn stalls (issue 18: a slice of 256 bindings costs well under 1 ms; the
//! shell runs at most one slice per turn, `src/admin_ctl.rs`).

mod query;

pub use query::{aor_owner, ListedBinding};

use std::collections::VecDeque;

use crate::bindings::Store;
use crate::io::Io;
use crate::location::{Location, NONE};
use crate::lookup::{lookup_local, LookupContact, LookupError, Owner};
use crate::shard::ShardId;
use crate::time::Millis;

/// Slots of the binding table one listing slice looks at, at most.
pub const MAX_SCAN_SLOTS: u32 = 1024;
/// Bindings one listing slice returns, at most (each is copied out of the table: the
/// slice's cost is mostly this).
pub const MAX_SLICE_BINDINGS: u32 = 256;
/// Bindings one listing page (the admin API's `limit`) holds, at most: several slices.
pub const MAX_PAGE: u32 = 1000;
/// Admin replies waiting to be drained, at most; past it the oldest is never displaced,
/// the new query is answered [`AdminReply::Busy`].
pub const MAX_PENDING_ADMIN: usize = 256;

/// A question from the admin API to one shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminQuery {
    /// The contacts of one AoR (any SIP URI, canonicalised like a To).
    Aor {
        /// The AoR URI.
        aor: Vec<u8>,
    },
    /// One slice of this shard's bindings whose AoR starts with `prefix` (with or without
    /// its `sip:` scheme), scanning slots from `from_slot`.
    List {
        /// AoR prefix (empty: every binding).
        prefix: Vec<u8>,
        /// First slot to look at.
        from_slot: u32,
        /// Bindings to return at most (capped at [`MAX_SLICE_BINDINGS`]).
        limit: u32,
    },
    /// Removes the AoR's bindings (all, or those whose contact is `contact`), journalled
    /// like any change.
    Remove {
        /// The AoR URI.
        aor: Vec<u8>,
        /// Only this contact (compared like a refresh, RFC 3261 §19.1.4); `None`: all.
        contact: Option<Vec<u8>>,
    },
    /// A SIP MESSAGE (RFC 3428) to every current contact of the AoR, one client
    /// transaction each; answered [`AdminReply::Delivered`] once every contact has its
    /// final response (at most 64·T1 later: timer F), or at once when refused.
    Message(OutgoingMessage),
}

/// What [`AdminQuery::Message`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The user's AoR URI (the To; the contacts' owner shard answers).
    pub aor: Vec<u8>,
    /// The From URI (`sip:`/`sips:`; the edge adds a tag).
    pub from: Vec<u8>,
    /// The body's media type (e.g. `text/plain`).
    pub content_type: Vec<u8>,
    /// The body, at most [`MAX_MESSAGE_BODY`] bytes.
    pub body: Vec<u8>,
}

/// Bytes of body a MESSAGE from the admin API may carry (it must fit one UDP datagram,
/// RFC 3428 §7); larger is refused with 413.
pub const MAX_MESSAGE_BODY: usize = crate::proxy::originate::MAX_BODY;

/// One contact's final response to an [`AdminQuery::Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The contact (the MESSAGE's Request-URI).
    pub contact: Vec<u8>,
    /// Its final status; 408 when it never answered (timer F; not sent on the wire).
    pub code: u16,
    /// The reason phrase.
    pub reason: Vec<u8>,
}

/// A shard's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminReply {
    /// [`AdminQuery::Aor`]: the current contacts (empty: not registered).
    Contacts {
        /// The shard that answered (the owner).
        owner: ShardId,
        /// Current bindings, highest q first.
        contacts: Vec<LookupContact>,
    },
    /// [`AdminQuery::List`]: one slice.
    Page {
        /// The bindings found, in slot order.
        bindings: Vec<ListedBinding>,
        /// Where the next slice starts on this shard; `None`: this shard is done.
        next_slot: Option<u32>,
    },
    /// [`AdminQuery::Remove`]: how many bindings went.
    Removed {
        /// The shard that answered (the owner).
        owner: ShardId,
        /// Bindings removed.
        removed: u32,
    },
    /// [`AdminQuery::Message`]: every contact's final response.
    Delivered {
        /// The shard that sent it (the AoR's owner).
        owner: ShardId,
        /// One per contact, highest q first.
        results: Vec<Delivery>,
    },
    /// [`AdminQuery::Message`]: the AoR has no current contact.
    NotRegistered,
    /// [`AdminQuery::Message`] refused before anything was sent: `code` is the HTTP-like
    /// status to show (400 bad input, 413 body too large, 503 too many in flight).
    Refused {
        /// 400, 413 or 503.
        code: u16,
        /// Why.
        reason: &'static str,
    },
    /// The AoR is not a `sip:`/`sips:` URI.
    NotAnAor,
    /// The AoR lives on another shard: ask it.
    NotOwner(ShardId),
    /// Too many replies are waiting: ask again later.
    Busy,
}

/// Admin answers waiting to be drained (at most [`MAX_PENDING_ADMIN`]); owned by the
/// dispatcher, lent to [`Admin`].
#[derive(Debug, Default)]
pub(crate) struct AdminQueue {
    replies: VecDeque<(u64, AdminReply)>,
}

impl AdminQueue {
    /// Whether another answer fits ([`MAX_PENDING_ADMIN`]).
    pub(crate) fn has_room(&self) -> bool {
        self.replies.len() < MAX_PENDING_ADMIN
    }

    /// Queues an answer made elsewhere (the relay's, for a MESSAGE).
    pub(crate) fn push(&mut self, token: u64, reply: AdminReply) {
        self.replies.push_back((token, reply));
    }

    /// The oldest answer and its token.
    pub(crate) fn pop(&mut self) -> Option<(u64, AdminReply)> {
        self.replies.pop_front()
    }
}

/// The admin queries' view of one shard: the location store, the sink, the ownership rule
/// and the reply queue, lent by the dispatcher for one call.
pub(crate) struct Admin<'a> {
    pub(crate) io: &'a mut Io,
    pub(crate) loc: &'a mut Location,
    pub(crate) owner: Owner,
    pub(crate) queue: &'a mut AdminQueue,
}

impl Admin<'_> {
    /// Answers `query` into the queue with `token` (bounded work, see the module docs).
    pub(crate) fn handle(&mut self, now: Millis, token: u64, query: AdminQuery) {
        if self.queue.replies.len() >= MAX_PENDING_ADMIN {
            // Dropping the oldest would lose a caller's answer; the new one is told instead,
            // after the queue drains.
            return;
        }
        let reply = match query {
            AdminQuery::Aor { aor } => match lookup_local(self.loc, self.owner, now, &aor) {
                Ok(contacts) => AdminReply::Contacts {
                    owner: self.owner.shard,
                    contacts,
                },
                Err(LookupError::NotAnAor) => AdminReply::NotAnAor,
                Err(LookupError::NotOwner(s)) => AdminReply::NotOwner(s),
            },
            AdminQuery::List {
                prefix,
                from_slot,
                limit,
            } => {
                let (bindings, next_slot) = query::list_slice(
                    self.loc,
                    now,
                    &prefix,
                    from_slot,
                    MAX_SCAN_SLOTS,
                    limit.min(MAX_SLICE_BINDINGS),
                );
                AdminReply::Page {
                    bindings,
                    next_slot,
                }
            }
            AdminQuery::Remove { aor, contact } => self.remove(&aor, contact.as_deref()),
            // Sent by the relay (`Core::handle_admin` routes it there), never here.
            AdminQuery::Message(_) => AdminReply::Refused {
                code: 500,
                reason: "not routed to the relay",
            },
        };
        self.queue.replies.push_back((token, reply));
    }

    fn remove(&mut self, aor_uri: &[u8], contact: Option<&[u8]>) -> AdminReply {
        let aor = match crate::lookup::canonical(aor_uri, self.owner.case_sensitive) {
            Some(a) => a,
            None => return AdminReply::NotAnAor,
        };
        let owner = crate::aor::owner_of(&aor, self.owner.shards);
        if owner != self.owner.shard {
            return AdminReply::NotOwner(owner);
        }
        let victims = match query::matching(self.loc, &aor, contact) {
            Ok(v) => v,
            Err(()) => return AdminReply::NotAnAor,
        };
        let mut store = Store {
            io: &mut *self.io,
            loc: &mut *self.loc,
        };
        let mut removed = 0u32;
        for idx in victims {
            // The head moves as bindings go: look it up again for each.
            let (domain, user) = crate::aor::split_aor(&aor);
            let head = store.loc.head(store.loc.domain_id(domain), user);
            if head == NONE {
                break;
            }
            store.remove_binding(&aor, head, idx);
            removed = removed.saturating_add(1);
        }
        AdminReply::Removed {
            owner: self.owner.shard,
            removed,
        }
    }
}
