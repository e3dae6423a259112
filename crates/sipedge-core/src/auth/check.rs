//! The checks of the module table (see `auth/mod.rs`), as `Core` methods, and the
//! challenge replies.

use std::net::SocketAddr;

use sipedge_msg::{Credentials, HeaderName, Message, NameAddr, Uri, Validated};

use super::AuthConfig;
use crate::auth_db::db::{whitelisted, AuthDb};
use crate::auth_db::digest::{
    ha2, response_matches, response_with_ha2, sha256_ha1_state, sha256_response_after_ha1,
    Algorithm, DigestInput, Hex,
};
use crate::auth_db::foreign::{ForeignNc, ForeignVerdict};
use crate::auth_db::nonce::{algorithm_bit, nonce_age_ms, NcVerdict, NcWindow, NonceKey};
use crate::auth_db::offer::Offer;
use crate::config::cluster::ClusterCoreConfig;
use crate::output::LocalId;
use crate::refusal::{AuthRefusal, Refusal};
use crate::stateless::Req;
use crate::time::Millis;

mod pre;
use pre::{lookup_domain, qop_of};

/// How a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Not challenged (`register`/`invite = "none"`).
    None,
    /// Digest credentials of a user.
    Digest,
    /// Source address in an `[[ip_auth]]` prefix.
    Ip,
    /// Source address in a shared prefix, account picked by the caller number.
    Cli,
    /// A non-REGISTER request whose From is not one of our domains: not a user of ours, so
    /// not challenged (RFC 3261 §22.3 leaves the choice to the proxy; Kamailio's usual
    /// `from_uri==myself` rule). The relay must treat it as an outside caller (e.g. only
    /// towards local users, never out to a trunk).
    Foreign,
}

/// A request that passed. Indices refer to the tables current when it was checked
/// ([`Core::auth_db`]); a reload may renumber them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthOk {
    /// How.
    pub method: AuthMethod,
    /// The user ([`crate::auth::AuthDb::user`]), for digest.
    pub user: Option<u32>,
    /// The account ([`crate::auth::AuthDb::account`]).
    pub account: Option<u32>,
}

/// Why a request did not pass, and so what it gets ([`Core::send_auth_rejection`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthReject {
    /// 401 (REGISTER) or 407 (others) with a fresh nonce; `stale=true` when the password
    /// was right but the nonce is not usable (RFC 7616 §3.3).
    Challenge {
        /// `stale=true`.
        stale: bool,
    },
    /// A 403 or 400 ([`AuthRefusal::reply`]).
    Refused(AuthRefusal),
}

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Go on.
    Authenticated(AuthOk),
    /// Answer with [`Core::send_auth_rejection`] and stop.
    Rejected(AuthReject),
}

pub use crate::stats::AuthStats;

/// Longest `method ":" uri` whose HA2 is remembered.
const HA2_KEY_MAX: usize = 128;

/// The last HA2 of one algorithm: `H(method ":" uri)` depends on public values only, and the
/// REGISTERs of a domain all share it (`REGISTER:sip:domain`), so a hit saves a hash.
#[derive(Debug)]
struct Ha2Memo {
    key: [u8; HA2_KEY_MAX],
    len: usize,
    hex: Hex,
}

impl Ha2Memo {
    fn new() -> Ha2Memo {
        Ha2Memo {
            key: [0; HA2_KEY_MAX],
            len: 0,
            hex: [0; 64],
        }
    }

    fn get(&mut self, alg: Algorithm, method: &[u8], uri: &[u8]) -> &Hex {
        let n = method.len() + 1 + uri.len();
        let hit = self.len == n
            && &self.key[..method.len()] == method
            && &self.key[method.len() + 1..n] == uri;
        if !hit {
            self.hex = ha2(alg, method, uri);
            if n <= HA2_KEY_MAX {
                self.key[..method.len()].copy_from_slice(method);
                self.key[method.len()] = b':';
                self.key[method.len() + 1..n].copy_from_slice(uri);
                self.len = n;
            } else {
                self.len = 0;
            }
        }
        &self.hex
    }
}

/// The authenticator (RFC 3261 §22, RFC 7616): its own state and the shard's sink, lent by
/// the dispatcher for one check, with the protection leaf's counts. It names no other
/// subsystem.
pub(crate) struct Authenticator<'a> {
    pub(crate) io: &'a mut crate::io::Io,
    pub(crate) auth: &'a mut AuthState,
    /// Wrong and right answers are counted here for the guessing bans (`protect`, issue
    /// 17; `auth/guard.rs`).
    pub(crate) protect: &'a mut crate::protect::Protect,
}

/// Per-shard authenticator state: the nonce key, this shard's nonce-count window, a reused
/// header buffer, the last HA2 per algorithm.
#[derive(Debug)]
pub(crate) struct AuthState {
    key: NonceKey,
    window: NcWindow,
    /// Nonce-counts of other edges' nonces (issue 20; empty with the cluster off).
    foreign: ForeignNc,
    /// Cluster on: nonces are issued and aged on the wall clock (`auth_db::nonce`).
    wall_clock: bool,
    buf: Vec<u8>,
    /// Indexed by `2 × ` [`Algorithm::index`] `+ 1` for REGISTER (its HA2 is the same for
    /// every user of a domain), `+ 0` for the rest (an INVITE's names its callee), so the
    /// two kinds do not evict each other.
    ha2: [Ha2Memo; 4],
    /// [`DUMMY_HA1`]'s SHA-256 state.
    dummy_sha256: [u32; 8],
    pub(crate) stats: AuthStats,
}

impl AuthState {
    pub(crate) fn new(cfg: &AuthConfig, cluster: &ClusterCoreConfig) -> AuthState {
        // Issue 20: clustered, the nonce names this node and a random epoch, its counters
        // start at a random point, and other nodes' nonces are tracked here
        // (`auth_db::nonce`, "Across edges").
        let (key, window, foreign) = if cluster.enabled {
            (
                NonceKey::clustered(&cfg.nonce_secret, cluster.node_id(), cfg.instance as u16),
                NcWindow::starting_at(cfg.nc_window, cfg.instance & 0xFFFF_0000 | 1),
                ForeignNc::new(cfg.nc_window / 8),
            )
        } else {
            (
                NonceKey::new(&cfg.nonce_secret, cfg.instance),
                NcWindow::new(cfg.nc_window),
                ForeignNc::new(0),
            )
        };
        AuthState {
            key,
            window,
            foreign,
            wall_clock: cluster.enabled,
            buf: Vec::with_capacity(512),
            ha2: [
                Ha2Memo::new(),
                Ha2Memo::new(),
                Ha2Memo::new(),
                Ha2Memo::new(),
            ],
            dummy_sha256: sha256_ha1_state(&DUMMY_HA1),
            stats: AuthStats::default(),
        }
    }
}

/// Internal verdict: like [`AuthOutcome`], plus "right credentials, replayed nc".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ok(AuthOk),
    Replayed,
    Reject(AuthReject),
}

/// Which request class is being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class<'a> {
    /// REGISTER of the AoR `(domain, user)` (canonical); `query`: it has no Contact
    /// (RFC 3261 §10.2.3, it changes nothing).
    Register {
        domain: &'a [u8],
        user: &'a [u8],
        query: bool,
    },
    /// Anything else; `from_host`: the host of the From URI when the caller has parsed From
    /// already (`None`: parsed here).
    Other { from_host: Option<&'a [u8]> },
}

/// A dummy HA1 hashed for an unknown user when the table has no user to borrow one from.
const DUMMY_HA1: [u8; 64] = [b'0'; 64];
const DUMMY_MD5: [u8; 32] = [b'0'; 32];

/// What a user's `response` is computed from, for the algorithm of the credentials.
#[derive(Clone, Copy)]
enum Secret {
    /// The MD5 HA1 (hex).
    Md5([u8; 32]),
    /// The SHA-256 state after the SHA-256 HA1.
    Sha256([u32; 8]),
}

/// The caller number for CLI authentication: the P-Asserted-Identity user (RFC 3325 §9.1),
/// else the From user.
fn caller_number<'a>(msg: &Message<'a>) -> &'a [u8] {
    let pai = msg
        .header_items(HeaderName::PAssertedIdentity)
        .find_map(|v| NameAddr::parse(v).ok());
    let addr = pai.or_else(|| msg.from().ok());
    addr.and_then(|a| {
        let u = a.uri();
        u.user().or(Some(u.host()))
    })
    .unwrap_or_default()
}

/// RFC 7616 §3.4.6 (RFC 2617 §3.2.2.5): does the credentials' `uri` directive name the
/// resource of the Request-URI? Byte-equal is the common case (a UA copies its
/// Request-URI); otherwise two `sip:`/`sips:` URIs are compared as RFC 3261 §19.1.4 says
/// (host and scheme case-insensitively, escapes undone, the `user`/`ttl`/`method`/`maddr`/
/// `transport` parameters in both or neither). Any other scheme must match byte for byte.
pub(crate) fn digest_uri_matches(digest_uri: &[u8], request_uri: &[u8]) -> bool {
    if digest_uri == request_uri {
        return true;
    }
    match (Uri::parse(digest_uri), Uri::parse(request_uri)) {
        (Ok(a), Ok(b)) if a.is_sip() && b.is_sip() => crate::aor::same_contact(&a, &b),
        _ => false,
    }
}

/// The algorithms a challenge offers: the [`Offer`] of the identity the request claims —
/// the AoR in To for a REGISTER (RFC 3261 §10.3 step 4: the user registers its own AoR),
/// From for the rest (§22.3) — or `[auth] algorithms` for an unknown one. Nothing is parsed
/// when every user has the default offer.
fn challenge_offer(
    db: &AuthDb,
    (msg, v): (&Message<'_>, Option<&Validated<'_>>),
    register: bool,
) -> Offer {
    if !db.per_user_offers() {
        return db.default_offer();
    }
    let addr = match (v, register) {
        (Some(v), true) => Some(v.to),
        (Some(v), false) => Some(v.from),
        (None, true) => msg.to().ok(),
        (None, false) => msg.from().ok(),
    };
    let Some(addr) = addr else {
        return db.default_offer();
    };
    let uri = addr.uri();
    let host = uri.host();
    let mut dom = [0u8; 128];
    let Some(lower) = dom.get_mut(..host.len()) else {
        return db.default_offer();
    };
    lower.copy_from_slice(host);
    lower.make_ascii_lowercase();
    db.offer_for(lower, uri.user().unwrap_or_default())
}

impl Authenticator<'_> {
    /// For a REGISTER's credentials (RFC 7616 §3.4.6 leaves what "the same resource" is to
    /// the server): does the digest `uri` name this edge itself — a `sip:` URI without user
    /// part whose host is one of our domains or addresses, on one of our ports or none,
    /// with no `maddr` and no transport but UDP (both would name another place)? A
    /// registrar is the resource a REGISTER acts on whatever address the client wrote
    /// (SIPp writes `sip:ip:port` unless run with `-auth_uri`), and the nonce, realm and
    /// method are ours, so this is as safe as the Request-URI; a URI naming another host,
    /// port, scheme or transport is still refused.
    fn digest_uri_names_us(&self, digest_uri: &[u8]) -> bool {
        match Uri::parse(digest_uri) {
            Ok(u) => {
                u.scheme() == sipedge_msg::Scheme::Sip
                    && u.user().is_none()
                    && u.maddr().is_none()
                    && u.transport().is_none_or(|t| t.eq_ignore_ascii_case(b"udp"))
                    && self.io.cfg.is_ours_uri(&u)
            }
            Err(_) => false,
        }
    }
}

impl Authenticator<'_> {
    /// [`Core::authenticate_request`] for a caller that has parsed From (its URI's host).
    pub(crate) fn authenticate_with(
        &mut self,
        now: Millis,
        remote: SocketAddr,
        msg: &Message<'_>,
        from_host: Option<&[u8]>,
    ) -> AuthOutcome {
        match self.verdict(now, remote, msg, Class::Other { from_host }) {
            Verdict::Ok(ok) => AuthOutcome::Authenticated(ok),
            Verdict::Replayed => {
                self.auth.stats.stale += 1;
                AuthOutcome::Rejected(AuthReject::Challenge { stale: true })
            }
            Verdict::Reject(r) => AuthOutcome::Rejected(r),
        }
    }

    /// [`Core::send_auth_rejection`], with what [`Message::validated`] parsed when the
    /// caller has it (`None`: parsed again).
    pub(crate) fn reject_request(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        req: (&Message<'_>, Option<&Validated<'_>>),
        reject: AuthReject,
    ) {
        let refusal = match reject {
            AuthReject::Challenge { stale } => {
                return self.challenge(now, local, remote, req, stale)
            }
            AuthReject::Refused(r) => r,
        };
        self.io
            .respond(local, remote, answering(req), refusal.reply(), |_| {});
    }

    /// The clock nonces are issued and aged on: monotonic, or Unix ms in a cluster (every
    /// edge must read the same one).
    fn nonce_clock(&self, now: Millis) -> u64 {
        if self.auth.wall_clock {
            self.io.unix_of(now)
        } else {
            now.0
        }
    }

    fn challenge(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        req: (&Message<'_>, Option<&Validated<'_>>),
        stale: bool,
    ) {
        let msg = req.0;
        let register = msg.method() == Some(sipedge_msg::Method::Register);
        let (code, reason, name): (u16, &[u8], &[u8]) = if register {
            (401, b"Unauthorized", b"WWW-Authenticate")
        } else {
            (407, b"Proxy Authentication Required", b"Proxy-Authenticate")
        };
        self.auth.stats.challenges += 1;
        let counter = self.auth.window.issue();
        let db = std::sync::Arc::clone(&self.io.cfg.auth.db);
        let offer = challenge_offer(&db, req, register);
        // The nonce names the algorithms offered: a response is checked under one of them.
        let nonce = self.auth.key.issue_for(
            self.io.cfg.shard.0,
            counter,
            self.nonce_clock(now),
            offer.mask(),
        );
        let mut buf = std::mem::take(&mut self.auth.buf);
        buf.clear();
        {
            for &alg in offer.as_slice() {
                buf.extend_from_slice(name);
                buf.extend_from_slice(b": Digest realm=\"");
                buf.extend_from_slice(db.settings.realm.as_bytes());
                buf.extend_from_slice(b"\", nonce=\"");
                buf.extend_from_slice(&nonce);
                buf.extend_from_slice(b"\", qop=\"auth\", algorithm=");
                buf.extend_from_slice(alg.token());
                if stale {
                    buf.extend_from_slice(b", stale=true");
                }
                buf.extend_from_slice(b"\r\n");
            }
        }
        self.io
            .respond(local, remote, answering(req), (code, reason), |w| {
                w.raw(&buf);
            });
        self.auth.buf = buf;
    }

    /// The digest credentials of our realm in `Authorization` (REGISTER) or
    /// `Proxy-Authorization` (others), RFC 3261 §22.2 / §22.3; else the verdict: 400 when
    /// only malformed ones were found, a challenge when none.
    #[inline]
    fn find_credentials<'m>(
        &mut self,
        db: &AuthDb,
        msg: &Message<'m>,
        class: Class<'_>,
    ) -> Result<Credentials<'m>, Verdict> {
        let realm = db.settings.realm.as_bytes();
        let mut malformed = false;
        let mut found = None;
        let name = match class {
            Class::Register { .. } => HeaderName::Authorization,
            Class::Other { .. } => HeaderName::ProxyAuthorization,
        };
        for v in msg.header_values(name) {
            match Credentials::parse(v) {
                Ok(c) if c.is_digest() && c.realm.is_some_and(|r| r.eq_bytes(realm)) => {
                    found = Some(c);
                    break;
                }
                Ok(_) => {}
                Err(_) => malformed = true,
            }
        }
        let bad = |st: &mut AuthState, why| {
            st.stats.malformed += 1;
            Verdict::Reject(AuthReject::Refused(why))
        };
        let Some(c) = found else {
            if malformed {
                return Err(bad(self.auth, AuthRefusal::MalformedCredentials));
            }
            return Err(Verdict::Reject(AuthReject::Challenge { stale: false }));
        };
        Ok(c)
    }

    /// A right response: the user's source whitelist, then the nonce's freshness and its
    /// nonce-count (RFC 7616 §3.3, §3.4).
    #[inline]
    fn digest_accept(
        &mut self,
        now: Millis,
        remote: SocketAddr,
        db: &AuthDb,
        (user, user_ref): (Option<u32>, &crate::auth_db::db::User),
        info: crate::auth_db::nonce::NonceInfo,
        nc: u32,
    ) -> Verdict {
        let st = &mut self.auth;
        if !user_ref.spec.ip_whitelist.is_empty()
            && !whitelisted(&user_ref.spec.ip_whitelist, remote.ip())
        {
            st.stats.forbidden += 1;
            return Verdict::Reject(AuthReject::Refused(AuthRefusal::SourceNotAllowed));
        }
        // An authentic nonce with the right response that can no longer be used here —
        // expired, issued by another shard, forgotten by the window — is stale (§3.3).
        let ttl_ms = u64::from(db.settings.nonce_ttl_secs) * 1000;
        let clock = if st.wall_clock {
            self.io.unix_of(now)
        } else {
            now.0
        };
        // Issue 20: another edge's nonce is counted on one shard of ours (`auth_db::nonce`).
        let shards = self.io.cfg.shards.max(1);
        let checker = if info.foreign {
            info.shard % shards
        } else {
            info.shard
        };
        if checker != self.io.cfg.shard.0 || nonce_age_ms(info.issued_ms, clock) > ttl_ms {
            st.stats.stale += 1;
            return Verdict::Reject(AuthReject::Challenge { stale: true });
        }
        let verdict = if info.foreign {
            match st.foreign.check(&info, nc, clock, ttl_ms) {
                ForeignVerdict::Fresh => NcVerdict::Fresh,
                ForeignVerdict::Replayed => NcVerdict::Replayed,
                ForeignVerdict::Full => NcVerdict::Forgotten,
            }
        } else {
            st.window.check(info.counter, nc)
        };
        match verdict {
            NcVerdict::Fresh => {}
            NcVerdict::Replayed => {
                st.stats.replays += 1;
                return Verdict::Replayed;
            }
            NcVerdict::Forgotten => {
                st.stats.stale += 1;
                return Verdict::Reject(AuthReject::Challenge { stale: true });
            }
        }
        st.stats.digest_ok += 1;
        Verdict::Ok(AuthOk {
            method: AuthMethod::Digest,
            user,
            account: user_ref.account,
        })
    }

    /// The whole check (module table), without replying.
    pub(crate) fn verdict(
        &mut self,
        now: Millis,
        remote: SocketAddr,
        msg: &Message<'_>,
        class: Class<'_>,
    ) -> Verdict {
        let db = std::sync::Arc::clone(&self.io.cfg.auth.db);
        let from_host = match self.verdict_before_digest(&db, remote, msg, class) {
            Ok(h) => h,
            Err(v) => return v,
        };
        let c = match self.find_credentials(&db, msg, class) {
            Ok(c) => c,
            Err(v) => return v,
        };
        let bad = |st: &mut AuthState, why| {
            st.stats.malformed += 1;
            Verdict::Reject(AuthReject::Refused(why))
        };
        let (Some(username), Some(nonce), Some(uri), Some(response)) =
            (c.username, c.nonce, c.uri, c.response)
        else {
            return bad(self.auth, AuthRefusal::IncompleteCredentials);
        };
        // RFC 7616 §3.4.6 / RFC 2617 §3.2.2.5: the digest-uri must name the Request-URI,
        // else the credentials could be lifted from a request for another resource. A
        // REGISTER may name this edge itself instead (the registrar is the resource either
        // way: what SIPp sends without `-auth_uri`); another host or port is refused.
        if db.settings.uri_must_match
            && !digest_uri_matches(uri.raw(), msg.request_uri_raw().unwrap_or_default())
            && !(matches!(class, Class::Register { .. }) && self.digest_uri_names_us(uri.raw()))
        {
            return bad(self.auth, AuthRefusal::DigestUriMismatch);
        }
        let st = &mut self.auth;
        let (qop_auth, nc) = match qop_of(st, &c) {
            Ok(q) => q,
            Err(v) => return v,
        };
        // RFC 7616 §3.3: the nonce first. One that is not ours (bad form or MAC, another
        // edge instance) gets a plain challenge and its response is never evaluated, so
        // a made-up nonce cannot turn `stale=true` into a password oracle.
        let Some(info) = st.key.verify(nonce.raw()) else {
            st.stats.bad_nonce += 1;
            return Verdict::Reject(AuthReject::Challenge { stale: false });
        };
        // The algorithm: named by the credentials (absent: MD5, RFC 7616 §3.4) and offered
        // by the challenge that issued this nonce (bound into it); it must also be in the
        // user's current offer (below, else it fails like a wrong password).
        let alg = match Algorithm::from_param(c.algorithm.map(|a| a.raw())) {
            Some(a) if info.algorithms & algorithm_bit(a) != 0 => a,
            _ => return Verdict::Reject(AuthReject::Challenge { stale: false }),
        };
        let username = username.raw();
        let must_match = db.settings.username_must_match;
        let case_sensitive = self.io.cfg.registrar.case_sensitive;
        let lookup_domain =
            match lookup_domain(st, (must_match, case_sensitive), class, from_host, username) {
                Ok(d) => d,
                Err(v) => return v,
            };
        let mut dom = [0u8; 128];
        let lookup_domain = if lookup_domain.len() <= dom.len() {
            dom[..lookup_domain.len()].copy_from_slice(lookup_domain);
            dom[..lookup_domain.len()].make_ascii_lowercase();
            &dom[..lookup_domain.len()]
        } else {
            b""
        };
        let user = db.find_user(lookup_domain, username);
        let user_ref = user.and_then(|u| db.user(u));
        // What the response is hashed from: the MD5 HA1, or the SHA-256 state after the
        // SHA-256 HA1 (its one block precomputed at load).
        let secret_of = |u: &'_ crate::auth_db::db::User| -> Option<Secret> {
            if !u.offer.contains(alg) {
                return None;
            }
            match alg {
                Algorithm::Md5 => u.spec.ha1_md5.map(Secret::Md5),
                Algorithm::Sha256 => u.sha256_state.map(Secret::Sha256),
            }
        };
        let secret = user_ref.and_then(secret_of);
        // No enumeration: an unknown user hashes a decoy HA1 (another user's record, read
        // the same way, else a constant) — the same work as a known one — and fails.
        let known = secret.is_some();
        let secret = secret
            .or_else(|| db.decoy_user(username).and_then(secret_of))
            .unwrap_or(match alg {
                Algorithm::Md5 => Secret::Md5(DUMMY_MD5),
                Algorithm::Sha256 => Secret::Sha256(st.dummy_sha256),
            });
        let method = msg.method().map(|m| m.as_bytes()).unwrap_or_default();
        let input = DigestInput {
            method,
            uri: uri.raw(),
            nonce: nonce.raw(),
            qop_auth,
        };
        let memo = 2 * alg.index() + usize::from(matches!(class, Class::Register { .. }));
        let ha2 = &st.ha2[memo].get(alg, method, input.uri)[..alg.hex_len()];
        let expected = match secret {
            Secret::Md5(ha1) => response_with_ha2(alg, &ha1, ha2, &input),
            Secret::Sha256(state) => sha256_response_after_ha1(&state, ha2, &input),
        };
        let right = response_matches(&expected[..alg.hex_len()], response.raw()) && known;
        if !right {
            st.stats.digest_failed += 1;
            // Issue 17: wrong password and unknown user alike count towards a ban.
            self.guard_failure(now, remote, lookup_domain, username);
            return Verdict::Reject(AuthReject::Challenge { stale: false });
        }
        let user_ref = user_ref.expect("known implies a user");
        let verdict = self.digest_accept(now, remote, &db, (user, user_ref), info, nc);
        if matches!(verdict, Verdict::Ok(_)) {
            self.guard_success(now, remote, lookup_domain, username);
        }
        verdict
    }
}

impl Authenticator<'_> {
    /// RFC 3261 §10.3 steps 3–4 for a REGISTER of the AoR `(domain, user)` on its owner
    /// shard. `None`: answered (401/403/400), stop. `Some(())`: go on.
    ///
    /// A replayed (nonce, nc) — RFC 7616 §3.4, or a nonce without qop used twice — gets a
    /// small `stale=true` 401 with a fresh nonce, even when it repeats the request that
    /// made the binding: only the first use of credentials earns the 200 OK, which lists
    /// every contact and so would let a replay reflect tens of kilobytes at any source it
    /// claims. A UA whose 200 OK was lost answers the new challenge like any other.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn register_auth(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &Validated<'_>,
        domain: &[u8],
        user: &[u8],
    ) -> Option<()> {
        self.io.register_verified = false;
        let class = Class::Register {
            domain,
            user,
            query: v.contact_count == 0,
        };
        let reject = match self.verdict(now, remote, msg, class) {
            Verdict::Ok(ok) => {
                self.io.register_verified = ok.method != AuthMethod::None;
                return Some(());
            }
            Verdict::Replayed => {
                self.auth.stats.stale += 1;
                AuthReject::Challenge { stale: true }
            }
            Verdict::Reject(r) => {
                if !matches!(r, AuthReject::Challenge { .. }) {
                    self.io.stats.registers_failed += 1;
                }
                r
            }
        };
        self.reject_request(now, local, remote, (msg, Some(v)), reject);
        None
    }
}

/// The reply view of a request that may not have passed validation.
fn answering<'r, 'm>((msg, v): (&'r Message<'m>, Option<&'r Validated<'m>>)) -> Req<'r, 'm> {
    match v {
        Some(v) => Req::Valid(msg, v),
        None => Req::Raw(msg),
    }
}
