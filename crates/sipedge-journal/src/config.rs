//! `[registrar.persistence]`: the raw TOML shape (serde) and its validation into a
//! [`PersistenceConfig`]. The binary's config embeds [`RawPersistence`] as the `persistence`
//! field of its `[registrar]` table and maps [`PersistenceConfigError::key`] under
//! `registrar.persistence.`.
//!
//! ```toml
//! [registrar]
//! persistence = false            # memory-only (also: `path = ""`)
//!
//! [registrar.persistence]        # or a table:
//! path = "var/sipedge"           # directory of the journals (the default; "" = memory-only)
//! sync = "batch"                 # "every" | "batch"
//! batch_changes = 1000
//! batch_ms = 100
//! snapshot_min_bytes = 67108864
//! ```

use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::journal::{
    JournalOptions, SyncPolicy, DEFAULT_BATCH_CHANGES, DEFAULT_BATCH_MS, DEFAULT_SNAPSHOT_MIN_BYTES,
};

/// The directory `persistence = true` uses.
pub const DEFAULT_PATH: &str = "var/sipedge";
/// Default `sync`.
pub const DEFAULT_SYNC: &str = "batch";
/// Largest `batch_changes` accepted.
pub const MAX_BATCH_CHANGES: u64 = 1_000_000;
/// Largest `batch_ms` accepted, milliseconds (one minute).
pub const MAX_BATCH_MS: u64 = 60_000;
/// Smallest `snapshot_min_bytes` accepted (1 MiB), so snapshots cannot run back to back.
pub const MIN_SNAPSHOT_MIN_BYTES: u64 = 1 << 20;

/// `[registrar] persistence` as written: absent, a boolean, or a table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RawPersistence {
    /// The key is absent: durable, with every default (the embedded default config).
    #[default]
    Absent,
    /// `persistence = false` (memory-only) or `true` (the defaults, at [`DEFAULT_PATH`]).
    Flag(bool),
    /// `[registrar.persistence]`.
    Table(RawPersistenceTable),
}

/// The keys of `[registrar.persistence]`; unknown keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPersistenceTable {
    /// Directory of the journals; unset = [`DEFAULT_PATH`], empty = memory-only.
    pub path: Option<String>,
    /// `"every"` or `"batch"`.
    pub sync: Option<String>,
    /// Batch size that forces a sync, records.
    pub batch_changes: Option<u64>,
    /// Batch age that forces a sync, milliseconds.
    pub batch_ms: Option<u64>,
    /// Journal growth before a snapshot, bytes.
    pub snapshot_min_bytes: Option<u64>,
}

impl<'de> Deserialize<'de> for RawPersistence {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPersistence;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`false`, `true` or a [registrar.persistence] table")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(RawPersistence::Flag(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawPersistenceTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawPersistence::Table)
            }
        }
        d.deserialize_any(V)
    }
}

/// Validated persistence settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistenceConfig {
    /// Root directory of the journals (created at start if missing).
    pub path: PathBuf,
    /// Journal options for every shard.
    pub options: JournalOptions,
}

/// A bad `[registrar.persistence]` value: the key (relative to the table) and the fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct PersistenceConfigError {
    /// `path`, `sync`, `batch_changes`, `batch_ms` or `snapshot_min_bytes`.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

impl RawPersistence {
    /// Validates: `Ok(None)` means memory-only.
    pub fn validate(&self) -> Result<Option<PersistenceConfig>, PersistenceConfigError> {
        let mut table = match self {
            Self::Flag(false) => return Ok(None),
            Self::Absent | Self::Flag(true) => RawPersistenceTable::default(),
            Self::Table(t) => t.clone(),
        };
        // Durable by default (the embedded default config): a missing `path` is the default
        // directory; only `persistence = false` or `path = ""` run memory-only.
        if table.path.is_none() {
            table.path = Some(DEFAULT_PATH.into());
        }
        let err = |key, message: String| PersistenceConfigError { key, message };
        let range = |key, v: Option<u64>, default: u64, lo: u64, hi: u64| {
            let v = v.unwrap_or(default);
            if (lo..=hi).contains(&v) {
                Ok(v)
            } else {
                Err(err(key, format!("{v} is outside {lo}..={hi}")))
            }
        };
        let changes = range(
            "batch_changes",
            table.batch_changes,
            u64::from(DEFAULT_BATCH_CHANGES),
            1,
            MAX_BATCH_CHANGES,
        )?;
        let ms = range(
            "batch_ms",
            table.batch_ms,
            DEFAULT_BATCH_MS,
            1,
            MAX_BATCH_MS,
        )?;
        let snapshot_min_bytes = range(
            "snapshot_min_bytes",
            table.snapshot_min_bytes,
            DEFAULT_SNAPSHOT_MIN_BYTES,
            MIN_SNAPSHOT_MIN_BYTES,
            1 << 40,
        )?;
        let policy = match table.sync.as_deref().unwrap_or(DEFAULT_SYNC) {
            "every" => SyncPolicy::Every,
            "batch" => SyncPolicy::Batch {
                changes: NonZeroU32::new(u32::try_from(changes).expect("range checked"))
                    .expect("range checked"),
                ms,
            },
            other => {
                return Err(err(
                    "sync",
                    format!("`{other}` is not one of \"every\", \"batch\""),
                ))
            }
        };
        let Some(path) = table.path else {
            return Ok(None);
        };
        if path.trim().is_empty() {
            return Ok(None);
        }
        let mut options = JournalOptions::new(policy);
        options.snapshot_min_bytes = snapshot_min_bytes;
        Ok(Some(PersistenceConfig {
            path: PathBuf::from(path),
            options,
        }))
    }
}
