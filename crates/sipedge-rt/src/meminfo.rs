//! A socket's receive-queue fill and kernel drop count, in one `getsockopt(SO_MEMINFO)`
//! (Linux ≥ 3.9): what a shard measures its pressure from (issue 17). For UDP, `SIOCINQ`
//! only gives the size of the next datagram, so the queue's bytes come from here.
//!
//! [`socket_last_read_stamp`] (`SIOCGSTAMPNS`): when the kernel received the datagram the
//! socket's reader took last — with the clock now, how long that datagram waited in the
//! queue (its sojourn, what CoDel measures at dequeue).

use std::io;
use std::os::fd::RawFd;

/// `SO_MEMINFO` (asm-generic/socket.h; the same on x86 and arm).
const SO_MEMINFO: libc::c_int = 55;
/// `SK_MEMINFO_VARS`.
const VARS: usize = 9;

/// What `SO_MEMINFO` reports for one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketMemInfo {
    /// Bytes queued for reading (`SK_MEMINFO_RMEM_ALLOC`, kernel accounting: truesize).
    pub rmem_alloc: u32,
    /// The receive buffer's size (`SK_MEMINFO_RCVBUF`).
    pub rcvbuf: u32,
    /// Datagrams the kernel dropped because the queue was full (`SK_MEMINFO_DROPS`,
    /// the counter `SO_RXQ_OVFL` reports per message).
    pub drops: u32,
}

/// Reads `SO_MEMINFO` of the socket `fd`.
pub fn socket_meminfo(fd: RawFd) -> io::Result<SocketMemInfo> {
    let mut v = [0u32; VARS];
    let mut len = std::mem::size_of_val(&v) as libc::socklen_t;
    // SAFETY: `v` is a writable buffer of `len` bytes that outlives the call; the kernel
    // writes at most `len` bytes and updates `len`; a bad fd is reported as an error.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_MEMINFO,
            v.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(SocketMemInfo {
        rmem_alloc: v[0],
        rcvbuf: v[1],
        drops: v[8],
    })
}

/// `SIOCGSTAMPNS` (asm-generic/sockios.h): the last read datagram's receive time.
const SIOCGSTAMPNS: libc::c_ulong = 0x8907;

/// The kernel receive time (`CLOCK_REALTIME`, since the Unix epoch) of the datagram last
/// read from socket `fd` (`SIOCGSTAMPNS`); `None` when nothing was read since timestamps
/// were switched on. The first call switches them on for the socket (`SOCK_TIMESTAMP`:
/// every read then records its datagram's receive time, and the kernel timestamps
/// received packets — one clock read per packet, host-wide, while such a socket exists).
/// Works whatever reads the socket (`recvmsg`, `recvmmsg`, io_uring `RecvMsg`: all go
/// through the protocol's `recvmsg`); not for AF_XDP, whose frames bypass the socket.
pub fn socket_last_read_stamp(fd: RawFd) -> io::Result<Option<std::time::Duration>> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a writable `struct timespec` that outlives the call, which is what
    // SIOCGSTAMPNS writes; a bad fd or a non-socket is reported as an error.
    let r = unsafe { libc::ioctl(fd, SIOCGSTAMPNS as _, &mut ts as *mut libc::timespec) };
    if r != 0 {
        let e = io::Error::last_os_error();
        // ENOENT: no datagram read since timestamps were switched on.
        return match e.raw_os_error() {
            Some(libc::ENOENT) => Ok(None),
            _ => Err(e),
        };
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0).min(999_999_999);
    Ok(Some(std::time::Duration::new(secs, nanos)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn queue_and_drops_are_seen() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let before = socket_meminfo(rx.as_raw_fd()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(before.rmem_alloc, 0);
        assert!(before.rcvbuf > 0);
        let to = rx.local_addr().unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..100_000 {
            if tx.send_to(&[0u8; 1000], to).is_err() {
                break;
            }
            if socket_meminfo(rx.as_raw_fd()).map_or(0, |m| m.drops) > 0 {
                break;
            }
        }
        let after = socket_meminfo(rx.as_raw_fd()).unwrap_or_else(|e| panic!("{e}"));
        assert!(after.rmem_alloc > 0);
        assert!(after.drops > 0, "{after:?}");
    }

    /// The stamp is the receive time of the datagram read last: one that waited 50 ms
    /// in the queue shows a sojourn of at least 50 ms at its read.
    #[test]
    fn the_last_read_datagrams_wait_is_seen() {
        use std::time::{Duration, SystemTime, UNIX_EPOCH};
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let fd = rx.as_raw_fd();
        // Switches timestamps on; nothing read yet.
        let _ = socket_last_read_stamp(fd).unwrap_or_else(|e| panic!("{e}"));
        let to = rx.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 16];
        let since_epoch = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
        };
        // Reads one datagram; how long it waited in the queue.
        let read_waited = |buf: &mut [u8]| {
            let _ = rx.recv(buf);
            let now = since_epoch();
            let stamp = socket_last_read_stamp(fd)
                .unwrap_or_else(|e| panic!("{e}"))
                .unwrap_or_else(|| panic!("a datagram was read"));
            now.saturating_sub(stamp)
        };
        // The kernel switches packet stamps on host-wide in a deferred work item: wait
        // until a probe that queued 5 ms shows it.
        for _ in 0..200 {
            let _ = tx.send_to(b"probe", to);
            std::thread::sleep(Duration::from_millis(5));
            let _ = rx.recv(&mut buf);
            let stamp = socket_last_read_stamp(fd)
                .ok()
                .flatten()
                .unwrap_or_default();
            if since_epoch().saturating_sub(stamp) >= Duration::from_millis(5) {
                break;
            }
        }
        let _ = tx.send_to(b"old", to);
        std::thread::sleep(Duration::from_millis(50));
        let waited = read_waited(&mut buf);
        assert!(
            (Duration::from_millis(50)..Duration::from_secs(5)).contains(&waited),
            "{waited:?}"
        );
        // A fresh one: a short wait.
        let _ = tx.send_to(b"new", to);
        assert!(read_waited(&mut buf) < Duration::from_millis(40));
    }
}
