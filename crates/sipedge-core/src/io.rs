//! [`Io`]: the one output sink every subsystem writes through (the rustls/quinn pattern).
//!
//! The dispatcher ([`Core`](crate::core::Core)) owns one `Io` and passes `&mut` of it to the
//! subsystem it calls; a subsystem never reaches into `Core`. It holds what every subsystem
//! shares and nothing any of them owns: the configuration, the output queues (datagrams,
//! hand-offs to other shards, journal records, events), the counters, the reused scratch
//! buffer, the timer wheel, the clocks the shell gave (arrival shard, wall-clock offset, the
//! Date cache) and the keys of what goes on the wire (the MAC, the To-tag hasher). The reply
//! path ([`Io::respond`]) is in `stateless`. A leaf: this module names no subsystem.

use std::collections::VecDeque;
use std::net::SocketAddr;

use sipedge_msg::ParseErrorKind;
use sipedge_wheel::Wheel;

use crate::config::CoreConfig;
use crate::output::{JournalQueue, Outbox};
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

/// The shared state and output queues of one shard, lent to a subsystem by the dispatcher.
#[derive(Debug)]
pub(crate) struct Io {
    pub(crate) cfg: CoreConfig,
    pub(crate) out: Outbox,
    pub(crate) shard_out: VecDeque<(ShardId, ShardMsg)>,
    pub(crate) events: VecDeque<CoreEvent>,
    pub(crate) stats: CoreStats,
    /// Reused serialization buffer.
    pub(crate) scratch: Vec<u8>,
    /// Binding expiry, transaction timers (key: slot index and generation).
    pub(crate) wheel: Wheel<u64>,
    pub(crate) journal: JournalQueue,
    /// UNIX ms minus monotonic ms, once the shell has said (`set_wall_clock`).
    pub(crate) wall_offset_ms: Option<i64>,
    /// The shard whose socket received the datagram being handled.
    pub(crate) arrival: ShardId,
    /// The Date of the 200 OKs, formatted once per second.
    pub(crate) date: crate::date::DateCache,
    /// The MAC of every token we send and take back, keyed by the node secret (`secret`).
    pub(crate) mac: crate::secret::Mac,
    /// Hashes the To tags of stateless and registrar replies. Keyed from the node secret,
    /// never by the table seed: its outputs go on the wire, and a table hasher whose
    /// outputs an attacker can collect invites collisions in the location table (issue 13).
    pub(crate) tag_hasher: crate::aor::TableHasher,
    /// The REGISTER being answered was verified by a method (digest, IP, CLI): its 2xx
    /// may exceed the amplification bound (`stateless`). Set by the auth check.
    pub(crate) register_verified: bool,
}

impl Io {
    /// The sink of a new shard.
    pub(crate) fn new(cfg: CoreConfig) -> Io {
        let mac = crate::secret::Mac::new(&cfg.proxy.secret);
        let tag_key = mac.digest(crate::secret::Purpose::ToTag, &[b"stateless reply tags"]);
        Io {
            tag_hasher: crate::aor::TableHasher::new(tag_key),
            mac,
            arrival: cfg.shard,
            wheel: Wheel::with_capacity(cfg.expected_bindings),
            cfg,
            out: Outbox::default(),
            shard_out: VecDeque::new(),
            events: VecDeque::new(),
            stats: CoreStats::default(),
            scratch: Vec::with_capacity(2048),
            journal: JournalQueue::default(),
            wall_offset_ms: None,
            date: crate::date::DateCache::default(),
            register_verified: false,
        }
    }

    /// Queues an event for the shell (dropped past [`MAX_PENDING_EVENTS`]).
    pub(crate) fn event(&mut self, e: CoreEvent) {
        if self.events.len() < MAX_PENDING_EVENTS {
            self.events.push_back(e);
        }
    }

    /// The wall-clock time of monotonic `at`, if the shell has told us the offset.
    pub(crate) fn unix_ms(&self, at: Millis) -> Option<u64> {
        self.wall_offset_ms
            .map(|off| (at.0 as i64).saturating_add(off).max(0) as u64)
    }

    pub(crate) fn unix_of(&self, at: Millis) -> u64 {
        self.unix_ms(at).unwrap_or(at.0)
    }

    pub(crate) fn mono_of_unix(&self, unix_ms: u64) -> Millis {
        let off = self.wall_offset_ms.unwrap_or(0);
        Millis((unix_ms as i64).saturating_sub(off).max(0) as u64)
    }
}
