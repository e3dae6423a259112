//! Admission of a new call (issue 16): an out-of-dialog INVITE is counted against its
//! parties' channels and CPS, or refused with one stateless reply.

use std::net::SocketAddr;

use sipedge_msg::{Message, Uri, Validated};

use super::DialogCx;
use crate::auth::{AuthMethod, AuthOk};
use crate::limits::{AtCapacity, Charge, LimitRefusal, Parties};
use crate::output::LocalId;
use crate::refusal::Refusal;
use crate::stateless::Req;
use crate::time::Millis;

/// RFC 3261 §20.43: warn-code 399, "miscellaneous warning".
const WARN_CODE: &str = "399";

impl DialogCx<'_> {
    /// Issue 16: an out-of-dialog INVITE is counted against its caller (`who`: the
    /// authenticated user, account or IP-auth source), its callee (the local user named by
    /// `callee_aor`, unless `[limits] count = "outbound"`) and the server. `None`: refused,
    /// and answered here with one stateless reply (503 + Retry-After, or 302); the relay
    /// counts it refused.
    pub(crate) fn admit(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        (msg, req): (&Message<'_>, &Validated<'_>),
        who: Option<&AuthOk>,
        callee_aor: &[u8],
    ) -> Option<Charge> {
        let table = std::sync::Arc::clone(&self.io.cfg.limits);
        let db = std::sync::Arc::clone(&self.io.cfg.auth.db);
        let mut p = Parties::default();
        if table.belongs_to(&db) {
            if let Some(ok) = who {
                p.caller_user = ok.user;
                p.caller_account = ok.account;
                if ok.method == AuthMethod::Ip {
                    p.ip = Some(remote.ip());
                }
            }
            if let Ok(uri) = Uri::parse(callee_aor) {
                let mut host = [0u8; 256];
                let h = uri.host_unbracketed();
                if let (Some(user), Some(dst)) = (uri.user(), host.get_mut(..h.len())) {
                    dst.copy_from_slice(h);
                    dst.make_ascii_lowercase();
                    p.callee_user = db.find_user(dst, user);
                    p.callee_account = p.callee_user.and_then(|u| db.user(u)?.account);
                }
            }
        } else if let Some(ok) = who.filter(|ok| ok.method == AuthMethod::Ip) {
            let _ = ok;
            p.ip = Some(remote.ip());
        }
        if self.dialogs.len() >= self.io.cfg.dialogs.max_dialogs {
            self.refuse(local, remote, (msg, req), LimitRefusal::DialogTableFull);
            return None;
        }
        let sec = (now.0 / 1000) as u32;
        match table.admit(&p, sec) {
            Ok(c) => Some(c),
            Err(kind) => {
                self.refuse(local, remote, (msg, req), kind);
                None
            }
        }
    }

    /// Issue 16 "At capacity": `[limits] at_capacity = "reject"` → `reject_code` "Server at
    /// max cps/channels" with Retry-After (RFC 3261 §20.33) randomised ±20 % from the
    /// request's hash (no clock, no RNG: the same request gets the same value); "redirect"
    /// → 302 Moved Temporarily (§21.3.3) with a Contact per `redirect_to` URI, the
    /// Request-URI user kept. Either way a Warning (§20.43) names the limit.
    fn refuse(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        (msg, req): (&Message<'_>, &Validated<'_>),
        kind: LimitRefusal,
    ) {
        let spec = &self.io.cfg.limits.spec;
        let mut warning = Vec::with_capacity(64);
        warning.extend_from_slice(WARN_CODE.as_bytes());
        warning.extend_from_slice(b" sipedge \"limit: ");
        warning.extend_from_slice(kind.label().as_bytes());
        warning.push(b'"');
        if spec.at_capacity == AtCapacity::Redirect && !spec.redirect_to.is_empty() {
            let user = req.request_uri.as_ref().and_then(|u| u.user());
            let contacts: Vec<Vec<u8>> = spec
                .redirect_to
                .iter()
                .map(|t| redirect_contact(t, user))
                .collect();
            self.io.respond(
                local,
                remote,
                Req::Valid(msg, req),
                (302, b"Moved Temporarily"),
                |w| {
                    for c in &contacts {
                        w.header(b"Contact", c);
                    }
                    w.header(b"Warning", &warning);
                },
            );
            return;
        }
        let base = spec.retry_after_secs;
        let retry = (base > 0).then(|| {
            // Keyed from the node secret (the value goes on the wire, issue 13).
            let h = self.io.tag_hasher.hash(&[req.call_id, b"retry-after"]);
            // base × [0.8, 1.2], at least 1 s.
            let pct = 80 + (h % 41) as u32;
            (base.saturating_mul(pct) / 100).max(1)
        });
        let (_, reason) = kind.reply();
        let code = spec.reject_code;
        self.io
            .respond(local, remote, Req::Valid(msg, req), (code, reason), |w| {
                if let Some(s) = retry {
                    w.header_u32(b"Retry-After", s);
                }
                w.header(b"Warning", &warning);
            });
    }
}

/// `<sip:USER@host…>` from a `redirect_to` URI (`sip:host[:port][;params]`): the
/// Request-URI user goes in front of the host unless the URI names a user itself.
fn redirect_contact(target: &str, user: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(target.len() + 40);
    out.push(b'<');
    let (scheme, rest) = match target.split_once(':') {
        Some((s, r)) if s.eq_ignore_ascii_case("sip") || s.eq_ignore_ascii_case("sips") => (s, r),
        _ => ("sip", target),
    };
    out.extend_from_slice(scheme.as_bytes());
    out.push(b':');
    if let Some(u) = user.filter(|_| !rest.contains('@')) {
        out.extend_from_slice(u);
        out.push(b'@');
    }
    out.extend_from_slice(rest.as_bytes());
    out.push(b'>');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn redirect_keeps_the_user() {
        assert_eq!(
            super::redirect_contact("sip:edge2.example.net:5080", Some(b"bob")),
            b"<sip:bob@edge2.example.net:5080>"
        );
        assert_eq!(
            super::redirect_contact("sip:x@edge2.example.net", Some(b"bob")),
            b"<sip:x@edge2.example.net>"
        );
        assert_eq!(
            super::redirect_contact("edge3.example.net", None),
            b"<sip:edge3.example.net>"
        );
    }
}
