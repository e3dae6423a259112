//! Where the relay meets the other subsystems: the outbound rule and the users table
//! (auth, issue 6) and NAT-aware delivery (issue 8, a hook with today's behaviour).

use std::net::SocketAddr;

use crate::auth::{AuthMethod, AuthOk};

use crate::output::LocalId;
use crate::proxy::RelayCx;

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

    /// **NAT hook (issue 8).** Where a request for a binding goes (its Contact URI, the
    /// source its REGISTER came from, the socket it arrived on): a binding registered
    /// from behind a NAT is reached at its received source, on the socket it came from;
    /// otherwise at its Contact (a Contact that names no IP address, having no DNS yet, is
    /// reached at its source too). "Behind a NAT" is the registrar's detection (issue 8:
    /// Via sent-by vs source, private Contact, the user's `nat` mode).
    pub(crate) fn binding_destination(
        &self,
        contact: &[u8],
        source: SocketAddr,
        local: LocalId,
        nated: bool,
    ) -> (LocalId, SocketAddr) {
        (local, crate::nat::ping::reach_addr(contact, source, nated))
    }
}
