//! Tests of the shard pressure meter and the kernel shed controller (`overload.rs`).
use super::*;

/// A queue measured by its fill alone.
fn q(fill: u64, target: u64) -> QueueState {
    QueueState {
        fill,
        target,
        wait: None,
    }
}

/// The controller: per window, the share of what came that the shard read, corrected
/// by the queue (empty ×9/8, one to four targets ×1 — a bursty shard's normal queue —,
/// six targets ×3/4, at most ×1/2), opening by 2 at most; between windows only a queue
/// past four targets cuts; an overflow halves; never zero admitted.
#[test]
fn the_kernel_share_follows_the_queue() {
    let all = sipedge_rt::SHED_ALL;
    let t = 500; // 5 % in basis points
    let admit = |share: u64| all - share;
    assert_eq!(
        next_share(0, q(t, t), false, None),
        0,
        "at the target: unchanged"
    );
    assert_eq!(next_share(0, q(0, t), false, None), 0, "calm: nothing shed");
    assert_eq!(
        admit(next_share(0, q(3 * t, t), false, None)),
        all,
        "a burst's queue (three targets): not cut"
    );
    assert_eq!(admit(next_share(0, q(6 * t, t), false, None)), all / 4 * 3);
    assert_eq!(
        admit(next_share(0, q(12 * t, t), false, None)),
        all / 8,
        "between windows: cut to 1/8 at most"
    );
    assert_eq!(
        admit(next_share(0, q(10 * t, t), false, Some((1000, 0)))),
        all / 2,
        "a window: the queue's correction at most halves"
    );
    assert_eq!(
        admit(next_share(0, q(0, t), true, None)),
        all / 2,
        "an overflow halves"
    );
    let tenth = all - all / 10;
    assert_eq!(
        admit(next_share(tenth, q(0, t), false, None)),
        all / 10,
        "between windows"
    );
    assert!(admit(next_share(all, q(10 * t, t), true, None)) >= all >> MIN_ADMIT_SHIFT);
    // Rate matching: read 1000 of 10,000 that came, queue at the target: admit 1/10.
    for s in [0, all / 2, tenth] {
        assert_eq!(
            admit(next_share(s, q(t, t), false, Some((1000, 9000)))),
            all / 10
        );
    }
    assert_eq!(
        admit(next_share(0, q(3 * t, t), false, Some((1000, 9000)))),
        all / 10,
        "a burst's queue: what was read, uncut"
    );
    assert_eq!(
        admit(next_share(0, q(6 * t, t), false, Some((1000, 9000)))),
        all / 10 * 6 / 8,
        "a long queue: less"
    );
    assert_eq!(
        admit(next_share(tenth, q(0, t), false, Some((500, 9500)))),
        all / 20 * 9 / 8,
        "idle: what came was all read; an eighth more"
    );
    assert_eq!(
        admit(next_share(all - all / 4, q(0, t), false, Some((5000, 500)))),
        all / 2,
        "a drained backlog (read more than came) opens by 2 at most"
    );
    // Calm again (nothing shed): back to all within 20 windows from 1/10.
    let mut s = tenth;
    for _ in 0..20 {
        s = next_share(s, q(0, t), false, Some((100, 0)));
    }
    assert_eq!(s, 0);

    let mut p = Pressure::new(OverloadSettings::default(), Vec::new());
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    assert_eq!(p.end_turn(t0, ms(60), &|_| 0), Some(1));
    assert_eq!(p.kernel_shed_share(), 0, "an empty queue: nothing to shed");
    p.level = 0;
    p.kernel_share = all / 2;
    assert_eq!(p.end_turn(t0 + ms(10), ms(1), &|_| 0), None);
    assert_eq!(p.kernel_shed_share(), all / 2, "between windows: unchanged");
    assert_eq!(p.end_turn(t0 + ms(60), ms(1), &|_| 0), None);
    assert_eq!(
        p.kernel_shed_share(),
        0,
        "level 0, nothing came in a window: admits twice as much (all)"
    );
    for i in 0..4 {
        p.end_turn(t0 + ms(120 + 60 * i), ms(1), &|_| 0);
    }
    assert_eq!(p.kernel_shed_share(), 0, "calm: none");
    p.end_turn(t0 + ms(400), ms(1), &|_| 0);
    assert_eq!(
        p.kernel_shed_share(),
        0,
        "a short queue never starts shedding"
    );
}

/// A queue past the target starts the kernel shedding before the level rises (the
/// level-1 threshold, 20 %, is four times the target): the flood is cut while the
/// queue is still short.
/// A 10× flood on a shard that serves 1000 datagrams a sample: the share is matched to
/// the rate. `rule(share, fill, dropped, (read, shed))` is one controller step; returns
/// (datagrams read over the last 150 samples, the longest queue then, in datagrams).
fn flood(rule: &dyn Fn(u64, u64, bool, (u64, u64)) -> u64) -> (u64, u64) {
    let all = sipedge_rt::SHED_ALL;
    let (arrivals, capacity, room) = (10_000u64, 1_000u64, 5_000u64);
    let (mut share, mut queue, mut read_late, mut longest) = (0u64, 0u64, 0u64, 0u64);
    let mut coin = 0u64;
    for i in 0..200 {
        // Admitted as the filter would: the share of a sample's arrivals, kept in whole
        // datagrams by carrying the remainder.
        coin += arrivals * (all - share);
        let admitted = coin / all;
        coin %= all;
        let dropped = queue + admitted > room;
        queue = (queue + admitted).min(room);
        let read = queue.min(capacity);
        queue -= read;
        if i >= 50 {
            read_late += read;
            longest = longest.max(queue);
        }
        // 1 datagram = 2 basis points of SO_RCVBUF: the target (100) is 50 datagrams.
        share = rule(share, queue * 2, dropped, (read, arrivals - admitted));
    }
    (read_late, longest)
}

/// The shard serves at least 95 % of its rate with a queue of a few targets; the
/// queue-only rule before it (AIMD: halve above the target, +1/16 below) could only
/// admit multiples of 1/16 of a 10× flood and swung between idling and a full queue.
#[test]
fn a_ten_times_flood_is_cut_to_the_shards_rate() {
    let all = sipedge_rt::SHED_ALL;
    // As `end_turn_with` drives it: rates per window of 4 samples, between windows a
    // cut only while the queue grows.
    let state = std::cell::Cell::new((0u64, 0u64, 0u32, 0u64));
    let windowed = |s: u64, f: u64, d: bool, (r, sh): (u64, u64)| {
        let (ar, ash, n, last) = state.get();
        let (ar, ash, n) = (ar + r, ash + sh, n + 1);
        let rates = (n >= 4).then_some((ar, ash));
        state.set(if rates.is_some() {
            (0, 0, 0, f)
        } else {
            (ar, ash, n, f)
        });
        if rates.is_none() && !d && f < last {
            s
        } else {
            next_share(s, q(f, 100), d, rates)
        }
    };
    let (read, longest) = flood(&windowed);
    assert!(read >= 150 * 950, "read {read} of {}", 150 * 1000);
    assert!(longest <= 200, "queue {longest}");
    let aimd = |s: u64, f: u64, d: bool, _| {
        let admit = all - s.min(all);
        let admit = if d || f >= 100 {
            admit / 2
        } else {
            (admit + all / 16).min(all)
        };
        all - admit
    };
    let (read, longest) = flood(&aimd);
    assert!(
        read < 150 * 950 || longest > 200,
        "the old rule: read {read}, queue {longest}"
    );
}

#[test]
fn a_queue_past_the_target_starts_shedding_at_level_zero() {
    use std::os::fd::AsRawFd;
    let rx = std::net::UdpSocket::bind("127.0.44.250:0").unwrap_or_else(|e| panic!("{e}"));
    let tx = std::net::UdpSocket::bind("127.0.44.251:0").unwrap_or_else(|e| panic!("{e}"));
    let mut p = Pressure::new(OverloadSettings::default(), vec![rx.as_raw_fd()]);
    let t0 = Instant::now();
    assert_eq!(p.end_turn(t0, Duration::ZERO, &|_| 0), None);
    let to = rx.local_addr().unwrap_or_else(|e| panic!("{e}"));
    // Fill past the target (1 %), below the level-1 fill (20 %).
    for _ in 0..100_000 {
        let m = sipedge_rt::socket_meminfo(rx.as_raw_fd()).unwrap_or_else(|e| panic!("{e}"));
        if u64::from(m.rmem_alloc) * 100 >= u64::from(m.rcvbuf) * 11 {
            break;
        }
        let _ = tx.send_to(&[b'x'; 400], to);
    }
    let lvl = p.end_turn(t0 + Duration::from_millis(10), Duration::ZERO, &|_| 0);
    assert_eq!(lvl, None, "{:?}", p.sample);
    assert!(
        (1000..2000).contains(&p.sample.queue_basis_points),
        "{:?}",
        p.sample
    );
    assert!(
        p.kernel_shed_share() > 0,
        "past the target: the kernel sheds at level 0"
    );
}

/// After a flood the filter must reopen on an idle shard: what it admits is all it
/// reads, so matching that rate would hold the share forever (seen: a clean source's
/// OPTIONS shed seconds after a banned flood ended).
#[test]
fn an_idle_shard_reopens_the_filter_after_a_flood() {
    use std::os::fd::AsRawFd;
    let rx = std::net::UdpSocket::bind("127.0.44.252:0").unwrap_or_else(|e| panic!("{e}"));
    let mut p = Pressure::new(OverloadSettings::default(), vec![rx.as_raw_fd()]);
    p.kernel_share = sipedge_rt::SHED_ALL - (sipedge_rt::SHED_ALL >> MIN_ADMIT_SHIFT);
    let t0 = Instant::now();
    // A trickle: each window the shard reads 1 datagram and the filter sheds 99 of the
    // clean source's requests; the shard works 0.1 ms a turn.
    let mut shed_total = 0;
    for i in 0..60u64 {
        shed_total += 99;
        let (read, shed) = (i, shed_total);
        let now = t0 + Duration::from_millis(5 * (i + 1));
        let turn = Turn::all_work(Duration::from_micros(100));
        let _ = p.end_turn_with(now, turn, &|_| 0, &|| (read, shed));
    }
    assert_eq!(
        p.kernel_shed_share(),
        0,
        "an idle shard with an empty queue admits everything again within 300 ms"
    );
}

/// Turn lag is CPU time: a turn that took 250 ms of wall time but 2 ms of the thread's
/// CPU (it waited for a CPU: a quota's throttling, preemption) raises nothing; one that
/// worked 60 ms of CPU raises level 1, 250 ms level 2, whatever its wall time.
#[test]
fn turn_lag_is_cpu_time_not_wall_time() {
    let mut p = Pressure::new(OverloadSettings::default(), Vec::new());
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let turn = |wall, cpu| Turn { wall, cpu };
    let none = &|| (0, 0);
    for i in 0..5 {
        let at = t0 + ms(300 * i);
        assert_eq!(
            p.end_turn_with(at, turn(ms(250), ms(2)), &|_| 0, none),
            None,
            "throttled, not busy"
        );
    }
    assert_eq!(p.level(), 0);
    let at = t0 + ms(1600);
    assert_eq!(
        p.end_turn_with(at, turn(ms(60), ms(60)), &|_| 0, none),
        Some(1)
    );
    assert_eq!(
        p.end_turn_with(at, turn(ms(70), ms(250)), &|_| 0, none),
        Some(2),
        "CPU time past the level-2 turn"
    );
}

/// The level rose at the last turn before a pause (seen: the turn that raised it, then
/// 2 s without traffic): the first turn after the pause finds it calm for longer than
/// `calm_ms` and steps down at once, instead of answering 503 for `calm_ms` more
/// (seen: the calls' callees refused at start, their calls 404).
#[test]
fn a_level_raised_before_an_idle_pause_steps_down_at_the_next_turn() {
    let mut p = Pressure::new(OverloadSettings::default(), Vec::new());
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    assert_eq!(p.end_turn(t0, ms(60), &|_| 0), Some(1));
    assert_eq!(p.end_turn(t0 + ms(2000), ms(1), &|_| 0), Some(0));
    // Raised to 2, idle 700 ms: one step per calm_ms.
    assert_eq!(p.end_turn(t0 + ms(2100), ms(250), &|_| 0), Some(2));
    assert_eq!(p.end_turn(t0 + ms(2800), ms(1), &|_| 0), Some(1));
    assert_eq!(p.end_turn(t0 + ms(2900), ms(1), &|_| 0), None);
    assert_eq!(p.end_turn(t0 + ms(3300), ms(1), &|_| 0), Some(0));
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

/// A 10× flood on a shard that runs in bursts, as under a CPU quota of 1 ms in 10: per
/// 10 ms period it serves up to 200 datagrams (20 a ms on average), as soon as they come,
/// then sleeps to the period's end; 200 a ms arrive. `sojourn`: the controller reads the
/// queue's sojourn (the wait of the youngest datagram of the batch a turn takes, 256 at
/// most), else its fill alone. Returns (datagrams served over the last 2 s of 3 s, what
/// the shard could have served then, the longest wait of a served datagram then, ms).
fn bursty_flood(sojourn: bool) -> (u64, u64, u64) {
    let (served, capacity, longest, _) = bursty_flood_onset(sojourn, true);
    (served, capacity, longest)
}

/// [`bursty_flood`], also returning the lowest shed share (per mille) of the flood's
/// first 100 ms once shedding started: the most it admitted while its backlog formed;
/// `onset`: the start rules of `end_turn_with` (the window re-based when shedding starts,
/// settled only when the last turn's wait is within the target too), else those before.
fn bursty_flood_onset(sojourn: bool, onset: bool) -> (u64, u64, u64, u64) {
    let all = sipedge_rt::SHED_ALL;
    // 16 MiB of ~1.2 KB datagrams; the fill target (1 %) is 140 of them.
    let (room, target, batch, per_period, arrivals) = (14_000usize, 100u64, 256usize, 200, 200);
    let mut queue = std::collections::VecDeque::<u64>::new();
    let (mut share, mut coin, mut budget) = (0u64, 0u64, 0u64);
    let (mut served, mut longest, mut capacity, mut loosest) = (0u64, 0u64, 0u64, 1000u64);
    // The controller as `end_turn_with` drives it: a sample per 5 ms, a window per 20 ms.
    let (mut read, mut shed, mut win_read, mut win_shed) = (0u64, 0u64, 0u64, 0u64);
    let (mut wait_min, mut last_wait, mut last_fill) = (None::<u64>, None::<u64>, 0u64);
    let (mut dropped, mut settled) = (false, false);
    // The sample shedding started at (its first cut is the fill's, partial).
    let mut start_cut = u64::MAX;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for ms in 0..3000u64 {
        if ms % 10 == 0 {
            // The host's noise: a period's work varies by ±60 % (preemption, cache).
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            budget = per_period * 4 / 10 + rng % (per_period * 12 / 10 + 1);
            if ms >= 1000 {
                capacity += budget;
            }
        }
        coin += arrivals * (all - share);
        let admitted = coin / all;
        coin %= all;
        shed += arrivals - admitted;
        for _ in 0..admitted {
            if queue.len() < room {
                queue.push_back(ms);
            } else {
                dropped = true;
            }
        }
        if budget > 0 && !queue.is_empty() {
            // A turn: the youngest datagram of its batch gives the sojourn.
            let youngest = queue[queue.len().min(batch) - 1];
            let w = ms - youngest;
            last_wait = Some(w);
            wait_min = Some(wait_min.map_or(w, |m: u64| m.min(w)));
            let n = budget.min(queue.len() as u64);
            for _ in 0..n {
                let at = queue.pop_front().unwrap_or(ms);
                if ms >= 1000 {
                    longest = longest.max(ms - at);
                }
            }
            budget -= n;
            read += n;
            if ms >= 1000 {
                served += n;
            }
        }
        if ms % 5 == 4 {
            let fill = queue.len() as u64 * 10_000 / room as u64;
            let window = ms % 20 == 19;
            let rates = window.then(|| {
                let r = (read - win_read, shed - win_shed);
                (win_read, win_shed) = (read, shed);
                r
            });
            // As `end_turn_with`: between windows the sojourn rules once a window's
            // lowest wait was within its target (a flood's start is the fill's).
            let wait = if !sojourn {
                None
            } else if window {
                let w = wait_min.take().map(|w| (w * 1000, 20_000));
                let last_within = !onset || last_wait.is_some_and(|l| l <= 20);
                settled |= w.is_some_and(|(m, t)| m <= t) && last_within;
                w
            } else {
                last_wait.filter(|_| settled).map(|w| (w * 1000, 20_000))
            };
            let shrinking = rates.is_none() && !dropped && fill < last_fill;
            last_fill = fill;
            if !shrinking && (share > 0 || fill >= target || dropped) {
                let q = QueueState { fill, target, wait };
                let start = share == 0;
                share = next_share(share, q, dropped, rates);
                if onset && start && share > 0 {
                    (win_read, win_shed, wait_min) = (read, shed, None);
                }
            }
            if share > 0 && start_cut == u64::MAX {
                start_cut = ms;
            }
            if share > 0 && ms < 100 && ms > start_cut {
                loosest = loosest.min(share * 1000 / all);
            }
            dropped = false;
        }
    }
    (served, capacity, longest, loosest)
}

/// The sojourn rule keeps a bursty shard busy: at least 95 % of its rate served, no
/// admitted datagram waiting past the stale drop's 100 ms — with the flood's start left
/// to the fill (without that gate the start's backlog waited 559 ms here). This model
/// does not reproduce the fill rule's idling on the real rig (both serve all here): that
/// is `the_sojourn_not_the_fill_corrects_the_share`'s, rule by rule.
/// A flood's start: the first rate window counts only what came while the filter shed
/// (one begun before it diluted the shed and relaxed the first cut — seen on the rig: 875 ‰
/// to 750 ‰ while the queue grew, its backlog then waited 100 ms and 3.4k requests went
/// stale), and the shard still serves its rate after.
#[test]
fn a_floods_first_window_does_not_relax_the_first_cut() {
    let (served, rate, _, loosest) = bursty_flood_onset(true, true);
    let (_, _, _, loosest0) = bursty_flood_onset(true, false);
    eprintln!(
        "start rules: at least {loosest} ‰ shed in the first 100 ms, then {served} of {rate}"
    );
    eprintln!("before them: at least {loosest0} ‰");
    assert!(loosest >= 880, "{loosest} ‰ (needed: 900 ‰)");
    assert!(served * 100 >= rate * 95, "served {served} of {rate}");
}

#[test]
fn a_bursty_shard_is_kept_busy_by_the_sojourn_target() {
    let (served, rate, longest) = bursty_flood(true);
    eprintln!("sojourn: served {served} of {rate}, waited {longest} ms");
    let (served2, rate2, longest2) = bursty_flood(false);
    eprintln!("fill alone: served {served2} of {rate2}, waited {longest2} ms");
    assert!(
        served * 100 >= rate * 95,
        "sojourn: served {served} of {rate}"
    );
    assert!(longest <= 100, "sojourn: waited {longest} ms");
}

/// The sojourn target (`kernel_shed_wait_ms`, 20 ms here) rules where it is measured: a
/// burst's long queue (10 targets, found after a quota's pause) that the shard takes with
/// a short wait is not cut between windows and, per window, what was read is admitted
/// uncut — the fill rule cut both (seen: shares of 985–997 ‰ where 900 ‰ fit, the shard
/// idle); a standing queue past the target is drained over 100 ms (at most ×3/4 a
/// window); one that ran empty admits an eighth more.
#[test]
fn the_sojourn_not_the_fill_corrects_the_share() {
    let all = sipedge_rt::SHED_ALL;
    let admit = |share: u64| all - share;
    let t = 100;
    let tenth = all - all / 10;
    let waited = |fill: u64, ms: u64| QueueState {
        fill,
        target: t,
        wait: Some((ms * 1000, 20_000)),
    };
    assert_eq!(
        admit(next_share(tenth, waited(10 * t, 8), false, None)),
        all / 10,
        "between windows: a burst taken at once is not cut"
    );
    assert_eq!(
        admit(next_share(
            tenth,
            waited(10 * t, 8),
            false,
            Some((1000, 9000))
        )),
        all / 10,
        "per window: what was read, uncut"
    );
    assert_eq!(
        admit(next_share(tenth, waited(10 * t, 40), false, None)),
        all / 10,
        "between windows: a standing queue is left to the window"
    );
    assert_eq!(
        admit(next_share(tenth, waited(10 * t, 90), false, None)),
        all / 10,
        "between windows: a burst's wait is the queue's and the stale drop's"
    );
    assert_eq!(
        admit(next_share(tenth, waited(t, 40), false, Some((1000, 9000)))),
        all / 10 * 80 / 100,
        "per window: 20 ms past the target drained over 100 ms"
    );
    assert_eq!(
        admit(next_share(tenth, waited(0, 2), false, Some((1000, 9000)))),
        all / 10 * 9 / 8,
        "ran empty: an eighth more"
    );
    assert_eq!(
        admit(next_share(tenth, waited(0, 500), false, Some((1000, 9000)))),
        all / 10 * 3 / 4,
        "at most ×3/4"
    );
    assert_eq!(
        admit(next_share(tenth, waited(0, 2), true, None)),
        all / 20,
        "an overflow halves"
    );
}
