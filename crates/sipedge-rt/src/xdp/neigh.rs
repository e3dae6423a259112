//! The kernel's view of where a datagram goes, mirrored from rtnetlink (`NETLINK_ROUTE`):
//! the main routing table, the neighbour (ARP/NDP) table, the addresses and the MAC of the
//! XDP interface. Dumped at start (`RTM_GET*` with `NLM_F_DUMP`) and kept current from the
//! `RTNLGRP_*` multicast groups the same socket joins; an overrun (`ENOBUFS`) dumps again.
//!
//! # Why a small parser and not a crate
//!
//! `rtnetlink` runs on an async runtime (tokio/async-std) — a second runtime inside a shard
//! thread for four message types. `netlink-packet-route` alone would do, but brings
//! `netlink-packet-core/utils`, `byteorder`, `anyhow`, `thiserror` and a large typed model
//! of every attribute, for reading four fixed headers (`ifinfomsg`, `ifaddrmsg`, `rtmsg`,
//! `ndmsg`, all stable UAPI since Linux 2.2) and six attributes. The parser below is
//! bounds-checked at every step (a short or lying message is skipped, never a panic) and
//! tested on crafted bytes.
//!
//! # How a destination resolves ([`KernelTable::next_hop`])
//!
//! Longest-prefix match over the main table (table 254; policy rules are not consulted),
//! lowest metric among equal prefixes. Only a `unicast` route out of our interface, with at
//! most a single gateway, may use the XDP socket; anything else (another interface, a
//! blackhole, multipath, no route) goes through the UDP socket and so through the kernel.
//! The next hop (the gateway, or the destination itself on-link) must have a neighbour entry
//! with a MAC in a valid state (RFC 4861 §7.3.2 for IPv6; the same machine for ARP).
//!
//! A `STALE` entry is one the kernel would use and re-confirm on use (RFC 4861 §7.3.3). We
//! bypass the kernel, so it would never re-confirm it: at most once a second per stale
//! neighbour one datagram goes through the socket instead ([`Hop::Revalidate`]), which moves
//! the kernel's entry to `DELAY`/`PROBE` and, when the peer answers the probe, `REACHABLE`.
//!
//! Every table has a cap; at the cap, new neighbours and addresses are not added (their
//! traffic goes through the socket: slower, never wrong), and a routing table that does not
//! fit is not used at all (a partial one could pick the wrong gateway). Up to 32 routes a
//! lookup scans them; above, answers are cached per destination until the next change.
//! Each shard keeps its own mirror (its own socket): no lock, no sharing.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Routes kept at most (main table, all interfaces). A table that does not fit is not
/// mirrored at all: every datagram goes through the socket (a partial table could pick a
/// wrong gateway).
const MAX_ROUTES: usize = 4096;
/// Up to this many routes a lookup scans them; above, results are cached per destination.
const SCAN_ROUTES: usize = 32;
/// Addresses of our interface kept at most.
const MAX_ADDRS: usize = 64;
/// A stale neighbour is re-confirmed through the kernel at most this often.
const REVALIDATE_EVERY: Duration = Duration::from_secs(1);

// rtnetlink UAPI (linux/rtnetlink.h, linux/neighbour.h, linux/if_addr.h, linux/if_link.h).
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const RTM_GETNEIGH: u16 = 30;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_NEIGH: u32 = 0x4;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;
const IFLA_ADDRESS: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_PREFSRC: u16 = 7;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const RT_TABLE_MAIN: u32 = 254;
const RTN_UNICAST: u8 = 1;
const NUD_INCOMPLETE: u16 = 0x01;
const NUD_STALE: u16 = 0x04;
const NUD_FAILED: u16 = 0x20;
const NTF_PROXY: u8 = 0x08;

/// A multiply-shift hasher for IP keys (the table is ours; keys come from the kernel).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct IpHasher(u64);

impl Hasher for IpHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// `HashMap` keyed by IP with [`IpHasher`].
pub(super) type IpMap<V> = HashMap<IpAddr, V, BuildHasherDefault<IpHasher>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Route {
    dst: IpAddr,
    plen: u8,
    metric: u32,
    /// 0 when the route has no single output interface (multipath, blackhole…).
    oif: u32,
    gateway: Option<IpAddr>,
    prefsrc: Option<IpAddr>,
    unicast: bool,
}

#[derive(Debug, Clone, Copy)]
struct Neigh {
    mac: [u8; 6],
    stale: bool,
    /// When a datagram last went through the socket to re-confirm a stale entry.
    revalidated: Option<Instant>,
}

/// Where a datagram to one destination goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hop {
    /// Out of our interface to this MAC; `src` is the kernel's source address for it.
    Mac { mac: [u8; 6], src: Option<IpAddr> },
    /// Through the socket this once, so the kernel re-confirms a stale neighbour.
    Revalidate,
    /// Our interface, but the next hop's MAC is not known (yet): the socket (the kernel
    /// resolves it, and the answer arrives here as `RTM_NEWNEIGH`).
    Unresolved,
    /// Not out of our interface as far as the main table says (or no route at all).
    NotOurs,
}

/// See the module docs.
pub(super) struct KernelTable {
    fd: OwnedFd,
    ifindex: u32,
    seq: u32,
    /// Our interface's MAC (`IFLA_ADDRESS`).
    pub(super) mac: Option<[u8; 6]>,
    routes: Vec<Route>,
    /// A route was dropped at [`MAX_ROUTES`]: the mirror cannot decide (module docs).
    routes_incomplete: bool,
    /// Destination → (next hop, source) or `None` (not ours), for tables above
    /// [`SCAN_ROUTES`]; emptied on every route or address change, and when full.
    route_cache: IpMap<Option<(IpAddr, Option<IpAddr>)>>,
    addrs: Vec<IpAddr>,
    neigh: IpMap<Neigh>,
    neigh_cap: usize,
    buf: Vec<u8>,
    /// Updates not applied because a table was at its cap.
    pub(super) full: u64,
}

impl std::fmt::Debug for KernelTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelTable")
            .field("ifindex", &self.ifindex)
            .field("routes", &self.routes.len())
            .field("neighbours", &self.neigh.len())
            .finish()
    }
}

impl KernelTable {
    /// Opens the socket, joins the groups and dumps the four tables.
    pub(super) fn open(ifindex: u32, neigh_cap: usize) -> io::Result<KernelTable> {
        // SAFETY: plain socket creation; checked below.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::NETLINK_ROUTE,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` was just created and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a zeroed sockaddr_nl is a valid value (all integers).
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        sa.nl_groups = RTMGRP_LINK
            | RTMGRP_NEIGH
            | RTMGRP_IPV4_IFADDR
            | RTMGRP_IPV6_IFADDR
            | RTMGRP_IPV4_ROUTE
            | RTMGRP_IPV6_ROUTE;
        // SAFETY: binds our socket to a live sockaddr_nl of the size passed.
        let rc = unsafe {
            libc::bind(
                raw,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut t = KernelTable::empty(fd, ifindex, neigh_cap);
        t.resync()?;
        Ok(t)
    }

    fn empty(fd: OwnedFd, ifindex: u32, neigh_cap: usize) -> KernelTable {
        KernelTable {
            fd,
            ifindex,
            seq: 0,
            mac: None,
            routes: Vec::new(),
            routes_incomplete: false,
            route_cache: IpMap::default(),
            addrs: Vec::new(),
            neigh: IpMap::default(),
            neigh_cap: neigh_cap.max(1),
            buf: vec![0; 64 * 1024],
            full: 0,
        }
    }

    pub(super) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Dumps every table again (at start, and after the kernel dropped notifications).
    fn resync(&mut self) -> io::Result<()> {
        self.routes.clear();
        self.routes_incomplete = false;
        self.route_cache.clear();
        self.addrs.clear();
        self.neigh.clear();
        for (ty, hdr_len) in [
            (RTM_GETLINK, 16),
            (RTM_GETADDR, 8),
            (RTM_GETROUTE, 12),
            (RTM_GETNEIGH, 12),
        ] {
            self.dump(ty, hdr_len)?;
        }
        Ok(())
    }

    fn dump(&mut self, ty: u16, hdr_len: usize) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut req = [0u8; 32];
        let len = 16 + hdr_len;
        req[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&ty.to_ne_bytes());
        req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // family AF_UNSPEC (0): every family; the rest of the header zero.
        // SAFETY: sends `len` bytes of the live `req` on our socket (to the kernel: no
        // address needed on a netlink socket with the default destination).
        let rc = unsafe { libc::send(self.fd.as_raw_fd(), req.as_ptr().cast(), len, 0) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.recv_once()? {
                Some(done) if done == Some(self.seq) => return Ok(()),
                Some(_) => {}
                None => {
                    if Instant::now() > deadline {
                        return Err(io::Error::other("rtnetlink dump did not finish in 5 s"));
                    }
                    let mut p = [libc::pollfd {
                        fd: self.fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    }];
                    crate::poll::ppoll(&mut p, Some(Duration::from_millis(100)))?;
                }
            }
        }
    }

    /// Reads one datagram and applies it: `Ok(None)` when nothing was waiting, else
    /// `Ok(Some(d))` with `d` the sequence number of a dump it finished, if any.
    fn recv_once(&mut self) -> io::Result<Option<Option<u32>>> {
        // SAFETY: receives into our live buffer of its length.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Ok(None),
                _ => Err(e),
            };
        }
        let buf = std::mem::take(&mut self.buf);
        let mut done = Ok(Some(None));
        for (ty, seq, body) in messages(&buf[..n as usize]) {
            match ty {
                NLMSG_DONE => done = Ok(Some(Some(seq))),
                NLMSG_ERROR => {
                    let errno = body
                        .get(0..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if errno != 0 && seq == self.seq {
                        done = Err(io::Error::from_raw_os_error(errno.saturating_neg()));
                        break;
                    }
                }
                _ => self.apply(ty, body),
            }
        }
        self.buf = buf;
        done
    }

    /// Applies every update waiting on the socket (non-blocking). An overrun re-dumps.
    pub(super) fn poll(&mut self) -> io::Result<()> {
        for _ in 0..64 {
            match self.recv_once() {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    tracing::info!("rtnetlink overrun: reading the tables again");
                    return self.resync();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn apply(&mut self, ty: u16, body: &[u8]) {
        match ty {
            RTM_NEWLINK | RTM_DELLINK => self.apply_link(ty, body),
            RTM_NEWADDR | RTM_DELADDR => self.apply_addr(ty, body),
            RTM_NEWROUTE | RTM_DELROUTE => self.apply_route(ty, body),
            RTM_NEWNEIGH | RTM_DELNEIGH => self.apply_neigh(ty, body),
            _ => {}
        }
    }

    fn apply_link(&mut self, ty: u16, body: &[u8]) {
        let Some(index) = u32_at(body, 4) else { return };
        if index != self.ifindex || ty != RTM_NEWLINK {
            return;
        }
        for (at, v) in attrs(body, 16) {
            if at == IFLA_ADDRESS && v.len() == 6 {
                self.mac = Some([v[0], v[1], v[2], v[3], v[4], v[5]]);
            }
        }
    }

    fn apply_addr(&mut self, ty: u16, body: &[u8]) {
        let (Some(&family), Some(index)) = (body.first(), u32_at(body, 4)) else {
            return;
        };
        if index != self.ifindex {
            return;
        }
        let (mut local, mut address) = (None, None);
        for (at, v) in attrs(body, 8) {
            match at {
                IFA_LOCAL => local = ip_of(family, v),
                IFA_ADDRESS => address = ip_of(family, v),
                _ => {}
            }
        }
        let Some(ip) = local.or(address) else { return };
        self.addrs.retain(|a| *a != ip);
        self.route_cache.clear();
        if ty == RTM_NEWADDR {
            if self.addrs.len() < MAX_ADDRS {
                self.addrs.push(ip);
            } else {
                self.full += 1;
            }
        }
    }

    fn apply_route(&mut self, ty: u16, body: &[u8]) {
        let [family, dst_len, src_len, tos, table, _proto, _scope, rtype, ..] = *body else {
            return;
        };
        let mut r = Route {
            dst: match family as i32 {
                libc::AF_INET => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                libc::AF_INET6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                _ => return,
            },
            plen: dst_len,
            metric: 0,
            oif: 0,
            gateway: None,
            prefsrc: None,
            unicast: rtype == RTN_UNICAST,
        };
        let mut table = u32::from(table);
        let mut multipath = false;
        for (at, v) in attrs(body, 12) {
            match at {
                RTA_DST => r.dst = ip_of(family, v).unwrap_or(r.dst),
                RTA_OIF => r.oif = u32_at(v, 0).unwrap_or(0),
                RTA_GATEWAY => r.gateway = ip_of(family, v),
                RTA_PRIORITY => r.metric = u32_at(v, 0).unwrap_or(0),
                RTA_PREFSRC => r.prefsrc = ip_of(family, v),
                RTA_TABLE => table = u32_at(v, 0).unwrap_or(table),
                RTA_MULTIPATH => multipath = true,
                _ => {}
            }
        }
        // Source-specific and TOS routes are policy this mirror does not model.
        if table != RT_TABLE_MAIN || src_len != 0 || tos != 0 {
            return;
        }
        if multipath {
            r.oif = 0;
        }
        let same = |x: &Route| x.dst == r.dst && x.plen == r.plen && x.metric == r.metric;
        self.routes.retain(|x| !same(x));
        self.route_cache.clear();
        if ty == RTM_NEWROUTE {
            if self.routes.len() < MAX_ROUTES {
                self.routes.push(r);
            } else {
                if !self.routes_incomplete {
                    tracing::warn!(
                        max = MAX_ROUTES,
                        "routing table too large to mirror: XDP sends go through the UDP socket"
                    );
                }
                self.routes_incomplete = true;
                self.full += 1;
            }
        }
    }

    fn apply_neigh(&mut self, ty: u16, body: &[u8]) {
        let (Some(&family), Some(index)) = (body.first(), u32_at(body, 4)) else {
            return;
        };
        let (Some(state), Some(&flags)) = (
            body.get(8..10).map(|b| u16::from_ne_bytes([b[0], b[1]])),
            body.get(10),
        ) else {
            return;
        };
        if index != self.ifindex || flags & NTF_PROXY != 0 {
            return;
        }
        let (mut dst, mut mac) = (None, None);
        for (at, v) in attrs(body, 12) {
            match at {
                NDA_DST => dst = ip_of(family, v),
                NDA_LLADDR if v.len() == 6 => mac = Some([v[0], v[1], v[2], v[3], v[4], v[5]]),
                _ => {}
            }
        }
        let Some(dst) = dst else { return };
        let usable = state & (NUD_INCOMPLETE | NUD_FAILED) == 0 && state != 0;
        match (ty, mac) {
            (RTM_NEWNEIGH, Some(mac)) if usable => {
                if self.neigh.len() >= self.neigh_cap && !self.neigh.contains_key(&dst) {
                    self.full += 1;
                    return;
                }
                let e = self.neigh.entry(dst).or_insert(Neigh {
                    mac,
                    stale: false,
                    revalidated: None,
                });
                e.mac = mac;
                e.stale = state & NUD_STALE != 0;
            }
            _ => {
                self.neigh.remove(&dst);
            }
        }
    }

    /// Where a datagram to `dst` goes (module docs); `now` is the caller's clock (the
    /// engine's turn: no clock read per datagram).
    pub(super) fn next_hop(&mut self, dst: IpAddr, now: Instant) -> Hop {
        if self.routes_incomplete {
            return Hop::NotOurs;
        }
        let route = if self.routes.len() <= SCAN_ROUTES {
            self.route(dst)
        } else if let Some(&r) = self.route_cache.get(&dst) {
            r
        } else {
            if self.route_cache.len() >= self.neigh_cap {
                self.route_cache.clear();
            }
            let r = self.route(dst);
            self.route_cache.insert(dst, r);
            r
        };
        let Some((via, src)) = route else {
            return Hop::NotOurs;
        };
        let Some(n) = self.neigh.get_mut(&via) else {
            return Hop::Unresolved;
        };
        if n.stale
            && n.revalidated
                .is_none_or(|t| now.duration_since(t) >= REVALIDATE_EVERY)
        {
            n.revalidated = Some(now);
            return Hop::Revalidate;
        }
        Hop::Mac { mac: n.mac, src }
    }
}

impl KernelTable {
    /// Longest-prefix match, lowest metric first: the next hop and source address when the
    /// route is a single unicast path out of our interface, else `None`.
    fn route(&self, dst: IpAddr) -> Option<(IpAddr, Option<IpAddr>)> {
        let mut best: Option<&Route> = None;
        for r in &self.routes {
            if !in_prefix(dst, r.dst, r.plen) {
                continue;
            }
            if best.is_none_or(|b| r.plen > b.plen || (r.plen == b.plen && r.metric < b.metric)) {
                best = Some(r);
            }
        }
        let r = best?;
        if !r.unicast || r.oif != self.ifindex {
            return None;
        }
        let src = r.prefsrc.or_else(|| {
            self.addrs
                .iter()
                .copied()
                .find(|a| a.is_ipv4() == dst.is_ipv4() && !link_local(*a))
        });
        Some((r.gateway.unwrap_or(dst), src))
    }
}

fn link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn in_prefix(ip: IpAddr, net: IpAddr, plen: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let p = u32::from(plen.min(32));
            let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let p = u32::from(plen.min(128));
            let mask = u128::MAX.checked_shl(128 - p).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn ip_of(family: u8, v: &[u8]) -> Option<IpAddr> {
    match (family as i32, v.len()) {
        (libc::AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
        (libc::AF_INET6, 16) => {
            let mut o = [0u8; 16];
            o.copy_from_slice(v);
            Some(IpAddr::V6(Ipv6Addr::from(o)))
        }
        _ => None,
    }
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The netlink messages of one datagram: (type, sequence, body after the 16-byte header).
/// Stops at the first inconsistent length.
fn messages(mut b: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    std::iter::from_fn(move || {
        let len = u32_at(b, 0)? as usize;
        if len < 16 || len > b.len() {
            return None;
        }
        let ty = u16::from_ne_bytes([b[4], b[5]]);
        let seq = u32_at(b, 8)?;
        let body = &b[16..len];
        b = b.get(align4(len)..).unwrap_or(&[]);
        Some((ty, seq, body))
    })
}

/// The route attributes (`struct rtattr`) after a fixed header of `skip` bytes.
fn attrs(body: &[u8], skip: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut b = body.get(skip..).unwrap_or(&[]);
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff; // without NLA_F_NESTED/BYTEORDER
        if len < 4 || len > b.len() {
            return None;
        }
        let v = &b[4..len];
        b = b.get(align4(len)..).unwrap_or(&[]);
        Some((ty, v))
    })
}

#[cfg(test)]
#[path = "neigh_tests.rs"]
mod tests;
