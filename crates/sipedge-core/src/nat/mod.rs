//! NAT traversal: detection of NATed registrations, the received address a NATed binding is
//! reached at, and the keepalive pinger (`ping`).
//!
//! **Detection** (per REGISTER, per contact; Kamailio's `nat_uac_test` + `fix_nated_register`):
//!
//! | test | rule |
//! | --- | --- |
//! | Via | the top Via sent-by (host, port; 5060 when absent) differs from the source ip:port. The reply carries `received` (RFC 3261 §18.2.1) and `rport` (RFC 3581 §4): `Core::reply` adds them |
//! | Contact | the Contact host is a private or shared address (RFC 1918, RFC 6598 100.64/10, link-local 169.254/16, IPv6 ULA fc00::/7 and link-local fe80::/10) while the source is not |
//! | per user | `nat = "force"`: always NATed ("Force NAT"); `nat = "disabled"`: never ("Disable NAT") |
//!
//! A NATed binding keeps its Contact as registered (the 200 OK and lookups list it
//! unchanged) and is reached at the address the REGISTER came from
//! ([`crate::LookupContact::received`]), like Kamailio's `fix_nated_register` with
//! `received_avp`.
//!
//! **Per-user settings.** [`NatConfig::users`] maps a canonical AoR (`sip:user@domain`) to a
//! [`NatUser`] override of the global defaults; the shell fills it from the `nat` /
//! `nat_ping` keys of `[[users]]` (`src/config_nat.rs`; a key left out means the `[nat]`
//! default). It is read at every REGISTER and restore ([`crate::Core::nat_user`]) and its
//! result is stored in the binding (NATed or not, ping mode), so the pinger never looks it
//! up.
//!
//! **Reload.** The overrides are one immutable generation ([`NatUsers`], an `Arc` shared by
//! every shard, like the auth tables): SIGHUP builds the next with [`NatUsers::next`], which
//! also records which AoRs changed, and the shell hands it to each core between turns
//! ([`crate::Core::handle_config`]), which re-applies it at once to the bindings it owns of
//! the changed AoRs only: the ping mode is set anew; the NATed flag becomes true
//! for `force`, false for `disabled`, and for a change to `auto` is worked out again as at a
//! restore (contact against source). Bindings are neither dropped nor re-registered.
//!
//! **Per-binding state** fits in the padding of the 72-byte binding slot ([`NatState`], 5
//! bytes): NATed flag, ping mode, outstanding-ping and alive flags, a 3-bit miss counter,
//! the last RTT (u16 ms) and a smoothed RTT (u16, 1/8 ms).

pub(crate) mod ping;
mod reload;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sipedge_msg::{Uri, Via};

use crate::stateless::IpText;

pub use crate::location::nat_bits::PingMode;
pub(crate) use crate::location::nat_bits::{NatState, PingEvent, PingStep};
pub(crate) use ping::{NatPinger, NatRuntime};
pub use ping::{NatStats, RTT_BUCKETS_MS};

pub(crate) use crate::config::nat::NatUserTable;
pub use crate::config::nat::{
    NatConfig, NatMode, NatUser, NatUserMap, NatUsers, PingMethod, DEFAULT_PING_FAILURES_MAX,
    DEFAULT_PING_INTERVAL_SECS, MAX_PING_FAILURES_MAX, MAX_PING_INTERVAL_SECS,
    MIN_PING_INTERVAL_SECS,
};

/// True for private and shared addresses: RFC 1918 (10/8, 172.16/12, 192.168/16), RFC 6598
/// (100.64/10), IPv4 link-local (169.254/16, RFC 3927), IPv6 ULA (fc00::/7, RFC 4193) and
/// link-local (fe80::/10, RFC 4291); IPv4-mapped IPv6 addresses are judged as IPv4.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => private_v4(v4),
            None => private_v6(v6),
        },
    }
}

fn private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 10
        || (a == 172 && (16..=31).contains(&b))
        || (a == 192 && b == 168)
        || (a == 100 && (64..=127).contains(&b))
        || (a == 169 && b == 254)
}

fn private_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments()[0];
    (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
}

/// An IP literal host (IPv6 with or without brackets); `None` for a host name.
pub(crate) use sipedge_msg::host_ip;

/// RFC 3261 §18.2.1 / RFC 3581 §4: the top Via's sent-by (host and port, 5060 when absent)
/// is not the address the request came from. A host name always differs.
pub fn via_differs(via: &Via<'_>, source: SocketAddr) -> bool {
    via_differs_text(via, source, IpText::new(source.ip()).as_bytes())
}

/// [`via_differs`] with the source address already written as text (`IpText`).
pub(crate) fn via_differs_text(via: &Via<'_>, source: SocketAddr, source_text: &[u8]) -> bool {
    via.port().unwrap_or(5060) != source.port()
        || (!is_ip_text(via.host(), source_text)
            && host_ip(via.host()).is_none_or(|ip| !same_ip(ip, source.ip())))
}

/// True when `host` (brackets allowed) is the IP address whose usual text is `ip_text`:
/// the common case of a phone that is not NATed, decided without parsing. `false` says
/// nothing (the caller parses).
fn is_ip_text(host: &[u8], ip_text: &[u8]) -> bool {
    let host = match host {
        [b'[', inner @ .., b']'] => inner,
        _ => host,
    };
    host == ip_text
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let canon = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    canon(a) == canon(b)
}

/// What one REGISTER says about NAT, worked out once per request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestNat {
    /// The top Via differs from the source.
    pub(crate) via_differs: bool,
    /// The source address is itself private (then a private Contact proves nothing).
    pub(crate) source_private: bool,
    /// The source address as text.
    pub(crate) source_text: IpText,
    /// The user's overrides resolved against the defaults.
    pub(crate) mode: NatMode,
    pub(crate) ping: PingMode,
}

impl RequestNat {
    /// Detection for one contact of the request (the module docs' table).
    pub(crate) fn nated(&self, contact: &Uri<'_>) -> bool {
        match self.mode {
            NatMode::Force => true,
            NatMode::Disabled => false,
            NatMode::Auto => {
                self.via_differs
                    || (!self.source_private
                        // The source itself (not private: checked) needs no parse.
                        && !is_ip_text(contact.host(), self.source_text.as_bytes())
                        && host_ip(contact.host()).is_some_and(is_private))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.1.1",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "172.15.0.1",
            "100.128.0.1",
            "100.63.0.1",
            "127.0.0.1",
            "2001:db8::1",
            "::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn via_comparison() {
        let src: SocketAddr = "203.0.113.5:40000".parse().expect("addr");
        let via = |s: &'static str| Via::parse(s.as_bytes()).expect("via");
        assert!(!via_differs(
            &via("SIP/2.0/UDP 203.0.113.5:40000;branch=z9hG4bKa"),
            src
        ));
        assert!(via_differs(
            &via("SIP/2.0/UDP 203.0.113.5;branch=z9hG4bKa"),
            src
        ));
        assert!(via_differs(
            &via("SIP/2.0/UDP 10.0.0.5:40000;branch=z9hG4bKa"),
            src
        ));
        assert!(via_differs(
            &via("SIP/2.0/UDP phone.example:40000;branch=z9hG4bKa"),
            src
        ));
        let src6: SocketAddr = "[2001:db8::5]:5060".parse().expect("addr");
        assert!(!via_differs(
            &via("SIP/2.0/UDP [2001:db8::5];branch=z9hG4bKa"),
            src6
        ));
    }
}
