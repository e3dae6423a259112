//! The authenticator's side of the guessing bans (issue 17, `protect`): every wrong digest
//! answer — an unknown user's too, which gets the same 401/407 as a wrong password — is
//! counted per source and per user; a right one clears the user's count for its source.

use std::net::{IpAddr, SocketAddr};

use crate::io::CoreEvent;
use crate::protect::BanReason;
use crate::time::Millis;

use super::Authenticator;

impl Authenticator<'_> {
    /// A wrong digest answer, or an unknown user (`check.rs`). Bans it decides go out as
    /// [`CoreEvent::Banned`]; `[[ip_auth]]` sources are exempt.
    pub(crate) fn guard_failure(
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
        let db = &self.io.cfg.auth.db;
        let exempt = |ip: IpAddr| db.ip_group(ip).is_some();
        self.protect
            .on_auth_failure(remote.ip(), key, now, &exempt, &mut |ip, until, why| {
                new.push((ip, until, why))
            });
        for (ip, until, reason) in new {
            self.io.event(CoreEvent::Banned { ip, until, reason });
        }
    }

    /// A right digest answer (`check.rs`): the user's own source.
    pub(crate) fn guard_success(
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
