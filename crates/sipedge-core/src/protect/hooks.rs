//! The core's side of [`super::Protect`]: the hooks in the dispatch (`core.rs`, the
//! registrar, `auth/check.rs`) and the inputs from the shell (bans, pressure).

use std::net::{IpAddr, SocketAddr};

use sipedge_msg::{Message, Method, Validated};

use super::{BanReason, ProtectStats, Verdict};
use crate::core::{Core, CoreEvent};
use crate::output::LocalId;
use crate::stateless::Req;
use crate::time::Millis;

impl Core {
    /// A ban decided elsewhere (another shard, the operator), until `until` on the shell's
    /// clock; between turns. Datagrams from `ip` are dropped before parsing from now on.
    pub fn handle_ban(&mut self, now: Millis, ip: IpAddr, until: Millis) {
        self.protect.ban(ip, until, now);
    }

    /// Lifts the ban of `ip` (the operator's unban) and forgets its counts; between turns.
    pub fn handle_unban(&mut self, ip: IpAddr) {
        self.protect.unban(ip);
    }

    /// Lifts every ban (the shell lost track of the shared list's changes and resends it
    /// whole); between turns.
    pub fn handle_unban_all(&mut self) {
        self.protect.clear_bans();
    }

    /// The shard's pressure, measured by the shell (turn lag, receive-queue fill, kernel
    /// drops): 0 none, 1 shed new requests, 2 shed refreshes too (`protect` module table).
    pub fn handle_pressure(&mut self, level: u8) {
        self.protect.set_pressure(level);
    }

    /// The protection counters.
    pub fn protect_stats(&self) -> ProtectStats {
        self.protect.stats()
    }

    /// True when `ip` is banned here at `now`.
    pub fn is_banned(&mut self, ip: IpAddr, now: Millis) -> bool {
        self.protect.is_banned(ip, now)
    }

    fn banned(&mut self, ip: IpAddr, until: Millis, reason: BanReason) {
        self.event(CoreEvent::Banned { ip, until, reason });
    }

    /// Before parsing: true when the datagram must be dropped (banned source, or one that
    /// just went over the density limit).
    #[inline]
    pub(crate) fn protect_screen(&mut self, now: Millis, remote: SocketAddr, bytes: &[u8]) -> bool {
        let request = !bytes.starts_with(b"SIP/2.0 ") && !sipedge_msg::is_keepalive(bytes);
        let db = &self.cfg.auth.db;
        let exempt = |ip: IpAddr| db.ip_group(ip).is_some();
        match self.protect.admit(remote.ip(), now, request, &exempt) {
            Verdict::Pass => false,
            Verdict::Drop(_) => true,
            Verdict::NewBan { until, reason } => {
                self.banned(remote.ip(), until, reason);
                true
            }
        }
    }

    /// After validation, at the shard the request arrived on: the scanner drop, then
    /// overload shedding. True: handled (dropped, or answered 503).
    pub(crate) fn protect_request(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &Validated<'_>,
    ) -> bool {
        if msg.is_response() {
            return false; // responses are never shed
        }
        if !self.protect.config().scanner_user_agents.is_empty() {
            if let Some(ua) = msg.user_agent() {
                if self.protect.is_scanner(ua) {
                    let db = &self.cfg.auth.db;
                    let exempt = |ip: IpAddr| db.ip_group(ip).is_some();
                    if let Some(until) = self.protect.on_scanner(remote.ip(), now, &exempt) {
                        self.banned(remote.ip(), until, BanReason::Scanner);
                    }
                    return true;
                }
            }
        }
        let level = self.protect.pressure();
        if level == 0 || v.to_has_tag() {
            return false; // in-dialog requests are never shed
        }
        match msg.method() {
            Some(Method::Ack | Method::Cancel | Method::Bye) | None => false,
            // Level 1: the AoR's owner decides (new AoRs only); level 2: every REGISTER.
            Some(Method::Register) if level < 2 => false,
            Some(Method::Register) => self.shed(local, remote, msg, v, true),
            Some(_) => self.shed(local, remote, msg, v, false),
        }
    }

    /// On the AoR's owner, before authentication: a REGISTER of an AoR with no binding here
    /// is shed at level 1, any REGISTER at level 2. True: answered 503.
    pub(crate) fn protect_register(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &Validated<'_>,
        aor: &[u8],
    ) -> bool {
        let level = self.protect.pressure();
        if level == 0 {
            return false;
        }
        let (domain, user) = crate::aor::split_aor(aor);
        let head = self.loc.head(self.loc.domain_id(domain), user);
        let bound = head != crate::location::NONE;
        if bound && level < 2 {
            return false;
        }
        self.shed(local, remote, msg, v, bound)
    }

    /// RFC 3261 §21.5.4: a stateless 503 with a randomised Retry-After — no transaction,
    /// no authentication.
    fn shed(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &Validated<'_>,
        refresh: bool,
    ) -> bool {
        self.protect.count_shed(refresh);
        let secs = self.protect.retry_after();
        self.respond(
            local,
            remote,
            Req::Valid(msg, v),
            (503, b"Service Unavailable"),
            |w| {
                w.header_u32(b"Retry-After", secs);
            },
        );
        true
    }

    /// A wrong digest answer, or an unknown user (`auth/check.rs`).
    pub(crate) fn protect_auth_failure(
        &mut self,
        now: Millis,
        remote: SocketAddr,
        domain: &[u8],
        user: &[u8],
    ) {
        let c = self.protect.config();
        if c.auth_failures_max == 0 && c.user_auth_failures_max == 0 {
            return;
        }
        let key = self.protect.user_key(domain, user);
        let mut new: smallvec::SmallVec<[(IpAddr, Millis, BanReason); 4]> =
            smallvec::SmallVec::new();
        let db = &self.cfg.auth.db;
        let exempt = |ip: IpAddr| db.ip_group(ip).is_some();
        self.protect
            .on_auth_failure(remote.ip(), key, now, &exempt, &mut |ip, until, why| {
                new.push((ip, until, why))
            });
        for (ip, until, why) in new {
            self.banned(ip, until, why);
        }
    }

    /// A right digest answer (`auth/check.rs`): the user's own source.
    pub(crate) fn protect_auth_success(
        &mut self,
        now: Millis,
        remote: SocketAddr,
        domain: &[u8],
        user: &[u8],
    ) {
        if self.protect.config().user_auth_failures_max == 0 {
            return;
        }
        let key = self.protect.user_key(domain, user);
        self.protect.on_auth_success(remote.ip(), key, now);
    }
}
