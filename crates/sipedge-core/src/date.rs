//! The SIP Date header (RFC 3261 §20.17: RFC 1123 date, always GMT), from UNIX seconds.

/// Length of every date [`format_sip_date`] writes (the year is clamped to four digits).
const SIP_DATE_LEN: usize = 29;

/// Appends e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
#[cfg(test)]
pub(crate) fn write_sip_date(out: &mut Vec<u8>, unix_secs: u64) {
    out.extend_from_slice(&format_sip_date(unix_secs));
}

/// The date of `unix_secs`, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn format_sip_date(unix_secs: u64) -> [u8; SIP_DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let y = y.clamp(0, 9999) as u64;
    let mut t = *b"Ddd, DD Mmm YYYY HH:MM:SS GMT";
    t[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    two(&mut t[5..7], d as u64);
    t[8..11].copy_from_slice(MONTHS[(m - 1) as usize]);
    two(&mut t[12..14], y / 100);
    two(&mut t[14..16], y % 100);
    two(&mut t[17..19], secs / 3600);
    two(&mut t[20..22], secs / 60 % 60);
    two(&mut t[23..25], secs % 60);
    t
}

/// The last date formatted, by UNIX second: the 200 OKs of one second share one formatting.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DateCache {
    secs: u64,
    text: [u8; SIP_DATE_LEN],
}

impl Default for DateCache {
    fn default() -> Self {
        DateCache {
            secs: 0,
            text: format_sip_date(0),
        }
    }
}

impl DateCache {
    /// Appends the date of `unix_secs`, as [`write_sip_date`] does.
    pub(crate) fn write(&mut self, out: &mut Vec<u8>, unix_secs: u64) {
        if unix_secs != self.secs {
            self.text = format_sip_date(unix_secs);
            self.secs = unix_secs;
        }
        out.extend_from_slice(&self.text);
    }
}

fn two(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month 1–12, day 1–31).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(secs: u64) -> String {
        let mut v = Vec::new();
        write_sip_date(&mut v, secs);
        String::from_utf8(v).expect("ascii")
    }

    #[test]
    fn the_cache_writes_what_the_formatter_writes() {
        let mut c = DateCache::default();
        for secs in [0, 0, 784_111_777, 784_111_777, 784_111_778, 0] {
            let mut v = Vec::new();
            c.write(&mut v, secs);
            assert_eq!(String::from_utf8(v).expect("ascii"), date(secs));
        }
    }

    #[test]
    fn formats_rfc1123() {
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(date(1_764_547_200), "Mon, 01 Dec 2025 00:00:00 GMT");
    }
}
