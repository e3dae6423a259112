//! UDP sockets shared by the shards through SO_REUSEPORT, and CPU pinning.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// Kernel socket buffer sizes asked for by the configuration. `0` keeps the system default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketOptions {
    /// `SO_RCVBUF` wanted, in bytes.
    pub recv_buffer_bytes: usize,
    /// `SO_SNDBUF` wanted, in bytes.
    pub send_buffer_bytes: usize,
}

/// Socket buffer sizes the kernel actually granted, in bytes, as `getsockopt` reports them
/// (Linux reports twice the usable payload size to account for its bookkeeping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketBuffers {
    /// `SO_RCVBUF`.
    pub recv_bytes: usize,
    /// `SO_SNDBUF`.
    pub send_bytes: usize,
}

/// Binds a nonblocking UDP socket with `SO_REUSEPORT` and `SO_REUSEADDR` (and `IPV6_V6ONLY`
/// for IPv6; `IP_PKTINFO` / `IPV6_RECVPKTINFO` for a wildcard address, so the engines can
/// answer each peer from the address it reached), so every shard can bind its own socket to the same address and port and the
/// kernel spreads senders over them by their 4-tuple.
///
/// Buffer sizes: `SO_RCVBUFFORCE` / `SO_SNDBUFFORCE` are tried first (they exceed
/// `net.core.rmem_max` / `wmem_max` but need `CAP_NET_ADMIN`), then the plain options. When the
/// kernel grants less than asked (capped by `rmem_max`), a warning names the sysctl to raise.
/// The granted sizes can be read back with [`socket_buffer_sizes`].
pub fn bind_udp_reuseport(addr: SocketAddr, opts: &SocketOptions) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_cloexec(true)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    if addr.ip().is_unspecified() {
        // A wildcard bind answers from the address it was reached on (crate::pktinfo).
        crate::pktinfo::enable(&socket, addr)?;
    }
    if opts.recv_buffer_bytes > 0 {
        set_buffer(
            &socket,
            libc::SO_RCVBUFFORCE,
            libc::SO_RCVBUF,
            opts.recv_buffer_bytes,
        )?;
    }
    if opts.send_buffer_bytes > 0 {
        set_buffer(
            &socket,
            libc::SO_SNDBUFFORCE,
            libc::SO_SNDBUF,
            opts.send_buffer_bytes,
        )?;
    }
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    let got = socket_buffer_sizes(&socket)?;
    // Linux doubles the value set; it granted what was asked iff it reports at least that.
    check_granted(
        "receive",
        "net.core.rmem_max",
        opts.recv_buffer_bytes,
        got.recv_bytes,
        addr,
    );
    check_granted(
        "send",
        "net.core.wmem_max",
        opts.send_buffer_bytes,
        got.send_bytes,
        addr,
    );
    tracing::debug!(%addr, recv_bytes = got.recv_bytes, send_bytes = got.send_bytes, "bound UDP socket");
    Ok(socket)
}

fn check_granted(what: &str, sysctl: &str, asked: usize, got: usize, addr: SocketAddr) {
    if asked > 0 && got < asked {
        tracing::warn!(
            %addr,
            asked,
            granted = got / 2,
            "the kernel granted a smaller {what} buffer than configured; raise {sysctl} or run with CAP_NET_ADMIN"
        );
    }
}

fn set_buffer(
    socket: &Socket,
    force: libc::c_int,
    plain: libc::c_int,
    bytes: usize,
) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX / 2);
    if setsockopt_int(socket, force, value).is_ok() {
        return Ok(());
    }
    setsockopt_int(socket, plain, value)
}

fn setsockopt_int(socket: &Socket, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: the fd is open (borrowed from `socket`), `value` is a live c_int and the length
    // passed is its size; SOL_SOCKET buffer options take exactly an int.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The receive and send buffer sizes the kernel granted to `socket`.
pub fn socket_buffer_sizes(socket: &UdpSocket) -> io::Result<SocketBuffers> {
    let s = socket2::SockRef::from(socket);
    Ok(SocketBuffers {
        recv_bytes: s.recv_buffer_size()?,
        send_bytes: s.send_buffer_size()?,
    })
}

/// Pins the calling thread to CPU `core`. Returns false (and logs a warning) when that is
/// impossible, e.g. the core is outside the process's allowed set; never fails the caller.
pub fn pin_current_thread(core: usize) -> bool {
    // core_affinity indexes a fixed-size cpu_set_t; an id past it would panic there.
    let ok = core < libc::CPU_SETSIZE as usize
        && core_affinity::set_for_current(core_affinity::CoreId { id: core });
    if !ok {
        tracing::warn!(
            core,
            "could not pin the thread to its core; running unpinned"
        );
    }
    ok
}

/// Gives the calling thread a file-descriptor table of its own (`unshare(CLONE_FILES)`): a
/// copy of the process's table as it is now; descriptors opened later by this thread are
/// invisible to the others, and theirs to it. A shard calls it first thing, before its
/// io_uring exists (the ring's io-wq workers share their creator's table), so:
/// - a connection's descriptor lives only in the shard that owns it (issue 19: connections
///   are read and written by their shard only; the kernel now enforces it);
/// - accept/close on one shard never take another shard's table lock;
/// - `RLIMIT_NOFILE` bounds each table (the limit is checked per table), so a process with
///   N shards holds up to N × the limit in connections.
///
/// Descriptors opened before the call stay valid in both tables (the same open files).
pub fn own_fd_table() -> io::Result<()> {
    // SAFETY: unshare(2) takes flags by value and touches only the calling thread's own
    // task state; CLONE_FILES needs no privilege.
    let rc = unsafe { libc::unshare(libc::CLONE_FILES) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Cores this process may run on (its affinity mask), at least 1. Call it before pinning:
/// a pinned thread sees only its own core.
pub fn available_cores() -> usize {
    match core_affinity::get_core_ids() {
        Some(ids) if !ids.is_empty() => ids.len(),
        _ => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_with_its_own_fd_table_hides_what_it_opens() {
        use std::os::fd::AsRawFd;
        // A number no other test uses (the tests' tables stay far below it), under the
        // soft RLIMIT_NOFILE (1024 on many CI hosts).
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the struct it is given.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        let high = i32::try_from(lim.rlim_cur.min(4001)).unwrap_or(4001) - 1;
        // SAFETY (all fcntl/dup2/close below): they take descriptor numbers by value and only
        // query, duplicate or close them.
        let valid = |fd: i32| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
        let before = std::fs::File::open("/dev/null").expect("open /dev/null");
        let before_fd = before.as_raw_fd();
        let (opened, wait_opened) = std::sync::mpsc::channel();
        let (checked, wait_checked) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            own_fd_table().expect("unshare CLONE_FILES");
            let before_ok = valid(before_fd);
            let mine = std::fs::File::open("/dev/null").expect("open in the thread");
            let dup = unsafe { libc::dup2(mine.as_raw_fd(), high) };
            opened
                .send((before_ok, dup == high && valid(high)))
                .expect("send");
            wait_checked.recv().expect("recv");
            unsafe { libc::close(high) };
        });
        let (before_ok, high_ok) = wait_opened.recv().expect("thread opened");
        let seen_here = valid(high);
        checked.send(()).expect("send");
        t.join().expect("thread");
        assert!(
            before_ok,
            "a descriptor opened before the unshare stays valid"
        );
        assert!(high_ok, "the thread holds its descriptor");
        assert!(
            !seen_here,
            "the thread's descriptor leaked into the shared table"
        );
        drop(before);
    }

    #[test]
    fn two_sockets_share_one_port_and_get_their_buffers() {
        let opts = SocketOptions {
            recv_buffer_bytes: 1 << 20,
            send_buffer_bytes: 1 << 19,
        };
        let a = bind_udp_reuseport("127.0.1.1:0".parse().expect("literal"), &opts)
            .expect("bind the first socket");
        let addr = a.local_addr().expect("local addr");
        let b = bind_udp_reuseport(addr, &opts).expect("bind the second socket to the same port");
        assert_eq!(b.local_addr().expect("local addr"), addr);
        for s in [&a, &b] {
            let got = socket_buffer_sizes(s).expect("getsockopt");
            // As root, SO_RCVBUFFORCE grants the full size (reported doubled); otherwise at
            // least the default.
            if is_root() {
                assert_eq!(got.recv_bytes, 2 << 20);
                assert_eq!(got.send_bytes, 2 << 19);
            } else {
                assert!(got.recv_bytes > 0 && got.send_bytes > 0);
            }
        }
        // Nonblocking: an empty socket answers WouldBlock instead of hanging the test.
        let mut buf = [0u8; 16];
        let err = a.recv_from(&mut buf).expect_err("nothing was sent");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn binds_ipv6_only() {
        let Ok(s) = bind_udp_reuseport(
            "[::1]:0".parse().expect("literal"),
            &SocketOptions::default(),
        ) else {
            return; // no IPv6 loopback on this machine
        };
        assert!(socket2::SockRef::from(&s).only_v6().expect("getsockopt"));
    }

    #[test]
    fn pins_to_an_allowed_core_and_refuses_a_missing_one() {
        let n = available_cores();
        assert!(n >= 1);
        let first = core_affinity::get_core_ids()
            .and_then(|ids| ids.first().map(|c| c.id))
            .unwrap_or(0);
        let t = std::thread::spawn(move || {
            (
                pin_current_thread(first),
                pin_current_thread(1000),
                pin_current_thread(100_000),
                available_cores(),
            )
        });
        let (ok, bad, huge, seen) = t.join().expect("thread");
        assert!(ok);
        assert!(!bad && !huge);
        assert_eq!(seen, 1, "a pinned thread sees one core");
    }

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
}
