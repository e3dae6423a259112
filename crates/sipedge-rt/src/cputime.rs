//! The calling thread's CPU time (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`): what a shard
//! turn costs in work, apart from the time the thread waited for a CPU — preempted, or
//! throttled by a cgroup CPU quota (`cpu.max`), where a turn's wall time grows with no more
//! work done. The shard's pressure meter reads it once per turn (issue 17).

use std::time::Duration;

/// The CPU time (user + system) the calling thread has used since it started. `None` where
/// the clock is not available (it is on every Linux since 2.6.12).
pub fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec the call fills; it does not keep the pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec).ok()?;
    Some(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::thread_cpu_time;
    use std::time::{Duration, Instant};

    /// Sleeping costs the thread no CPU time; spinning costs about its wall time.
    #[test]
    fn counts_work_not_waiting() {
        let cpu = || thread_cpu_time().unwrap_or_else(|| panic!("no thread CPU clock"));
        let c0 = cpu();
        std::thread::sleep(Duration::from_millis(100));
        let slept = cpu().saturating_sub(c0);
        assert!(slept < Duration::from_millis(20), "slept {slept:?}");
        let c1 = cpu();
        let t = Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let spun = cpu().saturating_sub(c1);
        // At least a part of the spin (the test may share a busy CPU).
        assert!(spun >= Duration::from_millis(5), "spun {spun:?}");
        assert!(
            spun <= t.elapsed() + Duration::from_millis(5),
            "spun {spun:?}"
        );
    }
}
