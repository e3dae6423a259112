//! Wildcard binds (`0.0.0.0` / `[::]`) that answer from the address they were reached on
//! (issue 15 item 2).
//!
//! A socket bound to a wildcard address gets `IP_PKTINFO` / `IPV6_RECVPKTINFO`
//! ([`enable`]); each received datagram then carries its destination address in a control
//! message ([`parse_dst`]). The engine remembers it per (socket, peer) in a fixed-size
//! direct-mapped [`SourceCache`], and a datagram sent to that peer from that socket carries
//! it back as the source (`IP_PKTINFO` / `IPV6_PKTINFO` on `sendmsg`, [`encode_src`]).
//! Nothing changes for the shell or the core: they still name sockets by index.
//!
//! The cache is bounded (no allocation after start, a colliding peer overwrites the
//! older entry): a reply within the same loop turn always finds its entry; a datagram to a
//! peer whose entry was overwritten, or a peer that never sent to this shard's socket (a
//! request handed to another shard and answered there), leaves the source to the kernel's
//! route choice — right on a single-homed host, and why a multi-homed host should list
//! each address as its own listen entry. Control messages are read and written as bytes
//! (the `CMSG_*` layout of Linux), so the only `unsafe` is the `setsockopt` call.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

/// Bytes of control buffer per datagram: one `cmsghdr` plus `in6_pktinfo`, aligned.
pub(crate) const CTL_BYTES: usize = 64;
/// Entries of one engine's [`SourceCache`] (a power of two).
pub(crate) const CACHE_ENTRIES: usize = 4096;

const HDR: usize = std::mem::size_of::<libc::cmsghdr>();
const ALIGN: usize = std::mem::size_of::<usize>();

/// A control-message buffer, aligned like `cmsghdr`.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub(crate) struct CtlBuf {
    pub(crate) bytes: [u8; CTL_BYTES],
}

impl CtlBuf {
    pub(crate) const fn zeroed() -> Self {
        CtlBuf {
            bytes: [0; CTL_BYTES],
        }
    }
}

/// Where a datagram arrived: our address (and, for IPv6, the interface index, which a
/// link-local source needs on the way back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LocalAddr {
    pub(crate) ip: IpAddr,
    pub(crate) ifindex: u32,
}

/// Asks the kernel for each datagram's destination address on `socket` (bound to `addr`).
pub(crate) fn enable(socket: &socket2::Socket, addr: SocketAddr) -> std::io::Result<()> {
    let (level, name) = if addr.is_ipv4() {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    } else {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    };
    let one: libc::c_int = 1;
    // SAFETY: the fd is open (borrowed from `socket`), `one` is a live c_int and the length
    // passed is its size; both options take an int flag.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn align(n: usize) -> usize {
    (n + ALIGN - 1) & !(ALIGN - 1)
}

/// The destination address in the control messages the kernel wrote (`ctl` is the
/// `msg_controllen` bytes it reported). `None` when there is none, or it is a multicast
/// or broadcast address (never a source).
pub(crate) fn parse_dst(ctl: &[u8]) -> Option<LocalAddr> {
    let mut at = 0;
    while at + HDR <= ctl.len() {
        let len = usize::from_ne_bytes(ctl[at..at + ALIGN].try_into().ok()?);
        let level = i32::from_ne_bytes(ctl[at + ALIGN..at + ALIGN + 4].try_into().ok()?);
        let kind = i32::from_ne_bytes(ctl[at + ALIGN + 4..at + ALIGN + 8].try_into().ok()?);
        if len < HDR || at + len > ctl.len() {
            return None;
        }
        let data = &ctl[at + HDR..at + len];
        if level == libc::IPPROTO_IP && kind == libc::IP_PKTINFO && data.len() >= 12 {
            // in_pktinfo { ipi_ifindex, ipi_spec_dst, ipi_addr }: the header's destination.
            let ip = Ipv4Addr::new(data[8], data[9], data[10], data[11]);
            if ip.is_multicast() || ip.is_broadcast() || ip.is_unspecified() {
                return None;
            }
            return Some(LocalAddr {
                ip: IpAddr::V4(ip),
                ifindex: 0,
            });
        }
        if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_PKTINFO && data.len() >= 20 {
            // in6_pktinfo { ipi6_addr, ipi6_ifindex }.
            let mut o = [0u8; 16];
            o.copy_from_slice(&data[..16]);
            let ip = Ipv6Addr::from(o);
            if ip.is_multicast() || ip.is_unspecified() {
                return None;
            }
            let ifindex = u32::from_ne_bytes(data[16..20].try_into().ok()?);
            return Some(LocalAddr {
                ip: IpAddr::V6(ip),
                ifindex,
            });
        }
        at += align(len);
    }
    None
}

/// Writes one `IP_PKTINFO` / `IPV6_PKTINFO` control message asking for `src` as the
/// source; returns its length (`msg_controllen`).
pub(crate) fn encode_src(ctl: &mut CtlBuf, src: LocalAddr) -> usize {
    let b = &mut ctl.bytes;
    *b = [0; CTL_BYTES];
    let (level, kind, data_len) = match src.ip {
        IpAddr::V4(_) => (libc::IPPROTO_IP, libc::IP_PKTINFO, 12),
        IpAddr::V6(_) => (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO, 20),
    };
    b[..ALIGN].copy_from_slice(&(HDR + data_len).to_ne_bytes());
    b[ALIGN..ALIGN + 4].copy_from_slice(&level.to_ne_bytes());
    b[ALIGN + 4..ALIGN + 8].copy_from_slice(&kind.to_ne_bytes());
    let d = &mut b[HDR..HDR + data_len];
    match src.ip {
        IpAddr::V4(ip) => {
            // ipi_ifindex 0 (any), ipi_spec_dst = the source wanted.
            d[4..8].copy_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            d[..16].copy_from_slice(&ip.octets());
            d[16..20].copy_from_slice(&src.ifindex.to_ne_bytes());
        }
    }
    HDR + align(data_len)
}

#[derive(Clone, Copy)]
struct Entry {
    socket: u32,
    peer: SocketAddr,
    local: LocalAddr,
}

/// (socket, peer) → the address that peer reached us on; direct-mapped, fixed size.
pub(crate) struct SourceCache {
    entries: Box<[Option<Entry>]>,
}

impl SourceCache {
    pub(crate) fn new() -> Self {
        SourceCache {
            entries: vec![None; CACHE_ENTRIES].into_boxed_slice(),
        }
    }

    fn slot(socket: usize, peer: &SocketAddr) -> usize {
        // FNV-1a over the peer's address, port and the socket: spreads, no allocation.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: u8| {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        };
        match peer.ip() {
            IpAddr::V4(ip) => ip.octets().into_iter().for_each(&mut eat),
            IpAddr::V6(ip) => ip.octets().into_iter().for_each(&mut eat),
        }
        peer.port().to_be_bytes().into_iter().for_each(&mut eat);
        (socket as u32).to_be_bytes().into_iter().for_each(&mut eat);
        (h as usize) & (CACHE_ENTRIES - 1)
    }

    pub(crate) fn learn(&mut self, socket: usize, peer: SocketAddr, local: LocalAddr) {
        self.entries[Self::slot(socket, &peer)] = Some(Entry {
            socket: socket as u32,
            peer,
            local,
        });
    }

    pub(crate) fn lookup(&self, socket: usize, peer: &SocketAddr) -> Option<LocalAddr> {
        self.entries[Self::slot(socket, peer)]
            .filter(|e| e.socket == socket as u32 && e.peer == *peer)
            .map(|e| e.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_source_parses_back() {
        for ip in ["127.0.115.9", "2001:db8::5"] {
            let src = LocalAddr {
                ip: ip.parse().expect("literal"),
                ifindex: if ip.contains(':') { 3 } else { 0 },
            };
            let mut ctl = CtlBuf::zeroed();
            let n = encode_src(&mut ctl, src);
            assert!(n <= CTL_BYTES);
            // The send layout puts the address in ipi_spec_dst; the receive layout in
            // ipi_addr. Mirror it for IPv4 to check the framing.
            if let IpAddr::V4(v4) = src.ip {
                ctl.bytes[HDR + 8..HDR + 12].copy_from_slice(&v4.octets());
            }
            assert_eq!(parse_dst(&ctl.bytes[..n]), Some(src));
        }
    }

    #[test]
    fn garbage_control_data_is_ignored() {
        assert_eq!(parse_dst(&[]), None);
        assert_eq!(parse_dst(&[0xff; 40]), None);
        let mut ctl = CtlBuf::zeroed();
        ctl.bytes[..ALIGN].copy_from_slice(&(1000usize).to_ne_bytes());
        assert_eq!(parse_dst(&ctl.bytes), None);
    }

    #[test]
    fn cache_is_per_socket_and_peer_and_bounded() {
        let mut c = SourceCache::new();
        let peer: SocketAddr = "198.51.100.1:5060".parse().expect("literal");
        let l = LocalAddr {
            ip: "127.0.115.2".parse().expect("literal"),
            ifindex: 0,
        };
        c.learn(0, peer, l);
        assert_eq!(c.lookup(0, &peer), Some(l));
        assert_eq!(c.lookup(1, &peer), None);
        for port in 1..=20_000u16 {
            c.learn(0, SocketAddr::new(peer.ip(), port), l);
        }
        assert_eq!(c.entries.len(), CACHE_ENTRIES);
    }

    /// Two loopback addresses on one wildcard socket: each peer's reply comes from the
    /// address it sent to, in both engines.
    #[test]
    fn a_wildcard_socket_replies_from_the_address_it_was_reached_on() {
        let mut modes = vec![(crate::IoMode::Mmsg, "127.0.115.201", "127.0.115.202")];
        if crate::probe_uring().is_ok() {
            modes.push((crate::IoMode::Uring, "127.0.115.203", "127.0.115.204"));
        }
        for (mode, a, b) in modes {
            // Its own thread: an io_uring ring's teardown interrupts its creator once.
            std::thread::spawn(move || replies_from_destination(mode, [a, b]))
                .join()
                .expect("test thread");
        }
    }

    fn replies_from_destination(mode: crate::IoMode, dsts: [&str; 2]) {
        use std::net::UdpSocket;
        use std::time::Duration;
        let s = crate::bind_udp_reuseport(
            "0.0.0.0:0".parse().expect("literal"),
            &crate::SocketOptions::default(),
        )
        .expect("bind 0.0.0.0");
        let port = s.local_addr().expect("addr").port();
        let wake = crate::WakeFd::new().expect("eventfd");
        let mut e = crate::Engine::new(mode, vec![s], wake, &crate::EngineConfig::default())
            .expect("engine");
        for dst in dsts {
            let peer = UdpSocket::bind("127.0.115.200:0").expect("bind peer");
            peer.set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            peer.send_to(b"ping", (dst, port)).expect("send");
            let mut from = None;
            for _ in 0..50 {
                e.wait(
                    Some(Duration::from_millis(20)),
                    || false,
                    |d| from = Some(d.remote),
                )
                .expect("wait");
                if from.is_some() {
                    break;
                }
            }
            let from = from.expect("received");
            assert!(e.send(0, from, b"pong"));
            e.flush().expect("flush");
            let mut buf = [0u8; 16];
            let (n, src) = peer.recv_from(&mut buf).expect("reply");
            assert_eq!(&buf[..n], b"pong");
            assert_eq!(
                src.ip().to_string(),
                dst,
                "{mode:?}: the reply comes from the address the peer sent to"
            );
        }
    }
}
