//! Stream sockets: each shard's SO_REUSEPORT listener, and nonblocking outgoing connects.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};

use socket2::{Domain, Protocol, Socket, Type};

/// Binds a nonblocking TCP listener with `SO_REUSEPORT` and `SO_REUSEADDR` (`IPV6_V6ONLY`
/// for IPv6), listening with `backlog`: every shard binds its own on the same address and
/// the kernel spreads connections over them by their 4-tuple.
pub fn bind_tcp_reuseport(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_cloexec(true)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Starts a nonblocking connect to `remote` from `from`'s IP (any port), so the peer sees
/// the edge's listen address; a wildcard or other-family `from` lets the kernel choose.
pub(crate) fn connect_from(from: SocketAddr, remote: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(remote),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_cloexec(true)?;
    socket.set_nonblocking(true)?;
    if !from.ip().is_unspecified() && from.is_ipv4() == remote.is_ipv4() {
        socket.bind(&SocketAddr::new(from.ip(), 0).into())?;
    }
    match socket.connect(&remote.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}
