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
    /// When the snapshot in progress began (filling and background commit).
    snapshot_started: Option<std::time::Instant>,
    /// Records the core refused on restore, or the journal refused on append.
    pub rejected: u64,
    /// Flushes or snapshots that failed (logged; retried).
    pub io_errors: u64,
    /// Counters for the metrics (`sipedge_journal_*`).
    pub counters: PersistCounters,
}

/// What the metrics show of one shard's journal beyond [`sipedge_journal::JournalStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PersistCounters {
    /// Records the journal refused (backlog full, or too large): the change is in memory
    /// only.
    pub refused: u64,
    /// `sync = "every"`: replies not sent because their turn's changes did not become
    /// durable (the phone retransmits and is answered once the journal works again).
    pub replies_withheld: u64,
    /// Snapshots that became durable, and the seconds they took all together (from the
    /// rotation to the background commit's end) and the last one.
    pub snapshots: u64,
    pub snapshot_seconds_total: f64,
    pub last_snapshot_seconds: f64,
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
            snapshot_started: None,
            rejected,
            io_errors: 0,
            counters: PersistCounters::default(),
        })
    }

    /// The journal's own counters.
    pub fn journal_stats(&self) -> sipedge_journal::JournalStats {
        self.journal.stats()
    }

    /// Test hook (see [`ShardJournal::inject_write_failure`]).
    #[cfg(test)]
    pub fn inject_write_failure(&mut self) -> std::io::Result<()> {
        self.journal.inject_write_failure()
    }

    /// Call once per turn after feeding the core and BEFORE draining `poll_transmit`:
    /// appends every journal record of the turn and applies the sync policy.
    ///
    /// With `sync = "every"` a reply acknowledges a durable change, so when a record of the
    /// turn was refused or the write or `fdatasync` failed, the turn's datagrams are
    /// withheld (dropped from the core's queue, counted, logged): the phone retransmits and
    /// gets its 200 OK once the journal works again (the registrar answers a retransmission
    /// again). Returns false when it withheld them.
    #[cfg(test)]
    pub fn end_turn(&mut self, core: &mut Core, now: Millis) -> bool {
        self.end_turn_with(core, now, |_| {})
    }

    /// [`ShardPersist::end_turn`], also handing every record to `also` (the cluster
    /// write-behind's tee, issue 20) before it is appended.
    pub fn end_turn_with(
        &mut self,
        core: &mut Core,
        now: Millis,
        mut also: impl FnMut(&[u8]),
    ) -> bool {
        let mut refused = 0u64;
        while let Some(rec) = core.poll_journal() {
            also(rec);
            if let Err(e) = self.journal.append(rec) {
                refused += 1;
                self.counters.refused += 1;
                if self.counters.refused.is_power_of_two() {
                    tracing::error!(target: "sip::reg", error = %e, refused = self.counters.refused, "journal refused a binding change; it is kept in memory only");
                }
            }
        }
        self.rejected += refused;
        let flushed = match self.journal.end_turn(now.0) {
            Ok(()) => true,
            Err(e) => {
                self.io_errors += 1;
                if self.io_errors.is_power_of_two() {
                    tracing::error!(target: "sip::reg", error = %e, errors = self.io_errors, "journal flush failed; retrying next turn");
                }
                false
            }
        };
        let every = self.journal.options().policy == sipedge_journal::SyncPolicy::Every;
        if !every || (flushed && refused == 0) {
            return true;
        }
        let mut withheld = 0u64;
        while core.poll_transmit().is_some() {
            withheld += 1;
        }
        let before = self.counters.replies_withheld;
        self.counters.replies_withheld += withheld;
        // Logged at each power of two crossed: a dead disk does not flood the log.
        if withheld > 0 && (before == 0 || before.ilog2() != self.counters.replies_withheld.ilog2())
        {
            tracing::error!(target: "sip::reg", withheld = self.counters.replies_withheld, "sync = \"every\": replies withheld because the journal could not make their changes durable");
        }
        false
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
                let secs = self
                    .snapshot_started
                    .take()
                    .map_or(0.0, |t| t.elapsed().as_secs_f64());
                self.counters.snapshots += 1;
                self.counters.snapshot_seconds_total += secs;
                self.counters.last_snapshot_seconds = secs;
                tracing::info!(target: "sip::reg", records = s.records, bytes = s.bytes, secs, "journal snapshot written")
            }
            Some(Err(e)) => {
                self.snapshot_started = None;
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
                Ok(w) => {
                    self.snapshot_started = Some(t);
                    self.filling = Some((w, SnapshotCursor::default()));
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use sipedge_core::{CoreConfig, LocalId};
    use sipedge_journal::SyncPolicy;

    fn register(core: &mut Core, user: &str) {
        let r = format!(
            "REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{user}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@localhost>;tag=1\r\nTo: <sip:{user}@localhost>\r\nCall-ID: {user}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@127.0.0.1:5070>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
        );
        let from = std::net::SocketAddr::from(([127, 0, 0, 1], 5070));
        core.handle_datagram(Millis(10), LocalId(0), from, r.as_bytes());
    }

    fn setup(name: &str) -> (Core, ShardPersist, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("sipedge-persist-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let layout = recover(&dir)
            .and_then(|r| r.finish(1, |_, _| {}))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut core = Core::new(CoreConfig {
            journal: true,
            ..CoreConfig::default()
        });
        core.set_wall_clock(Millis(0), 1_700_000_000_000);
        let p = ShardPersist::restore(
            &mut core,
            Millis(0),
            0,
            &layout,
            JournalOptions::new(SyncPolicy::Every),
            RecordBatch::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        (core, p, dir)
    }

    #[test]
    fn sync_every_withholds_the_turns_200_when_the_journal_write_fails() {
        let (mut core, mut p, dir) = setup("withhold");
        register(&mut core, "alice");
        assert!(p.end_turn(&mut core, Millis(10)));
        assert_eq!(
            core.pending_transmits(),
            1,
            "a durable change is acknowledged"
        );
        while core.poll_transmit().is_some() {}
        p.inject_write_failure().unwrap_or_else(|e| panic!("{e}"));
        register(&mut core, "bob");
        assert!(!p.end_turn(&mut core, Millis(20)));
        assert_eq!(
            core.pending_transmits(),
            0,
            "no 200 OK for a change that is not durable"
        );
        assert_eq!(p.counters.replies_withheld, 1);
        assert!(p.journal_stats().errors >= 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
