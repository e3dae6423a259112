//! The AF_XDP engine (`io = "xdp"`): one XDP socket per shard on RX/TX queue *k* of
//! `[server] xdp_interface`, so the kernel's UDP/IP stack is skipped for the datagrams that
//! matter (SIP over UDP to our listen address and port), with the ordinary UDP sockets kept
//! open on the same address for everything else.
//!
//! # Toolchain: why the program is built in Rust, and the kernel ABI declared here
//!
//! The XDP program is ~60 eBPF instructions ([`prog`]): parse Ethernet/VLAN/IP/UDP, compare
//! with the listen addresses, `bpf_redirect_map`. The alternatives were weighed:
//!
//! * **clang at build time + libbpf/libxdp (`libbpf-rs`, `libbpf-sys`, `libxdp-sys`)** — needs
//!   clang, libbpf-dev and (for the -sys crates) bindgen/libclang on every build machine,
//!   including the non-XDP build, for a program whose only variable part is the listen
//!   address list; libxdp's dispatcher also wants `/sys/fs/bpf`, not mounted on these VMs.
//! * **aya** — pure-Rust userspace, but its XDP programs are built with nightly Rust
//!   (`bpf-linker`) or loaded from a clang-built object: the same build-time toolchain.
//! * **xsk-rs** — binds libxdp (C build) and does not load our own filter.
//!
//! Emitting the instructions directly needs no compiler, no headers and no new crate: the
//! program is generated at start for the configured addresses (baked in as constants), so a
//! fresh clone builds with `cargo build` and nothing else, and `cargo test` exercises it. The
//! kernel interfaces used are stable UAPI (`bpf(2)` MAP_CREATE / PROG_LOAD / LINK_CREATE /
//! MAP_UPDATE_ELEM, AF_XDP socket options and ring mmaps), declared in [`sys`] — about as
//! much code as a binding's setup calls would be. The cost: the program is reviewed as
//! assembly; it is short, and the verifier checks its memory safety at load.
//!
//! # Design
//!
//! * **Attach**: one program per interface per process, through a **bpf_link** (released
//!   when the process exits, even on `kill -9`); native (driver) mode first, generic mode
//!   otherwise (`xdp_attach`). A stale program attached over netlink is detached first.
//! * **Queues**: shard *k* binds queue *k*; an interface with fewer RX queues than shards is a
//!   start-up error naming the fix. Zero-copy is attempted first, copy mode otherwise (veth
//!   refuses zero-copy); which one ran is logged and reported by [`EngineKind`].
//! * **UMEM**: `xdp_frames` frames of `xdp_frame_bytes`: up to `xdp_ring_size` of them are
//!   RX frames, always on the fill ring or in the RX ring; the rest are TX frames, on a free
//!   list until sent and back from the completion ring after.
//! * **Receive**: frames are parsed ([`frame`]), checksums verified, the payload handed to the
//!   callback, the frame returned to the fill ring.
//! * **Next hop**: from the kernel's own tables, mirrored over rtnetlink ([`neigh`]): the
//!   route out of our interface and the next hop's MAC from the neighbour table, so a reply,
//!   a relayed request or a ping to a peer never heard from goes where the kernel would send
//!   it, and a spoofed frame cannot teach us a MAC. Learning from frames (capped,
//!   [`XdpConfig::neighbours`]) is kept only where the kernel's tables cannot answer: peers
//!   behind a VLAN tag (their routes are on the VLAN device), and which of our addresses a
//!   peer sent to when we listen on `0.0.0.0`.
//! * **Send**: a datagram whose next-hop MAC is known, that fits the MTU, goes out as a frame
//!   with complete checksums; anything else goes through the UDP socket (the kernel resolves
//!   the neighbour — the answer reaches us as `RTM_NEWNEIGH` — and fragments), so `xdp` is a
//!   fast path, never a subset.
//! * **Wake-ups**: need-wakeup mode (no syscall while the kernel makes progress on its own).
//!   While traffic flows the engine does not ask to be woken per packet: it checks its rings
//!   every `xdp_poll_us` (sleeping on the eventfd and fallback sockets only), and only after
//!   ~10 ms without traffic blocks on the XDP socket itself.

mod frame;
mod neigh;
mod prog;
mod ring;
mod sys;
mod wait;

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use prog::XdpAttach;

use crate::mmsg::MmsgEngine;
use crate::wake::WakeFd;
use crate::{Datagram, EngineConfig, EngineStats};
use frame::L2;
use neigh::{Hop, IpMap, KernelTable};
use ring::Ring;
use sys::{Mapping, XdpDesc};

/// Ring checks without traffic, after which the engine blocks on the XDP socket.
const IDLE_CHECKS: u32 = 50;
/// While busy, the fallback sockets are checked this often (and whenever a blocking wait
/// saw one readable): a fragment or a first datagram waits at most this long.
const FALLBACK_CHECK: Duration = Duration::from_millis(1);
/// The epoll tag of the rtnetlink socket (the fallback sockets are tagged by index).
const NETLINK_TAG: u64 = u64::MAX;
/// Packets one busy poll may process (SO_BUSY_POLL_BUDGET; the kernel's default is 8).
const BUSY_POLL_BUDGET: libc::c_int = 64;
/// Kicks of the TX ring per flush at most (copy mode sends 32 frames per syscall).
const MAX_TX_KICKS: u32 = 256;

/// `[server] xdp_*`: the AF_XDP engine's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpConfig {
    /// The interface whose queues the shards bind (`xdp_interface`).
    pub interface: String,
    /// The queue this engine binds (the shard's index; set by the shard, not configured).
    pub queue: u32,
    /// UMEM frames per shard (`xdp_frames`). Default 4096.
    pub frames: u32,
    /// Bytes per UMEM frame, 2048 or 4096 (`xdp_frame_bytes`). Default 4096.
    pub frame_bytes: u32,
    /// Entries of each of the four rings, a power of two (`xdp_ring_size`). Default 2048.
    pub ring_size: u32,
    /// Native or generic XDP (`xdp_attach`). Default: native, else generic.
    pub attach: XdpAttach,
    /// Try zero-copy before copy mode (`xdp_zero_copy`). Default true.
    pub zero_copy: bool,
    /// Ring check interval while traffic flows, in µs; 0 = be woken per packet
    /// (`xdp_poll_us`). Default 200.
    pub poll_us: u32,
    /// Cap of the kernel neighbour table's mirror, and of the peers learned from frames
    /// (VLAN-tagged peers, our address per peer on `0.0.0.0`) (`xdp_neighbours`). Default 65536.
    pub neighbours: usize,
    /// Busy polling of the XDP socket, µs per poll; 0 = off (`xdp_busy_poll_us`). Default 0.
    pub busy_poll_us: u32,
}

impl Default for XdpConfig {
    fn default() -> Self {
        XdpConfig {
            interface: String::new(),
            queue: 0,
            frames: 4096,
            frame_bytes: 4096,
            ring_size: 2048,
            attach: XdpAttach::Auto,
            zero_copy: true,
            poll_us: 200,
            neighbours: 65536,
            busy_poll_us: 0,
        }
    }
}

/// Where a peer is, as learned from its last frame: kept only for what the kernel's tables
/// cannot say (a VLAN-tagged peer, whose routes are on the VLAN device; our address a peer
/// sent to when we listen on `0.0.0.0`).
#[derive(Debug, Clone, Copy)]
struct Neighbour {
    l2: L2,
    /// Our address it sent to (the source of our answers when we listen on `0.0.0.0`).
    local_ip: IpAddr,
}

/// One shard's AF_XDP socket, with its UMEM and rings (dropped in this order: rings, socket,
/// UMEM, then the program reference).
struct Xsk {
    rx: Ring,
    tx: Ring,
    fill: Ring,
    comp: Ring,
    fd: OwnedFd,
    umem: Mapping,
    zero_copy: bool,
}

fn open_xsk(cfg: &XdpConfig, ifindex: u32, zero_copy: bool) -> io::Result<Xsk> {
    let fd = sys::xsk_socket()?;
    let raw = fd.as_raw_fd();
    let umem = Mapping::new(-1, cfg.frames as usize * cfg.frame_bytes as usize, 0)?;
    sys::umem_reg(raw, umem.ptr, umem.len, cfg.frame_bytes)?;
    let n = cfg.ring_size;
    for opt in [
        sys::XDP_UMEM_FILL_RING,
        sys::XDP_UMEM_COMPLETION_RING,
        sys::XDP_RX_RING,
        sys::XDP_TX_RING,
    ] {
        sys::set_opt(raw, opt, &n)?;
    }
    let off = sys::mmap_offsets(raw)?;
    let d = std::mem::size_of::<XdpDesc>();
    let xsk = Xsk {
        rx: Ring::new(raw, &off.rx, n, d, sys::PGOFF_RX_RING)?,
        tx: Ring::new(raw, &off.tx, n, d, sys::PGOFF_TX_RING)?,
        fill: Ring::new(raw, &off.fr, n, 8, sys::PGOFF_FILL_RING)?,
        comp: Ring::new(raw, &off.cr, n, 8, sys::PGOFF_COMPLETION_RING)?,
        fd,
        umem,
        zero_copy,
    };
    let mode = if zero_copy {
        sys::XDP_ZEROCOPY
    } else {
        sys::XDP_COPY
    };
    sys::xsk_bind(raw, ifindex, cfg.queue, mode | sys::XDP_USE_NEED_WAKEUP)?;
    if cfg.busy_poll_us > 0 {
        set_busy_poll(raw, cfg.busy_poll_us)?;
    }
    Ok(xsk)
}

/// `xdp_busy_poll_us`: the socket options of the kernel's busy polling for AF_XDP
/// (Documentation/networking/af_xdp.rst, "XDP_USE_NEED_WAKEUP" and busy polling;
/// SO_PREFER_BUSY_POLL since Linux 5.11).
fn set_busy_poll(fd: std::os::fd::RawFd, us: u32) -> io::Result<()> {
    const SO_BUSY_POLL: libc::c_int = 46;
    const SO_PREFER_BUSY_POLL: libc::c_int = 69;
    const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
    for (opt, v) in [
        (SO_PREFER_BUSY_POLL, 1),
        (SO_BUSY_POLL, us as libc::c_int),
        (SO_BUSY_POLL_BUDGET, BUSY_POLL_BUDGET),
    ] {
        // SAFETY: sets an int option on our open socket from a live int.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("[server] xdp_busy_poll_us: setsockopt {opt} on the XDP socket: {e} (needs Linux 5.11+ and CAP_NET_ADMIN; set 0 to turn busy polling off)"),
            ));
        }
    }
    Ok(())
}

/// The AF_XDP engine; see the module docs.
pub(crate) struct XdpEngine {
    xsk: Xsk,
    attached: Arc<prog::Attached>,
    fallback: MmsgEngine,
    listen: Vec<SocketAddr>,
    frame_bytes: u64,
    tx_free: Vec<u64>,
    tx_queued: u32,
    /// Routes, neighbours and our MAC from the kernel (rtnetlink): where requests go.
    kernel: KernelTable,
    learned: IpMap<Neighbour>,
    neigh_cap: usize,
    /// A listen address is unspecified: remember which of our addresses each peer used.
    learn_local: bool,
    mtu: usize,
    ip_id: u16,
    poll_us: u32,
    busy_poll: bool,
    idle_checks: u32,
    /// [xsk, epoll over the fallback sockets, eventfd].
    pollfds: Vec<libc::pollfd>,
    /// The fallback sockets, so a turn reads only the ones with data (a generator has one per
    /// UA; reading each every turn would cost a syscall per socket).
    epoll: OwnedFd,
    events: Vec<libc::epoll_event>,
    fallback_ready: bool,
    fallback_due: Instant,
    /// The clock read once per turn (by the fallback check), for what needs no more.
    now: Instant,
    max_batch: u32,
    recv_buf_bytes: usize,
    /// This engine's own counters (the fallback keeps its own).
    own: EngineStats,
    /// `own` plus the fallback's: what [`stats`](Self::stats) reports.
    merged: EngineStats,
}

impl XdpEngine {
    pub(crate) fn new(
        sockets: Vec<UdpSocket>,
        wake: WakeFd,
        cfg: &EngineConfig,
    ) -> io::Result<XdpEngine> {
        let x = &cfg.xdp;
        let ifname = x.interface.as_str();
        if ifname.is_empty() {
            return Err(io::Error::other(
                "io = \"xdp\" needs [server] xdp_interface (the interface the listen address is on)",
            ));
        }
        if !x.ring_size.is_power_of_two() || !matches!(x.frame_bytes, 2048 | 4096) {
            return Err(io::Error::other(
                "xdp_ring_size must be a power of two and xdp_frame_bytes 2048 or 4096",
            ));
        }
        let queues = sys::rx_queues(ifname);
        if x.queue as usize >= queues {
            return Err(io::Error::other(format!(
                "interface `{ifname}` has {queues} RX queue(s) but shard {q} needs queue {q}: run at most {queues} shard(s) ([server] workers = {queues}) or give the interface more queues (`ethtool -L {ifname} combined N`)",
                q = x.queue
            )));
        }
        let fallback = MmsgEngine::new(sockets, wake, cfg);
        let listen = fallback.local_addrs()?;
        let attached = prog::attach(ifname, &listen, x.attach, queues as u32)?;
        let xsk = match x.zero_copy {
            true => match open_xsk(x, attached.ifindex, true) {
                Ok(s) => s,
                Err(e) => {
                    tracing::info!(error = %e, "AF_XDP zero-copy refused; using copy mode");
                    open_xsk(x, attached.ifindex, false)?
                }
            },
            false => open_xsk(x, attached.ifindex, false)?,
        };
        sys::xskmap_set(attached.map_fd(), x.queue, xsk.fd.as_raw_fd())?;
        tracing::info!(
            interface = ifname,
            queue = x.queue,
            attach = if attached.native { "native" } else { "generic" },
            zero_copy = xsk.zero_copy,
            "AF_XDP socket bound: this shard serves this queue"
        );
        // SAFETY: plain epoll creation; checked below.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `ep` was just created and is owned by nobody else.
        let epoll = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ep) };
        let fds = fallback.socket_fds();
        for (i, &fd) in fds.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: registers our open socket fd in our epoll fd; `ev` is live.
            if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let kernel = KernelTable::open(attached.ifindex, x.neighbours)?;
        if kernel.mac.is_none() {
            tracing::warn!(
                interface = ifname,
                "no MAC address on the interface: every datagram goes through the socket"
            );
        }
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: NETLINK_TAG,
        };
        // SAFETY: registers our open netlink fd in our epoll fd; `ev` is live.
        if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, kernel.raw_fd(), &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let pollfds = [xsk.fd.as_raw_fd(), ep, fallback.wake().raw_fd()]
            .into_iter()
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let events = vec![libc::epoll_event { events: 0, u64: 0 }; (fds.len() + 1).min(65)];
        let frames = u64::from(x.frames);
        let rx_frames = frames.min(u64::from(x.ring_size)).min(frames / 2).max(1);
        let tx_frames = (frames - rx_frames).min(u64::from(x.ring_size));
        let fb = u64::from(x.frame_bytes);
        let mut engine = XdpEngine {
            xsk,
            attached,
            fallback,
            learn_local: listen.iter().any(|l| l.ip().is_unspecified()),
            listen,
            frame_bytes: fb,
            tx_free: (rx_frames..rx_frames + tx_frames).map(|i| i * fb).collect(),
            tx_queued: 0,
            kernel,
            learned: IpMap::default(),
            neigh_cap: x.neighbours.max(1),
            mtu: sys::mtu(ifname),
            ip_id: 0,
            poll_us: x.poll_us,
            busy_poll: x.busy_poll_us > 0,
            idle_checks: IDLE_CHECKS,
            pollfds,
            epoll,
            events,
            fallback_ready: true,
            fallback_due: Instant::now(),
            now: Instant::now(),
            max_batch: cfg.max_batch.clamp(1, u32::MAX as usize) as u32,
            recv_buf_bytes: cfg.recv_buf_bytes.max(1),
            own: EngineStats::default(),
            merged: EngineStats::default(),
        };
        for i in 0..rx_frames {
            engine.xsk.fill.put_addr(i * fb);
        }
        engine.xsk.fill.publish();
        engine.own.xdp_zero_copy = u64::from(engine.xsk.zero_copy);
        engine.own.xdp_native = u64::from(engine.attached.native);
        engine.merge();
        Ok(engine)
    }

    pub(crate) fn zero_copy(&self) -> bool {
        self.xsk.zero_copy
    }

    pub(crate) fn stats(&self) -> &EngineStats {
        &self.merged
    }

    fn merge(&mut self) {
        let f = self.fallback.stats();
        let s = &self.own;
        self.merged = EngineStats {
            datagrams_in: s.datagrams_in + f.datagrams_in,
            datagrams_out: s.datagrams_out + f.datagrams_out,
            send_drops: s.send_drops + f.send_drops,
            send_errors: s.send_errors + f.send_errors,
            recv_truncated: s.recv_truncated + f.recv_truncated,
            recv_errors: s.recv_errors + f.recv_errors,
            recv_rearms: 0,
            submits: s.submits + f.submits,
            wakeups: s.wakeups + f.wakeups,
            recv_batches: s.recv_batches,
            ..s.clone()
        };
    }

    /// See [`Engine::send`](crate::Engine::send).
    pub(crate) fn send(&mut self, socket: usize, to: SocketAddr, data: &[u8]) -> bool {
        if self.send_frame(socket, to, data) {
            return true;
        }
        self.own.xdp_tx_via_socket += 1;
        let queued = self.fallback.send(socket, to, data);
        self.merge(); // the slow path: keep the published counters current
        queued
    }

    fn send_frame(&mut self, socket: usize, to: SocketAddr, data: &[u8]) -> bool {
        let Some(&listen) = self.listen.get(socket) else {
            return false;
        };
        let (l2, src) = match self.kernel.next_hop(to.ip(), self.now) {
            Hop::Mac { mac, src } => {
                let Some(local_mac) = self.kernel.mac else {
                    return false;
                };
                let l2 = L2 {
                    local_mac,
                    peer_mac: mac,
                    vlan: None,
                };
                (l2, src)
            }
            // Only a tagged peer's MAC is taken from its frames (module docs).
            Hop::NotOurs => match self.learned.get(&to.ip()) {
                Some(n) if n.l2.vlan.is_some() => (n.l2, Some(n.local_ip)),
                _ => return false,
            },
            Hop::Unresolved | Hop::Revalidate => return false,
        };
        let ip = if listen.ip().is_unspecified() {
            // The address the peer sent to, else the kernel's source for the route.
            match self.learned.get(&to.ip()).map(|n| n.local_ip).or(src) {
                Some(ip) => ip,
                None => return false,
            }
        } else {
            listen.ip()
        };
        let from = SocketAddr::new(ip, listen.port());
        let hl = frame::header_len(&l2, to.is_ipv6());
        let l2_len = 14 + if l2.vlan.is_some() { 4 } else { 0 };
        if hl + data.len() - l2_len > self.mtu || hl + data.len() > self.frame_bytes as usize {
            return false;
        }
        // `free` counts from our cached producer index, so queued frames are already out.
        if self.xsk.tx.free() == 0 {
            return false;
        }
        if self.tx_free.is_empty() {
            self.reclaim();
        }
        let Some(addr) = self.tx_free.pop() else {
            return false;
        };
        // SAFETY: `addr` is a TX frame of ours (from the free list: not in any ring), inside
        // the UMEM (`addr + frame_bytes <= umem.len` by construction); nothing else borrows it.
        let buf = unsafe {
            std::slice::from_raw_parts_mut(
                self.xsk.umem.ptr.add(addr as usize),
                self.frame_bytes as usize,
            )
        };
        self.ip_id = self.ip_id.wrapping_add(1);
        let Some(len) = frame::build(buf, &l2, from, to, data, self.ip_id) else {
            self.tx_free.push(addr);
            return false;
        };
        self.xsk.tx.put_desc(XdpDesc {
            addr,
            len: len as u32,
            options: 0,
        });
        self.tx_queued += 1;
        // Counted when queued (in `merged` too, so the shard's per-turn publish, which runs
        // before the next flush, sees it).
        for st in [&mut self.own, &mut self.merged] {
            st.datagrams_out += 1;
            st.xdp_tx_frames += 1;
        }
        true
    }

    /// Remembers a tagged peer's L2 / the address a peer sent to (module docs).
    fn learn(&mut self, peer: IpAddr, l2: L2, local_ip: IpAddr) {
        if self.learned.len() >= self.neigh_cap && !self.learned.contains_key(&peer) {
            // Full: start over (rebuilt from traffic) rather than grow.
            self.learned.clear();
        }
        self.learned.insert(peer, Neighbour { l2, local_ip });
    }

    /// Applies the kernel's route/neighbour updates (on the fallback check's cadence).
    fn kernel_pass(&mut self) {
        if let Err(e) = self.kernel.poll() {
            tracing::warn!(error = %e, "rtnetlink read failed: the table may lag");
        }
    }

    /// Takes sent frames back from the completion ring.
    fn reclaim(&mut self) {
        let n = self.xsk.comp.ready();
        for k in 0..n {
            let a = self.xsk.comp.addr_at(k);
            self.tx_free.push(a - a % self.frame_bytes);
        }
        self.xsk.comp.release(n);
    }

    /// See [`Engine::flush`](crate::Engine::flush).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.fallback.flush()?;
        if self.tx_queued > 0 {
            self.xsk.tx.publish();
            self.tx_queued = 0;
        }
        let mut kicks = 0;
        loop {
            let before = self.xsk.tx.outstanding();
            if before == 0 || kicks == MAX_TX_KICKS {
                break;
            }
            if self.xsk.zero_copy && !self.busy_poll && !self.xsk.tx.needs_wakeup() {
                break;
            }
            kicks += 1;
            self.own.submits += 1;
            // SAFETY: a zero-length send on our open AF_XDP socket: it only tells the kernel
            // to process the TX ring; no buffer is read.
            let rc = unsafe {
                libc::sendto(
                    self.xsk.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            if rc < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    Some(libc::EAGAIN | libc::EINTR) => {}
                    // EBUSY / ENOBUFS: the device is busy; the frames go at the next flush.
                    _ => break,
                }
            }
            // Zero-copy: the driver sends on its own after one kick. Copy mode sends a batch
            // (32 frames) per call; when a call makes no progress the device is full (veth's
            // peer ring, a busy NIC queue): stop, the rest goes at the next flush instead of
            // spinning here.
            if self.xsk.zero_copy || self.xsk.tx.outstanding() >= before {
                break;
            }
        }
        self.reclaim();
        self.merge();
        Ok(())
    }

    /// Delivers what the RX ring holds (at most `max_batch`) and refills the fill ring.
    fn rx_pass<F: FnMut(Datagram<'_>)>(&mut self, on_datagram: &mut F) -> usize {
        if self.busy_poll && self.xsk.rx.ready() == 0 {
            // Busy polling: the receive call runs the driver's queue in this thread.
            self.kick_rx();
        }
        let n = self.xsk.rx.ready().min(self.max_batch);
        let mut delivered = 0;
        for k in 0..n {
            let d = self.xsk.rx.desc_at(k);
            let (start, len) = (d.addr as usize, d.len as usize);
            if start
                .checked_add(len)
                .is_none_or(|end| end > self.xsk.umem.len)
            {
                self.own.xdp_rx_rejected += 1;
                continue;
            }
            // SAFETY: a received frame inside the UMEM (checked above); the kernel does not
            // touch it until we give it back on the fill ring, after this iteration.
            let f = unsafe { std::slice::from_raw_parts(self.xsk.umem.ptr.add(start), len) };
            match frame::parse(f) {
                Ok(u) => {
                    let Some(socket) = self.listen.iter().position(|l| {
                        l.port() == u.dst.port()
                            && l.is_ipv4() == u.dst.is_ipv4()
                            && (l.ip() == u.dst.ip() || l.ip().is_unspecified())
                    }) else {
                        self.own.xdp_rx_rejected += 1;
                        continue;
                    };
                    if u.l2.vlan.is_some() || self.learn_local {
                        self.learn(u.src.ip(), u.l2, u.dst.ip());
                    }
                    let truncated = u.payload.len() > self.recv_buf_bytes;
                    self.own.recv_truncated += u64::from(truncated);
                    delivered += 1;
                    on_datagram(Datagram {
                        socket,
                        remote: u.src,
                        data: &u.payload[..u.payload.len().min(self.recv_buf_bytes)],
                        truncated,
                    });
                }
                Err(_) => self.own.xdp_rx_rejected += 1,
            }
        }
        for k in 0..n {
            let a = self.xsk.rx.desc_at(k).addr;
            self.xsk.fill.put_addr(a - a % self.frame_bytes);
        }
        if n > 0 {
            self.xsk.rx.release(n);
            self.xsk.fill.publish();
            // Copy mode fills frames in the kernel's receive path, never from a syscall of
            // ours (the kernel leaves the flag set there): only zero-copy needs the kick.
            if self.xsk.zero_copy && self.xsk.fill.needs_wakeup() {
                self.kick_rx();
            }
        }
        self.own.datagrams_in += delivered as u64;
        self.own.xdp_rx_frames += delivered as u64;
        delivered
    }
}

// The raw pointers in `Ring` and `Mapping` point into mappings owned by the engine itself.
impl std::fmt::Debug for XdpEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpEngine")
            .field("queue_fd", &self.xsk.fd)
            .field("zero_copy", &self.xsk.zero_copy)
            .finish()
    }
}
