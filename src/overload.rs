//! A shard's pressure (issue 17 item 1): measured by the shell once per turn from the
//! turn's length (lag), the receive queue's fill and the kernel's drop count
//! (`SO_MEMINFO`, [`sipedge_rt::socket_meminfo`]), turned into the level the core sheds at
//! ([`sipedge_core::Core::handle_pressure`]): 0 none, 1 new requests, 2 refreshes too.
//! The level rises at once and steps down one level after `calm_ms` below it, so it does
//! not flap turn by turn.
//!
//! Kernel shedding (issue 17 item 6): at level ≥ 1 the meter also sets the share of
//! OPTIONS and REGISTER datagrams the eBPF socket filter drops before they are queued
//! ([`Pressure::kernel_shed_share`], written to the filter by the shard). The rule is AIMD
//! on the admitted share `a = 1 - share`, driven by the receive-queue fill, once per
//! sample (5 ms): fill ≥ `kernel_shed_queue_percent` or new kernel drops → `a /= 2`;
//! else `a += 1/16`. It starts only at level ≥ 1 (at level 0 with `a = 1` nothing is
//! shed in the kernel) and, once started, runs until `a` is back to 1 — also after the
//! level fell to 0, so the queue the shedding kept short does not refill to the level-1
//! threshold (20 %) before the kernel sheds again; calm, `a` is back to 1 within 16
//! samples (80 ms). Why: the queue is what makes an admitted request late (its wait is
//! fill ÷ service rate), so the share holds the fill near a small target instead of
//! guessing rates; halving reaches a 10× flood's needed 1/10 within four samples (20 ms),
//! and the additive growth probes back without refilling the queue at once.
//! SO_RCVBUF is left alone: a smaller buffer would drop responses, ACKs and BYEs as blindly
//! as new requests, while the filter drops only the classes RFC 3261 clients retransmit.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::config_protect::OverloadSettings;

/// The socket queues are read at most this often (one getsockopt per socket).
const SAMPLE_EVERY: Duration = Duration::from_millis(5);

/// The measures of one sample, also exported as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PressureSample {
    /// Bytes queued on the shard's sockets (kernel accounting).
    pub queue_bytes: u64,
    /// The largest fill of one socket's queue, percent of its SO_RCVBUF.
    pub queue_percent: u32,
    /// Datagrams the kernel dropped on the shard's sockets since start.
    pub kernel_drops: u64,
}

/// One shard's pressure meter.
#[derive(Debug)]
pub struct Pressure {
    settings: OverloadSettings,
    fds: Vec<RawFd>,
    level: u8,
    /// Since when the measures have asked for less than `level`.
    calm_since: Option<Instant>,
    last_sample: Option<Instant>,
    /// The last sample's measures.
    pub sample: PressureSample,
    /// The kernel's drop count at start (the sockets may have dropped before we ran).
    drops_base: Option<u64>,
    /// The kernel filter's shed share of OPTIONS/REGISTER, 0 ..= `SHED_ALL`.
    kernel_share: u64,
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
            calm_since: None,
            last_sample: None,
            sample: PressureSample::default(),
            drops_base: None,
            kernel_share: 0,
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

    /// The share of OPTIONS and REGISTER datagrams the kernel filter should drop
    /// (0 ..= [`sipedge_rt::SHED_ALL`]); see the module doc for the rule.
    pub fn kernel_shed_share(&self) -> u64 {
        self.kernel_share
    }

    /// After a turn that took `turn`: the new level when it changed. `filtered(fd)`: the
    /// datagrams the kernel filter dropped on socket `fd` (bans and shedding: the kernel
    /// counts them as drops too; only a full queue's drops are pressure).
    pub fn end_turn(
        &mut self,
        now: Instant,
        turn: Duration,
        filtered: &dyn Fn(RawFd) -> u64,
    ) -> Option<u8> {
        let sampled = self
            .last_sample
            .is_none_or(|t| now.saturating_duration_since(t) >= SAMPLE_EVERY);
        let before = self.sample.kernel_drops;
        let out = self.measure(now, turn, filtered);
        if let Some(share) = self.forced_share {
            // Test hook: the file forces the share too.
            self.kernel_share = share;
        } else if sampled && (self.level > 0 || self.kernel_share > 0) {
            let full = self.sample.queue_percent >= self.settings.kernel_shed_queue_percent
                || self.sample.kernel_drops > before;
            self.kernel_share = next_share(self.kernel_share, full);
        }
        out
    }

    fn measure(
        &mut self,
        now: Instant,
        turn: Duration,
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
            let (mut bytes, mut pct, mut drops) = (0u64, 0u32, 0u64);
            for &fd in &self.fds {
                if let Ok(m) = sipedge_rt::socket_meminfo(fd) {
                    bytes += u64::from(m.rmem_alloc);
                    if m.rcvbuf > 0 {
                        let p = u64::from(m.rmem_alloc) * 100 / u64::from(m.rcvbuf);
                        pct = pct.max(u32::try_from(p).unwrap_or(u32::MAX));
                    }
                    drops += u64::from(m.drops).saturating_sub(filtered(fd));
                }
            }
            let base = *self.drops_base.get_or_insert(drops);
            let total = drops.saturating_sub(base);
            drops_rose = total > self.sample.kernel_drops;
            self.sample = PressureSample {
                queue_bytes: bytes,
                queue_percent: pct,
                kernel_drops: total,
            };
        }
        if let Some(level) = forced {
            self.calm_since = None;
            if level.min(2) != self.level {
                self.level = level.min(2);
                return Some(self.level);
            }
            return None;
        }
        let want = self.wanted(turn, drops_rose);
        self.step(now, want)
    }

    /// The level the measures ask for.
    fn wanted(&self, turn: Duration, drops_rose: bool) -> u8 {
        let s = &self.settings;
        let ms = turn.as_millis();
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

    /// Rises at once; steps down one level after `calm_ms` of asking for less.
    fn step(&mut self, now: Instant, want: u8) -> Option<u8> {
        if want >= self.level {
            self.calm_since = None;
            if want > self.level {
                self.level = want;
                return Some(want);
            }
            return None;
        }
        let since = *self.calm_since.get_or_insert(now);
        if now.saturating_duration_since(since)
            >= Duration::from_millis(u64::from(self.settings.calm_ms))
        {
            self.level -= 1;
            self.calm_since = if self.level > want { Some(now) } else { None };
            return Some(self.level);
        }
        None
    }
}

/// Writes the meter's kernel shed share to the filter when it changes and reads the
/// filter's shed counts back for the metrics (every [`SHED_READ_EVERY`] while shedding).
#[derive(Debug)]
pub struct KernelShedWriter {
    fds: Vec<RawFd>,
    written: u64,
    /// The filter may have shed since the counts were last read.
    unread: bool,
    last_read: Option<Instant>,
}

/// The kernel shed counters are read at most this often (one bpf call per socket).
const SHED_READ_EVERY: Duration = Duration::from_millis(100);

impl KernelShedWriter {
    /// For the shard's sockets `fds`.
    pub fn new(fds: Vec<RawFd>) -> KernelShedWriter {
        KernelShedWriter {
            fds,
            written: 0,
            unread: false,
            last_read: None,
        }
    }

    /// After each turn: writes a changed share, publishes the counts.
    pub fn after_turn(
        &mut self,
        p: &Pressure,
        bans: &crate::bans::BanRegistry,
        metrics: &crate::metrics_protect::ProtectMetrics,
    ) {
        let share = p.kernel_shed_share();
        if share != self.written {
            for &fd in &self.fds {
                bans.set_kernel_shed(fd, share);
            }
            self.written = share;
            self.unread = true;
            metrics.publish_kernel_shed_share(share);
        }
        self.unread |= share != 0;
        let now = Instant::now();
        let due = self
            .last_read
            .is_none_or(|t| now.saturating_duration_since(t) >= SHED_READ_EVERY);
        // Read while shedding and once after (the last counts), never when calm.
        if due && self.unread {
            self.last_read = Some(now);
            let mut total = sipedge_rt::KernelShed::default();
            for &fd in &self.fds {
                let s = bans.kernel_shed(fd);
                total.options = total.options.saturating_add(s.options);
                total.register = total.register.saturating_add(s.register);
            }
            metrics.publish_kernel_shed(total);
            self.unread = share != 0;
        }
    }
}

/// One AIMD step of the kernel shed share (module doc): a full queue halves the admitted
/// share, a short one admits 1/16 more.
fn next_share(share: u64, full: bool) -> u64 {
    let all = sipedge_rt::SHED_ALL;
    let admit = all - share.min(all);
    let admit = if full {
        admit / 2
    } else {
        admit.saturating_add(all / 16).min(all)
    };
    all - admit
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full queue halves the admitted share each sample; a short one lets 1/16 more in;
    /// level 0 sheds nothing in the kernel at once.
    #[test]
    fn the_kernel_share_follows_the_queue() {
        let all = sipedge_rt::SHED_ALL;
        assert_eq!(next_share(0, true), all / 2);
        assert_eq!(next_share(all / 2, true), all / 4 * 3);
        assert_eq!(next_share(all / 2, false), all / 2 - all / 16);
        assert_eq!(next_share(all / 32, false), 0);
        assert_eq!(next_share(all, true), all);
        let mut s = 0;
        for _ in 0..4 {
            s = next_share(s, true);
        }
        assert!(
            all - s <= all / 10,
            "a 10x flood's 1/10 within four samples"
        );

        let mut p = Pressure::new(OverloadSettings::default(), Vec::new());
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(p.end_turn(t0, ms(60), &|_| 0), Some(1));
        assert_eq!(p.kernel_shed_share(), 0, "an empty queue: nothing to shed");
        p.level = 0;
        p.kernel_share = all / 2;
        assert_eq!(p.end_turn(t0 + ms(10), ms(1), &|_| 0), None);
        assert_eq!(
            p.kernel_shed_share(),
            all / 2 - all / 16,
            "level 0 with a short queue: admits 1/16 more per sample"
        );
        for i in 0..8 {
            p.end_turn(t0 + ms(20 + 10 * i), ms(1), &|_| 0);
        }
        assert_eq!(p.kernel_shed_share(), 0, "calm: none");
        p.end_turn(t0 + ms(200), ms(1), &|_| 0);
        assert_eq!(p.kernel_shed_share(), 0, "level 0 never starts shedding");
    }

    #[test]
    fn rises_at_once_and_calms_down_step_by_step() {
        let mut p = Pressure::new(OverloadSettings::default(), Vec::new());
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(p.end_turn(t0, ms(1), &|_| 0), None);
        assert_eq!(p.end_turn(t0, ms(60), &|_| 0), Some(1));
        assert_eq!(p.end_turn(t0, ms(250), &|_| 0), Some(2));
        assert_eq!(p.end_turn(t0 + ms(10), ms(1), &|_| 0), None);
        assert_eq!(p.end_turn(t0 + ms(400), ms(1), &|_| 0), None);
        assert_eq!(p.end_turn(t0 + ms(520), ms(1), &|_| 0), Some(1));
        assert_eq!(p.end_turn(t0 + ms(900), ms(1), &|_| 0), None);
        assert_eq!(p.end_turn(t0 + ms(1030), ms(1), &|_| 0), Some(0));
        assert_eq!(p.level(), 0);
    }

    #[test]
    fn a_full_queue_raises_the_level() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        use std::os::fd::AsRawFd;
        let mut p = Pressure::new(OverloadSettings::default(), vec![rx.as_raw_fd()]);
        let t0 = Instant::now();
        assert_eq!(p.end_turn(t0, Duration::ZERO, &|_| 0), None);
        let to = rx.local_addr().unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..20_000 {
            let _ = tx.send_to(&[0u8; 1200], to);
        }
        let lvl = p.end_turn(t0 + Duration::from_millis(10), Duration::ZERO, &|_| 0);
        assert!(lvl.is_some(), "{:?}", p.sample);
        assert!(p.sample.queue_bytes > 0);
        assert!(
            p.kernel_shed_share() > 0,
            "a full queue: the kernel sheds a share"
        );
    }

    /// The kernel ban filter's drops are in SK_MEMINFO_DROPS too: a banned source's flood
    /// must not make the shard shed its own users.
    #[test]
    fn ban_filter_drops_are_not_pressure() {
        use std::os::fd::AsRawFd;
        let f = match sipedge_rt::BanFilter::new(16) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("BPF not permitted here ({e}): skipped");
                return;
            }
        };
        let rx = std::net::UdpSocket::bind("127.0.117.220:0").unwrap_or_else(|e| panic!("{e}"));
        f.attach(&rx, false).unwrap_or_else(|e| panic!("{e}"));
        let tx = std::net::UdpSocket::bind("127.0.117.221:0").unwrap_or_else(|e| panic!("{e}"));
        f.ban(tx.local_addr().unwrap_or_else(|e| panic!("{e}")).ip())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut p = Pressure::new(OverloadSettings::default(), vec![rx.as_raw_fd()]);
        let t0 = Instant::now();
        let filtered = |fd| f.socket_drops(fd);
        assert_eq!(p.end_turn(t0, Duration::ZERO, &filtered), None);
        let to = rx.local_addr().unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..100 {
            let _ = tx.send_to(b"banned", to);
        }
        assert_eq!(
            p.end_turn(t0 + Duration::from_millis(10), Duration::ZERO, &filtered),
            None
        );
        assert_eq!(p.sample.kernel_drops, 0);
        // Without the subtraction they would have counted.
        let mut q = Pressure::new(OverloadSettings::default(), vec![rx.as_raw_fd()]);
        q.drops_base = Some(0);
        assert_eq!(q.end_turn(t0, Duration::ZERO, &|_| 0), Some(1));
    }
}
