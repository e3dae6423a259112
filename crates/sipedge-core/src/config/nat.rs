//! `[nat]`: the NAT detection and keepalive settings a shard's core is given, and the
//! per-user overrides (one immutable generation per reload). Declared here, beside the
//! rest of [`crate::CoreConfig`]; the rules that read them are in `nat`.

use std::collections::HashMap;
use std::sync::Arc;

use crate::location::nat_bits::PingMode;

/// Default `[nat] ping_interval_secs`.
pub const DEFAULT_PING_INTERVAL_SECS: u32 = 60;
/// Smallest `[nat] ping_interval_secs` (integration tests use 1 s).
pub const MIN_PING_INTERVAL_SECS: u32 = 1;
/// Largest `[nat] ping_interval_secs` (one hour).
pub const MAX_PING_INTERVAL_SECS: u32 = 3600;
/// Default `[nat] ping_failures_max`.
pub const DEFAULT_PING_FAILURES_MAX: u8 = 3;
/// Largest `[nat] ping_failures_max` (the miss counter has 3 bits).
pub const MAX_PING_FAILURES_MAX: u8 = 7;

/// Whether a user's registrations are treated as NATed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NatMode {
    /// Detected per REGISTER (the table in the module docs).
    #[default]
    Auto,
    /// Always NATed: reached at the source address ("Force NAT").
    Force,
    /// Never NATed: reached at the Contact ("Disable NAT").
    Disabled,
}

/// What a keepalive is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PingMethod {
    /// A stateless SIP OPTIONS; any response counts as an answer and gives the RTT.
    #[default]
    Options,
    /// A 4-byte `"\r\n\r\n"` datagram (RFC 5626 §3.5.1 style). Nothing answers it over
    /// UDP, so no RTT is measured and `timeout` mode cannot remove anything.
    Crlf,
}

/// A user's override of the `[nat]` defaults (`None` = the global value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NatUser {
    /// `nat = "auto" | "force" | "disabled"`.
    pub nat: Option<NatMode>,
    /// `nat_ping = "disabled" | "enabled" | "timeout"`.
    pub ping: Option<PingMode>,
}

/// `[nat]`: detection and keepalive defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    /// `mode`: the default detection mode.
    pub mode: NatMode,
    /// `ping`: the default keepalive mode.
    pub ping: PingMode,
    /// `ping_interval_secs`.
    pub ping_interval_secs: u32,
    /// `method`.
    pub method: PingMethod,
    /// `ping_nated_only`: bindings that are not NATed get no keepalives.
    pub ping_nated_only: bool,
    /// `ping_failures_max`: unanswered pings in a row that deregister (`timeout` mode).
    pub ping_failures_max: u8,
    /// Per-user overrides by canonical AoR (`sip:user@domain`, user lowercased unless the
    /// registrar is case-sensitive). Filled from `[[users]]` by the shell; shared by every
    /// shard and replaced on reload ([`crate::Core::handle_config`]).
    pub users: NatUsers,
    /// The sent-by (`host:port`) to put in the Via of our OPTIONS pings, per socket
    /// ([`crate::LocalId`] index). The shell fills it from the listen addresses; a missing
    /// entry falls back to the first domain.
    pub advertise: Vec<String>,
}

impl Default for NatConfig {
    fn default() -> Self {
        Self {
            mode: NatMode::Auto,
            ping: PingMode::Enabled,
            ping_interval_secs: DEFAULT_PING_INTERVAL_SECS,
            method: PingMethod::Options,
            ping_nated_only: true,
            ping_failures_max: DEFAULT_PING_FAILURES_MAX,
            users: NatUsers::default(),
            advertise: Vec::new(),
        }
    }
}

impl NatConfig {
    /// Whether any binding can ever be pinged with these overrides.
    pub(crate) fn pings_possible(&self, users: &NatUserTable) -> bool {
        self.ping != PingMode::Disabled || users.any_ping
    }

    /// A user's overrides (from `users`) resolved against the defaults.
    pub(crate) fn resolve(&self, users: &NatUserTable, aor: &[u8]) -> (NatMode, PingMode) {
        let user = if users.map.is_empty() {
            NatUser::default()
        } else {
            users.map.get(aor).copied().unwrap_or_default()
        };
        (
            user.nat.unwrap_or(self.mode),
            user.ping.unwrap_or(self.ping),
        )
    }
}

/// Per-user overrides by canonical AoR.
pub type NatUserMap = HashMap<Vec<u8>, NatUser>;

/// One generation of the per-user overrides.
#[derive(Debug, Default)]
pub(crate) struct NatUserTable {
    pub(crate) map: NatUserMap,
    /// 0 for the first table, then one more per [`NatUsers::next`].
    pub(crate) generation: u64,
    /// The AoRs whose override differs from generation `generation - 1`.
    pub(crate) changed: Vec<Vec<u8>>,
    /// Some override turns keepalives on.
    pub(crate) any_ping: bool,
}

impl NatUserTable {
    fn new(map: NatUserMap, generation: u64, changed: Vec<Vec<u8>>) -> NatUserTable {
        let any_ping = map
            .values()
            .any(|u| u.ping.is_some_and(|p| p != PingMode::Disabled));
        NatUserTable {
            map,
            generation,
            changed,
            any_ping,
        }
    }

    /// The AoRs whose override differs between `self` and `other`.
    pub(crate) fn diff(&self, other: &NatUserTable) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self
            .map
            .iter()
            .filter(|(k, v)| other.map.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .collect();
        out.extend(
            other
                .map
                .keys()
                .filter(|k| !self.map.contains_key(*k))
                .cloned(),
        );
        out
    }
}

/// The per-user overrides: one immutable generation, shared by every shard through an
/// `Arc` (clones share it). A reload builds the next generation with [`NatUsers::next`]
/// and the shell hands it to each core between turns ([`crate::Core::handle_config`]).
#[derive(Clone, Default)]
pub struct NatUsers(Arc<NatUserTable>);

impl NatUsers {
    /// A first generation holding `map`.
    pub fn new(map: NatUserMap) -> NatUsers {
        NatUsers(Arc::new(NatUserTable::new(map, 0, Vec::new())))
    }

    /// The override of `aor` in this generation.
    pub fn get(&self, aor: &[u8]) -> Option<NatUser> {
        self.0.map.get(aor).copied()
    }

    /// Number of AoRs with an override.
    pub fn len(&self) -> usize {
        self.0.map.len()
    }

    /// True without overrides.
    pub fn is_empty(&self) -> bool {
        self.0.map.is_empty()
    }

    /// The AoRs with an override.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.0.map.keys().cloned().collect()
    }

    /// A copy of the overrides.
    pub fn to_map(&self) -> NatUserMap {
        self.0.map.clone()
    }

    /// Reload (SIGHUP): the generation after this one, holding `map`; it records which
    /// AoRs changed ([`NatUsers::changed`]), so each shard re-applies only those to the
    /// bindings it owns when it receives it (module docs).
    pub fn next(&self, map: NatUserMap) -> NatUsers {
        let mut next = NatUserTable::new(map, self.0.generation + 1, Vec::new());
        next.changed = self.0.diff(&next);
        NatUsers(Arc::new(next))
    }

    /// How many AoRs changed from the generation before this one.
    pub fn changed(&self) -> usize {
        self.0.changed.len()
    }

    pub(crate) fn table(&self) -> &Arc<NatUserTable> {
        &self.0
    }
}

impl From<NatUserMap> for NatUsers {
    fn from(map: NatUserMap) -> NatUsers {
        NatUsers::new(map)
    }
}

impl PartialEq for NatUsers {
    fn eq(&self, other: &NatUsers) -> bool {
        self.0.map == other.0.map
    }
}

impl Eq for NatUsers {}

impl std::fmt::Debug for NatUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = &self.0;
        f.debug_struct("NatUsers")
            .field("users", &t.map.len())
            .field("generation", &t.generation)
            .finish()
    }
}
