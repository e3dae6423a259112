//! Channels and calls-per-second limits (issue 16): per user, account, source IP of an
//! `[[ip_auth]]` prefix, and for the whole server.
//!
//! | piece | where |
//! | --- | --- |
//! | one key's counters (CAS, exact across shards) | [`counter`] |
//! | the table of keys every shard shares, rebuilt on reload with the counters carried over | [`LimitsTable`] |
//! | a call's hold on its keys, released exactly once when dropped | [`Charge`] |
//! | the capacity check at load ("No channel capacity available for your account") | [`check_capacity`] |
//! | what a refused call gets (503 + Retry-After, or 302) | [`refusal`], `hooks` |
//!
//! **Design (ARCHITECTURE.md "Limits and dialogs").** The counters are shared atomics,
//! not owned by one shard: an admission is one compare-and-swap per key (server, account(s),
//! user(s), source IP), so a call is admitted or refused on the shard it arrived at, in the
//! same turn, never one call over a limit however calls spread over shards. The table of
//! keys is immutable between reloads and handed to every core like the auth tables; only the
//! counters inside it change. The core stays deterministic in a single-threaded simulation
//! (the same inputs give the same CAS outcomes).

mod counter;
pub mod refusal;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use ipnet::IpNet;

use crate::auth_db::db::{AuthDb, AuthSpec};
use counter::Over;
pub use counter::{Counter, Limit};
pub use refusal::LimitRefusal;

/// Default `[limits] retry_after_secs`: the Retry-After of a refusal (randomised ±20 %).
pub const DEFAULT_RETRY_AFTER_SECS: u32 = 5;
/// Default `[limits] reject_code`.
pub const DEFAULT_REJECT_CODE: u16 = 503;
/// Default `[limits] max_ip_keys`: source IPs counted for `[[ip_auth]]` limits at once.
pub const DEFAULT_MAX_IP_KEYS: usize = 65_536;
/// Slots probed for a source IP before it is refused as [`LimitRefusal::IpTableFull`].
const IP_PROBES: usize = 16;

/// `[limits] count`: whose calls a user's limits count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CountMode {
    /// Calls from the user and calls to it (issue 16 default).
    #[default]
    Both,
    /// Only calls the user makes.
    Outbound,
}

/// `[limits] at_capacity`: what a refused call gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AtCapacity {
    /// `reject_code` (503) "Server at max cps/channels" with Retry-After.
    #[default]
    Reject,
    /// 302 Moved Temporarily to `redirect_to` (the Request-URI user kept).
    Redirect,
}

/// `[limits]` (the call limits) and the `[[ip_auth]]` limits, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsSpec {
    /// `[limits] channels` / `cps`: the whole server.
    pub server: Limit,
    /// `[limits] count`.
    pub count: CountMode,
    /// `[limits] at_capacity`.
    pub at_capacity: AtCapacity,
    /// `[limits] reject_code` (RFC 3261 §21: a 4xx/5xx/6xx).
    pub reject_code: u16,
    /// `[limits] retry_after_secs` (0: no Retry-After).
    pub retry_after_secs: u32,
    /// `[limits] redirect_to`: SIP URIs (`sip:host[:port][;params]`) for the 302's Contacts.
    pub redirect_to: Vec<String>,
    /// `[[ip_auth]] channels` / `cps`: per source IP inside each prefix, in config order
    /// (the first prefix holding the source applies).
    pub ip_auth: Vec<(IpNet, Limit)>,
    /// `[limits] max_ip_keys`.
    pub max_ip_keys: usize,
}

impl Default for LimitsSpec {
    fn default() -> Self {
        Self {
            server: Limit::default(),
            count: CountMode::Both,
            at_capacity: AtCapacity::Reject,
            reject_code: DEFAULT_REJECT_CODE,
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
            redirect_to: Vec::new(),
            ip_auth: Vec::new(),
            max_ip_keys: DEFAULT_MAX_IP_KEYS,
        }
    }
}

/// Keys of a [`Charge`] other than the server's: two accounts, two users, one source IP.
const CHARGE_KEYS: usize = 5;
/// The kind of a charged key (its top two bits; the rest is its index in the table).
const KEY_ACCOUNT: u32 = 1 << 30;
const KEY_USER: u32 = 2 << 30;
const KEY_IP: u32 = 3 << 30;
const KEY_INDEX: u32 = (1 << 30) - 1;

/// A call's hold on the counters it was admitted against: one channel each, given back when
/// the `Charge` is dropped — so it is released exactly once, by whoever owns it last (the
/// INVITE's cell, then the dialog entry, possibly on another shard).
///
/// It names its keys by index in the table that admitted it (one `Arc` of the table, not
/// one per key: 32 bytes, and one reference-count update per call instead of one per key).
/// A reload builds a new table whose counters are the same objects, so a call admitted
/// before it is released on the counters the new table reads; the old table lives until
/// its last call ends.
#[derive(Default)]
pub struct Charge {
    table: Option<Arc<LimitsTable>>,
    keys: [u32; CHARGE_KEYS],
    n: u8,
    server: bool,
}

impl std::fmt::Debug for Charge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Charge")
            .field("server", &self.server)
            .field("keys", &&self.keys[..usize::from(self.n)])
            .finish()
    }
}

impl Charge {
    /// Keys held.
    pub fn len(&self) -> usize {
        usize::from(self.n) + usize::from(self.server)
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters held.
    fn counters(&self) -> impl Iterator<Item = &Counter> + '_ {
        let t = self.table.as_deref();
        let server = t.filter(|_| self.server).map(|t| &*t.server);
        let keys = self.keys[..usize::from(self.n)]
            .iter()
            .filter_map(move |&k| t?.counter(k));
        server.into_iter().chain(keys)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        for c in self.counters() {
            c.release_channel();
        }
    }
}

impl Clone for Charge {
    /// A second hold on the same keys (taken unconditionally), released on its own drop.
    fn clone(&self) -> Self {
        for c in self.counters() {
            c.force_channel();
        }
        Charge {
            table: self.table.clone(),
            keys: self.keys,
            n: self.n,
            server: self.server,
        }
    }
}

impl PartialEq for Charge {
    fn eq(&self, other: &Self) -> bool {
        let same_table = match (&self.table, &other.table) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_table
            && self.server == other.server
            && self.keys[..usize::from(self.n)] == other.keys[..usize::from(other.n)]
    }
}

impl Eq for Charge {}

/// Source IPs of `[[ip_auth]]` prefixes with limits: a fixed open-addressed table (claimed
/// by CAS, never freed: at most `max_ip_keys` IPs are ever counted; more are refused).
#[derive(Debug)]
struct IpCounters {
    slots: Box<[IpSlot]>,
}

#[derive(Debug, Default)]
struct IpSlot {
    key: AtomicU64,
    counter: OnceLock<Arc<Counter>>,
}

fn ip_key(ip: IpAddr) -> u64 {
    let x = match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a) ^ (1 << 127),
    };
    // splitmix64 over both halves: spreads neighbouring addresses over the table.
    let mut z = (x as u64) ^ ((x >> 64) as u64).rotate_left(29) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

impl IpCounters {
    fn new(cap: usize) -> IpCounters {
        let n = if cap == 0 { 0 } else { cap.next_power_of_two() };
        IpCounters {
            slots: (0..n).map(|_| IpSlot::default()).collect(),
        }
    }

    /// The slot of `ip` (its counter made), claiming one for it if it has none.
    fn get(&self, ip: IpAddr) -> Option<u32> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let k = ip_key(ip);
        for p in 0..IP_PROBES.min(n) {
            let i = (k as usize).wrapping_add(p) & (n - 1);
            let s = &self.slots[i];
            let claimed = match s
                .key
                .compare_exchange(0, k, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => true,
                Err(seen) => seen == k,
            };
            if claimed {
                s.counter.get_or_init(Arc::default);
                // A slot past `KEY_INDEX` (a table of over 2^30 IPs) is refused as full.
                return u32::try_from(i).ok().filter(|&i| i <= KEY_INDEX);
            }
        }
        None
    }

    fn used(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.key.load(Ordering::Relaxed) != 0)
            .count()
    }
}

/// Refusals by [`LimitRefusal`] (and admissions), shared by every shard and every reload.
#[derive(Debug, Default)]
pub struct LimitCounts {
    refused: [AtomicU64; 10],
    admitted: AtomicU64,
}

impl LimitCounts {
    /// Calls refused by `kind` since start.
    pub fn refused(&self, kind: LimitRefusal) -> u64 {
        self.refused[kind.index()].load(Ordering::Relaxed)
    }

    /// Calls admitted since start.
    pub fn admitted(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }
}

/// The limit keys every shard shares ([`LimitsHandle`]). Built from the auth tables it
/// belongs with (user and account indices are theirs); a reload builds a new one with
/// [`LimitsTable::build`] from the old, so the counters of every key that still exists are
/// the same objects (calls in progress stay counted; a lowered limit refuses new calls
/// only).
#[derive(Debug)]
pub struct LimitsTable {
    /// What it was built from.
    pub spec: LimitsSpec,
    /// The auth tables the user/account indices belong to (their address, never read).
    built_for: usize,
    server: Arc<Counter>,
    users: Vec<(Arc<Counter>, Limit)>,
    accounts: Vec<(Arc<Counter>, Limit)>,
    account_names: Vec<String>,
    user_names: Vec<(String, String)>,
    ips: Arc<IpCounters>,
    counts: Arc<LimitCounts>,
}

/// What every core holds: replaced whole on reload ([`crate::ReloadTables`]).
pub type LimitsHandle = Arc<LimitsTable>;

impl Default for LimitsTable {
    fn default() -> Self {
        LimitsTable {
            spec: LimitsSpec::default(),
            built_for: 0,
            server: Arc::default(),
            users: Vec::new(),
            accounts: Vec::new(),
            account_names: Vec::new(),
            user_names: Vec::new(),
            ips: Arc::new(IpCounters::new(0)),
            counts: Arc::default(),
        }
    }
}

/// Who a call is counted against ([`LimitsTable::admit`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Parties {
    pub caller_user: Option<u32>,
    pub caller_account: Option<u32>,
    pub callee_user: Option<u32>,
    pub callee_account: Option<u32>,
    /// The source, when it was authenticated by an `[[ip_auth]]` prefix.
    pub ip: Option<IpAddr>,
}

impl LimitsTable {
    /// The keys of `db` with `spec`'s limits; counters of `prev` (the table in force) are
    /// carried over by user (domain, username), account name, and the whole per-IP table.
    pub fn build(db: &Arc<AuthDb>, spec: LimitsSpec, prev: Option<&LimitsTable>) -> LimitsTable {
        let mut old_users: std::collections::HashMap<(&str, &str), &Arc<Counter>> =
            std::collections::HashMap::new();
        let mut old_accounts: std::collections::HashMap<&str, &Arc<Counter>> =
            std::collections::HashMap::new();
        if let Some(p) = prev {
            for ((d, n), (c, _)) in p.user_names.iter().zip(&p.users) {
                old_users.insert((d.as_str(), n.as_str()), c);
            }
            for (n, (c, _)) in p.account_names.iter().zip(&p.accounts) {
                old_accounts.insert(n.as_str(), c);
            }
        }
        let mut users = Vec::with_capacity(db.user_count());
        let mut user_names = Vec::with_capacity(db.user_count());
        for i in 0..db.user_count() {
            let Some(u) = db.user(i as u32) else { break };
            let d = u.spec.domain.clone().unwrap_or_default();
            let c = old_users
                .get(&(d.as_str(), u.spec.username.as_str()))
                .map(|c| Arc::clone(c))
                .unwrap_or_default();
            users.push((c, Limit::new(u.spec.channels, u.spec.cps)));
            user_names.push((d, u.spec.username.clone()));
        }
        let mut accounts = Vec::new();
        let mut account_names = Vec::new();
        let mut i = 0;
        while let Some(a) = db.account(i) {
            let c = old_accounts
                .get(a.name.as_str())
                .map(|c| Arc::clone(c))
                .unwrap_or_default();
            accounts.push((c, Limit::new(a.channels, a.cps)));
            account_names.push(a.name.clone());
            i += 1;
        }
        let ip_cap = if spec.ip_auth.iter().all(|(_, l)| l.is_unlimited()) {
            0
        } else {
            spec.max_ip_keys.max(1).next_power_of_two()
        };
        let ips = match prev {
            Some(p) if p.ips.slots.len() == ip_cap => Arc::clone(&p.ips),
            _ => Arc::new(IpCounters::new(ip_cap)),
        };
        LimitsTable {
            spec,
            built_for: Arc::as_ptr(db) as usize,
            server: prev.map(|p| Arc::clone(&p.server)).unwrap_or_default(),
            users,
            user_names,
            accounts,
            account_names,
            ips,
            counts: prev.map(|p| Arc::clone(&p.counts)).unwrap_or_default(),
        }
    }

    /// A handle for [`crate::CoreConfig`] and [`crate::ReloadTables`].
    pub fn into_handle(self) -> LimitsHandle {
        Arc::new(self)
    }

    /// True when built for the auth tables `db` (user and account indices are theirs).
    pub(crate) fn belongs_to(&self, db: &Arc<AuthDb>) -> bool {
        self.built_for == Arc::as_ptr(db) as usize
    }

    /// Channels in use on the whole server (every tracked call, limited or not).
    pub fn server_channels(&self) -> u32 {
        self.server.channels()
    }

    /// Calls admitted during second `sec` on the whole server.
    pub fn server_cps(&self, sec: u32) -> u32 {
        self.server.cps_at(sec)
    }

    /// Per account: name, limits, channels in use, calls admitted during second `sec`.
    pub fn accounts(&self, sec: u32) -> impl Iterator<Item = (&str, Limit, u32, u32)> + '_ {
        self.account_names
            .iter()
            .zip(&self.accounts)
            .map(move |(n, (c, l))| (n.as_str(), *l, c.channels(), c.cps_at(sec)))
    }

    /// The user `domain`/`username` (domain "" for a domain-less user): its limits and
    /// channels in use (per-user metrics on request, not as millions of labels).
    pub fn user(&self, domain: &str, username: &str) -> Option<(Limit, u32)> {
        let i = self
            .user_names
            .iter()
            .position(|(d, n)| d == domain && n == username)?;
        let (c, l) = &self.users[i];
        Some((*l, c.channels()))
    }

    /// Source IPs counted for `[[ip_auth]]` limits.
    pub fn ip_keys_used(&self) -> usize {
        self.ips.used()
    }

    /// Admissions and refusals since start.
    pub fn counts(&self) -> &LimitCounts {
        &self.counts
    }

    /// The limit of source `ip` (the first `[[ip_auth]]` prefix holding it).
    fn ip_limit(&self, ip: IpAddr) -> Option<Limit> {
        self.spec
            .ip_auth
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, l)| *l)
            .filter(|l| !l.is_unlimited())
    }

    /// Issue 16: admits one call at second `sec` against every key of `p` (server, then
    /// accounts, users, source IP; a key counted once even when both ends share it), or
    /// refuses it with the first limit it would pass — holding nothing then.
    pub(crate) fn admit(self: &Arc<Self>, p: &Parties, sec: u32) -> Result<Charge, LimitRefusal> {
        let mut charge = Charge {
            table: Some(Arc::clone(self)),
            ..Charge::default()
        };
        let r = self.admit_into(p, sec, &mut charge);
        match r {
            Ok(()) => {
                self.counts.admitted.fetch_add(1, Ordering::Relaxed);
                Ok(charge)
            }
            Err(kind) => {
                for c in charge.counters() {
                    c.untake_cps(sec);
                }
                drop(charge);
                self.counts.refused[kind.index()].fetch_add(1, Ordering::Relaxed);
                Err(kind)
            }
        }
    }

    /// The counter of a charged key (`KEY_*` kind and index).
    fn counter(&self, key: u32) -> Option<&Counter> {
        let i = (key & KEY_INDEX) as usize;
        match key & !KEY_INDEX {
            KEY_ACCOUNT => self.accounts.get(i).map(|(c, _)| &**c),
            KEY_USER => self.users.get(i).map(|(c, _)| &**c),
            KEY_IP => self.ips.slots.get(i)?.counter.get().map(|c| &**c),
            _ => None,
        }
    }

    fn admit_into(&self, p: &Parties, sec: u32, charge: &mut Charge) -> Result<(), LimitRefusal> {
        use LimitRefusal as K;
        let over = |o: Over, kinds: (LimitRefusal, LimitRefusal)| match o {
            Over::Channels => kinds.0,
            Over::Cps => kinds.1,
        };
        self.server
            .take(self.spec.server, sec)
            .map_err(|o| over(o, (K::ServerChannels, K::ServerCps)))?;
        charge.server = true;
        let mut take = |key: u32, l: Limit, kinds: (LimitRefusal, LimitRefusal)| {
            let held = &charge.keys[..usize::from(charge.n)];
            if held.contains(&key) {
                return Ok(());
            }
            let Some(c) = self.counter(key) else {
                return Ok(());
            };
            c.take(l, sec).map_err(|o| over(o, kinds))?;
            if let Some(slot) = charge.keys.get_mut(usize::from(charge.n)) {
                *slot = key;
                charge.n += 1;
            }
            Ok(())
        };
        let both = self.spec.count == CountMode::Both;
        for a in [p.caller_account, p.callee_account.filter(|_| both)]
            .into_iter()
            .flatten()
        {
            if let Some((_, l)) = self.accounts.get(a as usize).filter(|_| a <= KEY_INDEX) {
                take(KEY_ACCOUNT | a, *l, (K::AccountChannels, K::AccountCps))?;
            }
        }
        for u in [p.caller_user, p.callee_user.filter(|_| both)]
            .into_iter()
            .flatten()
        {
            if let Some((_, l)) = self.users.get(u as usize).filter(|_| u <= KEY_INDEX) {
                take(KEY_USER | u, *l, (K::UserChannels, K::UserCps))?;
            }
        }
        if let Some(ip) = p.ip {
            if let Some(l) = self.ip_limit(ip) {
                let i = self.ips.get(ip).ok_or(K::IpTableFull)?;
                take(KEY_IP | i, l, (K::IpChannels, K::IpCps))?;
            }
        }
        Ok(())
    }
}

/// Users named in a capacity error at most.
const MAX_USERS_LISTED: usize = 20;

/// Issue 16 "Capacity check at load": an account's users may not be assigned more channels
/// than the account has. The message names the account, its capacity, the sum and the users.
pub fn check_capacity(spec: &AuthSpec) -> Result<(), String> {
    for a in &spec.accounts {
        let Some(cap) = a.channels.filter(|&c| c > 0) else {
            continue;
        };
        let users: Vec<(&str, u32)> = spec
            .users
            .iter()
            .filter(|u| u.account.as_deref() == Some(a.name.as_str()))
            .filter_map(|u| Some((u.username.as_str(), u.channels.filter(|&c| c > 0)?)))
            .collect();
        let sum: u64 = users.iter().map(|&(_, c)| u64::from(c)).sum();
        if sum > u64::from(cap) {
            // The users, largest first; a long list is cut (an account may have thousands).
            let mut users = users;
            users.sort_by_key(|&(_, c)| std::cmp::Reverse(c));
            let mut list: Vec<String> = users
                .iter()
                .take(MAX_USERS_LISTED)
                .map(|(n, c)| format!("{n} ({c})"))
                .collect();
            if users.len() > MAX_USERS_LISTED {
                list.push(format!("and {} more", users.len() - MAX_USERS_LISTED));
            }
            return Err(format!(
                "No channel capacity available for your account: account `{}` has {cap} channels, its {} users are assigned {sum}: {}",
                a.name,
                users.len(),
                list.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
