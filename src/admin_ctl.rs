//! The admin control path (issue 18): how the admin thread asks a shard something and gets
//! the answer back, without ever touching the shard's tables.
//!
//! Each shard has a bounded inbox ([`ADMIN_INBOX`] requests). The admin thread puts a
//! request in and wakes the shard (its eventfd, `sipedge_rt::Waker`: an idle shard blocked
//! in its wait returns at once, a busy one sees the request at its next turn through
//! [`ShardInbox::has_pending`]); the shard takes at most [`MAX_ADMIN_PER_TURN`] requests
//! between two turns, hands each query to its core ([`sipedge_core::Core::handle_admin`],
//! bounded work) and sends the answer back on the request's one-shot channel. Not the mesh:
//! the mesh is the shards' own SPSC queues, sized and counted for the data path, and an
//! admin request must neither take a data-path slot nor be dropped as overload silently
//! (a full inbox is a 503 to the operator).
//!
//! The admin share of a turn is bounded by cost, not by count: one AoR, a removal or a
//! MESSAGE is cheap (one AoR's contacts) and up to [`MAX_ADMIN_PER_TURN`] of them share a
//! turn, but a listing ([`AdminQuery::List`]) is answered over several turns, **one slice
//! per turn** for the whole shard (at most `MAX_SCAN_SLOTS` slots and `MAX_SLICE_BINDINGS`
//! bindings, well under a millisecond), the slices of one query following each other turn
//! after turn without a round trip to the admin thread, until the query's `limit` is
//! reached, the table ends, or [`MAX_SLICES_PER_LIST`] slices were looked at. Listings
//! waiting for their turn queue here (FIFO, at most [`MAX_LISTINGS`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use sipedge_core::admin::{AdminQuery, AdminReply, ListedBinding, MAX_SLICE_BINDINGS};
use sipedge_core::{Core, Millis};
use tokio::sync::oneshot;

/// Requests waiting for one shard, at most.
pub const ADMIN_INBOX: usize = 64;
/// Requests one shard takes from its inbox per turn, at most (a listing taken is only
/// queued: its slices are bounded separately, one per turn).
pub const MAX_ADMIN_PER_TURN: usize = 8;
/// Slices one listing query runs (one per turn) before it is answered with what it found
/// and where to go on: bounds the query's latency and the slots it looks at
/// (`MAX_SLICES_PER_LIST × MAX_SCAN_SLOTS`) when a prefix matches little.
pub const MAX_SLICES_PER_LIST: u32 = 64;
/// Listings taken from the inbox and waiting for their slices, at most; past it the inbox
/// is left as it is until one ends.
pub const MAX_LISTINGS: usize = ADMIN_INBOX;

/// What the admin thread asks a shard.
#[derive(Debug)]
pub enum Ask {
    /// "Are you turning?" (readiness): answered by the loop itself.
    Ping,
    /// A query for the core.
    Query(AdminQuery),
}

/// The shard's answer.
#[derive(Debug)]
pub enum Answer {
    /// To [`Ask::Ping`].
    Pong,
    /// To [`Ask::Query`]: `None` when the core had no room to answer.
    Reply(Option<AdminReply>),
}

#[derive(Debug)]
struct Request {
    ask: Ask,
    reply: oneshot::Sender<Answer>,
}

/// The admin thread's handle on one shard.
#[derive(Debug, Clone)]
pub struct ShardPort {
    tx: SyncSender<Request>,
    pending: Arc<AtomicUsize>,
    waker: sipedge_rt::Waker,
}

/// The shard's end.
#[derive(Debug)]
pub struct ShardInbox {
    rx: Receiver<Request>,
    pending: Arc<AtomicUsize>,
    /// Queries the core answers later (a MESSAGE waits for its contacts' finals), by the
    /// token given to [`Core::handle_admin`]. Bounded by the core: it refuses (at once) a
    /// MESSAGE past `sipedge_core`'s in-flight cap, and answers every one it sent by
    /// timer F (64·T1).
    waiting: HashMap<u64, oneshot::Sender<Answer>>,
    /// Listings being answered, the front one slice per turn.
    listings: VecDeque<Listing>,
    next_token: u64,
}

/// A listing answered over several turns, one slice each.
#[derive(Debug)]
struct Listing {
    reply: oneshot::Sender<Answer>,
    prefix: Vec<u8>,
    /// Where the next slice starts.
    slot: u32,
    /// Bindings still wanted (the query's `limit`, less what was found).
    wanted: u32,
    /// Slices it may still run.
    slices_left: u32,
    found: Vec<ListedBinding>,
}

/// One shard's control channel.
pub fn channel(waker: sipedge_rt::Waker) -> (ShardPort, ShardInbox) {
    let (tx, rx) = sync_channel(ADMIN_INBOX);
    let pending = Arc::new(AtomicUsize::new(0));
    (
        ShardPort {
            tx,
            pending: Arc::clone(&pending),
            waker,
        },
        ShardInbox {
            rx,
            pending,
            waiting: HashMap::new(),
            listings: VecDeque::new(),
            next_token: 0,
        },
    )
}

/// Why a shard did not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AskError {
    /// Its inbox is full.
    Busy,
    /// It stopped (or dropped the request).
    Gone,
}

impl ShardPort {
    /// Sends `ask` and wakes the shard; the answer comes on the returned receiver.
    pub fn ask(&self, ask: Ask) -> Result<oneshot::Receiver<Answer>, AskError> {
        let (reply, rx) = oneshot::channel();
        self.pending.fetch_add(1, Ordering::Release);
        match self.tx.try_send(Request { ask, reply }) {
            Ok(()) => {
                self.waker.wake();
                Ok(rx)
            }
            Err(e) => {
                self.pending.fetch_sub(1, Ordering::Release);
                Err(match e {
                    TrySendError::Full(_) => AskError::Busy,
                    TrySendError::Disconnected(_) => AskError::Gone,
                })
            }
        }
    }
}

impl ShardInbox {
    /// Requests are waiting, or a listing is under way (one atomic load: the shard's wait
    /// checks it, so a shard with a listing under way keeps turning).
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) > 0
    }

    /// Between two turns: answers up to [`MAX_ADMIN_PER_TURN`] cheap requests, queues the
    /// listings among them, then runs ONE slice of the oldest listing (see the module docs).
    pub fn serve(&mut self, core: &mut Core, now: Millis) {
        if !self.has_pending() {
            return;
        }
        for _ in 0..MAX_ADMIN_PER_TURN {
            if self.listings.len() >= MAX_LISTINGS {
                break;
            }
            let Ok(req) = self.rx.try_recv() else { break };
            let q = match req.ask {
                Ask::Ping => {
                    self.done();
                    let _ = req.reply.send(Answer::Pong);
                    continue;
                }
                Ask::Query(AdminQuery::List {
                    prefix,
                    from_slot,
                    limit,
                }) => {
                    // Still pending (the shard keeps turning) until answered.
                    self.listings.push_back(Listing {
                        reply: req.reply,
                        prefix,
                        slot: from_slot,
                        wanted: limit,
                        slices_left: MAX_SLICES_PER_LIST,
                        found: Vec::new(),
                    });
                    continue;
                }
                Ask::Query(q) => q,
            };
            self.done();
            let later = matches!(q, AdminQuery::Message(_));
            let token = self.token();
            core.handle_admin(now, token, q);
            self.waiting.insert(token, req.reply);
            self.deliver(core);
            if !later {
                // Answered at once or not at all (the core's queue was full).
                if let Some(tx) = self.waiting.remove(&token) {
                    let _ = tx.send(Answer::Reply(None));
                }
            }
        }
        self.list_slice(core, now);
    }

    /// One slice of the oldest listing whose asker still waits; answers it when it is
    /// complete.
    fn list_slice(&mut self, core: &mut Core, now: Millis) {
        let mut l = loop {
            let Some(l) = self.listings.pop_front() else {
                return;
            };
            if !l.reply.is_closed() {
                break l;
            }
            self.done(); // the asker gave up (timeout): no slice for it
        };
        let token = self.token();
        let query = AdminQuery::List {
            prefix: l.prefix.clone(),
            from_slot: l.slot,
            limit: l.wanted.min(MAX_SLICE_BINDINGS),
        };
        core.handle_admin(now, token, query);
        let next = match self.take_replies(core, Some(token)) {
            Some(AdminReply::Page {
                bindings,
                next_slot,
            }) => {
                let n = u32::try_from(bindings.len()).unwrap_or(u32::MAX);
                l.wanted = l.wanted.saturating_sub(n);
                l.found.extend(bindings);
                l.slices_left = l.slices_left.saturating_sub(1);
                next_slot
            }
            // The core had no room to answer: what was found so far, or "busy".
            _ if l.found.is_empty() => {
                self.done();
                let _ = l.reply.send(Answer::Reply(None));
                return;
            }
            _ => Some(l.slot),
        };
        match next {
            Some(slot) if l.wanted > 0 && l.slices_left > 0 && slot != l.slot => {
                l.slot = slot;
                self.listings.push_front(l);
            }
            next_slot => {
                self.done();
                let page = AdminReply::Page {
                    bindings: l.found,
                    next_slot,
                };
                let _ = l.reply.send(Answer::Reply(Some(page)));
            }
        }
    }

    /// One request answered (or given up).
    fn done(&self) {
        self.pending.fetch_sub(1, Ordering::Release);
    }

    fn token(&mut self) -> u64 {
        self.next_token = self.next_token.wrapping_add(1);
        self.next_token
    }

    /// Hands every answer the core has to its asker (the answer to a MESSAGE comes when
    /// its contacts answered, in any turn): after datagrams and timers, each turn.
    pub fn deliver(&mut self, core: &mut Core) {
        self.take_replies(core, None);
    }

    /// [`ShardInbox::deliver`], keeping back (and returning) the answer to `mine`.
    fn take_replies(&mut self, core: &mut Core, mine: Option<u64>) -> Option<AdminReply> {
        let mut kept = None;
        while let Some((token, reply)) = core.poll_admin_reply() {
            if Some(token) == mine {
                kept = Some(reply);
            } else if let Some(tx) = self.waiting.remove(&token) {
                // The asker may have given up (timeout): nothing to do then.
                let _ = tx.send(Answer::Reply(Some(reply)));
            }
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sipedge_core::admin::MAX_SCAN_SLOTS;
    use sipedge_core::{CoreConfig, LocalId};
    use tokio::sync::oneshot::error::TryRecvError;

    const DOMAIN: &str = "edge.example.com";

    /// A core holding `n` bindings, `sip:uNNNN@edge.example.com`, one each.
    fn core_with(n: u32) -> Core {
        let mut core = Core::new(CoreConfig {
            domains: vec![DOMAIN.into()],
            ..CoreConfig::default()
        });
        for i in 0..n {
            let msg = format!(
                "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-{i}\r\nMax-Forwards: 70\r\nFrom: <sip:u{i:04}@{DOMAIN}>;tag=f{i}\r\nTo: <sip:u{i:04}@{DOMAIN}>\r\nCall-ID: c{i}@192.0.2.50\r\nCSeq: 1 REGISTER\r\nContact: <sip:u{i}@192.0.2.50:{}>\r\nContent-Length: 0\r\n\r\n",
                5000 + i
            );
            core.handle_datagram(
                Millis(1_000),
                LocalId(0),
                "192.0.2.50:5060".parse().unwrap(),
                msg.as_bytes(),
            );
            while core.poll_transmit().is_some() {}
        }
        assert_eq!(core.binding_count(), n as usize);
        core
    }

    fn list(port: &ShardPort, limit: u32) -> oneshot::Receiver<Answer> {
        port.ask(Ask::Query(AdminQuery::List {
            prefix: Vec::new(),
            from_slot: 0,
            limit,
        }))
        .unwrap()
    }

    fn page(rx: &mut oneshot::Receiver<Answer>) -> (usize, Option<u32>) {
        match rx.try_recv().unwrap() {
            Answer::Reply(Some(AdminReply::Page {
                bindings,
                next_slot,
            })) => (bindings.len(), next_slot),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_turn_runs_at_most_one_listing_slice_and_cheap_queries_still_pass() {
        let wake = sipedge_rt::WakeFd::new().unwrap();
        let (port, mut inbox) = channel(wake.waker());
        let mut core = core_with(600);
        let mut first = list(&port, 1000);
        let mut second = list(&port, 1000);
        let mut aor = port
            .ask(Ask::Query(AdminQuery::Aor {
                aor: format!("sip:u0007@{DOMAIN}").into_bytes(),
            }))
            .unwrap();
        let now = Millis(2_000);
        // 600 bindings in slices of MAX_SLICE_BINDINGS: three turns for the first listing.
        let turns_each = 600u32.div_ceil(MAX_SLICE_BINDINGS);
        assert_eq!(turns_each, 3);
        for turn in 1..=turns_each {
            inbox.serve(&mut core, now);
            if turn == 1 {
                // The one-AoR query shares the first turn.
                match aor.try_recv().unwrap() {
                    Answer::Reply(Some(AdminReply::Contacts { contacts, .. })) => {
                        assert_eq!(contacts.len(), 1)
                    }
                    other => panic!("{other:?}"),
                }
            }
            if turn < turns_each {
                assert_eq!(first.try_recv().unwrap_err(), TryRecvError::Empty);
                assert!(
                    inbox.has_pending(),
                    "a listing under way keeps the shard turning"
                );
            }
            assert_eq!(second.try_recv().unwrap_err(), TryRecvError::Empty);
        }
        // One answer for the whole page, without a round trip per slice.
        assert_eq!(page(&mut first), (600, None));
        for _ in 1..turns_each {
            inbox.serve(&mut core, now);
            assert_eq!(second.try_recv().unwrap_err(), TryRecvError::Empty);
        }
        inbox.serve(&mut core, now);
        assert_eq!(page(&mut second), (600, None));
        assert!(!inbox.has_pending());
    }

    #[test]
    fn a_listing_stops_at_its_limit_and_when_its_asker_gave_up() {
        let wake = sipedge_rt::WakeFd::new().unwrap();
        let (port, mut inbox) = channel(wake.waker());
        let mut core = core_with(600);
        let now = Millis(2_000);
        let mut rx = list(&port, 300);
        inbox.serve(&mut core, now);
        assert_eq!(rx.try_recv().unwrap_err(), TryRecvError::Empty);
        inbox.serve(&mut core, now);
        let (n, next) = page(&mut rx);
        assert_eq!(n, 300);
        assert!(next.is_some_and(|s| s > 0 && s < 600 + MAX_SCAN_SLOTS));
        // An asker that gave up (its HTTP request timed out) costs no more slices.
        drop(list(&port, 1000));
        inbox.serve(&mut core, now);
        assert!(!inbox.has_pending());
    }
}
