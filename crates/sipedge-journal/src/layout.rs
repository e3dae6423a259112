//! Where the files live: the `CURRENT` pointer, layout directories, and file names.
//!
//! ```text
//! <root>/CURRENT                 "sipedge-journal 1\nlayout <L>\nshards <N>\n"
//! <root>/layout-<L>/shard-<S>-<G>.snap       snapshot: shard S's live records when generation G began
//! <root>/layout-<L>/shard-<S>-<G>.log        journal: shard S's changes during generation G
//! <root>/layout-<L>/shard-<S>-<G>.snap.tmp   a snapshot being written (never read)
//! ```
//!
//! A layout is one shard count's set of files. `CURRENT` names the live one and is only ever
//! replaced atomically (write `CURRENT.tmp`, fsync, rename, fsync the root), after every file
//! of the new layout is durable. Any other `layout-*` directory is either a half-built layout
//! whose switch never happened or a retired one whose deletion was cut short; both hold
//! nothing the live layout lacks, and [`crate::Recovery::finish`] deletes them.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, JournalError};
use crate::journal::{JournalOptions, ShardJournal};

/// Name of the pointer file in the root directory.
pub(crate) const CURRENT: &str = "CURRENT";
const CURRENT_TMP: &str = "CURRENT.tmp";
const CURRENT_FIRST_LINE: &str = "sipedge-journal 1";

/// The live layout: which directory holds the files and how many shards wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    dir: PathBuf,
    id: u64,
    shards: u16,
}

impl Layout {
    /// Reads `<root>/CURRENT`. [`JournalError::NoLayout`] when there is none yet.
    pub fn current(root: &Path) -> Result<Layout, JournalError> {
        read_current(root)?.ok_or_else(|| JournalError::NoLayout(root.to_path_buf()))
    }

    /// Number of shards this layout is for.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The layout's number (the `L` of `layout-L`).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The directory holding this layout's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The root directory (the configured `path`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens shard `shard`'s journal in this layout (see [`ShardJournal::open_in`]).
    pub fn open_shard(
        &self,
        shard: u16,
        options: JournalOptions,
    ) -> Result<ShardJournal, JournalError> {
        ShardJournal::open_in(self, shard, options)
    }

    pub(crate) fn new(root: &Path, id: u64, shards: u16) -> Self {
        Self {
            root: root.to_path_buf(),
            dir: root.join(layout_dir_name(id)),
            id,
            shards,
        }
    }
}

pub(crate) fn layout_dir_name(id: u64) -> String {
    format!("layout-{id}")
}

/// `layout-<L>` → `L`.
pub(crate) fn parse_layout_dir(name: &str) -> Option<u64> {
    parse_num(name.strip_prefix("layout-")?)
}

/// Reads `CURRENT`; `Ok(None)` when the root or the file does not exist.
pub(crate) fn read_current(root: &Path) -> Result<Option<Layout>, JournalError> {
    let path = root.join(CURRENT);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(JournalError::io("read", path, e)),
    };
    let bad = |reason| JournalError::BadCurrent {
        path: path.clone(),
        reason,
    };
    let mut lines = text.lines();
    if lines.next() != Some(CURRENT_FIRST_LINE) {
        return Err(bad("first line is not `sipedge-journal 1`"));
    }
    let id = lines
        .next()
        .and_then(|l| l.strip_prefix("layout "))
        .and_then(parse_num)
        .ok_or_else(|| bad("second line is not `layout <number>`"))?;
    let shards = lines
        .next()
        .and_then(|l| l.strip_prefix("shards "))
        .and_then(parse_num)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| bad("third line is not `shards <1..=65535>`"))?;
    Ok(Some(Layout::new(root, id, shards)))
}

/// Atomically points `CURRENT` at `layout`: write a temporary file, fsync it, rename it over
/// `CURRENT`, fsync the root. A crash leaves either the old pointer or the new one.
pub(crate) fn write_current(layout: &Layout) -> Result<(), JournalError> {
    let tmp = layout.root.join(CURRENT_TMP);
    let text = format!(
        "{CURRENT_FIRST_LINE}\nlayout {}\nshards {}\n",
        layout.id, layout.shards
    );
    let mut f = File::create(&tmp).ctx("create", &tmp)?;
    f.write_all(text.as_bytes()).ctx("write", &tmp)?;
    f.sync_all().ctx("fsync", &tmp)?;
    drop(f);
    let path = layout.root.join(CURRENT);
    fs::rename(&tmp, &path).ctx("rename", &path)?;
    sync_dir(&layout.root)
}

/// fsync of a directory, so that entries created, renamed or removed in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx("fsync directory", dir)
}

/// A file of a layout directory, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FileName {
    Snapshot { shard: u16, generation: u64 },
    Journal { shard: u16, generation: u64 },
    SnapshotTmp { shard: u16, generation: u64 },
}

impl FileName {
    pub(crate) fn shard(&self) -> u16 {
        match *self {
            Self::Snapshot { shard, .. }
            | Self::Journal { shard, .. }
            | Self::SnapshotTmp { shard, .. } => shard,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        match *self {
            Self::Snapshot { generation, .. }
            | Self::Journal { generation, .. }
            | Self::SnapshotTmp { generation, .. } => generation,
        }
    }

    pub(crate) fn render(&self) -> String {
        match *self {
            Self::Snapshot { shard, generation } => format!("shard-{shard}-{generation}.snap"),
            Self::Journal { shard, generation } => format!("shard-{shard}-{generation}.log"),
            Self::SnapshotTmp { shard, generation } => {
                format!("shard-{shard}-{generation}.snap.tmp")
            }
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("shard-")?;
        let (stem, kind) = if let Some(s) = rest.strip_suffix(".snap.tmp") {
            (s, 2)
        } else if let Some(s) = rest.strip_suffix(".snap") {
            (s, 0)
        } else if let Some(s) = rest.strip_suffix(".log") {
            (s, 1)
        } else {
            return None;
        };
        let (s, g) = stem.split_once('-')?;
        let shard = u16::try_from(parse_num(s)?).ok()?;
        let generation = parse_num(g)?;
        Some(match kind {
            0 => Self::Snapshot { shard, generation },
            1 => Self::Journal { shard, generation },
            _ => Self::SnapshotTmp { shard, generation },
        })
    }
}

/// A decimal number without sign or leading zeros (so every number has one spelling).
fn parse_num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// One listed file: its parsed name, path and length.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub(crate) name: FileName,
    pub(crate) path: PathBuf,
    pub(crate) len: u64,
}

/// Every journal, snapshot and temporary file of a layout directory, sorted by name
/// (shard, then kind, then generation). Other files are ignored.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<Listed>, JournalError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).ctx("list", dir)? {
        let entry = entry.ctx("list", dir)?;
        let Some(name) = entry.file_name().to_str().and_then(FileName::parse) else {
            continue;
        };
        let path = entry.path();
        let len = entry.metadata().ctx("stat", &path)?.len();
        out.push(Listed { name, path, len });
    }
    out.sort_by_key(|l| (l.name.shard(), l.name.generation(), l.name));
    Ok(out)
}

/// Removes a file; a file already gone is fine.
pub(crate) fn remove_file(path: &Path) -> Result<(), JournalError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(JournalError::io("remove", path, e))
        }
        _ => Ok(()),
    }
}
