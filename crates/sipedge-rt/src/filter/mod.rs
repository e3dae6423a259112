//! The kernel-side ban check (issue 17 item 6): an eBPF socket filter
//! (`BPF_PROG_TYPE_SOCKET_FILTER`, attached with `SO_ATTACH_BPF`) on every UDP socket of
//! the edge, dropping datagrams whose source address is in a hash map of banned sources that
//! user space writes. A banned source then costs no wake-up, no copy and no receive-queue
//! space: the kernel frees its datagram before queueing it (`sk_filter` in
//! `udp_queue_rcv_skb`).
//!
//! ```text
//! r6 = skb
//! key (16 bytes on the stack) = source address: IPv4 as ::ffff:a.b.c.d
//!   (bpf_skb_load_bytes_relative(skb, 12 | 8, key + 12 | key, 4 | 16, BPF_HDR_START_NET))
//! load failed            → keep
//! value = lookup(bans, key)
//! value != NULL          → *value += 1 (atomic: drops per source); socket's drops += 1;
//!                          return 0 (drop)
//! payload (after the 8-byte UDP header) starts "OPTIONS ", "REGISTER " or "INVITE "
//!   and bpf_get_prandom_u32() < shares[socket cookie]
//!   and (not an INVITE, or an INVITE whose To has no tag: `invite.rs`)
//!                        → socket's drops += 1, its class counter += 1; return 0 (drop)
//! otherwise              → return skb->len (keep all)
//! ```
//!
//! The second rule is overload shedding by class (issue 17 item 6): user space (the shard's
//! pressure meter) writes each socket's share; see [`program`] for what is never shed.
//!
//! One program per address family (an AF_INET socket only ever sees IPv4 headers, an
//! AF_INET6 one with `IPV6_V6ONLY` only IPv6), one map shared by all. Built as instructions
//! in Rust, without clang, like the XDP program. Where BPF is not permitted
//! ([`BanFilter::new`] fails), the shell keeps the user-space check only.

mod invite;

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
const BPF_FUNC_MAP_LOOKUP_ELEM: i32 = 1;
const BPF_FUNC_SKB_LOAD_BYTES_RELATIVE: i32 = 68;
const BPF_FUNC_GET_SOCKET_COOKIE: i32 = 46;
/// `SO_COOKIE` (asm-generic/socket.h).
const SO_COOKIE: libc::c_int = 57;
const BPF_HDR_START_NET: i32 = 1;
/// `SO_ATTACH_BPF` (asm-generic/socket.h).
const SO_ATTACH_BPF: libc::c_int = 50;

use crate::bpf::{
    bpf, insn, owned, BpfAttr as Attr, BPF_MAP_CREATE, BPF_MAP_DELETE_ELEM, BPF_MAP_LOOKUP_ELEM,
    BPF_MAP_UPDATE_ELEM,
};

/// `r0 = bpf_map_lookup_elem(map, r10 + key_at)`: the map's fd as a 64-bit immediate (two
/// slots), the key's stack address, the call.
fn map_lookup(map: i32, key_at: i32) -> [u64; 5] {
    [
        insn(0x18, R1, 1, 0, map), // r1 = map (two slots)
        0,
        insn(0xbf, R2, R10, 0, 0),    // r2 = r10
        insn(0x07, R2, 0, 0, key_at), // r2 += key_at
        insn(0x85, 0, 0, 0, BPF_FUNC_MAP_LOOKUP_ELEM),
    ]
}

/// Looks `map` up by the socket's cookie (stored at `r10 + key_at`); r6 holds the skb.
fn cookie_lookup(map: i32, key_at: i32) -> [u64; 8] {
    let l = map_lookup(map, key_at);
    [
        insn(0xbf, R1, R6, 0, 0), // r1 = skb
        insn(0x85, 0, 0, 0, BPF_FUNC_GET_SOCKET_COOKIE),
        insn(0x7b, R10, R0, key_at as i16, 0), // *(u64 *)(r10 + key_at) = cookie
        l[0],
        l[1],
        l[2],
        l[3],
        l[4],
    ]
}

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R6: u8 = 6;
const R10: u8 = 10;

/// Sets the offset of the jump at `at` so that it lands on `to`.
fn patch(p: &mut [u64], at: usize, to: usize) {
    let off = (to as i64 - at as i64 - 1) as i16;
    p[at] = (p[at] & !(0xffff << 16)) | u64::from(off as u16) << 16;
}

/// `bpf_skb_load_bytes`: bytes from `skb->data`, which for a UDP socket filter is the UDP
/// header (`udp_queue_rcv_one_skb` runs `sk_filter` after the IP header was pulled).
const BPF_FUNC_SKB_LOAD_BYTES: i32 = 26;
const BPF_FUNC_GET_PRANDOM_U32: i32 = 7;
const R7: u8 = 7;
const R8: u8 = 8;

/// A 64-bit immediate (`ld_imm64`, two slots).
fn ld_imm64(dst: u8, v: u64) -> [u64; 2] {
    [insn(0x18, dst, 0, 0, v as u32 as i32), (v >> 32) << 32]
}

/// The first eight payload bytes of a request of a kernel-shed class, as the program loads
/// them (native order). `REGISTER` is also checked for the space after it.
const OPTIONS_: u64 = u64::from_ne_bytes(*b"OPTIONS ");
const REGISTER: u64 = u64::from_ne_bytes(*b"REGISTER");
/// `INVITE ` (seven bytes: the eighth is masked off).
const INVITE_: u64 = u64::from_ne_bytes(*b"INVITE \0");
const INVITE_MASK: u64 = u64::from_ne_bytes([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0]);

/// Offsets in a socket's counters (`socks` value: four u64).
const V_DROPS: i16 = 0;
const V_SHED_OPTIONS: i32 = 8;
const V_SHED_REGISTER: i32 = 16;
const V_SHED_INVITE: i32 = 24;
/// The `socks` value: all filter drops, kernel-shed OPTIONS, REGISTERs, new INVITEs.
const SOCK_VALUE: u32 = 32;

/// The filter program for one family, with the ban map `bans`, the per-socket counters
/// `socks` and the per-socket shed shares `shares` (their fds baked in).
///
/// After the ban check, class shedding (issue 17 item 6): a datagram whose payload starts
/// with `OPTIONS ` or `REGISTER ` is dropped when `bpf_get_prandom_u32() < p`, `p` being
/// the socket's shed share (in `shares`, 0 ..= 2^32) that user space writes from
/// its pressure meter. A datagram starting `INVITE ` is shed the same way when it is new:
/// its To header, found within the first [`invite::WINDOW`] bytes, has no tag (RFC 3261
/// §12.2; the scan, `invite.rs`, runs only for an INVITE that lost the coin, and keeps it
/// on any doubt). Everything else — responses (`SIP/2.0 `), ACK, BYE, CANCEL, re-INVITEs
/// and other in-dialog requests, keepalives — always passes: RFC 3261 §17.1.1.2/§17.1.2.2
/// make the client retransmit a dropped request with back-off, while a dropped response
/// or ACK would cost a whole transaction.
fn program(v6: bool, bans: RawFd, socks: RawFd, shares: RawFd) -> Vec<u64> {
    let mut p = vec![
        insn(0xbf, R6, R1, 0, 0), // r6 = skb
        // key = 0 (16 bytes at r10-16)
        insn(0x7a, R10, 0, -16, 0), // *(u64 *)(r10 - 16) = 0
        insn(0x7a, R10, 0, -8, 0),  // *(u64 *)(r10 - 8) = 0
    ];
    if !v6 {
        // bytes 10..12 of the key = 0xff 0xff (::ffff:a.b.c.d)
        p.push(insn(0x6a, R10, 0, -6, 0xffff)); // *(u16 *)(r10 - 6) = 0xffff
    }
    let (off, dst, len) = if v6 { (8, -16, 16) } else { (12, -4, 4) };
    p.extend([
        insn(0xbf, R1, R6, 0, 0),               // r1 = skb
        insn(0xb7, R2, 0, 0, off),              // r2 = offset of the source address
        insn(0xbf, R3, R10, 0, 0),              // r3 = r10
        insn(0x07, R3, 0, 0, dst),              // r3 += dst
        insn(0xb7, R4, 0, 0, len),              // r4 = len
        insn(0xb7, 5, 0, 0, BPF_HDR_START_NET), // r5 = BPF_HDR_START_NET
        insn(0x85, 0, 0, 0, BPF_FUNC_SKB_LOAD_BYTES_RELATIVE),
    ]);
    let load_failed = p.len();
    p.push(insn(0x55, R0, 0, 0, 0)); // if r0 != 0 goto classify
    p.extend(map_lookup(bans, -16));
    let not_banned = p.len();
    p.push(insn(0x15, R0, 0, 0, 0)); // if r0 == 0 goto classify
    p.extend([
        insn(0xb7, R1, 0, 0, 1),  // r1 = 1
        insn(0xdb, R0, R1, 0, 0), // lock *(u64 *)(r0 + 0) += r1: drops of this source
    ]);
    // The socket's own count, so user space can tell these drops from a full queue's (both
    // are in SO_MEMINFO's SK_MEMINFO_DROPS).
    p.extend(cookie_lookup(socks, -24));
    let no_counter = p.len();
    p.push(insn(0x15, R0, 0, 0, 0)); // if r0 == 0 goto drop
    p.extend([
        insn(0xb7, R1, 0, 0, 1),        // r1 = 1
        insn(0xdb, R0, R1, V_DROPS, 0), // lock *(u64 *)(r0 + 0) += r1
    ]);
    let ban_done = p.len();
    p.push(insn(0x05, 0, 0, 0, 0)); // goto drop
                                    // classify: the first nine payload bytes (after the 8-byte UDP header).
    let classify = p.len();
    p.extend([
        insn(0xbf, R1, R6, 0, 0),  // r1 = skb
        insn(0xb7, R2, 0, 0, 8),   // r2 = 8
        insn(0xbf, R3, R10, 0, 0), // r3 = r10
        insn(0x07, R3, 0, 0, -40), // r3 -= 40
        insn(0xb7, R4, 0, 0, 9),   // r4 = 9
        insn(0x85, 0, 0, 0, BPF_FUNC_SKB_LOAD_BYTES),
    ]);
    let short = p.len();
    p.push(insn(0x55, R0, 0, 0, 0)); // if r0 != 0 goto keep (shorter than 9 bytes)
    p.push(insn(0x79, R1, R10, -40, 0)); // r1 = *(u64 *)(r10 - 40)
    p.extend(ld_imm64(R2, OPTIONS_));
    p.push(insn(0xb7, R7, 0, 0, V_SHED_OPTIONS)); // r7 = the OPTIONS counter
    let is_options = p.len();
    p.push(insn(0x1d, R1, R2, 0, 0)); // if r1 == r2 goto shed
    p.extend(ld_imm64(R2, REGISTER));
    let not_register = p.len();
    p.push(insn(0x5d, R1, R2, 0, 0)); // if r1 != r2 goto invite
    p.push(insn(0x71, R1, R10, -32, 0)); // r1 = *(u8 *)(r10 - 32)
    let no_space = p.len();
    p.push(insn(0x55, R1, 0, 0, i32::from(b' '))); // if r1 != ' ' goto keep
    p.push(insn(0xb7, R7, 0, 0, V_SHED_REGISTER)); // r7 = the REGISTER counter
    let register_done = p.len();
    p.push(insn(0x05, 0, 0, 0, 0)); // goto shed
                                    // invite: the first seven bytes are "INVITE " (r1 still holds the first eight).
    let invite = p.len();
    p.extend(ld_imm64(R2, INVITE_MASK));
    p.push(insn(0x5f, R1, R2, 0, 0)); // r1 &= r2
    p.extend(ld_imm64(R2, INVITE_));
    let not_invite = p.len();
    p.push(insn(0x5d, R1, R2, 0, 0)); // if r1 != r2 goto keep
    p.push(insn(0xb7, R7, 0, 0, V_SHED_INVITE)); // r7 = the INVITE counter
                                                 // shed: the socket's share p, a coin, the counters.
    let shed = p.len();
    p.extend(cookie_lookup(shares, -48));
    let unknown_socket = p.len();
    p.push(insn(0x15, R0, 0, 0, 0)); // if r0 == 0 goto keep
    p.push(insn(0x79, R8, R0, 0, 0)); // r8 = p
    let calm = p.len();
    p.push(insn(0x15, R8, 0, 0, 0)); // if r8 == 0 goto keep (no coin when calm)
    p.push(insn(0x85, 0, 0, 0, BPF_FUNC_GET_PRANDOM_U32));
    let lucky = p.len();
    p.push(insn(0x3d, R0, R8, 0, 0)); // if r0 >= r8 goto keep
                                      // An INVITE lost the coin: shed only a new one (no To tag), after the scan — which
                                      // costs a read of its headers, so it runs only for an INVITE about to be shed.
    let not_invite_coin = p.len();
    p.push(insn(0x55, R7, 0, 0, V_SHED_INVITE)); // if r7 != INVITE goto count
    let scan = invite::emit_to_tag_scan(&mut p);
    let new_invite = p.len();
    p.push(insn(0xb7, R7, 0, 0, V_SHED_INVITE)); // r7 = the INVITE counter
    let count = p.len();
    p.extend(map_lookup(socks, -48));
    let uncounted = p.len();
    p.push(insn(0x15, R0, 0, 0, 0)); // if r0 == 0 goto drop
    p.extend([
        insn(0xb7, R1, 0, 0, 1),        // r1 = 1
        insn(0xdb, R0, R1, V_DROPS, 0), // lock value->drops += 1 (all filter drops)
        insn(0x0f, R0, R7, 0, 0),       // r0 += r7: the class counter
        insn(0xdb, R0, R1, 0, 0),       // lock *(u64 *)(r0 + 0) += 1
    ]);
    let drop = p.len();
    p.extend([
        insn(0xb7, R0, 0, 0, 0), // r0 = 0: drop
        insn(0x95, 0, 0, 0, 0),  // exit
    ]);
    let keep = p.len();
    p.extend([
        insn(0x61, R0, R6, 0, 0), // r0 = skb->len (__sk_buff.len, offset 0): keep all
        insn(0x95, 0, 0, 0, 0),   // exit
    ]);
    patch(&mut p, load_failed, classify);
    patch(&mut p, not_banned, classify);
    patch(&mut p, no_counter, drop);
    patch(&mut p, ban_done, drop);
    patch(&mut p, short, keep);
    patch(&mut p, is_options, shed);
    patch(&mut p, not_register, invite);
    patch(&mut p, register_done, shed);
    patch(&mut p, not_invite, keep);
    patch(&mut p, not_invite_coin, count);
    for at in scan.keep {
        patch(&mut p, at, keep);
    }
    for at in scan.new {
        patch(&mut p, at, new_invite);
    }
    patch(&mut p, no_space, keep);
    patch(&mut p, unknown_socket, keep);
    patch(&mut p, calm, keep);
    patch(&mut p, lucky, keep);
    patch(&mut p, uncounted, drop);
    p
}

fn prog_load(insns: &[u64]) -> io::Result<OwnedFd> {
    let spec = crate::bpf::ProgSpec {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        attach_type: 0,
        name: b"sipedge_ban",
        what: "ban filter",
    };
    crate::bpf::prog_load(&spec, insns)
}

/// The map key of a source: IPv4 (and IPv4-mapped) as `::ffff:a.b.c.d`.
fn key(ip: IpAddr) -> [u8; 16] {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The ban map and the two programs. Thread-safe (`bpf(2)` map calls are atomic per entry).
#[derive(Debug)]
pub struct BanFilter {
    map: OwnedFd,
    /// Socket cookie → datagrams the filter dropped on that socket (all, then the
    /// kernel-shed OPTIONS, REGISTERs and new INVITEs).
    socks: OwnedFd,
    /// Socket cookie → the share of OPTIONS/REGISTER/new INVITEs to shed (0 ..= [`SHED_ALL`]).
    shares: OwnedFd,
    v4: OwnedFd,
    v6: OwnedFd,
}

/// A hash map of `key` → `value` bytes of `entries` entries.
fn hash_map(key: u32, value: u32, entries: u32, name: &[u8]) -> io::Result<OwnedFd> {
    let mut a = Attr::new();
    a.u32(0, BPF_MAP_TYPE_HASH)
        .u32(4, key)
        .u32(8, value)
        .u32(12, entries.max(1));
    a.0[28..28 + name.len().min(15)].copy_from_slice(&name[..name.len().min(15)]);
    bpf(BPF_MAP_CREATE, &mut a).map(owned)
}

/// Writes `value` (exactly the map's value size) under `key`.
fn update_with<const N: usize>(
    map: RawFd,
    key: &[u8],
    value: &[u64; N],
    flags: u64,
) -> io::Result<()> {
    let mut a = Attr::new();
    a.u32(0, map as u32)
        .u64(8, key.as_ptr() as u64)
        .u64(16, value.as_ptr() as u64)
        .u64(24, flags);
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
}

fn update(map: RawFd, key: &[u8], value: u64, flags: u64) -> io::Result<()> {
    update_with(map, key, &[value], flags)
}

/// Reads the value (exactly the map's value size, `N` u64) under `key`.
fn lookup_n<const N: usize>(map: RawFd, key: &[u8]) -> Option<[u64; N]> {
    let mut v = [0u64; N];
    let mut a = Attr::new();
    a.u32(0, map as u32)
        .u64(8, key.as_ptr() as u64)
        .u64(16, v.as_mut_ptr() as u64);
    bpf(BPF_MAP_LOOKUP_ELEM, &mut a).ok().map(|_| v)
}

fn lookup(map: RawFd, key: &[u8]) -> Option<u64> {
    lookup_n::<1>(map, key).map(|v| v[0])
}

/// The socket's cookie (`SO_COOKIE`), what the program keys its drop counters by.
fn cookie(fd: RawFd) -> io::Result<u64> {
    let mut c = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `c` is a writable u64 of `len` bytes that outlives the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_COOKIE,
            (&mut c as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(c)
}

/// Sockets whose drops the filter counts, at most.
const MAX_SOCKETS: u32 = 4096;

/// The shed share that drops every OPTIONS, REGISTER and new INVITE (`bpf_get_prandom_u32() < 2^32`).
pub const SHED_ALL: u64 = 1 << 32;

/// Datagrams the filter shed on one socket, by request class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelShed {
    /// `OPTIONS` requests.
    pub options: u64,
    /// `REGISTER` requests.
    pub register: u64,
    /// New `INVITE`s (no To tag).
    pub invite: u64,
}

impl BanFilter {
    /// Creates the map (at most `entries` bans) and loads the programs. Fails without
    /// CAP_BPF (or root) or on a kernel without socket-filter eBPF.
    pub fn new(entries: u32) -> io::Result<BanFilter> {
        let map = hash_map(16, 8, entries, b"sipedge_ban")?;
        let socks = hash_map(8, SOCK_VALUE, MAX_SOCKETS, b"sipedge_bansock")?;
        let shares = hash_map(8, 8, MAX_SOCKETS, b"sipedge_shed")?;
        let fds = (map.as_raw_fd(), socks.as_raw_fd(), shares.as_raw_fd());
        let v4 = prog_load(&program(false, fds.0, fds.1, fds.2))?;
        let v6 = prog_load(&program(true, fds.0, fds.1, fds.2))?;
        Ok(BanFilter {
            map,
            socks,
            shares,
            v4,
            v6,
        })
    }

    /// Attaches the filter of the socket's family to `socket` (`SO_ATTACH_BPF`), with a drop
    /// counter of its own ([`BanFilter::socket_drops`]).
    pub fn attach(&self, socket: &impl AsRawFd, ipv6: bool) -> io::Result<()> {
        let fd = socket.as_raw_fd();
        let c = cookie(fd)?.to_ne_bytes();
        update_with(self.socks.as_raw_fd(), &c, &[0u64; 4], 0)?;
        update(self.shares.as_raw_fd(), &c, 0, 0)?;
        let prog = if ipv6 { &self.v6 } else { &self.v4 }.as_raw_fd();
        // SAFETY: passes a live c_int of the size given; the kernel copies it.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                SO_ATTACH_BPF,
                (&prog as *const RawFd).cast(),
                std::mem::size_of::<RawFd>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Datagrams the filter dropped on the socket `fd` (they are also in its
    /// `SK_MEMINFO_DROPS`: subtract them to get the drops of a full queue).
    pub fn socket_drops(&self, fd: RawFd) -> u64 {
        cookie(fd)
            .ok()
            .and_then(|c| lookup_n::<4>(self.socks.as_raw_fd(), &c.to_ne_bytes()))
            .map_or(0, |v| v[0])
    }

    /// Sets the share of OPTIONS, REGISTER and new INVITE requests the filter drops on socket `fd`
    /// (0: none; [`SHED_ALL`]: all; clamped). The socket must have been [attached].
    ///
    /// [attached]: BanFilter::attach
    pub fn set_shed(&self, fd: RawFd, share: u64) -> io::Result<()> {
        let c = cookie(fd)?.to_ne_bytes();
        // BPF_EXIST: only sockets attached here.
        update(self.shares.as_raw_fd(), &c, share.min(SHED_ALL), 2)
    }

    /// The requests the filter shed on socket `fd`, by class (also in
    /// [`BanFilter::socket_drops`]).
    pub fn socket_shed(&self, fd: RawFd) -> KernelShed {
        cookie(fd)
            .ok()
            .and_then(|c| lookup_n::<4>(self.socks.as_raw_fd(), &c.to_ne_bytes()))
            .map_or(KernelShed::default(), |v| KernelShed {
                options: v[1],
                register: v[2],
                invite: v[3],
            })
    }

    /// Bans `ip` in the kernel (its drop count starts at 0; an existing entry keeps its).
    pub fn ban(&self, ip: IpAddr) -> io::Result<()> {
        match update(self.map.as_raw_fd(), &key(ip), 0, 1) {
            // BPF_NOEXIST: an existing entry keeps its count.
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Lifts the ban of `ip` in the kernel; its datagrams dropped there, if it was banned.
    pub fn unban(&self, ip: IpAddr) -> Option<u64> {
        let dropped = self.dropped(ip);
        let k = key(ip);
        let mut a = Attr::new();
        a.u32(0, self.map.as_raw_fd() as u32)
            .u64(8, k.as_ptr() as u64);
        bpf(BPF_MAP_DELETE_ELEM, &mut a).ok().and(dropped)
    }

    /// Datagrams of `ip` the kernel dropped while it was banned (`None`: not banned there).
    pub fn dropped(&self, ip: IpAddr) -> Option<u64> {
        lookup(self.map.as_raw_fd(), &key(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    /// A UDP socket on `addr` whose reads give up after 200 ms.
    pub(super) fn sock(addr: &str) -> UdpSocket {
        let s = UdpSocket::bind(addr).unwrap_or_else(|e| panic!("{addr}: {e}"));
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap_or_else(|e| panic!("{e}"));
        s
    }

    /// A filter, or `None` (said on stderr) where BPF is not permitted: the test skips.
    pub(super) fn filter_or_skip() -> Option<BanFilter> {
        match BanFilter::new(16) {
            Ok(f) => Some(f),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                eprintln!("BPF not permitted here ({e}): skipped");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// A banned source's datagrams never reach the socket, another's do; an unban lets it
    /// through again. Skipped where BPF is not permitted.
    #[test]
    fn banned_sources_are_dropped_in_the_kernel() {
        let Some(f) = filter_or_skip() else { return };
        for (rx, bad, good, v6) in [
            (
                "127.0.117.200:0",
                "127.0.117.201:0",
                "127.0.117.202:0",
                false,
            ),
            ("[::1]:0", "[::1]:0", "[::1]:0", true),
        ] {
            let rx = sock(rx);
            f.attach(&rx, v6).unwrap_or_else(|e| panic!("{e}"));
            let to = rx.local_addr().unwrap_or_else(|e| panic!("{e}"));
            let bad = sock(bad);
            let mut buf = [0u8; 64];
            if v6 {
                // One address on ::1: ban it, nothing arrives; unban, it arrives.
                f.ban(to.ip()).unwrap_or_else(|e| panic!("{e}"));
                bad.send_to(b"x", to).unwrap_or_else(|e| panic!("{e}"));
                assert!(rx.recv_from(&mut buf).is_err(), "dropped by the filter");
                assert_eq!(f.unban(to.ip()), Some(1));
                bad.send_to(b"y", to).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(rx.recv_from(&mut buf).map(|r| r.0).ok(), Some(1));
                continue;
            }
            let good = sock(good);
            let bad_ip = bad.local_addr().unwrap_or_else(|e| panic!("{e}")).ip();
            f.ban(bad_ip).unwrap_or_else(|e| panic!("{e}"));
            for _ in 0..3 {
                bad.send_to(b"banned", to).unwrap_or_else(|e| panic!("{e}"));
            }
            good.send_to(b"ok", to).unwrap_or_else(|e| panic!("{e}"));
            let (n, from) = rx.recv_from(&mut buf).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                (&buf[..n], from.ip()),
                (
                    &b"ok"[..],
                    good.local_addr().unwrap_or_else(|e| panic!("{e}")).ip()
                )
            );
            assert!(rx.recv_from(&mut buf).is_err());
            assert_eq!(f.dropped(bad_ip), Some(3));
            assert_eq!(f.socket_drops(rx.as_raw_fd()), 3);
            let m = crate::socket_meminfo(rx.as_raw_fd()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(m.drops, 3, "the kernel counts them as drops too");
            assert_eq!(f.unban(bad_ip), Some(3));
            bad.send_to(b"again", to).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(rx.recv_from(&mut buf).map(|r| r.0).ok(), Some(5));
        }
    }

    /// At share 1 (all) the filter drops every OPTIONS and REGISTER in the kernel and counts
    /// them by class, while responses, BYE, ACK, CANCEL, INVITE and short datagrams pass; at
    /// share 0 everything passes; at one half about half the OPTIONS go.
    #[test]
    fn sheds_options_and_register_by_share() {
        let Some(f) = filter_or_skip() else { return };
        let rx = sock("127.0.117.230:0");
        f.attach(&rx, false).unwrap_or_else(|e| panic!("{e}"));
        let to = rx.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let tx = sock("127.0.117.231:0");
        let fd = rx.as_raw_fd();
        let shed: &[&[u8]] = &[
            b"OPTIONS sip:a@b SIP/2.0\r\n",
            b"REGISTER sip:b SIP/2.0\r\n",
        ];
        let pass: &[&[u8]] = &[
            b"SIP/2.0 200 OK\r\n",
            b"BYE sip:a@b SIP/2.0\r\n",
            b"ACK sip:a@b SIP/2.0\r\n",
            b"CANCEL sip:a@b SIP/2.0\r\n",
            b"INVITE sip:a@b SIP/2.0\r\n",
            b"REGISTERX sip:b SIP/2.0\r\n",
            b"OPTIONS",
            b"\r\n\r\n",
        ];
        let mut buf = [0u8; 128];
        let mut received = |rx: &UdpSocket| {
            let mut n = 0;
            while rx.recv_from(&mut buf).is_ok() {
                n += 1;
            }
            n
        };
        f.set_shed(fd, SHED_ALL).unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..10 {
            for d in shed.iter().chain(pass) {
                tx.send_to(d, to).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        assert_eq!(
            received(&rx),
            10 * pass.len(),
            "only the passing classes arrive"
        );
        assert_eq!(
            f.socket_shed(fd),
            KernelShed {
                options: 10,
                register: 10,
                invite: 0
            }
        );
        assert_eq!(
            f.socket_drops(fd),
            20,
            "in the filter's drops (not pressure)"
        );
        f.set_shed(fd, 0).unwrap_or_else(|e| panic!("{e}"));
        for d in shed {
            tx.send_to(d, to).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(received(&rx), 2, "share 0: nothing shed");
        f.set_shed(fd, SHED_ALL / 2)
            .unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..400 {
            tx.send_to(shed[0], to).unwrap_or_else(|e| panic!("{e}"));
        }
        let got = received(&rx);
        assert!((120..=280).contains(&got), "about half of 400 pass: {got}");
        // IPv6: the same classes (the UDP header is at the same place).
        let rx6 = sock("[::1]:0");
        f.attach(&rx6, true).unwrap_or_else(|e| panic!("{e}"));
        let to6 = rx6.local_addr().unwrap_or_else(|e| panic!("{e}"));
        f.set_shed(rx6.as_raw_fd(), SHED_ALL)
            .unwrap_or_else(|e| panic!("{e}"));
        let tx6 = sock("[::1]:0");
        for d in shed.iter().chain(pass) {
            tx6.send_to(d, to6).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(received(&rx6), pass.len());
        assert_eq!(f.socket_shed(rx6.as_raw_fd()).options, 1);
        // A socket not attached here cannot be given a share.
        let other = sock("127.0.117.232:0");
        assert!(f.set_shed(other.as_raw_fd(), SHED_ALL).is_err());
    }
}
