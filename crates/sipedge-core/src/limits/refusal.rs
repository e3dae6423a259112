//! What a call refused by a limit gets (issue 16, "At capacity").

use crate::refusal::Refusal;

/// Which limit refused a call: the `Warning` text and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitRefusal {
    /// `[limits] channels`.
    ServerChannels,
    /// `[limits] cps`.
    ServerCps,
    /// `[[accounts]] channels`.
    AccountChannels,
    /// `[[accounts]] cps`.
    AccountCps,
    /// `[[users]] channels`.
    UserChannels,
    /// `[[users]] cps`.
    UserCps,
    /// `[[ip_auth]] channels`, per source IP.
    IpChannels,
    /// `[[ip_auth]] cps`, per source IP.
    IpCps,
    /// `[limits] max_ip_keys` source IPs are already counted: a new one is refused.
    IpTableFull,
    /// `[dialogs] max_dialogs` calls are already tracked.
    DialogTableFull,
}

impl LimitRefusal {
    /// Every variant, in declaration order (metric label order).
    pub const ALL: &'static [LimitRefusal] = &[
        LimitRefusal::ServerChannels,
        LimitRefusal::ServerCps,
        LimitRefusal::AccountChannels,
        LimitRefusal::AccountCps,
        LimitRefusal::UserChannels,
        LimitRefusal::UserCps,
        LimitRefusal::IpChannels,
        LimitRefusal::IpCps,
        LimitRefusal::IpTableFull,
        LimitRefusal::DialogTableFull,
    ];

    /// Index into [`LimitRefusal::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl Refusal for LimitRefusal {
    /// The wording (the seeds' "Server at max cps/channels"); RFC 3261 §21.5.4:
    /// 503 is a temporary condition the client may retry after Retry-After. The code is
    /// `[limits] reject_code` on the wire; this is the default.
    fn reply(self) -> (u16, &'static [u8]) {
        (503, b"Server at max cps/channels")
    }

    fn label(self) -> &'static str {
        match self {
            LimitRefusal::ServerChannels => "server_channels",
            LimitRefusal::ServerCps => "server_cps",
            LimitRefusal::AccountChannels => "account_channels",
            LimitRefusal::AccountCps => "account_cps",
            LimitRefusal::UserChannels => "user_channels",
            LimitRefusal::UserCps => "user_cps",
            LimitRefusal::IpChannels => "ip_channels",
            LimitRefusal::IpCps => "ip_cps",
            LimitRefusal::IpTableFull => "ip_table_full",
            LimitRefusal::DialogTableFull => "dialog_table_full",
        }
    }
}
