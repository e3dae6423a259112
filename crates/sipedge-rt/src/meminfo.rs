//! A socket's receive-queue fill and kernel drop count, in one `getsockopt(SO_MEMINFO)`
//! (Linux ≥ 3.9): what a shard measures its pressure from (issue 17). For UDP, `SIOCINQ`
//! only gives the size of the next datagram, so the queue's bytes come from here.

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
}
