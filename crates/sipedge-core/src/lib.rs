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
//! **Layout.** `core` (the [`Core`] type and dispatch), `stateless` (requests the edge
//! answers itself without state: OPTIONS, error replies, 405/501/416/481), `registrar`
//! (REGISTER per RFC 3261 §10.3, RFC 5626 flows, RFC 3327 Path; expiry timers), `location/`
//! (the shard's slice of the location table, Kamailio's usrloc: `binding` slots, chains,
//! `interner` strings, the `aor_index`, the `blobs` byte arena holding the bindings'
//! strings), `refusal` (typed refusals), `aor` (canonical AoR,
//! routing and table hashes, §19.1.4 contact comparison), `lookup`, `journal` (the
//! durability API) and `record` (its encoding), `date` (the Date header), `output` (the
//! reused transmit arena), `config`, `stats`, `time`, `shard` (shard ids and hand-off
//! messages), `nat` (NAT detection, the received address, the keepalive pinger).
//! messages), `auth` (digest, nonces, IP/CLI authentication; its module doc has the rules
//! and the relay's hook [`Core::authenticate_request`]), `txn` (RFC 3261 §17 transaction
//! cells, states, timer keys, our Via branch) and `proxy` (the RFC 3261 §16 relay: routing,
//! forwarding, responses, timers, the Record-Route dialog token, and the hooks for auth and
//! NAT), `secret` (the node secret, [`NodeSecret`], and the SipHash-2-4 MAC of every token
//! and branch we hand out). Relay counters: [`Core::proxy_stats`].

mod aor;
pub mod auth;
mod config;
mod core;
mod date;
pub mod dialog;
mod invariants;
mod journal;
pub mod limits;
mod location;
mod lookup;
mod nat;
mod output;
mod proxy;
mod record;
mod refusal;
mod registrar;
mod secret;
mod shard;
mod stateless;
mod stats;
mod time;
mod txn;

pub use crate::config::{
    CoreConfig, Overflow, RegistrarConfig, ACCEPT, ALLOW, DEFAULT_EXPIRES_SECS,
    DEFAULT_MAX_BINDINGS, DEFAULT_MAX_CONTACTS, DEFAULT_MAX_EXPIRES_SECS, DEFAULT_MIN_EXPIRES_SECS,
    SUPPORTED,
};
pub use crate::core::{Core, CoreEvent, ReloadTables};
pub use crate::journal::SnapshotCursor;
pub use crate::location::Transport;
pub use crate::lookup::{LookupContact, LookupError, LookupReply};
pub use crate::nat::{
    is_private, via_differs, NatConfig, NatMode, NatStats, NatUser, NatUserMap, NatUsers,
    PingMethod, PingMode, DEFAULT_PING_FAILURES_MAX, DEFAULT_PING_INTERVAL_SECS,
    MAX_PING_FAILURES_MAX, MAX_PING_INTERVAL_SECS, MIN_PING_INTERVAL_SECS, RTT_BUCKETS_MS,
};
pub use crate::output::{LocalId, Transmit};
pub use crate::proxy::{ProxyConfig, ProxyStats, OVERLOAD_RETRY_AFTER_SECS};
pub use crate::record::{record_owner, RestoreError, RECORD_VERSION};
pub use crate::refusal::{AuthRefusal, Refusal, RegistrarRefusal, RelayRefusal, StatelessRefusal};
pub use crate::secret::{NodeSecret, SecretError, NODE_SECRET_LEN};
pub use crate::shard::{ShardId, ShardMsg};
pub use crate::stats::{CoreStats, Counters, MetricKind, OverloadStats, Row};
pub use crate::time::Millis;
pub use crate::txn::table::{
    TxnLimits, DEFAULT_MAX_TRANSACTIONS, DEFAULT_MAX_TRANSACTION_BYTES, RETAINED_BUFFER_BYTES,
};
pub use crate::txn::{SipTimers, DEFAULT_T1_MS, DEFAULT_T2_MS, DEFAULT_T4_MS};
