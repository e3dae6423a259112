//! What a shard's core needs to know, already validated by the shell.

use std::net::SocketAddr;
use std::sync::Arc;

use sipedge_msg::ParseOptions;

use crate::auth_db::db::{AuthDb, AuthHandle};
use crate::auth_db::nonce::DEFAULT_NC_WINDOW;
use crate::shard::ShardId;

pub(crate) mod cluster;
pub(crate) mod dialogs;
pub(crate) mod nat;

/// Methods the edge handles today (RFC 3261 §20.5 Allow). Grows as issues land.
pub const ALLOW: &str = "REGISTER, OPTIONS, INVITE, ACK, CANCEL, BYE, MESSAGE";
/// Bodies the edge accepts in requests it answers itself (RFC 3261 §20.1 Accept).
pub const ACCEPT: &str = "application/sdp";
/// Option tags the edge supports (RFC 3261 §20.37): the registrar stores and echoes Path
/// (RFC 3327) and keeps outbound flows apart (RFC 5626).
pub const SUPPORTED: &str = "path, outbound";

/// Default `[registrar] default_expires`: granted when neither the contact nor the request
/// asks for an interval (RFC 3261 §10.3 step 7 leaves it to the registrar; 3600 is the
/// §10.2.1.1 suggestion).
pub const DEFAULT_EXPIRES_SECS: u32 = 3600;
/// Default `[registrar] min_expires`: shorter requests get 423 (RFC 3261 §10.3 step 7).
pub const DEFAULT_MIN_EXPIRES_SECS: u32 = 60;
/// Default `[registrar] max_expires`: longer requests are clamped (RFC 3261 §10.3 step 7).
pub const DEFAULT_MAX_EXPIRES_SECS: u32 = 7200;
/// Default `[registrar] max_contacts`: bindings per AoR.
pub const DEFAULT_MAX_CONTACTS: u16 = 10;

/// Default `[registrar] max_bindings`: contacts across the whole edge. About 255 bytes each
/// (PERFORMANCE.md, location table at 1M), so 4M bindings is about 1 GiB — what a small
/// edge server gives its location table, with room left for everything else.
pub const DEFAULT_MAX_BINDINGS: usize = 4_000_000;

/// What a REGISTER that would take an AoR past `max_contacts` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// 403 "Too Many Contacts", nothing changes.
    #[default]
    Reject,
    /// The oldest bindings the request does not touch are removed to make room.
    ReplaceOldest,
}

/// `[registrar]`: how REGISTER is processed (RFC 3261 §10.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Compare AoR user parts case-sensitively (`false`: `Alice` and `alice` are one AoR).
    pub case_sensitive: bool,
    /// Interval granted when none is asked for, seconds.
    pub default_expires_secs: u32,
    /// Shortest interval accepted (below: 423 with Min-Expires), seconds.
    pub min_expires_secs: u32,
    /// Longest interval granted (above: clamped), seconds.
    pub max_expires_secs: u32,
    /// Bindings per AoR.
    pub max_contacts: u16,
    /// What happens past `max_contacts`.
    pub overflow: Overflow,
    /// Bindings (contacts) the whole edge holds at most, all shards together; each shard
    /// takes its share (`max_bindings / shards`, rounded up). A REGISTER that would add a
    /// binding to a full shard gets 503 with Retry-After; refreshes and removals pass.
    pub max_bindings: usize,
    /// Whose Path a REGISTER may leave with its binding (RFC 3327 §5.3; `path_policy`).
    pub accept_path: crate::path_policy::AcceptPath,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            case_sensitive: false,
            default_expires_secs: DEFAULT_EXPIRES_SECS,
            min_expires_secs: DEFAULT_MIN_EXPIRES_SECS,
            max_expires_secs: DEFAULT_MAX_EXPIRES_SECS,
            max_contacts: DEFAULT_MAX_CONTACTS,
            overflow: Overflow::Reject,
            max_bindings: DEFAULT_MAX_BINDINGS,
            accept_path: crate::path_policy::AcceptPath::Trusted,
        }
    }
}

/// Configuration of one shard's core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// This shard.
    pub shard: ShardId,
    /// Number of shards.
    pub shards: u16,
    /// Domains and addresses the edge is authoritative for, lowercase (`[server] domains`).
    pub domains: Vec<String>,
    /// Parser limits (`[server] max_message_bytes`).
    pub parse: ParseOptions,
    /// Value of the Server header on replies the edge generates.
    pub server_name: String,
    /// Seed for everything pseudo-random (To tags, table hashing); the shell draws it at start.
    pub seed: u64,
    /// `[registrar]`.
    pub registrar: RegistrarConfig,
    /// Emit binding-change records for [`crate::Core::poll_journal`]. Off: nothing is
    /// encoded or queued (no journal configured).
    pub journal: bool,
    /// `[nat]`: NAT detection and keepalives.
    pub nat: nat::NatConfig,
    /// `[sip]`: transaction timer bases (RFC 3261 T1, T2, T4).
    pub sip: crate::txn::SipTimers,
    /// `[proxy]`: the relay.
    pub proxy: ProxyConfig,
    /// `[auth]`, `[[accounts]]`, `[[users]]`, `[[ip_auth]]` and the nonce secret.
    pub auth: AuthConfig,
    /// `[registrar] expected_bindings`: bindings this shard is sized for at start (its
    /// share of the configured total), so the location table's index and the timer wheel
    /// do not grow in the middle of a registration storm. 0: grow on demand.
    pub expected_bindings: usize,
    /// `[registrar] prefault`: also allocate and write, at start, the binding records,
    /// string storage and expiry timers of `expected_bindings`, so a registration storm
    /// pays no first-touch page faults (Kamailio's `shm_force_alloc`).
    pub prefault: bool,
    /// `[limits]`: this shard's caps on its transaction table.
    pub txn_limits: crate::txn::table::TxnLimits,
    /// `[protect]` and `[overload]` (issue 17); `Default`: every rule off.
    pub protect: crate::protect::ProtectConfig,
    /// `[limits]` call limits and their shared counters (issue 16, [`crate::limits`]).
    pub limits: crate::limits::LimitsHandle,
    /// `[dialogs]` (issue 16, [`crate::dialog`]).
    pub dialogs: dialogs::DialogConfig,
    /// `[cluster]`, the core's part (issue 20, [`crate::cluster`]); `Default`: off.
    pub cluster: cluster::ClusterCoreConfig,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            shard: ShardId(0),
            shards: 1,
            domains: vec!["127.0.0.1".into(), "localhost".into()],
            parse: ParseOptions::default(),
            server_name: concat!("sipedge/", env!("CARGO_PKG_VERSION")).into(),
            seed: 0,
            registrar: RegistrarConfig::default(),
            journal: false,
            nat: nat::NatConfig::default(),
            sip: crate::txn::SipTimers::default(),
            proxy: ProxyConfig::default(),
            auth: AuthConfig::default(),
            expected_bindings: 0,
            prefault: false,
            txn_limits: crate::txn::table::TxnLimits::default(),
            protect: crate::protect::ProtectConfig::default(),
            limits: std::sync::Arc::default(),
            dialogs: dialogs::DialogConfig::default(),
            cluster: cluster::ClusterCoreConfig::default(),
        }
    }
}

impl CoreConfig {
    /// A host:port of ours (one of our domains on one of our ports; no port = 5060).
    pub(crate) fn is_ours_uri(&self, uri: &sipedge_msg::Uri<'_>) -> bool {
        // Our domains on no port (an AoR) or on one of our ports.
        self.is_our_domain(uri.host())
            && uri
                .port()
                .is_none_or(|p| self.proxy.advertise.is_empty() || self.proxy.port_is_ours(p))
    }

    /// True when `host` (as written in a URI, IPv6 with or without brackets) is ours.
    pub fn is_our_domain(&self, host: &[u8]) -> bool {
        let host = match host {
            [b'[', inner @ .., b']'] => inner,
            _ => host,
        };
        self.domains
            .iter()
            .any(|d| d.as_bytes().eq_ignore_ascii_case(host))
    }
}

/// `[proxy]`: how requests are relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Add Record-Route to dialog-creating requests so in-dialog requests come through us
    /// (RFC 3261 §16.6 step 4).
    pub record_route: bool,
    /// Relay requests whose Request-URI is outside our domains (for authenticated users and
    /// IP-auth trunks only). Off: 403 — the edge is not an open relay.
    pub allow_outbound: bool,
    /// Our address on each socket (index = `LocalId`), as put in Via and Record-Route.
    pub advertise: Vec<SocketAddr>,
    /// Our advertised `host:port` per socket (index = `LocalId`), written instead of
    /// `advertise` in Via, Record-Route and Path when set (`[server] listen = ["udp:0.0.0.0:5060
    /// advertise sip.example.com"]`): a host name, or the public address of a 1:1 NAT.
    /// Missing or empty: `advertise`.
    pub advertise_names: Vec<String>,
    /// Transport of each socket (index = `LocalId`): `[server] listen = ["tcp:…"]`. Missing:
    /// UDP.
    pub transports: Vec<crate::Transport>,
    /// `[proxy] udp_mtu` (RFC 3261 §18.1.1): a request larger than this many bytes bound
    /// for UDP goes over TCP instead when we listen on TCP and the destination is not a
    /// binding's registered flow. 0: never switch. Default [`DEFAULT_UDP_MTU`].
    pub udp_mtu: usize,
    /// The node secret (`[server] secret`), the same on every shard: keys the MAC of the
    /// dialog token in our Record-Route (`proxy::token`), of our Via branches and of our NAT
    /// ping branches (`secret`). Never a table seed.
    pub secret: crate::secret::NodeSecret,
}

/// `[proxy] udp_mtu` default, bytes: RFC 3261 §18.1.1 names 1300 for a path MTU that is
/// unknown (200 bytes under Ethernet's 1500).
pub const DEFAULT_UDP_MTU: usize = 1300;

impl ProxyConfig {
    /// The transport of socket `local` (RFC 3261 §18): an index into
    /// [`ProxyConfig::transports`], UDP when missing. Per message, so no allocation.
    #[inline]
    pub fn transport_of(&self, local: crate::output::LocalId) -> crate::Transport {
        self.transports
            .get(usize::from(local.0))
            .copied()
            .unwrap_or_default()
    }

    /// Is socket `local` a stream listener (TCP, TLS, WS, WSS)?
    #[inline]
    pub fn is_stream(&self, local: crate::output::LocalId) -> bool {
        self.transport_of(local).is_stream()
    }

    /// The socket a message to `dest` over transport `t` leaves by: `prefer` when it is of
    /// that transport, else the first listener of that transport whose address family is
    /// `dest`'s (a wildcard or unknown address counts as either). `None`: we have no
    /// listener of that transport — the message is refused, never sent over another.
    pub(crate) fn socket_for(
        &self,
        t: crate::Transport,
        dest: SocketAddr,
        prefer: crate::output::LocalId,
    ) -> Option<crate::output::LocalId> {
        let family_ok = |i: usize| {
            self.advertise
                .get(i)
                .is_none_or(|a| a.ip().is_unspecified() || a.is_ipv6() == dest.is_ipv6())
        };
        let n = self.transports.len().max(self.advertise.len()).max(1);
        let ids = || {
            std::iter::once(prefer)
                .chain((0..n.min(usize::from(u16::MAX))).map(|i| crate::output::LocalId(i as u16)))
        };
        let of_t = |l: &crate::output::LocalId| self.transport_of(*l) == t;
        // The right family first; else (a v6 target and only v4 sockets, say) any socket
        // of the transport, as before transports existed: the kernel refuses the send.
        ids()
            .find(|l| of_t(l) && family_ok(usize::from(l.0)))
            .or_else(|| ids().find(of_t))
    }

    /// Is `port` one of the ports we listen on or advertise? (A Route, Request-URI or Via
    /// naming one of our domains on such a port is us.)
    pub(crate) fn port_is_ours(&self, port: u16) -> bool {
        self.advertise.iter().any(|a| a.port() == port)
            || self
                .advertise_names
                .iter()
                .filter_map(|n| n.rsplit_once(':'))
                .any(|(_, p)| p.parse::<u16>() == Ok(port))
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            record_route: true,
            allow_outbound: false,
            advertise: vec![SocketAddr::from(([127, 0, 0, 1], 5060))],
            advertise_names: Vec::new(),
            transports: Vec::new(),
            udp_mtu: DEFAULT_UDP_MTU,
            secret: crate::secret::NodeSecret::default(),
        }
    }
}

/// What a shard's core is given for authentication (part of [`crate::CoreConfig`]).
#[derive(Clone)]
pub struct AuthConfig {
    /// The tables, shared by every shard; a reload replaces them whole
    /// ([`crate::Core::handle_config`]).
    pub db: AuthHandle,
    /// The nonce secret (`[auth] nonce_secret`, else random from the shell at start).
    pub nonce_secret: Vec<u8>,
    /// This edge instance's id (random at start): nonces of an earlier run are refused even
    /// with a configured secret.
    pub instance: u32,
    /// Nonces whose nonce-counts a shard remembers (a power of two).
    pub nc_window: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            db: Arc::new(AuthDb::default()),
            nonce_secret: Vec::new(),
            instance: 0,
            nc_window: DEFAULT_NC_WINDOW,
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("users", &self.db.user_count())
            .field("instance", &self.instance)
            .field("nc_window", &self.nc_window)
            .finish_non_exhaustive()
    }
}
