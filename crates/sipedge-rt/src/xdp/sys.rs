//! The kernel ABI the XDP engine uses, declared here rather than taken from a binding crate
//! (see the module docs for why): `bpf(2)` commands, AF_XDP socket options, ring layout, and
//! the one netlink request that detaches a stale program.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

// ---- bpf(2) -------------------------------------------------------------------------------

use crate::bpf::{bpf, owned, BpfAttr, BPF_MAP_CREATE, BPF_MAP_UPDATE_ELEM};

const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`: BPF_XDP.
const BPF_XDP: u32 = 37;
/// `XDP_FLAGS_SKB_MODE`: generic XDP, in the core stack after the skb is built.
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP, in the driver.
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// Creates an XSKMAP (queue index → AF_XDP socket) of `entries` entries.
pub(crate) fn xskmap_create(entries: u32) -> io::Result<OwnedFd> {
    let mut a = BpfAttr::new();
    a.u32(0, BPF_MAP_TYPE_XSKMAP)
        .u32(4, 4)
        .u32(8, 4)
        .u32(12, entries);
    a.0[28..28 + 11].copy_from_slice(b"sipedge_xsk");
    bpf(BPF_MAP_CREATE, &mut a).map(owned)
}

/// Stores socket `xsk` at `queue` in the XSKMAP `map`.
pub(crate) fn xskmap_set(map: RawFd, queue: u32, xsk: RawFd) -> io::Result<()> {
    let key = queue;
    let value = xsk as u32;
    let mut a = BpfAttr::new();
    a.u32(0, map as u32)
        .u64(8, &key as *const u32 as u64)
        .u64(16, &value as *const u32 as u64)
        .u64(24, 0);
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
}

/// Loads an XDP program; on a verifier refusal the error carries the verifier's log.
pub(crate) fn prog_load(insns: &[u64]) -> io::Result<OwnedFd> {
    let spec = crate::bpf::ProgSpec {
        prog_type: BPF_PROG_TYPE_XDP,
        attach_type: BPF_XDP,
        name: b"sipedge_xdp",
        what: "XDP program",
    };
    crate::bpf::prog_load(&spec, insns)
}

/// Attaches `prog` to `ifindex` through a bpf_link (`flags`: native or generic mode). The
/// link is released, and the program detached, when the returned fd is closed — also when
/// the process dies, unlike an attachment made over netlink.
pub(crate) fn link_create(prog: RawFd, ifindex: u32, flags: u32) -> io::Result<OwnedFd> {
    let mut a = BpfAttr::new();
    a.u32(0, prog as u32)
        .u32(4, ifindex)
        .u32(8, BPF_XDP)
        .u32(12, flags);
    bpf(BPF_LINK_CREATE, &mut a).map(owned)
}

/// Detaches whatever program was attached to `ifindex` over netlink in mode `flags`
/// (`RTM_SETLINK` with `IFLA_XDP { FD = -1 }`, what `ip link set dev X xdp off` sends). A
/// program held by a live bpf_link is not affected (the kernel refuses).
pub(crate) fn netlink_detach(ifindex: u32, flags: u32) -> io::Result<()> {
    const IFLA_XDP: u16 = 43;
    const IFLA_XDP_FD: u16 = 1;
    const IFLA_XDP_FLAGS: u16 = 3;
    const NLA_F_NESTED: u16 = 1 << 15;
    let mut msg = Vec::with_capacity(64);
    let total: u32 = 16 + 16 + 4 + 8 + 8;
    msg.extend_from_slice(&total.to_ne_bytes());
    msg.extend_from_slice(&(libc::RTM_SETLINK).to_ne_bytes());
    msg.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
    msg.extend_from_slice(&0u32.to_ne_bytes()); // pid
                                                // struct ifinfomsg
    msg.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
    msg.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes()); // flags
    msg.extend_from_slice(&0u32.to_ne_bytes()); // change
    msg.extend_from_slice(&20u16.to_ne_bytes());
    msg.extend_from_slice(&(IFLA_XDP | NLA_F_NESTED).to_ne_bytes());
    msg.extend_from_slice(&8u16.to_ne_bytes());
    msg.extend_from_slice(&IFLA_XDP_FD.to_ne_bytes());
    msg.extend_from_slice(&(-1i32).to_ne_bytes());
    msg.extend_from_slice(&8u16.to_ne_bytes());
    msg.extend_from_slice(&IFLA_XDP_FLAGS.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    debug_assert_eq!(msg.len(), total as usize);
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sends `msg.len()` bytes from a live buffer on an open socket; no address (the
    // kernel is the default peer of a netlink socket).
    let rc = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut ack = [0u8; 256];
    // SAFETY: receives into a live buffer of its length.
    let n = unsafe { libc::recv(fd.as_raw_fd(), ack.as_mut_ptr().cast(), ack.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // NLMSG_ERROR: the errno follows the 16-byte header.
    if n >= 20 && u16::from_ne_bytes([ack[4], ack[5]]) == libc::NLMSG_ERROR as u16 {
        let errno = i32::from_ne_bytes([ack[16], ack[17], ack[18], ack[19]]);
        if errno != 0 {
            return Err(io::Error::from_raw_os_error(-errno));
        }
    }
    Ok(())
}

/// The interface's index, or an error naming it.
pub(crate) fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::other("interface name contains NUL"))?;
    // SAFETY: `c` is a NUL-terminated string alive across the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no network interface named `{name}`"),
        ));
    }
    Ok(idx)
}

// ---- AF_XDP --------------------------------------------------------------------------------

pub(crate) const SOL_XDP: libc::c_int = 283;
const XDP_MMAP_OFFSETS: libc::c_int = 1;
pub(crate) const XDP_RX_RING: libc::c_int = 2;
pub(crate) const XDP_TX_RING: libc::c_int = 3;
const XDP_UMEM_REG: libc::c_int = 4;
pub(crate) const XDP_UMEM_FILL_RING: libc::c_int = 5;
pub(crate) const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
pub(crate) const XDP_COPY: u16 = 1 << 1;
pub(crate) const XDP_ZEROCOPY: u16 = 1 << 2;
pub(crate) const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
/// Ring flag: the kernel wants a syscall to make progress on this ring.
pub(crate) const XDP_RING_NEED_WAKEUP: u32 = 1;
pub(crate) const PGOFF_RX_RING: libc::off_t = 0;
pub(crate) const PGOFF_TX_RING: libc::off_t = 0x8000_0000;
pub(crate) const PGOFF_FILL_RING: libc::off_t = 0x1_0000_0000;
pub(crate) const PGOFF_COMPLETION_RING: libc::off_t = 0x1_8000_0000;

/// `struct xdp_ring_offset`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RingOffset {
    pub(crate) producer: u64,
    pub(crate) consumer: u64,
    pub(crate) desc: u64,
    pub(crate) flags: u64,
}

/// `struct xdp_mmap_offsets`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MmapOffsets {
    pub(crate) rx: RingOffset,
    pub(crate) tx: RingOffset,
    pub(crate) fr: RingOffset,
    pub(crate) cr: RingOffset,
}

/// `struct xdp_desc`: one RX or TX descriptor.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct XdpDesc {
    pub(crate) addr: u64,
    pub(crate) len: u32,
    pub(crate) options: u32,
}

pub(crate) fn xsk_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn set_opt<T>(fd: RawFd, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live `T` and its exact size is passed; SOL_XDP options read that
    // many bytes.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            SOL_XDP,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Registers `len` bytes at `addr` as the socket's UMEM, in frames of `frame` bytes.
pub(crate) fn umem_reg(fd: RawFd, addr: *mut u8, len: usize, frame: u32) -> io::Result<()> {
    /// `struct xdp_umem_reg` (the kernel accepts this 32-byte version).
    #[repr(C)]
    struct UmemReg {
        addr: u64,
        len: u64,
        chunk_size: u32,
        headroom: u32,
        flags: u32,
        tx_metadata_len: u32,
    }
    let reg = UmemReg {
        addr: addr as u64,
        len: len as u64,
        chunk_size: frame,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    set_opt(fd, XDP_UMEM_REG, &reg)
}

pub(crate) fn mmap_offsets(fd: RawFd) -> io::Result<MmapOffsets> {
    let mut off = MmapOffsets::default();
    let mut len = std::mem::size_of::<MmapOffsets>() as libc::socklen_t;
    // SAFETY: `off` is a live, writable MmapOffsets and `len` its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_MMAP_OFFSETS,
            (&mut off as *mut MmapOffsets).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(off)
}

/// Binds the socket to `queue` of `ifindex` with `flags` (copy/zero-copy, need-wakeup).
pub(crate) fn xsk_bind(fd: RawFd, ifindex: u32, queue: u32, flags: u16) -> io::Result<()> {
    /// `struct sockaddr_xdp`.
    #[repr(C)]
    struct SockaddrXdp {
        family: u16,
        flags: u16,
        ifindex: u32,
        queue_id: u32,
        shared_umem_fd: u32,
    }
    let sa = SockaddrXdp {
        family: libc::AF_XDP as u16,
        flags,
        ifindex,
        queue_id: queue,
        shared_umem_fd: 0,
    };
    // SAFETY: `sa` is a live sockaddr_xdp and its size is passed.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sa as *const SockaddrXdp).cast(),
            std::mem::size_of::<SockaddrXdp>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// An anonymous or socket mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub(crate) ptr: *mut u8,
    pub(crate) len: usize,
}

impl Mapping {
    /// Maps `len` bytes of `fd` at page offset `pgoff` (`fd` < 0: anonymous, zeroed memory).
    pub(crate) fn new(fd: RawFd, len: usize, pgoff: libc::off_t) -> io::Result<Mapping> {
        let (flags, fd) = if fd < 0 {
            (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1)
        } else {
            (libc::MAP_SHARED | libc::MAP_POPULATE, fd)
        };
        // SAFETY: a fresh mapping chosen by the kernel (no fixed address); the result is
        // checked against MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                pgoff,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: ptr.cast(),
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly a mapping made by `Mapping::new`, unmapped once.
        unsafe {
            libc::munmap(self.ptr.cast(), self.len);
        }
    }
}

/// `ioctl(SIOCETHTOOL / SIOCGIFMTU)` on an `ifreq` for `ifname` whose data is `data`.
fn if_ioctl(
    ifname: &str,
    req: libc::c_ulong,
    data: *mut libc::c_void,
    mtu: &mut i32,
) -> io::Result<()> {
    #[repr(C)]
    struct IfReq {
        name: [u8; libc::IFNAMSIZ],
        data: *mut libc::c_void,
        _pad: [u8; 16],
    }
    let mut r = IfReq {
        name: [0; libc::IFNAMSIZ],
        data,
        _pad: [0; 16],
    };
    let n = ifname.len().min(libc::IFNAMSIZ - 1);
    r.name[..n].copy_from_slice(&ifname.as_bytes()[..n]);
    // SAFETY: plain socket creation; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `r` is a live ifreq (name NUL-terminated); for SIOCETHTOOL its data points at
    // the caller's live ethtool struct; SIOCGIFMTU writes the int at the union's start.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, &mut r as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    *mtu = r.data as usize as u32 as i32;
    Ok(())
}

/// Number of RX queues of `ifname` in the calling thread's network namespace (ethtool
/// channels; `/sys/class/net/IF/queues` when the driver does not report them), at least 1.
pub(crate) fn rx_queues(ifname: &str) -> usize {
    const ETHTOOL_GCHANNELS: u32 = 0x3c;
    let mut ch = [0u32; 9];
    ch[0] = ETHTOOL_GCHANNELS;
    let mut ignored = 0;
    if if_ioctl(
        ifname,
        libc::SIOCETHTOOL,
        ch.as_mut_ptr().cast(),
        &mut ignored,
    )
    .is_ok()
    {
        let n = ch[5] as usize + ch[8] as usize;
        if n > 0 {
            return n;
        }
    }
    std::fs::read_dir(format!("/sys/class/net/{ifname}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(1)
        .max(1)
}

/// The interface's MTU, 1500 when unreadable.
pub(crate) fn mtu(ifname: &str) -> usize {
    let mut mtu = 0;
    match if_ioctl(ifname, libc::SIOCGIFMTU, std::ptr::null_mut(), &mut mtu) {
        Ok(()) if mtu >= 576 => mtu as usize,
        _ => 1500,
    }
}
