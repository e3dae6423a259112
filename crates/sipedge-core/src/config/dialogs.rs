//! `[dialogs]`: what a shard's core is told about tracked calls (issue 16). Declared here,
//! beside the rest of [`crate::CoreConfig`]; the rules that read them are in `dialog`.

/// Default `[dialogs] max_dialogs`: calls tracked at once, all shards together. A dialog
/// with keepalives on costs ≤ 400 bytes (`dialog_entry_fits_the_budget`; measured 323 at
/// 1.1M and 340 at the table's worst load, `examples/relay.rs dialogs`), so 1M is about
/// 330 MiB.
pub const DEFAULT_MAX_DIALOGS: usize = 1_000_000;
/// Default `[dialogs] max_duration_secs`: 0 = no maximum.
pub const DEFAULT_MAX_DURATION_SECS: u32 = 0;
/// Default `[dialogs] keepalive_secs` (the seeds' "SIP ping"; `dialog::keepalive`); 0 = off.
pub const DEFAULT_KEEPALIVE_SECS: u32 = 30;

/// `[dialogs]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialogConfig {
    /// Calls this shard tracks at most (its share of `[dialogs] max_dialogs`). A call that
    /// would pass it is refused (`LimitRefusal::DialogTableFull`).
    pub max_dialogs: usize,
    /// A confirmed call is forgotten (its channels released) after this long; 0 = never.
    pub max_duration_secs: u32,
    /// In-dialog OPTIONS to both ends every this many seconds (`dialog::keepalive`); 0 = off.
    pub keepalive_secs: u32,
}

impl Default for DialogConfig {
    fn default() -> Self {
        Self {
            max_dialogs: DEFAULT_MAX_DIALOGS,
            max_duration_secs: DEFAULT_MAX_DURATION_SECS,
            keepalive_secs: DEFAULT_KEEPALIVE_SECS,
        }
    }
}
