//! `[protect]` and `[overload]` (issue 17), kept apart from `config.rs` so the sections of
//! parallel issues merge without conflicts.

use serde::Deserialize;
use sipedge_core::auth::IpNet;
use sipedge_core::ProtectConfig;

/// `[protect]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawProtect {
    max_requests_per_sec: u32,
    ban_secs: u32,
    scanner_user_agents: Vec<String>,
    auth_failures_max: u32,
    auth_failures_window_secs: u32,
    user_auth_failures_max: u32,
    trusted: Vec<String>,
    max_sources: usize,
    max_users: usize,
    max_bans: usize,
    kernel_filter: bool,
}

impl Default for RawProtect {
    fn default() -> Self {
        let d = ProtectConfig::recommended();
        Self {
            max_requests_per_sec: d.max_requests_per_sec,
            ban_secs: d.ban_secs,
            scanner_user_agents: sipedge_core::DEFAULT_SCANNER_USER_AGENTS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            auth_failures_max: d.auth_failures_max,
            auth_failures_window_secs: d.auth_failures_window_secs,
            user_auth_failures_max: d.user_auth_failures_max,
            trusted: DEFAULT_TRUSTED.iter().map(|s| s.to_string()).collect(),
            max_sources: d.max_sources,
            max_users: d.max_users,
            max_bans: d.max_bans,
            kernel_filter: true,
        }
    }
}

/// Default `[protect] trusted`: loopback (local tools, load generators on the box).
pub const DEFAULT_TRUSTED: &[&str] = &["127.0.0.0/8", "::1/128"];

/// Default `[overload] kernel_shed_queue_percent`: the kernel shed controller's target
/// receive-queue fill, percent of SO_RCVBUF (1 % of the default 16 MiB ≈ 100 queued
/// datagrams; the engine's 1024 receive buffers hold the shard's backlog beyond it).
pub const DEFAULT_KERNEL_SHED_QUEUE_PERCENT: u32 = 1;

/// Default `[overload] kernel_shed_wait_ms`: the kernel shed controller's target for the
/// receive queue's sojourn time (the wait of the youngest datagram the shard took off the
/// queue, lowest over a 20 ms window: the standing queue, RFC 8289 §4.2's measure), ms; 0 =
/// the fill target alone. A fifth of `max_queue_delay_ms`: long enough that a shard that
/// runs in bursts (a CPU quota's 1 ms in 10) finds work after every pause, short enough
/// that nothing it admits reaches the stale drop.
pub const DEFAULT_KERNEL_SHED_WAIT_MS: u32 = 20;

/// Default `[overload] max_queue_delay_ms`: a shard whose last read datagram waited longer
/// than this in the receive queue drops new requests unread until the queue is short again
/// (the stale drop, `overload.rs`); 0 = off. A fifth of RFC 3261's T1 (500 ms, when a UDP
/// client first retransmits), so what is admitted is answered well before that.
pub const DEFAULT_MAX_QUEUE_DELAY_MS: u32 = 100;

/// `[overload]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawOverload {
    enabled: bool,
    shed_new_turn_ms: u32,
    shed_refresh_turn_ms: u32,
    shed_new_queue_percent: u32,
    shed_refresh_queue_percent: u32,
    shed_on_kernel_drops: bool,
    kernel_shed_queue_percent: u32,
    kernel_shed_wait_ms: u32,
    max_queue_delay_ms: u32,
    calm_ms: u32,
    retry_after_min_secs: u32,
    retry_after_max_secs: u32,
}

impl Default for RawOverload {
    fn default() -> Self {
        let o = OverloadSettings::default();
        Self {
            enabled: o.enabled,
            shed_new_turn_ms: o.shed_new_turn_ms,
            shed_refresh_turn_ms: o.shed_refresh_turn_ms,
            shed_new_queue_percent: o.shed_new_queue_percent,
            shed_refresh_queue_percent: o.shed_refresh_queue_percent,
            shed_on_kernel_drops: o.shed_on_kernel_drops,
            kernel_shed_queue_percent: o.kernel_shed_queue_percent,
            kernel_shed_wait_ms: o.kernel_shed_wait_ms,
            max_queue_delay_ms: o.max_queue_delay_ms,
            calm_ms: o.calm_ms,
            retry_after_min_secs: sipedge_core::DEFAULT_RETRY_AFTER_MIN_SECS,
            retry_after_max_secs: sipedge_core::DEFAULT_RETRY_AFTER_MAX_SECS,
        }
    }
}

/// The shell's part of `[overload]`: when a shard's pressure level rises (`overload.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverloadSettings {
    /// Measure and shed at all.
    pub enabled: bool,
    /// A loop turn that cost at least this much CPU time (the shard thread's): level 1
    /// (shed new requests).
    pub shed_new_turn_ms: u32,
    /// A loop turn that cost at least this much CPU time: level 2 (shed refreshes too).
    pub shed_refresh_turn_ms: u32,
    /// Receive queue at least this full (% of SO_RCVBUF): level 1.
    pub shed_new_queue_percent: u32,
    /// Receive queue at least this full: level 2.
    pub shed_refresh_queue_percent: u32,
    /// The kernel dropped datagrams since the last sample: level 1.
    pub shed_on_kernel_drops: bool,
    /// The kernel filter's shed share of OPTIONS/REGISTER holds the receive queue near this
    /// fill (% of SO_RCVBUF); it starts when the queue passes it or the level rises and
    /// runs until all pass again (`overload.rs`).
    pub kernel_shed_queue_percent: u32,
    /// The kernel shed controller's target sojourn in the receive queue, ms (0: the fill
    /// target alone); below `max_queue_delay_ms` (`overload.rs`).
    pub kernel_shed_wait_ms: u32,
    /// The stale drop's bound on a datagram's wait in the receive queue, ms (0: off).
    pub max_queue_delay_ms: u32,
    /// The level steps down once the measures stayed below it this long.
    pub calm_ms: u32,
}

impl Default for OverloadSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            shed_new_turn_ms: 50,
            shed_refresh_turn_ms: 200,
            shed_new_queue_percent: 20,
            shed_refresh_queue_percent: 50,
            shed_on_kernel_drops: true,
            kernel_shed_queue_percent: DEFAULT_KERNEL_SHED_QUEUE_PERCENT,
            kernel_shed_wait_ms: DEFAULT_KERNEL_SHED_WAIT_MS,
            max_queue_delay_ms: DEFAULT_MAX_QUEUE_DELAY_MS,
            calm_ms: 500,
        }
    }
}

/// The validated `[protect]` and `[overload]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// The core's rules (per shard).
    pub core: ProtectConfig,
    /// The shell's pressure thresholds.
    pub overload: OverloadSettings,
    /// `[protect] kernel_filter`: drop banned sources in the kernel (eBPF socket filter).
    pub kernel_filter: bool,
}

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &'static str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, (String, String)> {
    if v < lo || v > hi {
        return Err((key.into(), format!("{v} is outside {lo}..={hi}")));
    }
    Ok(v)
}

/// Validates `[protect]` and `[overload]`.
pub(crate) fn parse(p: &RawProtect, o: &RawOverload) -> Result<Protection, (String, String)> {
    let mut trusted: Vec<IpNet> = Vec::new();
    for (i, t) in p.trusted.iter().enumerate() {
        let net = t
            .trim()
            .parse::<IpNet>()
            .or_else(|_| t.trim().parse::<std::net::IpAddr>().map(IpNet::from))
            .map_err(|_| {
                (
                    format!("protect.trusted[{i}]"),
                    format!("`{t}` is not a CIDR prefix or address"),
                )
            })?;
        trusted.push(net.trunc());
    }
    let mut uas = Vec::new();
    for (i, ua) in p.scanner_user_agents.iter().enumerate() {
        if ua.trim().is_empty() {
            return Err((
                format!("protect.scanner_user_agents[{i}]"),
                "must not be empty".into(),
            ));
        }
        uas.push(ua.trim().to_ascii_lowercase().into_bytes());
    }
    let min = o.retry_after_min_secs;
    let max = o.retry_after_max_secs;
    range("overload.retry_after_min_secs", min, 1, 3600)?;
    if max < min || max > 3600 {
        return Err((
            "overload.retry_after_max_secs".into(),
            format!("{max} must be within retry_after_min_secs ({min})..=3600"),
        ));
    }
    let core = ProtectConfig {
        max_requests_per_sec: range(
            "protect.max_requests_per_sec",
            p.max_requests_per_sec,
            0,
            1_000_000,
        )?,
        ban_secs: range("protect.ban_secs", p.ban_secs, 1, 31_536_000)?,
        scanner_user_agents: uas,
        auth_failures_max: range(
            "protect.auth_failures_max",
            p.auth_failures_max,
            0,
            1_000_000,
        )?,
        auth_failures_window_secs: range(
            "protect.auth_failures_window_secs",
            p.auth_failures_window_secs,
            1,
            86_400,
        )?,
        user_auth_failures_max: range(
            "protect.user_auth_failures_max",
            p.user_auth_failures_max,
            0,
            1_000_000,
        )?,
        trusted,
        max_sources: range("protect.max_sources", p.max_sources, 64, 1 << 24)?,
        max_users: range("protect.max_users", p.max_users, 64, 1 << 24)?,
        max_bans: range("protect.max_bans", p.max_bans, 16, 1 << 24)?,
        retry_after_secs: (min, max),
    };
    let overload = OverloadSettings {
        enabled: o.enabled,
        shed_new_turn_ms: range("overload.shed_new_turn_ms", o.shed_new_turn_ms, 1, 60_000)?,
        shed_refresh_turn_ms: range(
            "overload.shed_refresh_turn_ms",
            o.shed_refresh_turn_ms,
            o.shed_new_turn_ms,
            60_000,
        )?,
        shed_new_queue_percent: range(
            "overload.shed_new_queue_percent",
            o.shed_new_queue_percent,
            1,
            100,
        )?,
        shed_refresh_queue_percent: range(
            "overload.shed_refresh_queue_percent",
            o.shed_refresh_queue_percent,
            o.shed_new_queue_percent,
            100,
        )?,
        shed_on_kernel_drops: o.shed_on_kernel_drops,
        kernel_shed_queue_percent: range(
            "overload.kernel_shed_queue_percent",
            o.kernel_shed_queue_percent,
            1,
            100,
        )?,
        max_queue_delay_ms: range(
            "overload.max_queue_delay_ms",
            o.max_queue_delay_ms,
            0,
            60_000,
        )?,
        // Below the stale drop's bound: a target past it would hold the queue where the
        // stale drop discards what was admitted.
        kernel_shed_wait_ms: range(
            "overload.kernel_shed_wait_ms",
            o.kernel_shed_wait_ms,
            0,
            match o.max_queue_delay_ms {
                0 => 60_000,
                m => m - 1,
            },
        )?,
        calm_ms: range("overload.calm_ms", o.calm_ms, 0, 600_000)?,
    };
    Ok(Protection {
        core,
        overload,
        kernel_filter: p.kernel_filter,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn defaults_and_named_errors() {
        let c = Config::parse("", "empty").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.protection.core.max_requests_per_sec,
            sipedge_core::DEFAULT_MAX_REQUESTS_PER_SEC
        );
        assert_eq!(c.protection.core.trusted.len(), 2);
        assert!(c
            .protection
            .core
            .scanner_user_agents
            .contains(&b"friendly-scanner".to_vec()));
        let key = |t: &str| Config::parse(t, "t").err().map(|e| e.key);
        assert_eq!(
            key("[protect]\ntrusted = [\"nope\"]\n").as_deref(),
            Some("protect.trusted[0]")
        );
        assert_eq!(
            key("[protect]\nban_secs = 0\n").as_deref(),
            Some("protect.ban_secs")
        );
        assert_eq!(
            key("[overload]\nretry_after_min_secs = 10\nretry_after_max_secs = 5\n").as_deref(),
            Some("overload.retry_after_max_secs")
        );
        let c = Config::parse(
            "[protect]\ntrusted = []\nscanner_user_agents = [\"Evil\"]\n",
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(c.protection.core.trusted.is_empty());
        assert_eq!(c.protection.core.scanner_user_agents, [b"evil".to_vec()]);
    }
}
