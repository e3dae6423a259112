//! A shard's pressure (issue 17 item 1): measured by the shell once per turn from the
//! turn's CPU time (lag), the receive queue's fill and the kernel's drop count
//! (`SO_MEMINFO`, [`sipedge_rt::socket_meminfo`]), turned into the level the core sheds at
//! ([`sipedge_core::Core::handle_pressure`]): 0 none, 1 new requests, 2 refreshes too.
//! The level rises at once and steps down one level after `calm_ms` below it, so it does
//! not flap turn by turn.
//!
//! Turn lag is the CPU time the shard thread spent on the turn ([`Turn::cpu`],
//! `CLOCK_THREAD_CPUTIME_ID`), not its wall time: under a cgroup CPU quota or a busy host a
//! turn's wall time includes the time the thread was throttled or preempted, which is no
//! work it could shed (seen: one 50 ms turn under the load rig's quota before any flood,
//! level 1 for 0.5 s, 138 calls refused 503). A shard truly short of CPU falls behind, and
//! that shows in the queue signals, which are unchanged.
//!
//! Kernel shedding (issue 17 item 6): the meter also sets the share of OPTIONS, REGISTER
//! and new INVITE datagrams the eBPF socket filter drops before they are queued
//! ([`Pressure::kernel_shed_share`], written to the filter by the shard). It is a controller
//! on the admitted share `a = 1 - share` that admits what the shard serves and holds the
//! receive queue near a short target `T` = `kernel_shed_queue_percent` of SO_RCVBUF, from
//! the fill `f` (basis points: a 16 MiB buffer is read to 1.6 KiB, about one datagram):
//!
//! * new kernel drops (the queue overflowed) → `a /= 2`;
//! * at the end of each 20 ms window, **rate matching**: `a = g × read / (read + shed)`,
//!   `read` the datagrams the shard read and `shed` the requests the filter shed in the
//!   window — what it could serve over what came — with `g` a gentle correction by the
//!   queue: `1 - (f - T) / 8T` below the target (empty ×9/8: an idle shard, which read all
//!   that came, admits an eighth more), ×1 from one to four targets (a shard that runs in
//!   bursts — a CPU quota, a preempted core — finds a few targets queued after each pause;
//!   cutting on that left it idle: 78–85 % of its rate under a 10× flood, 90–94 % with the
//!   dead band), `1 - (f - 4T) / 8T` past four targets, at least ×1/2 (eight and more);
//!   never more than twice the share before (a shard draining a
//!   backlog reads more than came in the window, and matching that would open the filter
//!   to the whole flood — seen: 23 % → 92 % in one step, a 21 MB queue the next);
//! * **by the sojourn** where the receive stamps are read (`kernel_shed_wait_ms`, default
//!   20 ms; [`crate::overload_delay`] reads the stamp of each turn's first datagram while
//!   the controller runs: the youngest datagram the turn took off the queue), `g` comes
//!   from the lowest wait `m` of the window's turns — the standing queue, RFC 8289 §4.2 —
//!   instead of the fill: ×9/8 below a quarter of the target (the queue ran empty: a shard
//!   that idles while a flood is shed loses completions), ×1 up to the target, past it
//!   `1 - (m - target) / 100 ms` (the excess drained over CoDel's interval, RFC 8289
//!   §4.3), at least ×3/4. Why: under a CPU quota (1 ms in 10) the fill swings 0.15–2.5 MB
//!   with each pause, and 1 % of 16 MiB is less than one pause's work: the fill rule cut
//!   on queues the shard then took at once (shares of 985–997 ‰ where 900 ‰ fit; 81–94 %
//!   of the rate under a 10× flood); the sojourn says whether work is left after a burst;
//! * between windows, per 5 ms sample, with the sojourn measured (once a window's lowest
//!   wait was within the target: a flood's start is cut by the fill) nothing cuts but an overflow (a burst is the queue's and the stale
//!   drop's: cutting on it left the shard idle); otherwise only a queue past four targets
//!   that grew since the sample before cuts: `a ×= 1 - (f - 4T) / 8T`, at least 1/8 (a flood's first sample
//!   cuts to 1/8 at once — seen: a 16 MB queue and level 2 when the first cuts only
//!   halved; a backlog being served is not cut again — seen: cut to 0.2 %, then 1.7 s to
//!   climb back);
//! * `a` never falls below 1/4096, so it can grow back.
//!
//! It starts when the queue first passes `T` or the level rises, and runs until `a` is
//! back to 1 — also after the level fell to 0, so the queue the shedding kept short does
//! not refill before the kernel sheds again; calm, `a` goes from 1/10 back to 1 in 20
//! windows (0.4 s). Why: the queue is what makes an admitted request late (its wait is
//! fill ÷ service rate) and an empty one is capacity left idle. Why windows: per sample the
//! counts are a few dozen datagrams, and a shard that runs in bursts (throttled by a CPU
//! quota, preempted) reads them unevenly; a noisy estimate under an asymmetric clamp
//! ratchets the share down (seen: 98 % shed with an idle shard). The gains were chosen on
//! `a_ten_times_flood_is_cut_to_the_shards_rate` (99 % of the rate read, a queue of 2.5
//! targets) and the rig of `loadtest/overload.sh`. Counting per window,
//! whatever the turns did, gives the shard's true rate, where a rule on the queue alone
//! cuts once per sample and a late shard samples rarely while the queue grows. The AIMD
//! rule before it (halve above `T`, +1/16 below, started only at level 1) could only
//! admit 1/16, 2/16, … of a 10× flood whose fit is 1/10, swinging between 62 % and 125 %
//! of the shard's rate, and under a CPU quota let the queue reach 12 MiB.
//!
//! While the filter sheds, pressure level 1 no longer answers OPTIONS, REGISTER and new
//! INVITEs 503 in user space ([`sipedge_core::Core::handle_kernel_shed`]): the filter
//! already admitted only what fits.
//! SO_RCVBUF is left alone: a smaller buffer would drop responses, ACKs and BYEs as blindly
//! as new requests, while the filter drops only the classes RFC 3261 clients retransmit.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::config_protect::OverloadSettings;

/// Queue drops a sample must add before they count as pressure: the kernel's drop count
/// (SO_MEMINFO) and the filter's (a map) are read one after the other while a flood runs
/// on, so their difference wobbles by the datagrams the filter dropped in between. A full
/// queue drops far more than this per 5 ms sample.
const DROP_SLACK: u64 = 64;

/// The kernel shed controller matches rates over windows this long (module doc).
pub const RATE_WINDOW: Duration = Duration::from_millis(20);

/// The socket queues are read at most this often (one getsockopt per socket).
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// How long one loop turn took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Turn {
    /// Wall time, from the first datagram handed over to the turn's end: the share of a
    /// rate window the shard was busy (the kernel shed controller's idle test).
    pub wall: Duration,
    /// The shard thread's CPU time over the turn: the turn lag the level reads.
    pub cpu: Duration,
}

impl Turn {
    /// A turn whose wall time was all work (tests, and where the thread's CPU clock is
    /// missing).
    pub fn all_work(d: Duration) -> Turn {
        Turn { wall: d, cpu: d }
    }
}

/// The measures of one sample, also exported as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PressureSample {
    /// Bytes queued on the shard's sockets (kernel accounting).
    pub queue_bytes: u64,
    /// The largest fill of one socket's queue, percent of its SO_RCVBUF.
    pub queue_percent: u32,
    /// Datagrams the kernel dropped on the shard's sockets since start.
    pub kernel_drops: u64,
    /// The largest fill of one socket's queue in basis points (1/10,000) of its SO_RCVBUF:
    /// what the kernel shed controller reads.
    pub queue_basis_points: u32,
}

/// One shard's pressure meter.
#[derive(Debug)]
pub struct Pressure {
    settings: OverloadSettings,
    fds: Vec<RawFd>,
    level: u8,
    /// When a turn's measures last asked for `level` or more (or it last stepped down):
    /// calm is the time since, so a shard that idled (no turns) past `calm_ms` after the
    /// level rose steps down at its next turn instead of shedding for `calm_ms` more.
    asked_at: Option<Instant>,
    last_sample: Option<Instant>,
    /// The last sample's measures.
    pub sample: PressureSample,
    /// The kernel's drop count at start (the sockets may have dropped before we ran).
    drops_base: Option<u64>,
    /// The kernel filter's shed share of OPTIONS/REGISTER/new INVITEs, 0 ..= `SHED_ALL`.
    kernel_share: u64,
    /// When the rate window began and the shard's cumulative (datagrams read, requests
    /// the filter shed) then: the controller's rates are the differences.
    flow_base: Option<(Instant, u64, u64)>,
    /// The queue fill of the sample before (basis points).
    last_fill: u64,
    /// The shard's working time in the current rate window: a shard that idled half of it
    /// has room, and what it read says nothing about what it could serve.
    window_busy: Duration,
    /// The lowest sojourn the shard's turns measured in the current rate window
    /// ([`Self::note_wait`]): the standing queue.
    wait_min: Option<Duration>,
    /// The sojourn the last measured turn found.
    last_wait: Option<Duration>,
    /// A rate window's lowest sojourn was within its target since the controller started:
    /// until then the fill cuts between windows (a flood's first tens of ms: the youngest
    /// datagram read waited a queue's worth of *arrivals*, ten times shorter than its
    /// worth of work — seen: gated on it, a 3 MB queue, 8.7k stale drops and level 1;
    /// settled after the first window whatever its wait, a 19 MB queue, 16.5k).
    wait_settled: bool,
    /// Debug builds only: `SIPEDGE_TEST_PRESSURE_FILE`, a file whose number (0–2), when
    /// present, is the level — so tests over the binary can make a shard shed on cue. An
    /// optional second number (0–1000) forces the kernel shed share, per mille.
    forced: Option<std::path::PathBuf>,
    /// The kernel shed share the file forces (see `forced`).
    forced_share: Option<u64>,
}

/// The forced level of [`Pressure::forced`], read at most every sample.
#[cfg(debug_assertions)]
fn test_pressure_file() -> Option<std::path::PathBuf> {
    std::env::var_os("SIPEDGE_TEST_PRESSURE_FILE").map(Into::into)
}

#[cfg(not(debug_assertions))]
fn test_pressure_file() -> Option<std::path::PathBuf> {
    None
}

impl Pressure {
    /// A meter over the sockets `fds` (they must outlive it: the engine owns them).
    pub fn new(settings: OverloadSettings, fds: Vec<RawFd>) -> Pressure {
        Pressure {
            settings,
            fds,
            level: 0,
            asked_at: None,
            last_sample: None,
            sample: PressureSample::default(),
            drops_base: None,
            kernel_share: 0,
            window_busy: Duration::ZERO,
            wait_min: None,
            last_wait: None,
            wait_settled: false,
            flow_base: None,
            last_fill: 0,
            forced: test_pressure_file(),
            forced_share: None,
        }
    }

    /// The sockets measured.
    pub fn fds(&self) -> Vec<RawFd> {
        self.fds.clone()
    }

    /// The level in force.
    #[cfg(test)]
    pub fn level(&self) -> u8 {
        self.level
    }

    /// The share of OPTIONS, REGISTER and new INVITE datagrams the kernel filter should drop
    /// (0 ..= [`sipedge_rt::SHED_ALL`]); see the module doc for the rule.
    pub fn kernel_shed_share(&self) -> u64 {
        self.kernel_share
    }

    /// Whether the controller reads the queue's sojourn now: with a `kernel_shed_wait_ms`
    /// target, while it runs or the queue is past its fill target (the shard then reads
    /// the receive stamp at each turn's first datagram, [`crate::overload_delay`]).
    pub fn watching(&self) -> bool {
        self.settings.kernel_shed_wait_ms > 0
            && (self.kernel_share > 0
                || self.level > 0
                || self.sample.queue_basis_points >= self.settings.kernel_shed_queue_percent * 100)
    }

    /// A turn's sojourn measure: how long the youngest datagram the shard took off the
    /// queue waited in it (its kernel receive stamp against the clock).
    pub fn note_wait(&mut self, wait: Duration) {
        self.last_wait = Some(wait);
        self.wait_min = Some(self.wait_min.map_or(wait, |m| m.min(wait)));
    }

    /// After a turn that took `turn`: the new level when it changed. `filtered(fd)`: the
    /// datagrams the kernel filter dropped on socket `fd` (bans and shedding: the kernel
    /// counts them as drops too; only a full queue's drops are pressure). Without the
    /// shard's flow counts the kernel share follows the queue alone ([`Self::end_turn_with`]).
    #[cfg(test)]
    pub fn end_turn(
        &mut self,
        now: Instant,
        turn: Duration,
        filtered: &dyn Fn(RawFd) -> u64,
    ) -> Option<u8> {
        self.end_turn_with(now, Turn::all_work(turn), filtered, &|| (0, 0))
    }

    /// [`Self::end_turn`] with `flow()`: the datagrams the shard has read since start and
    /// the requests the kernel filter has shed on its sockets since start, read only when
    /// the meter samples (a map lookup per socket).
    pub fn end_turn_with(
        &mut self,
        now: Instant,
        turn: Turn,
        filtered: &dyn Fn(RawFd) -> u64,
        flow: &dyn Fn() -> (u64, u64),
    ) -> Option<u8> {
        let sampled = self
            .last_sample
            .is_none_or(|t| now.saturating_duration_since(t) >= SAMPLE_EVERY);
        self.window_busy = self.window_busy.saturating_add(turn.wall);
        let before = self.sample.kernel_drops;
        let out = self.measure(now, turn.cpu, filtered);
        if let Some(share) = self.forced_share {
            // Test hook: the file forces the share too.
            self.kernel_share = share;
        } else if sampled {
            let (read, shed) = flow();
            let (t0, read0, shed0) = *self.flow_base.get_or_insert((now, read, shed));
            // The rates over a window of RATE_WINDOW: per 5 ms sample they are a few dozen
            // datagrams, and a shard that runs in bursts (a CPU quota) reads them unevenly.
            let window = now.saturating_duration_since(t0);
            let mut spare = false;
            let tw = u64::from(self.settings.kernel_shed_wait_ms) * 1000;
            let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            // Between windows the last turn's sojourn, per window the lowest.
            let settled = self.wait_settled && tw > 0;
            let mut wait = self.last_wait.filter(|_| settled).map(|w| (us(w), tw));
            let rates = (window >= RATE_WINDOW).then(|| {
                wait = self.wait_min.take().filter(|_| tw > 0).map(|w| (us(w), tw));
                // Settled once a window's standing queue is within the target and its
                // last turn's wait too: at a flood's start the first turns find a short
                // queue that is still growing (seen: settled on a 12 ms lowest wait while
                // the last was 21 ms and rising; uncut between windows, the queue reached
                // 100 ms and 3.4k requests went stale).
                let last = self.last_wait.map(us);
                self.wait_settled |=
                    wait.is_some_and(|(m, tw)| m <= tw && last.is_some_and(|l| l <= tw));
                self.flow_base = Some((now, read, shed));
                // Busy less than half the window: it read all it was given, not all it can
                // serve — matching that rate would hold a share shed after a flood ends
                // (what it admits is what it reads) on an idle shard forever.
                spare = self.window_busy * 2 < window;
                self.window_busy = Duration::ZERO;
                (read.saturating_sub(read0), shed.saturating_sub(shed0))
            });
            let target = u64::from(self.settings.kernel_shed_queue_percent) * 100;
            let fill = u64::from(self.sample.queue_basis_points);
            let dropped = self.sample.kernel_drops > before + DROP_SLACK;
            // Between windows a long queue cuts only while it grows: one that shrinks is
            // a backlog being served, and cutting on it again would overshoot.
            let shrinking = rates.is_none() && !dropped && fill < self.last_fill;
            self.last_fill = fill;
            if !shrinking && (self.level > 0 || self.kernel_share > 0 || fill >= target || dropped)
            {
                let rates = if spare && fill <= target {
                    Some((0, 0))
                } else {
                    rates
                };
                let q = QueueState { fill, target, wait };
                let onset = self.kernel_share == 0;
                self.kernel_share = next_share(self.kernel_share, q, dropped, rates);
                if onset && self.kernel_share > 0 {
                    // A flood's start: the rate window begins now, so the first rate match
                    // counts only what came while the filter shed (a window begun before
                    // it diluted the shed: seen, 875 ‰ relaxed to 750 ‰ at the first
                    // window while the queue grew).
                    self.flow_base = Some((now, read, shed));
                    self.window_busy = Duration::ZERO;
                    self.wait_min = None;
                }
            }
            if !self.watching() {
                // Calm: the next flood's first samples must not read this one's waits.
                (self.last_wait, self.wait_min) = (None, None);
                self.wait_settled = false;
            }
        }
        out
    }

    /// `cpu`: the turn's CPU time (its lag).
    fn measure(
        &mut self,
        now: Instant,
        cpu: Duration,
        filtered: &dyn Fn(RawFd) -> u64,
    ) -> Option<u8> {
        if !self.settings.enabled {
            return None;
        }
        let mut drops_rose = false;
        let mut forced = None;
        if self
            .last_sample
            .is_none_or(|t| now.saturating_duration_since(t) >= SAMPLE_EVERY)
        {
            self.last_sample = Some(now);
            let text = self
                .forced
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            let mut words = text.split_whitespace();
            forced = words.next().and_then(|w| w.parse::<u8>().ok());
            self.forced_share = words
                .next()
                .and_then(|w| w.parse::<u64>().ok())
                .map(|pm| sipedge_rt::SHED_ALL * pm.min(1000) / 1000);
            let (mut bytes, mut bp, mut drops) = (0u64, 0u32, 0u64);
            for &fd in &self.fds {
                // The filter's count first: both counters run on while we read them, so
                // this order can only overstate the queue's own drops by the few the
                // filter dropped in between (DROP_SLACK), never hide them.
                let by_filter = filtered(fd);
                if let Ok(m) = sipedge_rt::socket_meminfo(fd) {
                    bytes += u64::from(m.rmem_alloc);
                    if m.rcvbuf > 0 {
                        let p = u64::from(m.rmem_alloc) * 10_000 / u64::from(m.rcvbuf);
                        bp = bp.max(u32::try_from(p).unwrap_or(u32::MAX));
                    }
                    drops += u64::from(m.drops).saturating_sub(by_filter);
                }
            }
            let base = *self.drops_base.get_or_insert(drops);
            // Monotonic, and a rise only past the slack of the two reads.
            let total = drops.saturating_sub(base).max(self.sample.kernel_drops);
            drops_rose = total > self.sample.kernel_drops + DROP_SLACK;
            self.sample = PressureSample {
                queue_bytes: bytes,
                queue_percent: bp / 100,
                kernel_drops: total,
                queue_basis_points: bp,
            };
        }
        if let Some(level) = forced {
            self.asked_at = Some(now);
            if level.min(2) != self.level {
                self.level = level.min(2);
                return Some(self.level);
            }
            return None;
        }
        let want = self.wanted(cpu, drops_rose);
        self.step(now, want)
    }

    /// The level the measures ask for; `cpu`: the turn's CPU time.
    fn wanted(&self, cpu: Duration, drops_rose: bool) -> u8 {
        let s = &self.settings;
        let ms = cpu.as_millis();
        let pct = self.sample.queue_percent;
        if ms >= u128::from(s.shed_refresh_turn_ms) || pct >= s.shed_refresh_queue_percent {
            2
        } else if ms >= u128::from(s.shed_new_turn_ms)
            || pct >= s.shed_new_queue_percent
            || (s.shed_on_kernel_drops && drops_rose)
        {
            1
        } else {
            0
        }
    }

    /// Rises at once; steps down one level once `calm_ms` passed since a turn last asked
    /// for it (an idle shard took no turns: nothing asked for it then either).
    fn step(&mut self, now: Instant, want: u8) -> Option<u8> {
        if want >= self.level {
            self.asked_at = Some(now);
            if want > self.level {
                self.level = want;
                return Some(want);
            }
            return None;
        }
        let since = *self.asked_at.get_or_insert(now);
        if now.saturating_duration_since(since)
            >= Duration::from_millis(u64::from(self.settings.calm_ms))
        {
            self.level -= 1;
            self.asked_at = Some(now);
            return Some(self.level);
        }
        None
    }
}

pub use crate::overload_writer::KernelShedWriter;

/// The smallest admitted share, of [`sipedge_rt::SHED_ALL`]: the multiplicative growth
/// needs something to grow from.
const MIN_ADMIT_SHIFT: u32 = 12;

/// The sojourn correction's horizon: a standing queue past the target is drained over
/// about this long (CoDel's interval, RFC 8289 §4.3: long enough to ride out a burst,
/// short enough to act within a retransmission's time).
const WAIT_INTERVAL_US: u64 = 100_000;

/// The queue as one controller step sees it: the fill and its target (basis points of
/// SO_RCVBUF), and where the receive stamps are read, `wait`: the queue's sojourn (µs;
/// per window the lowest of the window's turns, between windows the last turn's) and its
/// target (µs, `kernel_shed_wait_ms`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct QueueState {
    fill: u64,
    target: u64,
    wait: Option<(u64, u64)>,
}

impl QueueState {
    /// The per-window correction `g = num / den` (module doc). By the sojourn when it is
    /// measured: the lowest wait of a window is the standing queue (RFC 8289 §4.2), what
    /// every datagram waited whatever the bursts; below a quarter of the target the queue
    /// ran (nearly) empty — the shard may have idled with a flood shed — ×9/8; up to the
    /// target ×1; past it, the excess is drained over [`WAIT_INTERVAL_US`], at least ×3/4.
    /// Without it, by the fill: ×(9T − f)/8T below the target, ×1 from one to four targets,
    /// ×(12T − f)/8T past four, at least 1/2.
    fn correction(&self) -> (u64, u64) {
        if let Some((m, tw)) = self.wait {
            return if m < tw / 4 {
                (9, 8)
            } else if m <= tw {
                (1, 1)
            } else {
                // At most ×3/4: the next window's rate matching re-bases on what was
                // served, and a wait past the stale bound is the stale drop's.
                let excess = (m - tw).min(WAIT_INTERVAL_US / 4);
                (WAIT_INTERVAL_US - excess, WAIT_INTERVAL_US)
            };
        }
        let (fill, t) = (self.fill, self.target.max(1));
        let num = if fill <= t {
            9 * t - fill
        } else if fill <= 4 * t {
            8 * t
        } else {
            (12 * t).saturating_sub(fill).max(4 * t)
        };
        (num, 8 * t)
    }

    /// Between windows, by the fill: a queue past four targets cuts, by `(12T − f)/8T`, at
    /// least 1/8 (a flood's start is cut within a sample or two). By the sojourn: never —
    /// the window's lowest wait decides, and a burst (a shard that runs in bursts finds a
    /// long queue after each pause; a sender's stall and catch-up) is the queue's and the
    /// stale drop's to absorb: cutting on it left the shard idle (shares of 985–997 ‰
    /// where 900 ‰ fit, by the fill; by the last turn's wait past twice the target, at most
    /// halving per sample: waits of 70–90 ms, the share at 967–994 ‰, then an empty queue).
    fn between_windows(&self) -> Option<(u64, u64)> {
        let t = self.target.max(1);
        match self.wait {
            Some(_) => None,
            None => (self.fill > 4 * t).then(|| ((12 * t).saturating_sub(self.fill).max(t), 8 * t)),
        }
    }
}

/// One step of the kernel shed controller (module doc): the new shed share from the old,
/// the queue, whether the queue overflowed since the last sample, and at the end of a rate
/// window `(read, shed)`: the datagrams the shard read and the requests the filter shed in
/// it.
fn next_share(share: u64, q: QueueState, dropped: bool, rates: Option<(u64, u64)>) -> u64 {
    let all = sipedge_rt::SHED_ALL;
    let admit = all - share.min(all);
    let (num, den) = q.correction();
    let scaled = |a: u128| u64::try_from(a * u128::from(num) / u128::from(den)).unwrap_or(all);
    // Never more than twice the share before: a shard draining a backlog reads more
    // than came, and matching that would open the filter to the whole flood.
    let probe = admit.saturating_mul(2).max(all >> MIN_ADMIT_SHIFT << 3);
    let admit = match rates {
        _ if dropped => admit / 2,
        // Nothing came and nothing was read: nothing to protect.
        Some((0, 0)) => probe,
        // Rate matching: what the shard read is what it can serve (or all that came when
        // it idled), read + shed what came; admit that share, corrected by g.
        Some((read, shed)) => {
            let a = u128::from(all) * u128::from(read) / u128::from(read + shed);
            scaled(a).min(probe)
        }
        // Between windows only a long queue cuts (at once, per sample).
        None => match q.between_windows() {
            Some((n, d)) => {
                u64::try_from(u128::from(admit) * u128::from(n) / u128::from(d)).unwrap_or(all)
            }
            None => admit,
        },
    };
    let admit = admit.clamp(all >> MIN_ADMIT_SHIFT, all);
    all - admit
}

#[cfg(test)]
#[path = "overload_tests.rs"]
mod tests;
