//! A UDP echo server on one pinned core, to measure the engines against each other and
//! against a plain `recv_from`/`send_to` loop.
//!
//! ```text
//! cargo run --release -p sipedge-rt --example udp_echo -- \
//!     [--engine uring|mmsg|naive] [--addr 127.0.0.1:5070] [--seconds N] [--core C]
//!     [--max-bytes B]
//! ```
//!
//! It prints `listening addr=… engine=…` once ready, and on SIGINT (or after `--seconds`) one
//! summary line of `key=value` pairs: replies, wall seconds, replies per second, the process's
//! CPU seconds (utime + stime from `/proc/self/stat`) and CPU microseconds per reply, plus the
//! engine's counters (average receive batch, kernel submissions per reply).
#![allow(unsafe_code)]

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sipedge_rt::{
    bind_udp_reuseport, pin_current_thread, Engine, EngineConfig, IoMode, SocketOptions, WakeFd,
};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

struct Args {
    engine: String,
    addr: SocketAddr,
    seconds: Option<f64>,
    core: usize,
    max_bytes: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        engine: "uring".to_owned(),
        addr: "127.0.0.1:5070".parse().map_err(|e| format!("{e}"))?,
        seconds: None,
        core: 0,
        max_bytes: 4096,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--engine" => args.engine = value()?,
            "--addr" => args.addr = value()?.parse().map_err(|e| format!("--addr: {e}"))?,
            "--seconds" => args.seconds = Some(value()?.parse().map_err(|e| format!("--seconds: {e}"))?),
            "--core" => args.core = value()?.parse().map_err(|e| format!("--core: {e}"))?,
            "--max-bytes" => args.max_bytes = value()?.parse().map_err(|e| format!("--max-bytes: {e}"))?,
            "-h" | "--help" => {
                return Err("usage: udp_echo [--engine uring|mmsg|naive] [--addr IP:PORT] [--seconds N] [--core C] [--max-bytes B]".to_owned())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !matches!(args.engine.as_str(), "uring" | "mmsg" | "naive") {
        return Err(format!(
            "--engine must be uring, mmsg or naive, not {}",
            args.engine
        ));
    }
    Ok(args)
}

/// The process's user + system CPU time, from `/proc/self/stat` (fields 14 and 15).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // After ')': field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
    (ticks(11) + ticks(12)) as f64 / hz
}

fn install_sigint() {
    // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic, which is
    // async-signal-safe. No SA_RESTART, so a blocking wait returns with EINTR.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigint as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    install_sigint();
    let pinned = pin_current_thread(args.core);
    let deadline = args.seconds.map(|s| Duration::from_secs_f64(s.max(0.0)));
    let opts = SocketOptions {
        recv_buffer_bytes: 8 << 20,
        send_buffer_bytes: 8 << 20,
    };
    let socket = match bind_udp_reuseport(args.addr, &opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bind {}: {e}", args.addr);
            std::process::exit(1);
        }
    };
    let cpu0 = cpu_seconds();
    let (replies, started, extra) = if args.engine == "naive" {
        run_naive(socket, &args, deadline, pinned)
    } else {
        run_engine(socket, &args, deadline, pinned)
    };
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "udp_echo engine={} replies={replies} seconds={wall:.3} replies_per_sec={:.0} cpu_seconds={cpu:.2} cpu_us_per_reply={:.2}{extra}",
        args.engine,
        replies as f64 / wall.max(1e-9),
        if replies > 0 { cpu * 1e6 / replies as f64 } else { 0.0 },
    );
}

fn announce(addr: SocketAddr, engine: &str, pinned: bool, core: usize) {
    println!(
        "listening addr={addr} engine={engine} core={}",
        if pinned {
            core.to_string()
        } else {
            "unpinned".to_owned()
        }
    );
    let _ = io::stdout().flush();
}

fn stop_now(started: Instant, deadline: Option<Duration>) -> bool {
    STOP.load(Ordering::Relaxed) || deadline.is_some_and(|d| started.elapsed() >= d)
}

fn run_naive(
    socket: std::net::UdpSocket,
    args: &Args,
    deadline: Option<Duration>,
    pinned: bool,
) -> (u64, Instant, String) {
    if let Err(e) = socket
        .set_nonblocking(false)
        .and_then(|()| socket.set_read_timeout(Some(Duration::from_millis(100))))
    {
        eprintln!("socket setup: {e}");
        std::process::exit(1);
    }
    announce(args.addr, "naive", pinned, args.core);
    let started = Instant::now();
    let mut buf = vec![0u8; args.max_bytes.max(1)];
    let mut replies = 0u64;
    while !stop_now(started, deadline) {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            if socket.send_to(&buf[..n], from).is_ok() {
                replies += 1;
            }
        }
    }
    (replies, started, String::new())
}

fn run_engine(
    socket: std::net::UdpSocket,
    args: &Args,
    deadline: Option<Duration>,
    pinned: bool,
) -> (u64, Instant, String) {
    let mode = if args.engine == "uring" {
        IoMode::Uring
    } else {
        IoMode::Mmsg
    };
    let cfg = EngineConfig {
        recv_buf_bytes: args.max_bytes.max(1),
        ..EngineConfig::default()
    };
    let wake = WakeFd::new().unwrap_or_else(|e| {
        eprintln!("eventfd: {e}");
        std::process::exit(1)
    });
    let mut engine = Engine::new(mode, vec![socket], wake, &cfg).unwrap_or_else(|e| {
        eprintln!("engine: {e}");
        std::process::exit(1)
    });
    announce(args.addr, &engine.kind().to_string(), pinned, args.core);
    // Received datagrams are copied here during `wait` and echoed after it (the engine is
    // borrowed during its callback). Preallocated: no allocation per datagram.
    let mut arena: Vec<u8> = Vec::with_capacity(cfg.max_batch * cfg.recv_buf_bytes);
    let mut inbox: Vec<(usize, SocketAddr, usize, usize)> = Vec::with_capacity(cfg.max_batch);
    let started = Instant::now();
    while !stop_now(started, deadline) {
        arena.clear();
        inbox.clear();
        let waited = engine.wait(
            Some(Duration::from_millis(100)),
            || false,
            |d| {
                inbox.push((d.socket, d.remote, arena.len(), d.data.len()));
                arena.extend_from_slice(d.data);
            },
        );
        if let Err(e) = waited {
            eprintln!("wait: {e}");
            break;
        }
        for &(socket, to, start, len) in &inbox {
            engine.send(socket, to, &arena[start..start + len]);
        }
    }
    let _ = engine.flush();
    let s = engine.stats();
    let extra = format!(
        " datagrams_in={} send_drops={} send_errors={} recv_truncated={} avg_batch={:.1} submits_per_reply={:.3} wakeups={}",
        s.datagrams_in,
        s.send_drops,
        s.send_errors,
        s.recv_truncated,
        s.datagrams_in as f64 / s.recv_batches.max(1) as f64,
        s.submits as f64 / s.datagrams_out.max(1) as f64,
        s.wakeups,
    );
    (s.datagrams_out, started, extra)
}
