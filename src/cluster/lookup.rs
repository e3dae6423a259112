//! The lookup thread and its invalidation subscriber.
//!
//! Lookups are served in batches: cache hits at once, the misses with one pipelined
//! `HGETALL` per AoR. Every answer skips this node's own bindings (the shard already has
//! them), expired ones, tombstones, and — unless `takeover` — bindings whose home node's
//! liveness key (`sipedge:node:<name>`) is gone. Liveness is refreshed once a second, off
//! the lookup path.
//!
//! **Cache**: per AoR, the live bindings read (or "none"), until the earliest expiry
//! (30 s for "none"), at most `cache_max` AoRs (oldest evicted first). Each writer
//! publishes the AoRs of every pipeline it wrote on `sipedge:inv` (one message, AoRs
//! separated by `\n`); the subscriber thread passes them here and the entries are
//! dropped. While the subscriber is not subscribed nothing is cached, and every
//! (re)subscription empties the cache (invalidations may have been missed). A read whose
//! AoR was invalidated while the read was under way is answered but not cached.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use sipedge_core::cluster::{RemoteAnswer, RemoteBinding};

use super::store::{connect, Conn};
use super::value::{self, aor_key, node_key, INVALIDATION_CHANNEL, NODES_KEY};
use super::{unix_ms, ClusterClient, Queued, Settings};

/// Lookups served per batch at most.
pub const LOOKUP_BATCH: usize = 256;
/// How long "no binding" stays cached, ms (invalidation drops it sooner).
pub const NEGATIVE_TTL_MS: u64 = 30_000;
/// How often node liveness is re-read.
pub const LIVENESS_PERIOD: Duration = Duration::from_secs(1);
/// Node names considered at most (the set is written by edges, but bounded all the same).
pub const MAX_NODES: usize = 4096;
/// Bindings kept per AoR read at most (hostile or broken data stays bounded).
pub const MAX_BINDINGS_PER_AOR: usize = 64;
const INVALIDATION_QUEUE: usize = 65_536;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Invalidations from the subscriber.
struct Invalidations {
    rx: Receiver<Box<[u8]>>,
    /// True while subscribed.
    subscribed: Arc<AtomicBool>,
    /// Bumped at every (re)subscription and on a lost invalidation (queue full).
    epoch: Arc<AtomicU64>,
    seen_epoch: u64,
}

#[derive(Debug)]
struct Entry {
    bindings: Vec<RemoteBinding>,
    valid_until_ms: u64,
}

/// The per-AoR cache, FIFO-evicted at `max`.
#[derive(Debug, Default)]
pub struct Cache {
    map: HashMap<Box<str>, Entry>,
    order: VecDeque<Box<str>>,
    max: usize,
}

impl Cache {
    fn new(max: usize) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    fn get(&self, aor: &str, now: u64) -> Option<&[RemoteBinding]> {
        self.map
            .get(aor)
            .filter(|e| e.valid_until_ms > now)
            .map(|e| &e.bindings[..])
    }

    fn insert(&mut self, aor: &str, bindings: Vec<RemoteBinding>, now: u64) {
        if self.max == 0 {
            return;
        }
        let valid_until_ms = bindings
            .iter()
            .map(|b| b.expires_at_unix_ms)
            .min()
            .unwrap_or(now.saturating_add(NEGATIVE_TTL_MS));
        while self.map.len() >= self.max || self.order.len() >= self.max.saturating_mul(2) {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&old);
        }
        let key: Box<str> = aor.into();
        self.order.push_back(key.clone());
        self.map.insert(
            key,
            Entry {
                bindings,
                valid_until_ms,
            },
        );
    }

    fn remove(&mut self, aor: &str) {
        self.map.remove(aor);
    }

    fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// Parses one `HGETALL` reply: the live (not tombstoned, not expired) bindings.
pub fn live_bindings(reply: &Value, now: u64) -> Vec<RemoteBinding> {
    let mut out = Vec::new();
    let mut push = |v: &Value| {
        if out.len() >= MAX_BINDINGS_PER_AOR {
            return;
        }
        if let Value::BulkString(b) = v {
            if let Some(d) = value::decode(b) {
                if !d.tombstone && d.binding.expires_at_unix_ms > now {
                    out.push(d.binding);
                }
            }
        }
    };
    match reply {
        Value::Map(pairs) => pairs.iter().for_each(|(_, v)| push(v)),
        Value::Array(items) => items.iter().skip(1).step_by(2).for_each(&mut push),
        _ => {}
    }
    out
}

/// What a lookup answers from the bindings read: this node's own and expired ones
/// skipped, and those of dead nodes unless `takeover`.
fn answer_of(
    bindings: &[RemoteBinding],
    s: &Settings,
    alive: &HashMap<String, bool>,
    now: u64,
) -> RemoteAnswer {
    let found: Vec<RemoteBinding> = bindings
        .iter()
        .filter(|b| {
            *b.node != *s.node
                && b.expires_at_unix_ms > now
                && (s.takeover || alive.get(&*b.node).copied().unwrap_or(true))
        })
        .cloned()
        .collect();
    if found.is_empty() {
        RemoteAnswer::NotFound
    } else {
        RemoteAnswer::Found(found)
    }
}

/// Nodes alive at the last refresh and not at this one (this node aside).
fn newly_dead(
    before: &HashMap<String, bool>,
    now: &HashMap<String, bool>,
    me: &str,
) -> Vec<String> {
    let mut died: Vec<String> = now
        .iter()
        .filter(|&(n, &up)| !up && n != me && before.get(n).copied().unwrap_or(false))
        .map(|(n, _)| n.clone())
        .collect();
    died.sort_unstable();
    died
}

struct Reader {
    client: ClusterClient,
    s: Settings,
    conn: Option<Conn>,
    next_try: Instant,
    backoff: Duration,
    cache: Cache,
    inv: Invalidations,
    alive: HashMap<String, bool>,
    last_liveness: Option<Instant>,
}

impl Reader {
    /// The connection, trying to (re)connect when the backoff allows; `None` while down.
    fn conn(&mut self) -> Option<&mut Conn> {
        if self.conn.is_none() && Instant::now() >= self.next_try {
            match connect(&self.s.redis, self.s.timeout) {
                Ok(c) => {
                    tracing::info!(target: "sip::cluster", "cluster lookups connected to Redis");
                    self.conn = Some(c);
                    self.backoff = BACKOFF_MIN;
                    self.last_liveness = None;
                }
                Err(e) => self.failed(&e),
            }
        }
        self.conn.as_mut()
    }

    fn failed(&mut self, e: &redis::RedisError) {
        if self.conn.take().is_some() || self.backoff == BACKOFF_MIN {
            tracing::warn!(target: "sip::cluster", error = %e, "cluster lookups: Redis unreachable; answering Unavailable");
        }
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// Applies pending invalidations; returns the AoRs invalidated (collected only when
    /// `collect`: this edge's own writes name every new binding, most of them never
    /// cached here), or `None` when the whole cache was dropped (new subscription, lost
    /// invalidations).
    fn invalidate(&mut self, collect: bool) -> Option<HashSet<Box<[u8]>>> {
        let epoch = self.inv.epoch.load(Ordering::Acquire);
        let mut whole = epoch != self.inv.seen_epoch;
        self.inv.seen_epoch = epoch;
        let mut seen = HashSet::new();
        loop {
            match self.inv.rx.try_recv() {
                // One message names a writer's whole pipeline: AoRs separated by `\n`.
                Ok(_) if self.cache.len() == 0 && !collect => {}
                Ok(msg) => {
                    for aor in msg.split(|&c| c == b'\n') {
                        if self.cache.len() > 0 {
                            if let Ok(a) = std::str::from_utf8(aor) {
                                self.cache.remove(a);
                            }
                        }
                        if collect {
                            seen.insert(aor.into());
                        }
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    whole = true;
                    break;
                }
            }
        }
        if whole || !self.inv.subscribed.load(Ordering::Acquire) {
            self.cache.clear();
            return None;
        }
        Some(seen)
    }

    fn refresh_liveness(&mut self) {
        if self
            .last_liveness
            .is_some_and(|t| t.elapsed() < LIVENESS_PERIOD)
        {
            return;
        }
        let Some(conn) = self.conn() else {
            return;
        };
        let members = conn.query(redis::cmd("SMEMBERS").arg(NODES_KEY));
        let names: Vec<String> = match members {
            Ok(Value::Array(v) | Value::Set(v)) => v
                .iter()
                .filter_map(|n| match n {
                    Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
                    _ => None,
                })
                .take(MAX_NODES)
                .collect(),
            Ok(_) => Vec::new(),
            Err(e) => {
                self.failed(&e);
                return;
            }
        };
        let cmds = names
            .iter()
            .map(|n| {
                let mut c = redis::cmd("EXISTS");
                c.arg(node_key(n));
                c
            })
            .collect();
        match conn.pipeline(cmds) {
            Ok(replies) => {
                let alive: HashMap<String, bool> = names
                    .into_iter()
                    .zip(replies)
                    .map(|(n, v)| (n, matches!(v, Value::Int(1))))
                    .collect();
                let died = newly_dead(&self.alive, &alive, &self.s.node);
                self.alive = alive;
                self.last_liveness = Some(Instant::now());
                if self.s.takeover {
                    for dead in died {
                        self.take_over(&dead);
                    }
                }
            }
            Err(e) => self.failed(&e),
        }
    }

    /// `takeover = true`: claims `dead` and adopts its bindings when this edge wins
    /// ([`super::takeover`]). A Redis error drops the connection (the claim stands for a
    /// minute; nothing retries it: the bindings stay answered to lookups as before).
    fn take_over(&mut self, dead: &str) {
        let client = self.client.clone();
        let s = self.s.clone();
        let Some(conn) = self.conn() else {
            return;
        };
        if let Err(e) = super::takeover::take_over(conn, &s, &client, dead) {
            tracing::warn!(target: "sip::cluster", dead, error = %e, "takeover failed");
            self.failed(&e);
        }
    }

    fn serve(&mut self, batch: Vec<Queued>) {
        let stats = Arc::clone(self.client.stats());
        let cacheable = self.invalidate(false).is_some();
        let now = unix_ms();
        let mut misses: Vec<Queued> = Vec::new();
        for q in batch {
            if q.at.elapsed() >= self.s.timeout {
                self.client
                    .answer(q.shard, q.q.token, RemoteAnswer::Unavailable);
                continue;
            }
            if cacheable {
                if let Some(b) = self.cache.get(&q.q.aor, now) {
                    stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                    let a = answer_of(b, &self.s, &self.alive, now);
                    self.client.answer(q.shard, q.q.token, a);
                    continue;
                }
            }
            stats.cache_misses.fetch_add(1, Ordering::Relaxed);
            misses.push(q);
        }
        if misses.is_empty() {
            return;
        }
        let mut aors: Vec<Box<str>> = misses.iter().map(|q| q.q.aor.clone()).collect();
        aors.sort_unstable();
        aors.dedup();
        let cmds = aors
            .iter()
            .map(|a| {
                let mut c = redis::cmd("HGETALL");
                c.arg(aor_key(a.as_bytes()));
                c
            })
            .collect();
        let replies = match self.conn() {
            Some(conn) => conn.pipeline(cmds),
            None => {
                for q in misses {
                    self.client
                        .answer(q.shard, q.q.token, RemoteAnswer::Unavailable);
                }
                return;
            }
        };
        let replies = match replies {
            Ok(r) if r.len() == aors.len() => r,
            Ok(_) => {
                for q in misses {
                    self.client
                        .answer(q.shard, q.q.token, RemoteAnswer::Unavailable);
                }
                return;
            }
            Err(e) => {
                self.failed(&e);
                for q in misses {
                    self.client
                        .answer(q.shard, q.q.token, RemoteAnswer::Unavailable);
                }
                return;
            }
        };
        // Invalidations that came during the read: answer, but do not cache those AoRs.
        let during = self.invalidate(true);
        let now = unix_ms();
        let read: HashMap<&str, Vec<RemoteBinding>> = aors
            .iter()
            .zip(&replies)
            .map(|(a, r)| (&**a, live_bindings(r, now)))
            .collect();
        if let Some(during) = &during {
            for (a, b) in &read {
                if !during.contains(a.as_bytes()) {
                    self.cache.insert(a, b.clone(), now);
                }
            }
        }
        for q in misses {
            let a = read.get(&*q.q.aor).map_or(RemoteAnswer::NotFound, |b| {
                answer_of(b, &self.s, &self.alive, now)
            });
            self.client.answer(q.shard, q.q.token, a);
        }
        stats
            .cache_entries
            .store(self.cache.len() as u64, Ordering::Relaxed);
    }
}

/// Starts the lookup thread and the subscriber.
pub(crate) fn spawn(
    client: ClusterClient,
    s: Settings,
    rx: Receiver<Queued>,
    stop: &Arc<AtomicBool>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let (inv_tx, inv_rx) = sync_channel(INVALIDATION_QUEUE);
    let subscribed = Arc::new(AtomicBool::new(false));
    let epoch = Arc::new(AtomicU64::new(0));
    let sub = {
        let (s, subscribed, epoch, stop) = (
            s.clone(),
            Arc::clone(&subscribed),
            Arc::clone(&epoch),
            Arc::clone(stop),
        );
        std::thread::Builder::new()
            .name("cluster-inv".into())
            .spawn(move || subscribe(&s, &inv_tx, &subscribed, &epoch, &stop))?
    };
    let mut reader = Reader {
        cache: Cache::new(s.cache_max),
        client,
        s,
        conn: None,
        next_try: Instant::now(),
        backoff: BACKOFF_MIN,
        inv: Invalidations {
            rx: inv_rx,
            subscribed,
            epoch,
            seen_epoch: 0,
        },
        alive: HashMap::new(),
        last_liveness: None,
    };
    let stop = Arc::clone(stop);
    let look = std::thread::Builder::new()
        .name("cluster-lookup".into())
        .spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let first = match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(q) => Some(q),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                // The gauge is the writer's when this edge writes, else this thread's.
                if !reader.client.writes() {
                    let up = u64::from(reader.conn.is_some());
                    reader.client.stats().redis_up.store(up, Ordering::Relaxed);
                }
                let Some(first) = first else {
                    reader.refresh_liveness();
                    reader.invalidate(false);
                    continue;
                };
                let mut batch = vec![first];
                while batch.len() < LOOKUP_BATCH {
                    match rx.try_recv() {
                        Ok(q) => batch.push(q),
                        Err(_) => break,
                    }
                }
                reader.serve(batch);
                reader.refresh_liveness();
            }
        })?;
    Ok(vec![sub, look])
}

/// The subscriber: one plain connection to the first seed that answers (a `PUBLISH` in a
/// Redis Cluster reaches every node), resubscribing with backoff.
fn subscribe(
    s: &Settings,
    tx: &SyncSender<Box<[u8]>>,
    subscribed: &AtomicBool,
    epoch: &AtomicU64,
    stop: &AtomicBool,
) {
    let mut backoff = BACKOFF_MIN;
    let mut seed = 0usize;
    while !stop.load(Ordering::Acquire) {
        let url = &s.redis[seed % s.redis.len().max(1)];
        seed = seed.wrapping_add(1);
        let conn = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection_with_timeout(s.timeout));
        let mut conn = match conn {
            Ok(c) => c,
            Err(_) => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let mut ps = conn.as_pubsub();
        if ps.subscribe(INVALIDATION_CHANNEL).is_err()
            || ps
                .set_read_timeout(Some(Duration::from_millis(100)))
                .is_err()
        {
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
            continue;
        }
        backoff = BACKOFF_MIN;
        epoch.fetch_add(1, Ordering::AcqRel);
        subscribed.store(true, Ordering::Release);
        while !stop.load(Ordering::Acquire) {
            match ps.get_message() {
                Ok(msg) => {
                    if tx.try_send(msg.get_payload_bytes().into()).is_err() {
                        // Lost: the whole cache goes.
                        epoch.fetch_add(1, Ordering::AcqRel);
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(_) => break,
            }
        }
        subscribed.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(node: &str, exp: u64) -> RemoteBinding {
        RemoteBinding {
            node: node.into(),
            home: "127.0.63.11:5060".parse().expect("addr"),
            contact: "sip:a@192.0.2.1".into(),
            expires_at_unix_ms: exp,
            q: 1000,
        }
    }

    fn settings(takeover: bool) -> Settings {
        Settings {
            node: "me".into(),
            address: "127.0.63.12:5060".parse().expect("addr"),
            redis: vec![],
            takeover,
            timeout: Duration::from_millis(300),
            backlog_max: 10,
            cache_max: 2,
        }
    }

    #[test]
    fn answers_skip_own_expired_and_dead_nodes_unless_takeover() {
        let alive: HashMap<String, bool> =
            [("a".to_string(), true), ("dead".to_string(), false)].into();
        let all = [
            b("me", 100),
            b("a", 100),
            b("a", 5),
            b("dead", 100),
            b("new", 100),
        ];
        let RemoteAnswer::Found(f) = answer_of(&all, &settings(false), &alive, 10) else {
            panic!("found");
        };
        let nodes: Vec<&str> = f.iter().map(|b| &*b.node).collect();
        assert_eq!(
            nodes,
            ["a", "new"],
            "own, expired and dead skipped; unknown is alive"
        );
        let RemoteAnswer::Found(f) = answer_of(&all, &settings(true), &alive, 10) else {
            panic!("found");
        };
        assert_eq!(f.len(), 3, "takeover keeps the dead node's binding");
        assert_eq!(
            answer_of(&[b("me", 100)], &settings(false), &alive, 10),
            RemoteAnswer::NotFound
        );
    }

    #[test]
    fn only_a_node_seen_alive_then_gone_is_newly_dead() {
        let m = |v: &[(&str, bool)]| -> HashMap<String, bool> {
            v.iter().map(|(n, b)| (n.to_string(), *b)).collect()
        };
        let before = m(&[("a", true), ("b", false), ("c", true), ("me", true)]);
        let now = m(&[
            ("a", false),
            ("b", false),
            ("c", true),
            ("me", false),
            ("d", false),
        ]);
        assert_eq!(newly_dead(&before, &now, "me"), ["a"]);
    }

    #[test]
    fn cache_expires_with_the_earliest_binding_and_is_capped() {
        let mut c = Cache::new(2);
        c.insert("x", vec![b("a", 50), b("a", 40)], 10);
        assert!(c.get("x", 39).is_some());
        assert!(c.get("x", 40).is_none(), "valid until the earliest expiry");
        c.insert("y", vec![], 10);
        assert!(c.get("y", 10 + NEGATIVE_TTL_MS - 1).is_some());
        c.insert("z", vec![], 10);
        assert_eq!(c.len(), 2);
        assert!(c.get("x", 11).is_none(), "the oldest is evicted");
        c.remove("z");
        assert!(c.get("z", 11).is_none());
    }
}
