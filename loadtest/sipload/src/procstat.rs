//! CPU time of a process from `/proc/<pid>/stat` (utime + stime, every thread of the process,
//! including threads that already exited), in seconds.

use std::process::Command;
use std::sync::OnceLock;

/// USER_HZ on every mainstream Linux architecture, used when `getconf` is unavailable.
const FALLBACK_CLK_TCK: u64 = 100;

/// Clock ticks per second of the `/proc` CPU counters (`getconf CLK_TCK`).
pub(crate) fn clk_tck() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(FALLBACK_CLK_TCK)
    })
}

/// utime + stime in clock ticks from the text of a `/proc/<pid>/stat` file.
pub(crate) fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    // After the name: field 3 (state) is index 0, so utime (14) is index 11, stime (15) 12.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds consumed so far by process `pid` (`None`: this process).
pub(crate) fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    Some(parse_stat_ticks(&text)? as f64 / clk_tck() as f64)
}

/// CPU seconds of several processes together (a server that forks workers, such as
/// Kamailio); `None` when the list is empty or one of them is gone.
pub(crate) fn total_cpu_seconds(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&p| cpu_seconds(Some(p))).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_plus_stime_even_with_odd_command_names() {
        let line = "4242 (we ird) name)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    731 269 0 0 20 0 3 0 123456 1000000 500 18446744073709551615";
        assert_eq!(parse_stat_ticks(line), Some(1000));
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        let s = cpu_seconds(None).expect("/proc/self/stat is readable on Linux");
        assert!(s >= 0.0);
        assert!(clk_tck() > 0);
        let me = std::process::id();
        assert!(total_cpu_seconds(&[me, me]).expect("readable") >= 2.0 * s);
        assert_eq!(total_cpu_seconds(&[]), None);
        assert_eq!(
            total_cpu_seconds(&[me, u32::MAX]),
            None,
            "a process that does not exist"
        );
    }
}
