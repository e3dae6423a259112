//! The dispatch of a valid request: the relay's, the registrar's, or one the edge answers
//! itself without state (RFC 3261 §8.2 UAS behaviour) through [`Io::respond`].

use std::net::SocketAddr;

use sipedge_msg::{Message, Method, Scheme, Validated};

use crate::config::{ACCEPT, ALLOW, SUPPORTED};
use crate::core::Core;
use crate::output::LocalId;
use crate::refusal::{Refusal, StatelessRefusal};
use crate::stateless::Req;
use crate::time::Millis;

impl Core {
    /// Dispatches a valid request the edge has no state for.
    pub(crate) fn handle_request(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &Validated<'_>,
    ) {
        let Some(method) = msg.method() else { return };
        // The relay (RFC 3261 §16) takes what is not the edge's own business; a REGISTER
        // never is (`relay_request` declines it), so it does not pay for the look.
        if method != Method::Register && self.relay().relay_request(now, local, remote, msg, v) {
            return;
        }
        if method == Method::Ack {
            // An ACK has no response (RFC 3261 §17.1.1.3); with no transaction it is absorbed.
            self.io.stats.dropped += 1;
            return;
        }
        let Some(uri) = v.request_uri else { return };
        let req = Req::Valid(msg, v);
        if !matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) {
            // RFC 3261 §8.2.2.1: a scheme we do not route (tel routing arrives with relay).
            let r = StatelessRefusal::UnsupportedScheme;
            self.io.respond(local, remote, req, r.reply(), |_| {});
            return;
        }
        if method != Method::Cancel {
            // RFC 3261 §8.2.2.3: every Require option tag must be one we support.
            if let Some(tag) = msg.require().find(|t| !supports(t)) {
                let r = StatelessRefusal::BadExtension;
                self.io.respond(local, remote, req, r.reply(), |w| {
                    w.header(b"Unsupported", tag);
                });
                return;
            }
        }
        let refusal = match method {
            Method::Register => {
                return self.registrar().handle_register(now, local, remote, msg, v)
            }
            Method::Options if self.io.cfg.is_our_domain(uri.host()) => {
                // RFC 3261 §11.2: capabilities of the edge itself.
                self.io.respond(local, remote, req, (200, b"OK"), |w| {
                    w.header(b"Allow", ALLOW.as_bytes())
                        .header(b"Accept", ACCEPT.as_bytes())
                        .header(b"Supported", SUPPORTED.as_bytes());
                });
                return;
            }
            // Not an open relay: a foreign Request-URI is refused.
            Method::Options => StatelessRefusal::RelayingForbidden,
            // RFC 3261 §9.2: no matching INVITE transaction.
            Method::Cancel => StatelessRefusal::NoTransaction,
            // RFC 3261 §8.2.1: a method we do not recognise.
            Method::Extension(_) => StatelessRefusal::NotImplemented,
            // RFC 3261 §8.2.1 / §21.4.6: recognised, not handled here; Allow is mandatory.
            _ => StatelessRefusal::MethodNotAllowed,
        };
        // §8.2.1 / §21.4.6: a 405 (and our 501) carries Allow.
        let allow = matches!(
            refusal,
            StatelessRefusal::NotImplemented | StatelessRefusal::MethodNotAllowed
        );
        self.io.respond(local, remote, req, refusal.reply(), |w| {
            if allow {
                w.header(b"Allow", ALLOW.as_bytes());
            }
        });
    }
}

/// Option tags the edge supports ([`SUPPORTED`]).
fn supports(tag: &[u8]) -> bool {
    SUPPORTED
        .split(',')
        .map(str::trim)
        .any(|s| !s.is_empty() && s.as_bytes().eq_ignore_ascii_case(tag))
}
