//! The SIP Date header (RFC 3261 §20.17: RFC 1123 date, always GMT), from UNIX seconds.

/// Appends e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn write_sip_date(out: &mut Vec<u8>, unix_secs: u64) {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    out.extend_from_slice(DAYS[(days % 7) as usize]);
    out.extend_from_slice(b", ");
    two(out, d as u64);
    out.push(b' ');
    out.extend_from_slice(MONTHS[(m - 1) as usize]);
    out.push(b' ');
    let y = y.clamp(0, 9999) as u64;
    two(out, y / 100);
    two(out, y % 100);
    out.push(b' ');
    two(out, secs / 3600);
    out.push(b':');
    two(out, secs / 60 % 60);
    out.push(b':');
    two(out, secs % 60);
    out.extend_from_slice(b" GMT");
}

fn two(out: &mut Vec<u8>, n: u64) {
    out.push(b'0' + (n / 10 % 10) as u8);
    out.push(b'0' + (n % 10) as u8);
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
    fn formats_rfc1123() {
        assert_eq!(date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(date(1_764_547_200), "Mon, 01 Dec 2025 00:00:00 GMT");
    }
}
