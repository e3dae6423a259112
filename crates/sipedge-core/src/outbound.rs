//! RFC 5626 (Outbound) duties of the edge beyond the registrar's flow bookkeeping: the
//! `Flow-Timer` we promise in a REGISTER's 2xx. (STUN keepalives on the SIP port are in
//! [`crate::stun`].)

/// RFC 5626 §4.4.1 / §6: a registrar that accepts an Outbound registration (Supported:
/// outbound and a `reg-id`) SHOULD say with `Flow-Timer` how often it expects keepalives
/// on the flow; the UA then sends one at least that often (80–100% of the value). We ask
/// for our own NAT ping interval, so the UA's keepalives and our pings hold the mapping at
/// the same pace. Writes `Flow-Timer: N\r\n` (N ≥ 1).
pub(crate) fn write_flow_timer(out: &mut Vec<u8>, ping_interval_secs: u32) {
    out.extend_from_slice(b"Flow-Timer: ");
    let mut digits = [0u8; 10];
    let mut n = ping_interval_secs.max(1);
    let mut i = digits.len();
    while n > 0 {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_timer_line() {
        let mut v = Vec::new();
        write_flow_timer(&mut v, 60);
        assert_eq!(v, b"Flow-Timer: 60\r\n");
        v.clear();
        write_flow_timer(&mut v, 0);
        assert_eq!(v, b"Flow-Timer: 1\r\n");
        v.clear();
        write_flow_timer(&mut v, u32::MAX);
        assert_eq!(v, b"Flow-Timer: 4294967295\r\n");
    }
}
