//! `[cluster]` as the core sees it (issue 20): whether AoRs this edge holds no binding for
//! are asked of the shared store, which edges are peers, how long a lookup may take.
//! Declared here beside the rest of [`crate::CoreConfig`]; the rules that read them are in
//! `proxy::remote` (lookups, the home-edge relay, peer trust) and `auth_db::nonce` (nonces
//! accepted across edges).

use std::net::IpAddr;

use crate::time::Millis;

/// Default `lookup_timeout`: how long a transaction waits for the cluster thread's answer
/// before it ends with 480. A cache hit answers within one turn, a Redis round trip on a
/// LAN within a few ms; 500 ms (T1) leaves the caller's own timers (B, F = 64·T1) room.
pub const DEFAULT_LOOKUP_TIMEOUT_MS: u64 = 500;
/// Default `max_pending_lookups`: transactions one shard holds while they wait for a
/// remote lookup; one more is refused with 503 (counted). 10 000 waiting for 500 ms is
/// 20 000 lookups/s per shard, far beyond the relay's rate of new calls.
pub const DEFAULT_MAX_PENDING_LOOKUPS: usize = 10_000;

/// The core's part of `[cluster]` (the shell builds it; `Default`: off, today's behaviour
/// exactly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterCoreConfig {
    /// Registrations are shared across edges: a request to an AoR with no binding here is
    /// looked up in the shared store (`Core::poll_remote_lookup`) before it is refused.
    pub enabled: bool,
    /// This edge's unique name (`[cluster] node`): its nonces carry a hash of it.
    pub node: Box<str>,
    /// The other edges' addresses. A request from one of them is a relay from a peer's
    /// home-edge lookup: trusted like an `[[ip_auth]]` source for a local user (no digest
    /// challenge), never banned by `protect`, and never looked up remotely again (loop
    /// guard: 480 when the binding is gone here too).
    pub peers: Vec<IpAddr>,
    /// How long a transaction waits for a remote answer.
    pub lookup_timeout: Millis,
    /// Transactions this shard holds waiting for a remote answer at most.
    pub max_pending_lookups: usize,
}

impl Default for ClusterCoreConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            node: "".into(),
            peers: Vec::new(),
            lookup_timeout: Millis(DEFAULT_LOOKUP_TIMEOUT_MS),
            max_pending_lookups: DEFAULT_MAX_PENDING_LOOKUPS,
        }
    }
}

impl ClusterCoreConfig {
    /// Is `ip` one of the peer edges? (Always false with the cluster off.)
    pub fn is_peer(&self, ip: IpAddr) -> bool {
        self.enabled && self.peers.contains(&ip)
    }

    /// The 16-bit node id nonces carry: FNV-1a of the node name, folded. Two edges whose
    /// names collide refuse each other's nonces (a fresh local challenge, one more round
    /// trip), never accept a replay.
    pub fn node_id(&self) -> u16 {
        let mut h: u32 = 0x811c_9dc5;
        for &b in self.node.as_bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
        }
        (h >> 16) as u16 ^ h as u16
    }
}
