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
//! others over the mesh ([`ShardMsg::FlowFailed`]), since an in-dialog request lands on
//! whichever shard the kernel picks. Nothing is looked up while the table is empty, so
//! calls pay nothing in the common case.

use std::collections::{HashSet, VecDeque};
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;

use crate::core::Core;
use crate::output::LocalId;
use crate::shard::{ShardId, ShardMsg};

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

impl Core {
    /// Failed flows this shard remembers (RFC 5626 §5.3).
    pub fn dead_flow_count(&self) -> usize {
        self.dead_flows.len()
    }

    /// `(local, addr)` failed: remembered here and on every other shard.
    pub(crate) fn flow_failed(&mut self, local: LocalId, addr: SocketAddr) {
        if self.dead_flows.insert(local, addr) {
            self.tell_shards(local, addr, true);
        }
    }

    /// `(local, addr)` registered again: forgotten here and on every other shard.
    pub(crate) fn flow_alive(&mut self, local: LocalId, addr: SocketAddr) {
        if self.dead_flows.remove(local, addr) {
            self.tell_shards(local, addr, false);
        }
    }

    /// Binding `idx` is about to go (removed or expired): an Outbound binding (`reg-id`,
    /// or a Contact with `ob`) takes its flow with it (RFC 5626 §5.3).
    pub(crate) fn outbound_binding_gone(&mut self, idx: u32) {
        let b = self.loc.get(idx);
        let outbound = b.reg_id != 0
            || sipedge_msg::Uri::parse(b.contact()).is_ok_and(|u| u.params().has(b"ob"));
        if outbound {
            let (local, addr) = (LocalId(b.local), b.source());
            self.flow_failed(local, addr);
        }
    }

    /// Whether a request whose next hop is `(local, addr)` must be answered 430.
    #[inline]
    pub(crate) fn flow_is_dead(&self, local: LocalId, addr: SocketAddr) -> bool {
        self.dead_flows.contains(local, addr)
    }

    /// A [`ShardMsg::FlowFailed`] from another shard.
    pub(crate) fn handle_flow_msg(&mut self, local: LocalId, remote: SocketAddr, failed: bool) {
        if failed {
            self.dead_flows.insert(local, remote);
        } else {
            self.dead_flows.remove(local, remote);
        }
    }

    fn tell_shards(&mut self, local: LocalId, remote: SocketAddr, failed: bool) {
        for s in 0..self.cfg.shards {
            if s != self.cfg.shard.0 {
                self.shard_out.push_back((
                    ShardId(s),
                    ShardMsg::FlowFailed {
                        local,
                        remote,
                        failed,
                    },
                ));
            }
        }
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
