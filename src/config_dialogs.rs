//! `[dialogs]` and the call-limit keys of `[limits]` and `[[ip_auth]]` (issue 16), kept
//! apart from `config.rs` so parallel issues merge without conflicts.

use serde::Deserialize;
use sipedge_core::dialog::{
    DialogConfig, DEFAULT_KEEPALIVE_SECS, DEFAULT_MAX_DIALOGS, DEFAULT_MAX_DURATION_SECS,
};
use sipedge_core::limits::{AtCapacity, CountMode, Limit, LimitsSpec};

type Fail = (String, String);

/// `[dialogs]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawDialogs {
    max_dialogs: usize,
    max_duration_secs: u32,
    keepalive_secs: u32,
}

impl Default for RawDialogs {
    fn default() -> Self {
        Self {
            max_dialogs: DEFAULT_MAX_DIALOGS,
            max_duration_secs: DEFAULT_MAX_DURATION_SECS,
            keepalive_secs: DEFAULT_KEEPALIVE_SECS,
        }
    }
}

/// Validates `[dialogs]`; `max_dialogs` is the whole edge's (the shell gives each shard
/// its share).
pub(crate) fn parse_dialogs(d: &RawDialogs) -> Result<DialogConfig, Fail> {
    if !(1..=100_000_000).contains(&d.max_dialogs) {
        return Err((
            "dialogs.max_dialogs".into(),
            format!("{} is outside 1..=100000000", d.max_dialogs),
        ));
    }
    if d.max_duration_secs > 7 * 86_400 {
        return Err((
            "dialogs.max_duration_secs".into(),
            format!("{} is above 604800 (a week)", d.max_duration_secs),
        ));
    }
    if d.keepalive_secs > 3600 {
        return Err((
            "dialogs.keepalive_secs".into(),
            format!("{} is outside 0..=3600 (0 = off)", d.keepalive_secs),
        ));
    }
    Ok(DialogConfig {
        max_dialogs: d.max_dialogs,
        max_duration_secs: d.max_duration_secs,
        keepalive_secs: d.keepalive_secs,
    })
}

/// The call-limit keys of `[limits]` as written (fields of `RawLimits`).
#[derive(Debug, Deserialize, Default, Clone)]
pub(crate) struct RawCallLimits {
    pub(crate) channels: Option<u32>,
    pub(crate) cps: Option<u32>,
    pub(crate) count: Option<String>,
    pub(crate) at_capacity: Option<String>,
    pub(crate) reject_code: Option<u16>,
    pub(crate) retry_after_secs: Option<u32>,
    pub(crate) redirect_to: Option<Vec<String>>,
    pub(crate) max_ip_keys: Option<usize>,
}

/// Validates the call limits; `ip_auth` are the `[[ip_auth]]` prefixes with their
/// `channels`/`cps`, in config order.
pub(crate) fn parse_call_limits(
    l: &RawCallLimits,
    ip_auth: Vec<(sipedge_core::auth::IpNet, Limit)>,
) -> Result<LimitsSpec, Fail> {
    let d = LimitsSpec::default();
    let count = match l.count.as_deref() {
        None | Some("both") => CountMode::Both,
        Some("outbound") => CountMode::Outbound,
        Some(o) => {
            return Err((
                "limits.count".into(),
                format!("`{o}` is not \"both\" or \"outbound\""),
            ))
        }
    };
    let at_capacity = match l.at_capacity.as_deref() {
        None | Some("reject") => AtCapacity::Reject,
        Some("redirect") => AtCapacity::Redirect,
        Some(o) => {
            return Err((
                "limits.at_capacity".into(),
                format!("`{o}` is not \"reject\" or \"redirect\""),
            ))
        }
    };
    let reject_code = l.reject_code.unwrap_or(d.reject_code);
    if !(400..=699).contains(&reject_code) {
        return Err((
            "limits.reject_code".into(),
            format!("{reject_code} is not a 4xx, 5xx or 6xx"),
        ));
    }
    let retry_after_secs = l.retry_after_secs.unwrap_or(d.retry_after_secs);
    if retry_after_secs > 86_400 {
        return Err((
            "limits.retry_after_secs".into(),
            format!("{retry_after_secs} is above 86400"),
        ));
    }
    let redirect_to = l.redirect_to.clone().unwrap_or_default();
    for (i, u) in redirect_to.iter().enumerate() {
        let ok = u.starts_with("sip:") || u.starts_with("sips:");
        if !ok || sipedge_msg::Uri::parse(u.as_bytes()).is_err() || u.len() > 256 {
            return Err((
                format!("limits.redirect_to[{i}]"),
                format!("`{u}` is not a sip: or sips: URI"),
            ));
        }
    }
    if at_capacity == AtCapacity::Redirect && redirect_to.is_empty() {
        return Err((
            "limits.redirect_to".into(),
            "at_capacity = \"redirect\" needs at least one URI".into(),
        ));
    }
    let max_ip_keys = l.max_ip_keys.unwrap_or(d.max_ip_keys);
    if !(1..=1 << 24).contains(&max_ip_keys) {
        return Err((
            "limits.max_ip_keys".into(),
            format!("{max_ip_keys} is outside 1..=16777216"),
        ));
    }
    Ok(LimitsSpec {
        server: Limit::new(l.channels, l.cps),
        count,
        at_capacity,
        reject_code,
        retry_after_secs,
        redirect_to,
        ip_auth,
        max_ip_keys,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn key_of(text: &str) -> (String, String) {
        let e = Config::parse(text, "t.toml")
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"));
        (e.key, e.message)
    }

    #[test]
    fn call_limit_keys_parse_and_bad_ones_are_named() {
        let c = Config::parse(
            "[limits]\nchannels = 10\ncps = 2\ncount = \"outbound\"\nat_capacity = \"redirect\"\nredirect_to = [\"sip:edge2.example.net\"]\n[dialogs]\nmax_duration_secs = 3600\n[[accounts]]\nname = \"a\"\n[[ip_auth]]\ncidr = \"10.0.0.0/8\"\naccount = \"a\"\nchannels = 3\n",
            "t.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.call_limits.server.channels, 10);
        assert_eq!(c.call_limits.ip_auth[0].1.channels, 3);
        assert_eq!(c.dialogs.max_duration_secs, 3600);
        assert_eq!(key_of("[limits]\ncount = \"x\"\n").0, "limits.count");
        assert_eq!(
            key_of("[limits]\nat_capacity = \"redirect\"\n").0,
            "limits.redirect_to"
        );
        assert_eq!(
            key_of("[limits]\nreject_code = 200\n").0,
            "limits.reject_code"
        );
        assert_eq!(
            key_of("[dialogs]\nmax_dialogs = 0\n").0,
            "dialogs.max_dialogs"
        );
    }

    #[test]
    fn users_over_their_accounts_capacity_refuse_the_config() {
        let (k, m) = key_of(
            "[[accounts]]\nname = \"acme\"\nchannels = 10\n[[users]]\nusername = \"alice\"\npassword = \"p\"\naccount = \"acme\"\nchannels = 6\n[[users]]\nusername = \"bob\"\npassword = \"p\"\naccount = \"acme\"\nchannels = 6\n",
        );
        assert_eq!(k, "accounts");
        assert!(
            m.contains("No channel capacity available for your account"),
            "{m}"
        );
        assert!(
            m.contains("acme") && m.contains("10") && m.contains("12"),
            "{m}"
        );
        assert!(m.contains("alice") && m.contains("bob"), "{m}");
    }
}
