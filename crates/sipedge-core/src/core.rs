//! [`Core`]: one shard's protocol state machine and its input/output queues.

use std::collections::VecDeque;
use std::net::SocketAddr;

use sipedge_msg::{is_keepalive, Message, ParseErrorKind, Reply, Validated};
use sipedge_wheel::Tick;

use crate::bindings::TICK_MILLIS;
use crate::config::CoreConfig;
pub use crate::io::CoreEvent;
use crate::io::Io;
use crate::location::Location;
use crate::lookup::LookupReply;
use crate::output::{LocalId, Transmit};
use crate::shard::{ShardId, ShardMsg};
use crate::stats::CoreStats;
use crate::time::Millis;

mod admin;
mod auth;
mod cluster;
mod dialog;
mod dispatch;
mod invariants;
pub(crate) mod journal;
mod lookup;
mod nat;
mod protect;
mod relay;
mod streams;

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
/// The dispatcher: it owns the shard's identity, the shared sink ([`Io`]) and the
/// subsystems, and lends each the sink and the stores it works on.
#[derive(Debug)]
pub struct Core {
    /// Configuration, output queues, counters, wheel, keys (`io`).
    pub(crate) io: Io,
    /// This shard's slice of the location table.
    pub(crate) loc: Location,
    fired: Vec<u64>,
    pub(crate) lookups: VecDeque<LookupReply>,
    /// The registrar's reused buffers (`registrar`).
    pub(crate) reg: crate::registrar::RegistrarBufs,
    /// The keepalive pinger (`nat::ping`).
    pub(crate) nat: crate::nat::NatRuntime,
    /// The relay: transaction cells and their buffers (`proxy`, `txn`).
    pub(crate) relay: crate::proxy::Relay,
    /// Nonce key, nonce-count window, counters (`auth`).
    pub(crate) auth: crate::auth::AuthState,
    /// Answers to admin queries waiting for `poll_admin_reply` (`admin`).
    pub(crate) admin: crate::admin::AdminQueue,
    /// Bans, per-source and per-user counts, overload shedding (`protect`, issue 17): a
    /// leaf the dispatcher screens with and lends to the registrar and the authenticator.
    pub(crate) protect: crate::protect::Protect,
    /// Calls holding channels (issue 16, `dialog`).
    pub(crate) dialogs: crate::dialog::Dialogs,
    /// Outbound and closed stream flows of this shard's connections (issue 19,
    /// `stream_flows`).
    pub(crate) streams: crate::stream_flows::StreamFlows,
}

impl Core {
    /// A core for one shard.
    pub fn new(cfg: CoreConfig) -> Core {
        let prefault = cfg.prefault.then_some(cfg.expected_bindings);
        let mut core = Core {
            protect: crate::protect::Protect::new(cluster::protect_config(&cfg), cfg.seed),
            nat: crate::nat::NatRuntime::new(&cfg.nat),
            loc: Location::new(cfg.seed, cfg.expected_bindings),
            relay: crate::proxy::Relay::new(cfg.seed, cfg.txn_limits),
            auth: crate::auth::AuthState::new(&cfg.auth, &cfg.cluster),
            fired: Vec::new(),
            lookups: VecDeque::new(),
            admin: crate::admin::AdminQueue::default(),
            reg: crate::registrar::RegistrarBufs::default(),
            dialogs: crate::dialog::Dialogs::default(),
            streams: crate::stream_flows::StreamFlows::default(),
            io: Io::new(cfg),
        };
        if let Some(expected) = prefault {
            core.loc.prefault(expected);
            core.io.wheel.prefault();
        }
        core
    }

    /// The location store with the sink: what changes a binding arms its timer and
    /// journals it (`bindings`).
    pub(crate) fn store(&mut self) -> crate::bindings::Store<'_> {
        crate::bindings::Store {
            io: &mut self.io,
            loc: &mut self.loc,
        }
    }

    /// The registrar, lent the store, the sink and what its checks need.
    pub(crate) fn registrar(&mut self) -> crate::registrar::Registrar<'_> {
        crate::registrar::Registrar {
            io: &mut self.io,
            loc: &mut self.loc,
            bufs: &mut self.reg,
            auth: &mut self.auth,
            nat: &mut self.nat,
            protect: &mut self.protect,
        }
    }

    /// The relay, lent the store, the sink and the authenticator's state.
    pub(crate) fn relay(&mut self) -> crate::proxy::RelayCx<'_> {
        crate::proxy::RelayCx {
            io: &mut self.io,
            loc: &mut self.loc,
            relay: &mut self.relay,
            auth: &mut self.auth,
            protect: &mut self.protect,
            dialogs: &mut self.dialogs,
        }
    }

    /// This shard's id.
    pub fn shard(&self) -> ShardId {
        self.io.cfg.shard
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.io.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &CoreStats {
        &self.io.stats
    }

    /// Relay counters.
    pub fn proxy_stats(&self) -> &crate::proxy::ProxyStats {
        &self.relay.stats
    }

    /// Failed flows this shard remembers (RFC 5626 §5.3; `flows`).
    pub fn dead_flow_count(&self) -> usize {
        self.loc.dead_flows.len()
    }

    /// Live transactions (relay cells) on this shard.
    pub fn transaction_count(&self) -> usize {
        self.relay.txns.len()
    }

    /// The tables in force (what a reload starts from).
    pub fn tables(&self) -> ReloadTables {
        ReloadTables {
            auth: std::sync::Arc::clone(&self.io.cfg.auth.db),
            nat_users: self.io.cfg.nat.users.clone(),
            limits: std::sync::Arc::clone(&self.io.cfg.limits),
        }
    }

    /// New tables from a reload, between two turns: the auth tables are replaced whole
    /// (bindings and nonces stay), and the per-user NAT overrides are re-applied at once to
    /// the bindings this shard owns of the AoRs they change (`nat`, "Reload").
    pub fn handle_config(&mut self, tables: &ReloadTables) {
        self.io.cfg.auth.db = std::sync::Arc::clone(&tables.auth);
        // Issue 16: new limits for new calls; calls in progress keep their charges.
        self.io.cfg.limits = std::sync::Arc::clone(&tables.limits);
        self.pinger().nat_reload(&tables.nat_users);
    }

    /// A datagram arrived on socket `local` from `remote`.
    pub fn handle_datagram(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        bytes: &[u8],
    ) {
        let stream = self.io.cfg.proxy.is_stream(local);
        if stream {
            // A connection of this flow is up again (`stream_flows`, RFC 3261 §18.2.2).
            self.streams.note_message(local, remote);
        }
        if self.protect_screen(now, remote, bytes) {
            return; // banned source: dropped before parsing (`protect`)
        }
        // UDP only: the late queue is the datagram socket's, and a request over a stream
        // is not retransmitted (RFC 3261 §17.1.1.2: timer A only over UDP).
        if !stream && self.protect.drop_stale(bytes) {
            return; // a new request behind a late queue (`protect::stale`)
        }
        if is_keepalive(bytes) {
            // RFC 5626 §3.5.1 CRLF keepalive over UDP: nothing to answer.
            self.io.stats.keepalives_in += 1;
            return;
        }
        if crate::stun::looks_like_stun(bytes) {
            // RFC 5626 §8: STUN keepalives share the SIP port.
            let mut ans = [0u8; crate::stun::MAX_ANSWER];
            match crate::stun::answer(bytes, remote, &mut ans) {
                Ok(n) => {
                    self.io.stats.stun_answered += 1;
                    self.io.out.push(local, remote, &ans[..n]);
                }
                Err(_) => self.io.stats.stun_dropped += 1,
            }
            return;
        }
        let msg = match Message::parse_with(bytes, &self.io.cfg.parse) {
            Ok(m) => m,
            Err(e) => {
                self.io.stats.parse_errors[e.kind.index()] += 1;
                self.io.stats.dropped += 1;
                self.io.event(CoreEvent::Malformed {
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
                self.io.stats.parse_errors[e.kind.index()] += 1;
                let answered = match msg.error_reply(e) {
                    Reply::Status(code, reason) => {
                        let req = crate::stateless::Req::Raw(&msg);
                        self.io
                            .respond(local, remote, req, (code, reason.as_bytes()), |_| {});
                        true
                    }
                    Reply::Drop => {
                        self.io.stats.dropped += 1;
                        false
                    }
                };
                self.io.event(CoreEvent::Malformed {
                    remote,
                    kind: e.kind,
                    at: e.at,
                    answered,
                });
                return;
            }
        };
        if self.protect_request(now, local, remote, &msg, &v) {
            return; // scanner dropped, or shed with 503 (`protect`)
        }
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
            self.io.stats.responses_in += 1;
            if self.pinger().nat_response(now, local, remote, msg, v) {
                return; // one of our keepalives (nat::ping), on any shard
            }
            if self.dialog().ka_response(now, msg, v) {
                return; // one of our in-dialog OPTIONS/BYEs (dialog::keepalive), any shard
            }
            // A response from a phone (the callee, named in To) shows its NAT binding alive.
            self.note_traffic(v, remote, true);
            // Client transactions of the relay (RFC 3261 §17.1.3); unmatched: discarded.
            self.relay().handle_response(now, local, remote, msg, v);
            return;
        }
        self.io.stats.requests_in += 1;
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
        let _ = self.pinger().note_alive_uri(party.uri(), remote);
    }

    /// A datagram larger than the receive buffer arrived and was cut: it is counted as too
    /// large and dropped (a truncated message must never be parsed).
    pub fn handle_truncated_datagram(&mut self, _now: Millis, remote: SocketAddr) {
        let kind = ParseErrorKind::MessageTooLarge;
        self.io.stats.parse_errors[kind.index()] += 1;
        self.io.stats.dropped += 1;
        self.io.event(CoreEvent::Malformed {
            remote,
            kind,
            at: 0,
            answered: false,
        });
    }

    /// A message from another shard.
    pub fn handle_shard_msg(&mut self, now: Millis, from: ShardId, msg: ShardMsg) {
        self.io.stats.shard_msgs_in += 1;
        match msg {
            ShardMsg::Datagram {
                local,
                remote,
                bytes,
                parsed,
                ..
            } => {
                self.io.arrival = from;
                // Parse once across the mesh: what the sender parsed, re-attached.
                match parsed.and_then(|p| (*p).attach(&bytes)) {
                    Some((msg, v)) => self.handle_valid(now, local, remote, &msg, &v),
                    None => self.handle_datagram(now, local, remote, &bytes),
                }
                self.io.arrival = self.io.cfg.shard;
            }
            ShardMsg::Lookup { aor, token } => self.answer_lookup(now, from, &aor, token),
            ShardMsg::LookupReply(reply) if crate::proxy::is_relay_token(reply.token) => {
                self.relay().relay_lookup_reply(now, reply)
            }
            ShardMsg::LookupReply(reply) => self.lookups.push_back(reply),
            ShardMsg::Dialog(m) => self.dialog().shard_msg(now, m),
            ShardMsg::OutboundFlow { local, remote } => self.outbound_flow_confirmed(local, remote),
            ShardMsg::FlowFailed {
                local,
                remote,
                failed,
            } => {
                // Another shard saw a flow fail or register again (RFC 5626 §5.3; `flows`).
                let flows = &mut self.loc.dead_flows;
                if failed {
                    flows.insert(local, remote);
                } else {
                    flows.remove(local, remote);
                }
            }
        }
    }

    /// Time has reached `now`: fire due timers (binding expiry, keepalives).
    pub fn handle_timeout(&mut self, now: Millis) {
        let mut fired = std::mem::take(&mut self.fired);
        fired.clear();
        self.io.wheel.advance(Tick(now.0 / TICK_MILLIS), &mut fired);
        for &key in &fired {
            if key & crate::txn::TXN_TIMER_BIT != 0 {
                self.relay().txn_timer(now, key);
            } else {
                self.store().binding_timer(now, key);
            }
        }
        self.fired = fired;
        self.pinger().nat_timeout(now);
        self.dialog().timeout(now);
    }

    /// The next datagram to send; the borrow ends at the next call.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        let mut t = self.io.out.pop()?;
        // RFC 3261 §18.2.2: a response for a connection that closed goes to a new one
        // (`stream_flows`); nothing to look at while no connection of ours has closed.
        if self.streams.any_closed() {
            let transport = self.io.cfg.proxy.transport_of(t.local);
            t.remote = self
                .streams
                .reconnect_target(transport, t.local, t.remote, t.data);
        }
        Some(t)
    }

    /// Number of datagrams waiting in [`Core::poll_transmit`].
    pub fn pending_transmits(&self) -> usize {
        self.io.out.len()
    }

    /// The next hand-off to another shard.
    pub fn poll_shard_msg(&mut self) -> Option<(ShardId, ShardMsg)> {
        self.io.shard_out.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<CoreEvent> {
        self.io.events.pop_front()
    }

    /// When `handle_timeout` must be called next (`None`: no timer pending).
    pub fn poll_timeout(&self) -> Option<Millis> {
        let wheel = self
            .io
            .wheel
            .next_expiry()
            .map(|t| Millis(t.0.saturating_mul(TICK_MILLIS)));
        let dialogs = self.dialogs.poll_timeout(&self.io.cfg.dialogs);
        [wheel, self.nat_poll_timeout(), dialogs]
            .into_iter()
            .flatten()
            .min()
    }
}
