//! `SocketAddr` ⇄ the raw bytes of a `sockaddr_in` / `sockaddr_in6`, without allocation and
//! without `unsafe`: the kernel reads and writes these bytes through `msg_name` pointers.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Size of `sockaddr_in6`, the largest address we handle.
pub(crate) const SOCKADDR_MAX: usize = std::mem::size_of::<libc::sockaddr_in6>();
const SOCKADDR_IN: usize = std::mem::size_of::<libc::sockaddr_in>();

/// Storage for one raw socket address, aligned like the kernel structures it stands for.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub(crate) struct RawAddr {
    pub(crate) bytes: [u8; SOCKADDR_MAX],
}

impl RawAddr {
    pub(crate) const fn zeroed() -> Self {
        RawAddr {
            bytes: [0; SOCKADDR_MAX],
        }
    }

    /// Writes `addr` in the kernel's layout; returns the length to pass as `msg_namelen`.
    pub(crate) fn encode(&mut self, addr: &SocketAddr) -> libc::socklen_t {
        let b = &mut self.bytes;
        *b = [0; SOCKADDR_MAX];
        match addr {
            SocketAddr::V4(a) => {
                b[0..2].copy_from_slice(&(libc::AF_INET as libc::sa_family_t).to_ne_bytes());
                b[2..4].copy_from_slice(&a.port().to_be_bytes());
                b[4..8].copy_from_slice(&a.ip().octets());
                SOCKADDR_IN as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                b[0..2].copy_from_slice(&(libc::AF_INET6 as libc::sa_family_t).to_ne_bytes());
                b[2..4].copy_from_slice(&a.port().to_be_bytes());
                // std keeps `sin6_flowinfo` as stored by the kernel; mirror it.
                b[4..8].copy_from_slice(&a.flowinfo().to_ne_bytes());
                b[8..24].copy_from_slice(&a.ip().octets());
                b[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
                SOCKADDR_MAX as libc::socklen_t
            }
        }
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut libc::c_void {
        self.bytes.as_mut_ptr().cast()
    }
}

/// Reads a socket address the kernel wrote (`len` bytes are valid). `None` for other
/// families or short addresses.
pub(crate) fn decode(raw: &[u8]) -> Option<SocketAddr> {
    let family = libc::sa_family_t::from_ne_bytes([*raw.first()?, *raw.get(1)?]);
    let port = u16::from_be_bytes([*raw.get(2)?, *raw.get(3)?]);
    match i32::from(family) {
        libc::AF_INET if raw.len() >= 8 => {
            let ip = Ipv4Addr::new(raw[4], raw[5], raw[6], raw[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        libc::AF_INET6 if raw.len() >= SOCKADDR_MAX => {
            let flow = u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]);
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&raw[8..24]);
            let scope = u32::from_ne_bytes([raw[24], raw[25], raw[26], raw[27]]);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flow,
                scope,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_v4_and_v6() {
        for addr in [
            "127.0.9.1:5060".parse::<SocketAddr>().expect("literal"),
            "[2001:db8::1]:5061".parse().expect("literal"),
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 7, 0, 3)),
        ] {
            let mut raw = RawAddr::zeroed();
            let len = raw.encode(&addr) as usize;
            assert_eq!(decode(&raw.bytes[..len]), Some(addr));
        }
    }

    #[test]
    fn rejects_unknown_family_and_short_input() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[0, 0, 0, 0, 0, 0, 0, 0]), None);
        let mut raw = RawAddr::zeroed();
        let len = raw.encode(&"[::1]:1".parse().expect("literal")) as usize;
        assert_eq!(decode(&raw.bytes[..len - 1]), None);
    }
}
