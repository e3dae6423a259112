//! streamload: SIP load over TCP and TLS connections (issue 19's measurements). See
//! `loadtest/README.md`.
//!
//! | mode | what it measures |
//! | --- | --- |
//! | `refresh` | opens `--conns` persistent connections, registers one AoR on each, then refreshes them closed-loop (one REGISTER in flight per connection) for `--secs`: refreshes/s and latency |
//! | `idle` | opens `--conns` connections (at `--open-rate`/s), registers one AoR on each, then holds them idle for `--secs` (the server's memory per connection is read by the caller) |
//! | `handshake` | keeps `--conns` connections being opened, handshaken (TLS) and closed for `--secs`: handshakes/s |
//!
//! One thread, one `mio::Poll`; connections bind round-robin to `--sources` local addresses so
//! that neither the ephemeral port range nor a per-IP connection cap limits the run.

mod cli;
mod conn;
mod insecure;
mod procstat;
mod sip;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use mio::{Events, Interest, Poll, Token};

use crate::cli::{Cli, Mode};
use crate::conn::{Conn, Step};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("streamload: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Counters of one run.
#[derive(Debug, Default)]
struct Tally {
    connected: u64,
    registered: u64,
    refreshed: u64,
    handshakes: u64,
    failed_responses: u64,
    closed_by_peer: u64,
    connect_errors: u64,
}

fn run(cli: &Cli) -> Result<(), String> {
    let tls = cli.tls_config()?;
    let mut poll = Poll::new().map_err(|e| e.to_string())?;
    let mut events = Events::with_capacity(4096);
    let mut conns: Vec<Option<Conn>> = (0..cli.conns).map(|_| None).collect();
    let mut tally = Tally::default();
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let open_gap = Duration::from_secs_f64(1.0 / cli.open_rate.max(1) as f64);
    let mut opened = 0usize;
    let mut next_open = start;
    // Phase 1 ends when every connection has registered once (refresh, idle) or at once
    // (handshake); phase 2 then runs `--secs`.
    let setup_deadline = start + Duration::from_secs(cli.setup_secs);
    let mut measure_start: Option<Instant> = None;
    let mut refreshed_at_start = 0;
    let mut cpu_at_start = 0.0;
    loop {
        let now = Instant::now();
        // Open connections, paced.
        while opened < cli.conns && now >= next_open {
            match Conn::open(cli, opened, tls.as_ref()) {
                Ok(mut c) => {
                    poll.registry()
                        .register(
                            &mut c.sock,
                            Token(opened),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .map_err(|e| e.to_string())?;
                    conns[opened] = Some(c);
                }
                Err(e) => {
                    tally.connect_errors += 1;
                    if tally.connect_errors < 5 {
                        eprintln!("connect {opened}: {e}");
                    }
                }
            }
            opened += 1;
            next_open += open_gap;
        }
        let all_open = opened == cli.conns;
        if measure_start.is_none() {
            let ready = match cli.mode {
                Mode::Handshake => all_open,
                Mode::Refresh | Mode::Idle => {
                    all_open && tally.registered + tally.connect_errors >= cli.conns as u64
                }
            };
            if ready || now >= setup_deadline {
                measure_start = Some(now);
                refreshed_at_start = tally.refreshed;
                cpu_at_start = procstat::cpu_seconds(&cli.server_pids);
                hist.reset();
                tally.handshakes = 0;
                eprintln!(
                    "setup done in {:.1}s: connected {} registered {} connect errors {}",
                    (now - start).as_secs_f64(),
                    tally.connected,
                    tally.registered,
                    tally.connect_errors
                );
            }
        }
        if let Some(m) = measure_start {
            if now >= m + Duration::from_secs(cli.secs) {
                let secs = (now - m).as_secs_f64();
                let cpu = procstat::cpu_seconds(&cli.server_pids) - cpu_at_start;
                report(cli, &tally, refreshed_at_start, secs, cpu, &hist, &conns);
                return Ok(());
            }
        }
        let timeout = if opened < cli.conns {
            next_open.saturating_duration_since(now)
        } else {
            Duration::from_millis(50)
        };
        poll.poll(&mut events, Some(timeout))
            .map_err(|e| e.to_string())?;
        let measuring = measure_start.is_some();
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(c) = conns.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            let step = c.on_ready(cli, measuring);
            match step {
                Step::Continue => {}
                Step::Responses(list) => {
                    for r in list {
                        account(cli, &mut tally, &mut hist, r);
                    }
                }
                Step::Closed(handshaken) => {
                    if handshaken {
                        tally.handshakes += 1;
                    } else {
                        tally.closed_by_peer += 1;
                    }
                    let _ = poll.registry().deregister(&mut c.sock);
                    conns[i] = None;
                    if cli.mode == Mode::Handshake {
                        // Replace it at once: keep `--conns` handshakes going.
                        if let Ok(mut n) = Conn::open(cli, i, tls.as_ref()) {
                            if poll
                                .registry()
                                .register(
                                    &mut n.sock,
                                    Token(i),
                                    Interest::READABLE | Interest::WRITABLE,
                                )
                                .is_ok()
                            {
                                conns[i] = Some(n);
                            }
                        } else {
                            tally.connect_errors += 1;
                        }
                    }
                }
            }
            if let Some(c) = conns.get_mut(i).and_then(Option::as_mut) {
                if c.take_connected() {
                    tally.connected += 1;
                }
            }
        }
    }
}

fn account(cli: &Cli, tally: &mut Tally, hist: &mut hdrhistogram::Histogram<u64>, r: conn::Answer) {
    if r.status != 200 {
        tally.failed_responses += 1;
        if tally.failed_responses <= 3 {
            eprintln!("unexpected response {} (first: {})", r.status, r.first);
        }
        return;
    }
    if r.first {
        tally.registered += 1;
    } else {
        tally.refreshed += 1;
    }
    if cli.mode == Mode::Refresh {
        let _ = hist.record(r.latency.as_micros().max(1) as u64);
    }
}

fn report(
    cli: &Cli,
    tally: &Tally,
    refreshed_at_start: u64,
    secs: f64,
    cpu: f64,
    hist: &hdrhistogram::Histogram<u64>,
    conns: &[Option<Conn>],
) {
    let open = conns.iter().filter(|c| c.is_some()).count();
    match cli.mode {
        Mode::Refresh => {
            let n = tally.refreshed - refreshed_at_start;
            println!(
                "refresh transport={} conns={} secs={:.1} refreshes={} rate={:.0}/s server_cpu_s={cpu:.2} server_us_per_op={:.2} p50_us={} p99_us={} failed={} closed_by_peer={} open_at_end={}",
                cli.transport, cli.conns, secs, n, n as f64 / secs, per_op(cpu, n),
                hist.value_at_quantile(0.5), hist.value_at_quantile(0.99),
                tally.failed_responses, tally.closed_by_peer, open
            );
        }
        Mode::Idle => println!(
            "idle transport={} conns={} registered={} open_at_end={} closed_by_peer={} connect_errors={}",
            cli.transport, cli.conns, tally.registered, open, tally.closed_by_peer, tally.connect_errors
        ),
        Mode::Handshake => println!(
            "handshake transport={} parallel={} secs={:.1} handshakes={} rate={:.0}/s server_cpu_s={cpu:.2} server_us_per_op={:.2} connect_errors={}",
            cli.transport, cli.conns, secs, tally.handshakes,
            tally.handshakes as f64 / secs, per_op(cpu, tally.handshakes), tally.connect_errors
        ),
    }
}

/// Server CPU microseconds per operation.
fn per_op(cpu_secs: f64, ops: u64) -> f64 {
    if ops == 0 {
        0.0
    } else {
        cpu_secs * 1e6 / ops as f64
    }
}
