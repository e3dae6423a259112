//! [`ShardJournal`]: one shard's append path (buffer, group commit per turn, sync policy) and
//! its snapshot/compaction.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{IoContext, JournalError};
use crate::frame::{
    self, FileHeader, FileKind, DEFAULT_MAX_RECORD_BYTES, FILE_HEADER_LEN, RECORD_HEADER_LEN,
};
use crate::layout::{self, FileName, Layout};
use crate::syncer::Syncer;

/// Default `batch_changes`: a batch is made durable once this many records are pending.
pub const DEFAULT_BATCH_CHANGES: u32 = 1000;
/// Default `batch_ms`: a batch is made durable once its oldest record waited this long.
pub const DEFAULT_BATCH_MS: u64 = 100;
/// Default snapshot threshold, bytes of journal since the last snapshot (64 MiB). A snapshot
/// is also never wanted before the journal outgrows the last snapshot (see
/// [`ShardJournal::wants_snapshot`]).
pub const DEFAULT_SNAPSHOT_MIN_BYTES: u64 = 64 << 20;
/// Buffered bytes beyond which [`ShardJournal::append`] refuses records (256 MiB).
pub const MAX_PENDING_BYTES: usize = 256 << 20;
/// Write buffer of a snapshot being written, bytes.
const SNAPSHOT_BUFFER_BYTES: usize = 1 << 20;

/// When appended records are made durable (written and `fdatasync`ed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// At the end of every turn that appended anything, before that turn's replies are sent
    /// (group commit per turn): nothing acknowledged is ever lost.
    Every,
    /// Once `changes` records are pending or the oldest pending one waited `ms`
    /// milliseconds, the batch is written (one `write`, into the page cache: it now survives
    /// a killed process) and handed to a background thread that `fdatasync`s it (it then
    /// survives a power loss), so the shard never waits for the disk. A crash loses at
    /// most the batch being gathered, plus the sync in flight on a power loss.
    Batch {
        /// Pending records that force a sync.
        changes: NonZeroU32,
        /// Age of the oldest pending record that forces a sync, milliseconds.
        ms: u64,
    },
}

impl Default for SyncPolicy {
    /// `Batch` with [`DEFAULT_BATCH_CHANGES`] and [`DEFAULT_BATCH_MS`].
    fn default() -> Self {
        Self::Batch {
            changes: NonZeroU32::new(DEFAULT_BATCH_CHANGES).expect("non-zero constant"),
            ms: DEFAULT_BATCH_MS,
        }
    }
}

/// Everything tunable about a shard journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalOptions {
    /// When records become durable.
    pub policy: SyncPolicy,
    /// Journal bytes since the last snapshot before [`ShardJournal::wants_snapshot`] is true.
    pub snapshot_min_bytes: u64,
    /// Largest record payload accepted, bytes.
    pub max_record_bytes: usize,
}

impl JournalOptions {
    /// `policy` with the default thresholds.
    pub fn new(policy: SyncPolicy) -> Self {
        Self {
            policy,
            snapshot_min_bytes: DEFAULT_SNAPSHOT_MIN_BYTES,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl Default for JournalOptions {
    fn default() -> Self {
        Self::new(SyncPolicy::default())
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records accepted by [`ShardJournal::append`].
    pub appended: u64,
    /// Records written to the journal file (durable once synced).
    pub written: u64,
    /// Bytes written to the journal file (framing included).
    pub bytes: u64,
    /// Records refused by [`ShardJournal::append`]: too large, or the backlog is full.
    pub refused: u64,
    /// `fdatasync` calls on the journal (inline and background).
    pub syncs: u64,
    /// Failed writes (the records stay buffered and are retried) and failed syncs.
    pub errors: u64,
    /// Snapshots started.
    pub snapshots: u64,
}

/// One shard's journal: appends are buffered in memory and written with one `write` and one
/// `fdatasync` when the policy says so. Not shared between threads; one per shard.
///
/// Dropping it flushes what is buffered (best effort, errors are logged); a process killed
/// outright loses the buffer, which is exactly what the policy bounds.
#[derive(Debug)]
pub struct ShardJournal {
    dir: PathBuf,
    shard: u16,
    options: JournalOptions,
    file: Arc<File>,
    path: Arc<PathBuf>,
    generation: u64,
    /// Background `fdatasync` (`Batch` only).
    syncer: Option<Syncer>,
    /// Batches written, numbering the sync requests.
    batches: u64,
    /// Written since the last inline `fdatasync`.
    dirty: bool,
    pending: Vec<u8>,
    pending_records: u32,
    oldest_pending_ms: Option<u64>,
    /// Length of the current file known to be written completely.
    written_len: u64,
    /// Journal bytes (all generations) since the last snapshot.
    since_snapshot_bytes: u64,
    last_snapshot_bytes: u64,
    stats: JournalStats,
    /// A snapshot committing on its own thread.
    snapshot_job: Option<JoinHandle<Result<SnapshotStats, JournalError>>>,
}

impl ShardJournal {
    /// Opens shard `shard`'s journal in the layout `CURRENT` names under `dir`, with
    /// `policy` and default thresholds. The layout must exist: at start-up run
    /// [`crate::recover`], replay, then [`crate::Recovery::finish`] first.
    pub fn open(dir: &Path, shard: u16, policy: SyncPolicy) -> Result<Self, JournalError> {
        Layout::current(dir)?.open_shard(shard, JournalOptions::new(policy))
    }

    /// Opens shard `shard`'s journal in `layout`: a fresh journal file of the next
    /// generation is created (header written, file and directory fsynced), so a torn tail
    /// left by a crash is never appended to. One `ShardJournal` per shard at a time.
    pub fn open_in(
        layout: &Layout,
        shard: u16,
        options: JournalOptions,
    ) -> Result<Self, JournalError> {
        if shard >= layout.shards() {
            return Err(JournalError::ShardOutOfRange {
                shard,
                shards: layout.shards(),
            });
        }
        let dir = layout.dir().to_path_buf();
        let mine: Vec<_> = layout::list_dir(&dir)?
            .into_iter()
            .filter(|l| l.name.shard() == shard)
            .collect();
        let max_gen = mine.iter().map(|l| l.name.generation()).max().unwrap_or(0);
        let snap = mine
            .iter()
            .filter(|l| matches!(l.name, FileName::Snapshot { .. }))
            .max_by_key(|l| l.name.generation());
        let snap_gen = snap.map_or(0, |s| s.name.generation());
        let last_snapshot_bytes = snap.map_or(0, |s| s.len);
        let since_snapshot_bytes = mine
            .iter()
            .filter(|l| matches!(l.name, FileName::Journal { .. }))
            .filter(|l| l.name.generation() >= snap_gen)
            .map(|l| l.len)
            .sum();
        let generation = max_gen + 1;
        let (file, path) = create_journal_file(&dir, shard, generation)?;
        let syncer = match options.policy {
            SyncPolicy::Every => None,
            SyncPolicy::Batch { .. } => Some(
                Syncer::spawn(shard).map_err(|e| JournalError::io("spawn syncer for", &dir, e))?,
            ),
        };
        Ok(Self {
            dir,
            shard,
            options,
            file: Arc::new(file),
            path: Arc::new(path),
            generation,
            syncer,
            batches: 0,
            dirty: false,
            pending: Vec::with_capacity(64 << 10),
            pending_records: 0,
            oldest_pending_ms: None,
            written_len: FILE_HEADER_LEN as u64,
            since_snapshot_bytes,
            last_snapshot_bytes,
            stats: JournalStats::default(),
            snapshot_job: None,
        })
    }

    /// The shard this journal belongs to.
    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// The current journal generation (the `G` of `shard-S-G.log`).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The options in force.
    pub fn options(&self) -> &JournalOptions {
        &self.options
    }

    /// Counters (including the background syncer's).
    pub fn stats(&self) -> JournalStats {
        let mut s = self.stats;
        if let Some(sy) = &self.syncer {
            s.syncs += sy.counters.syncs.load(Ordering::Relaxed);
            s.errors += sy.counters.errors.load(Ordering::Relaxed);
        }
        s
    }

    /// Records appended and not yet written.
    pub fn pending_records(&self) -> u32 {
        self.pending_records
    }

    /// Buffers one record (no system call). Empty and oversized records are refused, and so
    /// is any record while [`MAX_PENDING_BYTES`] are buffered (writes keep failing: the
    /// disk is full or gone), so a dead disk cannot exhaust memory.
    pub fn append(&mut self, rec: &[u8]) -> Result<(), JournalError> {
        if let Err(e) = frame::check_len(rec.len(), self.options.max_record_bytes) {
            self.stats.refused += 1;
            return Err(e);
        }
        if self.pending.len() >= MAX_PENDING_BYTES {
            self.stats.refused += 1;
            return Err(JournalError::Backlog {
                bytes: self.pending.len(),
            });
        }
        frame::encode_record(&mut self.pending, rec);
        self.pending_records = self.pending_records.saturating_add(1);
        self.stats.appended += 1;
        Ok(())
    }

    /// The end-of-turn hook, `now_ms` on the caller's monotonic clock. `Every`: anything
    /// buffered is written and `fdatasync`ed now, so call this *before* submitting the
    /// turn's replies. `Batch`: once `changes` records are pending or the oldest pending one
    /// (stamped with the `now_ms` of the first `end_turn` that saw it) is `ms` old, they are
    /// written and the background sync is asked for; nothing here waits for the disk. On
    /// error the records stay buffered and the next call retries.
    ///
    /// `Every` also retries a failed `fdatasync` of records already written (until it
    /// succeeds, no reply of theirs may go out), so `Ok` means everything appended so far
    /// is durable.
    pub fn end_turn(&mut self, now_ms: u64) -> Result<(), JournalError> {
        if self.pending_records == 0 {
            if self.options.policy == SyncPolicy::Every && self.dirty {
                return self.flush();
            }
            return Ok(());
        }
        let oldest = *self.oldest_pending_ms.get_or_insert(now_ms);
        let due = match self.options.policy {
            SyncPolicy::Every => true,
            SyncPolicy::Batch { changes, ms } => {
                self.pending_records >= changes.get() || now_ms.saturating_sub(oldest) >= ms
            }
        };
        if !due {
            return Ok(());
        }
        if self.syncer.is_none() {
            return self.flush();
        }
        self.write_pending()?;
        self.batches += 1;
        if let Some(sy) = &self.syncer {
            sy.request(&self.file, &self.path, self.batches);
        }
        Ok(())
    }

    /// When the shard loop must call [`end_turn`](Self::end_turn) at the latest (its
    /// `now_ms` clock) for the batch deadline, or `None` when nothing waits for time.
    pub fn next_deadline(&self) -> Option<u64> {
        match self.options.policy {
            SyncPolicy::Batch { ms, .. } if self.pending_records > 0 => {
                self.oldest_pending_ms.map(|t| t.saturating_add(ms))
            }
            _ => None,
        }
    }

    /// Writes everything buffered and `fdatasync`s the journal in this thread, whatever the
    /// policy: on return everything appended is durable (clean shutdown, snapshots).
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.write_pending()?;
        if !self.dirty {
            return Ok(());
        }
        if let Err(e) = self.file.sync_data() {
            self.stats.errors += 1;
            return Err(JournalError::io("fdatasync", self.path.as_path(), e));
        }
        self.stats.syncs += 1;
        self.dirty = false;
        Ok(())
    }

    /// One `write` of the buffered records.
    fn write_pending(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = (&*self.file).write_all(&self.pending) {
            self.stats.errors += 1;
            // Cut off whatever part of the batch reached the file, so a retry does not
            // leave a partial record in the middle of the journal.
            let _ = self.file.set_len(self.written_len);
            let _ = (&*self.file).seek(SeekFrom::Start(self.written_len));
            return Err(JournalError::io("write", self.path.as_path(), e));
        }
        let n = self.pending.len() as u64;
        self.stats.bytes += n;
        self.written_len += n;
        self.since_snapshot_bytes += n;
        self.dirty = true;
        self.stats.written += u64::from(self.pending_records);
        self.pending.clear();
        self.pending_records = 0;
        self.oldest_pending_ms = None;
        Ok(())
    }

    /// Test hook: from now on every write and sync of the journal fails (the file is
    /// swapped for `/dev/full`, whose writes fail with `ENOSPC`), as when a disk fills up
    /// or goes away. For tests of what the caller does then; never call it in service.
    #[doc(hidden)]
    pub fn inject_write_failure(&mut self) -> std::io::Result<()> {
        let full = OpenOptions::new().write(true).open("/dev/full")?;
        self.file = Arc::new(full);
        Ok(())
    }

    /// True when the journal has grown enough that a snapshot should be taken: at least
    /// `snapshot_min_bytes` of journal since the last snapshot, and more than the last
    /// snapshot's size (so compaction costs O(1) amortised per record and the journal to
    /// replay never exceeds about twice the live data).
    /// False while a background snapshot is committing.
    pub fn wants_snapshot(&self) -> bool {
        self.snapshot_job.is_none()
            && self.since_snapshot_bytes >= self.options.snapshot_min_bytes
            && self.since_snapshot_bytes > self.last_snapshot_bytes
    }

    /// Takes a snapshot in this thread: [`begin_snapshot`](Self::begin_snapshot), `fill`
    /// emits every live record, then [`SnapshotWriter::commit`].
    pub fn write_snapshot<F>(&mut self, fill: F) -> Result<SnapshotStats, JournalError>
    where
        F: FnOnce(&mut SnapshotWriter),
    {
        let mut w = self.begin_snapshot()?;
        fill(&mut w);
        let stats = w.commit()?;
        self.note_snapshot(&stats);
        Ok(stats)
    }

    /// Starts a snapshot. Steps, each crash-safe (see the crate docs):
    /// 1. flush: the current journal `G` is durable;
    /// 2. rotate: journal `G+1` is created (header, fsync, directory fsync) and receives
    ///    every later append;
    /// 3. the returned writer streams records into `shard-S-(G+1).snap.tmp`.
    ///
    /// The caller emits the live state as of this moment (before any later append), then
    /// calls [`SnapshotWriter::commit`], which may run on another thread.
    ///
    /// A background snapshot still committing is waited for first.
    pub fn begin_snapshot(&mut self) -> Result<SnapshotWriter, JournalError> {
        if let Some(job) = self.snapshot_job.take() {
            let r = join_snapshot(job);
            self.settle_snapshot(r)?;
        }
        self.flush()?;
        let generation = self.generation + 1;
        let (file, path) = create_journal_file(&self.dir, self.shard, generation)?;
        self.file = Arc::new(file);
        self.path = Arc::new(path);
        self.dirty = false;
        self.generation = generation;
        self.written_len = FILE_HEADER_LEN as u64;
        self.since_snapshot_bytes = FILE_HEADER_LEN as u64;
        self.stats.snapshots += 1;
        SnapshotWriter::create(
            &self.dir,
            self.shard,
            generation,
            self.options.max_record_bytes,
        )
    }

    /// Like [`write_snapshot`](Self::write_snapshot), but only the emitting runs here (the
    /// records go into the page cache); the commit — fsync, rename, directory fsync,
    /// removal of the covered files — runs on its own thread, so the shard does not wait for
    /// the disk. Collect the outcome with [`poll_snapshot`](Self::poll_snapshot).
    pub fn write_snapshot_in_background<F>(&mut self, fill: F) -> Result<(), JournalError>
    where
        F: FnOnce(&mut SnapshotWriter),
    {
        let mut w = self.begin_snapshot()?;
        fill(&mut w);
        self.commit_snapshot_in_background(w)
    }

    /// Commits a snapshot begun with [`begin_snapshot`](Self::begin_snapshot) and filled
    /// by the caller, on its own thread (as
    /// [`write_snapshot_in_background`](Self::write_snapshot_in_background)). This lets a
    /// caller fill the snapshot a bounded number of records at a time over several turns;
    /// until it is committed, [`wants_snapshot`](Self::wants_snapshot) is the caller's to
    /// ignore.
    pub fn commit_snapshot_in_background(&mut self, w: SnapshotWriter) -> Result<(), JournalError> {
        // Known now: what wants_snapshot compares the journal against.
        self.last_snapshot_bytes = w.bytes + frame::TRAILER_LEN as u64;
        let dir = self.dir.clone();
        let job = std::thread::Builder::new()
            .name(format!("journal-snap-{}", self.shard))
            .spawn(move || w.commit())
            .map_err(|e| JournalError::io("spawn snapshot thread for", dir, e))?;
        self.snapshot_job = Some(job);
        Ok(())
    }

    /// The outcome of a background snapshot once its commit is done (`None`: none in
    /// flight, or still committing). A failed snapshot loses nothing: the journals still
    /// hold every record, and [`wants_snapshot`](Self::wants_snapshot) asks again.
    pub fn poll_snapshot(&mut self) -> Option<Result<SnapshotStats, JournalError>> {
        if !self.snapshot_job.as_ref()?.is_finished() {
            return None;
        }
        let r = join_snapshot(self.snapshot_job.take()?);
        Some(self.settle_snapshot(r))
    }

    fn settle_snapshot(
        &mut self,
        r: Result<SnapshotStats, JournalError>,
    ) -> Result<SnapshotStats, JournalError> {
        match &r {
            Ok(stats) => self.note_snapshot(stats),
            Err(_) => {
                self.stats.errors += 1;
                self.last_snapshot_bytes = 0;
            }
        }
        r
    }

    /// Tells the journal the size of a snapshot committed elsewhere (for
    /// [`wants_snapshot`](Self::wants_snapshot)); [`write_snapshot`](Self::write_snapshot)
    /// does it itself.
    pub fn note_snapshot(&mut self, stats: &SnapshotStats) {
        self.last_snapshot_bytes = stats.bytes;
    }
}

fn join_snapshot(
    job: JoinHandle<Result<SnapshotStats, JournalError>>,
) -> Result<SnapshotStats, JournalError> {
    job.join().unwrap_or_else(|_| {
        Err(JournalError::io(
            "commit snapshot",
            PathBuf::new(),
            std::io::Error::other("snapshot thread panicked"),
        ))
    })
}

impl Drop for ShardJournal {
    fn drop(&mut self) {
        if let Some(job) = self.snapshot_job.take() {
            if let Err(e) = join_snapshot(job) {
                tracing::error!(shard = self.shard, error = %e, "journal: background snapshot failed");
            }
        }
        if let Err(e) = self.flush() {
            tracing::error!(shard = self.shard, error = %e, "journal: flush on drop failed");
        }
    }
}

/// Creates `shard-S-G.log` with its header, fsyncs it and its directory.
fn create_journal_file(
    dir: &Path,
    shard: u16,
    generation: u64,
) -> Result<(File, PathBuf), JournalError> {
    let path = dir.join(FileName::Journal { shard, generation }.render());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .ctx("create", &path)?;
    let header = FileHeader {
        kind: FileKind::Journal,
        shard,
        generation,
    };
    file.write_all(&header.encode()).ctx("write", &path)?;
    file.sync_all().ctx("fsync", &path)?;
    layout::sync_dir(dir)?;
    Ok((file, path))
}

/// What a committed snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Records written.
    pub records: u64,
    /// File size, bytes.
    pub bytes: u64,
    /// The snapshot's generation.
    pub generation: u64,
}

/// A snapshot being written to `shard-S-G.snap.tmp`. [`emit`](Self::emit) each live record,
/// then [`commit`](Self::commit). Dropped without commit, it removes its temporary file
/// (and a crash leaves one that recovery ignores): the journal still holds everything.
#[derive(Debug)]
pub struct SnapshotWriter {
    dir: PathBuf,
    shard: u16,
    generation: u64,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    max: usize,
    records: u64,
    bytes: u64,
    frame: Vec<u8>,
    error: Option<JournalError>,
}

impl SnapshotWriter {
    pub(crate) fn create(
        dir: &Path,
        shard: u16,
        generation: u64,
        max: usize,
    ) -> Result<Self, JournalError> {
        let tmp = dir.join(FileName::SnapshotTmp { shard, generation }.render());
        let file = File::create(&tmp).ctx("create", &tmp)?;
        let mut out = BufWriter::with_capacity(SNAPSHOT_BUFFER_BYTES, file);
        let header = FileHeader {
            kind: FileKind::Snapshot,
            shard,
            generation,
        };
        out.write_all(&header.encode()).ctx("write", &tmp)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            shard,
            generation,
            tmp,
            out: Some(out),
            max,
            records: 0,
            bytes: FILE_HEADER_LEN as u64,
            frame: Vec::with_capacity(RECORD_HEADER_LEN + 256),
            error: None,
        })
    }

    /// Writes one record. The first failure is kept and returned by
    /// [`commit`](Self::commit); later records are then ignored.
    pub fn emit(&mut self, rec: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = frame::check_len(rec.len(), self.max) {
            self.error = Some(e);
            return;
        }
        self.frame.clear();
        frame::encode_record(&mut self.frame, rec);
        let out = self.out.as_mut().expect("open until commit");
        match out.write_all(&self.frame) {
            Ok(()) => {
                self.records += 1;
                self.bytes += self.frame.len() as u64;
            }
            Err(e) => self.error = Some(JournalError::io("write", &self.tmp, e)),
        }
    }

    /// Records emitted so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Finishes the snapshot: trailer, fsync, rename to `shard-S-G.snap`, fsync of the
    /// directory, then removal of every older file of the shard (generation `< G`). Safe to
    /// run on another thread than the journal's.
    pub fn commit(self) -> Result<SnapshotStats, JournalError> {
        self.commit_until(CommitStep::Cleanup)
    }

    /// [`commit`](Self::commit) stopped after `last` (crash simulation in tests).
    pub(crate) fn commit_until(mut self, last: CommitStep) -> Result<SnapshotStats, JournalError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let mut out = self.out.take().expect("open until commit");
        out.write_all(&frame::encode_trailer(self.records))
            .ctx("write", &self.tmp)?;
        let file = out
            .into_inner()
            .map_err(|e| JournalError::io("write", &self.tmp, e.into_error()))?;
        file.sync_all().ctx("fsync", &self.tmp)?;
        drop(file);
        let stats = SnapshotStats {
            records: self.records,
            bytes: self.bytes + frame::TRAILER_LEN as u64,
            generation: self.generation,
        };
        if last == CommitStep::Synced {
            self.tmp = PathBuf::new(); // keep the .tmp file: the "crash" left it behind
            return Ok(stats);
        }
        let name = FileName::Snapshot {
            shard: self.shard,
            generation: self.generation,
        };
        let path = self.dir.join(name.render());
        std::fs::rename(&self.tmp, &path).ctx("rename", &path)?;
        self.tmp = PathBuf::new();
        layout::sync_dir(&self.dir)?;
        if last == CommitStep::Renamed {
            return Ok(stats);
        }
        for old in layout::list_dir(&self.dir)? {
            if old.name.shard() == self.shard && old.name.generation() < self.generation {
                layout::remove_file(&old.path)?;
            }
        }
        Ok(stats)
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Where [`SnapshotWriter::commit_until`] stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitStep {
    /// The `.tmp` file is complete and fsynced, not renamed.
    Synced,
    /// Renamed and the directory fsynced; older files not yet removed.
    Renamed,
    /// Everything done.
    Cleanup,
}
