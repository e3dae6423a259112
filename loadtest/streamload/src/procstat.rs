//! CPU seconds of processes from `/proc/PID/stat` (utime + stime, fields 14 and 15).

/// Sum over `pids` of user + system CPU seconds; a process that is gone counts 0.
pub(crate) fn cpu_seconds(pids: &[u32]) -> f64 {
    // Linux's USER_HZ (clock ticks in /proc) is 100 on every architecture we build for.
    const TICKS: f64 = 100.0;
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|stat| {
            // The command name may hold spaces: fields start after the last ')'.
            let rest = &stat[stat.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split(' ').collect();
            let u: f64 = f.get(11)?.parse().ok()?;
            let s: f64 = f.get(12)?.parse().ok()?;
            Some((u + s) / TICKS)
        })
        .sum()
}
