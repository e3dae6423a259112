//! What a shard's core knows about the stream connections (TCP, TLS, WS, WSS) it reads
//! from (issue 19): which flows registered with RFC 5626 Outbound, and which connections
//! closed. The runtime owns the connections; it tells the core of the one that accepted a
//! connection when it closes (`Core::handle_flow_closed`).
//!
//! | rule | source |
//! | --- | --- |
//! | a closed connection is a failed flow: a request to an Outbound binding on it gets 430, never a connection toward a NATed phone | RFC 5626 §5.3, §11.5 |
//! | an Outbound flow is one a REGISTER with an `ob` Contact or a `reg-id` (with `+sip.instance`) came over | RFC 5626 §4.2.1, §5.2 |
//! | a non-Outbound stream binding keeps its address: the runtime may connect out to it | RFC 3261 §18.1.1, RFC 5626 §3.1 |
//! | a response for a connection that failed goes to a new connection to the source IP (the `received` address) and the Via's sent-by port (5060, 5061 for TLS, when absent) | RFC 3261 §18.2.2, §19.1.2 |
//!
//! Both tables are per shard and bounded: only the shard that owns a connection reads
//! from it, so it is the one that saw the REGISTER arrive and the one the request's
//! transaction lives on. The Outbound-flow table forgets a flow when its connection
//! closes (it holds at most this shard's open connections that registered with Outbound,
//! and at most [`OUTBOUND_FLOW_CAP`]); the closed table keeps the latest
//! [`CLOSED_FLOW_CAP`] closes, and forgets a flow a message arrives on again.

use std::collections::HashSet;
use std::hash::BuildHasherDefault;
use std::net::SocketAddr;

use sipedge_msg::{Contact, Message, Validated};

use crate::flows::DeadFlows;
use crate::location::Transport;
use crate::output::LocalId;

/// Outbound flows remembered per shard; past this a new one is not remembered (its close
/// then leaves its bindings as a non-Outbound binding's: the behaviour before issue 19).
pub const OUTBOUND_FLOW_CAP: usize = 1 << 18;
/// Closed connections remembered per shard for §18.2.2 (the oldest is forgotten first; the
/// same bounded table as the failed flows).
pub const CLOSED_FLOW_CAP: usize = crate::flows::DEAD_FLOW_CAP;

type Key = (LocalId, SocketAddr);

/// A shard's view of its stream flows.
#[derive(Debug, Default)]
pub(crate) struct StreamFlows {
    outbound: HashSet<Key, BuildHasherDefault<std::collections::hash_map::DefaultHasher>>,
    /// Connections that closed, for §18.2.2 (bounded, oldest first).
    closed: DeadFlows,
}

impl StreamFlows {
    /// A REGISTER arrived over stream flow `(local, remote)` (on the shard that owns the
    /// connection): an `ob` Contact, or a `reg-id` with an instance, makes it an Outbound
    /// flow (RFC 5626 §5.2).
    pub(crate) fn note_register(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &Validated<'_>,
    ) {
        let outbound = v.contacts(msg).flatten().any(|c| {
            let ob = matches!(&c, Contact::Addr(a) if a.uri().params().has(b"ob"));
            ob || (c.instance().is_some_and(|i| !i.is_empty()) && c.reg_id().is_some())
        });
        if outbound && self.outbound.len() < OUTBOUND_FLOW_CAP {
            self.outbound.insert((local, remote));
        }
    }

    /// A message arrived on stream flow `(local, remote)`: its connection is up again.
    #[inline]
    pub(crate) fn note_message(&mut self, local: LocalId, remote: SocketAddr) {
        self.closed.remove(local, remote);
    }

    /// The connection of `(local, remote)` closed; true if it was an Outbound flow.
    pub(crate) fn closed(&mut self, local: LocalId, remote: SocketAddr) -> bool {
        self.closed.insert(local, remote);
        self.outbound.remove(&(local, remote))
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

    /// Outbound flows remembered (tests, invariants).
    pub(crate) fn outbound_len(&self) -> usize {
        self.outbound.len()
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
