//! NAT traversal: detection of NATed registrations, the received address a NATed binding is
//! reached at, and the keepalive pinger (`ping`).
//!
//! **Detection** (per REGISTER, per contact; Kamailio's `nat_uac_test` + `fix_nated_register`):
//!
//! | test | rule |
//! | --- | --- |
//! | Via | the top Via sent-by (host, port; 5060 when absent) differs from the source ip:port. The reply carries `received` (RFC 3261 §18.2.1) and `rport` (RFC 3581 §4): `Core::reply` adds them |
//! | Contact | the Contact host is a private or shared address (RFC 1918, RFC 6598 100.64/10, link-local 169.254/16, IPv6 ULA fc00::/7 and link-local fe80::/10) while the source is not |
//! | per user | `nat = "force"`: always NATed ("Force NAT"); `nat = "disabled"`: never ("Disable NAT") |
//!
//! A NATed binding keeps its Contact as registered (the 200 OK and lookups list it
//! unchanged) and is reached at the address the REGISTER came from
//! ([`crate::LookupContact::received`]), like Kamailio's `fix_nated_register` with
//! `received_avp`.
//!
//! **Per-user settings.** [`NatConfig::users`] maps a canonical AoR (`sip:user@domain`) to a
//! [`NatUser`] override of the global defaults; the shell fills it from the `nat` /
//! `nat_ping` keys of `[[users]]` (`src/config_nat.rs`; a key left out means the `[nat]`
//! default). It is read at every REGISTER and restore ([`crate::Core::nat_user`]) and its
//! result is stored in the binding (NATed or not, ping mode), so the pinger never looks it
//! up.
//!
//! **Reload.** The overrides are one immutable generation ([`NatUsers`], an `Arc` shared by
//! every shard, like the auth tables): SIGHUP builds the next with [`NatUsers::next`], which
//! also records which AoRs changed, and the shell hands it to each core between turns
//! ([`crate::Core::handle_config`]), which re-applies it at once to the bindings it owns of
//! the changed AoRs only: the ping mode is set anew; the NATed flag becomes true
//! for `force`, false for `disabled`, and for a change to `auto` is worked out again as at a
//! restore (contact against source). Bindings are neither dropped nor re-registered.
//!
//! **Per-binding state** fits in the padding of the 72-byte binding slot ([`NatState`], 5
//! bytes): NATed flag, ping mode, outstanding-ping and alive flags, a 3-bit miss counter,
//! the last RTT (u16 ms) and a smoothed RTT (u16, 1/8 ms).

pub(crate) mod ping;
mod reload;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use sipedge_msg::{Uri, Via};

use crate::stateless::IpText;

pub use crate::location::nat_bits::PingMode;
pub(crate) use crate::location::nat_bits::{NatState, PingEvent, PingStep};
pub(crate) use ping::{NatPinger, NatRuntime};
pub use ping::{NatStats, RTT_BUCKETS_MS};

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

/// True for private and shared addresses: RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 6598
/// (100.64/10), IPv4 link-local (169.254/16, RFC 3927), IPv6 ULA (fc00::/7, RFC 4193) and
/// link-local (fe80::/10, RFC 4291); IPv4-mapped IPv6 addresses are judged as IPv4.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => private_v4(v4),
            None => private_v6(v6),
        },
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 10
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 168)
        || (a == 100 && (64..=127).contains(&b))
        || (a == 169 && b == 254)
}

fn private_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments()[0];
    (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
}

/// An IP literal host (IPv6 with or without brackets); `None` for a host name.
pub(crate) fn host_ip(host: &[u8]) -> Option<IpAddr> {
    let host = match host {
        [b'[', inner @ .., b']'] => inner,
        _ => host,
    };
    std::str::from_utf8(host).ok()?.parse().ok()
}

/// RFC 3261 §18.2.1 / RFC 3581 §4: the top Via's sent-by (host and port, 5060 when absent)
/// is not the address the request came from. A host name always differs.
pub fn via_differs(via: &Via<'_>, source: SocketAddr) -> bool {
    via_differs_text(via, source, IpText::new(source.ip()).as_bytes())
}

/// [`via_differs`] with the source address already written as text (`IpText`).
pub(crate) fn via_differs_text(via: &Via<'_>, source: SocketAddr, source_text: &[u8]) -> bool {
    via.port().unwrap_or(5060) != source.port()
        || (!is_ip_text(via.host(), source_text)
            && host_ip(via.host()).is_none_or(|ip| !same_ip(ip, source.ip())))
}

/// True when `host` (brackets allowed) is the IP address whose usual text is `ip_text`:
/// the common case of a phone that is not NATed, decided without parsing. `false` says
/// nothing (the caller parses).
fn is_ip_text(host: &[u8], ip_text: &[u8]) -> bool {
    let host = match host {
        [b'[', inner @ .., b']'] => inner,
        _ => host,
    };
    host == ip_text
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    canon(a) == canon(b)
}

/// What one REGISTER says about NAT, worked out once per request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestNat {
    /// The top Via differs from the source.
    pub(crate) via_differs: bool,
    /// The source address is itself private (then a private Contact proves nothing).
    pub(crate) source_private: bool,
    /// The source address as text.
    pub(crate) source_text: IpText,
    /// The user's overrides resolved against the defaults.
    pub(crate) mode: NatMode,
    pub(crate) ping: PingMode,
}

impl RequestNat {
    /// Detection for one contact of the request (the module docs' table).
    pub(crate) fn nated(&self, contact: &Uri<'_>) -> bool {
        match self.mode {
            NatMode::Force => true,
            NatMode::Disabled => false,
            NatMode::Auto => {
                self.via_differs
                    || (!self.source_private
                        // The source itself (not private: checked) needs no parse.
                        && !is_ip_text(contact.host(), self.source_text.as_bytes())
                        && host_ip(contact.host()).is_some_and(is_private))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.1.1",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "172.15.0.1",
            "100.128.0.1",
            "100.63.0.1",
            "127.0.0.1",
            "2001:db8::1",
            "::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn via_comparison() {
        let src: SocketAddr = "203.0.113.5:40000".parse().expect("addr");
        let via = |s: &'static str| Via::parse(s.as_bytes()).expect("via");
        assert!(!via_differs(
            &via("SIP/2.0/UDP 203.0.113.5:40000;branch=z9hG4bKa"),
            src
        ));
        assert!(via_differs(
            &via("SIP/2.0/UDP 203.0.113.5;branch=z9hG4bKa"),
            src
        ));
        assert!(via_differs(
            &via("SIP/2.0/UDP 10.0.0.5:40000;branch=z9hG4bKa"),
            src
        ));
        assert!(via_differs(
            &via("SIP/2.0/UDP phone.example:40000;branch=z9hG4bKa"),
            src
        ));
        let src6: SocketAddr = "[2001:db8::5]:5060".parse().expect("addr");
        assert!(!via_differs(
            &via("SIP/2.0/UDP [2001:db8::5];branch=z9hG4bKa"),
            src6
        ));
    }
}
