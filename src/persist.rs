//! Glue between the shards' [`Core`]s and `sipedge-journal` (`[registrar.persistence]`).
//!
//! * Start-up ([`restore`]), on the main thread before the shard threads start: recover every
//!   journal whatever shard count wrote it, route each record to its owner under the new
//!   shard count, and establish the layout (rewritten only when the count changed).
//! * Each shard thread: [`ShardPersist::restore`] feeds its routed records to its core, then
//!   per turn [`ShardPersist::end_turn`] appends the core's records and applies the sync
//!   policy — in `sync = "every"` *before* the turn's transmits are handed to the engine, so
//!   an acknowledged REGISTER is durable — and [`ShardPersist::maybe_snapshot`] compacts:
//!   a snapshot is filled [`SNAPSHOT_SLOTS_PER_TURN`] table slots per turn (bounded work,
//!   so a snapshot of millions of bindings never stalls the loop) and committed on its own
//!   thread.
//! * Stop: [`ShardPersist::shutdown`] flushes.

use anyhow::Context;
use sipedge_core::{Core, Millis, SnapshotCursor};
use sipedge_journal::config::PersistenceConfig;
use sipedge_journal::{recover, JournalOptions, Layout, RecordBatch, ShardJournal, SnapshotWriter};

/// Location-table slots a snapshot covers per loop turn: a few milliseconds of encoding and
/// page-cache copying at most (≈ 0.3–1 µs a binding), so a turn stays far below T1.
pub const SNAPSHOT_SLOTS_PER_TURN: usize = 4096;

/// What start-up hands to each shard thread.
#[derive(Debug)]
pub struct Restored {
    /// The layout the shards open their journals in.
    pub layout: Layout,
    /// Journal options of every shard.
    pub options: JournalOptions,
    /// Recovered records per new shard, in replay order.
    pub per_shard: Vec<RecordBatch>,
}

/// Recovers `cfg.path` for `shards` shards. Torn tails are skipped with a warning (never a
/// refusal to start); I/O errors and an unreadable `CURRENT` stop the start.
pub fn restore(cfg: &PersistenceConfig, shards: u16) -> anyhow::Result<Restored> {
    let path = cfg.path.display().to_string();
    let mut rec = recover(&cfg.path)
        .with_context(|| format!("recovering the journals in {path}"))?
        .with_max_record_bytes(cfg.options.max_record_bytes);
    let mut per_shard = vec![RecordBatch::new(); usize::from(shards)];
    let (mut undecodable, mut moved) = (0u64, 0u64);
    let stats = rec
        .replay(|old, r| match sipedge_core::record_owner(r, shards) {
            Some(owner) => {
                moved += u64::from(owner.0 != old);
                per_shard[usize::from(owner.0)].push(r);
            }
            None => undecodable += 1,
        })
        .with_context(|| format!("replaying the journals in {path}"))?;
    tracing::info!(
        target: "sip::reg",
        path,
        records = stats.records,
        files = stats.files,
        torn = stats.torn_records,
        corrupt = stats.corrupt_records,
        undecodable,
        written_by = rec.written_by_shards(),
        shards,
        "journals recovered"
    );
    let fill = |s: u16, w: &mut sipedge_journal::SnapshotWriter| {
        per_shard[usize::from(s)].iter().for_each(|r| w.emit(r));
    };
    // Records replayed by an old shard that no longer owns them (other shard count, or an
    // owner function that changed) must be rewritten, or their history would be split
    // between two shards' files and replayed out of order at the next start.
    let layout = if moved > 0 && !rec.needs_relayout(shards) {
        rec.relayout(shards, fill)
    } else {
        rec.finish(shards, fill)
    }
    .with_context(|| format!("writing the journal layout in {path}"))?;
    Ok(Restored {
        layout,
        options: cfg.options,
        per_shard,
    })
}

/// One shard's persistence: its journal and counters.
#[derive(Debug)]
pub struct ShardPersist {
    journal: ShardJournal,
    /// A snapshot being filled, and where the filling has got to.
    filling: Option<(SnapshotWriter, SnapshotCursor)>,
    /// Records the core refused on restore, or the journal refused on append.
    pub rejected: u64,
    /// Flushes or snapshots that failed (logged; retried).
    pub io_errors: u64,
}

impl ShardPersist {
    /// In the shard thread, before its first turn: restore the routed records into `core`
    /// (expired bindings are dropped by the core, expiry being wall-clock in the records),
    /// then open this shard's journal.
    pub fn restore(
        core: &mut Core,
        now: Millis,
        shard: u16,
        layout: &Layout,
        options: JournalOptions,
        records: RecordBatch,
    ) -> anyhow::Result<Self> {
        let mut rejected = 0;
        for r in &records {
            if core.restore_record(now, r).is_err() {
                rejected += 1;
            }
        }
        drop(records);
        let journal = layout
            .open_shard(shard, options)
            .with_context(|| format!("opening the journal of shard {shard}"))?;
        Ok(Self {
            journal,
            filling: None,
            rejected,
            io_errors: 0,
        })
    }

    /// Call once per turn after feeding the core and BEFORE draining `poll_transmit`:
    /// appends every journal record of the turn and applies the sync policy.
    pub fn end_turn(&mut self, core: &mut Core, now: Millis) {
        while let Some(rec) = core.poll_journal() {
            if self.journal.append(rec).is_err() {
                self.rejected += 1;
            }
        }
        if let Err(e) = self.journal.end_turn(now.0) {
            self.io_errors += 1;
            if self.io_errors.is_power_of_two() {
                tracing::error!(target: "sip::reg", error = %e, errors = self.io_errors, "journal flush failed; retrying next turn");
            }
        }
    }

    /// When the shard loop must wake for the batch deadline (merge with `poll_timeout`);
    /// at once while a snapshot is being filled.
    pub fn next_deadline(&self) -> Option<Millis> {
        if self.filling.is_some() {
            return Some(Millis(0));
        }
        self.journal.next_deadline().map(Millis)
    }

    /// Call after the turn's transmits are drained: collects a finished background
    /// snapshot, starts one when the journal has grown (the journal rotates, so every later
    /// change goes to the new file), and fills the one in progress with the records of the
    /// next [`SNAPSHOT_SLOTS_PER_TURN`] slots (`Core::binding_records_step` says why a
    /// snapshot spread over turns is right). Once filled, its fsync and rename run on their
    /// own thread.
    pub fn maybe_snapshot(&mut self, core: &Core) {
        match self.journal.poll_snapshot() {
            Some(Ok(s)) => {
                tracing::info!(target: "sip::reg", records = s.records, bytes = s.bytes, "journal snapshot written")
            }
            Some(Err(e)) => {
                self.io_errors += 1;
                tracing::error!(target: "sip::reg", error = %e, "journal snapshot failed; the journal keeps everything");
            }
            None => {}
        }
        if self.filling.is_none() {
            if !self.journal.wants_snapshot() {
                return;
            }
            let t = std::time::Instant::now();
            let begun = self.journal.begin_snapshot();
            let took = t.elapsed();
            if took >= std::time::Duration::from_millis(20) {
                tracing::warn!(target: "sip::reg", ms = took.as_millis() as u64, "journal rotation for a snapshot was slow (flush and fsyncs on the shard thread)");
            }
            match begun {
                Ok(w) => self.filling = Some((w, SnapshotCursor::default())),
                Err(e) => {
                    self.io_errors += 1;
                    tracing::error!(target: "sip::reg", error = %e, "journal snapshot failed; the journal keeps everything");
                    return;
                }
            }
        }
        let Some((w, cursor)) = self.filling.as_mut() else {
            return;
        };
        if !core.binding_records_step(cursor, SNAPSHOT_SLOTS_PER_TURN, |r| w.emit(r)) {
            return;
        }
        let Some((w, _)) = self.filling.take() else {
            return;
        };
        if let Err(e) = self.journal.commit_snapshot_in_background(w) {
            self.io_errors += 1;
            tracing::error!(target: "sip::reg", error = %e, "journal snapshot failed; the journal keeps everything");
        }
    }

    /// Clean stop: everything appended is made durable.
    pub fn shutdown(mut self, core: &mut Core) {
        while let Some(rec) = core.poll_journal() {
            let _ = self.journal.append(rec);
        }
        if let Err(e) = self.journal.flush() {
            tracing::error!(target: "sip::reg", error = %e, "journal flush at stop failed");
        }
    }
}
