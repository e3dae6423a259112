//! The cluster thread (issue 20): registrations shared across edges on Redis/Valkey,
//! spoken through the `redis` crate — never on a shard.
//!
//! * **Write-behind** ([`writer`]): each shard tees its journal records
//!   ([`ClusterClient::tee`], a bounded queue: a full queue drops the record, counts it and
//!   asks for a resync, never blocks the shard). The writer coalesces them per AoR in a
//!   backlog of at most `backlog_max` AoRs and writes them in pipelines, one script call per
//!   AoR. Redis down: the backlog waits (coalesced, so it holds at most one entry per AoR
//!   changed) and is flushed when Redis is back; then every shard re-sends all its
//!   bindings ([`ShardTee::resync_step`], spread over turns, paced by the queue's room) —
//!   a Redis master or server that restarted without persistence lost what was written
//!   before the outage, and an overflowed backlog lost changes. A start is a resync too,
//!   so a restarted edge writes its restored bindings (its own view of its own bindings
//!   wins: they carry their versions).
//! * **Lookups** ([`lookup`]): [`ClusterClient::lookup`] queues a [`RemoteLookup`]; the
//!   lookup thread answers from its cache or with one pipelined `HGETALL` per batch, and
//!   hands the [`RemoteAnswer`] to the shard ([`ClusterClient::drain_answers`]), waking it.
//!   Redis known down: `Unavailable` at once.
//!
//! # Schema
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `sipedge:b:{<aor>}` | hash | one AoR's bindings (the AoR is the hash tag: one slot); TTL = the longest binding's remaining expiry |
//! | `sipedge:node:<name>` | string | the node's SIP address; set every 1 s with a 3 s TTL (liveness) |
//! | `sipedge:nodes` | set | every node name that ever wrote (whose liveness lookups check) |
//! | `sipedge:inv` | pub/sub channel | each write pipeline publishes its AoRs (one message, `\n`-separated) once written: each edge drops its cached entries |
//! | `sipedge:takeover:<name>` | string | the survivor adopting dead node `<name>`'s bindings (`SET NX`, 60 s; [`takeover`]) |
//!
//! A binding's **field** is `i:<+sip.instance>;<reg-id>` (RFC 5626) or `c:<Contact URI>`
//! (RFC 3261 §10.3 step 7). Its **value** is
//! `<version ms>:<cseq>:<expires ms>:<u|t>\n<node>\n<home addr>\n<q×1000>\n<contact>\n<path>`,
//! an upsert followed by `\n<source addr>\n<call-id>` (what a takeover needs) ([`value`]): `u` a live binding, `t` a tombstone left by a deregistration. Writes and
//! deletes go through one Lua script ([`store::WRITE_SCRIPT`], `EVALSHA`) that refuses a
//! version older than the stored one (registration time, then CSeq) and keeps tombstones
//! at least as long as what they replaced, so a late, older write cannot resurrect a binding.
//! In array mode with `share = false` nothing is written (the others cannot see this edge's
//! users); lookups still read what the others share.

pub mod backlog;
pub mod lookup;
pub mod pipe;
pub mod store;
pub mod takeover;
pub mod thin;
pub mod value;
pub mod writer;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sipedge_core::cluster::{RemoteAnswer, RemoteLookup};
use sipedge_core::{Core, SnapshotCursor};

use crate::config_cluster::ClusterConfig;

/// Records the tee queue holds at most (all shards together).
pub const TEE_QUEUE: usize = 65_536;
/// [`Teed`] buffers kept for reuse at most, and the largest kept.
const SPARE_BATCHES: usize = 16;
const SPARE_BATCH_BYTES: usize = 256 << 10;
/// Lookups the lookup queue holds at most.
pub const LOOKUP_QUEUE: usize = 16_384;
/// Answers a shard's inbox holds at most (beyond: dropped, counted; the transaction's own
/// timer ends it).
pub const ANSWER_QUEUE: usize = 16_384;
/// Bindings waiting for adoption in a shard's inbox at most (beyond: dropped, counted).
pub const ADOPT_QUEUE: usize = 65_536;
/// Table slots a resync covers per shard turn at most.
pub const RESYNC_SLOTS_PER_TURN: usize = 4096;

/// Counters for `/metrics` (`sipedge_cluster_*`).
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// AoRs written (one script call each).
    pub writes: AtomicU64,
    /// Write pipelines that failed (the batch stays in the backlog).
    pub write_errors: AtomicU64,
    /// AoRs waiting in the backlog (gauge).
    pub backlog: AtomicU64,
    /// Changes dropped because the tee queue or the backlog was full.
    pub dropped: AtomicU64,
    /// Full resynchronisations requested (start, overflow, Redis back after an outage).
    pub resyncs: AtomicU64,
    /// Lookups asked, answered from the cache, read from Redis.
    pub lookups: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    /// Answers `Unavailable` (Redis down, error, timeout, queue full).
    pub unavailable: AtomicU64,
    /// Answers dropped because a shard's inbox was full.
    pub answers_dropped: AtomicU64,
    /// 1 while the writer's and the lookup thread's connections are up (gauge).
    pub redis_up: AtomicU64,
    /// Cached AoRs (gauge).
    pub cache_entries: AtomicU64,
    /// Dead nodes whose bindings this edge claimed (`takeover = true`).
    pub takeovers: AtomicU64,
    /// Bindings of dead nodes adopted (stored by a shard).
    pub adopted: AtomicU64,
    /// Refreshes not written: Redis's copy still had over half the new lifetime (`thin`).
    pub thinned: AtomicU64,
}

impl ClusterStats {
    /// Appends the Prometheus text.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let rows: [(&str, &str, &str, &AtomicU64); 15] = [
            (
                "sipedge_cluster_writes_total",
                "counter",
                "AoRs written to Redis (one versioned script call each).",
                &self.writes,
            ),
            (
                "sipedge_cluster_write_errors_total",
                "counter",
                "Write pipelines that failed (kept in the backlog, retried).",
                &self.write_errors,
            ),
            (
                "sipedge_cluster_backlog",
                "gauge",
                "AoRs with changes waiting to be written.",
                &self.backlog,
            ),
            (
                "sipedge_cluster_dropped_total",
                "counter",
                "Binding changes dropped (tee queue or backlog full); a resync follows.",
                &self.dropped,
            ),
            (
                "sipedge_cluster_thinned_total",
                "counter",
                "Refreshes not written to Redis: its copy still had over half their lifetime.",
                &self.thinned,
            ),
            (
                "sipedge_cluster_resyncs_total",
                "counter",
                "Full resynchronisations of this edge's bindings to Redis.",
                &self.resyncs,
            ),
            (
                "sipedge_cluster_lookups_total",
                "counter",
                "Remote lookups asked.",
                &self.lookups,
            ),
            (
                "sipedge_cluster_cache_hits_total",
                "counter",
                "Remote lookups answered from the cache.",
                &self.cache_hits,
            ),
            (
                "sipedge_cluster_cache_misses_total",
                "counter",
                "Remote lookups read from Redis.",
                &self.cache_misses,
            ),
            (
                "sipedge_cluster_unavailable_total",
                "counter",
                "Remote lookups answered Unavailable (Redis down, error, timeout or queue full).",
                &self.unavailable,
            ),
            (
                "sipedge_cluster_answers_dropped_total",
                "counter",
                "Answers dropped because a shard's inbox was full.",
                &self.answers_dropped,
            ),
            (
                "sipedge_cluster_redis_up",
                "gauge",
                "1 while Redis answers the cluster thread.",
                &self.redis_up,
            ),
            (
                "sipedge_cluster_cache_entries",
                "gauge",
                "AoRs in the lookup cache.",
                &self.cache_entries,
            ),
            (
                "sipedge_cluster_takeovers_total",
                "counter",
                "Dead edges whose bindings this edge claimed and adopted (takeover = true).",
                &self.takeovers,
            ),
            (
                "sipedge_cluster_adopted_total",
                "counter",
                "Bindings of dead edges adopted by this edge (takeover = true).",
                &self.adopted,
            ),
        ];
        for (name, kind, help, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
}

/// The changes teed by a shard in one turn: `count` changes, each a little-endian `u32`
/// length and its bytes ([`push_record`], [`records`]), and the wall time of the turn.
/// One allocation and one channel send per turn, not per change. A change is teed encoded
/// for Redis ([`encode_teed`]: the shard decoded the journal record to thin it, so the
/// writer does not decode it again), and the writer copies it into its backlog as it is
/// ([`backlog::Pending::from_teed`]).
#[derive(Debug)]
pub struct Teed {
    pub records: Vec<u8>,
    pub count: usize,
}

/// Appends one record to a [`Teed`] batch (a record over 4 GiB, which the core never
/// writes, is skipped): true when appended.
#[cfg(test)]
pub fn push_record(buf: &mut Vec<u8>, rec: &[u8]) -> bool {
    let Ok(len) = u32::try_from(rec.len()) else {
        return false;
    };
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(rec);
    true
}

/// Appends `change`, encoded for Redis ([`value::encode_into`]: this node's field and
/// value, `unix_ms` the version of a removal), to a [`Teed`] batch as one record: the AoR's
/// length (`u32` little-endian), then the [`backlog::Pending`] bytes. False (nothing
/// appended) for a change that cannot be encoded.
pub fn encode_teed(
    client: &ClusterClient,
    batch: &mut Vec<u8>,
    change: &sipedge_core::BindingChange<'_>,
    unix_ms: u64,
) -> bool {
    // Encoded in place: the record's length and the AoR's, then the entry's bytes.
    let start = batch.len();
    batch.extend_from_slice(&[0; 8]);
    let aor_len = value::encode_append(change, &client.inner.node_home, unix_ms, batch);
    let len = u32::try_from(batch.len() - start - 4);
    match (aor_len.and_then(|a| u32::try_from(a).ok()), len) {
        (Some(aor_len), Ok(len)) => {
            batch[start..start + 4].copy_from_slice(&len.to_le_bytes());
            batch[start + 4..start + 8].copy_from_slice(&aor_len.to_le_bytes());
            true
        }
        _ => {
            batch.truncate(start);
            false
        }
    }
}

/// The records of a [`Teed`] batch.
pub fn records(mut buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = buf.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        let rec = rest.get(..len)?;
        buf = &rest[len..];
        Some(rec)
    })
}

/// A lookup queued by a shard.
#[derive(Debug)]
pub struct Queued {
    pub shard: usize,
    pub q: RemoteLookup,
    pub at: Instant,
}

struct Inbox {
    answers: Mutex<Vec<(u64, RemoteAnswer)>>,
    /// Bindings to adopt (takeover), and whether any wait.
    adopt: Mutex<Vec<takeover::Adopt>>,
    pending: AtomicBool,
}

struct Inner {
    lookups: SyncSender<Queued>,
    tee: Option<SyncSender<Teed>>,
    teed: AtomicUsize,
    inboxes: Vec<Inbox>,
    wakers: Vec<sipedge_rt::Waker>,
    /// Per shard: re-send every binding (set by the writer, taken by the shard).
    resync: Vec<AtomicBool>,
    /// Set when a teed change was dropped: the writer asks for a resync.
    overflowed: AtomicBool,
    stats: Arc<ClusterStats>,
    /// This node's name and SIP address ([`value::node_home`]), which every teed change is
    /// encoded with.
    node_home: Vec<u8>,
    /// [`Teed`] buffers the writer is done with, for the shards' next turns
    /// ([`SPARE_BATCHES`] at most).
    spare: Mutex<Vec<Vec<u8>>>,
}

/// The shards' handle on the cluster thread. `Clone + Send + Sync`.
#[derive(Clone)]
pub struct ClusterClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("shards", &self.inner.inboxes.len())
            .finish_non_exhaustive()
    }
}

impl ClusterClient {
    /// Queues a lookup. Never blocks: a full queue hands the lookup back at once (the
    /// caller answers it as `Unavailable`), counted.
    pub fn lookup(&self, shard: usize, q: RemoteLookup) -> Result<(), RemoteLookup> {
        let s = &self.inner.stats;
        s.lookups.fetch_add(1, Ordering::Relaxed);
        match self.inner.lookups.try_send(Queued {
            shard,
            q,
            at: Instant::now(),
        }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(q) | TrySendError::Disconnected(q)) => {
                s.unavailable.fetch_add(1, Ordering::Relaxed);
                Err(q.q)
            }
        }
    }

    /// Calls `f` with every answer ready for `shard` (the shard drains them each turn; it is
    /// woken when one arrives).
    pub fn drain_answers(&self, shard: usize, mut f: impl FnMut(u64, RemoteAnswer)) {
        let Some(inbox) = self.inner.inboxes.get(shard) else {
            return;
        };
        if !inbox.pending.swap(false, Ordering::Acquire) {
            return;
        }
        let answers = std::mem::take(&mut *lock(&inbox.answers));
        for (token, a) in answers {
            f(token, a);
        }
    }

    /// Calls `f` with every binding waiting to be adopted by `shard` (drained each turn,
    /// with the answers; the same wake-up).
    pub fn drain_adopted(&self, shard: usize, mut f: impl FnMut(takeover::Adopt)) {
        let Some(inbox) = self.inner.inboxes.get(shard) else {
            return;
        };
        let adopt = std::mem::take(&mut *lock(&inbox.adopt));
        for a in adopt {
            f(a);
        }
    }

    /// Hands a dead node's binding to its AoR's owner shard; `Err` hands it back when that
    /// shard's inbox is full.
    pub fn adopt(&self, a: Box<takeover::Adopt>) -> Result<(), Box<takeover::Adopt>> {
        let n = self.inner.inboxes.len();
        let shard = usize::from(sipedge_core::aor_owner(&a.aor, u16::try_from(n).unwrap_or(1)).0);
        let Some(inbox) = self.inner.inboxes.get(shard) else {
            return Err(a);
        };
        {
            let mut q = lock(&inbox.adopt);
            if q.len() >= ADOPT_QUEUE {
                return Err(a);
            }
            q.push(*a);
        }
        if !inbox.pending.swap(true, Ordering::Release) {
            if let Some(w) = self.inner.wakers.get(shard) {
                w.wake();
            }
        }
        Ok(())
    }

    /// True when answers wait for `shard` (for the shard's "may I block" check).
    pub fn has_answers(&self, shard: usize) -> bool {
        self.inner
            .inboxes
            .get(shard)
            .is_some_and(|i| i.pending.load(Ordering::Acquire))
    }

    /// Tees one journal record (a binding change; the shards send a turn's records at once
    /// through [`ShardTee`]) to the writer; `unix_ms` is the wall
    /// time of the shard's turn. Never blocks: a full queue drops it, counted, and a resync
    /// follows.
    #[cfg(test)]
    pub fn tee(&self, record: &[u8], unix_ms: u64) {
        let mut records = Vec::with_capacity(4 + record.len());
        let Ok(change) = sipedge_core::decode_change(record) else {
            return;
        };
        if encode_teed(self, &mut records, &change, unix_ms) {
            self.tee_batch(records, 1);
        }
    }

    /// Tees a turn's `count` records (see [`Teed`]). Never blocks: when the queue cannot
    /// take them all ([`TEE_QUEUE`] records at most wait), they are dropped, counted, and a
    /// resync follows.
    pub fn tee_batch(&self, records: Vec<u8>, count: usize) {
        let Some(tx) = &self.inner.tee else {
            return;
        };
        if count == 0 {
            return;
        }
        let before = self.inner.teed.fetch_add(count, Ordering::Relaxed);
        let fits = before.saturating_add(count) <= TEE_QUEUE;
        if !fits || tx.try_send(Teed { records, count }).is_err() {
            self.inner.teed.fetch_sub(count, Ordering::Relaxed);
            self.inner
                .stats
                .dropped
                .fetch_add(count as u64, Ordering::Relaxed);
            self.inner.overflowed.store(true, Ordering::Release);
        }
    }

    /// Keeps a [`Teed`] buffer the writer is done with for a shard's next turn (never
    /// waits for the lock: a buffer that finds it taken is freed).
    pub(crate) fn recycle_batch(&self, mut records: Vec<u8>) {
        if records.capacity() > SPARE_BATCH_BYTES {
            return;
        }
        if let Ok(mut spare) = self.inner.spare.try_lock() {
            if spare.len() < SPARE_BATCHES {
                records.clear();
                spare.push(records);
            }
        }
    }

    /// True when this edge writes to Redis (`ClusterConfig::writes`).
    pub fn writes(&self) -> bool {
        self.inner.tee.is_some()
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<ClusterStats> {
        &self.inner.stats
    }

    fn answer(&self, shard: usize, token: u64, a: RemoteAnswer) {
        let Some(inbox) = self.inner.inboxes.get(shard) else {
            return;
        };
        if matches!(a, RemoteAnswer::Unavailable) {
            self.inner.stats.unavailable.fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut q = lock(&inbox.answers);
            if q.len() >= ANSWER_QUEUE {
                self.inner
                    .stats
                    .answers_dropped
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
            q.push((token, a));
        }
        if !inbox.pending.swap(true, Ordering::Release) {
            if let Some(w) = self.inner.wakers.get(shard) {
                w.wake();
            }
        }
    }

    fn request_resync(&self) {
        self.inner.stats.resyncs.fetch_add(1, Ordering::Relaxed);
        for r in &self.inner.resync {
            r.store(true, Ordering::Release);
        }
        for w in &self.inner.wakers {
            w.wake();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A shard's side of the write-behind: tees its journal records and, when asked, re-sends
/// all its bindings (a resync) a bounded slice per turn.
#[derive(Debug)]
pub struct ShardTee {
    client: ClusterClient,
    shard: usize,
    cursor: Option<SnapshotCursor>,
    /// Refresh thinning, before the copy and the queue (`thin`): a refresh storm costs the
    /// shard a decode and a hash lookup per change, not an allocation and a channel send.
    thin: thin::Thinner,
    /// This turn's records, sent as one [`Teed`] by [`ShardTee::resync_step`].
    batch: Vec<u8>,
    count: usize,
}

impl ShardTee {
    /// `shard`'s tee.
    pub fn new(client: ClusterClient, shard: usize) -> Self {
        Self {
            client,
            shard,
            cursor: None,
            thin: thin::Thinner::default(),
            batch: Vec::new(),
            count: 0,
        }
    }

    /// Encodes `change` into the turn's batch.
    fn push(&mut self, change: &sipedge_core::BindingChange<'_>, unix_ms: u64) {
        if encode_teed(&self.client, &mut self.batch, change, unix_ms) {
            self.count += 1;
        }
    }

    /// Sends the turn's records (one channel message).
    fn flush(&mut self) {
        if self.count > 0 {
            // A buffer the writer is done with, when there is one (a fresh one each turn
            // cost the allocator's page faults: tens of kB, freed on another thread).
            let next = self
                .client
                .inner
                .spare
                .try_lock()
                .ok()
                .and_then(|mut s| s.pop())
                .unwrap_or_else(|| Vec::with_capacity(self.batch.len()));
            let records = std::mem::replace(&mut self.batch, next);
            self.client
                .tee_batch(records, std::mem::take(&mut self.count));
        }
    }

    /// Tees one record (see [`ClusterClient::tee`]) unless it is a refresh Redis need not
    /// see yet (`thin`).
    pub fn record(&mut self, rec: &[u8], unix_ms: u64) {
        // A record that does not decode could not be written either (the core never
        // journals one).
        if let Ok(change) = sipedge_core::decode_change(rec) {
            if !self.thin.must_write(&change, unix_ms) {
                self.client.stats().thinned.fetch_add(1, Ordering::Relaxed);
                return;
            }
            self.push(&change, unix_ms);
        }
    }

    /// Without a journal: tees every record the core has queued this turn.
    pub fn drain(&mut self, core: &mut Core, unix_ms: u64) {
        while let Some(rec) = core.poll_journal() {
            if let Ok(change) = sipedge_core::decode_change(rec) {
                if !self.thin.must_write(&change, unix_ms) {
                    self.client.stats().thinned.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                if encode_teed(&self.client, &mut self.batch, &change, unix_ms) {
                    self.count += 1;
                }
            }
        }
    }

    /// True when the shard must not block: a resync was asked for or is under way.
    pub fn pending(&self) -> bool {
        self.cursor.is_some()
            || self
                .client
                .inner
                .resync
                .get(self.shard)
                .is_some_and(|r| r.load(Ordering::Acquire))
    }

    /// Once per turn, after the turn's records were teed: sends them (one message), then
    /// continues (or starts, when the writer asked) a resync, at most
    /// [`RESYNC_SLOTS_PER_TURN`] slots and never more records than the queue has room for.
    /// True while one is under way (the shard should not block).
    pub fn resync_step(&mut self, core: &Core, unix_ms: u64) -> bool {
        self.flush();
        let inner = &self.client.inner;
        if inner.tee.is_none() {
            return false;
        }
        if self.cursor.is_none() {
            let asked = inner
                .resync
                .get(self.shard)
                .is_some_and(|r| r.swap(false, Ordering::AcqRel));
            if !asked {
                return false;
            }
            // Redis may have lost what it held (or a change was dropped): every binding is
            // written again, and so is the next change of each.
            self.thin.clear();
            self.cursor = Some(SnapshotCursor::default());
        }
        let room = TEE_QUEUE
            .saturating_sub(inner.teed.load(Ordering::Relaxed))
            .saturating_sub(TEE_QUEUE / 4);
        let slots = room.min(RESYNC_SLOTS_PER_TURN);
        if slots == 0 {
            return true;
        }
        let Some(cursor) = self.cursor.as_mut() else {
            return false;
        };
        let (batch, count) = (&mut self.batch, &mut self.count);
        let client = &self.client;
        let done = core.binding_records_step(cursor, slots, |r| {
            if let Ok(change) = sipedge_core::decode_change(r) {
                if encode_teed(client, batch, &change, unix_ms) {
                    *count += 1;
                }
            }
        });
        let visited = cursor.slots_visited();
        self.flush();
        if done {
            tracing::info!(target: "sip::cluster", shard = self.shard, slots = visited, "cluster resync: every binding re-sent");
            self.cursor = None;
        }
        !done
    }
}

/// The running cluster threads; [`ClusterThreads::stop`] ends them.
#[derive(Debug)]
pub struct ClusterThreads {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ClusterThreads {
    /// Stops and joins every thread (each notices within ~100 ms, or its Redis timeout).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// What the threads share besides the client.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub node: String,
    pub address: SocketAddr,
    pub redis: Vec<String>,
    pub takeover: bool,
    pub timeout: Duration,
    pub backlog_max: usize,
    pub cache_max: usize,
}

/// Starts the writer (when this edge writes), the lookup thread and its invalidation
/// subscriber. `wakers[i]` wakes shard `i` when an answer is ready for it. The threads
/// connect in the background: a Redis down at start is not an error (lookups answer
/// `Unavailable`, writes wait in the backlog).
pub fn start(
    cfg: &ClusterConfig,
    wakers: Vec<sipedge_rt::Waker>,
) -> anyhow::Result<(ClusterClient, ClusterThreads)> {
    let shards = wakers.len();
    let (lookup_tx, lookup_rx) = sync_channel(LOOKUP_QUEUE);
    let (tee_tx, tee_rx): (Option<SyncSender<Teed>>, Option<Receiver<Teed>>) = if cfg.writes() {
        let (t, r) = sync_channel(TEE_QUEUE);
        (Some(t), Some(r))
    } else {
        (None, None)
    };
    let client = ClusterClient {
        inner: Arc::new(Inner {
            lookups: lookup_tx,
            tee: tee_tx,
            teed: AtomicUsize::new(0),
            inboxes: (0..shards)
                .map(|_| Inbox {
                    answers: Mutex::new(Vec::new()),
                    adopt: Mutex::new(Vec::new()),
                    pending: AtomicBool::new(false),
                })
                .collect(),
            wakers,
            // A start is a resync: a restarted edge writes its restored bindings.
            resync: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            overflowed: AtomicBool::new(false),
            stats: Arc::default(),
            node_home: value::node_home(&cfg.node, cfg.address),
            spare: Mutex::new(Vec::new()),
        }),
    };
    let settings = Settings {
        node: cfg.node.clone(),
        address: cfg.address,
        redis: cfg.redis.clone(),
        takeover: cfg.takeover,
        timeout: Duration::from_millis(cfg.lookup_timeout_ms),
        backlog_max: cfg.backlog_max,
        cache_max: cfg.cache_max,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    if let Some(rx) = tee_rx {
        client.request_resync();
        let (c, s, st) = (client.clone(), settings.clone(), Arc::clone(&stop));
        threads.push(
            std::thread::Builder::new()
                .name("cluster-write".into())
                .spawn(move || writer::run(c, s, rx, st))?,
        );
    }
    threads.extend(lookup::spawn(client.clone(), settings, lookup_rx, &stop)?);
    Ok((client, ClusterThreads { stop, threads }))
}

/// Now, UNIX milliseconds.
pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;

/// The shards' glue (`cluster_glue::turn`) talks to the cluster thread through this.
impl crate::cluster_glue::ClusterPort for ClusterClient {
    fn lookup(&self, shard: usize, lookup: RemoteLookup) -> Result<(), RemoteLookup> {
        ClusterClient::lookup(self, shard, lookup)
    }

    fn drain_answers(&self, shard: usize, f: &mut dyn FnMut(u64, RemoteAnswer)) {
        ClusterClient::drain_answers(self, shard, f);
    }
}
