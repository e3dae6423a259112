//! `[sip]` and `[proxy]`: the relay's part of the configuration (issue 7), kept apart from
//! `config.rs` so the sections of parallel issues merge without conflicts.

use serde::Deserialize;
use sipedge_core::{SipTimers, DEFAULT_T1_MS, DEFAULT_T2_MS, DEFAULT_T4_MS};

/// `[sip]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSip {
    t1_ms: u64,
    t2_ms: u64,
    t4_ms: u64,
}

impl Default for RawSip {
    fn default() -> Self {
        Self {
            t1_ms: DEFAULT_T1_MS,
            t2_ms: DEFAULT_T2_MS,
            t4_ms: DEFAULT_T4_MS,
        }
    }
}

/// `[proxy]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawProxy {
    record_route: bool,
    allow_outbound: bool,
    udp_mtu: usize,
}

impl Default for RawProxy {
    fn default() -> Self {
        Self {
            record_route: true,
            allow_outbound: false,
            udp_mtu: sipedge_core::DEFAULT_UDP_MTU,
        }
    }
}

/// The validated `[proxy]` (the advertised addresses come from `[server] listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxySettings {
    /// `[proxy] record_route`.
    pub record_route: bool,
    /// `[proxy] allow_outbound`.
    pub allow_outbound: bool,
    /// `[proxy] udp_mtu` (RFC 3261 §18.1.1; 0 = off).
    pub udp_mtu: usize,
}

/// Validates `[sip]`: T1 in 10..=10000 ms (the wheel ticks every 10 ms), T2 ≥ T1 and at
/// most 60 s, T4 in 1000..=60000 ms.
pub(crate) fn parse_sip(s: &RawSip) -> Result<SipTimers, (&'static str, String)> {
    if !(10..=10_000).contains(&s.t1_ms) {
        return Err(("sip.t1_ms", format!("{} is outside 10..=10000", s.t1_ms)));
    }
    if !(s.t1_ms..=60_000).contains(&s.t2_ms) {
        return Err((
            "sip.t2_ms",
            format!("{} is outside t1_ms..=60000 ({}..=60000)", s.t2_ms, s.t1_ms),
        ));
    }
    if !(1_000..=60_000).contains(&s.t4_ms) {
        return Err(("sip.t4_ms", format!("{} is outside 1000..=60000", s.t4_ms)));
    }
    Ok(SipTimers {
        t1_ms: s.t1_ms,
        t2_ms: s.t2_ms,
        t4_ms: s.t4_ms,
    })
}

pub(crate) fn parse_proxy(p: &RawProxy) -> ProxySettings {
    ProxySettings {
        record_route: p.record_route,
        allow_outbound: p.allow_outbound,
        udp_mtu: p.udp_mtu,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn sip_and_proxy_keys() {
        let c = Config::parse(
            "[sip]\nt1_ms = 250\nt2_ms = 2000\nt4_ms = 2500\n[proxy]\nrecord_route = false\nallow_outbound = true\n",
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.sip.t1_ms, c.sip.t2_ms, c.sip.t4_ms), (250, 2000, 2500));
        assert!(!c.proxy.record_route && c.proxy.allow_outbound);
        let e = Config::parse("[sip]\nt1_ms = 5000\nt2_ms = 4000\n", "t")
            .err()
            .unwrap_or_else(|| panic!("T2 below T1 must be refused"));
        assert_eq!(e.key, "sip.t2_ms");
    }

    #[test]
    fn server_secret_key() {
        let ok = Config::parse(
            &format!("[server]\nsecret = \"{}\"\n", "0f".repeat(32)),
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.secret.map(|s| s.0), Some([0x0f; 32]));
        let none = Config::parse("", "t").unwrap_or_else(|e| panic!("{e}"));
        assert!(none.secret.is_none(), "absent: generated or kept by main");
        for bad in ["abc", "0f0f", &"g".repeat(64)] {
            let e = Config::parse(&format!("[server]\nsecret = \"{bad}\"\n"), "t")
                .err()
                .unwrap_or_else(|| panic!("{bad} must be refused"));
            assert_eq!(e.key, "server.secret");
        }
    }
}
