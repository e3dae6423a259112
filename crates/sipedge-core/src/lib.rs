//! `sipedge-core`: the sans-IO protocol logic of the edge — transactions, registrar, location
//! store, authentication, NAT handling, proxy and limits. Today: stateless replies, the
//! registrar, the location table and the transaction-stateful relay.
//!
//! **What it does not do.** No I/O, no clock, no threads, no RNG of its own, no `unsafe`.
//! Inputs come in through `handle_*` calls with the current time as an argument; outputs are
//! drained with `poll_*` calls (the shape of `quinn-proto`):
//!
//! | input | output |
//! | --- | --- |
//! | [`Core::handle_datagram`] | [`Core::poll_transmit`] — datagrams to send |
//! | [`Core::handle_shard_msg`] | [`Core::poll_shard_msg`] — hand-offs to other shards |
//! | [`Core::handle_timeout`] | [`Core::poll_event`] — things the shell should know (logs) |
//! | | [`Core::poll_timeout`] — when to call `handle_timeout` next |
//!
//! One `Core` per shard. Ownership across shards (ARCHITECTURE.md §1): a binding lives on
//! `hash(AoR) % shards`; a client transaction on the shard whose id its Via branch encodes.
//!
//! Durability (the core side; file I/O is the shell's): [`Core::poll_journal`] drains
//! binding-change records, [`Core::for_each_binding_record`] snapshots,
//! [`Core::restore_record`] replays, [`record_owner`] re-routes; [`Core::set_wall_clock`]
//! gives the UNIX time the records carry. Lookups: [`Core::lookup`] on the owner,
//! [`Core::request_lookup`] / [`Core::poll_lookup`] from anywhere (over the mesh).
//! Admin API (`admin`): [`Core::handle_admin`] / [`Core::poll_admin_reply`] on the owner
//! shard, between turns: one AoR, a listing in bounded slices, a journalled removal, and a
//! MESSAGE to every contact of an AoR, which the relay originates (`proxy::originate`:
//! client transactions with no server side, their finals for a local consumer) and which
//! is answered once every contact has its final response.
//!
//! NAT (`nat`): each stored contact is marked NATed or not at REGISTER; the relay reaches a
//! NATed binding at [`LookupContact::received`] from the binding's socket
//! ([`LookupContact::local`]) and reports traffic from it with [`Core::note_alive`].
//! Per-user settings arrive in [`NatConfig::users`] (read through [`Core::nat_user`]; on
//! reload the next generation ([`NatUsers::next`]) arrives with [`Core::handle_config`] and
//! is re-applied at once to the bindings of the changed AoRs).
//!
//! Configuration reload: [`Core::handle_config`] takes immutable [`ReloadTables`] between
//! turns; the core holds no shared mutable configuration.
//! Keepalives run inside [`Core::handle_timeout`]; counters in [`CoreStats::nat`].
//!
//! **Shape** (issue 14; `tests/no_cycles.rs` keeps it). [`Core`] is a thin dispatcher: it
//! owns the shard's identity, one output sink (`io::Io`: config, outbox, hand-offs,
//! journal queue, events, counters, scratch, wheel, MAC and To-tag keys, wall clock) and
//! each subsystem's state, and lends a subsystem `&mut` of the sink and of the stores it
//! works on for one call (the rustls/quinn pattern). Only `core.rs` and `core/` (dispatch,
//! and the public hooks as glue: `admin`, `auth`, `nat`, `relay`, `lookup`, `journal`,
//! `invariants`, `dialog`) have `impl Core`; no other module names `crate::core`.
//!
//! | module | kind | owns | is lent / names |
//! | --- | --- | --- | --- |
//! | `core` (+ `core/`) | dispatcher | identity, the sink, every subsystem's state | everything below |
//! | `registrar` (`Registrar<'_>`) | subsystem | `RegistrarBufs` | `&mut Location`, sink, `AuthState`, `NatRuntime`; names `auth`, `nat`, `bindings` |
//! | `auth` (`Authenticator<'_>`) | subsystem | `AuthState` (nonce key, nc window, HA2 memo) | sink |
//! | `nat` (`NatPinger<'_>`) | subsystem | `NatRuntime` (schedule, RTT histogram) | `&mut Location`, sink; names `bindings` |
//! | `proxy` (`RelayCx<'_>`) | subsystem | `Relay` (the transaction table) | `&mut Location`, sink, `AuthState`, `Dialogs`; names `auth`, `nat` (reach address), `bindings`, `dialog` |
//! | `dialog` (`DialogCx<'_>`) | subsystem | `Dialogs` (calls holding channels: pending INVITEs by cell, confirmed calls with their ends, keepalive and max-duration queues) | sink; lent to the relay too, which hands it the INVITE's cell; names `auth` (who called), `limits` |
//! | `admin` (`Admin<'_>`) | subsystem | `AdminQueue` (answers to admin queries) | `&mut Location`, sink; names `bindings`, `lookup` |
//! | `bindings` (`Store<'_>`) | shared | — | `&mut Location` + sink: store/remove a binding with its timer and journal record, binding expiry; a flow failed or alive again (RFC 5626 §5.3, told to every shard) |
//! | `io`, `stateless` (the one `respond` path) | shared leaves | the sink | `config`, `stats`, `output`, `date`, `secret`, `aor` |
//! | `config` (+ `config/nat`: every subsystem's settings), `stats` (every subsystem's counters), `auth_db` (the authentication tables, digest, nonces, offers) | leaves | — | no subsystem (the subsystems re-export their structs) |
//! | `limits` (the call-limit table and its shared counters, a [`limits::Charge`] per call) | leaf | — | `auth_db` (whose users and accounts it counts) |
//! | `location` (+ `nat_bits`), `lookup`, `record`, `txn`, `aor`, `shard`, `output`, `refusal`, `time`, `secret`, `date` | leaves | — | no subsystem |
//! | `flows` (the failed-flow table and the Outbound stream flows, held by `Location`), `path_policy`, `outbound`, `stun` | leaves | — | no subsystem (`Store` fills `flows`, the relay reads it) |
//! | `stream_flows` (a shard's closed stream connections, issue 19) | leaf, state held by `Core` | — | no subsystem; `Core::handle_flow_closed` (`core/streams.rs`) fails an Outbound flow (`flows`, filled by the registrar through `bindings`), `Core::poll_transmit` sends a response owed on a closed connection to its sent-by (RFC 3261 §18.2.2) |
//! | `protect` ([`Protect`]: bans, per-source/per-user counts, pressure) | leaf, state held by `Core` | — | no subsystem; decides with explicit arguments. The dispatcher screens with it (`core/protect.rs`), lends `&mut` of it to the registrar (REGISTER shedding), the relay and the authenticator (`auth/guard.rs`: guessing counts); the 503 is `Io::shed` (`stateless`) |
//!
//! No module cycle.
//!
//! **Layout.** `core` (the [`Core`] type and dispatch), `io` (the sink), `stateless` (the
//! replies the edge writes itself: one `respond` path, the amplification bound, To tags),
//! `registrar` (REGISTER per RFC 3261 §10.3, RFC 5626 flows, RFC 3327 Path), `bindings`
//! (store operations with their timers and journal records; binding expiry), `location/`
//! (the shard's slice of the location table, Kamailio's usrloc: `binding` slots, chains,
//! `interner` strings, the `aor_index`, the `blobs` byte arena, `nat_bits`), `refusal`
//! (typed refusals), `aor` (canonical AoR, routing and table hashes, §19.1.4 contact
//! comparison), `lookup` (lookup types), `core/journal` (the durability API) and `record`
//! (its encoding), `date` (the Date header), `output` (the reused transmit arena, the
//! journal queue, shard and socket ids), `config`, `stats`, `time`, `shard` (hand-off
//! messages), `nat` (NAT detection, the received address, the keepalive pinger), `auth`
//! (digest, nonces, IP/CLI authentication; its module doc has the rules and the relay's
//! hook [`Core::authenticate_request`]), `txn` (RFC 3261 §17 transaction cells, states,
//! timer keys, our Via branch) and `proxy` (the RFC 3261 §16 relay: routing, forwarding,
//! responses, timers, the Record-Route dialog token, the hooks for auth and NAT, and
//! `originate`: requests the edge sends itself, whose finals go to a local consumer),
//! `limits` (issue 16: channels and CPS per user, account, source IP and server, counted in
//! shared atomics), `dialog` (calls holding their charges, in-dialog keepalives, BYEs from
//! the edge; its hooks in the relay are `proxy/dialogs.rs`),
//! `secret` (the node secret, [`NodeSecret`], and the SipHash-2-4 MAC of every token and
//! branch we hand out), `admin` (the admin API's queries, answered by the owner shard in
//! bounded slices), `protect` (issue 17: density, scanner and password-guessing bans and
//! overload shedding — [`Protect`], fed by the dispatch and by the shell's
//! [`Core::handle_ban`], [`Core::handle_unban`], [`Core::handle_pressure`]; bans decided
//! here come out as [`CoreEvent::Banned`]; counters in [`Core::protect_stats`]).
//! Relay counters: [`Core::proxy_stats`].

pub mod admin;
mod aor;
pub mod auth;
mod auth_db;
mod bindings;
pub mod cluster;
mod config;
mod core;
mod date;
pub mod dialog;
mod flows;
mod io;
pub mod limits;
mod location;
mod lookup;
mod nat;
mod outbound;
mod output;
mod path_policy;
mod protect;
mod proxy;
mod record;
mod refusal;
mod registrar;
mod secret;
mod shard;
mod stateless;
mod stats;
mod stream_flows;
pub mod stun;
mod time;
mod txn;

pub use crate::config::{
    CoreConfig, Overflow, RegistrarConfig, ACCEPT, ALLOW, DEFAULT_EXPIRES_SECS,
    DEFAULT_MAX_BINDINGS, DEFAULT_MAX_CONTACTS, DEFAULT_MAX_EXPIRES_SECS, DEFAULT_MIN_EXPIRES_SECS,
    DEFAULT_UDP_MTU, SUPPORTED,
};
pub use crate::core::journal::{AdoptedBinding, SnapshotCursor};
pub use crate::core::{Core, CoreEvent, ReloadTables};
pub use crate::flows::DEAD_FLOW_CAP;
pub use crate::location::Transport;
pub use crate::lookup::{LookupContact, LookupError, LookupReply};
pub use crate::nat::{
    is_private, via_differs, NatConfig, NatMode, NatStats, NatUser, NatUserMap, NatUsers,
    PingMethod, PingMode, DEFAULT_PING_FAILURES_MAX, DEFAULT_PING_INTERVAL_SECS,
    MAX_PING_FAILURES_MAX, MAX_PING_INTERVAL_SECS, MIN_PING_INTERVAL_SECS, RTT_BUCKETS_MS,
};
pub use crate::output::{LocalId, Transmit};
pub use crate::path_policy::AcceptPath;
pub use crate::protect::{
    ip_key, BanReason, Protect, ProtectConfig, ProtectStats, Verdict as ProtectVerdict,
    DEFAULT_AUTH_FAILURES_MAX, DEFAULT_AUTH_FAILURES_WINDOW_SECS, DEFAULT_BAN_SECS,
    DEFAULT_MAX_BANS, DEFAULT_MAX_REQUESTS_PER_SEC, DEFAULT_MAX_SOURCES, DEFAULT_MAX_USERS,
    DEFAULT_RETRY_AFTER_MAX_SECS, DEFAULT_RETRY_AFTER_MIN_SECS, DEFAULT_SCANNER_USER_AGENTS,
    DEFAULT_USER_AUTH_FAILURES_MAX,
};
pub use crate::proxy::{ProxyConfig, ProxyStats, OVERLOAD_RETRY_AFTER_SECS};
pub use crate::record::{
    aor_owner, decode_change, record_owner, BindingChange, RestoreError, RECORD_VERSION,
};
pub use crate::refusal::{AuthRefusal, Refusal, RegistrarRefusal, RelayRefusal, StatelessRefusal};
pub use crate::secret::{NodeSecret, SecretError, NODE_SECRET_LEN};
pub use crate::shard::{ShardId, ShardMsg};
pub use crate::stats::{CoreStats, Counters, MetricKind, OverloadStats, Row};
pub use crate::stream_flows::{CLOSED_FLOW_CAP, OUTBOUND_FLOW_CAP};
pub use crate::time::Millis;
pub use crate::txn::table::{
    TxnLimits, DEFAULT_MAX_TRANSACTIONS, DEFAULT_MAX_TRANSACTION_BYTES, RETAINED_BUFFER_BYTES,
};
pub use crate::txn::{SipTimers, DEFAULT_T1_MS, DEFAULT_T2_MS, DEFAULT_T4_MS};
