//! The verdicts of `Core::verdict` given before any digest is evaluated (IP and CLI
//! authentication, `mode = "none"`, a foreign From domain) and the domain a digest user
//! is looked up in.

use std::net::SocketAddr;

use sipedge_msg::{Credentials, Message};

use super::{caller_number, AuthMethod, AuthOk, AuthReject, AuthState, Class, Verdict};
use crate::auth_db::db::{AuthDb, AuthMode};
use crate::auth_db::nonce::parse_nc;
use crate::refusal::AuthRefusal;

impl super::Authenticator<'_> {
    /// IP authentication (module table): it never combines with digest. A REGISTER is
    /// taken on the source address only for an AoR its `[[ip_auth]]` entry names
    /// (`register`): a trunk authenticates its calls by address, but registering a user's
    /// AoR needs that user's credentials (digest), or any source in the prefix could take
    /// over every user's incoming calls. `None`: not decided by the source address.
    #[inline]
    fn ip_verdict(
        &mut self,
        db: &AuthDb,
        remote: SocketAddr,
        msg: &Message<'_>,
        class: Class<'_>,
    ) -> Option<Verdict> {
        let group = db.ip_group(remote.ip());
        if let (
            Some(g),
            Class::Register {
                domain,
                user,
                query,
            },
        ) = (group, class)
        {
            let cs = self.io.cfg.registrar.case_sensitive;
            // A query (no Contact) changes nothing: the source's first account may read.
            let named = db.ip_register_account(g, domain, user, cs);
            if let Some(account) = named.or_else(|| query.then(|| g.accounts[0])) {
                self.auth.stats.ip_ok += 1;
                return Some(Verdict::Ok(AuthOk {
                    method: AuthMethod::Ip,
                    user: None,
                    account: Some(account),
                }));
            }
        }
        if let (Some(g), Class::Other { .. }) = (group, class) {
            let account = if g.cli_auth {
                match db.cli_account(g, caller_number(msg)) {
                    Some(a) => a,
                    None => {
                        self.auth.stats.forbidden += 1;
                        return Some(Verdict::Reject(AuthReject::Refused(
                            AuthRefusal::CliNotAuthorized,
                        )));
                    }
                }
            } else {
                g.accounts[0]
            };
            self.auth.stats.ip_ok += 1;
            return Some(Verdict::Ok(AuthOk {
                method: if g.cli_auth {
                    AuthMethod::Cli
                } else {
                    AuthMethod::Ip
                },
                user: None,
                account: Some(account),
            }));
        }
        None
    }

    /// The verdicts given before any digest (IP authentication, `mode = "none"`, a
    /// foreign From domain) as `Err`; else the From host the user is looked up under.
    pub(super) fn verdict_before_digest<'a>(
        &mut self,
        db: &AuthDb,
        remote: SocketAddr,
        msg: &Message<'a>,
        class: Class<'a>,
    ) -> Result<&'a [u8], Verdict> {
        // IP authentication first: it never combines with digest.
        if let Some(v) = self.ip_verdict(db, remote, msg, class) {
            return Err(v);
        }
        let mode = match class {
            Class::Register { .. } => db.settings.register,
            Class::Other { .. } => db.settings.invite,
        };
        if mode == AuthMode::None {
            return Err(Verdict::Ok(AuthOk {
                method: AuthMethod::None,
                user: None,
                account: None,
            }));
        }
        let from_host = match class {
            Class::Other { from_host: Some(h) } => h,
            Class::Other { from_host: None } => {
                msg.from().map(|f| f.uri().host()).unwrap_or_default()
            }
            Class::Register { .. } => b"",
        };
        if matches!(class, Class::Other { .. }) && !self.io.cfg.is_our_domain(from_host) {
            return Err(Verdict::Ok(AuthOk {
                method: AuthMethod::Foreign,
                user: None,
                account: None,
            }));
        }
        Ok(from_host)
    }
}

/// The domain a digest user is looked up in: a REGISTER's AoR domain — whose user must be
/// the username when `username_must_match` (RFC 3261 §10.3 step 4; else 403) — or the From
/// host.
pub(super) fn lookup_domain<'a>(
    st: &mut AuthState,
    (must_match, case_sensitive): (bool, bool),
    class: Class<'a>,
    from_host: &'a [u8],
    username: &[u8],
) -> Result<&'a [u8], Verdict> {
    match class {
        Class::Register { domain, user, .. } => {
            // RFC 3261 §10.3 step 4: this user may only register its own AoR.
            let same = if case_sensitive {
                username == user
            } else {
                username.eq_ignore_ascii_case(user)
            };
            if must_match && !same {
                st.stats.forbidden += 1;
                return Err(Verdict::Reject(AuthReject::Refused(
                    AuthRefusal::UsernameMismatch,
                )));
            }
            Ok(domain)
        }
        Class::Other { .. } => Ok(from_host),
    }
}

/// `qop=auth`'s (nc, cnonce) if any, and the nonce count.
pub(super) type QopNc<'a> = (Option<(&'a [u8], &'a [u8])>, u32);

/// The digest's qop and nonce count: RFC 7616 §3.4, qop=auth needs nc and cnonce (400
/// without; auth-int is not offered: a challenge); no qop is the RFC 2069 form, one use
/// per nonce (nc 1).
pub(super) fn qop_of<'a>(st: &mut AuthState, c: &Credentials<'a>) -> Result<QopNc<'a>, Verdict> {
    let bad = |st: &mut AuthState, why| {
        st.stats.malformed += 1;
        Verdict::Reject(AuthReject::Refused(why))
    };
    let qop_auth = match c.qop {
        None => None,
        Some(q) if q.eq_bytes(b"auth") => match (c.nc, c.cnonce) {
            (Some(nc), Some(cn)) => Some((nc, cn.raw())),
            _ => return Err(bad(st, AuthRefusal::IncompleteCredentials)),
        },
        Some(_) => return Err(Verdict::Reject(AuthReject::Challenge { stale: false })),
    };
    let nc = match qop_auth {
        Some((nc, _)) => match parse_nc(nc) {
            Some(n) => n,
            None => return Err(bad(st, AuthRefusal::BadNonceCount)),
        },
        None => 1,
    };
    Ok((qop_auth, nc))
}
