//! Registrations shared across edges (issue 20): what the core asks the cluster thread and
//! what it gets back. A leaf: plain data, no Redis, no I/O.
//!
//! A request to an AoR this edge holds no binding for (when `[cluster]` is on) is not answered
//! 404/480 at once: the AoR's owner shard emits a [`RemoteLookup`] (`Core::poll_remote_lookup`),
//! holds the transaction on a timer, and resumes it on the [`RemoteAnswer`]
//! (`Core::handle_remote_answer`): each remote binding is reached through its **home edge**
//! (the edge whose socket the phone's NAT pinhole points at), never directly.

use std::net::SocketAddr;

pub use crate::config::cluster::{
    ClusterCoreConfig, DEFAULT_LOOKUP_TIMEOUT_MS, DEFAULT_MAX_PENDING_LOOKUPS,
};

/// A lookup the core needs answered; `token` comes back in the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLookup {
    /// Opaque to the cluster thread; names the waiting transaction (and its shard).
    pub token: u64,
    /// The AoR, canonical as the registrar keys it (`user@domain`, lowercase domain).
    pub aor: Box<str>,
}

/// One binding held by another edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBinding {
    /// The home edge's node name (`[cluster] node`).
    pub node: Box<str>,
    /// Where the home edge takes SIP from its peers (`[cluster] address`).
    pub home: SocketAddr,
    /// The Contact URI as registered.
    pub contact: Box<str>,
    /// When it expires, Unix milliseconds.
    pub expires_at_unix_ms: u64,
    /// `q` × 1000 (RFC 3261 §10.2.1.2), 1000 when absent.
    pub q: u16,
}

/// The cluster thread's answer to a [`RemoteLookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteAnswer {
    /// Bindings on live edges (possibly several edges, for forking).
    Found(Vec<RemoteBinding>),
    /// No binding anywhere (or only on dead edges and `takeover` is off): 480/404 as today.
    NotFound,
    /// The shared store could not be asked in time: the request is answered as if the AoR
    /// had no binding (480), counted.
    Unavailable,
}
