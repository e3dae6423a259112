//! udp-echo: sends every datagram back to its sender, nothing else. It measures the machine's
//! UDP request/response ceiling, the limit any UDP server (sipedge included) works under.
//!
//! Engines: `uring` and `mmsg` are sipedge-rt's [`Engine`] (the very I/O code sipedge's shards
//! run), `naive` is a blocking `recv_from`/`send_to` loop on one socket — two syscalls per
//! datagram, no batching. Each shard is a thread pinned to `--pin + i` with its own
//! SO_REUSEPORT socket on `--addr`. SIGINT/SIGTERM (or `--duration`) end it; it then prints
//! how many datagrams it echoed.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use sipedge_rt::{Engine, EngineConfig, IoMode, SocketOptions, WakeFd};

/// How often a shard checks whether it should stop.
const STOP_POLL: Duration = Duration::from_millis(100);
/// Socket buffers asked for (the kernel may cap them at net.core.rmem_max / wmem_max).
const SOCKET_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// Largest datagram echoed whole.
const MAX_DATAGRAM: usize = 65_535;

/// udp-echo — echo every UDP datagram back to its sender (the UDP request/response ceiling).
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: SocketAddr,
    /// I/O engine.
    #[arg(long, value_enum, default_value = "uring")]
    engine: EngineArg,
    /// Threads, each with its own SO_REUSEPORT socket.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Pin shard i to core PIN + i.
    #[arg(long)]
    pin: Option<usize>,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    duration: Option<f64>,
    /// Instead of echoing, answer every SIP request with its own headers under a
    /// `SIP/2.0 200 OK` status line (a stateless "yes" that carries the request's Via, Call-ID,
    /// CSeq and Contact back): a server that costs what an echo costs, for measuring SIP load
    /// generators (sipload, SIPp) at their own ceiling. Not with `--engine naive`.
    #[arg(long)]
    sip_ok: bool,
    /// `--engine xdp`: the interface `--addr` is on (shard i binds its queue i).
    #[arg(long, default_value = "")]
    xdp_interface: String,
    /// `--engine xdp`: ring check interval while traffic flows, µs (0: woken per packet).
    #[arg(long, default_value_t = 200)]
    xdp_poll_us: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EngineArg {
    /// io_uring (sipedge-rt).
    Uring,
    /// recvmmsg/sendmmsg + ppoll (sipedge-rt).
    Mmsg,
    /// Blocking recv_from/send_to, one datagram per syscall.
    Naive,
    /// AF_XDP (sipedge-rt's xdp engine; the UDP socket stays open as its fallback).
    Xdp,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("udp-echo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> io::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let deadline = cli
        .duration
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let opts = SocketOptions {
        recv_buffer_bytes: SOCKET_BUFFER_BYTES,
        send_buffer_bytes: SOCKET_BUFFER_BYTES,
    };
    // Bind every socket before any thread starts, so a bad address fails at once.
    let sockets = (0..cli.shards.max(1))
        .map(|_| sipedge_rt::bind_udp_reuseport(cli.addr, &opts))
        .collect::<io::Result<Vec<_>>>()?;
    let engine = cli.engine;
    let sip_ok = cli.sip_ok;
    if sip_ok && engine == EngineArg::Naive {
        return Err(io::Error::other("--sip-ok needs --engine uring or mmsg"));
    }
    let handles: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, sock)| {
            let stop = Arc::clone(&stop);
            let pin = cli.pin.map(|p| p + i);
            let xdp_interface = cli.xdp_interface.clone();
            let xdp_poll_us = cli.xdp_poll_us;
            std::thread::spawn(move || -> io::Result<u64> {
                if let Some(core) = pin {
                    sipedge_rt::pin_current_thread(core);
                }
                let done = || {
                    stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d)
                };
                let mut cfg = EngineConfig::default();
                cfg.xdp.interface = xdp_interface;
                cfg.xdp.poll_us = xdp_poll_us;
                cfg.xdp.queue = i as u32;
                match engine {
                    EngineArg::Naive => naive(sock, &done),
                    EngineArg::Uring => batched(IoMode::Uring, sock, sip_ok, &cfg, &done),
                    EngineArg::Mmsg => batched(IoMode::Mmsg, sock, sip_ok, &cfg, &done),
                    EngineArg::Xdp => batched(IoMode::Xdp, sock, sip_ok, &cfg, &done),
                }
            })
        })
        .collect();
    eprintln!(
        "udp-echo: {:?} engine, {} shard(s) on {}",
        cli.engine,
        handles.len(),
        cli.addr
    );
    let mut total = 0;
    for h in handles {
        total += h
            .join()
            .map_err(|_| io::Error::other("a shard panicked"))??;
    }
    eprintln!("udp-echo: echoed {total} datagrams");
    Ok(())
}

/// Blocking loop: one `recv_from` and one `send_to` per datagram.
fn naive(sock: UdpSocket, done: &dyn Fn() -> bool) -> io::Result<u64> {
    sock.set_nonblocking(false)?;
    sock.set_read_timeout(Some(STOP_POLL))?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut echoed = 0u64;
    while !done() {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if sock.send_to(&buf[..n], from).is_ok() {
                    echoed += 1;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(echoed)
}

/// sipedge-rt's engine: a batch of datagrams in, the same batch out in one submission.
/// Appends the answer to `req`: with `sip_ok`, a request's start line becomes
/// `SIP/2.0 200 OK` and everything after it is kept; responses and non-SIP data are echoed.
fn answer(out: &mut Vec<u8>, req: &[u8], sip_ok: bool) {
    if sip_ok && !req.starts_with(b"SIP/2.0 ") {
        if let Some(eol) = req.windows(2).position(|w| w == b"\r\n") {
            out.extend_from_slice(b"SIP/2.0 200 OK");
            out.extend_from_slice(&req[eol..]);
            return;
        }
    }
    out.extend_from_slice(req);
}

fn batched(
    mode: IoMode,
    sock: UdpSocket,
    sip_ok: bool,
    cfg: &EngineConfig,
    done: &dyn Fn() -> bool,
) -> io::Result<u64> {
    let mut engine = Engine::new(mode, vec![sock], WakeFd::new()?, cfg)?;
    eprintln!("udp-echo: shard runs {}", engine.kind());
    // Received datagrams are copied here during the callback (the engine is borrowed then),
    // and queued for sending right after it; both buffers keep their capacity.
    let mut bytes: Vec<u8> = Vec::with_capacity(cfg.max_batch * 1024);
    let mut batch: Vec<(SocketAddr, usize, usize)> = Vec::with_capacity(cfg.max_batch);
    while !done() {
        bytes.clear();
        batch.clear();
        engine.wait(
            Some(STOP_POLL),
            || false,
            |d| {
                let start = bytes.len();
                answer(&mut bytes, d.data, sip_ok);
                batch.push((d.remote, start, bytes.len()));
            },
        )?;
        for &(to, a, b) in &batch {
            if !engine.send(0, to, &bytes[a..b]) {
                engine.flush()?;
                engine.send(0, to, &bytes[a..b]);
            }
        }
    }
    engine.flush()?;
    let s = engine.stats();
    eprintln!(
        "udp-echo: {} in, {} out, {} send drops, {} submits, avg batch {:.1}",
        s.datagrams_in,
        s.datagrams_out,
        s.send_drops,
        s.submits,
        s.datagrams_in as f64 / s.recv_batches.max(1) as f64
    );
    Ok(s.datagrams_out)
}

#[cfg(test)]
mod tests {
    use super::answer;

    #[test]
    fn sip_ok_turns_a_request_into_a_200_with_its_headers() {
        let req = b"REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\nContact: <sip:a@127.0.0.1:1>\r\n\r\n";
        let mut out = Vec::new();
        answer(&mut out, req, true);
        assert!(
            out.starts_with(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n")
        );
        assert!(out.ends_with(b"Contact: <sip:a@127.0.0.1:1>\r\n\r\n"));
        let mut echo = Vec::new();
        answer(&mut echo, req, false);
        assert_eq!(echo, req);
        let mut resp = Vec::new();
        answer(&mut resp, b"SIP/2.0 200 OK\r\n\r\n", true);
        assert_eq!(resp, b"SIP/2.0 200 OK\r\n\r\n", "responses are echoed");
    }
}
