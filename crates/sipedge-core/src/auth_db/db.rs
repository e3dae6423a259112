//! The authentication tables: accounts, users (by domain and username), IP-auth prefixes
//! and CLI patterns. Built once from a plain [`AuthSpec`] (the shell's validated config),
//! then shared read-only by every shard and swapped whole on reload ([`AuthHandle`]).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use crate::aor::TableHasher;
use std::net::IpAddr;
use std::sync::Arc;

use hashbrown::HashTable;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use regex::bytes::RegexSet;

use super::digest::{sha256_ha1_state, Algorithm, Hex};
use super::nonce::DEFAULT_NONCE_TTL_SECS;
use super::offer::{user_offer, Offer, DEFAULT_ALGORITHMS};

/// Whether a class of requests is challenged (`[auth] register`, `[auth] invite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// No digest: every request passes (IP auth still names the account).
    #[default]
    None,
    /// RFC 3261 §22: digest challenge unless IP auth matched.
    Digest,
}

/// `nat` of a user: how the NAT helper treats its bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NatMode {
    /// Detect (private Contact, Via differing from the source).
    #[default]
    Auto,
    /// Always treat as behind NAT.
    Force,
    /// Never.
    Disabled,
}

/// `nat_ping` of a user: keepalives for its bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NatPing {
    /// No pings.
    #[default]
    Disabled,
    /// Pings, no consequence when unanswered.
    Enabled,
    /// Pings; an unanswered binding is removed.
    Timeout,
}

/// `[auth]` settings (reloadable with the tables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// `realm` (RFC 3261 §22.1); every HA1 is computed for it.
    pub realm: String,
    /// REGISTER: 401 challenges (RFC 3261 §22.4 / §10.3 step 3).
    pub register: AuthMode,
    /// Other requests from users: 407 challenges (RFC 3261 §22.3).
    pub invite: AuthMode,
    /// REGISTER: the digest username must be the AoR's user (§10.3 step 4 authorization).
    pub username_must_match: bool,
    /// The digest `uri` directive must name the Request-URI (RFC 7616 §3.4.6) — or, for a
    /// REGISTER, this edge itself (what SIPp sends without `-auth_uri`); off only for
    /// clients that put something else still there.
    pub uri_must_match: bool,
    /// How long a nonce is good for, seconds.
    pub nonce_ttl_secs: u32,
    /// Algorithms offered, one challenge header each, in this order, and the only ones
    /// accepted (`[auth] algorithms`; default [`super::offer::DEFAULT_ALGORITHMS`], MD5 only). An account or
    /// a user may ask for its own list ([`AccountSpec::algorithms`],
    /// [`UserSpec::algorithms`]); see [`Offer`].
    pub algorithms: Vec<Algorithm>,
    /// Digest usernames compared case-sensitively. The shell copies `[registrar]
    /// case_sensitive` here, so a username follows the AoR it registers (`false`: `Alice`
    /// and `alice` are one user, and two users differing only by case are refused).
    pub case_sensitive: bool,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            realm: "localhost".into(),
            register: AuthMode::None,
            invite: AuthMode::None,
            username_must_match: true,
            uri_must_match: true,
            nonce_ttl_secs: DEFAULT_NONCE_TTL_SECS,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            case_sensitive: false,
        }
    }
}

/// Longest digest username, bytes (a username is case-folded on the stack for lookup).
pub const MAX_USERNAME_BYTES: usize = 256;

/// `[[accounts]]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountSpec {
    /// Unique name.
    pub name: String,
    /// Concurrent calls (enforced by the limiter, a later issue).
    pub channels: Option<u32>,
    /// Calls per second (limiter).
    pub cps: Option<u32>,
    /// CLI patterns (regular expressions on the caller number) for `cli_auth`.
    pub cli: Vec<String>,
    /// Digest algorithms offered to its users, in order (empty: `[auth] algorithms`).
    pub algorithms: Vec<Algorithm>,
}

/// `[[users]]` (or a `users_file` row), with the password already turned into HA1s.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct UserSpec {
    /// Digest username (compared as [`AuthSettings::case_sensitive`] says).
    pub username: String,
    /// Domain, lowercase; `None`: the user belongs to every domain of the edge.
    pub domain: Option<String>,
    /// Account name (must exist).
    pub account: Option<String>,
    /// MD5 HA1, hex (32 digits).
    pub ha1_md5: Option<[u8; 32]>,
    /// SHA-256 HA1, hex (64 digits).
    pub ha1_sha256: Option<Hex>,
    /// Sources allowed to register and send (empty: any).
    pub ip_whitelist: Vec<IpNet>,
    /// NAT treatment.
    pub nat: NatMode,
    /// Keepalives.
    pub nat_ping: NatPing,
    /// Concurrent calls.
    pub channels: Option<u32>,
    /// Calls per second.
    pub cps: Option<u32>,
    /// Digest algorithms offered to this user, in order (empty: its account's, else
    /// `[auth] algorithms`). See [`Offer`].
    pub algorithms: Vec<Algorithm>,
}

impl std::fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // HA1 values are password equivalents: never printed.
        f.debug_struct("UserSpec")
            .field("username", &self.username)
            .field("domain", &self.domain)
            .field("account", &self.account)
            .field("ip_whitelist", &self.ip_whitelist)
            .finish_non_exhaustive()
    }
}

/// `[[ip_auth]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAuthSpec {
    /// Source prefix.
    pub cidr: IpNet,
    /// Account the source is authenticated as.
    pub account: String,
    /// Pick among the accounts sharing `cidr` by the caller number.
    pub cli_auth: bool,
    /// AoRs (`user@host`, host lowercase) a source in `cidr` may REGISTER without digest,
    /// as this account. Any other AoR needs its user's credentials (see [`AuthDb::build`]).
    pub register: Vec<String>,
}

/// Everything authentication is configured with, as plain data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthSpec {
    /// `[auth]`.
    pub settings: AuthSettings,
    /// `[[accounts]]`.
    pub accounts: Vec<AccountSpec>,
    /// `[[users]]` plus `users_file`.
    pub users: Vec<UserSpec>,
    /// `[[ip_auth]]`.
    pub ip_auth: Vec<IpAuthSpec>,
}

/// A spec the tables cannot be built from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthDbError {
    /// Two accounts with one name.
    #[error("duplicate account `{0}`")]
    DuplicateAccount(String),
    /// A reference to an account that does not exist.
    #[error("{what}: unknown account `{account}`")]
    UnknownAccount {
        /// Where.
        what: String,
        /// The name.
        account: String,
    },
    /// Two users with one username in one domain.
    #[error("duplicate user `{0}`: users[{1}] and users[{2}]")]
    DuplicateUser(String, usize, usize),
    /// A username longer than [`MAX_USERNAME_BYTES`].
    #[error("users[{0}]: username longer than {MAX_USERNAME_BYTES} bytes")]
    LongUsername(usize),
    /// A CLI pattern that does not compile.
    #[error("accounts `{account}`: cli pattern: {message}")]
    BadPattern {
        /// The account.
        account: String,
        /// The compiler's message.
        message: String,
    },
    /// An `[[ip_auth]] register` entry that is not `user@host`.
    #[error("{entry}: register `{aor}` is not user@host")]
    BadAor {
        /// Which entry.
        entry: String,
        /// The value.
        aor: String,
    },
    /// One CIDR listed for several accounts without `cli_auth` on all of them.
    #[error("ip_auth `{0}`: several accounts share it, so every entry needs cli_auth = true")]
    SharedCidr(IpNet),
}

/// An account as the shards see it.
#[derive(Debug)]
pub struct Account {
    /// Name.
    pub name: String,
    /// Concurrent calls.
    pub channels: Option<u32>,
    /// Calls per second.
    pub cps: Option<u32>,
    cli: Option<RegexSet>,
    /// Its users' algorithms (empty: `[auth] algorithms`).
    algorithms: Vec<Algorithm>,
}

/// A user as the shards see it (its `Debug` shows the spec's, which hides the HA1s).
pub struct User {
    /// The spec (HA1s included; its Debug hides them).
    pub spec: UserSpec,
    /// Index into [`AuthDb::account`], when the user has an account.
    pub account: Option<u32>,
    /// The SHA-256 state after the SHA-256 HA1 (one block at the head of every response).
    pub(crate) sha256_state: Option<[u32; 8]>,
    /// What it is challenged with and checked under ([`Offer`]).
    pub offer: Offer,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SHA-256 state is a password equivalent like the HA1: never printed.
        f.debug_struct("User")
            .field("spec", &self.spec)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// Who an IP-auth prefix authenticates.
#[derive(Debug)]
pub(crate) struct IpGroup {
    /// Accounts (indices), in config order.
    pub(crate) accounts: Vec<u32>,
    pub(crate) cli_auth: bool,
    /// The AoRs its entries may register.
    pub(crate) register: Vec<RegisterAor>,
}

/// An AoR an `[[ip_auth]]` entry may register: `(user, host, account)`.
pub(crate) type RegisterAor = (Box<[u8]>, Box<[u8]>, u32);

/// `user@host` (a leading `sip:`/`sips:` dropped) split at its last `@`, host lowercase;
/// `None` when either part is empty.
pub fn split_register_aor(aor: &str) -> Option<(String, String)> {
    let t = aor.trim();
    let t = t
        .strip_prefix("sips:")
        .or_else(|| t.strip_prefix("sip:"))
        .unwrap_or(t);
    let (user, host) = t.rsplit_once('@')?;
    (!user.is_empty() && !host.is_empty()).then(|| (user.to_string(), host.to_ascii_lowercase()))
}

/// The built tables. Read-only; replaced whole on reload.
#[derive(Debug)]
pub struct AuthDb {
    /// `[auth]`.
    pub settings: AuthSettings,
    accounts: Vec<Account>,
    users: Vec<User>,
    index: HashTable<u32>,
    /// Seeded per build (keyed, so bucket collisions cannot be planned).
    hasher: TableHasher,
    v4: PrefixMap<Ipv4Net, u32>,
    v6: PrefixMap<Ipv6Net, u32>,
    groups: Vec<IpGroup>,
    /// Some user names a domain / some user belongs to every domain: a lookup skips the
    /// probe that cannot hit.
    domain_users: bool,
    global_users: bool,
    /// `[auth] algorithms` as an [`Offer`]: what an unknown user is challenged with.
    default_offer: Offer,
    /// Every user's offer is `default_offer`: a challenge needs no user lookup.
    uniform_offer: bool,
}

/// The tables every shard reads: immutable, shared by `Arc`; a reload builds new ones and
/// the shell hands them to each core between turns ([`crate::Core::handle_config`]).
pub type AuthHandle = Arc<AuthDb>;

impl Default for AuthDb {
    fn default() -> Self {
        AuthDb::build(&AuthSpec::default()).expect("the empty spec builds")
    }
}

/// `[[accounts]]`: names unique, CLI patterns compiled.
fn accounts_of(spec: &AuthSpec) -> Result<Vec<Account>, AuthDbError> {
    let mut accounts: Vec<Account> = Vec::with_capacity(spec.accounts.len());
    for a in &spec.accounts {
        if accounts.iter().any(|o| o.name == a.name) {
            return Err(AuthDbError::DuplicateAccount(a.name.clone()));
        }
        let cli = if a.cli.is_empty() {
            None
        } else {
            Some(RegexSet::new(&a.cli).map_err(|e| AuthDbError::BadPattern {
                account: a.name.clone(),
                message: e.to_string(),
            })?)
        };
        accounts.push(Account {
            name: a.name.clone(),
            channels: a.channels,
            cps: a.cps,
            cli,
            algorithms: a.algorithms.clone(),
        });
    }
    Ok(accounts)
}

/// The index of the account `name` (`what` names the entry referring to it).
fn find_account(accounts: &[Account], what: String, name: &str) -> Result<u32, AuthDbError> {
    accounts
        .iter()
        .position(|a| a.name == name)
        .map(|i| i as u32)
        .ok_or(AuthDbError::UnknownAccount {
            what,
            account: name.into(),
        })
}

/// IP-authenticated sources grouped by `[[ip_auth]]` prefix. One prefix may be shared by
/// several accounts only when all of them authenticate calls by CLI.
type IpGroups = (
    Vec<IpGroup>,
    PrefixMap<Ipv4Net, u32>,
    PrefixMap<Ipv6Net, u32>,
);

fn ip_groups(spec: &AuthSpec, accounts: &[Account]) -> Result<IpGroups, AuthDbError> {
    let mut groups: Vec<IpGroup> = Vec::new();
    let mut v4 = PrefixMap::new();
    let mut v6 = PrefixMap::new();
    for (i, e) in spec.ip_auth.iter().enumerate() {
        let acct = find_account(accounts, format!("ip_auth[{i}] `{}`", e.cidr), &e.account)?;
        let cidr = e.cidr.trunc();
        let mut register = Vec::with_capacity(e.register.len());
        for a in &e.register {
            let (user, host) = split_register_aor(a).ok_or_else(|| AuthDbError::BadAor {
                entry: format!("ip_auth[{i}] `{}`", e.cidr),
                aor: a.clone(),
            })?;
            register.push((
                user.into_bytes().into_boxed_slice(),
                host.into_bytes().into_boxed_slice(),
                acct,
            ));
        }
        let existing = match cidr {
            IpNet::V4(n) => v4.get(&n).copied(),
            IpNet::V6(n) => v6.get(&n).copied(),
        };
        match existing {
            Some(g) => {
                let g = &mut groups[g as usize];
                if !(g.cli_auth && e.cli_auth) {
                    return Err(AuthDbError::SharedCidr(cidr));
                }
                g.accounts.push(acct);
                g.register.extend(register);
            }
            None => {
                let g = groups.len() as u32;
                groups.push(IpGroup {
                    accounts: vec![acct],
                    cli_auth: e.cli_auth,
                    register,
                });
                match cidr {
                    IpNet::V4(n) => v4.insert(n, g),
                    IpNet::V6(n) => v6.insert(n, g),
                };
            }
        }
    }
    Ok((groups, v4, v6))
}

impl AuthDb {
    /// Builds the tables, checking references, duplicates and patterns.
    pub fn build(spec: &AuthSpec) -> Result<AuthDb, AuthDbError> {
        let accounts = accounts_of(spec)?;
        let find = |what: String, name: &str| find_account(&accounts, what, name);
        let hasher = TableHasher::new(RandomState::new().hash_one(0x5eed_u64));
        let cs = spec.settings.case_sensitive;
        let default_offer = Offer::new(&spec.settings.algorithms);
        let mut index = HashTable::with_capacity(spec.users.len());
        let mut users = Vec::with_capacity(spec.users.len());
        let mut buf = [0u8; MAX_USERNAME_BYTES];
        for (i, u) in spec.users.iter().enumerate() {
            let account = match &u.account {
                Some(a) => Some(find(format!("users[{i}] `{}`", u.username), a)?),
                None => None,
            };
            let domain = u.domain.as_deref().unwrap_or("").as_bytes();
            let folded = fold_username(u.username.as_bytes(), &mut buf)
                .ok_or(AuthDbError::LongUsername(i))?;
            let h = hasher.hash(&[domain, folded]);
            let same = |&j: &u32| {
                let o: &User = &users[j as usize];
                o.spec.domain.as_deref().unwrap_or("").as_bytes() == domain
                    && same_username(cs, o.spec.username.as_bytes(), u.username.as_bytes())
            };
            if let Some(&j) = index.find(h, same) {
                return Err(AuthDbError::DuplicateUser(
                    u.username.clone(),
                    j as usize,
                    i,
                ));
            }
            index.insert_unique(h, i as u32, |&j| {
                let o: &User = &users[j as usize];
                let mut b = [0u8; MAX_USERNAME_BYTES];
                let folded = fold_username(o.spec.username.as_bytes(), &mut b)
                    .expect("a stored username was folded once");
                hasher.hash(&[o.spec.domain.as_deref().unwrap_or("").as_bytes(), folded])
            });
            let wanted: &[Algorithm] = match account {
                _ if !u.algorithms.is_empty() => &u.algorithms,
                Some(a) if !accounts[a as usize].algorithms.is_empty() => {
                    &accounts[a as usize].algorithms
                }
                _ => &spec.settings.algorithms,
            };
            users.push(User {
                spec: u.clone(),
                account,
                sha256_state: u.ha1_sha256.as_ref().map(sha256_ha1_state),
                offer: user_offer(u, wanted, default_offer),
            });
        }
        let uniform_offer = users.iter().all(|u: &User| u.offer == default_offer);
        let (groups, v4, v6) = ip_groups(spec, &accounts)?;
        let domain_users = users.iter().any(|u: &User| u.spec.domain.is_some());
        let global_users = users.iter().any(|u: &User| u.spec.domain.is_none());
        Ok(AuthDb {
            domain_users,
            global_users,
            default_offer,
            uniform_offer,
            settings: spec.settings.clone(),
            accounts,
            users,
            index,
            hasher,
            v4,
            v6,
            groups,
        })
    }

    /// A handle holding these tables, for [`crate::CoreConfig`].
    pub fn into_handle(self) -> AuthHandle {
        Arc::new(self)
    }

    /// Number of users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// True when neither users nor IP-auth entries exist.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// Account by index.
    pub fn account(&self, i: u32) -> Option<&Account> {
        self.accounts.get(i as usize)
    }

    /// User by index.
    pub fn user(&self, i: u32) -> Option<&User> {
        self.users.get(i as usize)
    }

    /// The user `username` of `domain` (lowercase), else the domain-less user `username`;
    /// usernames compared as [`AuthSettings::case_sensitive`] says.
    pub fn find_user(&self, domain: &[u8], username: &[u8]) -> Option<u32> {
        let mut buf = [0u8; MAX_USERNAME_BYTES];
        // Longer than any stored username: nobody.
        let folded = fold_username(username, &mut buf)?;
        let cs = self.settings.case_sensitive;
        let get = |d: &[u8]| {
            let h = self.hasher.hash(&[d, folded]);
            self.index
                .find(h, |&j| {
                    let o = &self.users[j as usize].spec;
                    same_username(cs, o.username.as_bytes(), username)
                        && o.domain.as_deref().unwrap_or("").as_bytes() == d
                })
                .copied()
        };
        if !domain.is_empty() && self.domain_users {
            if let Some(i) = get(domain) {
                return Some(i);
            }
        }
        if self.global_users {
            get(b"")
        } else {
            None
        }
    }

    /// What a challenge to the claimed identity `username` of `domain` (lowercase) offers:
    /// that user's [`Offer`], or `[auth] algorithms` for an unknown user. No lookup when
    /// every user has the default (the common case).
    pub fn offer_for(&self, domain: &[u8], username: &[u8]) -> Offer {
        if self.uniform_offer {
            return self.default_offer;
        }
        self.find_user(domain, username)
            .and_then(|i| self.user(i))
            .map(|u| u.offer)
            .filter(|o| !o.is_empty())
            .unwrap_or(self.default_offer)
    }

    /// `[auth] algorithms` as an [`Offer`].
    pub fn default_offer(&self) -> Offer {
        self.default_offer
    }

    /// True when some user is offered other algorithms than `[auth] algorithms` (a
    /// challenge then depends on who is claimed).
    pub fn per_user_offers(&self) -> bool {
        !self.uniform_offer
    }

    /// A user record picked by `username`'s hash, for an unknown user: its HA1 is hashed in
    /// place of the missing one, so an unknown user costs the same memory reads as a known
    /// one (the answer is refused regardless).
    pub(crate) fn decoy_user(&self, username: &[u8]) -> Option<&User> {
        if self.users.is_empty() {
            return None;
        }
        let h = self.hasher.hash(&[username]);
        self.users.get((h % self.users.len() as u64) as usize)
    }

    /// Longest-prefix match of a source address over `[[ip_auth]]` (an IPv4-mapped IPv6
    /// source is matched as IPv4).
    pub(crate) fn ip_group(&self, ip: IpAddr) -> Option<&IpGroup> {
        if self.groups.is_empty() {
            return None;
        }
        let g = match ip.to_canonical() {
            IpAddr::V4(a) => self.v4.get_lpm(&Ipv4Net::from(a)).map(|(_, g)| *g),
            IpAddr::V6(a) => self.v6.get_lpm(&Ipv6Net::from(a)).map(|(_, g)| *g),
        }?;
        self.groups.get(g as usize)
    }

    /// The account under which a source of `group` may REGISTER the AoR `user@host`
    /// (canonical: host lowercase; `user` compared ignoring case unless `case_sensitive`),
    /// when one of the group's entries names it.
    pub(crate) fn ip_register_account(
        &self,
        group: &IpGroup,
        host: &[u8],
        user: &[u8],
        case_sensitive: bool,
    ) -> Option<u32> {
        group.register.iter().find_map(|(u, h, a)| {
            let same_user = if case_sensitive {
                &**u == user
            } else {
                u.eq_ignore_ascii_case(user)
            };
            (same_user && h.eq_ignore_ascii_case(host)).then_some(*a)
        })
    }

    /// CLI authentication: the first account of `group` (config order) with a pattern that
    /// matches `caller`.
    pub(crate) fn cli_account(&self, group: &IpGroup, caller: &[u8]) -> Option<u32> {
        group.accounts.iter().copied().find(|&a| {
            self.accounts[a as usize]
                .cli
                .as_ref()
                .is_some_and(|set| set.is_match(caller))
        })
    }
}

/// `name` lowercased into `buf` (the user index hashes usernames case-folded, so one index
/// serves both `case_sensitive` settings); `None` when longer than [`MAX_USERNAME_BYTES`].
fn fold_username<'b>(name: &[u8], buf: &'b mut [u8; MAX_USERNAME_BYTES]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..name.len())?;
    out.copy_from_slice(name);
    out.make_ascii_lowercase();
    Some(out)
}

/// Usernames equal under `case_sensitive`.
fn same_username(case_sensitive: bool, a: &[u8], b: &[u8]) -> bool {
    if case_sensitive {
        a == b
    } else {
        a.eq_ignore_ascii_case(b)
    }
}

/// True when `ip` lies in one of `nets` (a user's `ip_whitelist`).
pub(crate) fn whitelisted(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    nets.iter().any(|n| n.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("cidr")
    }

    fn spec() -> AuthSpec {
        AuthSpec {
            accounts: ["a", "b", "c"]
                .iter()
                .map(|n| AccountSpec {
                    name: (*n).into(),
                    cli: vec![format!("^{}", (n.as_bytes()[0] - b'a' + 1))],
                    ..AccountSpec::default()
                })
                .collect(),
            users: vec![
                UserSpec {
                    username: "alice".into(),
                    ..UserSpec::default()
                },
                UserSpec {
                    username: "alice".into(),
                    domain: Some("example.com".into()),
                    ..UserSpec::default()
                },
            ],
            ip_auth: vec![
                IpAuthSpec {
                    cidr: net("10.0.0.0/8"),
                    account: "a".into(),
                    cli_auth: false,
                    register: Vec::new(),
                },
                IpAuthSpec {
                    cidr: net("10.1.0.0/16"),
                    account: "b".into(),
                    cli_auth: true,
                    register: Vec::new(),
                },
                IpAuthSpec {
                    cidr: net("10.1.0.0/16"),
                    account: "c".into(),
                    cli_auth: true,
                    register: Vec::new(),
                },
                IpAuthSpec {
                    cidr: net("2001:db8::/32"),
                    account: "c".into(),
                    cli_auth: false,
                    register: Vec::new(),
                },
            ],
            ..AuthSpec::default()
        }
    }

    #[test]
    fn users_by_domain_then_any_domain() {
        let db = AuthDb::build(&spec()).expect("builds");
        assert_eq!(db.find_user(b"example.com", b"alice"), Some(1));
        assert_eq!(db.find_user(b"other.org", b"alice"), Some(0));
        assert_eq!(db.find_user(b"example.com", b"bob"), None);
        // Case-insensitive by default (like AoRs), exact with `case_sensitive`.
        assert_eq!(db.find_user(b"example.com", b"ALICE"), Some(1));
        let mut s = spec();
        s.settings.case_sensitive = true;
        let db = AuthDb::build(&s).expect("builds");
        assert_eq!(db.find_user(b"example.com", b"Alice"), None);
        assert_eq!(db.find_user(b"example.com", b"alice"), Some(1));
    }

    #[test]
    fn usernames_differing_by_case_are_one_user_unless_case_sensitive() {
        let mut s = spec();
        s.users.push(UserSpec {
            username: "ALICE".into(),
            ..UserSpec::default()
        });
        assert_eq!(
            AuthDb::build(&s).err(),
            Some(AuthDbError::DuplicateUser("ALICE".into(), 0, 2))
        );
        s.settings.case_sensitive = true;
        let db = AuthDb::build(&s).expect("builds");
        assert_eq!(db.find_user(b"x.org", b"ALICE"), Some(2));
        assert_eq!(db.find_user(b"x.org", b"alice"), Some(0));
    }

    #[test]
    fn longest_prefix_and_cli() {
        let db = AuthDb::build(&spec()).expect("builds");
        let g = db.ip_group("10.2.3.4".parse().expect("ip")).expect("10/8");
        assert_eq!((g.accounts.as_slice(), g.cli_auth), (&[0][..], false));
        let g = db
            .ip_group("10.1.3.4".parse().expect("ip"))
            .expect("10.1/16");
        assert_eq!(g.accounts, [1, 2]);
        assert_eq!(db.cli_account(g, b"2155501"), Some(1));
        assert_eq!(db.cli_account(g, b"3155501"), Some(2));
        assert_eq!(db.cli_account(g, b"9"), None);
        assert!(db
            .ip_group("::ffff:10.9.9.9".parse().expect("ip"))
            .is_some());
        let g = db.ip_group("2001:db8::1".parse().expect("ip")).expect("v6");
        assert_eq!(g.accounts, [2]);
        assert!(db.ip_group("192.0.2.1".parse().expect("ip")).is_none());
    }

    #[test]
    fn spec_errors() {
        let mut s = spec();
        s.users.push(UserSpec {
            username: "alice".into(),
            ..UserSpec::default()
        });
        assert_eq!(
            AuthDb::build(&s).err(),
            Some(AuthDbError::DuplicateUser("alice".into(), 0, 2))
        );
        let mut s = spec();
        s.ip_auth[2].cli_auth = false;
        assert!(matches!(AuthDb::build(&s), Err(AuthDbError::SharedCidr(_))));
        let mut s = spec();
        s.ip_auth[0].account = "zzz".into();
        assert!(matches!(
            AuthDb::build(&s),
            Err(AuthDbError::UnknownAccount { .. })
        ));
        let mut s = spec();
        s.accounts[0].cli = vec!["(".into()];
        assert!(matches!(
            AuthDb::build(&s),
            Err(AuthDbError::BadPattern { .. })
        ));
        assert!(whitelisted(
            &[net("192.0.2.0/24")],
            "192.0.2.9".parse().expect("ip")
        ));
        assert!(!whitelisted(
            &[net("192.0.2.0/24")],
            "192.0.3.9".parse().expect("ip")
        ));
    }
}
