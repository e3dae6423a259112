//! Logs (issue 18): `[log] format = "text" | "json"` on stderr (journald takes it from
//! there), ANSI colour only when stderr is a terminal (and `NO_COLOR` is unset), and a rate
//! limit on per-packet lines so that a flood of bad datagrams never becomes a log flood.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::Context as _;

use crate::config_admin::{LogFormat, LogSetup};

/// `[log] max_per_second`, set once by [`init`] (0: unlimited).
static MAX_PER_SECOND: AtomicU32 = AtomicU32::new(crate::config_admin::DEFAULT_LOG_MAX_PER_SECOND);

/// The process's clock origin for the rate limiter.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Installs the global subscriber. `RUST_LOG` overrides `[log] level`.
pub fn init(setup: &LogSetup) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&setup.level))
        .with_context(|| format!("key `log.level`: `{}` is not a valid filter", setup.level))?;
    MAX_PER_SECOND.store(setup.max_per_second, Ordering::Relaxed);
    let _ = epoch();
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match setup.format {
        LogFormat::Text => builder.init(),
        // One JSON object per line: `timestamp`, `level`, `target`, `fields` (the event's
        // fields with `message`), `span`/`spans` (the shard id).
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    Ok(())
}

/// The rate limit of one kind of log line: at most `[log] max_per_second` lines in each
/// one-second window; the first line let through in a later window carries how many were
/// suppressed since (`suppressed = K`), so nothing disappears without a trace.
#[derive(Debug)]
pub struct Limiter {
    /// The window (whole seconds since the epoch) and the lines let through in it, packed
    /// `window << 32 | count`.
    state: AtomicU64,
    /// Lines suppressed since the last one let through.
    suppressed: AtomicU64,
}

impl Limiter {
    /// A limiter (for a `static`).
    pub const fn new() -> Limiter {
        Limiter {
            state: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(suppressed)` when a line may be written now, `None` when it is suppressed.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(
            epoch().elapsed().as_secs(),
            MAX_PER_SECOND.load(Ordering::Relaxed),
        )
    }

    fn allow_at(&self, second: u64, max: u32) -> Option<u64> {
        if max == 0 {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        let window = second & 0xffff_ffff;
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            let (w, n) = (cur >> 32, cur & 0xffff_ffff);
            let next = if w != window {
                window << 32 | 1
            } else if n < u64::from(max) {
                cur + 1
            } else {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                return None;
            };
            match self
                .state
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(self.suppressed.swap(0, Ordering::Relaxed)),
                Err(seen) => cur = seen,
            }
        }
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::new()
    }
}

/// A `tracing` event limited per call site by [`Limiter`]:
/// `limited!(warn, target: "sip::parse", %remote, "malformed message")`. The line carries
/// `suppressed = K` (lines of this kind dropped since the last one written). Nothing is
/// counted while the level is filtered out, so a flood costs one filter check per packet.
macro_rules! limited {
    ($level:ident, target: $t:expr, $($rest:tt)+) => {{
        static LIMIT: $crate::logging::Limiter = $crate::logging::Limiter::new();
        if tracing::enabled!(target: $t, $crate::logging::level!($level)) {
            if let Some(suppressed) = LIMIT.allow() {
                tracing::$level!(target: $t, suppressed, $($rest)+);
            }
        }
    }};
}

/// Helper of [`limited!`]: a level's name to its [`tracing::Level`].
macro_rules! level {
    (trace) => {
        tracing::Level::TRACE
    };
    (debug) => {
        tracing::Level::DEBUG
    };
    (info) => {
        tracing::Level::INFO
    };
    (warn) => {
        tracing::Level::WARN
    };
    (error) => {
        tracing::Level::ERROR
    };
}
pub(crate) use level;
pub(crate) use limited;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_cut_to_the_limit_and_the_cut_is_counted() {
        let l = Limiter::new();
        let passed = (0..1000).filter(|_| l.allow_at(5, 10).is_some()).count();
        assert_eq!(passed, 10);
        // The next second: the first line says how many were dropped.
        assert_eq!(l.allow_at(6, 10), Some(990));
        assert_eq!(l.allow_at(6, 10), Some(0));
    }

    #[test]
    fn zero_means_unlimited() {
        let l = Limiter::new();
        assert!((0..1000).all(|_| l.allow_at(1, 0).is_some()));
    }
}
