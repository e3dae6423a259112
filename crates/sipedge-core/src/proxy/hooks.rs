//! Integration points for the subsystems built in parallel (auth: issue 6; NAT: issue 8).
//! Each is one function with today's behaviour; the lead wires the real one at merge.

use std::net::{IpAddr, SocketAddr};

use sipedge_msg::{Message, Uri};

use crate::core::Core;
use crate::output::LocalId;

impl Core {
    /// **Auth hook (issue 6).** True when `msg` from `remote` was sent by an authenticated
    /// user (digest) or an IP-auth trunk. Outbound relaying (`[proxy] allow_outbound`)
    /// requires it (not an open relay). Today: nobody is authenticated.
    pub(crate) fn request_authenticated(&self, _msg: &Message<'_>, _remote: SocketAddr) -> bool {
        false
    }

    /// **Users-table hook (issue 6).** True when `aor` (canonical or as written) is a
    /// provisioned user of our domains, so a lookup with no binding gets 480 Temporarily
    /// Unavailable instead of 404 Not Found (RFC 3261 §21.4.18). Today there is no users
    /// table: every user is unknown and gets 404.
    pub(crate) fn is_known_user(&self, _aor: &[u8]) -> bool {
        false
    }

    /// **NAT hook (issue 8).** Where a request for a binding goes (its Contact URI, the
    /// source its REGISTER came from, the socket it arrived on): a binding registered
    /// from behind a NAT is reached at its received source, on the socket it came from;
    /// otherwise at its Contact. Today "behind a NAT" means the Contact's host:port is not
    /// an IP address equal to the recorded source; the NAT helper's detection replaces
    /// that test.
    pub(crate) fn binding_destination(
        &self,
        contact: &[u8],
        source: SocketAddr,
        local: LocalId,
    ) -> (LocalId, SocketAddr) {
        let contact_addr = Uri::parse(contact).ok().and_then(|u| {
            let ip: IpAddr = std::str::from_utf8(u.host_unbracketed())
                .ok()?
                .parse()
                .ok()?;
            Some(SocketAddr::new(ip, u.port().unwrap_or(5060)))
        });
        match contact_addr {
            Some(a) if a == source => (local, a),
            _ => (local, source),
        }
    }
}
