//! `[nat]`: NAT detection and keepalive defaults → [`sipedge_core::NatConfig`].
//!
//! Per-user overrides (`nat`, `nat_ping` in `[[users]]`, auth branch) go into
//! `NatConfig::users` keyed by canonical AoR; see [`sipedge_core::NatUser`] and
//! [`parse_nat_mode`] / [`parse_ping_mode`] to read their values.

use serde::Deserialize;
use sipedge_core::{
    NatConfig, NatMode, PingMethod, PingMode, DEFAULT_PING_FAILURES_MAX,
    DEFAULT_PING_INTERVAL_SECS, MAX_PING_FAILURES_MAX, MAX_PING_INTERVAL_SECS,
    MIN_PING_INTERVAL_SECS,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawNat {
    mode: String,
    ping: String,
    ping_interval_secs: u32,
    method: String,
    ping_nated_only: bool,
    ping_failures_max: u8,
}

impl Default for RawNat {
    fn default() -> Self {
        Self {
            mode: "auto".into(),
            ping: "enabled".into(),
            ping_interval_secs: DEFAULT_PING_INTERVAL_SECS,
            method: "options".into(),
            ping_nated_only: true,
            ping_failures_max: DEFAULT_PING_FAILURES_MAX,
        }
    }
}

/// `"auto" | "force" | "disabled"` (also the per-user `nat` key).
pub fn parse_nat_mode(v: &str) -> Result<NatMode, String> {
    match v {
        "auto" => Ok(NatMode::Auto),
        "force" => Ok(NatMode::Force),
        "disabled" => Ok(NatMode::Disabled),
        other => Err(format!(
            "`{other}` is not one of \"auto\", \"force\", \"disabled\""
        )),
    }
}

/// `"disabled" | "enabled" | "timeout"` (also the per-user `nat_ping` key).
pub fn parse_ping_mode(v: &str) -> Result<PingMode, String> {
    match v {
        "disabled" => Ok(PingMode::Disabled),
        "enabled" => Ok(PingMode::Enabled),
        "timeout" => Ok(PingMode::Timeout),
        other => Err(format!(
            "`{other}` is not one of \"disabled\", \"enabled\", \"timeout\""
        )),
    }
}

impl RawNat {
    pub(crate) fn validate(&self) -> Result<NatConfig, (String, String)> {
        let e = |k: &str, m: String| (format!("nat.{k}"), m);
        let mode = parse_nat_mode(&self.mode).map_err(|m| e("mode", m))?;
        let ping = parse_ping_mode(&self.ping).map_err(|m| e("ping", m))?;
        let method = match self.method.as_str() {
            "options" => PingMethod::Options,
            "crlf" => PingMethod::Crlf,
            other => {
                return Err(e(
                    "method",
                    format!("`{other}` is not one of \"options\", \"crlf\""),
                ))
            }
        };
        if method == PingMethod::Crlf && ping == PingMode::Timeout {
            return Err(e(
                "ping",
                "\"timeout\" needs method = \"options\": nothing answers a CRLF keepalive over UDP"
                    .into(),
            ));
        }
        if !(MIN_PING_INTERVAL_SECS..=MAX_PING_INTERVAL_SECS).contains(&self.ping_interval_secs) {
            return Err(e(
                "ping_interval_secs",
                format!(
                    "{} is outside {MIN_PING_INTERVAL_SECS}..={MAX_PING_INTERVAL_SECS}",
                    self.ping_interval_secs
                ),
            ));
        }
        if !(1..=MAX_PING_FAILURES_MAX).contains(&self.ping_failures_max) {
            return Err(e(
                "ping_failures_max",
                format!(
                    "{} is outside 1..={MAX_PING_FAILURES_MAX}",
                    self.ping_failures_max
                ),
            ));
        }
        Ok(NatConfig {
            mode,
            ping,
            ping_interval_secs: self.ping_interval_secs,
            method,
            ping_nated_only: self.ping_nated_only,
            ping_failures_max: self.ping_failures_max,
            ..NatConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn nat_keys() {
        let c = Config::parse(
            "[nat]\nmode = \"force\"\nping = \"timeout\"\nping_interval_secs = 1\nping_nated_only = false\nping_failures_max = 2\n",
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.nat.mode, sipedge_core::NatMode::Force);
        assert_eq!(c.nat.ping, sipedge_core::PingMode::Timeout);
        assert_eq!(
            (
                c.nat.ping_interval_secs,
                c.nat.ping_nated_only,
                c.nat.ping_failures_max
            ),
            (1, false, 2)
        );
        assert_eq!(
            c.nat,
            sipedge_core::NatConfig {
                mode: sipedge_core::NatMode::Force,
                ping: sipedge_core::PingMode::Timeout,
                ping_interval_secs: 1,
                ping_nated_only: false,
                ping_failures_max: 2,
                ..Default::default()
            }
        );
        for (text, key) in [
            ("[nat]\nping_interval_secs = 0\n", "nat.ping_interval_secs"),
            ("[nat]\nping = \"often\"\n", "nat.ping"),
            ("[nat]\nmethod = \"stun\"\n", "nat.method"),
            ("[nat]\nmethod = \"crlf\"\nping = \"timeout\"\n", "nat.ping"),
            ("[nat]\nping_failures_max = 8\n", "nat.ping_failures_max"),
            ("[nat]\nmode = \"maybe\"\n", "nat.mode"),
        ] {
            match Config::parse(text, "t") {
                Ok(_) => panic!("accepted {text}"),
                Err(e) => assert_eq!(e.key, key, "{text}"),
            }
        }
        let d = Config::parse("", "t").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.nat, sipedge_core::NatConfig::default());
    }
}
