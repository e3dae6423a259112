//! `[cluster]`: registrations shared across edges on Redis/Valkey (issue 20), kept apart
//! from `config.rs` so the sections of parallel issues merge without conflicts.

use std::net::SocketAddr;

use serde::Deserialize;

/// Default `[cluster] lookup_timeout_ms`: how long a lookup may wait for Redis.
pub const DEFAULT_LOOKUP_TIMEOUT_MS: u64 = 300;
/// Default `[cluster] backlog_max`: AoRs with changes waiting to be written.
pub const DEFAULT_BACKLOG_MAX: usize = 100_000;
/// Default `[cluster] cache_max`: AoRs whose remote bindings are cached.
pub const DEFAULT_CACHE_MAX: usize = 100_000;
/// Longest node name accepted (it is stored with every binding).
pub const MAX_NODE_NAME: usize = 64;

/// `[cluster] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterMode {
    /// One edge alone: nothing starts (the default).
    Standalone,
    /// Every edge sees every registration.
    Cluster,
    /// Each edge shares its registrations only with `share = true`.
    Array,
}

/// `[cluster]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawCluster {
    mode: String,
    node: String,
    address: Option<String>,
    redis: Vec<String>,
    share: bool,
    takeover: bool,
    lookup_timeout_ms: u64,
    backlog_max: usize,
    cache_max: usize,
    peers: Vec<String>,
}

impl Default for RawCluster {
    fn default() -> Self {
        Self {
            mode: "standalone".into(),
            node: String::new(),
            address: None,
            redis: Vec::new(),
            share: true,
            takeover: false,
            lookup_timeout_ms: DEFAULT_LOOKUP_TIMEOUT_MS,
            backlog_max: DEFAULT_BACKLOG_MAX,
            cache_max: DEFAULT_CACHE_MAX,
            peers: Vec::new(),
        }
    }
}

/// The validated `[cluster]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `mode`.
    pub mode: ClusterMode,
    /// `node`: this edge's unique name (empty in standalone mode).
    pub node: String,
    /// `address`: where peers reach this edge (default: the first UDP listen).
    pub address: SocketAddr,
    /// `redis`: one URL (a standalone Redis/Valkey) or the seed nodes of a Redis Cluster.
    pub redis: Vec<String>,
    /// `share`: array mode, whether this edge's registrations are written for the others.
    pub share: bool,
    /// `takeover`: bindings of dead edges are still answered, and one survivor adopts them
    /// (floating addresses; `cluster::takeover`).
    pub takeover: bool,
    /// `lookup_timeout_ms`.
    pub lookup_timeout_ms: u64,
    /// `backlog_max`.
    pub backlog_max: usize,
    /// `cache_max`.
    pub cache_max: usize,
    /// `peers`: the other edges' addresses. A call they relay to a user registered here is
    /// trusted like an `[[ip_auth]]` source's and never looked up again (the loop guard).
    pub peers: Vec<std::net::IpAddr>,
}

impl ClusterConfig {
    /// True when the cluster thread runs.
    pub fn enabled(&self) -> bool {
        self.mode != ClusterMode::Standalone
    }

    /// True when this edge writes its bindings to Redis (cluster mode, or array mode with
    /// `share = true`).
    pub fn writes(&self) -> bool {
        match self.mode {
            ClusterMode::Standalone => false,
            ClusterMode::Cluster => true,
            ClusterMode::Array => self.share,
        }
    }
}

/// Validates `[cluster]`; `first_udp` is the first UDP listen address (the default
/// `address`).
pub(crate) fn parse_cluster(
    c: &RawCluster,
    first_udp: Option<SocketAddr>,
) -> Result<ClusterConfig, (&'static str, String)> {
    let mode = match c.mode.as_str() {
        "standalone" => ClusterMode::Standalone,
        "cluster" => ClusterMode::Cluster,
        "array" => ClusterMode::Array,
        other => {
            return Err((
                "cluster.mode",
                format!("`{other}` is not one of \"standalone\", \"cluster\", \"array\""),
            ))
        }
    };
    let on = mode != ClusterMode::Standalone;
    if on {
        if c.node.is_empty() {
            return Err((
                "cluster.node",
                "required unless mode = \"standalone\"".into(),
            ));
        }
        if c.node.len() > MAX_NODE_NAME
            || !c
                .node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err((
                "cluster.node",
                format!("`{}`: at most {MAX_NODE_NAME} of A-Z a-z 0-9 - _ .", c.node),
            ));
        }
        if c.redis.is_empty() {
            return Err((
                "cluster.redis",
                "at least one redis:// URL is required unless mode = \"standalone\"".into(),
            ));
        }
    }
    for u in &c.redis {
        if !(u.starts_with("redis://") || u.starts_with("valkey://")) {
            return Err(("cluster.redis", format!("`{u}` is not a redis:// URL")));
        }
    }
    let address = match &c.address {
        Some(a) => {
            let hostport = a.strip_prefix("sip:").unwrap_or(a);
            hostport
                .parse::<SocketAddr>()
                .map_err(|_| ("cluster.address", format!("`{a}` is not sip:IP:PORT")))?
        }
        None => match first_udp {
            Some(a) => a,
            None if on => {
                return Err((
                    "cluster.address",
                    "required when no UDP address is listened on".into(),
                ))
            }
            None => SocketAddr::from(([0, 0, 0, 0], 0)),
        },
    };
    if on && address.ip().is_unspecified() {
        return Err((
            "cluster.address",
            format!("{address} is unspecified: say where peers reach this edge"),
        ));
    }
    if !(10..=10_000).contains(&c.lookup_timeout_ms) {
        return Err((
            "cluster.lookup_timeout_ms",
            format!("{} is outside 10..=10000", c.lookup_timeout_ms),
        ));
    }
    if !(1..=100_000_000).contains(&c.backlog_max) {
        return Err((
            "cluster.backlog_max",
            format!("{} is outside 1..=100000000", c.backlog_max),
        ));
    }
    if c.cache_max > 100_000_000 {
        return Err((
            "cluster.cache_max",
            format!("{} is above 100000000", c.cache_max),
        ));
    }
    let peers = c
        .peers
        .iter()
        .map(|p| {
            let text = p.strip_prefix("sip:").unwrap_or(p);
            text.parse::<SocketAddr>()
                .map(|a| a.ip())
                .or_else(|_| text.parse::<std::net::IpAddr>())
                .map_err(|_| {
                    (
                        "cluster.peers",
                        format!("`{p}` is not an IP or sip:IP:PORT"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClusterConfig {
        peers,
        mode,
        node: c.node.clone(),
        address,
        redis: c.redis.clone(),
        share: c.share,
        takeover: c.takeover,
        lookup_timeout_ms: c.lookup_timeout_ms,
        backlog_max: c.backlog_max,
        cache_max: c.cache_max,
    })
}

#[cfg(test)]
mod tests {
    use super::ClusterMode;
    use crate::config::Config;

    #[test]
    fn cluster_keys_and_defaults() {
        let c = Config::parse("", "t").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.cluster.mode, ClusterMode::Standalone);
        assert!(!c.cluster.enabled());
        let c = Config::parse(
            "[server]\nlisten = [\"udp:127.0.0.1:5070\"]\n[cluster]\nmode = \"array\"\nnode = \"edge-a\"\nredis = [\"redis://127.0.0.1:6379\"]\nshare = false\n",
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.cluster.mode, ClusterMode::Array);
        assert_eq!(c.cluster.address, "127.0.0.1:5070".parse().expect("addr"));
        assert!(c.cluster.enabled() && !c.cluster.writes());
        assert_eq!(c.cluster.lookup_timeout_ms, 300);
        for (text, key) in [
            ("[cluster]\nmode = \"mesh\"\n", "cluster.mode"),
            (
                "[cluster]\nmode = \"cluster\"\nredis = [\"redis://a\"]\n",
                "cluster.node",
            ),
            (
                "[cluster]\nmode = \"cluster\"\nnode = \"a b\"\nredis = [\"redis://a\"]\n",
                "cluster.node",
            ),
            (
                "[cluster]\nmode = \"cluster\"\nnode = \"a\"\n",
                "cluster.redis",
            ),
            ("[cluster]\nredis = [\"http://a\"]\n", "cluster.redis"),
            ("[cluster]\naddress = \"sip:nowhere\"\n", "cluster.address"),
            (
                "[cluster]\nlookup_timeout_ms = 0\n",
                "cluster.lookup_timeout_ms",
            ),
            ("[cluster]\nbacklog_max = 0\n", "cluster.backlog_max"),
        ] {
            let e = Config::parse(text, "t")
                .err()
                .unwrap_or_else(|| panic!("{text} must be refused"));
            assert_eq!(e.key, key, "{text}");
        }
    }
}
