//! The write-behind thread: teed journal records → a backlog coalesced per AoR (at most
//! `backlog_max` AoRs) → pipelines of versioned script calls, one per master, written by
//! hand into reused buffers ([`super::pipe`]). Also the node's heartbeat
//! (`sipedge:node:<name>`, 3 s TTL, every second). Redis down: the backlog waits and the
//! connection is retried with a doubling backoff (100 ms … 5 s); an overflow, and the first
//! successful flush after a failure (Redis may have come back empty), ask every shard for
//! a resync.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backlog::{Backlog, Pending};
use super::pipe::Nodes;
use super::value::{node_key, NODES_KEY};
use super::{unix_ms, ClusterClient, Settings, Teed};

/// AoRs written per pipeline at most. Redis serves a pipeline a read buffer (16 kB, some
/// 60 calls) at a time between other clients, so a large one does not hold up lookups;
/// each pipeline is a round trip the writer waits for (under a CPU quota, often a whole
/// scheduling period), so a writer that falls behind catches up in large ones.
pub const FLUSH_BATCH: usize = 2048;
/// Heartbeat period, and the liveness key's TTL.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
pub const NODE_TTL_MS: u64 = 3_000;
/// How long the writer lets changes gather after one woke it from idle, and between two
/// pipelines that are not full: one wake-up and one pipeline per [`LINGER`] under a
/// steady stream, not one per shard turn (each wake-up a futex call on the shard and a
/// context switch on a shared core). The write-behind's delay grows by at most this much.
/// 10 ms, not 2: each pipeline costs the edge fixed work (a wake-up, a send and a receive
/// per master — on loopback Redis's TCP receive runs in the sender's context —, the
/// `PUBLISH`, and the subscriber's wake-up for it); at 2 ms a storm of new bindings went
/// out ~70 AoRs per pipeline, and those fixed costs were a third of the writer's CPU
/// (issue 20). A registration reaches the other edges ≤ 10 ms later.
pub const LINGER: Duration = Duration::from_millis(10);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

struct Link {
    conn: Option<Nodes>,
    next_try: Instant,
    backoff: Duration,
}

impl Link {
    fn get(&mut self, s: &Settings, client: &ClusterClient) -> Option<&mut Nodes> {
        if self.conn.is_none() && Instant::now() >= self.next_try {
            match Nodes::connect(&s.redis, s.timeout) {
                Ok(c) => {
                    tracing::info!(target: "sip::cluster", "cluster writer connected to Redis");
                    self.conn = Some(c);
                    self.backoff = BACKOFF_MIN;
                    client.stats().redis_up.store(1, Ordering::Relaxed);
                }
                Err(e) => self.failed(client, &e),
            }
        }
        self.conn.as_mut()
    }

    fn failed(&mut self, client: &ClusterClient, e: &redis::RedisError) {
        if self.conn.take().is_some() || self.backoff == BACKOFF_MIN {
            tracing::warn!(target: "sip::cluster", error = %e, "cluster writer: Redis unreachable; changes wait in the backlog");
        }
        client.stats().redis_up.store(0, Ordering::Relaxed);
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

/// The thread's body.
pub(crate) fn run(client: ClusterClient, s: Settings, rx: Receiver<Teed>, stop: Arc<AtomicBool>) {
    let mut backlog = Backlog::new();
    let mut batch: Vec<Pending> = Vec::with_capacity(FLUSH_BATCH);
    let mut link = Link {
        conn: None,
        next_try: Instant::now(),
        backoff: BACKOFF_MIN,
    };
    let mut last_beat: Option<Instant> = None;
    // When the last pipeline was sent: a partial batch waits until [`LINGER`] after it.
    let mut last_write = Instant::now();
    // Set by a failed connection or write, cleared by the first flush that succeeds after it
    // (Redis is back), which asks every shard to re-send its bindings: a master or server
    // that restarted without persistence lost what was written before (issue 20 item 5).
    let mut outage = false;
    // Changes were dropped: a resync is owed, started when the writer has caught up.
    let mut resync_owed = false;
    let stats = Arc::clone(client.stats());
    while !stop.load(Ordering::Acquire) {
        // Gather what the shards teed: between two pipelines without waiting, but only while
        // the backlog is under half full — a gather must not overflow the backlog: a resync
        // re-sends every binding paced by the tee queue's room, and a backlog that
        // overflowed under it would ask for another resync, for ever. What waits stays in
        // the tee queue (the shards' pacing). When idle, wait a little, never long.
        // Keeping up: at most one pipeline per LINGER unless a full batch waits (each
        // pipeline is a round trip the writer sleeps through: two context switches on the
        // shard's core, a PUBLISH, syscalls per master).
        if backlog.len() > 0 && backlog.len() < FLUSH_BATCH && link.conn.is_some() {
            if let Some(wait) = LINGER.checked_sub(last_write.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let room = |b: &Backlog| b.len() == 0 || b.len() < s.backlog_max / 2;
        let gather = room(&backlog);
        let mut got = if !gather {
            if link.conn.is_none() {
                // Redis down and the backlog full enough: nothing to do but wait.
                std::thread::sleep(Duration::from_millis(50));
            }
            None
        } else if backlog.len() > 0 && link.conn.is_some() {
            match rx.try_recv() {
                Ok(t) => Some(t),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Disconnected) => break,
            }
        } else {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(t) => {
                    if link.conn.is_some() {
                        // Not parked on the channel while changes gather: the shards'
                        // sends meanwhile wake nobody.
                        std::thread::sleep(LINGER);
                    }
                    Some(t)
                }
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut overflow = false;
        let mut n = 0usize;
        while let Some(t) = got.take() {
            client.inner.teed.fetch_sub(t.count, Ordering::Relaxed);
            for rec in super::records(&t.records) {
                // Encoded by the shard (`super::encode_teed`): copied as it is.
                let buf = backlog.buffer();
                if let Some(e) = Pending::from_teed(buf, rec) {
                    if !backlog.push(e, s.backlog_max) {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        overflow = true;
                    }
                }
            }
            client.recycle_batch(t.records);
            n += t.count;
            if n < 65_536 && room(&backlog) {
                got = rx.try_recv().ok();
            }
        }
        if client.inner.overflowed.swap(false, Ordering::AcqRel) || overflow {
            if !resync_owed {
                tracing::warn!(target: "sip::cluster", backlog = backlog.len(), "cluster write-behind overflowed; every shard re-sends its bindings once the writer has caught up");
            }
            resync_owed = true;
        } else if resync_owed
            && backlog.len() == 0
            && client.inner.teed.load(Ordering::Relaxed) == 0
        {
            // Only once the storm is over: a resync started while changes still come faster
            // than Redis takes them would overflow again and re-send everything again.
            resync_owed = false;
            client.request_resync();
        }
        stats.backlog.store(backlog.len() as u64, Ordering::Relaxed);
        if link.get(&s, &client).is_none() {
            outage = true;
            continue;
        }
        let Some(conn) = link.conn.as_mut() else {
            continue;
        };
        if backlog.len() > 0 {
            last_write = Instant::now();
        }
        match flush(conn, &s, &mut backlog, &mut batch, &mut last_beat, &stats) {
            Ok(()) if outage => {
                outage = false;
                tracing::info!(target: "sip::cluster", "Redis answers again; every shard re-sends its bindings");
                client.request_resync();
            }
            Ok(()) => {}
            Err(Some(e)) => {
                outage = true;
                link.failed(&client, &e);
            }
            Err(None) => {
                // An error reply (`MOVED` after a resharding, `NOSCRIPT`…): reconnect soon,
                // not in a tight loop if it persists (`OOM`, a slot no master serves).
                outage = true;
                link.conn = None;
                link.next_try = Instant::now() + BACKOFF_MIN;
            }
        }
        stats.backlog.store(backlog.len() as u64, Ordering::Relaxed);
    }
}

/// The heartbeat when due, then one batch of the backlog ([`FLUSH_BATCH`] AoRs, one
/// pipeline per master; the caller gathers what was teed meanwhile before the next).
/// `Err(Some)`: Redis failed;
/// `Err(None)`: an error reply (`NOSCRIPT` after a Redis restart, `MOVED` after a topology
/// change…): reconnect (which reads the slot map and loads the script again). A batch
/// that failed is back in the backlog.
fn flush(
    conn: &mut Nodes,
    s: &Settings,
    backlog: &mut Backlog,
    batch: &mut Vec<Pending>,
    last_beat: &mut Option<Instant>,
    stats: &super::ClusterStats,
) -> Result<(), Option<redis::RedisError>> {
    // Heartbeat: this node is alive (lookups elsewhere skip the bindings of dead nodes).
    if last_beat.is_none_or(|t| t.elapsed() >= HEARTBEAT) {
        let key = node_key(&s.node);
        let mut set = redis::cmd("SET");
        set.arg(&key)
            .arg(s.address.to_string())
            .arg("PX")
            .arg(NODE_TTL_MS);
        let mut add = redis::cmd("SADD");
        add.arg(NODES_KEY).arg(&s.node);
        conn.command(key.as_bytes(), &set).map_err(Some)?;
        conn.command(NODES_KEY.as_bytes(), &add).map_err(Some)?;
        *last_beat = Some(Instant::now());
    }
    if backlog.len() > 0 {
        backlog.take(FLUSH_BATCH, batch);
        match conn.write(unix_ms(), batch) {
            Ok(()) => {
                stats
                    .writes
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                for p in batch.drain(..) {
                    backlog.recycle(p);
                }
            }
            Err(e) => {
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
                backlog.put_back(batch);
                return Err(e);
            }
        }
        stats.backlog.store(backlog.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}
