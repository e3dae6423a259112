//! `sipedge-core`: the sans-IO protocol logic of the edge — transactions, registrar, location
//! store, authentication, NAT handling, proxy and limits.
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
//! **Layout.** `core` (the [`Core`] type and dispatch), `stateless` (requests the edge
//! answers itself without state: OPTIONS, error replies, 405/501/416/481), `output` (the
//! reused transmit arena), `config`, `stats`, `time`, `shard` (shard ids and hand-off messages).

mod aor;
mod blobs;
mod config;
mod core;
mod date;
mod journal;
mod location;
mod lookup;
mod output;
mod record;
mod registrar;
mod shard;
mod stateless;
mod stats;
mod time;

pub use crate::config::{
    CoreConfig, Overflow, RegistrarConfig, ACCEPT, ALLOW, DEFAULT_EXPIRES_SECS,
    DEFAULT_MAX_CONTACTS, DEFAULT_MAX_EXPIRES_SECS, DEFAULT_MIN_EXPIRES_SECS, SUPPORTED,
};
pub use crate::core::{Core, CoreEvent};
pub use crate::location::Transport;
pub use crate::lookup::{LookupContact, LookupError, LookupReply};
pub use crate::output::{LocalId, Transmit};
pub use crate::record::{record_owner, RestoreError, RECORD_VERSION};
pub use crate::shard::{ShardId, ShardMsg};
pub use crate::stats::CoreStats;
pub use crate::time::Millis;
