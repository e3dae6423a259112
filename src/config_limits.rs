//! `[limits]`: the caps of issue 13 (every table has one), kept apart from `config.rs` so
//! the sections of parallel issues merge without conflicts.

use serde::Deserialize;
use sipedge_core::{DEFAULT_MAX_TRANSACTIONS, DEFAULT_MAX_TRANSACTION_BYTES};

/// Default `[limits] mesh_queue_messages`: messages one shard may have queued to another.
pub const DEFAULT_MESH_QUEUE_MESSAGES: usize = 16 * 1024;
/// Default `[limits] mesh_queue_bytes`: bytes one shard may have queued to another (2 MiB:
/// about three loop turns of REGISTER hand-offs, ~1024 per turn; worst case with every
/// queue full is shards² × this, reached only when every shard is stuck).
pub const DEFAULT_MESH_QUEUE_BYTES: usize = 2 << 20;
/// Smallest `[limits] mesh_queue_bytes`: two of the largest UDP messages.
pub const MIN_MESH_QUEUE_BYTES: usize = 128 << 10;

/// `[limits]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLimits {
    max_transactions: u64,
    max_transaction_bytes: u64,
    mesh_queue_messages: usize,
    mesh_queue_bytes: usize,
    /// Issue 16 call limits (src/config_dialogs.rs).
    channels: Option<u32>,
    cps: Option<u32>,
    count: Option<String>,
    at_capacity: Option<String>,
    reject_code: Option<u16>,
    retry_after_secs: Option<u32>,
    redirect_to: Option<Vec<String>>,
    max_ip_keys: Option<usize>,
}

impl RawLimits {
    /// The issue 16 keys, for `config_dialogs::parse_call_limits`.
    pub(crate) fn call_limits(&self) -> crate::config_dialogs::RawCallLimits {
        crate::config_dialogs::RawCallLimits {
            channels: self.channels,
            cps: self.cps,
            count: self.count.clone(),
            at_capacity: self.at_capacity.clone(),
            reject_code: self.reject_code,
            retry_after_secs: self.retry_after_secs,
            redirect_to: self.redirect_to.clone(),
            max_ip_keys: self.max_ip_keys,
        }
    }
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            channels: None,
            cps: None,
            count: None,
            at_capacity: None,
            reject_code: None,
            retry_after_secs: None,
            redirect_to: None,
            max_ip_keys: None,
            max_transactions: DEFAULT_MAX_TRANSACTIONS,
            max_transaction_bytes: DEFAULT_MAX_TRANSACTION_BYTES,
            mesh_queue_messages: DEFAULT_MESH_QUEUE_MESSAGES,
            mesh_queue_bytes: DEFAULT_MESH_QUEUE_BYTES,
        }
    }
}

/// The validated `[limits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Live transactions, all shards together (each shard gets its share).
    pub max_transactions: u64,
    /// Bytes held by live transactions, all shards together.
    pub max_transaction_bytes: u64,
    /// Per ordered pair of shards.
    pub mesh_queue_messages: usize,
    /// Per ordered pair of shards.
    pub mesh_queue_bytes: usize,
}

/// Validates `[limits]`.
pub(crate) fn parse_limits(l: &RawLimits) -> Result<Limits, (&'static str, String)> {
    if !(1..=100_000_000).contains(&l.max_transactions) {
        return Err((
            "limits.max_transactions",
            format!("{} is outside 1..=100000000", l.max_transactions),
        ));
    }
    if !(1 << 20..=1 << 40).contains(&l.max_transaction_bytes) {
        return Err((
            "limits.max_transaction_bytes",
            format!(
                "{} is outside 1048576..=1099511627776",
                l.max_transaction_bytes
            ),
        ));
    }
    if !(1..=1 << 20).contains(&l.mesh_queue_messages) {
        return Err((
            "limits.mesh_queue_messages",
            format!("{} is outside 1..=1048576", l.mesh_queue_messages),
        ));
    }
    if !(MIN_MESH_QUEUE_BYTES..=1 << 30).contains(&l.mesh_queue_bytes) {
        return Err((
            "limits.mesh_queue_bytes",
            format!(
                "{} is outside {MIN_MESH_QUEUE_BYTES}..=1073741824",
                l.mesh_queue_bytes
            ),
        ));
    }
    Ok(Limits {
        max_transactions: l.max_transactions,
        max_transaction_bytes: l.max_transaction_bytes,
        mesh_queue_messages: l.mesh_queue_messages,
        mesh_queue_bytes: l.mesh_queue_bytes,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn limits_keys_are_checked_and_named() {
        let c = Config::parse("", "empty").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.limits.max_transactions, super::DEFAULT_MAX_TRANSACTIONS);
        let e = Config::parse("[limits]\nmesh_queue_bytes = 10\n", "t")
            .err()
            .map(|e| e.key);
        assert_eq!(e.as_deref(), Some("limits.mesh_queue_bytes"));
        let e = Config::parse("[limits]\nmax_transactions = 0\n", "t")
            .err()
            .map(|e| e.key);
        assert_eq!(e.as_deref(), Some("limits.max_transactions"));
    }
}
