//! [`Syncer`]: the background `fdatasync` of `Batch` journals, so a shard never waits for
//! the disk in that mode.
//!
//! The shard thread still `write`s each batch itself (a copy into the page cache: the
//! records then survive a killed process), then hands the file to this thread, which
//! `fdatasync`s it (survive a power loss). Requests that pile up while a sync runs are
//! coalesced into one sync per file.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A file to sync and the number of the batch that asks for it.
type Request = (Arc<File>, Arc<PathBuf>, u64);

/// Counters shared with the syncer thread.
#[derive(Debug, Default)]
pub(crate) struct SyncCounters {
    /// Highest batch number known durable.
    pub(crate) durable: AtomicU64,
    /// `fdatasync` calls made.
    pub(crate) syncs: AtomicU64,
    /// `fdatasync` calls that failed.
    pub(crate) errors: AtomicU64,
}

/// Handle of one shard's syncer thread. Dropping it lets the thread finish what it was
/// asked and joins it.
#[derive(Debug)]
pub(crate) struct Syncer {
    tx: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    pub(crate) counters: Arc<SyncCounters>,
}

impl Syncer {
    pub(crate) fn spawn(shard: u16) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Request>();
        let counters = Arc::new(SyncCounters::default());
        let c = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name(format!("journal-sync-{shard}"))
            .spawn(move || run(shard, &rx, &c))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            counters,
        })
    }

    /// Asks for `file` to be synced on behalf of batch `seq`.
    pub(crate) fn request(&self, file: &Arc<File>, path: &Arc<PathBuf>, seq: u64) {
        if let Some(tx) = &self.tx {
            // The thread only ends when `tx` is dropped, so a send cannot fail while we hold it.
            let _ = tx.send((Arc::clone(file), Arc::clone(path), seq));
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shard: u16, rx: &Receiver<Request>, c: &SyncCounters) {
    while let Ok(first) = rx.recv() {
        // Coalesce: everything queued now is covered by one sync per distinct file.
        let mut batch: Vec<Request> = vec![first];
        while let Ok(more) = rx.try_recv() {
            match batch.iter_mut().find(|(f, _, _)| Arc::ptr_eq(f, &more.0)) {
                Some(slot) => slot.2 = slot.2.max(more.2),
                None => batch.push(more),
            }
        }
        for (file, path, seq) in batch {
            c.syncs.fetch_add(1, Ordering::Relaxed);
            match file.sync_data() {
                Ok(()) => {
                    c.durable.fetch_max(seq, Ordering::Release);
                }
                Err(e) => {
                    let n = c.errors.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.is_power_of_two() {
                        tracing::error!(shard, file = %path.display(), error = %e, errors = n, "journal: background fdatasync failed");
                    }
                }
            }
        }
    }
}
