//! The edge's shared ban list (issue 17): what every shard and the operator see. A shard
//! that bans a source reports it ([`sipedge_core::CoreEvent::Banned`]) and the shell records
//! it here; the operator lists, adds and lifts bans here (the admin API's
//! `GET/POST/DELETE /api/v1/bans`). Each shard takes the changes between two turns
//! ([`BanRegistry::sync`]): one relaxed atomic load per turn when nothing changed.
//!
//! Bounded: at most `cap` bans (expired ones purged first, then the one ending soonest), and
//! a change log of [`LOG_CAP`] entries; a shard that fell further behind gets the whole list
//! again ([`BanChange::Reset`] then every ban).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use sipedge_core::{BanReason, Millis};

/// Changes remembered for shards that have not caught up yet.
pub const LOG_CAP: usize = 4096;
/// The longest ban the operator may set (a year).
pub const MAX_BAN_SECS: u64 = 365 * 24 * 3600;

/// One change for a shard's core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanChange {
    /// Ban until (the shards' monotonic clock).
    Ban(IpAddr, Millis),
    /// Lift.
    Unban(IpAddr),
    /// Forget every ban (the whole list follows).
    Reset,
}

/// A ban as listed to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanInfo {
    /// The source.
    pub ip: IpAddr,
    /// Why: `density`, `scanner`, `guessing`, `user_guessing`, or `operator`.
    pub reason: &'static str,
    /// Seconds left.
    pub remaining_secs: u64,
}

/// Why `POST /api/v1/bans` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BanError {
    /// `secs` is 0 or above [`MAX_BAN_SECS`].
    Duration,
    /// The address cannot be a source (unspecified, multicast, broadcast).
    Address(IpAddr),
}

impl std::fmt::Display for BanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BanError::Duration => write!(f, "secs must be within 1..={MAX_BAN_SECS}"),
            BanError::Address(ip) => write!(f, "{ip} is not a unicast source address"),
        }
    }
}

impl std::error::Error for BanError {}

#[derive(Debug, Clone, Copy)]
struct Entry {
    until: Millis,
    reason: &'static str,
}

#[derive(Debug, Default)]
struct Inner {
    bans: HashMap<IpAddr, Entry>,
    /// `(sequence number, change)`, oldest first.
    log: VecDeque<(u64, BanChange)>,
    seq: u64,
}

/// Where a shard is in the change log.
#[derive(Debug, Default, Clone, Copy)]
pub struct BanCursor {
    seq: u64,
}

/// The shared ban list. Thread-safe; the lock is taken only on a change and by a shard
/// that has changes to take.
#[derive(Debug)]
pub struct BanRegistry {
    epoch: Instant,
    cap: usize,
    /// The sequence number of the last change (what a shard compares its cursor with).
    generation: AtomicU64,
    inner: Mutex<Inner>,
    wakers: Mutex<Vec<sipedge_rt::Waker>>,
    /// The kernel's copy of the list (`sipedge_rt::BanFilter`), when BPF is permitted.
    filter: std::sync::OnceLock<sipedge_rt::BanFilter>,
    /// Datagrams the kernel filter dropped for bans that have ended.
    kernel_dropped: AtomicU64,
}

fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The stream listeners' accept filter (issue 19 with issue 17): a connection from a
/// banned source is closed at accept, before a byte is read or a TLS handshake started.
pub fn accept_filter(bans: &std::sync::Arc<BanRegistry>) -> sipedge_rt::stream::AcceptFilter {
    let bans = std::sync::Arc::clone(bans);
    std::sync::Arc::new(move |ip| bans.is_banned(ip))
}

impl BanRegistry {
    /// An empty list of at most `cap` bans; `epoch` is the shards' clock origin.
    pub fn new(epoch: Instant, cap: usize) -> BanRegistry {
        BanRegistry {
            epoch,
            cap: cap.max(1),
            generation: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
            wakers: Mutex::new(Vec::new()),
            filter: std::sync::OnceLock::new(),
            kernel_dropped: AtomicU64::new(0),
        }
    }

    /// Hands the kernel filter over: from now on every ban is also written to its map, so a
    /// banned source's datagrams are dropped before any shard sees them.
    pub fn set_filter(&self, filter: sipedge_rt::BanFilter) {
        let inner = self.lock();
        for ip in inner.bans.keys() {
            let _ = filter.ban(*ip);
        }
        let _ = self.filter.set(filter);
    }

    fn kernel_ban(&self, ip: IpAddr) {
        if let Some(f) = self.filter.get() {
            if let Err(e) = f.ban(ip) {
                tracing::debug!(%ip, error = %e, "kernel ban filter: map update failed");
            }
        }
    }

    fn kernel_unban(&self, ip: IpAddr) {
        if let Some(n) = self.filter.get().and_then(|f| f.unban(ip)) {
            self.kernel_dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Datagrams the kernel filter dropped (for bans that have ended or been lifted; a
    /// running ban's count is read with [`BanRegistry::kernel_dropped_for`]).
    pub fn kernel_dropped(&self) -> u64 {
        self.kernel_dropped.load(Ordering::Relaxed)
    }

    /// Datagrams the kernel filter dropped on the socket `fd` (0 without a filter).
    pub fn filter_drops(&self, fd: std::os::fd::RawFd) -> u64 {
        self.filter.get().map_or(0, |f| f.socket_drops(fd))
    }

    /// A kernel filter is attached (bans and shed shares reach the kernel).
    pub fn has_filter(&self) -> bool {
        self.filter.get().is_some()
    }

    /// Sets the kernel filter's shed share of OPTIONS/REGISTER/new INVITEs on socket `fd` (no-op
    /// without a filter; see `overload.rs`).
    pub fn set_kernel_shed(&self, fd: std::os::fd::RawFd, share: u64) {
        if let Some(f) = self.filter.get() {
            if let Err(e) = f.set_shed(fd, share) {
                tracing::debug!(fd, error = %e, "kernel filter: shed share not written");
            }
        }
    }

    /// The requests the kernel filter shed on socket `fd`, by class (zero without a filter).
    pub fn kernel_shed(&self, fd: std::os::fd::RawFd) -> sipedge_rt::KernelShed {
        self.filter
            .get()
            .map_or_else(Default::default, |f| f.socket_shed(fd))
    }

    /// Datagrams of `ip` the kernel filter dropped during its current ban.
    pub fn kernel_dropped_for(&self, ip: IpAddr) -> Option<u64> {
        self.filter.get()?.dropped(canonical(ip))
    }

    /// Forgets the bans that have ended (and takes them out of the kernel filter). Called
    /// about once a second by one shard.
    pub fn sweep(&self) {
        let now = self.now();
        let mut ended = Vec::new();
        self.lock().bans.retain(|ip, e| {
            let live = e.until > now;
            if !live {
                ended.push(*ip);
            }
            live
        });
        for ip in ended {
            self.kernel_unban(ip);
        }
    }

    /// The shards to wake when the operator changes the list (so an idle shard applies it
    /// before the next datagram it reads).
    pub fn set_wakers(&self, wakers: Vec<sipedge_rt::Waker>) {
        *self.wakers.lock().unwrap_or_else(|e| e.into_inner()) = wakers;
    }

    fn now(&self) -> Millis {
        Millis(self.epoch.elapsed().as_millis() as u64)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, inner: &mut Inner, change: BanChange) {
        inner.seq += 1;
        inner.log.push_back((inner.seq, change));
        while inner.log.len() > LOG_CAP {
            inner.log.pop_front();
        }
        self.generation.store(inner.seq, Ordering::Release);
    }

    fn insert(&self, ip: IpAddr, until: Millis, reason: &'static str) -> bool {
        let ip = canonical(ip);
        let now = self.now();
        let mut inner = self.lock();
        if let Some(e) = inner.bans.get_mut(&ip) {
            if e.until >= until {
                return false;
            }
            e.until = until;
            e.reason = reason;
        } else {
            self.kernel_ban(ip);
            if inner.bans.len() >= self.cap {
                inner.bans.retain(|_, e| e.until > now);
            }
            if inner.bans.len() >= self.cap {
                let victim = inner
                    .bans
                    .iter()
                    .min_by_key(|(_, e)| e.until)
                    .map(|(k, _)| *k);
                if let Some(v) = victim {
                    inner.bans.remove(&v);
                    self.kernel_unban(v);
                    self.push(&mut inner, BanChange::Unban(v));
                }
            }
            inner.bans.insert(ip, Entry { until, reason });
        }
        self.push(&mut inner, BanChange::Ban(ip, until));
        true
    }

    /// Records a ban a shard decided (from its [`sipedge_core::CoreEvent::Banned`]).
    /// The other shards are woken, so an idle one applies the ban before it reads the
    /// banned source's next datagram (a wake costs nothing when a shard is busy).
    pub fn record(&self, ip: IpAddr, until: Millis, reason: BanReason) -> bool {
        let new = self.insert(ip, until, reason.label());
        if new {
            self.wake();
        }
        new
    }

    /// True when changes after `cursor` wait (a shard about to block checks this).
    pub fn pending(&self, cursor: &BanCursor) -> bool {
        self.generation.load(Ordering::Acquire) != cursor.seq
    }

    /// The operator bans `ip` for `secs` seconds (applied even to trusted sources).
    pub fn ban(&self, ip: IpAddr, secs: u64) -> Result<(), BanError> {
        if !(1..=MAX_BAN_SECS).contains(&secs) {
            return Err(BanError::Duration);
        }
        let ip = canonical(ip);
        let unicast = match ip {
            IpAddr::V4(v) => !(v.is_unspecified() || v.is_multicast() || v.is_broadcast()),
            IpAddr::V6(v) => !(v.is_unspecified() || v.is_multicast()),
        };
        if !unicast {
            return Err(BanError::Address(ip));
        }
        let until = self.now().plus(secs.saturating_mul(1000));
        self.insert(ip, until, "operator");
        self.wake();
        Ok(())
    }

    /// The operator lifts the ban of `ip`. False: it was not banned.
    pub fn unban(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        let now = self.now();
        let had = {
            let mut inner = self.lock();
            let had = inner.bans.remove(&ip).is_some_and(|e| e.until > now);
            // Sent even for an unknown one: a shard may hold a ban the list has evicted.
            self.push(&mut inner, BanChange::Unban(ip));
            had
        };
        self.kernel_unban(ip);
        self.wake();
        had
    }

    fn wake(&self) {
        for w in self.wakers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            w.wake();
        }
    }

    /// The bans in force, soonest-ending last, by address.
    pub fn list(&self) -> Vec<BanInfo> {
        let now = self.now();
        let mut v: Vec<BanInfo> = self
            .lock()
            .bans
            .iter()
            .filter(|(_, e)| e.until > now)
            .map(|(ip, e)| BanInfo {
                ip: *ip,
                reason: e.reason,
                remaining_secs: (e.until.0 - now.0).div_ceil(1000),
            })
            .collect();
        v.sort_by_key(|b| b.ip);
        v
    }

    /// True when `ip` is banned now. Free while nothing was ever banned.
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        if self.generation.load(Ordering::Acquire) == 0 {
            return false;
        }
        let now = self.now();
        self.lock()
            .bans
            .get(&canonical(ip))
            .is_some_and(|e| e.until > now)
    }

    /// Hands the changes after `cursor` to `apply` (a shard, between turns).
    pub fn sync(&self, cursor: &mut BanCursor, mut apply: impl FnMut(BanChange)) {
        if self.generation.load(Ordering::Acquire) == cursor.seq {
            return;
        }
        let inner = self.lock();
        let oldest = inner.log.front().map_or(inner.seq + 1, |(s, _)| *s);
        if cursor.seq + 1 < oldest {
            apply(BanChange::Reset);
            for (ip, e) in &inner.bans {
                apply(BanChange::Ban(*ip, e.until));
            }
        } else {
            for (_, c) in inner.log.iter().filter(|(s, _)| *s > cursor.seq) {
                apply(*c);
            }
        }
        cursor.seq = inner.seq;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn ban_list_unban() {
        let r = BanRegistry::new(Instant::now(), 100);
        assert_eq!(r.ban(ip("192.0.2.1"), 0), Err(BanError::Duration));
        assert!(r.ban(ip("0.0.0.0"), 10).is_err());
        assert!(r.ban(ip("192.0.2.1"), 60).is_ok());
        assert!(r.record(
            ip("::ffff:192.0.2.2"),
            Millis(u64::MAX / 2),
            BanReason::Scanner
        ));
        let l = r.list();
        assert_eq!(l.len(), 2);
        assert_eq!((l[0].ip, l[0].reason), (ip("192.0.2.1"), "operator"));
        assert!((59..=60).contains(&l[0].remaining_secs));
        assert_eq!((l[1].ip, l[1].reason), (ip("192.0.2.2"), "scanner"));
        assert!(r.is_banned(ip("192.0.2.2")));
        assert!(r.unban(ip("192.0.2.1")));
        assert!(!r.unban(ip("192.0.2.1")));
        assert_eq!(r.list().len(), 1);
    }

    #[test]
    fn shards_see_every_change_once() {
        let r = BanRegistry::new(Instant::now(), 100);
        let mut c = BanCursor::default();
        let mut seen = Vec::new();
        r.sync(&mut c, |x| seen.push(x));
        assert!(seen.is_empty());
        assert!(r.ban(ip("192.0.2.1"), 60).is_ok());
        r.unban(ip("192.0.2.1"));
        r.sync(&mut c, |x| seen.push(x));
        assert!(matches!(seen[0], BanChange::Ban(a, _) if a == ip("192.0.2.1")));
        assert_eq!(seen[1], BanChange::Unban(ip("192.0.2.1")));
        seen.clear();
        r.sync(&mut c, |x| seen.push(x));
        assert!(seen.is_empty());
    }

    #[test]
    fn bounded_and_a_late_shard_resyncs() {
        let r = BanRegistry::new(Instant::now(), 10);
        let mut c = BanCursor::default();
        for i in 0..(LOG_CAP as u32 + 50) {
            r.record(
                IpAddr::V4((0x0a00_0000 + i).into()),
                Millis(1 << 40),
                BanReason::Density,
            );
        }
        assert_eq!(r.list().len(), 10);
        let mut seen = Vec::new();
        r.sync(&mut c, |x| seen.push(x));
        assert_eq!(seen[0], BanChange::Reset);
        assert_eq!(seen.len(), 11);
    }

    /// The kernel filter follows the list: a ban drops the source's datagrams before the
    /// socket, an unban lets them through, and the drops are counted.
    #[test]
    fn the_kernel_filter_follows_the_list() {
        let f = match sipedge_rt::BanFilter::new(64) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("BPF not permitted here ({e}): skipped");
                return;
            }
        };
        let rx = std::net::UdpSocket::bind("127.0.117.210:0").unwrap_or_else(|e| panic!("{e}"));
        rx.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap_or_else(|e| panic!("{e}"));
        f.attach(&rx, false).unwrap_or_else(|e| panic!("{e}"));
        let r = BanRegistry::new(Instant::now(), 100);
        r.set_filter(f);
        let tx = std::net::UdpSocket::bind("127.0.117.211:0").unwrap_or_else(|e| panic!("{e}"));
        let to = rx.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 16];
        assert!(r.ban(ip("127.0.117.211"), 60).is_ok());
        tx.send_to(b"x", to).unwrap_or_else(|e| panic!("{e}"));
        assert!(rx.recv_from(&mut buf).is_err(), "dropped in the kernel");
        assert_eq!(r.kernel_dropped_for(ip("127.0.117.211")), Some(1));
        assert!(r.unban(ip("127.0.117.211")));
        assert_eq!(r.kernel_dropped(), 1);
        tx.send_to(b"y", to).unwrap_or_else(|e| panic!("{e}"));
        assert!(rx.recv_from(&mut buf).is_ok());
    }
}
