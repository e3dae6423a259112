//! Addresses: an IP literal host as an [`IpAddr`], an [`IpAddr`] as text on the stack, and
//! where a response to a request goes (RFC 3261 §18.2.2 with RFC 3581's `rport`).

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use crate::uri::strip_brackets;
use crate::via::{RPort, Via};

/// The IP address an IP-literal host names (IPv4, or IPv6 with or without the RFC 3261
/// §25.1 `IPv6reference` brackets); `None` for a host name or anything unreadable.
#[inline]
pub fn host_ip(host: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(strip_brackets(host)).ok()?.parse().ok()
}

/// An IP address as text (its `Display` form, IPv6 without brackets), on the stack: the
/// value of a Via `received` parameter (RFC 3261 §18.2.1).
#[derive(Debug, Clone, Copy)]
pub struct IpText {
    buf: [u8; 48],
    len: u8,
}

impl IpText {
    /// The text of `ip`.
    #[inline]
    pub fn new(ip: IpAddr) -> IpText {
        let mut buf = [0u8; 48];
        let len = match ip {
            // The common case without the formatting machinery.
            IpAddr::V4(v4) => write_ipv4(&mut buf, v4.octets()),
            ip => {
                let mut cur = std::io::Cursor::new(&mut buf[..]);
                let _ = write!(cur, "{ip}");
                cur.position() as usize
            }
        };
        IpText {
            buf,
            len: len as u8,
        }
    }

    /// The text.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

/// The decimal text of every octet: `[len, d0, d1, d2]`.
const OCTET_TEXT: [[u8; 4]; 256] = {
    let mut t = [[0u8; 4]; 256];
    let mut i = 0;
    while i < 256 {
        let (h, d, u) = ((i / 100) as u8, (i / 10 % 10) as u8, (i % 10) as u8);
        t[i] = if i >= 100 {
            [3, b'0' + h, b'0' + d, b'0' + u]
        } else if i >= 10 {
            [2, b'0' + d, b'0' + u, 0]
        } else {
            [1, b'0' + u, 0, 0]
        };
        i += 1;
    }
    t
};

/// Writes `a.b.c.d` into `out` (at least 16 bytes) and returns its length.
fn write_ipv4(out: &mut [u8], octets: [u8; 4]) -> usize {
    let out = &mut out[..16];
    let mut n = 0;
    for o in octets {
        let [len, a, b, c] = OCTET_TEXT[usize::from(o)];
        out[n..n + 4].copy_from_slice(&[a, b, c, b'.']);
        n += usize::from(len);
        out[n] = b'.';
        n += 1;
    }
    n - 1
}

/// Where a response to a request goes, and what the top Via of that response gains
/// (RFC 3261 §18.2.1, §18.2.2; RFC 3581 §4). The server side of an unreliable transport:
/// `maddr` is not honoured (the edge answers the source, never a multicast group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseAddr<'t> {
    /// The `received` parameter to add: §18.2.1, the sent-by host is not the source IP (a
    /// host name always differs); RFC 3581 §4, always when `rport` is present without a
    /// value.
    pub received: Option<&'t [u8]>,
    /// The value for an `rport` parameter present without one (RFC 3581 §4: the source
    /// port).
    pub rport: Option<u16>,
    /// Where the response is sent: [`response_dest`].
    pub dest: SocketAddr,
}

impl<'t> ResponseAddr<'t> {
    /// The response address of a request from `source` (written as `source_text`, the
    /// [`IpText`] of its IP) whose top Via is `via`; `None`: a top Via too broken to read
    /// (RFC 4475 §3.1.2.1), answered at the source address as it is.
    #[inline]
    pub fn of(via: Option<&Via<'_>>, source: SocketAddr, source_text: &'t [u8]) -> Self {
        let Some(via) = via else {
            return ResponseAddr {
                received: None,
                rport: None,
                dest: source,
            };
        };
        let rport_asked = via.rport() == RPort::Requested;
        ResponseAddr {
            received: needs_received(via, source_text).then_some(source_text),
            rport: rport_asked.then_some(source.port()),
            dest: response_dest(via, source),
        }
    }
}

/// RFC 3261 §18.2.1 / RFC 3581 §4: the top Via needs a `received` parameter — its sent-by
/// host is not `source_text` (compared as text, case-insensitive, IPv6 brackets ignored; a
/// host name always differs), or it carries `rport` without a value.
#[inline]
pub fn needs_received(via: &Via<'_>, source_text: &[u8]) -> bool {
    via.rport() == RPort::Requested || !via.host_unbracketed().eq_ignore_ascii_case(source_text)
}

/// RFC 3261 §18.2.2 with RFC 3581 §4: a response over an unreliable transport goes to the
/// source IP (the `received` address) — at the source port when the top Via has `rport`
/// (with or without a value), else at the sent-by port, 5060 when none is written.
#[inline]
pub fn response_dest(via: &Via<'_>, source: SocketAddr) -> SocketAddr {
    let port = match via.rport() {
        RPort::Requested | RPort::Port(_) => source.port(),
        RPort::Absent => via.port().unwrap_or(5060),
    };
    SocketAddr::new(source.ip(), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn via(s: &str) -> Via<'_> {
        Via::parse(s.as_bytes()).expect("via")
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn ipv4_text() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "192.168.100.255",
            "255.255.255.255",
            "1.20.100.9",
        ] {
            let a: std::net::Ipv4Addr = ip.parse().expect("ip");
            let mut buf = [0u8; 16];
            let n = write_ipv4(&mut buf, a.octets());
            assert_eq!(&buf[..n], ip.as_bytes());
            assert_eq!(IpText::new(a.into()).as_bytes(), ip.as_bytes());
        }
    }

    #[test]
    fn ipv6_text_is_unbracketed_and_fits() {
        let longest: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
            .parse()
            .expect("ip");
        let t = IpText::new(longest);
        assert_eq!(t.as_bytes(), longest.to_string().as_bytes());
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        assert_eq!(IpText::new(v6).as_bytes(), b"2001:db8::1");
    }

    #[test]
    fn host_ip_literals() {
        assert_eq!(host_ip(b"10.0.0.1"), Some("10.0.0.1".parse().expect("ip")));
        assert_eq!(
            host_ip(b"[2001:db8::1]"),
            Some("2001:db8::1".parse().expect("ip"))
        );
        assert_eq!(
            host_ip(b"2001:db8::1"),
            Some("2001:db8::1".parse().expect("ip"))
        );
        for hostile in [
            &b"example.com"[..],
            b"",
            b"[",
            b"[]",
            b"]",
            b"[10.0.0.1",
            b"[[::1]]",
            b"10.0.0.256",
            b"10.0.0.1:5060",
            b"[::1]:5060",
            b"\xff\xfe",
            b"::1%eth0",
        ] {
            assert_eq!(
                host_ip(hostile),
                None,
                "{:?}",
                String::from_utf8_lossy(hostile)
            );
        }
    }

    #[test]
    fn response_address_rules() {
        let src = sa("192.0.2.7:40000");
        let txt = IpText::new(src.ip());
        let t = txt.as_bytes();
        // Sent-by is the source, no rport: nothing added, the sent-by port (5060 by default).
        let r = ResponseAddr::of(Some(&via("SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1")), src, t);
        assert_eq!(
            (r.received, r.rport, r.dest),
            (None, None, sa("192.0.2.7:5060"))
        );
        let r = ResponseAddr::of(Some(&via("SIP/2.0/UDP 192.0.2.7:5070")), src, t);
        assert_eq!(
            (r.received, r.rport, r.dest),
            (None, None, sa("192.0.2.7:5070"))
        );
        // A host name differs: received, still the sent-by port, at the source IP.
        let r = ResponseAddr::of(Some(&via("SIP/2.0/UDP pc.example.com:5062")), src, t);
        assert_eq!((r.received, r.rport), (Some(t), None));
        assert_eq!(r.dest, sa("192.0.2.7:5062"));
        // rport without a value: received even when the host matches, the source port.
        let r = ResponseAddr::of(Some(&via("SIP/2.0/UDP 192.0.2.7:5060;rport")), src, t);
        assert_eq!((r.received, r.rport, r.dest), (Some(t), Some(40000), src));
        // rport with a value (a request we relay back to): the source port, nothing filled.
        let r = ResponseAddr::of(Some(&via("SIP/2.0/UDP 192.0.2.7;rport=9")), src, t);
        assert_eq!((r.received, r.rport, r.dest), (None, None, src));
        // A broken top Via: the source as it is.
        let r = ResponseAddr::of(None, src, t);
        assert_eq!((r.received, r.rport, r.dest), (None, None, src));
    }

    #[test]
    fn response_address_ipv6() {
        let src = sa("[2001:db8::9]:40000");
        let txt = IpText::new(src.ip());
        let t = txt.as_bytes();
        let r = ResponseAddr::of(Some(&via("SIP/2.0/UDP [2001:DB8::9]:5070")), src, t);
        assert_eq!((r.received, r.dest), (None, sa("[2001:db8::9]:5070")));
        let r = ResponseAddr::of(Some(&via("SIP/2.0/UDP [2001:db8::10];rport")), src, t);
        assert_eq!((r.received, r.rport, r.dest), (Some(t), Some(40000), src));
        assert_eq!(t, b"2001:db8::9", "received carries no brackets");
    }
}
