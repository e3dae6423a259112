//! Whose Path the registrar keeps (`[registrar] accept_path`, issue 15 item 4).
//!
//! RFC 3327 §5.3 lets a registrar store the Path of a REGISTER and route to the binding
//! through it. A Path is only meaningful when a proxy in front of us wrote it: in a
//! REGISTER that came straight from the UA (the edge is the first hop) the Path is
//! client-supplied, and storing it would let any phone make the edge send its calls — and
//! the caller's INVITE with its SDP — to an address the phone chose (a reflection).
//! Kamailio honours Path only where the path module is configured; our default keeps a
//! Path only from a source that `[[ip_auth]]` names (a proxy we trust).
//!
//! | mode | Path stored and echoed | source |
//! | --- | --- | --- |
//! | `trusted` (default) | only when the REGISTER's source is in an `[[ip_auth]]` prefix | RFC 3327 §5.3, §7 (security: Path from an untrusted hop) |
//! | `always` | always | RFC 3327 §5.3 |
//! | `never` | never | RFC 3327 §5.3 ("MAY" store) |

/// `[registrar] accept_path`: whose Path a REGISTER may leave with its binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AcceptPath {
    /// Only from a source in an `[[ip_auth]]` prefix (a proxy in front of the edge).
    #[default]
    Trusted,
    /// From anyone (the edge sits behind a proxy that strips client Paths).
    Always,
    /// Never: Path is ignored (not stored, not echoed, not followed).
    Never,
}

impl AcceptPath {
    /// The config spelling (`"trusted"`, `"always"`, `"never"`).
    pub fn parse(s: &str) -> Option<AcceptPath> {
        match s {
            "trusted" => Some(AcceptPath::Trusted),
            "always" => Some(AcceptPath::Always),
            "never" => Some(AcceptPath::Never),
            _ => None,
        }
    }

    /// Whether a REGISTER's Path is kept (stored with the binding, echoed in the 200 OK,
    /// followed); `trusted_source` says whether its source is in an `[[ip_auth]]` prefix
    /// (asked only in `trusted` mode).
    pub(crate) fn keeps(self, trusted_source: impl FnOnce() -> bool) -> bool {
        match self {
            AcceptPath::Always => true,
            AcceptPath::Never => false,
            AcceptPath::Trusted => trusted_source(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(AcceptPath::parse("trusted"), Some(AcceptPath::Trusted));
        assert_eq!(AcceptPath::parse("always"), Some(AcceptPath::Always));
        assert_eq!(AcceptPath::parse("never"), Some(AcceptPath::Never));
        assert_eq!(AcceptPath::parse("Trusted"), None);
        assert_eq!(AcceptPath::default(), AcceptPath::Trusted);
    }

    #[test]
    fn only_trusted_mode_asks_the_source() {
        assert!(AcceptPath::Trusted.keeps(|| true));
        assert!(!AcceptPath::Trusted.keeps(|| false));
        assert!(AcceptPath::Always.keeps(|| false));
        assert!(!AcceptPath::Never.keeps(|| true));
    }
}
