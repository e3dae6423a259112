//! The runtime's reports about stream connections (issue 19, `stream_flows`).

use std::net::SocketAddr;

use crate::core::Core;
use crate::output::LocalId;
use crate::time::Millis;

impl Core {
    /// [`crate::ShardMsg::OutboundFlow`]: the AoR's shard accepted an Outbound REGISTER
    /// that arrived over our connection `(local, remote)`. Already closed (the close
    /// overtook the message): the flow fails now.
    pub(crate) fn outbound_flow_confirmed(&mut self, local: LocalId, remote: SocketAddr) {
        if self.streams.is_closed(local, remote) {
            self.io.stats.outbound_flows_failed += 1;
            self.store().flow_failed(local, remote);
        } else {
            self.loc.outbound_flows.insert(local, remote);
        }
    }

    /// The stream connection of flow `(local, remote)` closed — the peer closed it, it
    /// timed out, or it failed — on the shard that owned it (the one whose core read it).
    ///
    /// RFC 5626 §5.3 / §11.5: a closed connection is a failed flow. When a REGISTER with
    /// Outbound (`ob`, or `reg-id` with an instance) was accepted over it, the flow fails on
    /// every shard (`bindings::Store::flow_failed`, [`crate::ShardMsg::FlowFailed`]): a
    /// request to a binding on it, or an in-dialog request toward it, gets `430 Flow
    /// Failed` instead of a connection toward a phone behind NAT. Any other flow keeps its
    /// bindings as they are (the runtime may connect out to their address). Either way
    /// a response still owed on it goes to a new connection (RFC 3261 §18.2.2,
    /// `Core::poll_transmit`). A report for a UDP socket is ignored.
    pub fn handle_flow_closed(&mut self, _now: Millis, local: LocalId, remote: SocketAddr) {
        if !self.io.cfg.proxy.is_stream(local) {
            return;
        }
        self.io.stats.flows_closed += 1;
        self.streams.closed(local, remote);
        if self.loc.outbound_flows.remove(local, remote) {
            self.io.stats.outbound_flows_failed += 1;
            self.store().flow_failed(local, remote);
        }
    }

    /// Outbound stream flows this shard remembers (bounded by
    /// [`crate::OUTBOUND_FLOW_CAP`]).
    pub fn outbound_flow_count(&self) -> usize {
        self.loc.outbound_flows.len()
    }
}
