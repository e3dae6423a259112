//! [`JournalError`]: every failure names the operation and the file it concerns.

use std::io;
use std::path::PathBuf;

/// An error of the journal. File-system errors carry the operation and the path, so the
/// operator reading the start-up failure knows which file to look at.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file-system call failed.
    #[error("journal: {op} {path}: {source}")]
    Io {
        /// What was being done (`"create"`, `"fdatasync"`, `"rename"`, …).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A record is larger than the configured maximum (or empty, which the framing reserves).
    #[error("journal: record of {len} bytes refused (allowed: 1..={max})")]
    RecordSize {
        /// Payload length offered.
        len: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Writes have been failing long enough that the buffer is full; the record is refused.
    #[error("journal: {bytes} bytes wait to be written; record refused")]
    Backlog {
        /// Bytes buffered.
        bytes: usize,
    },
    /// The directory has no `CURRENT` layout yet: run [`crate::recover`] and
    /// [`crate::Recovery::finish`] before opening shard journals.
    #[error("journal: {0} has no CURRENT layout (run recovery first)")]
    NoLayout(PathBuf),
    /// `CURRENT` exists but cannot be understood.
    #[error("journal: {path}: {reason}")]
    BadCurrent {
        /// The `CURRENT` file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A shard index outside the layout's shard count.
    #[error("journal: shard {shard} is outside the layout of {shards} shards")]
    ShardOutOfRange {
        /// The shard asked for.
        shard: u16,
        /// Shards of the layout.
        shards: u16,
    },
    /// A layout of zero shards was asked for.
    #[error("journal: a layout needs at least one shard")]
    ZeroShards,
}

impl JournalError {
    /// Wraps an OS error with its operation and path.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Adds the operation and path to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`JournalError::Io`].
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T, JournalError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &std::path::Path) -> Result<T, JournalError> {
        self.map_err(|e| JournalError::io(op, path, e))
    }
}
