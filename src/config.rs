//! Configuration: TOML file → validated, typed [`Config`]. Errors name the file and the key.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use sipedge_core::{
    Overflow, RegistrarConfig, DEFAULT_EXPIRES_SECS, DEFAULT_MAX_BINDINGS, DEFAULT_MAX_CONTACTS,
    DEFAULT_MAX_EXPIRES_SECS, DEFAULT_MIN_EXPIRES_SECS,
};
use sipedge_journal::config::{PersistenceConfig, RawPersistence};
use sipedge_rt::{IoMode, XdpAttach, XdpConfig};

/// The embedded default configuration (`config/sipedge.toml`).
pub const DEFAULT_CONFIG: &str = include_str!("../config/sipedge.toml");
/// Name shown in errors about the embedded configuration.
pub const EMBEDDED_NAME: &str = "<embedded config/sipedge.toml>";

/// Default `[server] max_message_bytes`: the largest UDP payload.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 65_535;
/// Smallest `[server] max_message_bytes` accepted (RFC 3261 §18.1.1 MTU-sized messages).
pub const MIN_MAX_MESSAGE_BYTES: usize = 1_500;
/// Default `[server] recv_buffer_bytes` (16 MiB: a ~26k-datagram burst, see PERFORMANCE.md).
pub const DEFAULT_RECV_BUFFER_BYTES: usize = 16 * 1024 * 1024;
/// Default `[server] send_buffer_bytes` (4 MiB).
pub const DEFAULT_SEND_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Default `[admin] listen`.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9065";
/// Largest `[registrar] max_expires` accepted, seconds (one week).
pub const MAX_MAX_EXPIRES_SECS: u32 = 7 * 24 * 3600;
/// Largest `[registrar] min_expires` accepted, seconds: RFC 3261 §10.3 step 7 allows 423
/// only for intervals shorter than one hour.
pub const MAX_MIN_EXPIRES_SECS: u32 = 3600;
/// Largest `[registrar] max_contacts` accepted.
pub const MAX_MAX_CONTACTS: u16 = 1000;

/// A configuration error: which file, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or the embedded config's name).
    pub file: String,
    /// Dotted key path, e.g. `server.listen[1]`; empty for syntax errors.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "config {}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "config {}: key `{}`: {}",
                self.file, self.key, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

#[path = "config_tls.rs"]
pub mod tls;
use crate::config_listen::parse_listen_all;
pub use crate::config_listen::Listen;

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[server] listen`.
    pub listen: Vec<Listen>,
    /// `[server] domains` plus the listen addresses, lowercase, deduplicated.
    pub domains: Vec<String>,
    /// `[server] workers` (0 = one per core).
    pub workers: usize,
    /// `[server] io`.
    pub io: IoMode,
    /// `[server] recv_buffer_bytes`.
    pub recv_buffer_bytes: usize,
    /// `[server] send_buffer_bytes`.
    pub send_buffer_bytes: usize,
    /// `[server] max_message_bytes`.
    pub max_message_bytes: usize,
    /// `[server] secret` (issue 13): keys the MACs of our Record-Route tokens, Via and
    /// ping branches. `None`: `main` keeps one in the persistence directory, else draws one.
    pub secret: Option<sipedge_core::NodeSecret>,
    /// `[server] xdp_*` (used with `io = "xdp"`).
    pub xdp: XdpConfig,
    /// `[admin] listen`.
    pub admin_listen: SocketAddr,
    /// `[log] level`.
    pub log_level: String,
    /// `[admin]` (src/config_admin.rs).
    pub admin: crate::config_admin::AdminSetup,
    /// `[log]` (src/config_admin.rs).
    pub log: crate::config_admin::LogSetup,
    /// `[registrar]`.
    pub registrar: RegistrarConfig,
    /// `[registrar] expected_bindings`: bindings the whole edge is sized for at start
    /// (0: grow on demand). `main` gives each shard its share.
    pub expected_bindings: u64,
    /// `[registrar] prefault`: fault in the expected bindings' storage at start.
    pub prefault: bool,
    /// `[registrar.persistence]`; `None` = memory-only.
    pub persistence: Option<PersistenceConfig>,
    /// `[nat]` (its `advertise` is filled per shard by `main`).
    pub nat: sipedge_core::NatConfig,
    /// `[sip]`: transaction timers.
    pub sip: sipedge_core::SipTimers,
    /// `[proxy]`: the relay.
    pub proxy: crate::config_relay::ProxySettings,
    /// `[auth]`, `[[accounts]]`, `[[users]]`, `[[ip_auth]]` (src/auth_config.rs).
    pub auth: crate::auth_config::AuthSetup,
    /// `[limits]` (src/config_limits.rs).
    pub limits: crate::config_limits::Limits,
    /// `[protect]` and `[overload]` (src/config_protect.rs, issue 17).
    pub protection: crate::config_protect::Protection,
    /// `[limits]` call limits with `[[ip_auth]]` ones (src/config_dialogs.rs, issue 16).
    pub call_limits: sipedge_core::limits::LimitsSpec,
    /// `[dialogs]` (src/config_dialogs.rs, issue 16).
    pub dialogs: sipedge_core::dialog::DialogConfig,
    /// `[tls]` (src/config_tls.rs); `None` when absent and no `tls:`/`wss:` listen needs it.
    pub tls: Option<tls::TlsSettings>,
    /// `[tcp]` (src/config_tcp.rs, issue 19).
    pub tcp: crate::config_tcp::TcpSettings,
    /// `[cluster]` (src/config_cluster.rs, issue 20).
    pub cluster: crate::config_cluster::ClusterConfig,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    admin: crate::config_admin::RawAdmin,
    #[serde(default)]
    log: crate::config_admin::RawLog,
    #[serde(default)]
    registrar: RawRegistrar,
    #[serde(default)]
    nat: crate::config_nat::RawNat,
    #[serde(default)]
    sip: crate::config_relay::RawSip,
    #[serde(default)]
    proxy: crate::config_relay::RawProxy,
    #[serde(default)]
    auth: crate::auth_config::RawAuth,
    #[serde(default)]
    accounts: Vec<crate::auth_config::RawAccount>,
    #[serde(default)]
    users: Vec<crate::auth_config::RawUser>,
    #[serde(default)]
    ip_auth: Vec<crate::auth_config::RawIpAuth>,
    #[serde(default)]
    limits: crate::config_limits::RawLimits,
    #[serde(default)]
    protect: crate::config_protect::RawProtect,
    #[serde(default)]
    overload: crate::config_protect::RawOverload,
    #[serde(default)]
    dialogs: crate::config_dialogs::RawDialogs,
    #[serde(default)]
    tls: tls::RawTls,
    #[serde(default)]
    tcp: crate::config_tcp::RawTcp,
    #[serde(default)]
    cluster: crate::config_cluster::RawCluster,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRegistrar {
    case_sensitive: bool,
    default_expires: u32,
    min_expires: u32,
    max_expires: u32,
    max_contacts: u16,
    overflow: String,
    max_bindings: u64,
    expected_bindings: u64,
    prefault: bool,
    accept_path: String,
    persistence: RawPersistence,
}

impl Default for RawRegistrar {
    fn default() -> Self {
        Self {
            case_sensitive: false,
            default_expires: DEFAULT_EXPIRES_SECS,
            min_expires: DEFAULT_MIN_EXPIRES_SECS,
            max_expires: DEFAULT_MAX_EXPIRES_SECS,
            max_contacts: DEFAULT_MAX_CONTACTS,
            overflow: "reject".into(),
            max_bindings: DEFAULT_MAX_BINDINGS as u64,
            expected_bindings: 0,
            prefault: false,
            accept_path: "trusted".into(),
            persistence: RawPersistence::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: Vec<String>,
    domains: Vec<String>,
    workers: usize,
    io: String,
    recv_buffer_bytes: usize,
    send_buffer_bytes: usize,
    max_message_bytes: usize,
    secret: String,
    xdp_interface: String,
    xdp_frames: u32,
    xdp_frame_bytes: u32,
    xdp_ring_size: u32,
    xdp_attach: String,
    xdp_zero_copy: bool,
    xdp_poll_us: u32,
    xdp_neighbours: usize,
    xdp_busy_poll_us: u32,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: vec!["udp:127.0.0.1:5060".into()],
            domains: vec!["localhost".into()],
            workers: 0,
            io: "auto".into(),
            recv_buffer_bytes: DEFAULT_RECV_BUFFER_BYTES,
            send_buffer_bytes: DEFAULT_SEND_BUFFER_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            secret: String::new(),
            xdp_interface: String::new(),
            xdp_frames: XdpConfig::default().frames,
            xdp_frame_bytes: XdpConfig::default().frame_bytes,
            xdp_ring_size: XdpConfig::default().ring_size,
            xdp_attach: "auto".into(),
            xdp_zero_copy: true,
            xdp_poll_us: XdpConfig::default().poll_us,
            xdp_neighbours: XdpConfig::default().neighbours,
            xdp_busy_poll_us: XdpConfig::default().busy_poll_us,
        }
    }
}

/// `[server] xdp_*`, checked whatever `io` is (so a typo is caught before it is used).
fn xdp_config(s: &RawServer, io: IoMode) -> Result<XdpConfig, (String, String)> {
    let key = |k: &str| format!("server.{k}");
    let attach = match s.xdp_attach.as_str() {
        "auto" => XdpAttach::Auto,
        "native" => XdpAttach::Native,
        "generic" => XdpAttach::Generic,
        other => {
            return Err((
                key("xdp_attach"),
                format!("`{other}` is not one of \"auto\", \"native\", \"generic\""),
            ))
        }
    };
    if io == IoMode::Xdp && s.xdp_interface.is_empty() {
        return Err((
            key("xdp_interface"),
            "io = \"xdp\" needs the network interface the listen address is on".into(),
        ));
    }
    if !s.xdp_ring_size.is_power_of_two() || !(64..=32768).contains(&s.xdp_ring_size) {
        return Err((
            key("xdp_ring_size"),
            format!("{} is not a power of two in 64..=32768", s.xdp_ring_size),
        ));
    }
    if !matches!(s.xdp_frame_bytes, 2048 | 4096) {
        return Err((
            key("xdp_frame_bytes"),
            format!("{} is not 2048 or 4096", s.xdp_frame_bytes),
        ));
    }
    if !(128..=1 << 20).contains(&s.xdp_frames) {
        return Err((
            key("xdp_frames"),
            format!("{} is outside 128..=1048576", s.xdp_frames),
        ));
    }
    if s.xdp_poll_us > 100_000 {
        return Err((
            key("xdp_poll_us"),
            format!("{} is above 100000 (0.1 s)", s.xdp_poll_us),
        ));
    }
    if !(1..=1 << 24).contains(&s.xdp_neighbours) {
        return Err((
            key("xdp_neighbours"),
            format!("{} is outside 1..=16777216", s.xdp_neighbours),
        ));
    }
    if s.xdp_busy_poll_us > 10_000 {
        return Err((
            key("xdp_busy_poll_us"),
            format!("{} is above 10000 (10 ms)", s.xdp_busy_poll_us),
        ));
    }
    Ok(XdpConfig {
        interface: s.xdp_interface.clone(),
        queue: 0,
        frames: s.xdp_frames,
        frame_bytes: s.xdp_frame_bytes,
        ring_size: s.xdp_ring_size,
        attach,
        zero_copy: s.xdp_zero_copy,
        poll_us: s.xdp_poll_us,
        neighbours: s.xdp_neighbours,
        busy_poll_us: s.xdp_busy_poll_us,
    })
}

impl Config {
    /// The embedded default.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::parse(DEFAULT_CONFIG, EMBEDDED_NAME)
    }

    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(&text, &file)
    }

    /// Parses and validates TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            file: file.into(),
            key: String::new(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        let err = |key: String, message: String| ConfigError {
            file: file.into(),
            key,
            message,
        };
        let s = raw.server;
        if s.listen.is_empty() {
            return Err(err(
                "server.listen".into(),
                "at least one address is required".into(),
            ));
        }
        let listen = parse_listen_all(&s.listen).map_err(|(k, m)| err(k, m))?;
        if let Some(i) = listen
            .iter()
            .position(|l| l.addr.ip().is_unspecified() && l.advertise.is_none())
        {
            return Err(err(
                format!("server.listen[{i}]"),
                format!(
                    "`{}` binds a wildcard address, which cannot be put in Via or Record-Route: \
                     add what peers reach this socket as, e.g. `{} advertise sip.example.com:{}` \
                     (or listen on the interface's own address)",
                    s.listen[i].trim(),
                    s.listen[i].trim(),
                    listen[i].addr.port()
                ),
            ));
        }
        let mut domains: Vec<String> = Vec::new();
        for (i, d) in s.domains.iter().enumerate() {
            let d = d.trim().to_ascii_lowercase();
            if d.is_empty() || d.contains(|c: char| c.is_whitespace() || c == '@' || c == ';') {
                return Err(err(
                    format!("server.domains[{i}]"),
                    format!("`{d}` is not a domain"),
                ));
            }
            if !domains.contains(&d) {
                domains.push(d);
            }
        }
        for l in &listen {
            // The advertised host names this edge too (domains, digest `uri`, our own
            // Route/Record-Route); a wildcard listen address never does.
            let adv = l.advertise.as_ref().map(|a| {
                a.host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            });
            let ip = (!l.addr.ip().is_unspecified()).then(|| l.addr.ip().to_string());
            for d in [ip, adv].into_iter().flatten() {
                if !domains.contains(&d) {
                    domains.push(d);
                }
            }
        }
        let io = match s.io.as_str() {
            "auto" => IoMode::Auto,
            "uring" => IoMode::Uring,
            "mmsg" => IoMode::Mmsg,
            "xdp" => IoMode::Xdp,
            other => {
                return Err(err(
                    "server.io".into(),
                    format!("`{other}` is not one of \"auto\", \"uring\", \"mmsg\", \"xdp\""),
                ))
            }
        };
        let xdp = xdp_config(&s, io).map_err(|(k, m)| err(k, m))?;
        if !(MIN_MAX_MESSAGE_BYTES..=DEFAULT_MAX_MESSAGE_BYTES).contains(&s.max_message_bytes) {
            return Err(err(
                "server.max_message_bytes".into(),
                format!(
                    "{} is outside {MIN_MAX_MESSAGE_BYTES}..={DEFAULT_MAX_MESSAGE_BYTES}",
                    s.max_message_bytes
                ),
            ));
        }
        for (key, v) in [
            ("server.recv_buffer_bytes", s.recv_buffer_bytes),
            ("server.send_buffer_bytes", s.send_buffer_bytes),
        ] {
            if !(4096..=1 << 30).contains(&v) {
                return Err(err(key.into(), format!("{v} is outside 4096..=1073741824")));
            }
        }
        if s.workers > 1024 {
            return Err(err(
                "server.workers".into(),
                format!("{} shards is too many", s.workers),
            ));
        }
        let secret = match s.secret.trim() {
            "" => None,
            hex => Some(
                sipedge_core::NodeSecret::from_hex(hex)
                    .map_err(|e| err("server.secret".into(), e.to_string()))?,
            ),
        };
        let admin =
            crate::config_admin::parse_admin(&raw.admin).map_err(|(k, m)| err(k.into(), m))?;
        let log = crate::config_admin::parse_log(&raw.log).map_err(|(k, m)| err(k.into(), m))?;
        let registrar = parse_registrar(&raw.registrar).map_err(|(k, m)| err(k.into(), m))?;
        if raw.registrar.expected_bindings > MAX_EXPECTED_BINDINGS {
            return Err(err(
                "registrar.expected_bindings".into(),
                format!(
                    "{} is above {MAX_EXPECTED_BINDINGS}",
                    raw.registrar.expected_bindings
                ),
            ));
        }
        if raw.registrar.prefault && raw.registrar.expected_bindings == 0 {
            return Err(err(
                "registrar.prefault".into(),
                "needs expected_bindings > 0 (the bindings to fault in at start)".into(),
            ));
        }
        // What prefault makes resident is bounded by the table's own cap: a typo in
        // expected_bindings must not fault in gigabytes the table can never use.
        if raw.registrar.prefault && raw.registrar.expected_bindings > raw.registrar.max_bindings {
            return Err(err(
                "registrar.prefault".into(),
                format!(
                    "faults in expected_bindings ({}), which is above max_bindings ({})",
                    raw.registrar.expected_bindings, raw.registrar.max_bindings
                ),
            ));
        }
        let persistence = raw
            .registrar
            .persistence
            .validate()
            .map_err(|e| err(format!("registrar.persistence.{}", e.key), e.message))?;
        let mut nat = raw.nat.validate().map_err(|(k, m)| err(k, m))?;
        nat.users = sipedge_core::NatUsers::new({
            // `[[users]]` and the rows of `[auth] users_file` (read again by the auth
            // tables below; a start-up cost only).
            let file_rows =
                crate::auth_config::users_file_rows(&raw.auth, file).map_err(|(k, m)| err(k, m))?;
            let places = raw
                .users
                .iter()
                .enumerate()
                .map(|(i, u)| (format!("users[{i}]"), u))
                .chain(file_rows.iter().map(|(p, u)| (p.clone(), u)));
            crate::config_nat::user_overrides(places, &domains, registrar.case_sensitive)
                .map_err(|(k, m)| err(k, m))?
        });
        let sip = crate::config_relay::parse_sip(&raw.sip).map_err(|(k, m)| err(k.into(), m))?;
        let proxy = crate::config_relay::parse_proxy(&raw.proxy);
        let limits =
            crate::config_limits::parse_limits(&raw.limits).map_err(|(k, m)| err(k.into(), m))?;
        let protection = crate::config_protect::parse(&raw.protect, &raw.overload)
            .map_err(|(k, m)| err(k, m))?;
        let ip_limits: Vec<_> = raw
            .ip_auth
            .iter()
            .map(|e| sipedge_core::limits::Limit::new(e.channels, e.cps))
            .collect();
        let dialogs =
            crate::config_dialogs::parse_dialogs(&raw.dialogs).map_err(|(k, m)| err(k, m))?;
        let raw_call_limits = raw.limits.call_limits();
        let auth = crate::auth_config::parse(
            raw.auth,
            raw.accounts,
            raw.users,
            raw.ip_auth,
            &domains,
            file,
            registrar.case_sensitive,
        )
        .map_err(|(k, m)| err(k, m))?;
        // Issue 16: an account's users may not be assigned more channels than it has.
        sipedge_core::limits::check_capacity(&auth.spec).map_err(|m| err("accounts".into(), m))?;
        let ip_auth = auth
            .spec
            .ip_auth
            .iter()
            .zip(ip_limits)
            .map(|(e, l)| (e.cidr, l))
            .collect();
        let call_limits = crate::config_dialogs::parse_call_limits(&raw_call_limits, ip_auth)
            .map_err(|(k, m)| err(k, m))?;
        let first_udp = listen
            .iter()
            .find(|l| l.transport == crate::config_listen::Transport::Udp)
            .map(|l| l.addr);
        let cluster = crate::config_cluster::parse_cluster(&raw.cluster, first_udp)
            .map_err(|(k, m)| err(k.into(), m))?;
        let tls = tls::parse(&raw.tls, &listen, file).map_err(|(k, m)| err(k, m))?;
        Ok(Config {
            cluster,
            tls,
            tcp: crate::config_tcp::parse_tcp(&raw.tcp, s.max_message_bytes)
                .map_err(|(k, m)| err(k.into(), m))?,
            protection,
            call_limits,
            dialogs,
            sip,
            proxy,
            limits,
            auth,
            nat,
            listen,
            domains,
            workers: s.workers,
            io,
            recv_buffer_bytes: s.recv_buffer_bytes,
            send_buffer_bytes: s.send_buffer_bytes,
            max_message_bytes: s.max_message_bytes,
            secret,
            xdp,
            admin_listen: admin.listen,
            log_level: raw.log.level,
            admin,
            log,
            registrar,
            expected_bindings: raw.registrar.expected_bindings,
            prefault: raw.registrar.prefault,
            persistence,
        })
    }
}

/// `[registrar]`: intervals ordered `min_expires <= default_expires <= max_expires`.
fn parse_registrar(r: &RawRegistrar) -> Result<RegistrarConfig, (&'static str, String)> {
    let overflow = match r.overflow.as_str() {
        "reject" => Overflow::Reject,
        "replace_oldest" => Overflow::ReplaceOldest,
        other => {
            return Err((
                "registrar.overflow",
                format!("`{other}` is not one of \"reject\", \"replace_oldest\""),
            ))
        }
    };
    let Some(accept_path) = sipedge_core::AcceptPath::parse(&r.accept_path) else {
        return Err((
            "registrar.accept_path",
            format!(
                "`{}` is not one of \"trusted\", \"always\", \"never\"",
                r.accept_path
            ),
        ));
    };
    if !(1..=MAX_MAX_EXPIRES_SECS).contains(&r.max_expires) {
        return Err((
            "registrar.max_expires",
            format!("{} is outside 1..={MAX_MAX_EXPIRES_SECS}", r.max_expires),
        ));
    }
    if r.min_expires > MAX_MIN_EXPIRES_SECS {
        // RFC 3261 §10.3 step 7: 423 only for intervals shorter than one hour.
        return Err((
            "registrar.min_expires",
            format!(
                "{} is above {MAX_MIN_EXPIRES_SECS} (one hour)",
                r.min_expires
            ),
        ));
    }
    if r.min_expires > r.max_expires {
        return Err((
            "registrar.min_expires",
            format!("{} is above max_expires ({})", r.min_expires, r.max_expires),
        ));
    }
    if !(r.min_expires..=r.max_expires).contains(&r.default_expires) {
        return Err((
            "registrar.default_expires",
            format!(
                "{} is outside min_expires..=max_expires ({}..={})",
                r.default_expires, r.min_expires, r.max_expires
            ),
        ));
    }
    if !(1..=MAX_MAX_CONTACTS).contains(&r.max_contacts) {
        return Err((
            "registrar.max_contacts",
            format!("{} is outside 1..={MAX_MAX_CONTACTS}", r.max_contacts),
        ));
    }
    if !(1..=MAX_MAX_BINDINGS).contains(&r.max_bindings) {
        return Err((
            "registrar.max_bindings",
            format!("{} is outside 1..={MAX_MAX_BINDINGS}", r.max_bindings),
        ));
    }
    Ok(RegistrarConfig {
        max_bindings: r.max_bindings as usize,
        case_sensitive: r.case_sensitive,
        default_expires_secs: r.default_expires,
        min_expires_secs: r.min_expires,
        max_expires_secs: r.max_expires,
        max_contacts: r.max_contacts,
        overflow,
        accept_path,
    })
}

/// Largest `[registrar] max_bindings` accepted (about 255 GB of bindings).
const MAX_MAX_BINDINGS: u64 = 1_000_000_000;

/// Largest `[registrar] expected_bindings` accepted (reserved at start: about 55 bytes of
/// index and timer storage per expected binding, resident as bindings arrive).
const MAX_EXPECTED_BINDINGS: u64 = 200_000_000;

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
