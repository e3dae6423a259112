//! Where limits and dialog tracking meet the relay: admission of an out-of-dialog INVITE,
//! its final response, BYE, the mesh and the clock. Each hook is a few lines in the relay.

use std::net::SocketAddr;

use sipedge_msg::{Message, Uri, Validated};

use crate::auth::{AuthMethod, AuthOk};
use crate::core::Core;
use crate::dialog::DialogMsg;
use crate::limits::{AtCapacity, Charge, LimitRefusal, Parties};
use crate::output::LocalId;
use crate::refusal::Refusal;
use crate::shard::{ShardId, ShardMsg};
use crate::stateless::Req;
use crate::time::Millis;

/// RFC 3261 §20.43: warn-code 399, "miscellaneous warning".
const WARN_CODE: &str = "399";

impl Core {
    /// The dialog key: MAC of the Call-ID and both tags in byte order, so the caller's and
    /// the callee's requests (From/To swapped) give the same key on every shard.
    fn dialog_key(&self, call_id: &[u8], a: &[u8], b: &[u8]) -> u64 {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        self.mac
            .digest(crate::secret::Purpose::Dialog, &[call_id, lo, hi])
    }

    fn dialog_owner(&self, key: u64) -> ShardId {
        ShardId((key % u64::from(self.cfg.shards.max(1))) as u16)
    }

    /// Issue 16: an out-of-dialog INVITE is counted against its caller (`who`: the
    /// authenticated user, account or IP-auth source), its callee (the local user named by
    /// `callee_aor`, unless `[limits] count = "outbound"`) and the server. `None`: refused,
    /// and answered here with one stateless reply (503 + Retry-After, or 302).
    pub(crate) fn limits_admit(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        (msg, req): (&Message<'_>, &Validated<'_>),
        who: Option<&AuthOk>,
        callee_aor: &[u8],
    ) -> Option<Charge> {
        let table = std::sync::Arc::clone(&self.cfg.limits);
        let db = std::sync::Arc::clone(&self.cfg.auth.db);
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
        if self.dialogs.len() >= self.cfg.dialogs.max_dialogs {
            self.limit_refuse(local, remote, (msg, req), LimitRefusal::DialogTableFull);
            return None;
        }
        let sec = (now.0 / 1000) as u32;
        match table.admit(&p, sec) {
            Ok(c) => Some(c),
            Err(kind) => {
                self.limit_refuse(local, remote, (msg, req), kind);
                None
            }
        }
    }

    /// Issue 16 "At capacity": `[limits] at_capacity = "reject"` → `reject_code` "Server at
    /// max cps/channels" with Retry-After (RFC 3261 §20.33) randomised ±20 % from the
    /// request's hash (no clock, no RNG: the same request gets the same value); "redirect"
    /// → 302 Moved Temporarily (§21.3.3) with a Contact per `redirect_to` URI, the
    /// Request-URI user kept. Either way a Warning (§20.43) names the limit.
    fn limit_refuse(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        (msg, req): (&Message<'_>, &Validated<'_>),
        kind: LimitRefusal,
    ) {
        self.relay.stats.refused += 1;
        let spec = &self.cfg.limits.spec;
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
            self.respond(
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
            let h = self.loc.hasher().hash(&[req.call_id, b"retry-after"]);
            // base × [0.8, 1.2], at least 1 s.
            let pct = 80 + (h % 41) as u32;
            (base.saturating_mul(pct) / 100).max(1)
        });
        let (_, reason) = kind.reply();
        let code = spec.reject_code;
        self.respond(local, remote, Req::Valid(msg, req), (code, reason), |w| {
            if let Some(s) = retry {
                w.header_u32(b"Retry-After", s);
            }
            w.header(b"Warning", &warning);
        });
    }

    /// The INVITE of the new cell `idx` holds `charge` until its final response.
    pub(crate) fn dialog_hold(&mut self, idx: u32, charge: Charge) {
        self.dialogs.hold(idx, charge);
    }

    /// The cell `idx`'s INVITE ended without a 2xx (final non-2xx, CANCEL → 487, timeout,
    /// or the cell freed): its charge, if it still holds one, is released.
    pub(crate) fn dialog_failed(&mut self, idx: u32) {
        self.dialogs.fail(idx);
    }

    /// The first 2xx (from branch `b`) of cell `idx`'s INVITE went upstream: the call is
    /// confirmed and its charge — with its ends when keepalives or a max duration need
    /// them — moves to the dialog's owner shard.
    pub(crate) fn dialog_confirmed(
        &mut self,
        now: Millis,
        (idx, b): (u32, usize),
        (msg, v): (&Message<'_>, &Validated<'_>),
    ) {
        let Some(charge) = self.dialogs.take_pending(idx) else {
            return;
        };
        let d = self.cfg.dialogs;
        let ends = if d.keepalive_secs > 0 || d.max_duration_secs > 0 {
            self.dialog_ends(idx, b, (msg, v))
        } else {
            None
        };
        let from = v.from.tag().unwrap_or_default();
        let to = v.to.tag().unwrap_or_default();
        let key = self.dialog_key(v.call_id, from, to);
        let owner = self.dialog_owner(key);
        if owner == self.cfg.shard {
            self.dialog_open(now, key, charge, ends);
        } else {
            self.dialogs.stats.handed_off += 1;
            self.shard_out.push_back((
                owner,
                ShardMsg::Dialog(DialogMsg::Open { key, charge, ends }),
            ));
        }
    }

    fn dialog_open(&mut self, now: Millis, key: u64, charge: Charge, ends: Option<Box<[u8]>>) {
        let cap = self.cfg.dialogs.max_dialogs;
        let timed = self.cfg.dialogs.max_duration_secs > 0;
        let pinged = ends.is_some() && self.cfg.dialogs.keepalive_secs > 0;
        if self.dialogs.open(key, (charge, ends), now, cap, timed) && pinged {
            let period = u64::from(self.cfg.dialogs.keepalive_secs) * 1000;
            self.dialogs.schedule_keepalive(key, now, period);
        }
    }

    /// A BYE (RFC 3261 §15.1.2) inside a dialog of ours, from either end: the call's
    /// channels are released at once (the first BYE; the rest find nothing).
    pub(crate) fn dialog_bye(&mut self, req: &Validated<'_>) {
        let from = req.from.tag().unwrap_or_default();
        let to = req.to.tag().unwrap_or_default();
        let key = self.dialog_key(req.call_id, from, to);
        let owner = self.dialog_owner(key);
        if owner == self.cfg.shard {
            self.dialogs.end(key);
        } else {
            self.dialogs.stats.handed_off += 1;
            self.shard_out
                .push_back((owner, ShardMsg::Dialog(DialogMsg::End { key })));
        }
    }

    /// A dialog message from another shard.
    pub(crate) fn dialog_shard_msg(&mut self, now: Millis, msg: DialogMsg) {
        match msg {
            DialogMsg::Open { key, charge, ends } => self.dialog_open(now, key, charge, ends),
            DialogMsg::End { key } => {
                self.dialogs.end(key);
            }
            DialogMsg::Alive {
                key,
                b_side,
                sent,
                code,
            } => {
                use crate::dialog::ends::Side;
                let side = if b_side { Side::B } else { Side::A };
                self.dialog_answered(now, key, side, sent, code);
            }
        }
    }

    /// `[dialogs] max_duration_secs`: confirmed calls that reached it are ended (a BYE to
    /// both ends, [`crate::dialog::end`]) and their channels released; then the in-dialog
    /// keepalives due ([`crate::dialog::keepalive`]).
    pub(crate) fn dialog_timeout(&mut self, now: Millis) {
        let max = self.cfg.dialogs.max_duration_secs;
        if max > 0 {
            let mut ended = Vec::new();
            self.dialogs.expire(now, u64::from(max) * 1000, &mut ended);
            for (key, entry) in ended {
                self.dialog_bye_ends(now, key, &entry, crate::dialog::end::Cause::MaxDuration);
            }
        }
        self.dialog_keepalive_timeout(now);
    }

    /// When the next call reaches its maximum duration.
    pub(crate) fn dialog_poll_timeout(&self) -> Option<Millis> {
        let max = self.cfg.dialogs.max_duration_secs;
        let expiry = (max > 0)
            .then(|| self.dialogs.next_expiry(u64::from(max) * 1000))
            .flatten();
        match (expiry, self.dialogs.next_keepalive()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Dialog counters of this shard.
    pub fn dialog_stats(&self) -> crate::dialog::DialogStats {
        self.dialogs.stats
    }

    /// Calls this shard tracks: INVITEs in progress holding channels, and confirmed calls
    /// it owns.
    pub fn dialog_count(&self) -> (usize, usize) {
        (
            self.dialogs.len() - self.dialogs.confirmed(),
            self.dialogs.confirmed(),
        )
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
