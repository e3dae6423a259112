//! What a shard's core needs to know, already validated by the shell.

use sipedge_msg::ParseOptions;

use crate::shard::ShardId;

/// Methods the edge handles today (RFC 3261 §20.5 Allow). Grows as issues land.
pub const ALLOW: &str = "OPTIONS, ACK";
/// Bodies the edge accepts in requests it answers itself (RFC 3261 §20.1 Accept).
pub const ACCEPT: &str = "application/sdp";
/// Option tags the edge supports (RFC 3261 §20.37). None yet: registrar (`path`,
/// `outbound`) and relay add theirs.
pub const SUPPORTED: &str = "";

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
    /// Seed for everything pseudo-random (To tags); the shell draws it at start.
    pub seed: u64,
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
        }
    }
}

impl CoreConfig {
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
