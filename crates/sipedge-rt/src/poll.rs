//! `ppoll(2)` over a set of our descriptors, shared by the engines that block on sockets
//! (`mmsg`, and `xdp` on its XSK and fallback sockets).

use std::io;
use std::time::Duration;

/// Blocks until one of `fds` is ready or `timeout` passes (`None`: no limit). Clears every
/// `revents` first; an interrupted wait (EINTR) counts as a return with nothing ready.
pub(crate) fn ppoll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<()> {
    for p in fds.iter_mut() {
        p.revents = 0;
    }
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `fds` is a live, exclusively borrowed array of `fds.len()` pollfds; `ts_ptr`
    // is null or points at `ts`, alive across the call; no signal mask is passed.
    let rc = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null(),
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    #[test]
    fn ppoll_reports_a_readable_socket_and_times_out_on_a_quiet_one() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut fds = [libc::pollfd {
            fd: a.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        super::ppoll(&mut fds, Some(std::time::Duration::from_millis(10))).expect("ppoll");
        assert_eq!(fds[0].revents & libc::POLLIN, 0, "nothing to read yet");
        b.send_to(b"x", a.local_addr().expect("addr"))
            .expect("send");
        super::ppoll(&mut fds, Some(std::time::Duration::from_secs(5))).expect("ppoll");
        assert_ne!(fds[0].revents & libc::POLLIN, 0, "the datagram is readable");
    }
}
