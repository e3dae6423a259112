//! `sipedge-journal`: the per-shard durable recovery journal (ARCHITECTURE.md §5).
//!
//! Each shard appends opaque records — encoded binding changes, which this crate never looks
//! into — to its own journal, makes them durable by a [`SyncPolicy`], and now and then writes
//! a snapshot of its live records and retires the older files. At start-up [`recover`] finds
//! every shard's files, whatever shard count wrote them, and replays them in order; the
//! caller routes each record to the shard that owns it now.
//!
//! # What it does not do
//!
//! * It knows nothing of SIP, bindings or expiry: a record is bytes. Deciding that a record
//!   is expired, which shard owns it, and what "later record wins" means is the caller's.
//! * It reads no clock: time comes in as `now_ms`. Its only thread is the background
//!   `fdatasync` of a `Batch` journal (one per shard, asleep unless syncing).
//! * No `unsafe`; plain `std::fs` (`write` + `fdatasync`), one file per shard at a time.
//!
//! # Layout
//!
//! * `frame.rs` — on-disk framing and the reader that tells a torn tail from corruption.
//! * `layout.rs` — [`Layout`], the `CURRENT` pointer, layout directories, file names.
//! * `journal.rs` — [`ShardJournal`] (append, group commit, policy) and [`SnapshotWriter`].
//! * `recover.rs` — [`recover`], [`Recovery`] (replay, then `finish`/`relayout`).
//! * `syncer.rs` — the background `fdatasync` thread of `Batch` journals.
//! * `batch.rs` — [`RecordBatch`], records back to back for routing between shards.
//! * `config.rs` — `[registrar.persistence]` parsing ([`config::RawPersistence`]).
//! * `tests/` — round trip, torn tails, corruption, crashes at every step, rehash.
//!
//! # On disk
//!
//! ```text
//! <path>/CURRENT                          "sipedge-journal 1\nlayout <L>\nshards <N>\n"
//! <path>/layout-<L>/shard-<S>-<G>.snap    live records of shard S when generation G began
//! <path>/layout-<L>/shard-<S>-<G>.log     records appended during generation G
//! ```
//!
//! Every file starts with a 24-byte header (magic `SEJ1`, version, kind, shard, generation,
//! CRC). A record is `[u32 LE length][u32 LE CRC-32 of payload][payload]`, length in
//! `1..=max_record_bytes` (default [`DEFAULT_MAX_RECORD_BYTES`]). A snapshot ends with a
//! trailer (`0xFFFFFFFF`, CRC, record count). Details in `frame.rs`.
//!
//! A shard replays its newest readable snapshot `G`, then its journals of generation `>= G`
//! in order. Files of older generations are covered by that snapshot; they are deleted once
//! it is durable, and ignored if a crash left them behind.
//!
//! # Crash safety
//!
//! **Appends.** A batch is one `write` then `fdatasync` (`Every`: in the shard thread,
//! before the turn's replies; `Batch`: the `write` in the shard thread, the `fdatasync` on
//! the syncer thread right after); a journal file's header and its
//! directory entry are made durable when it is created, before any record. A crash mid-write
//! leaves a torn tail: recovery skips it with a warning ([`ReplayStats::torn_records`]) and
//! never refuses to start. The next run appends to a *new* generation, never after a torn
//! tail. A bad record followed by more data (corruption, not a crash) stops that file there
//! with a warning ([`ReplayStats::corrupt_records`]); replay goes on with the next file, so
//! later generations are not lost (at the price that a change inside the lost stretch may be
//! missing — bounded by expiry, and logged).
//!
//! **Snapshots** ([`ShardJournal::begin_snapshot`], [`SnapshotWriter::commit`]), each step
//! leaving a recoverable state:
//!
//! | crash after | on disk | recovery replays |
//! | --- | --- | --- |
//! | 1. flush of journal `G` | snap `G`, log `G` | snap `G`, log `G` |
//! | 2. journal `G+1` created, appends go there | + log `G+1` | snap `G`, log `G`, log `G+1` |
//! | 3. `.snap.tmp` partly or fully written | + `shard-S-(G+1).snap.tmp` | same (`.tmp` never read) |
//! | 4. rename to `.snap`, directory fsynced | + snap `G+1` | snap `G+1`, log `G+1` (old files ignored) |
//! | 5. files of generation `< G+1` removed | snap `G+1`, log `G+1` | the same |
//!
//! The snapshot holds the state when journal `G+1` began, so nothing is missing, and a
//! record present in both a snapshot and a later journal is applied twice in order ("later
//! record wins"), which is harmless. Step 4's rename is atomic; the `.tmp` is fsynced first.
//!
//! **Another shard count** ([`Recovery::finish`], [`Recovery::relayout`]): the new layout's
//! snapshots are all written and fsynced in a fresh `layout-<L+1>` before `CURRENT` is
//! replaced atomically. A crash before that leaves `CURRENT` on the old, untouched layout
//! (the half-built directory is deleted at the next start); after it, the new layout is
//! complete and the old directory is only garbage. Recovery never mixes two layouts.
//!
//! # Start-up sequence
//!
//! ```no_run
//! # fn main() -> Result<(), sipedge_journal::JournalError> {
//! use sipedge_journal::{recover, JournalOptions, RecordBatch, SyncPolicy};
//! let dir = std::path::Path::new("var/sipedge");
//! let shards = 4u16;
//! let owner = |rec: &[u8]| (rec[0] as u16) % shards; // the caller's owner function
//! let mut rec = recover(dir)?;
//! let mut routed = vec![RecordBatch::new(); shards as usize];
//! rec.replay(|_old, r| routed[owner(r) as usize].push(r))?;
//! // ... restore `routed[s]` into shard s ...
//! let layout = rec.finish(shards, |s, w| routed[s as usize].iter().for_each(|r| w.emit(r)))?;
//! let mut j = layout.open_shard(0, JournalOptions::new(SyncPolicy::Every))?;
//! j.append(b"change")?;
//! j.end_turn(0)?; // durable before the turn's replies go out
//! # Ok(()) }
//! ```

mod batch;
pub mod config;
mod error;
mod frame;
mod journal;
mod layout;
mod recover;
mod syncer;

pub use batch::{RecordBatch, RecordBatchIter};
pub use error::JournalError;
pub use frame::{
    DEFAULT_MAX_RECORD_BYTES, FILE_HEADER_LEN, FORMAT_VERSION, MAGIC, RECORD_HEADER_LEN,
    TRAILER_LEN,
};
pub use journal::{
    JournalOptions, JournalStats, ShardJournal, SnapshotStats, SnapshotWriter, SyncPolicy,
    DEFAULT_BATCH_CHANGES, DEFAULT_BATCH_MS, DEFAULT_SNAPSHOT_MIN_BYTES, MAX_PENDING_BYTES,
};
pub use layout::Layout;
pub use recover::{recover, Recovery, ReplayStats};

#[cfg(test)]
mod tests;
