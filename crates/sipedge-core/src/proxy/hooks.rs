//! Where the relay meets the other subsystems: the outbound rule and the users table
//! (auth, issue 6) and NAT-aware delivery (issue 8, a hook with today's behaviour).

use std::net::SocketAddr;

use crate::auth::{AuthMethod, AuthOk};

use sipedge_msg::Uri;

use crate::location::Transport;
use crate::output::LocalId;
use crate::proxy::RelayCx;
use crate::refusal::RelayRefusal;

impl RelayCx<'_> {
    /// The outbound rule (not an open relay): with `[proxy] allow_outbound`, a request may
    /// leave our domains only from an authenticated user (digest) or an IP-auth / CLI
    /// trunk — not from an unchallenged sender (`invite = "none"`) nor a foreign caller.
    pub(crate) fn may_go_outbound(&self, ok: &AuthOk) -> bool {
        matches!(
            ok.method,
            AuthMethod::Digest | AuthMethod::Ip | AuthMethod::Cli
        )
    }

    /// **NAT hook (issue 8), transport-aware (issue 19).** Where a request for a binding
    /// goes (its Contact URI, the source its REGISTER came from, the socket it arrived on):
    ///
    /// * registered over a stream (TCP/TLS/WS/WSS): down its flow — the socket and source
    ///   of the REGISTER, never re-resolved from the Contact (RFC 5626 §5.3; a phone behind
    ///   NAT cannot take a new connection);
    /// * registered from behind a NAT (issue 8 detection: Via sent-by vs source, private
    ///   Contact, the user's `nat` mode): at its received source, on the socket it came from;
    /// * otherwise at its Contact (a Contact that names no IP address, having no DNS yet, is
    ///   reached at its source too), by a socket of the transport the Contact asks for
    ///   (`;transport=`, `sips:` → TLS; [`crate::Transport::of_uri`]).
    ///
    /// `None`: the Contact asks for a transport we have no socket for — the branch is
    /// refused (counted), never sent over another transport.
    pub(crate) fn binding_destination(
        &self,
        contact: &[u8],
        source: SocketAddr,
        local: LocalId,
        nated: bool,
    ) -> Option<(LocalId, SocketAddr)> {
        let proxy = &self.io.cfg.proxy;
        if nated || proxy.is_stream(local) {
            return Some((local, source));
        }
        // One parse for the address and the transport (`nat::ping::reach_addr`'s rule).
        let Ok(uri) = Uri::parse(contact) else {
            // Not a URI we can read: as before, its source on the binding's own socket.
            return Some((local, source));
        };
        let dest = crate::proxy::route::uri_addr(&uri).unwrap_or(source);
        let t = Transport::of_uri(&uri)?;
        proxy.socket_for(t, dest, local).map(|l| (l, dest))
    }

    /// The next hop a URI names (a Route, the Request-URI, an upstream), and the socket of
    /// the transport it asks for (`;transport=`, `sips:` → TLS), preferring `inbound`.
    /// Errors: no IP address (no DNS in the core yet), or no socket of that transport.
    pub(crate) fn uri_hop(
        &self,
        uri: &Uri<'_>,
        inbound: LocalId,
    ) -> Result<(LocalId, SocketAddr), RelayRefusal> {
        let addr = crate::proxy::route::uri_addr(uri).ok_or(RelayRefusal::NextHopUnresolvable)?;
        let t = Transport::of_uri(uri).ok_or(RelayRefusal::TransportUnavailable)?;
        let local = self
            .io
            .cfg
            .proxy
            .socket_for(t, addr, inbound)
            .ok_or(RelayRefusal::TransportUnavailable)?;
        Ok((local, addr))
    }
}
