//! `--transport tcp`: each UA keeps one persistent TCP connection to the target (issue 19's
//! "REGISTER refreshes over N persistent connections"), behind the same interface as the UDP
//! [`Engine`] so the runner does not care: [`Io`].
//!
//! Sends are appended to the UA's connection buffer and written at the next `wait`/`flush`
//! (one `write` per connection); replies are framed by Content-Length
//! ([`sipedge_rt::stream::Framer`]) and handed out as datagrams of the UA's index.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use sipedge_rt::stream::{Frame, Framer};
use sipedge_rt::{Datagram, Engine, EngineStats};

/// Largest reply framed.
const MAX_MESSAGE: usize = 64 * 1024;

/// The generator's I/O: the UDP engine, or persistent TCP connections.
// One per generator, built once: boxing the engine would add a hop to every send.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Io {
    Udp(Engine),
    Tcp(TcpIo),
}

impl From<Engine> for Io {
    fn from(e: Engine) -> Io {
        Io::Udp(e)
    }
}

impl Io {
    pub(crate) fn send(&mut self, ua: usize, to: SocketAddr, data: &[u8]) -> bool {
        match self {
            Io::Udp(e) => e.send(ua, to, data),
            Io::Tcp(t) => t.send(ua, data),
        }
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match self {
            Io::Udp(e) => e.flush(),
            Io::Tcp(t) => t.flush(),
        }
    }

    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        has_pending: impl Fn() -> bool,
        mut on_datagram: impl FnMut(Datagram<'_>),
    ) -> io::Result<usize> {
        match self {
            Io::Udp(e) => e.wait(timeout, has_pending, on_datagram),
            Io::Tcp(t) => t.wait(timeout, &mut on_datagram),
        }
    }

    pub(crate) fn kind(&self) -> String {
        match self {
            Io::Udp(e) => e.kind().to_string(),
            Io::Tcp(_) => "tcp".into(),
        }
    }

    pub(crate) fn stats(&self) -> &EngineStats {
        match self {
            Io::Udp(e) => e.stats(),
            Io::Tcp(t) => &t.stats,
        }
    }
}

struct Conn {
    s: TcpStream,
    framer: Framer,
    out: Vec<u8>,
}

/// One persistent connection per UA.
pub(crate) struct TcpIo {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    target: SocketAddr,
    rbuf: Box<[u8]>,
    stats: EngineStats,
}

impl std::fmt::Debug for TcpIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpIo")
            .field("connections", &self.conns.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl TcpIo {
    /// Connects `streams` (blocking connects, then nonblocking); returns the UAs' local
    /// addresses too.
    pub(crate) fn new(
        target: SocketAddr,
        streams: Vec<std::net::TcpStream>,
    ) -> io::Result<(TcpIo, Vec<SocketAddr>)> {
        let poll = Poll::new()?;
        let mut conns = Vec::with_capacity(streams.len());
        let mut locals = Vec::with_capacity(streams.len());
        for (i, s) in streams.into_iter().enumerate() {
            s.set_nodelay(true)?;
            s.set_nonblocking(true)?;
            locals.push(s.local_addr()?);
            let mut s = TcpStream::from_std(s);
            poll.registry()
                .register(&mut s, Token(i), Interest::READABLE)?;
            conns.push(Conn {
                s,
                framer: Framer::new(MAX_MESSAGE),
                out: Vec::new(),
            });
        }
        Ok((
            TcpIo {
                poll,
                events: Events::with_capacity(1024),
                conns,
                target,
                rbuf: vec![0; 64 * 1024].into_boxed_slice(),
                stats: EngineStats::default(),
            },
            locals,
        ))
    }

    fn send(&mut self, ua: usize, data: &[u8]) -> bool {
        match self.conns.get_mut(ua) {
            Some(c) => {
                c.out.extend_from_slice(data);
                true
            }
            None => {
                self.stats.send_drops += 1;
                false
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        for c in &mut self.conns {
            if c.out.is_empty() {
                continue;
            }
            match c.s.write(&c.out) {
                Ok(n) => {
                    c.out.drain(..n);
                    self.stats.datagrams_out += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    self.stats.send_errors += 1;
                    c.out.clear();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(io::Error::new(e.kind(), format!("connection closed: {e}")));
                    }
                }
            }
        }
        Ok(())
    }

    fn wait(
        &mut self,
        timeout: Option<Duration>,
        on_datagram: &mut dyn FnMut(Datagram<'_>),
    ) -> io::Result<usize> {
        self.flush()?;
        self.stats.submits += 1;
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(e),
        }
        let mut delivered = 0;
        let target = self.target;
        for ev in self.events.iter() {
            let ua = ev.token().0;
            let Some(c) = self.conns.get_mut(ua) else {
                continue;
            };
            // Edge-triggered: read until it would block.
            loop {
                let n = match c.s.read(&mut self.rbuf) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            format!("UA {ua}: the server closed the connection"),
                        ))
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                let stats = &mut self.stats;
                let r = c.framer.push(&self.rbuf[..n], &mut |f| {
                    if let Frame::Message(m) = f {
                        delivered += 1;
                        stats.datagrams_in += 1;
                        on_datagram(Datagram {
                            socket: ua,
                            remote: target,
                            data: m,
                            truncated: false,
                        });
                    }
                });
                if let Err(e) = r {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("UA {ua}: {e}"),
                    ));
                }
            }
        }
        if delivered > 0 {
            self.stats.recv_batches += 1;
        }
        Ok(delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_split_and_pipelined_come_out_whole_for_their_ua() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"PING");
            let r = b"SIP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok";
            let both = [r.as_slice(), r].concat();
            s.write_all(&both[..10]).unwrap();
            std::thread::sleep(Duration::from_millis(20));
            s.write_all(&both[10..]).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        });
        let s = std::net::TcpStream::connect(target).unwrap();
        let (t, locals) = TcpIo::new(target, vec![s]).unwrap();
        assert_eq!(locals.len(), 1);
        let mut io = Io::Tcp(t);
        assert!(io.send(0, target, b"PING"));
        let mut got = Vec::new();
        for _ in 0..50 {
            io.wait(
                Some(Duration::from_millis(20)),
                || false,
                |d| got.push((d.socket, d.data.to_vec())),
            )
            .unwrap();
            if got.len() == 2 {
                break;
            }
        }
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(ua, m)| *ua == 0 && m.ends_with(b"ok")));
        assert_eq!(io.kind(), "tcp");
        server.join().unwrap();
    }
}
