//! The protection leaf's public hooks on [`Core`] and the dispatcher's two screens (thin
//! glue: `protect` decides, with explicit arguments; the registrar's and the
//! authenticator's hooks are on their views, `registrar.rs` and `auth/guard.rs`).

use std::net::{IpAddr, SocketAddr};

use sipedge_msg::{Message, Method, Validated};

use crate::core::{Core, CoreEvent};
use crate::output::LocalId;
use crate::protect::{BanReason, ProtectStats, Verdict};
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

    /// Whether the shell's kernel filter is shedding OPTIONS, REGISTER and new INVITEs by
    /// share (issue 17 item 6): while it is, pressure level 1 no longer answers those
    /// classes 503 in user space ([`crate::Protect::set_kernel_admits`]); level 2 still sheds every
    /// REGISTER.
    pub fn handle_kernel_shed(&mut self, active: bool) {
        self.protect.set_kernel_admits(active);
    }

    /// Whether the shard's receive queue is late: the shell measured that the datagram it
    /// read last waited longer than `[overload] max_queue_delay_ms` (issue 17). While it
    /// is, new requests are dropped without reply before parsing, counted in
    /// `stale_dropped`; responses and in-dialog requests are served (`protect::stale`).
    pub fn handle_queue_delay(&mut self, late: bool) {
        self.protect.set_queue_late(late);
    }

    /// The protection counters.
    pub fn protect_stats(&self) -> ProtectStats {
        self.protect.stats()
    }

    /// True when `ip` is banned here at `now`.
    pub fn is_banned(&mut self, ip: IpAddr, now: Millis) -> bool {
        self.protect.is_banned(ip, now)
    }

    /// Before parsing: true when the datagram must be dropped (banned source, or one that
    /// just went over the density limit).
    #[inline]
    pub(crate) fn protect_screen(&mut self, now: Millis, remote: SocketAddr, bytes: &[u8]) -> bool {
        let request = !bytes.starts_with(b"SIP/2.0 ") && !sipedge_msg::is_keepalive(bytes);
        let db = &self.io.cfg.auth.db;
        let exempt = |ip: IpAddr| db.ip_group(ip).is_some();
        match self.protect.admit(remote.ip(), now, request, &exempt) {
            Verdict::Pass => false,
            Verdict::Drop(_) => true,
            Verdict::NewBan { until, reason } => {
                self.io.event(CoreEvent::Banned {
                    ip: remote.ip(),
                    until,
                    reason,
                });
                true
            }
        }
    }

    /// After validation, at the shard the request arrived on: the scanner drop, then
    /// overload shedding (RFC 3261 §21.5.4). True: handled (dropped, or answered 503).
    /// REGISTERs of bound AoRs are left to their owner's registrar at level 1.
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
                    let db = &self.io.cfg.auth.db;
                    let exempt = |ip: IpAddr| db.ip_group(ip).is_some();
                    if let Some(until) = self.protect.on_scanner(remote.ip(), now, &exempt) {
                        self.io.event(CoreEvent::Banned {
                            ip: remote.ip(),
                            until,
                            reason: BanReason::Scanner,
                        });
                    }
                    return true;
                }
            }
        }
        let level = self.protect.pressure();
        if level == 0 || v.to_has_tag() {
            return false; // in-dialog requests are never shed
        }
        let refresh = match msg.method() {
            Some(Method::Ack | Method::Cancel | Method::Bye) | None => return false,
            // Level 1: the AoR's owner decides (new AoRs only); level 2: every REGISTER.
            Some(Method::Register) if level < 2 => return false,
            Some(Method::Register) => true,
            // Level 1 with the kernel shedding OPTIONS and new INVITEs by share (issue 17
            // item 6): admitted there, served here — refusing them again would leave the
            // shard serving less than its rate.
            Some(Method::Options | Method::Invite) if level < 2 && self.protect.kernel_admits() => {
                return false
            }
            Some(_) => false,
        };
        let req = Req::Valid(msg, v);
        self.io.shed(&mut self.protect, local, remote, req, refresh);
        true
    }
}
