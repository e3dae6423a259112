//! The authenticator's public hooks on [`Core`] (thin glue: `auth` does the work).

use std::net::SocketAddr;

use sipedge_msg::Message;

use crate::auth::{AuthDb, AuthOutcome, AuthReject, AuthStats, Authenticator};
use crate::core::Core;
use crate::output::LocalId;
use crate::time::Millis;

impl Core {
    /// The authenticator, lent the sink.
    pub(crate) fn authenticator(&mut self) -> Authenticator<'_> {
        Authenticator {
            io: &mut self.io,
            auth: &mut self.auth,
        }
    }

    /// The authentication tables in force.
    pub fn auth_db(&self) -> std::sync::Arc<AuthDb> {
        std::sync::Arc::clone(&self.io.cfg.auth.db)
    }

    /// The authenticator's counters.
    pub fn auth_stats(&self) -> &AuthStats {
        &self.auth.stats
    }

    /// **Hook for the relay**: authenticates a non-REGISTER request from `remote` (RFC 3261
    /// §22.3) — IP/CLI auth first; then, with `[auth] invite = "digest"` and a From in one
    /// of our domains (else [`AuthMethod::Foreign`]), the Proxy-Authorization credentials
    /// (user looked up in the From domain). On
    /// [`AuthOutcome::Rejected`], answer with [`Core::send_auth_rejection`]. Call it once
    /// per new request (after the server transaction absorbed retransmissions: a second
    /// call with the same credentials is a replay). ACK and CANCEL are not challenged by
    /// RFC 3261 §22.1; the caller skips them.
    pub fn authenticate_request(
        &mut self,
        now: Millis,
        remote: SocketAddr,
        msg: &Message<'_>,
    ) -> AuthOutcome {
        self.authenticator()
            .authenticate_with(now, remote, msg, None)
    }

    /// Sends what `reject` calls for: 401 with WWW-Authenticate to a REGISTER, 407 with
    /// Proxy-Authenticate to anything else (RFC 3261 §22.1, §22.3), each with a fresh nonce
    /// and one header per algorithm of the claimed user's [`Offer`] in order (RFC 8760
    /// §2.4: the preferred one first; default `[auth] algorithms`, MD5 alone); or 403 / 400.
    pub fn send_auth_rejection(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        reject: AuthReject,
    ) {
        self.authenticator()
            .reject_request(now, local, remote, (msg, None), reject);
    }
}
