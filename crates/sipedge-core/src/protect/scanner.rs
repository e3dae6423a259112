//! Scanner drop (issue 17 item 3): a request whose User-Agent contains one of
//! `[protect] scanner_user_agents` (ASCII case ignored) is dropped without a reply — a reply
//! tells a scanner a SIP server is here — and its source is banned.

/// The default `[protect] scanner_user_agents`: what SIPVicious (`svmap`, `svwar`, `svcrack`:
/// `friendly-scanner`, older versions `sipvicious`), sipcli, VaxSIPUserAgent, sundayddr,
/// iWar, sip-scan/SIPScan, smap and pplsip send.
pub const DEFAULT_SCANNER_USER_AGENTS: &[&str] = &[
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "VaxSIPUserAgent",
    "sundayddr",
    "iWar",
    "sip-scan",
    "SIPScan",
    "smap",
    "pplsip",
];

/// True when `ua` contains one of `patterns` (already lowercase), ignoring ASCII case.
pub(crate) fn is_scanner(ua: &[u8], patterns: &[Vec<u8>]) -> bool {
    patterns.iter().any(|p| {
        !p.is_empty()
            && ua.len() >= p.len()
            && ua
                .windows(p.len())
                .any(|w| w.iter().zip(p).all(|(a, b)| a.to_ascii_lowercase() == *b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_ignoring_case_anywhere() {
        let p: Vec<Vec<u8>> = DEFAULT_SCANNER_USER_AGENTS
            .iter()
            .map(|s| s.to_ascii_lowercase().into_bytes())
            .collect();
        assert!(is_scanner(b"friendly-scanner", &p));
        assert!(is_scanner(b"Mozilla VAXSIPUSERAGENT/3.1", &p));
        assert!(!is_scanner(b"Linphone/5.2", &p));
        assert!(!is_scanner(b"", &p));
    }
}
