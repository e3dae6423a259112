//! Recovery: find every shard's files whatever shard count wrote them, replay them in order,
//! then establish the layout the new run writes to.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, JournalError};
use crate::frame::{FileKind, FileReader, OpenFailure, Step, DEFAULT_MAX_RECORD_BYTES};
use crate::journal::SnapshotWriter;
use crate::layout::{self, FileName, Layout};

/// What a replay found. Everything here is also logged as a warning when non-zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Files read.
    pub files: u64,
    /// Valid records handed to the caller.
    pub records: u64,
    /// Bytes of valid records (payload and framing).
    pub bytes: u64,
    /// Files whose last record was cut short or fails its CRC at the end of the file (a
    /// write interrupted by a crash); the bad tail is skipped.
    pub torn_records: u64,
    /// Files with a bad record followed by more data (corruption, not a crash): the file is
    /// read up to that record only.
    pub corrupt_records: u64,
    /// Snapshots without a valid trailer (read as far as they are valid).
    pub incomplete_snapshots: u64,
    /// Files skipped whole (unreadable header, empty file of a crashed creation).
    pub skipped_files: u64,
}

impl ReplayStats {
    fn add(&mut self, o: &ReplayStats) {
        self.files += o.files;
        self.records += o.records;
        self.bytes += o.bytes;
        self.torn_records += o.torn_records;
        self.corrupt_records += o.corrupt_records;
        self.incomplete_snapshots += o.incomplete_snapshots;
        self.skipped_files += o.skipped_files;
    }
}

/// One old shard's files: snapshots newest first, journals oldest first.
#[derive(Debug, Clone, Default)]
struct ShardFiles {
    snapshots: Vec<(u64, PathBuf)>,
    journals: Vec<(u64, PathBuf)>,
}

/// The result of [`recover`]: the files found, ready to replay.
///
/// Replay with [`replay`](Self::replay) (every old shard in turn) or
/// [`replay_shard`](Self::replay_shard) (one old shard; `&self`, so several threads may
/// replay different shards at once). Records come in replay order per old shard — the
/// newest valid snapshot, then every later journal by generation — and the rule is "a later
/// record wins": a record found in both a snapshot and a journal is applied twice, which
/// must be harmless to the caller. Records of different old shards concern disjoint keys
/// (each key had one owner), so their relative order does not matter.
///
/// Then call [`finish`](Self::finish) before opening any shard journal.
#[derive(Debug)]
pub struct Recovery {
    root: PathBuf,
    layout: Option<Layout>,
    shards: BTreeMap<u16, ShardFiles>,
    max_record_bytes: usize,
    stats: ReplayStats,
}

/// Finds the files under `dir` (the configured path). Reads no record yet and changes
/// nothing on disk; a missing directory is an empty recovery.
pub fn recover(dir: &Path) -> Result<Recovery, JournalError> {
    let layout = layout::read_current(dir)?;
    let mut shards: BTreeMap<u16, ShardFiles> = BTreeMap::new();
    if let Some(l) = &layout {
        if !l.dir().is_dir() {
            tracing::warn!(dir = %l.dir().display(), "journal: CURRENT names a missing layout directory; starting empty");
        } else {
            for f in layout::list_dir(l.dir())? {
                let entry = shards.entry(f.name.shard()).or_default();
                match f.name {
                    FileName::Snapshot { generation, .. } => {
                        entry.snapshots.push((generation, f.path));
                    }
                    FileName::Journal { generation, .. } => {
                        entry.journals.push((generation, f.path));
                    }
                    FileName::SnapshotTmp { .. } => {}
                }
            }
        }
    }
    for files in shards.values_mut() {
        files.snapshots.sort_by_key(|s| std::cmp::Reverse(s.0));
        files.journals.sort_by_key(|j| j.0);
    }
    Ok(Recovery {
        root: dir.to_path_buf(),
        layout,
        shards,
        max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        stats: ReplayStats::default(),
    })
}

impl Recovery {
    /// Accepts records up to `max` bytes (default [`DEFAULT_MAX_RECORD_BYTES`]); use the
    /// journals' `max_record_bytes` if it was raised.
    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = max;
        self
    }

    /// The layout found, `None` for a fresh directory.
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }

    /// Shard count of the run that wrote the files (`None`: nothing found).
    pub fn written_by_shards(&self) -> Option<u16> {
        self.layout.as_ref().map(Layout::shards)
    }

    /// The old shards that have files, ascending.
    pub fn old_shards(&self) -> Vec<u16> {
        self.shards.keys().copied().collect()
    }

    /// Totals of every replay so far through [`replay`](Self::replay).
    pub fn stats(&self) -> ReplayStats {
        self.stats
    }

    /// Torn tails skipped so far by [`replay`](Self::replay).
    pub fn torn_records(&self) -> u64 {
        self.stats.torn_records
    }

    /// Replays every old shard in ascending order: `f(old_shard, record)`.
    pub fn replay<F>(&mut self, mut f: F) -> Result<ReplayStats, JournalError>
    where
        F: FnMut(u16, &[u8]),
    {
        let mut total = ReplayStats::default();
        for shard in self.old_shards() {
            let s = self.replay_shard(shard, |rec| f(shard, rec))?;
            total.add(&s);
        }
        self.stats.add(&total);
        Ok(total)
    }

    /// Replays one old shard: its newest readable snapshot, then every journal of that
    /// generation or later, oldest first. A bad record stops its file (torn tail or
    /// corruption, counted and logged) and replay goes on with the next file. A shard
    /// without files replays nothing.
    pub fn replay_shard<F>(&self, shard: u16, mut f: F) -> Result<ReplayStats, JournalError>
    where
        F: FnMut(&[u8]),
    {
        let mut stats = ReplayStats::default();
        let Some(files) = self.shards.get(&shard) else {
            return Ok(stats);
        };
        let mut from_gen = 0;
        for (generation, path) in &files.snapshots {
            if self.replay_file(
                path,
                FileKind::Snapshot,
                shard,
                *generation,
                &mut stats,
                &mut f,
            )? {
                from_gen = *generation;
                break;
            }
        }
        for (generation, path) in &files.journals {
            if *generation >= from_gen {
                self.replay_file(
                    path,
                    FileKind::Journal,
                    shard,
                    *generation,
                    &mut stats,
                    &mut f,
                )?;
            }
        }
        Ok(stats)
    }

    /// Replays one file; `Ok(false)` when it was skipped whole.
    fn replay_file<F>(
        &self,
        path: &Path,
        kind: FileKind,
        shard: u16,
        generation: u64,
        stats: &mut ReplayStats,
        f: &mut F,
    ) -> Result<bool, JournalError>
    where
        F: FnMut(&[u8]),
    {
        let file = path.display();
        let (mut reader, header) = match FileReader::open(path, self.max_record_bytes) {
            Ok(r) => r,
            Err(OpenFailure::Io(e)) => return Err(JournalError::io("read", path, e)),
            Err(OpenFailure::Empty) => {
                // A journal whose creation a crash interrupted has no record to lose.
                tracing::warn!(%file, "journal: file shorter than its header skipped");
                stats.skipped_files += 1;
                return Ok(false);
            }
            Err(OpenFailure::BadHeader(reason)) => {
                tracing::warn!(%file, reason, "journal: unreadable file skipped");
                stats.skipped_files += 1;
                return Ok(false);
            }
        };
        if header.kind != kind || header.shard != shard || header.generation != generation {
            tracing::warn!(%file, "journal: header does not match the file name; skipped");
            stats.skipped_files += 1;
            return Ok(false);
        }
        stats.files += 1;
        let mut records = 0u64;
        let mut trailer = false;
        loop {
            let start = reader.offset();
            match reader.next().ctx("read", path)? {
                Step::Record(rec) => {
                    f(rec);
                    records += 1;
                    stats.records += 1;
                    stats.bytes += reader.offset() - start;
                }
                Step::Trailer { count, at_eof } => {
                    if kind != FileKind::Snapshot || count != records || !at_eof {
                        tracing::warn!(%file, offset = start, "journal: misplaced or wrong trailer; rest of file skipped");
                        stats.corrupt_records += 1;
                    } else {
                        trailer = true;
                    }
                    break;
                }
                Step::Eof => break,
                Step::Bad(bad) => {
                    if bad.torn {
                        tracing::warn!(%file, offset = bad.offset, reason = bad.reason, "journal: torn last record skipped");
                        stats.torn_records += 1;
                    } else {
                        tracing::warn!(%file, offset = bad.offset, reason = bad.reason, "journal: corrupt record; rest of file skipped");
                        stats.corrupt_records += 1;
                    }
                    break;
                }
            }
        }
        if kind == FileKind::Snapshot && !trailer {
            tracing::warn!(%file, records, "journal: snapshot has no valid trailer (incomplete)");
            stats.incomplete_snapshots += 1;
        }
        Ok(true)
    }

    /// True when [`finish`](Self::finish) with `shards` rewrites everything into a new
    /// layout (fresh directory or another shard count) and so calls its `fill`.
    pub fn needs_relayout(&self, shards: u16) -> bool {
        self.written_by_shards() != Some(shards)
    }

    /// Establishes the layout for `shards` shards and returns it; open the shard journals
    /// in it. Call after replaying, before anything is appended.
    ///
    /// * Same shard count as the files found: the files stay where they are (no rewrite;
    ///   each shard's next journal generation continues them), leftovers of crashed
    ///   snapshots and layouts are removed, and `fill` is **not** called.
    /// * Otherwise (fresh directory, other shard count): see [`relayout`](Self::relayout).
    pub fn finish<F>(self, shards: u16, fill: F) -> Result<Layout, JournalError>
    where
        F: FnMut(u16, &mut SnapshotWriter),
    {
        if shards == 0 {
            return Err(JournalError::ZeroShards);
        }
        match self.layout.clone() {
            Some(l) if l.shards() == shards => {
                fs::create_dir_all(l.dir()).ctx("create directory", l.dir())?;
                for f in layout::list_dir(l.dir())? {
                    if matches!(f.name, FileName::SnapshotTmp { .. }) {
                        layout::remove_file(&f.path)?;
                    }
                }
                remove_other_layouts(&self.root, l.id())?;
                Ok(l)
            }
            _ => self.relayout(shards, fill),
        }
    }

    /// Writes a new layout for `shards` shards whatever was found: `fill(s, writer)` emits
    /// new shard `s`'s records (the records recovered and routed to `s`, in replay order, or
    /// its live state) into snapshot generation 1. Steps, each crash-safe:
    /// 1. create `layout-<L+1>` (L the highest layout number present) and fsync the root;
    /// 2. write, fsync and rename every shard's snapshot, fsync the layout directory;
    /// 3. replace `CURRENT` atomically (the commit point);
    /// 4. delete every other layout directory.
    ///
    /// A crash before step 3 leaves `CURRENT` on the old layout, untouched, and the next
    /// start recovers from it again (and deletes the half-built directory); after step 3 the
    /// new layout is complete. Used directly when records must move even at the same shard
    /// count (e.g. the owner function changed).
    pub fn relayout<F>(self, shards: u16, mut fill: F) -> Result<Layout, JournalError>
    where
        F: FnMut(u16, &mut SnapshotWriter),
    {
        if shards == 0 {
            return Err(JournalError::ZeroShards);
        }
        fs::create_dir_all(&self.root).ctx("create directory", &self.root)?;
        let highest = existing_layouts(&self.root)?
            .into_iter()
            .map(|(id, _)| id)
            .chain(self.layout.as_ref().map(Layout::id))
            .max()
            .unwrap_or(0);
        let new = Layout::new(&self.root, highest + 1, shards);
        fs::create_dir(new.dir()).ctx("create directory", new.dir())?;
        layout::sync_dir(&self.root)?;
        for s in 0..shards {
            let mut w = SnapshotWriter::create(new.dir(), s, 1, self.max_record_bytes)?;
            fill(s, &mut w);
            w.commit()?;
        }
        layout::write_current(&new)?;
        remove_other_layouts(&self.root, new.id())?;
        Ok(new)
    }
}

/// Numbers of every `layout-*` directory under `root`.
fn existing_layouts(root: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(JournalError::io("list", root, e)),
    };
    for entry in entries {
        let entry = entry.ctx("list", root)?;
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(layout::parse_layout_dir)
        {
            out.push((id, entry.path()));
        }
    }
    Ok(out)
}

/// Deletes every layout directory but `keep`: half-built (never committed) or retired.
fn remove_other_layouts(root: &Path, keep: u64) -> Result<(), JournalError> {
    for (id, path) in existing_layouts(root)? {
        if id != keep {
            fs::remove_dir_all(&path).ctx("remove directory", &path)?;
        }
    }
    Ok(())
}
