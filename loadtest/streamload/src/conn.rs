//! One client connection: nonblocking TCP (edge-triggered by mio), optionally TLS, one
//! REGISTER in flight at a time.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcp};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use socket2::{Domain, Protocol, Socket, Type};

use crate::cli::{Cli, Mode};
use crate::sip;

/// A response this connection got.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// The answer to the connection's first REGISTER (a new binding).
    pub(crate) first: bool,
    pub(crate) latency: Duration,
}

/// What a readiness event led to.
#[derive(Debug)]
pub(crate) enum Step {
    Continue,
    Responses(Vec<Answer>),
    /// The connection is gone: `true` when it closed itself after its handshake
    /// (handshake mode), `false` when the peer closed it or it failed.
    Closed(bool),
}

#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) sock: mio::net::TcpStream,
    tls: Option<rustls::ClientConnection>,
    local: Option<SocketAddr>,
    user: usize,
    connected: bool,
    newly_connected: bool,
    cseq: u32,
    sent_at: Option<Instant>,
    answered_first: bool,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
}

impl Conn {
    pub(crate) fn open(
        cli: &Cli,
        i: usize,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> io::Result<Conn> {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s.set_nonblocking(true)?;
        s.set_tcp_nodelay(true)?;
        s.bind(&SocketAddr::from((cli.source_for(i), 0)).into())?;
        match s.connect(&cli.target.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let std: StdTcp = s.into();
        let tls = match tls {
            Some(cfg) => Some(
                rustls::ClientConnection::new(
                    Arc::clone(cfg),
                    ServerName::IpAddress(cli.target.ip().into()),
                )
                .map_err(io::Error::other)?,
            ),
            None => None,
        };
        Ok(Conn {
            sock: mio::net::TcpStream::from_std(std),
            tls,
            local: None,
            user: cli.first_user + i,
            connected: false,
            newly_connected: false,
            cseq: 0,
            sent_at: None,
            answered_first: false,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
        })
    }

    /// Whether the connection completed since the last call.
    pub(crate) fn take_connected(&mut self) -> bool {
        std::mem::take(&mut self.newly_connected)
    }

    pub(crate) fn on_ready(&mut self, cli: &Cli, measuring: bool) -> Step {
        let _ = measuring;
        if !self.connected {
            if let Ok(Some(_)) | Err(_) = self.sock.take_error() {
                return Step::Closed(false);
            }
            match self.sock.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Step::Continue,
                Err(_) => return Step::Closed(false),
            }
            self.connected = true;
            self.newly_connected = true;
            self.local = self.sock.local_addr().ok();
            match (cli.mode, self.tls.is_some()) {
                (Mode::Handshake, false) => return Step::Closed(true),
                (Mode::Handshake, true) => {}
                _ => self.queue_register(cli),
            }
        }
        let mut answers = Vec::new();
        if let Err(closed) = self.read_all() {
            return Step::Closed(closed && self.handshake_done(cli));
        }
        if cli.mode == Mode::Handshake && self.handshake_done(cli) {
            return Step::Closed(true);
        }
        loop {
            match sip::next_response(&self.rbuf) {
                None => break,
                Some(Err(e)) => {
                    eprintln!("conn {}: {e}", self.user);
                    return Step::Closed(false);
                }
                Some(Ok((status, len))) => {
                    self.rbuf.drain(..len);
                    if status == 0 {
                        continue; // a CRLF pong
                    }
                    if (100..200).contains(&status) {
                        continue;
                    }
                    let latency = self.sent_at.take().map(|t| t.elapsed()).unwrap_or_default();
                    let first = !self.answered_first;
                    self.answered_first = true;
                    answers.push(Answer {
                        status,
                        first,
                        latency,
                    });
                    if cli.mode == Mode::Refresh {
                        self.queue_register(cli);
                    }
                }
            }
        }
        if self.flush().is_err() {
            return Step::Closed(false);
        }
        if answers.is_empty() {
            Step::Continue
        } else {
            Step::Responses(answers)
        }
    }

    fn handshake_done(&self, _cli: &Cli) -> bool {
        self.tls.as_ref().is_some_and(|t| !t.is_handshaking())
    }

    fn queue_register(&mut self, cli: &Cli) {
        let Some(local) = self.local else { return };
        self.cseq += 1;
        let mut msg = Vec::with_capacity(512);
        sip::register(cli, self.user, self.cseq, local, &mut msg);
        self.sent_at = Some(Instant::now());
        match &mut self.tls {
            Some(t) => {
                let _ = t.writer().write_all(&msg);
            }
            None => self.wbuf.extend_from_slice(&msg),
        }
    }

    /// Reads until the socket would block. `Err(true)`: closed cleanly by the peer;
    /// `Err(false)`: failed.
    fn read_all(&mut self) -> Result<(), bool> {
        let mut tmp = [0u8; 16384];
        loop {
            match &mut self.tls {
                Some(t) => match t.read_tls(&mut self.sock) {
                    Ok(0) => return Err(true),
                    Ok(_) => {
                        if t.process_new_packets().is_err() {
                            return Err(false);
                        }
                        loop {
                            match t.reader().read(&mut tmp) {
                                Ok(0) => break,
                                Ok(n) => self.rbuf.extend_from_slice(&tmp[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(_) => return Err(false),
                },
                None => match self.sock.read(&mut tmp) {
                    Ok(0) => return Err(true),
                    Ok(n) => self.rbuf.extend_from_slice(&tmp[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(_) => return Err(false),
                },
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.tls {
            Some(t) => {
                while t.wants_write() {
                    match t.write_tls(&mut self.sock) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            None => {
                while !self.wbuf.is_empty() {
                    match self.sock.write(&self.wbuf) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => {
                            self.wbuf.drain(..n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }
    }
}
