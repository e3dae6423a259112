//! The admin control path (issue 18): how the admin thread asks a shard something and gets
//! the answer back, without ever touching the shard's tables.
//!
//! Each shard has a bounded inbox ([`ADMIN_INBOX`] requests). The admin thread puts a
//! request in and wakes the shard; the shard takes at most [`MAX_ADMIN_PER_TURN`] requests
//! between two turns, hands each query to its core ([`sipedge_core::Core::handle_admin`],
//! bounded work) and sends the answer back on the request's one-shot channel. Not the mesh:
//! the mesh is the shards' own SPSC queues, sized and counted for the data path, and an
//! admin request must neither take a data-path slot nor be dropped as overload silently
//! (a full inbox is a 503 to the operator).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use sipedge_core::admin::{AdminQuery, AdminReply};
use sipedge_core::{Core, Millis};
use tokio::sync::oneshot;

/// Requests waiting for one shard, at most.
pub const ADMIN_INBOX: usize = 64;
/// Requests one shard takes per turn, at most.
pub const MAX_ADMIN_PER_TURN: usize = 8;

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
    next_token: u64,
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
    /// Requests are waiting (one atomic load: the shard's wait checks it).
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire) > 0
    }

    /// Answers up to [`MAX_ADMIN_PER_TURN`] requests, between two turns.
    pub fn serve(&mut self, core: &mut Core, now: Millis) {
        if !self.has_pending() {
            return;
        }
        for _ in 0..MAX_ADMIN_PER_TURN {
            let Ok(req) = self.rx.try_recv() else { break };
            self.pending.fetch_sub(1, Ordering::Release);
            let q = match req.ask {
                Ask::Ping => {
                    let _ = req.reply.send(Answer::Pong);
                    continue;
                }
                Ask::Query(q) => q,
            };
            let later = matches!(q, AdminQuery::Message(_));
            self.next_token = self.next_token.wrapping_add(1);
            let token = self.next_token;
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
    }

    /// Hands every answer the core has to its asker (the answer to a MESSAGE comes when
    /// its contacts answered, in any turn): after datagrams and timers, each turn.
    pub fn deliver(&mut self, core: &mut Core) {
        while let Some((token, reply)) = core.poll_admin_reply() {
            // The asker may have given up (timeout): nothing to do then.
            if let Some(tx) = self.waiting.remove(&token) {
                let _ = tx.send(Answer::Reply(Some(reply)));
            }
        }
    }
}
