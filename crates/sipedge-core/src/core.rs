//! [`Core`]: one shard's protocol state machine and its input/output queues.

use std::collections::VecDeque;
use std::net::SocketAddr;

use sipedge_msg::{is_keepalive, Message, ParseErrorKind, Reply};

use crate::config::CoreConfig;
use crate::output::{LocalId, Outbox, Transmit};
use crate::shard::{ShardId, ShardMsg};
use crate::stats::CoreStats;
use crate::time::Millis;

/// Events are for logs only; past this many undrained ones, new ones are discarded.
const MAX_PENDING_EVENTS: usize = 1024;

/// Something the shell may want to log or act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreEvent {
    /// A datagram failed to parse or validate.
    Malformed {
        /// Who sent it.
        remote: SocketAddr,
        /// What was wrong.
        kind: ParseErrorKind,
        /// Where (byte offset).
        at: u32,
        /// Whether an error response was sent.
        answered: bool,
    },
}

/// One shard's sans-IO protocol engine. See the crate docs for the handle/poll contract.
#[derive(Debug)]
pub struct Core {
    pub(crate) cfg: CoreConfig,
    pub(crate) out: Outbox,
    pub(crate) shard_out: VecDeque<(ShardId, ShardMsg)>,
    pub(crate) events: VecDeque<CoreEvent>,
    pub(crate) stats: CoreStats,
    /// Reused serialization buffer.
    pub(crate) scratch: Vec<u8>,
}

impl Core {
    /// A core for one shard.
    pub fn new(cfg: CoreConfig) -> Core {
        Core {
            cfg,
            out: Outbox::default(),
            shard_out: VecDeque::new(),
            events: VecDeque::new(),
            stats: CoreStats::default(),
            scratch: Vec::with_capacity(2048),
        }
    }

    /// This shard's id.
    pub fn shard(&self) -> ShardId {
        self.cfg.shard
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &CoreStats {
        &self.stats
    }

    /// A datagram arrived on socket `local` from `remote`.
    pub fn handle_datagram(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        if is_keepalive(bytes) {
            // RFC 5626 §3.5.1 CRLF keepalive over UDP: nothing to answer.
            self.stats.keepalives_in += 1;
            return;
        }
        let msg = match Message::parse_with(bytes, &self.cfg.parse) {
            Ok(m) => m,
            Err(e) => {
                self.stats.parse_errors[e.kind.index()] += 1;
                self.stats.dropped += 1;
                self.event(CoreEvent::Malformed {
                    remote,
                    kind: e.kind,
                    at: e.at,
                    answered: false,
                });
                return;
            }
        };
        if let Err(e) = msg.validate() {
            self.stats.parse_errors[e.kind.index()] += 1;
            let answered = match msg.error_reply(e) {
                Reply::Status(code, reason) => {
                    self.reply(local, remote, &msg, code, reason.as_bytes(), |_| {});
                    true
                }
                Reply::Drop => {
                    self.stats.dropped += 1;
                    false
                }
            };
            self.event(CoreEvent::Malformed {
                remote,
                kind: e.kind,
                at: e.at,
                answered,
            });
            return;
        }
        if msg.is_response() {
            self.stats.responses_in += 1;
            // No client transactions exist yet: RFC 3261 §18.1.2 — a response that matches
            // none is discarded.
            self.stats.responses_unmatched += 1;
            return;
        }
        self.stats.requests_in += 1;
        self.handle_request(now, local, remote, &msg);
    }

    /// A datagram larger than the receive buffer arrived and was cut: it is counted as too
    /// large and dropped (a truncated message must never be parsed).
    pub fn handle_truncated_datagram(&mut self, _now: Millis, remote: SocketAddr) {
        let kind = ParseErrorKind::MessageTooLarge;
        self.stats.parse_errors[kind.index()] += 1;
        self.stats.dropped += 1;
        self.event(CoreEvent::Malformed {
            remote,
            kind,
            at: 0,
            answered: false,
        });
    }

    /// A message from another shard.
    pub fn handle_shard_msg(&mut self, now: Millis, from: ShardId, msg: ShardMsg) {
        let _ = from;
        self.stats.shard_msgs_in += 1;
        match msg {
            ShardMsg::Datagram {
                local,
                remote,
                bytes,
                ..
            } => self.handle_datagram(now, local, remote, &bytes),
        }
    }

    /// Time has reached `now`: fire due timers.
    pub fn handle_timeout(&mut self, now: Millis) {
        // No timers yet: the registrar (binding expiry), transactions and keepalives add
        // theirs on the shard's wheel.
        let _ = now;
    }

    /// The next datagram to send; the borrow ends at the next call.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.out.pop()
    }

    /// Number of datagrams waiting in [`Core::poll_transmit`].
    pub fn pending_transmits(&self) -> usize {
        self.out.len()
    }

    /// The next hand-off to another shard.
    pub fn poll_shard_msg(&mut self) -> Option<(ShardId, ShardMsg)> {
        self.shard_out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<CoreEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next (`None`: no timer pending).
    pub fn poll_timeout(&self) -> Option<Millis> {
        None
    }

    pub(crate) fn event(&mut self, e: CoreEvent) {
        if self.events.len() < MAX_PENDING_EVENTS {
            self.events.push_back(e);
        }
    }
}
