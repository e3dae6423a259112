//! The filtering XDP program, built as eBPF instructions in Rust, and its attachment (one per
//! interface, shared by the shards, detached when the last shard's engine is dropped or the
//! process dies).
//!
//! What it does, per frame (everything it does not redirect it passes to the kernel):
//!
//! ```text
//! Ethernet [802.1Q/802.1ad tag] →
//!   IPv4, IHL = 5, protocol UDP, not a fragment (MF = 0, offset = 0), dst = a listen address
//!   IPv6, next header UDP (so no extension header, no fragment),   dst = a listen address
//!   → UDP dst port = that listen port → bpf_redirect_map(xsks, rx_queue_index, XDP_PASS)
//! ```
//!
//! ARP, ICMP, TCP, other ports, IP options, fragments and anything short stay with the kernel
//! (ping keeps working; fragments are reassembled and reach the fallback UDP socket). A queue
//! with no socket in the map falls back to `XDP_PASS` (the helper's flags argument).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, Weak};

use super::sys;

const XDP_PASS: i32 = 2;
const BPF_FUNC_REDIRECT_MAP: i32 = 51;

use crate::bpf::insn;

/// A forward-jump assembler: jumps name labels, resolved by [`Asm::finish`].
struct Asm {
    code: Vec<u64>,
    /// (instruction index, label)
    fixups: Vec<(usize, usize)>,
    labels: Vec<Option<usize>>,
}

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R6: u8 = 6;
const R7: u8 = 7;
const R9: u8 = 9;

impl Asm {
    fn new() -> Asm {
        Asm {
            code: Vec::new(),
            fixups: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.code.len());
    }
    /// `dst = *(size *)(src + off)`; size: 0x00 word, 0x08 half, 0x10 byte.
    fn ldx(&mut self, size: u8, dst: u8, src: u8, off: i16) {
        self.code.push(insn(0x61 | size, dst, src, off, 0));
    }
    fn mov_reg(&mut self, dst: u8, src: u8) {
        self.code.push(insn(0xbf, dst, src, 0, 0));
    }
    fn mov_imm(&mut self, dst: u8, imm: i32) {
        self.code.push(insn(0xb7, dst, 0, 0, imm));
    }
    fn add_imm(&mut self, dst: u8, imm: i32) {
        self.code.push(insn(0x07, dst, 0, 0, imm));
    }
    fn and32_imm(&mut self, dst: u8, imm: i32) {
        self.code.push(insn(0x54, dst, 0, 0, imm));
    }
    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, to: usize) {
        self.fixups.push((self.code.len(), to));
        self.code.push(insn(code, dst, src, 0, imm));
    }
    fn ja(&mut self, to: usize) {
        self.jump(0x05, 0, 0, 0, to);
    }
    /// 32-bit compare with an immediate (JMP32 class, so no sign extension): `==`.
    fn jeq32(&mut self, dst: u8, imm: u32, to: usize) {
        self.jump(0x16, dst, 0, imm as i32, to);
    }
    fn jne32(&mut self, dst: u8, imm: u32, to: usize) {
        self.jump(0x56, dst, 0, imm as i32, to);
    }
    /// 32-bit unsigned `dst > imm` / `dst < imm`.
    fn jgt32(&mut self, dst: u8, imm: u32, to: usize) {
        self.jump(0x26, dst, 0, imm as i32, to);
    }
    fn jlt32(&mut self, dst: u8, imm: u32, to: usize) {
        self.jump(0xa6, dst, 0, imm as i32, to);
    }
    /// `dst = htobe16(dst)`: a network-order half-word as its numeric value.
    fn be16_reg(&mut self, dst: u8) {
        self.code.push(insn(0xdc, dst, 0, 0, 16));
    }
    /// `if dst > src goto` (unsigned, 64-bit registers).
    fn jgt_reg(&mut self, dst: u8, src: u8, to: usize) {
        self.jump(0x2d, dst, src, 0, to);
    }
    /// `r1 = map` (BPF_LD | BPF_IMM | BPF_DW with BPF_PSEUDO_MAP_FD).
    fn ld_map_fd(&mut self, dst: u8, fd: RawFd) {
        self.code.push(insn(0x18, dst, 1, 0, fd));
        self.code.push(0);
    }
    fn call(&mut self, helper: i32) {
        self.code.push(insn(0x85, 0, 0, 0, helper));
    }
    fn exit(&mut self) {
        self.code.push(insn(0x95, 0, 0, 0, 0));
    }
    /// Packet bounds: `if r6 + len > r7 (data_end) goto pass`.
    fn need(&mut self, len: i32, pass: usize) {
        self.mov_reg(R2, R6);
        self.add_imm(R2, len);
        self.jgt_reg(R2, R7, pass);
    }
    fn finish(mut self) -> Vec<u64> {
        for &(at, l) in &self.fixups {
            let target = self.labels[l].expect("every label is bound");
            let off = (target as i64 - at as i64 - 1) as i16;
            self.code[at] = (self.code[at] & !(0xffff << 16)) | u64::from(off as u16) << 16;
        }
        self.code
    }
}

/// A 16-bit field in network order as a little-endian `ldx` half-word load yields it.
fn be16(v: u16) -> u32 {
    u32::from(u16::from_ne_bytes(v.to_be_bytes()))
}
/// Four bytes in wire order as a `ldx` word load yields them.
fn word(b: &[u8]) -> u32 {
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

/// The listen addresses of one family grouped by IP, each with its lowest and highest port.
/// A generator with thousands of UA sockets on one address becomes one range check; the
/// engine then matches the exact port (frames for ports in the range that are not ours are
/// counted as rejected).
fn groups(listen: &[SocketAddr], v4: bool) -> Vec<(IpAddr, u16, u16)> {
    let mut g: Vec<(IpAddr, u16, u16)> = Vec::new();
    for l in listen.iter().filter(|l| l.is_ipv4() == v4) {
        match g.iter_mut().find(|(ip, _, _)| *ip == l.ip()) {
            Some(e) => {
                e.1 = e.1.min(l.port());
                e.2 = e.2.max(l.port());
            }
            None => g.push((l.ip(), l.port(), l.port())),
        }
    }
    g
}

/// r3 holds the destination port as loaded (network order): redirect when in `lo..=hi`.
fn port_check(a: &mut Asm, lo: u16, hi: u16, next: usize, redirect: usize) {
    if lo == hi {
        a.jeq32(R3, be16(lo), redirect);
    } else {
        a.be16_reg(R3);
        a.jlt32(R3, u32::from(lo), next);
        a.jgt32(R3, u32::from(hi), next);
        a.ja(redirect);
    }
}

/// The program for these listen addresses, with the XSKMAP `map` (its fd baked in).
pub(crate) fn program(listen: &[SocketAddr], map: RawFd) -> Vec<u64> {
    let mut a = Asm::new();
    let pass = a.label();
    let redirect = a.label();
    let l3 = a.label();
    let vlan = a.label();
    let v4 = a.label();
    let v6 = a.label();
    a.ldx(0x00, R6, R1, 0); // data
    a.ldx(0x00, R7, R1, 4); // data_end
    a.ldx(0x00, R9, R1, 16); // rx_queue_index
    a.need(14, pass);
    a.ldx(0x08, R3, R6, 12);
    a.jeq32(R3, be16(0x8100), vlan);
    a.jeq32(R3, be16(0x88a8), vlan);
    a.ja(l3);
    a.bind(vlan);
    a.need(18, pass);
    a.ldx(0x08, R3, R6, 16);
    a.add_imm(R6, 4); // from here on r6 + 14 is the IP header either way
    a.bind(l3);
    a.jeq32(R3, be16(0x0800), v4);
    a.jeq32(R3, be16(0x86dd), v6);
    a.ja(pass);

    a.bind(v4);
    a.need(14 + 20 + 8, pass);
    a.ldx(0x10, R3, R6, 14);
    a.jne32(R3, 0x45, pass);
    a.ldx(0x10, R3, R6, 14 + 9);
    a.jne32(R3, 17, pass);
    a.ldx(0x08, R3, R6, 14 + 6);
    a.and32_imm(R3, be16(0x3fff) as i32); // MF flag and fragment offset
    a.jne32(R3, 0, pass);
    for (ip, lo, hi) in groups(listen, true) {
        let next = a.label();
        if let (false, IpAddr::V4(v4)) = (ip.is_unspecified(), ip) {
            a.ldx(0x00, R3, R6, 14 + 16);
            a.jne32(R3, word(&v4.octets()), next);
        }
        a.ldx(0x08, R3, R6, 14 + 20 + 2);
        port_check(&mut a, lo, hi, next, redirect);
        a.bind(next);
    }
    a.ja(pass);

    a.bind(v6);
    a.need(14 + 40 + 8, pass);
    a.ldx(0x10, R3, R6, 14 + 6);
    a.jne32(R3, 17, pass);
    for (ip, lo, hi) in groups(listen, false) {
        let next = a.label();
        if let (false, IpAddr::V6(v6)) = (ip.is_unspecified(), ip) {
            let o = v6.octets();
            for k in 0..4 {
                a.ldx(0x00, R3, R6, 14 + 24 + 4 * k as i16);
                a.jne32(R3, word(&o[4 * k..]), next);
            }
        }
        a.ldx(0x08, R3, R6, 14 + 40 + 2);
        port_check(&mut a, lo, hi, next, redirect);
        a.bind(next);
    }
    a.ja(pass);

    a.bind(redirect);
    a.ld_map_fd(R1, map);
    a.mov_reg(R2, R9);
    a.mov_imm(R3, XDP_PASS);
    a.call(BPF_FUNC_REDIRECT_MAP);
    a.exit();
    a.bind(pass);
    a.mov_imm(R0, XDP_PASS);
    a.exit();
    a.finish()
}

/// Where the program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpAttach {
    /// Native (driver) mode, else generic.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only.
    Generic,
}

/// The program attached to one interface, shared by every shard's engine on it.
#[derive(Debug)]
pub(crate) struct Attached {
    pub(crate) ifindex: u32,
    pub(crate) native: bool,
    map: OwnedFd,
    _prog: OwnedFd,
    _link: OwnedFd,
    listen: Vec<SocketAddr>,
}

impl Attached {
    pub(crate) fn map_fd(&self) -> RawFd {
        self.map.as_raw_fd()
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        tracing::info!(ifindex = self.ifindex, "detaching the XDP program");
    }
}

static ATTACHED: Mutex<Vec<Weak<Attached>>> = Mutex::new(Vec::new());

/// The program on `ifname` for `listen`: the one already attached by this process, or a new
/// one. A program left on the interface over netlink (e.g. by a crashed tool) is detached
/// first: a bpf_link cannot be created over it.
pub(crate) fn attach(
    ifname: &str,
    listen: &[SocketAddr],
    mode: XdpAttach,
    queues: u32,
) -> io::Result<Arc<Attached>> {
    let ifindex = sys::ifindex(ifname)?;
    let mut reg = ATTACHED.lock().unwrap_or_else(|p| p.into_inner());
    reg.retain(|w| w.strong_count() > 0);
    if let Some(a) = reg
        .iter()
        .filter_map(Weak::upgrade)
        .find(|a| a.ifindex == ifindex)
    {
        if a.listen != listen {
            return Err(io::Error::other(format!(
                "interface `{ifname}` already carries this process's XDP program for other listen addresses"
            )));
        }
        return Ok(a);
    }
    let map = sys::xskmap_create(queues.max(1))?;
    let code = program(listen, map.as_raw_fd());
    let prog = sys::prog_load(&code)?;
    let modes: &[u32] = match mode {
        XdpAttach::Auto => &[sys::XDP_FLAGS_DRV_MODE, sys::XDP_FLAGS_SKB_MODE],
        XdpAttach::Native => &[sys::XDP_FLAGS_DRV_MODE],
        XdpAttach::Generic => &[sys::XDP_FLAGS_SKB_MODE],
    };
    let mut last = io::Error::other("no attach mode tried");
    for &flags in modes {
        let mut link = sys::link_create(prog.as_raw_fd(), ifindex, flags);
        if matches!(&link, Err(e) if e.raw_os_error() == Some(libc::EBUSY)) {
            // A stale program attached over netlink: replace it.
            for f in [sys::XDP_FLAGS_DRV_MODE, sys::XDP_FLAGS_SKB_MODE] {
                if sys::netlink_detach(ifindex, f).is_ok() {
                    tracing::warn!(ifname, "detached a stale XDP program left on the interface");
                }
            }
            link = sys::link_create(prog.as_raw_fd(), ifindex, flags);
        }
        match link {
            Ok(link) => {
                let native = flags == sys::XDP_FLAGS_DRV_MODE;
                tracing::info!(
                    ifname,
                    mode = if native { "native" } else { "generic" },
                    instructions = code.len(),
                    "XDP program attached (bpf_link)"
                );
                let a = Arc::new(Attached {
                    ifindex,
                    native,
                    map,
                    _prog: prog,
                    _link: link,
                    listen: listen.to_vec(),
                });
                reg.push(Arc::downgrade(&a));
                return Ok(a);
            }
            Err(e) => {
                tracing::info!(ifname, flags, error = %e, "XDP attach mode refused");
                last = e;
            }
        }
    }
    Err(io::Error::new(
        last.kind(),
        format!("attaching the XDP program to `{ifname}` failed: {last} (another process's program may hold it: `ip link show {ifname}`)"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_ports_on_one_address_become_one_range() {
        let listen: Vec<SocketAddr> = (0..1000)
            .map(|p| SocketAddr::from(([198, 18, 21, 2], 20000 + p)))
            .collect();
        assert_eq!(groups(&listen, true), vec![(listen[0].ip(), 20000, 20999)]);
        assert!(program(&listen, 3).len() < 80);
    }

    #[test]
    fn jumps_land_on_their_labels_and_the_program_ends_in_exit() {
        let listen = [
            "198.18.21.1:5060".parse().expect("literal"),
            "198.18.21.1:5070".parse().expect("literal"),
            "[2001:db8::1]:5060".parse().expect("literal"),
        ];
        let code = program(&listen, 3);
        assert_eq!(code.last().map(|i| i & 0xff), Some(0x95));
        for (at, i) in code.iter().enumerate() {
            let op = (i & 0xff) as u8;
            if matches!(op, 0x05 | 0x16 | 0x56 | 0x2d | 0x26 | 0xa6) {
                let off = ((i >> 16) & 0xffff) as u16 as i16;
                assert!(off >= 0, "only forward jumps");
                assert!(at + 1 + (off as usize) < code.len());
            }
        }
    }
}
