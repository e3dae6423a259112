//! What a shard's core knows about the stream connections (TCP, TLS, WS, WSS) it reads
//! from (issue 19): which flows registered with RFC 5626 Outbound, and which connections
//! closed. The runtime owns the connections; it tells the core of the one that accepted a
//! connection when it closes (`Core::handle_flow_closed`).
//!
//! | rule | source |
//! | --- | --- |
//! | a closed connection is a failed flow: a request to an Outbound binding on it gets 430, never a connection toward a NATed phone | RFC 5626 §5.3, §11.5 |
//! | an Outbound flow is one a REGISTER with an `ob` Contact or a `reg-id` (with `+sip.instance`) was accepted over | RFC 5626 §4.2.1, §5.2 |
//! | a non-Outbound stream binding keeps its address: the runtime may connect out to it | RFC 3261 §18.1.1, RFC 5626 §3.1 |
//! | a response for a connection that failed goes to a new connection to the source IP (the `received` address) and the Via's sent-by port (5060, 5061 for TLS, when absent) | RFC 3261 §18.2.2, §19.1.2 |
//!
//! Both tables are per shard and bounded, kept by the shard that owns the connection (the
//! one that reads it, so the one a REGISTER or a request from it arrives on). The
//! Outbound-flow table (`flows::OutboundFlows`, in `Location`) is filled when the AoR's
//! registrar accepts an Outbound REGISTER (`bindings::Store::outbound_registered`, over
//! the mesh when the AoR lives on another shard) and forgets a flow when its connection
//! closes: it holds at most this shard's open connections that registered with Outbound,
//! and at most [`OUTBOUND_FLOW_CAP`]. The closed table here keeps the latest
//! [`CLOSED_FLOW_CAP`] closes, and forgets a flow a message arrives on again.

use std::net::SocketAddr;

use sipedge_msg::Message;

use crate::flows::DeadFlows;
use crate::location::Transport;
use crate::output::LocalId;

pub use crate::flows::OUTBOUND_FLOW_CAP;
/// Closed connections remembered per shard for §18.2.2 (the oldest is forgotten first; the
/// same bounded table as the failed flows).
pub const CLOSED_FLOW_CAP: usize = crate::flows::DEAD_FLOW_CAP;

/// A shard's closed stream connections.
#[derive(Debug, Default)]
pub(crate) struct StreamFlows {
    /// Connections that closed, for §18.2.2 (bounded, oldest first).
    closed: DeadFlows,
}

impl StreamFlows {
    /// A message arrived on stream flow `(local, remote)`: its connection is up again.
    #[inline]
    pub(crate) fn note_message(&mut self, local: LocalId, remote: SocketAddr) {
        self.closed.remove(local, remote);
    }

    /// The connection of `(local, remote)` closed.
    pub(crate) fn closed(&mut self, local: LocalId, remote: SocketAddr) {
        self.closed.insert(local, remote);
    }

    /// Whether the connection of `(local, remote)` closed (and carried nothing since).
    pub(crate) fn is_closed(&self, local: LocalId, remote: SocketAddr) -> bool {
        self.closed.contains(local, remote)
    }

    /// RFC 3261 §18.2.2: where a message from us to `(local, remote)` goes — `remote`,
    /// unless it is a response and that connection closed: then the source IP and the top
    /// Via's sent-by port (the transport's default port when none is written, §19.1.2).
    /// A request keeps its address (a binding's, RFC 5626 decides: `flows`).
    pub(crate) fn reconnect_target(
        &self,
        transport: Transport,
        local: LocalId,
        remote: SocketAddr,
        data: &[u8],
    ) -> SocketAddr {
        if !transport.is_stream()
            || !data.starts_with(b"SIP/2.0 ")
            || !self.closed.contains(local, remote)
        {
            return remote;
        }
        let Ok(msg) = Message::parse(data) else {
            return remote;
        };
        let Ok(via) = msg.top_via() else {
            return remote;
        };
        let default = match transport {
            Transport::Tls | Transport::Wss => 5061,
            _ => 5060,
        };
        SocketAddr::new(remote.ip(), via.port().unwrap_or(default))
    }

    /// Whether any connection of this shard's closed (and has not carried a message since).
    #[inline]
    pub(crate) fn any_closed(&self) -> bool {
        self.closed.len() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "198.51.100.7:40000";

    fn closed_flows() -> StreamFlows {
        let mut f = StreamFlows::default();
        f.closed(LocalId(1), PEER.parse().unwrap());
        f
    }

    #[test]
    fn only_a_response_on_a_closed_stream_flow_is_redirected() {
        let f = closed_flows();
        let peer: SocketAddr = PEER.parse().unwrap();
        let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 198.51.100.7:5070;branch=z9hG4bKx\r\nContent-Length: 0\r\n\r\n";
        let to = f.reconnect_target(Transport::Tcp, LocalId(1), peer, resp);
        assert_eq!(to, "198.51.100.7:5070".parse::<SocketAddr>().unwrap());
        // A request keeps its address (a binding's: RFC 5626 decides, `flows`).
        let req =
            b"BYE sip:a@198.51.100.7 SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKy\r\n\r\n";
        assert_eq!(
            f.reconnect_target(Transport::Tcp, LocalId(1), peer, req),
            peer
        );
        // UDP, another socket, an open flow: unchanged.
        assert_eq!(
            f.reconnect_target(Transport::Udp, LocalId(1), peer, resp),
            peer
        );
        assert_eq!(
            f.reconnect_target(Transport::Tcp, LocalId(2), peer, resp),
            peer
        );
        let other: SocketAddr = "198.51.100.7:40001".parse().unwrap();
        assert_eq!(
            f.reconnect_target(Transport::Tcp, LocalId(1), other, resp),
            other
        );
        // Unreadable: the old address (the runtime's connect fails, counted).
        let bad = b"SIP/2.0 200 OK\r\nVia: \x01\r\n\r\n";
        assert_eq!(
            f.reconnect_target(Transport::Tcp, LocalId(1), peer, bad),
            peer
        );
    }

    #[test]
    fn a_message_on_the_flow_ends_the_redirect() {
        let mut f = closed_flows();
        let peer: SocketAddr = PEER.parse().unwrap();
        assert!(f.any_closed());
        f.note_message(LocalId(1), peer);
        assert!(!f.any_closed());
        let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 198.51.100.7;branch=z9hG4bKx\r\n\r\n";
        assert_eq!(
            f.reconnect_target(Transport::Tls, LocalId(1), peer, resp),
            peer
        );
    }

    #[test]
    fn the_closed_table_is_bounded() {
        let mut f = StreamFlows::default();
        for p in 0..(CLOSED_FLOW_CAP as u16 + 10) {
            f.closed(LocalId(1), SocketAddr::from(([198, 51, 100, 7], p)));
        }
        assert_eq!(f.closed.len(), CLOSED_FLOW_CAP);
        assert!(!f
            .closed
            .contains(LocalId(1), SocketAddr::from(([198, 51, 100, 7], 0))));
    }
}
