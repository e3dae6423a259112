//! stream-echo: the zero-work SIP-over-TCP/TLS server (issue 19's floor beside udp-echo's).
//!
//! It does only what any stream server must: accept, read what arrived on each ready
//! connection, find each message's end (`\r\n\r\n`; the generators send no body) and send an
//! answer of the same size back — the request's own header lines under a `SIP/2.0 200 OK`
//! status line, as `udp-echo --sip-ok` does, so `streamload` counts it as a refresh answered.
//! TLS: a rustls server with sipedge's crypto provider (*ring*) and versions (1.3, 1.2):
//! decrypt, answer, encrypt. No parser, no table, no timer.
//!
//! Mechanisms (`--mech`), all over an edge-triggered epoll set (mio):
//! - `write`: one `read` per ready connection until a short read (sipedge's `Streams`), one
//!   `write` system call per connection per turn;
//! - `uring-send` (default): the same reads; the turn's writes as sends on sipedge-rt's
//!   io_uring [`Engine`], submitted in the engine's next wait, the epoll fd watched by that
//!   wait — the very code sipedge runs with `io = "uring"`;
//! - `uring`: the reads too go on an io_uring of our own (`ring.rs`): one submission per
//!   turn carries every ready connection's `recv` and the previous turn's sends.
//!
//! Cheapest on this repo's 2-core loopback machine (issue 19, 1000 connections, streamload
//! refresh, same runs): `write` 4.2–4.4 µs of server CPU per refresh, `uring` 4.6,
//! `uring-send` 4.8–4.9 — the ring's wait costs per turn, and the floor's turns are small.
//!
//! One thread (`--pin` pins it). SIGINT/SIGTERM or `--duration` end it; it then prints how
//! many messages it answered.

mod conn;
// io_uring SQEs point at our buffers (each use says why it is sound).
#[allow(unsafe_code)]
mod ring;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use sipedge_rt::stream::rustls::{
    self,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    ServerConfig,
};
use sipedge_rt::{Engine, EngineConfig, IoMode, SocketOptions, WakeFd};

use crate::conn::Server;

/// How often the loop checks whether it should stop.
const STOP_POLL: Duration = Duration::from_millis(100);

/// stream-echo — answer every SIP request on a TCP or TLS connection with a same-size 200.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: SocketAddr,
    /// Transport.
    #[arg(long, value_enum, default_value = "tcp")]
    transport: Transport,
    /// TLS certificate chain (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// How connections are read and answers written.
    #[arg(long, value_enum, default_value = "uring-send")]
    mech: Mech,
    /// Pin the thread to this core.
    #[arg(long)]
    pin: Option<usize>,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    duration: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Tcp,
    Tls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mech {
    /// epoll, one `read` and one `write` per connection per turn.
    Write,
    /// epoll, one `read` per connection; sends on sipedge-rt's io_uring engine, one
    /// submission per turn (sipedge's own mechanism with `io = "uring"`).
    UringSend,
    /// epoll readiness; reads and sends as SQEs on one io_uring, one submission per turn.
    Uring,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stream-echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tls_config(cli: &Cli) -> io::Result<Arc<ServerConfig>> {
    let (Some(cert), Some(key)) = (&cli.cert, &cli.key) else {
        return Err(io::Error::other("--transport tls needs --cert and --key"));
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| io::Error::other(format!("{}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| io::Error::other(format!("{}: {e}", key.display())))?;
    let config = ServerConfig::builder_with_provider(sipedge_rt::stream::tls::crypto_provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(io::Error::other)?;
    Ok(Arc::new(config))
}

fn run(cli: &Cli) -> io::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let deadline = cli
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let done = || stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d);
    if let Some(core) = cli.pin {
        sipedge_rt::pin_current_thread(core);
    }
    let tls = match cli.transport {
        Transport::Tcp => None,
        Transport::Tls => Some(tls_config(cli)?),
    };
    let listener = sipedge_rt::stream::bind_tcp_reuseport(cli.addr, 1024)?;
    let mut server = Server::new(listener, tls)?;
    let mut ring = match cli.mech {
        Mech::Uring => Some(crate::ring::Ring::new()?),
        _ => None,
    };
    let mut engine = match cli.mech {
        Mech::Write | Mech::Uring => None,
        Mech::UringSend => {
            // The engine needs a UDP socket; this one (an ephemeral port) never sees traffic.
            let udp = sipedge_rt::bind_udp_reuseport(
                SocketAddr::new(cli.addr.ip(), 0),
                &SocketOptions::default(),
            )?;
            let mut e = Engine::new(
                IoMode::Uring,
                vec![udp],
                WakeFd::new()?,
                &EngineConfig::default(),
            )?;
            if !e.sends_streams() {
                return Err(io::Error::other(
                    "the io_uring engine cannot send streams here",
                ));
            }
            e.watch_readable(server.raw_fd());
            Some(e)
        }
    };
    eprintln!(
        "stream-echo: {:?} on {}, answers by {:?}",
        cli.transport, cli.addr, cli.mech
    );
    while !done() {
        if let Some(r) = ring.as_mut() {
            server.turn_ring(r, STOP_POLL)?;
            continue;
        }
        match engine.as_mut() {
            None => {
                server.turn(Some(STOP_POLL))?;
                server.flush_writes();
            }
            Some(e) => {
                e.wait(Some(STOP_POLL), || false, |_| {})?;
                server.complete_sends(e);
                server.turn(Some(Duration::ZERO))?;
                server.flush_on(e);
            }
        }
    }
    if let Some(e) = engine.as_mut() {
        e.flush()?;
    }
    eprintln!(
        "stream-echo: answered {} messages, accepted {} connections, {} read calls, {} write/send calls",
        server.answered, server.accepted, server.reads, server.writes
    );
    Ok(())
}
