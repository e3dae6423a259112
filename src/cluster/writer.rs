//! The write-behind thread: teed journal records → a backlog coalesced per AoR (at most
//! `backlog_max` AoRs) → pipelines of versioned script calls, one per master, written by
//! hand into reused buffers ([`super::pipe`]). Also the node's heartbeat
//! (`sipedge:node:<name>`, 3 s TTL, every second). Redis down: the backlog waits and the
//! connection is retried with a doubling backoff (100 ms … 5 s); an overflow, and the first
//! successful flush after a failure (Redis may have come back empty), ask every shard for
//! a resync.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::pipe::Nodes;
use super::value::{self, node_key, NODES_KEY};
use super::{unix_ms, ClusterClient, Settings, Teed};

/// AoRs written per pipeline at most.
pub const FLUSH_BATCH: usize = 512;
/// Heartbeat period, and the liveness key's TTL.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
pub const NODE_TTL_MS: u64 = 3_000;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// One AoR's pending fields: (field, value), the latest value per field.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;
/// AoRs with their pending fields.
pub type Batch = Vec<(Box<[u8]>, Fields)>;

/// The pending changes, one entry per AoR, each field's latest value.
#[derive(Debug, Default)]
pub struct Backlog {
    order: VecDeque<Box<[u8]>>,
    map: HashMap<Box<[u8]>, Fields>,
}

impl Backlog {
    /// AoRs waiting.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Adds a change, replacing an older one for the same field. False (dropped) when it
    /// is for a new AoR and `max` AoRs already wait.
    pub fn push(&mut self, e: value::Encoded, max: usize) -> bool {
        if let Some(fields) = self.map.get_mut(&e.aor) {
            match fields.iter_mut().find(|(f, _)| *f == e.field) {
                Some(slot) => slot.1 = e.value,
                None => fields.push((e.field, e.value)),
            }
            return true;
        }
        if self.map.len() >= max {
            return false;
        }
        self.order.push_back(e.aor.clone());
        self.map.insert(e.aor, vec![(e.field, e.value)]);
        true
    }

    /// Takes up to `n` AoRs, oldest first.
    pub fn take(&mut self, n: usize) -> Batch {
        let mut out = Vec::with_capacity(n.min(self.map.len()));
        while out.len() < n {
            let Some(aor) = self.order.pop_front() else {
                break;
            };
            if let Some(fields) = self.map.remove(&aor) {
                out.push((aor, fields));
            }
        }
        out
    }

    /// Puts a batch that could not be written back in front (its changes are older than
    /// anything that arrived since, which the single writer thread could not have taken).
    pub fn put_back(&mut self, batch: Batch) {
        for (aor, fields) in batch.into_iter().rev() {
            match self.map.get_mut(&aor) {
                Some(newer) => {
                    for (f, v) in fields {
                        if !newer.iter().any(|(nf, _)| *nf == f) {
                            newer.push((f, v));
                        }
                    }
                }
                None => {
                    self.order.push_front(aor.clone());
                    self.map.insert(aor, fields);
                }
            }
        }
    }
}

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
    let mut backlog = Backlog::default();
    let mut link = Link {
        conn: None,
        next_try: Instant::now(),
        backoff: BACKOFF_MIN,
    };
    let mut last_beat: Option<Instant> = None;
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
                Ok(t) => Some(t),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut overflow = false;
        let mut n = 0usize;
        while let Some(t) = got.take() {
            client.inner.teed.fetch_sub(t.count, Ordering::Relaxed);
            for rec in super::records(&t.records) {
                if let Ok(change) = sipedge_core::decode_change(rec) {
                    if let Some(e) = value::encode(&change, &s.node, s.address, t.unix_ms) {
                        if !backlog.push(e, s.backlog_max) {
                            stats.dropped.fetch_add(1, Ordering::Relaxed);
                            overflow = true;
                        }
                    }
                }
            }
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
        match flush(conn, &s, &mut backlog, &mut last_beat, &stats) {
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
        let batch = backlog.take(FLUSH_BATCH);
        match conn.write(unix_ms(), &batch) {
            Ok(()) => {
                stats
                    .writes
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(aor: &str, field: &str, v: &str) -> value::Encoded {
        value::Encoded {
            aor: aor.as_bytes().into(),
            field: field.into(),
            value: v.into(),
        }
    }

    #[test]
    fn backlog_coalesces_per_aor_and_field_and_is_capped() {
        let mut b = Backlog::default();
        assert!(b.push(enc("a", "f1", "1"), 2));
        assert!(b.push(enc("a", "f1", "2"), 2));
        assert!(b.push(enc("a", "f2", "3"), 2));
        assert!(b.push(enc("b", "f1", "4"), 2));
        assert!(!b.push(enc("c", "f1", "5"), 2), "a third AoR is refused");
        assert!(
            b.push(enc("b", "f1", "6"), 2),
            "a known AoR still coalesces"
        );
        assert_eq!(b.len(), 2);
        let batch = b.take(10);
        assert_eq!(batch.len(), 2);
        assert_eq!(
            batch[0].1,
            vec![
                (b"f1".to_vec(), b"2".to_vec()),
                (b"f2".to_vec(), b"3".to_vec())
            ]
        );
        assert_eq!(batch[1].1, vec![(b"f1".to_vec(), b"6".to_vec())]);
        assert_eq!(b.len(), 0);
        // A failed batch goes back; a newer change for its field since wins.
        assert!(b.push(enc("a", "f1", "9"), 2));
        b.put_back(batch);
        let again = b.take(10);
        assert_eq!(again[0].0.as_ref(), b"b");
        let a = again.iter().find(|(k, _)| k.as_ref() == b"a").expect("a");
        assert!(a.1.contains(&(b"f1".to_vec(), b"9".to_vec())));
        assert!(a.1.contains(&(b"f2".to_vec(), b"3".to_vec())));
    }
}
