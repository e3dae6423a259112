//! Flows known to have failed (RFC 5626 §5.3, issue 15 item 4): a request that must go to
//! one is answered `430 Flow Failed` instead of being sent into the void.
//!
//! | rule | source |
//! | --- | --- |
//! | a flow is `(our socket, the peer's address)` — the flow a binding registered on, or an end of a dialog named by our Record-Route token | RFC 5626 §5.2, §5.3 |
//! | a flow fails when its keepalives go unanswered (`nat_ping = "timeout"` removes its binding) | RFC 5626 §4.4, §5.3 |
//! | an Outbound binding (`reg-id`, or a Contact with `ob`) that goes — removed, replaced by `*`, expired — takes its flow with it | RFC 5626 §5.3, §6 |
//! | a request (in-dialog, or to a binding) whose next hop is a failed flow gets 430; an ACK is dropped (it has no response) | RFC 5626 §5.3, §11.5 |
//! | a flow that registers again is alive again | RFC 5626 §4.2.1 |
//!
//! The table is small and bounded ([`DEAD_FLOW_CAP`]; the oldest entry goes first) and
//! kept on every shard: the shard that sees a flow fail (the binding's owner) tells the
//! others over the mesh ([`crate::ShardMsg::FlowFailed`]), since an in-dialog request lands on
//! whichever shard the kernel picks. Nothing is looked up while the table is empty, so
//! calls pay nothing in the common case.
//!
//! A leaf: the table ([`DeadFlows`]) is flow storage and lives in the shard's
//! `Location`, so every view lent the store sees it; filling it (and telling the other
//! shards) is `bindings::Store::{flow_failed, flow_alive}`, also run when an Outbound
//! binding is removed or expires; the relay reads it (`proxy/route.rs`,
//! `proxy/forward.rs`); a hand-off from another shard lands in `Core::handle_shard_msg`.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;

use crate::output::LocalId;

/// Failed flows remembered per shard; past this, the oldest is forgotten (a request to it
/// is then sent as before, which is the behaviour without this table).
pub const DEAD_FLOW_CAP: usize = 4096;

type Key = (LocalId, SocketAddr);

/// The failed flows, oldest first.
#[derive(Debug, Default)]
pub(crate) struct DeadFlows {
    set: HashSet<Key, BuildHasherDefault<std::collections::hash_map::DefaultHasher>>,
    order: VecDeque<Key>,
}

impl DeadFlows {
    /// Whether `(local, addr)` is known to have failed.
    #[inline]
    pub(crate) fn contains(&self, local: LocalId, addr: SocketAddr) -> bool {
        !self.set.is_empty() && self.set.contains(&(local, addr))
    }

    /// Remembers a failed flow (the oldest goes past [`DEAD_FLOW_CAP`]); true if new.
    pub(crate) fn insert(&mut self, local: LocalId, addr: SocketAddr) -> bool {
        if !self.set.insert((local, addr)) {
            return false;
        }
        self.order.push_back((local, addr));
        while self.order.len() > DEAD_FLOW_CAP {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    /// Forgets a flow (it registered again); true if it was there.
    pub(crate) fn remove(&mut self, local: LocalId, addr: SocketAddr) -> bool {
        if self.set.is_empty() || !self.set.remove(&(local, addr)) {
            return false;
        }
        self.order.retain(|&k| k != (local, addr));
        true
    }

    /// Flows remembered.
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

/// Outbound stream flows remembered per shard; past this a new one is not remembered (its
/// close then leaves its bindings as a non-Outbound binding's: the behaviour before issue
/// 19).
pub const OUTBOUND_FLOW_CAP: usize = 1 << 18;

/// The Outbound flows of this shard's connections: a REGISTER with an `ob` Contact, or a
/// `reg-id` with an instance, was accepted over them (RFC 5626 §5.2). Held by `Location`,
/// so the registrar fills it (`bindings::Store::outbound_registered`); bounded ([`OUTBOUND_FLOW_CAP`]).
#[derive(Debug, Default)]
pub(crate) struct OutboundFlows {
    set: HashSet<Key, BuildHasherDefault<std::collections::hash_map::DefaultHasher>>,
}

impl OutboundFlows {
    /// Remembers an Outbound flow (not past the cap).
    pub(crate) fn insert(&mut self, local: LocalId, remote: SocketAddr) {
        if self.set.len() < OUTBOUND_FLOW_CAP {
            self.set.insert((local, remote));
        }
    }

    /// Forgets a flow (its connection closed); true if it was an Outbound one.
    pub(crate) fn remove(&mut self, local: LocalId, remote: SocketAddr) -> bool {
        !self.set.is_empty() && self.set.remove(&(local, remote))
    }

    /// Flows remembered.
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, 1], port))
    }

    #[test]
    fn bounded_oldest_first_and_forgettable() {
        let mut t = DeadFlows::default();
        assert!(!t.contains(LocalId(0), a(1)));
        for p in 0..(DEAD_FLOW_CAP as u16 + 10) {
            assert!(t.insert(LocalId(0), a(p)));
        }
        assert_eq!(t.len(), DEAD_FLOW_CAP);
        assert!(!t.contains(LocalId(0), a(0)), "the oldest went");
        assert!(t.contains(LocalId(0), a(10)));
        assert!(
            !t.contains(LocalId(1), a(10)),
            "another socket is another flow"
        );
        assert!(!t.insert(LocalId(0), a(10)), "already there");
        assert!(t.remove(LocalId(0), a(10)));
        assert!(!t.contains(LocalId(0), a(10)));
        assert!(!t.remove(LocalId(0), a(10)));
        assert_eq!(t.len(), DEAD_FLOW_CAP - 1);
        assert_eq!(t.order.len(), t.set.len());
    }
}
