//! `[tcp]`: the limits of stream connections (TCP, and TLS/WS/WSS over it; issue 19), kept
//! apart from `config.rs` so the sections of parallel issues merge without conflicts.

use serde::Deserialize;
use sipedge_rt::stream::{
    DEFAULT_HEADER_TIMEOUT_SECS, DEFAULT_IDLE_TIMEOUT_SECS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_CONNECTION_BYTES,
};

/// `[tcp]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawTcp {
    max_connections: usize,
    max_connections_per_ip: u32,
    max_connection_bytes: usize,
    header_timeout_secs: u64,
    idle_timeout_secs: u64,
}

impl Default for RawTcp {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_connection_bytes: DEFAULT_MAX_CONNECTION_BYTES,
            header_timeout_secs: DEFAULT_HEADER_TIMEOUT_SECS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
        }
    }
}

/// The validated `[tcp]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSettings {
    /// Connections the whole edge holds at most (each shard gets its share).
    pub max_connections: usize,
    /// Connections one source IP may hold.
    pub max_connections_per_ip: u32,
    /// Bytes held per connection (a message under way + replies not yet written).
    pub max_connection_bytes: usize,
    /// A connection must complete a message within this since accept or since the
    /// message's first byte (slowloris).
    pub header_timeout_secs: u64,
    /// A connection with no byte either way this long closes.
    pub idle_timeout_secs: u64,
}

impl Default for TcpSettings {
    fn default() -> Self {
        parse_tcp(&RawTcp::default(), 65_535).unwrap_or(TcpSettings {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            max_connection_bytes: DEFAULT_MAX_CONNECTION_BYTES,
            header_timeout_secs: DEFAULT_HEADER_TIMEOUT_SECS,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
        })
    }
}

impl TcpSettings {
    /// One shard's limits out of `shards`.
    pub fn per_shard(
        &self,
        shards: usize,
        max_message_bytes: usize,
    ) -> sipedge_rt::stream::StreamLimits {
        sipedge_rt::stream::StreamLimits {
            max_connections: self.max_connections.div_ceil(shards.max(1)),
            max_connections_per_ip: self.max_connections_per_ip,
            max_connection_bytes: self.max_connection_bytes,
            max_message_bytes,
            header_timeout_ms: self.header_timeout_secs.saturating_mul(1000),
            idle_timeout_ms: self.idle_timeout_secs.saturating_mul(1000),
        }
    }
}

/// Validates `[tcp]`: every count at least 1, `max_connection_bytes` at least one
/// `max_message_bytes` (a whole message must fit), timeouts at least 1 s, the header
/// timeout no longer than the idle one.
pub(crate) fn parse_tcp(
    t: &RawTcp,
    max_message_bytes: usize,
) -> Result<TcpSettings, (&'static str, String)> {
    if t.max_connections == 0 {
        return Err(("tcp.max_connections", "must be at least 1".into()));
    }
    if t.max_connections_per_ip == 0 {
        return Err(("tcp.max_connections_per_ip", "must be at least 1".into()));
    }
    if t.max_connection_bytes < max_message_bytes {
        return Err((
            "tcp.max_connection_bytes",
            format!(
                "{} is below server.max_message_bytes ({max_message_bytes}): a whole message must fit",
                t.max_connection_bytes
            ),
        ));
    }
    if t.header_timeout_secs == 0 {
        return Err(("tcp.header_timeout_secs", "must be at least 1".into()));
    }
    if t.idle_timeout_secs < t.header_timeout_secs {
        return Err((
            "tcp.idle_timeout_secs",
            format!(
                "{} is below tcp.header_timeout_secs ({})",
                t.idle_timeout_secs, t.header_timeout_secs
            ),
        ));
    }
    Ok(TcpSettings {
        max_connections: t.max_connections,
        max_connections_per_ip: t.max_connections_per_ip,
        max_connection_bytes: t.max_connection_bytes,
        header_timeout_secs: t.header_timeout_secs,
        idle_timeout_secs: t.idle_timeout_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TcpSettings, (&'static str, String)> {
        let raw: RawTcp = toml::from_str(text).expect("toml");
        parse_tcp(&raw, 65_535)
    }

    #[test]
    fn defaults_and_bad_values_name_their_key() {
        let d = parse("").expect("defaults");
        assert_eq!(d.max_connections, 100_000);
        assert_eq!(d.max_connections_per_ip, 64);
        assert_eq!(d.max_connection_bytes, 256 * 1024);
        assert_eq!((d.header_timeout_secs, d.idle_timeout_secs), (10, 3600));
        assert_eq!(d.per_shard(3, 65_535).max_connections, 33_334);
        assert_eq!(
            parse("max_connections = 0").unwrap_err().0,
            "tcp.max_connections"
        );
        assert_eq!(
            parse("max_connection_bytes = 1000").unwrap_err().0,
            "tcp.max_connection_bytes"
        );
        assert_eq!(
            parse("header_timeout_secs = 20\nidle_timeout_secs = 10")
                .unwrap_err()
                .0,
            "tcp.idle_timeout_secs"
        );
    }
}
