//! [`Core`]: one shard's protocol state machine and its input/output queues.

use std::collections::VecDeque;
use std::net::SocketAddr;

use sipedge_msg::{is_keepalive, Message, ParseErrorKind, Reply, Validated};
use sipedge_wheel::{Tick, Wheel};

use crate::config::CoreConfig;
use crate::journal::JournalQueue;
use crate::location::Location;
use crate::lookup::LookupReply;
use crate::output::{LocalId, Outbox, Transmit};
use crate::registrar::TICK_MILLIS;
use crate::shard::{ShardId, ShardMsg};
use crate::stats::CoreStats;
use crate::time::Millis;

/// Events are for logs only; past this many undrained ones, new ones are discarded.
pub(crate) const MAX_PENDING_EVENTS: usize = 1024;

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
    /// A binding was deregistered because `misses` keepalives in a row went unanswered
    /// (`nat_ping = "timeout"`); log it at info (target `sip::nat`).
    PingTimeout {
        /// The address the binding was reached at.
        source: SocketAddr,
        /// Unanswered pings in a row.
        misses: u8,
    },
}

/// The tables a reload (SIGHUP) replaces: immutable, shared by every shard through an `Arc`,
/// handed to each core between two turns with [`Core::handle_config`], so every request of
/// one turn sees one configuration. Build it from the running core's ([`Core::tables`]).
#[derive(Debug, Clone)]
pub struct ReloadTables {
    /// The authentication tables ([`crate::auth::AuthDb`]).
    pub auth: crate::auth::AuthHandle,
    /// The per-user NAT overrides, a generation after the running one ([`NatUsers::next`]).
    pub nat_users: crate::nat::NatUsers,
    /// The call limits, built for `auth` with the running table's counters carried over
    /// ([`crate::limits::LimitsTable::build`]).
    pub limits: crate::limits::LimitsHandle,
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
    /// This shard's slice of the location table.
    pub(crate) loc: Location,
    /// Binding expiry timers (key: slot index and generation).
    pub(crate) wheel: Wheel<u64>,
    fired: Vec<u64>,
    pub(crate) journal: JournalQueue,
    pub(crate) lookups: VecDeque<LookupReply>,
    /// UNIX ms minus monotonic ms, once the shell has said (`set_wall_clock`).
    pub(crate) wall_offset_ms: Option<i64>,
    /// The shard whose socket received the datagram being handled.
    pub(crate) arrival: ShardId,
    /// Reused: the canonical AoR, the 200 OK's Contact lines, the Path of a REGISTER.
    pub(crate) aor_buf: Vec<u8>,
    pub(crate) contact_buf: Vec<u8>,
    pub(crate) path_buf: Vec<u8>,
    /// The Date of the 200 OKs, formatted once per second.
    pub(crate) date: crate::date::DateCache,
    /// The keepalive pinger (`nat::ping`).
    pub(crate) nat: crate::nat::NatRuntime,
    /// The relay: transaction cells and their buffers (`proxy`, `txn`).
    pub(crate) relay: crate::proxy::Relay,
    /// Nonce key, nonce-count window, counters (`auth`).
    pub(crate) auth: crate::auth::AuthState,
    /// The MAC of every token we send and take back, keyed by the node secret (`secret`).
    pub(crate) mac: crate::secret::Mac,
    /// Hashes the To tags of stateless and registrar replies. Keyed from the node secret,
    /// never by the table seed: its outputs go on the wire, and a table hasher whose
    /// outputs an attacker can collect invites collisions in the location table (issue 13).
    pub(crate) tag_hasher: crate::aor::TableHasher,
    /// Calls holding channels (issue 16, `dialog`).
    pub(crate) dialogs: crate::dialog::Dialogs,
}

impl Core {
    /// A core for one shard.
    pub fn new(cfg: CoreConfig) -> Core {
        let expected = cfg.expected_bindings;
        let mac = crate::secret::Mac::new(&cfg.proxy.secret);
        let tag_key = mac.digest(crate::secret::Purpose::ToTag, &[b"stateless reply tags"]);
        Core {
            tag_hasher: crate::aor::TableHasher::new(tag_key),
            nat: crate::nat::NatRuntime::new(&cfg.nat),
            loc: Location::new(cfg.seed, cfg.expected_bindings),
            relay: crate::proxy::Relay::new(cfg.seed, cfg.txn_limits),
            mac,
            auth: crate::auth::AuthState::new(&cfg.auth),
            arrival: cfg.shard,
            cfg,
            out: Outbox::default(),
            shard_out: VecDeque::new(),
            events: VecDeque::new(),
            stats: CoreStats::default(),
            scratch: Vec::with_capacity(2048),
            wheel: Wheel::with_capacity(expected),
            fired: Vec::new(),
            journal: JournalQueue::default(),
            lookups: VecDeque::new(),
            wall_offset_ms: None,
            aor_buf: Vec::with_capacity(64),
            contact_buf: Vec::with_capacity(1024),
            path_buf: Vec::new(),
            date: crate::date::DateCache::default(),
            dialogs: crate::dialog::Dialogs::default(),
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

    /// Relay counters.
    pub fn proxy_stats(&self) -> &crate::proxy::ProxyStats {
        &self.relay.stats
    }

    /// Live transactions (relay cells) on this shard.
    pub fn transaction_count(&self) -> usize {
        self.relay.txns.len()
    }

    /// The tables in force (what a reload starts from).
    pub fn tables(&self) -> ReloadTables {
        ReloadTables {
            auth: std::sync::Arc::clone(&self.cfg.auth.db),
            nat_users: self.cfg.nat.users.clone(),
            limits: std::sync::Arc::clone(&self.cfg.limits),
        }
    }

    /// New tables from a reload, between two turns: the auth tables are replaced whole
    /// (bindings and nonces stay), and the per-user NAT overrides are re-applied at once to
    /// the bindings this shard owns of the AoRs they change (`nat`, "Reload").
    pub fn handle_config(&mut self, tables: &ReloadTables) {
        self.cfg.auth.db = std::sync::Arc::clone(&tables.auth);
        // Issue 16: new limits for new calls; calls in progress keep their charges.
        self.cfg.limits = std::sync::Arc::clone(&tables.limits);
        self.nat_reload(&tables.nat_users);
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
        let v = match msg.validated() {
            Ok(v) => v,
            Err(e) => {
                self.stats.parse_errors[e.kind.index()] += 1;
                let answered = match msg.error_reply(e) {
                    Reply::Status(code, reason) => {
                        let req = crate::stateless::Req::Raw(&msg);
                        self.respond(local, remote, req, (code, reason.as_bytes()), |_| {});
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
        };
        self.handle_valid(now, local, remote, &msg, &v);
    }

    /// A message that parsed and validated ([`Core::handle_datagram`], or a hand-off from
    /// another shard with what it parsed).
    fn handle_valid(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &Validated<'_>,
    ) {
        if msg.is_response() {
            self.stats.responses_in += 1;
            if self.nat_response(now, local, remote, msg, v) {
                return; // one of our keepalives (nat::ping), on any shard
            }
            if self.dialog_ka_response(now, msg, v) {
                return; // one of our in-dialog OPTIONS/BYEs (dialog::keepalive), any shard
            }
            // A response from a phone (the callee, named in To) shows its NAT binding alive.
            self.note_traffic(v, remote, true);
            // Client transactions of the relay (RFC 3261 §17.1.3); unmatched: discarded.
            self.handle_response(now, local, remote, msg, v);
            return;
        }
        self.stats.requests_in += 1;
        // A request from a phone (named in From) shows its NAT binding alive; a REGISTER does
        // that itself when it refreshes the binding.
        if msg.method() != Some(sipedge_msg::Method::Register) {
            self.note_traffic(v, remote, false);
        }
        self.handle_request(now, local, remote, msg, v);
    }

    /// Issue 8: "any request or response from the contact counts as alive" — for a binding
    /// of the message's AoR (From of a request, To of a response) that this shard owns and
    /// that was registered from `remote`. Skipped while no binding is pinged at all. Traffic
    /// landing on another shard than the AoR's owner is not forwarded for this.
    fn note_traffic(&mut self, v: &Validated<'_>, remote: SocketAddr, response: bool) {
        if self.loc.pinging() == [0, 0] {
            return;
        }
        let party = if response { &v.to } else { &v.from };
        let _ = self.note_alive(party.uri().raw(), remote);
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
        self.stats.shard_msgs_in += 1;
        match msg {
            ShardMsg::Datagram {
                local,
                remote,
                bytes,
                parsed,
                ..
            } => {
                self.arrival = from;
                // Parse once across the mesh: what the sender parsed, re-attached.
                match parsed.and_then(|p| (*p).attach(&bytes)) {
                    Some((msg, v)) => self.handle_valid(now, local, remote, &msg, &v),
                    None => self.handle_datagram(now, local, remote, &bytes),
                }
                self.arrival = self.cfg.shard;
            }
            ShardMsg::Lookup { aor, token } => self.answer_lookup(now, from, &aor, token),
            ShardMsg::LookupReply(reply) if crate::proxy::is_relay_token(reply.token) => {
                self.relay_lookup_reply(now, reply)
            }
            ShardMsg::LookupReply(reply) => self.lookups.push_back(reply),
            ShardMsg::Dialog(m) => self.dialog_shard_msg(now, m),
        }
    }

    /// Time has reached `now`: fire due timers (binding expiry, keepalives).
    pub fn handle_timeout(&mut self, now: Millis) {
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        self.wheel.advance(Tick(now.0 / TICK_MILLIS), &mut fired);
        for &key in &fired {
            if key & crate::txn::TXN_TIMER_BIT != 0 {
                self.txn_timer(now, key);
            } else {
                self.binding_timer(now, key);
            }
        }
        self.fired = fired;
        self.nat_timeout(now);
        self.dialog_timeout(now);
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
        let wheel = self
            .wheel
            .next_expiry()
            .map(|t| Millis(t.0.saturating_mul(TICK_MILLIS)));
        let t = match (wheel, self.nat_poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (t, self.dialog_poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn event(&mut self, e: CoreEvent) {
        if self.events.len() < MAX_PENDING_EVENTS {
            self.events.push_back(e);
        }
    }
}
