//! The cluster's hooks on [`Core`] (issue 20; thin glue: `proxy::remote` does the work).
//!
//! The shell drains [`Core::poll_remote_lookup`] each turn into the cluster thread and
//! feeds every answer back with [`Core::handle_remote_answer`] — also when the cluster
//! thread could not take the question (`RemoteAnswer::Unavailable`, at once).

use crate::cluster::{RemoteAnswer, RemoteLookup};
use crate::config::CoreConfig;
use crate::core::Core;
use crate::protect::ProtectConfig;
use crate::time::Millis;

impl Core {
    /// The next lookup for the cluster thread: an AoR with no binding on this edge, asked
    /// for a transaction that waits (at most `[cluster] lookup_timeout`). Never anything
    /// with the cluster off.
    pub fn poll_remote_lookup(&mut self) -> Option<RemoteLookup> {
        self.relay.remote.out.pop_front()
    }

    /// The cluster thread's answer to the lookup with `token`: `Found` relays the waiting
    /// request to the bindings' home edges, `NotFound`/`Unavailable` end it with 480. An
    /// answer that comes after its transaction gave up is ignored (counted).
    pub fn handle_remote_answer(&mut self, now: Millis, token: u64, answer: RemoteAnswer) {
        self.relay().remote_answer(now, token, answer);
    }

    /// Transactions on this shard waiting for a remote answer.
    pub fn remote_lookups_pending(&self) -> usize {
        self.relay.remote.pending
    }
}

/// `[protect]` as this core applies it: the peer edges are trusted (never banned, issue
/// 20) when the cluster is on.
pub(super) fn protect_config(cfg: &CoreConfig) -> ProtectConfig {
    let mut p = cfg.protect.clone();
    if cfg.cluster.enabled {
        p.trusted
            .extend(cfg.cluster.peers.iter().map(|&ip| ipnet::IpNet::from(ip)));
    }
    p
}
