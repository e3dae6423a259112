//! `[nat]`: NAT detection and keepalive defaults → [`sipedge_core::NatConfig`].
//!
//! Per-user overrides (`nat`, `nat_ping` in `[[users]]`, auth branch) go into
//! `NatConfig::users` keyed by canonical AoR; see [`sipedge_core::NatUser`] and
//! [`parse_nat_mode`] / [`parse_ping_mode`] to read their values. SIGHUP builds them again
//! as the next generation ([`sipedge_core::NatUsers::next`]), which each shard takes
//! between turns (`Core::handle_config`, `main.rs`).

use std::collections::HashMap;

use serde::Deserialize;
use sipedge_core::{
    NatConfig, NatMode, NatUser, PingMethod, PingMode, DEFAULT_PING_FAILURES_MAX,
    DEFAULT_PING_INTERVAL_SECS, MAX_PING_FAILURES_MAX, MAX_PING_INTERVAL_SECS,
    MIN_PING_INTERVAL_SECS,
};

/// `[[users]]` `nat` / `nat_ping` → [`NatConfig::users`], keyed by canonical AoR: `sip:` and
/// `sips:` + user (lowercased unless the registrar is case-sensitive) + `@` + domain, for
/// every served domain when the user names none. Users that set neither key are left out
/// (the `[nat]` defaults apply to them). `users_file` rows count too (`place` names the row).
pub(crate) fn user_overrides<'a>(
    users: impl IntoIterator<Item = (String, &'a crate::auth_config::RawUser)>,
    domains: &[String],
    case_sensitive: bool,
) -> Result<HashMap<Vec<u8>, NatUser>, (String, String)> {
    let mut out = HashMap::new();
    for (place, u) in users {
        let (name, domain, nat, ping) = u.nat_keys();
        let key = |k: &str| format!("{place}.{k}");
        let over = NatUser {
            nat: nat
                .map(parse_nat_mode)
                .transpose()
                .map_err(|m| (key("nat"), m))?,
            ping: ping
                .map(parse_ping_mode)
                .transpose()
                .map_err(|m| (key("nat_ping"), m))?,
        };
        if over == NatUser::default() {
            continue;
        }
        let user = if case_sensitive {
            name.to_string()
        } else {
            name.to_ascii_lowercase()
        };
        let doms: Vec<String> = match domain {
            Some(d) => vec![d.trim().to_ascii_lowercase()],
            None => domains.to_vec(),
        };
        for d in doms {
            for scheme in ["sip", "sips"] {
                out.insert(format!("{scheme}:{user}@{d}").into_bytes(), over);
            }
        }
    }
    Ok(out)
}

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

    #[test]
    fn users_override_the_defaults() {
        let c = Config::parse(
            "[server]\ndomains = [\"example.com\"]\n[[accounts]]\nname = \"a\"\n[[users]]\nusername = \"Alice\"\ndomain = \"example.com\"\naccount = \"a\"\npassword = \"pw\"\nnat = \"force\"\nnat_ping = \"timeout\"\n[[users]]\nusername = \"bob\"\naccount = \"a\"\npassword = \"pw\"\n",
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let alice = sipedge_core::NatUser {
            nat: Some(sipedge_core::NatMode::Force),
            ping: Some(sipedge_core::PingMode::Timeout),
        };
        assert_eq!(c.nat.users.get(b"sip:alice@example.com"), Some(alice));
        assert_eq!(c.nat.users.get(b"sips:alice@example.com"), Some(alice));
        assert!(
            c.nat
                .users
                .keys()
                .iter()
                .all(|k| !k.windows(3).any(|w| w == b"bob")),
            "bob sets nothing: the [nat] defaults apply"
        );
    }
}
