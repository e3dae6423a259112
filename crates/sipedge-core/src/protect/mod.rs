//! Protection (issue 17): bans of floods, scanners and password guessers, and overload
//! shedding — one [`Protect`] per shard, owned by the core as one field and fed through
//! explicit-argument methods, so it stays apart from the protocol code it guards.
//!
//! | rule | trigger | what happens |
//! | --- | --- | --- |
//! | density (Kamailio pike) | more than `max_requests_per_sec` requests (datagrams other than responses and CRLF keepalives) from one source in the last second (sliding) | source banned `ban_secs`; the datagram dropped |
//! | scanner | a request whose User-Agent contains one of `scanner_user_agents` | dropped without reply, source banned |
//! | guessing, per source | `auth_failures_max` wrong digest answers (unknown users included — they get the same 401/407 as a wrong password) in `auth_failures_window_secs` | source banned |
//! | guessing, per user | `user_auth_failures_max` wrong answers for one user from any sources in the window | those sources banned, and each next one failing for that user in the window — never the source the user last authenticated from |
//! | ban | a datagram from a banned source | dropped before parsing (one hash lookup; nothing when no ban is held), counted |
//! | stale drop | the shell measures a receive queue longer than `[overload] max_queue_delay_ms` of service ([`crate::Core::handle_queue_delay`]) | new requests (no To tag; not ACK, CANCEL, BYE) dropped without reply before the full parse (`stale`), until the queue is short again |
//! | overload (RFC 3261 §21.5.4) | the shell's pressure level ([`crate::Core::handle_pressure`]) | level 1: new INVITEs, OPTIONS, other out-of-dialog requests and REGISTERs of AoRs not bound here get a stateless 503 with a randomised Retry-After; level 2: every REGISTER too. Responses, ACK, CANCEL, BYE and requests with a To tag are never shed |
//!
//! Sources in `trusted` and in `[[ip_auth]]` prefixes are never banned (their scanner
//! requests are still dropped). State is bounded: per-source and per-user entries live in
//! fixed-size tables (`max_sources`, `max_users`: the lightest, then oldest, entry of a full
//! set is evicted, so a spoofed flood cannot grow memory or push out the heavy sources);
//! the ban list holds at most `max_bans`.
//!
//! **Shards.** Each shard counts what reaches its own socket; SO_REUSEPORT hashes a source's
//! 4-tuple, so one source port lands on one shard, but a source using many ports spreads
//! over shards and each sees a share of its density (the threshold is then effectively
//! `shards ×` higher for it). Digest failures are counted on the shard that checks them (a
//! REGISTER's: the AoR's owner). A ban decided on one shard is reported as
//! [`crate::CoreEvent::Banned`]; the shell shares it and hands it to every shard with
//! [`crate::Core::handle_ban`] between turns (and lifts one with [`crate::Core::handle_unban`]).

mod bans;
mod density;
mod guessing;
mod scanner;
mod stale;
mod table;

use std::net::IpAddr;

use self::bans::BanList;
pub use self::bans::BanReason;
use self::density::Source;
use self::guessing::UserFails;
pub use self::scanner::DEFAULT_SCANNER_USER_AGENTS;
pub(crate) use self::stale::droppable_when_stale;
pub use self::table::ip_key;
use self::table::{key_ip, FixedTable};
use crate::time::Millis;

/// Default `[protect] max_requests_per_sec` (per source, sliding one-second window).
pub const DEFAULT_MAX_REQUESTS_PER_SEC: u32 = 100;
/// Default `[protect] ban_secs`.
pub const DEFAULT_BAN_SECS: u32 = 300;
/// Default `[protect] auth_failures_max` (per source; svcrack is banned at its 5th guess).
pub const DEFAULT_AUTH_FAILURES_MAX: u32 = 5;
/// Default `[protect] auth_failures_window_secs`.
pub const DEFAULT_AUTH_FAILURES_WINDOW_SECS: u32 = 300;
/// Default `[protect] user_auth_failures_max` (per user, all sources).
pub const DEFAULT_USER_AUTH_FAILURES_MAX: u32 = 20;
/// Default `[protect] max_sources` (per-source entries per shard, ~64 bytes each).
pub const DEFAULT_MAX_SOURCES: usize = 65_536;
/// Default `[protect] max_users` (per-user failure entries per shard, ~112 bytes each).
pub const DEFAULT_MAX_USERS: usize = 16_384;
/// Default `[protect] max_bans` (bans every shard holds).
pub const DEFAULT_MAX_BANS: usize = 65_536;
/// Default `[overload] retry_after_min_secs` / `retry_after_max_secs`: the Retry-After of a
/// shed request is drawn evenly between them, so the refused clients do not all come back
/// in the same second (RFC 3261 §21.5.4; the spread RFC 7339 asks of overload control).
pub const DEFAULT_RETRY_AFTER_MIN_SECS: u32 = 5;
/// See [`DEFAULT_RETRY_AFTER_MIN_SECS`].
pub const DEFAULT_RETRY_AFTER_MAX_SECS: u32 = 30;

/// `[protect]` and the core's part of `[overload]`, validated by the shell. `Default` is
/// every rule off (what sans-IO tests of other subsystems want); the shell's documented
/// defaults are [`ProtectConfig::recommended`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectConfig {
    /// Requests per second per source above which it is banned (0: rule off).
    pub max_requests_per_sec: u32,
    /// How long a ban lasts, seconds.
    pub ban_secs: u32,
    /// User-Agent substrings of scanners, lowercase (empty: rule off).
    pub scanner_user_agents: Vec<Vec<u8>>,
    /// Wrong digest answers per source in the window before a ban (0: rule off).
    pub auth_failures_max: u32,
    /// The window of both failure rules, seconds.
    pub auth_failures_window_secs: u32,
    /// Wrong digest answers per user in the window before its guessers are banned (0: off).
    pub user_auth_failures_max: u32,
    /// Sources never banned.
    pub trusted: Vec<ipnet::IpNet>,
    /// Per-source entries of this shard.
    pub max_sources: usize,
    /// Per-user entries of this shard.
    pub max_users: usize,
    /// Bans this shard holds.
    pub max_bans: usize,
    /// Bounds of the shed 503's Retry-After, seconds.
    pub retry_after_secs: (u32, u32),
}

impl Default for ProtectConfig {
    fn default() -> Self {
        let r = Self::recommended();
        Self {
            max_requests_per_sec: 0,
            scanner_user_agents: Vec::new(),
            auth_failures_max: 0,
            user_auth_failures_max: 0,
            ban_secs: r.ban_secs,
            auth_failures_window_secs: r.auth_failures_window_secs,
            trusted: r.trusted,
            max_sources: r.max_sources,
            max_users: r.max_users,
            max_bans: r.max_bans,
            retry_after_secs: r.retry_after_secs,
        }
    }
}

impl ProtectConfig {
    /// The documented defaults (`config/sipedge.toml`).
    pub fn recommended() -> Self {
        Self {
            max_requests_per_sec: DEFAULT_MAX_REQUESTS_PER_SEC,
            ban_secs: DEFAULT_BAN_SECS,
            scanner_user_agents: DEFAULT_SCANNER_USER_AGENTS
                .iter()
                .map(|s| s.to_ascii_lowercase().into_bytes())
                .collect(),
            auth_failures_max: DEFAULT_AUTH_FAILURES_MAX,
            auth_failures_window_secs: DEFAULT_AUTH_FAILURES_WINDOW_SECS,
            user_auth_failures_max: DEFAULT_USER_AUTH_FAILURES_MAX,
            trusted: Vec::new(),
            max_sources: DEFAULT_MAX_SOURCES,
            max_users: DEFAULT_MAX_USERS,
            max_bans: DEFAULT_MAX_BANS,
            retry_after_secs: (DEFAULT_RETRY_AFTER_MIN_SECS, DEFAULT_RETRY_AFTER_MAX_SECS),
        }
    }
}

crate::counters! {
    /// What the protection rules dropped, banned and shed on one shard.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct ProtectStats {
        /// Datagrams dropped because their source is banned.
        dropped_banned: "protect_dropped_banned_total", counter,
            "Datagrams dropped before parsing because their source is banned.";
        /// Datagrams dropped by the density rule as it banned their source.
        dropped_density: "protect_dropped_density_total", counter,
            "Datagrams dropped because their source went over [protect] max_requests_per_sec.";
        /// Requests dropped for a scanner User-Agent.
        dropped_scanner: "protect_dropped_scanner_total", counter,
            "Requests dropped without reply for a scanner User-Agent.";
        /// Bans decided here, by reason.
        bans_density: "protect_bans_density_total", counter,
            "Sources banned here for request density.";
        bans_scanner: "protect_bans_scanner_total", counter,
            "Sources banned here for a scanner User-Agent.";
        bans_guessing: "protect_bans_guessing_total", counter,
            "Sources banned here for wrong digest answers (per source).";
        bans_user_guessing: "protect_bans_user_guessing_total", counter,
            "Sources banned here for wrong digest answers for one user (per user).";
        /// Bans handed over by the shell (other shards, the operator).
        bans_received: "protect_bans_received_total", counter,
            "Bans taken from the shared ban list (other shards, operator).";
        /// Bans lifted by the shell.
        unbans: "protect_unbans_total", counter, "Bans lifted by the operator.";
        /// Bans held now.
        bans_active: "protect_bans_active", gauge, "Bans held by the shard.";
        /// Entries pushed out of the full per-source / per-user tables.
        sources_evicted: "protect_sources_evicted_total", counter,
            "Per-source or per-user entries evicted from their full table.";
        /// Would-be bans of trusted or `[[ip_auth]]` sources.
        exempt: "protect_exempt_total", counter,
            "Bans not applied: the source is trusted or in an [[ip_auth]] prefix.";
        /// Requests shed with 503: new ones (level 1), refreshes (level 2).
        shed_new: "overload_shed_new_total", counter,
            "New requests (INVITE, OPTIONS, REGISTER of an unbound AoR, ...) answered 503 under pressure.";
        shed_refresh: "overload_shed_refresh_total", counter,
            "REGISTER refreshes answered 503 under high pressure.";
        /// New requests read and dropped while the queue was late (`stale`).
        stale_dropped: "overload_stale_dropped_total", counter,
            "New requests dropped without reply because the receive queue held more than [overload] max_queue_delay_ms of work.";
        /// The pressure level in force (0, 1, 2).
        pressure: "overload_pressure_level", gauge,
            "Pressure level the shard sheds at (0 none, 1 new requests, 2 refreshes too).";
    }
}

/// What [`Protect::admit`] decided about a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Pass,
    /// Drop: the source is banned.
    Drop(BanReason),
    /// Drop, and the source is banned from now until `until` (to be shared).
    NewBan {
        /// When the ban ends.
        until: Millis,
        /// Why.
        reason: BanReason,
    },
}

/// One shard's protection state.
#[derive(Debug)]
pub struct Protect {
    cfg: ProtectConfig,
    sources: FixedTable<Source>,
    users: FixedTable<UserFails>,
    bans: BanList,
    stats: ProtectStats,
    /// 0 none, 1 shed new requests, 2 shed refreshes too.
    pressure: u8,
    /// The shell's kernel filter sheds OPTIONS and REGISTER by a share sized to what this
    /// shard can serve ([`Protect::set_kernel_admits`]).
    kernel_admits: bool,
    /// The receive queue holds more than the shard serves in `max_queue_delay_ms`: new
    /// requests are dropped unread ([`Protect::set_queue_late`]).
    queue_late: bool,
    /// Drives the Retry-After spread (with the seed: deterministic, replayable).
    draws: u64,
    seed: u64,
    user_hash: crate::aor::TableHasher,
}

impl Protect {
    /// A shard's protection with `cfg`; `seed` keys its tables' hashes.
    pub fn new(cfg: ProtectConfig, seed: u64) -> Protect {
        Protect {
            sources: FixedTable::new(cfg.max_sources.max(1), seed ^ 0x5157),
            users: FixedTable::new(cfg.max_users.max(1), seed ^ 0x0a5e),
            bans: BanList::new(cfg.max_bans, seed),
            user_hash: crate::aor::TableHasher::new(seed ^ 0x7573_6572),
            cfg,
            stats: ProtectStats::default(),
            pressure: 0,
            kernel_admits: false,
            queue_late: false,
            draws: 0,
            seed,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProtectConfig {
        &self.cfg
    }

    /// Counters (the gauges brought up to date).
    pub fn stats(&self) -> ProtectStats {
        let mut s = self.stats;
        s.bans_active = self.bans.len() as u64;
        s.sources_evicted = self.sources.evicted.saturating_add(self.users.evicted);
        s.pressure = u64::from(self.pressure);
        s
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.cfg.trusted.iter().any(|n| n.contains(&ip))
    }

    fn until(&self, now: Millis) -> Millis {
        now.plus(u64::from(self.cfg.ban_secs).saturating_mul(1000))
    }

    /// Bans `key` for `reason` unless it is exempt (trusted, or `exempt` says so: the
    /// `[[ip_auth]]` prefixes). `Some(until)`: a new ban.
    fn decide_ban(
        &mut self,
        key: u128,
        now: Millis,
        reason: BanReason,
        exempt: &dyn Fn(IpAddr) -> bool,
    ) -> Option<Millis> {
        let ip = key_ip(key);
        if self.trusted(ip) || exempt(ip) {
            self.stats.exempt += 1;
            return None;
        }
        let until = self.until(now);
        if !self.bans.insert(key, until, reason, now) {
            return None;
        }
        match reason {
            BanReason::Density => self.stats.bans_density += 1,
            BanReason::Scanner => self.stats.bans_scanner += 1,
            BanReason::Guessing => self.stats.bans_guessing += 1,
            BanReason::UserGuessing => self.stats.bans_user_guessing += 1,
            BanReason::External => self.stats.bans_received += 1,
        }
        Some(until)
    }

    /// A datagram from `ip` at `now`, before parsing: dropped if the source is banned;
    /// counted for the density rule otherwise when it is a `request` — like pike, responses
    /// and CRLF keepalives are not (a phone's answers to its calls would double its rate)
    /// (`exempt`: is the source in an `[[ip_auth]]` prefix — asked only when it is about to
    /// be banned).
    #[inline]
    pub fn admit(
        &mut self,
        ip: IpAddr,
        now: Millis,
        request: bool,
        exempt: &dyn Fn(IpAddr) -> bool,
    ) -> Verdict {
        let max = self.cfg.max_requests_per_sec;
        if max == 0 && self.bans.len() == 0 {
            return Verdict::Pass;
        }
        let key = ip_key(ip);
        if let Some(reason) = self.bans.check(key, now) {
            self.stats.dropped_banned += 1;
            return Verdict::Drop(reason);
        }
        if max == 0 || !request {
            return Verdict::Pass;
        }
        let src = self.sources.entry(key);
        if src.count(now.0) <= max || src.exempt_until > now.0 {
            return Verdict::Pass;
        }
        match self.decide_ban(key, now, BanReason::Density, exempt) {
            Some(until) => {
                self.stats.dropped_density += 1;
                if let Some(s) = self.sources.get_mut(key) {
                    s.reset();
                }
                Verdict::NewBan {
                    until,
                    reason: BanReason::Density,
                }
            }
            None => {
                // Exempt: not asked again for ten seconds.
                if let Some(s) = self.sources.get_mut(key) {
                    s.exempt_until = now.0.saturating_add(10_000);
                }
                Verdict::Pass
            }
        }
    }

    /// True when `user_agent` is a scanner's (`[protect] scanner_user_agents`).
    pub fn is_scanner(&self, user_agent: &[u8]) -> bool {
        scanner::is_scanner(user_agent, &self.cfg.scanner_user_agents)
    }

    /// A scanner's request from `ip`: always dropped (counted); the source banned unless
    /// exempt. `Some(until)`: a new ban.
    pub fn on_scanner(
        &mut self,
        ip: IpAddr,
        now: Millis,
        exempt: &dyn Fn(IpAddr) -> bool,
    ) -> Option<Millis> {
        self.stats.dropped_scanner += 1;
        self.decide_ban(ip_key(ip), now, BanReason::Scanner, exempt)
    }

    /// The key of a user (canonical domain and username) for the per-user rule.
    pub fn user_key(&self, domain: &[u8], user: &[u8]) -> u128 {
        u128::from(self.user_hash.hash(&[domain, user])) | 1 << 64
    }

    /// A wrong digest answer (or an unknown user) from `ip` for `user` (a
    /// [`Protect::user_key`]); `ban` is called with each source banned now.
    pub fn on_auth_failure(
        &mut self,
        ip: IpAddr,
        user: u128,
        now: Millis,
        exempt: &dyn Fn(IpAddr) -> bool,
        ban: &mut dyn FnMut(IpAddr, Millis, BanReason),
    ) {
        let window = u64::from(self.cfg.auth_failures_window_secs).saturating_mul(1000);
        let key = ip_key(ip);
        let per_source = self.cfg.auth_failures_max;
        if per_source > 0 && self.sources.entry(key).fail(now.0, window) >= per_source {
            if let Some(until) = self.decide_ban(key, now, BanReason::Guessing, exempt) {
                ban(ip, until, BanReason::Guessing);
            }
            if let Some(s) = self.sources.get_mut(key) {
                s.fails = 0;
            }
        }
        let per_user = self.cfg.user_auth_failures_max;
        if per_user == 0 {
            return;
        }
        let u = self.users.entry(user);
        if u.fail(key, now.0, window) < per_user {
            return;
        }
        let guessers: guessing_list::List = u.take_guessers().collect();
        for k in guessers {
            if let Some(until) = self.decide_ban(k, now, BanReason::UserGuessing, exempt) {
                ban(key_ip(k), until, BanReason::UserGuessing);
            }
        }
    }

    /// A right digest answer from `ip` for `user`: the user's own source from now on.
    pub fn on_auth_success(&mut self, ip: IpAddr, user: u128, now: Millis) {
        if self.cfg.user_auth_failures_max > 0 {
            self.users.entry(user).succeed(ip_key(ip), now.0);
        }
    }

    /// A ban decided elsewhere (another shard, the operator). True if new here.
    pub fn ban(&mut self, ip: IpAddr, until: Millis, now: Millis) -> bool {
        let new = self
            .bans
            .insert(ip_key(ip), until, BanReason::External, now);
        if new {
            self.stats.bans_received += 1;
        }
        new
    }

    /// Lifts the ban of `ip` and forgets its counts. True if it was banned here.
    pub fn unban(&mut self, ip: IpAddr) -> bool {
        let key = ip_key(ip);
        if let Some(s) = self.sources.get_mut(key) {
            s.reset();
        }
        let had = self.bans.remove(key);
        if had {
            self.stats.unbans += 1;
        }
        had
    }

    /// Lifts every ban.
    pub fn clear_bans(&mut self) {
        self.bans.clear();
    }

    /// True when `ip` is banned at `now`.
    pub fn is_banned(&mut self, ip: IpAddr, now: Millis) -> bool {
        self.bans.check(ip_key(ip), now).is_some()
    }

    /// The pressure level in force (0 none, 1 shed new requests, 2 refreshes too).
    pub fn pressure(&self) -> u8 {
        self.pressure
    }

    /// Sets the pressure level (clamped to 2).
    pub fn set_pressure(&mut self, level: u8) {
        self.pressure = level.min(2);
    }

    /// Whether the kernel filter is shedding OPTIONS, REGISTER and new INVITEs by share
    /// (issue 17 item 6). While it is, level 1 leaves those classes alone: what reaches user space
    /// was admitted because the queue had room for it, and a 503 costs a read, a parse and
    /// a send for nothing — at 10× offered load it would refuse the very share the filter
    /// sized to the shard's capacity, so no new registration would complete. Level 2 still
    /// sheds every REGISTER and new INVITE (RFC 3261 §21.5.4).
    pub fn set_kernel_admits(&mut self, on: bool) {
        self.kernel_admits = on;
    }

    /// Whether the shell measured the receive queue late (its last read datagram waited
    /// longer than `[overload] max_queue_delay_ms`): while it is, new requests are dropped
    /// before parsing ([`Protect::drop_stale`], the `stale` module).
    pub fn set_queue_late(&mut self, late: bool) {
        self.queue_late = late;
    }

    /// True (counted) when the datagram `bytes` is to be dropped as stale: the queue is
    /// late and it is a new request ([`droppable_when_stale`]).
    #[inline]
    pub fn drop_stale(&mut self, bytes: &[u8]) -> bool {
        if self.queue_late && droppable_when_stale(bytes) {
            self.stats.stale_dropped += 1;
            return true;
        }
        false
    }

    /// True when level-1 shedding skips `OPTIONS`, `REGISTER` and new `INVITE`s (see
    /// [`Protect::set_kernel_admits`]).
    pub fn kernel_admits(&self) -> bool {
        self.kernel_admits
    }

    /// A Retry-After for a shed request, drawn evenly in `retry_after_secs`.
    pub fn retry_after(&mut self) -> u32 {
        let (lo, hi) = self.cfg.retry_after_secs;
        self.draws = self.draws.wrapping_add(1);
        let mut x = self.seed ^ self.draws.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^= x >> 31;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 29;
        let span = u64::from(hi.saturating_sub(lo)) + 1;
        lo.saturating_add((x % span) as u32)
    }

    /// Shed counters (used by the core's shedding hook).
    pub(crate) fn count_shed(&mut self, refresh: bool) {
        if refresh {
            self.stats.shed_refresh += 1;
        } else {
            self.stats.shed_new += 1;
        }
    }
}

mod guessing_list {
    /// The few sources banned at once by the per-user rule.
    pub(super) type List = smallvec::SmallVec<[u128; super::guessing::RECENT]>;
}
