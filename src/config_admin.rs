//! `[admin]` and `[log]` (issue 18): the admin API's address and bearer token, the log
//! filter, format and rate limit.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::config::DEFAULT_ADMIN_LISTEN;

/// Default `[log] max_per_second`: lines per second per kind of per-packet warning.
pub const DEFAULT_LOG_MAX_PER_SECOND: u32 = 10;
/// Shortest `[admin] token` accepted (a bearer token an attacker cannot guess).
pub const MIN_TOKEN_LEN: usize = 16;

/// `[admin]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    listen: String,
    token: String,
    read_token: String,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            listen: DEFAULT_ADMIN_LISTEN.into(),
            token: String::new(),
            read_token: String::new(),
        }
    }
}

/// `[log]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub(crate) level: String,
    format: String,
    max_per_second: u32,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: "text".into(),
            max_per_second: DEFAULT_LOG_MAX_PER_SECOND,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, one line per event.
    Text,
    /// One JSON object per line (for journald / a log pipeline).
    Json,
}

/// `[log]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSetup {
    /// `level`: the tracing filter.
    pub level: String,
    /// `format`.
    pub format: LogFormat,
    /// `max_per_second`: per-packet warnings per second per kind (0: no limit).
    pub max_per_second: u32,
}

/// `[admin]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSetup {
    /// `listen`.
    pub listen: SocketAddr,
    /// `token`: the bearer token every `/api/v1` request must carry (`None`: no token,
    /// allowed only on a loopback `listen`).
    pub token: Option<String>,
    /// `read_token`: a second token good for `GET` requests only (`None`: none).
    pub read_token: Option<String>,
}

/// Validates `[admin]`: `(key, message)` on error.
pub fn parse_admin(raw: &RawAdmin) -> Result<AdminSetup, (&'static str, String)> {
    let listen: SocketAddr = raw.listen.parse().map_err(|_| {
        (
            "admin.listen",
            format!("`{}` is not an ip:port address", raw.listen),
        )
    })?;
    let token = parse_token("admin.token", &raw.token)?;
    let read_token = parse_token("admin.read_token", &raw.read_token)?;
    if read_token.is_some() && (token.is_none() || read_token == token) {
        return Err((
            "admin.read_token",
            "needs a different `admin.token` (the token for changes)".into(),
        ));
    }
    if token.is_none() && !listen.ip().is_loopback() {
        return Err((
            "admin.token",
            format!(
                "required: `admin.listen` = {listen} is not a loopback address, and the admin API can delete registrations"
            ),
        ));
    }
    Ok(AdminSetup {
        listen,
        token,
        read_token,
    })
}

/// A bearer token as configured: `None` when empty.
fn parse_token(key: &'static str, raw: &str) -> Result<Option<String>, (&'static str, String)> {
    match raw.trim() {
        "" => Ok(None),
        t if t.len() < MIN_TOKEN_LEN => {
            Err((key, format!("must be at least {MIN_TOKEN_LEN} characters")))
        }
        t if !t.bytes().all(|b| b.is_ascii_graphic()) => {
            Err((key, "must be printable ASCII without spaces".into()))
        }
        t => Ok(Some(t.to_string())),
    }
}

/// Validates `[log]`: `(key, message)` on error.
pub fn parse_log(raw: &RawLog) -> Result<LogSetup, (&'static str, String)> {
    if raw.level.trim().is_empty() {
        return Err(("log.level", "must not be empty".into()));
    }
    let format = match raw.format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err((
                "log.format",
                format!("`{other}` is not one of \"text\", \"json\""),
            ))
        }
    };
    Ok(LogSetup {
        level: raw.level.clone(),
        format,
        max_per_second: raw.max_per_second,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(listen: &str, token: &str) -> Result<AdminSetup, (&'static str, String)> {
        parse_admin(&RawAdmin {
            listen: listen.into(),
            token: token.into(),
            read_token: String::new(),
        })
    }

    #[test]
    fn a_read_token_needs_a_write_token() {
        let raw = |token: &str, read: &str| RawAdmin {
            listen: "127.0.0.1:9065".into(),
            token: token.into(),
            read_token: read.into(),
        };
        let t = "0123456789abcdef";
        let r = "fedcba9876543210";
        assert_eq!(parse_admin(&raw("", r)).unwrap_err().0, "admin.read_token");
        assert_eq!(parse_admin(&raw(t, t)).unwrap_err().0, "admin.read_token");
        assert_eq!(
            parse_admin(&raw(t, r)).unwrap().read_token.as_deref(),
            Some(r)
        );
    }

    #[test]
    fn a_public_admin_listen_needs_a_token() {
        assert_eq!(admin("0.0.0.0:9065", "").unwrap_err().0, "admin.token");
        assert_eq!(admin("192.0.2.1:9065", "").unwrap_err().0, "admin.token");
        assert!(admin("0.0.0.0:9065", "0123456789abcdef").is_ok());
        assert!(admin("127.0.0.1:9065", "").is_ok());
        assert!(admin("[::1]:9065", "").is_ok());
        assert_eq!(
            admin("127.0.0.1:9065", "short").unwrap_err().0,
            "admin.token"
        );
    }

    #[test]
    fn log_format_is_text_or_json() {
        let raw = |f: &str| RawLog {
            format: f.into(),
            ..RawLog::default()
        };
        assert_eq!(parse_log(&raw("json")).unwrap().format, LogFormat::Json);
        assert_eq!(parse_log(&raw("text")).unwrap().format, LogFormat::Text);
        assert_eq!(parse_log(&raw("xml")).unwrap_err().0, "log.format");
    }
}
