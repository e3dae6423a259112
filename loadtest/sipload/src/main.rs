//! sipload: sipedge's SIP load generator. See `loadtest/README.md`.
//!
//! | module | what |
//! | --- | --- |
//! | `cli` | command line |
//! | `scenario` | the `Scenario` trait and one module per scenario (options, register/refresh/register-auth, call, keepalive) |
//! | `runner` | the loop: pacing, sends, retransmissions, reply matching, one `Engine` |
//! | `pacer` | open-loop rate control |
//! | `retx` | RFC 3261 retransmission schedule and timer queues |
//! | `txn` | transactions in flight, keyed by the top Via branch |
//! | `stats`, `report` | counters, latency histogram, JSON and text output |
//! | `flood` | issue 17's overload offer: prebuilt new REGISTERs, replies counted by status code |
//! | `procstat` | CPU seconds of a process from `/proc` |
//! | `tcp` | `--transport tcp`: one persistent connection per UA, behind the engine's interface |

mod cli;
#[cfg(test)]
mod fake_tests;
mod flood;
mod pacer;
mod procstat;
mod report;
mod retx;
mod runner;
#[cfg(test)]
mod runner_tests;
mod scenario;
mod stats;
mod tcp;
mod txn;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use sipedge_rt::{Engine, EngineConfig, IoMode, WakeFd};

use crate::cli::{Cli, Io};
use crate::report::{EngineReport, Report};
use crate::retx::RetxPolicy;
use crate::runner::{PhaseSpec, Runner, Setup};
use crate::stats::PhaseReport;

/// Generator engine sizes: replies are small, bursts are large.
const RECV_SLOTS: usize = 8192;
const RECV_BUF_BYTES: usize = 4096;
const SEND_SLOTS: usize = 32 * 1024;
const MAX_BATCH: usize = 1024;
/// Most new requests started in one loop turn (the rest stays owed to the next turn).
const MAX_BURST: u64 = 4096;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipload: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `k`-th source address from `base` (IPv4: 127.0.0.1, 127.0.0.2, …).
fn source_ip(base: IpAddr, k: u32) -> IpAddr {
    match base {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a).wrapping_add(k))),
        IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a).wrapping_add(k.into()))),
    }
}

/// One socket per UA on an ephemeral port, UAs spread round robin over the source addresses.
fn bind_uas(uas: usize, sources: u32, base: IpAddr) -> io::Result<Vec<UdpSocket>> {
    (0..uas)
        .map(|i| {
            let ip = source_ip(base, (i as u64 % u64::from(sources)) as u32);
            let s = UdpSocket::bind((ip, 0)).map_err(|e| {
                let hint = if e.raw_os_error() == Some(24) {
                    " (raise `ulimit -n`)"
                } else {
                    ""
                };
                io::Error::new(e.kind(), format!("binding UA {i} on {ip}: {e}{hint}"))
            })?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .collect()
}

/// `--transport tcp`: one connection per UA to `target`, UAs spread round robin over the
/// source addresses.
fn connect_uas(
    uas: usize,
    sources: u32,
    base: IpAddr,
    target: SocketAddr,
) -> Result<Vec<std::net::TcpStream>, String> {
    (0..uas)
        .map(|i| {
            let ip = source_ip(base, (i as u64 % u64::from(sources)) as u32);
            let s = socket2::Socket::new(
                socket2::Domain::for_address(target),
                socket2::Type::STREAM,
                None,
            )
            .and_then(|s| s.bind(&SocketAddr::new(ip, 0).into()).map(|()| s))
            .and_then(|s| s.connect(&target.into()).map(|()| s))
            .map_err(|e| format!("connecting UA {i} from {ip} to {target}: {e}"))?;
            Ok(s.into())
        })
        .collect()
}

/// Distinguishes this run's Call-IDs from those of earlier runs against the same server.
fn run_id() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (secs as u32).rotate_left(12) ^ std::process::id()
}

/// Runs the scenario's setup flows (closed loop, --outstanding in flight), if it has any.
fn run_setup(cli: &Cli, runner: &mut Runner) -> Result<Option<PhaseReport>, String> {
    let flows = runner.scenario_mut().setup_flows();
    if flows == 0 {
        return Ok(None);
    }
    let spec = PhaseSpec {
        rate: 0.0,
        outstanding: cli.outstanding,
        duration: Duration::from_secs_f64(cli.setup_seconds),
        max_requests: flows,
    };
    let srv0 = procstat::total_cpu_seconds(&cli.server_pid);
    let out = runner
        .run_phase(&spec)
        .map_err(|e| format!("engine: {e}"))?;
    let srv1 = procstat::total_cpu_seconds(&cli.server_pid);
    runner.scenario_mut().end_setup();
    let p = PhaseReport::new(
        &out.stats,
        None,
        Some(cli.outstanding),
        out.send_time,
        None,
        srv0.zip(srv1).map(|(a, b)| b - a),
    );
    if !cli.json {
        eprintln!(
            "setup: {} of {} flows succeeded ({} failed, {} timed out) in {:.1} s",
            p.successes,
            flows,
            p.failures,
            p.timeouts + p.unfinished,
            p.send_seconds
        );
    }
    if p.successes < flows {
        eprintln!(
            "sipload: warning: {} setup flows did not succeed",
            flows - p.successes
        );
    }
    Ok(Some(p))
}

fn run(cli: &Cli) -> Result<(), String> {
    cli.validate()?;
    if let Some(core) = cli.pin {
        if !sipedge_rt::pin_current_thread(core) {
            eprintln!("sipload: could not pin to core {core}; running unpinned");
        }
    }
    let base = cli.source_base.unwrap_or(match cli.target {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    });
    if cli.transport == cli::Transport::Tcp {
        let streams = connect_uas(cli.uas, cli.sources, base, cli.target)?;
        let (io, locals) = tcp::TcpIo::new(cli.target, streams).map_err(|e| e.to_string())?;
        return run_with(cli, tcp::Io::Tcp(io), locals);
    }
    let sockets = bind_uas(cli.uas, cli.sources, base).map_err(|e| e.to_string())?;
    let locals = sockets
        .iter()
        .map(UdpSocket::local_addr)
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| e.to_string())?;
    let mode = match cli.io {
        Io::Auto => IoMode::Auto,
        Io::Uring => IoMode::Uring,
        Io::Mmsg => IoMode::Mmsg,
        Io::Xdp => IoMode::Xdp,
    };
    let cfg = EngineConfig {
        recv_slots: RECV_SLOTS,
        recv_buf_bytes: RECV_BUF_BYTES,
        send_slots: SEND_SLOTS,
        max_batch: MAX_BATCH,
        xdp: sipedge_rt::XdpConfig {
            interface: cli.xdp_interface.clone(),
            poll_us: cli.xdp_poll_us,
            ..sipedge_rt::XdpConfig::default()
        },
    };
    let wake = WakeFd::new().map_err(|e| format!("eventfd: {e}"))?;
    let engine = Engine::new(mode, sockets, wake, &cfg).map_err(|e| format!("engine: {e}"))?;
    if cli.scenario == scenario::Kind::Flood {
        return run_flood(cli, engine, &locals);
    }
    run_with(cli, tcp::Io::Udp(engine), locals)
}

/// Runs the scenario over `engine`, whose UA `i` has the address `locals[i]`.
fn run_with(cli: &Cli, engine: tcp::Io, locals: Vec<SocketAddr>) -> Result<(), String> {
    let users = match &cli.users {
        Some(path) => scenario::Users::from_file(path).map_err(|e| e.to_string())?,
        None => scenario::Users::generated(&cli.password),
    };
    let params = scenario::Params {
        uas: cli.uas,
        target: cli.target,
        ruri: cli.ruri.clone(),
        domain: cli.domain.clone(),
        aors: cli.aors,
        expires: cli.expires,
        users,
        run_id: run_id(),
        ping_interval_s: cli.ping_interval,
    };
    let scenario = scenario::build(cli.scenario, &params);
    let scenario_name = scenario.name().to_string();
    let setup = Setup {
        target: cli.target,
        locals,
        policy: RetxPolicy::new(
            Duration::from_millis(cli.t1_ms),
            Duration::from_millis(cli.t2_ms),
        ),
        count_any_reply: cli.count_any_reply,
        drain: Duration::from_millis(cli.drain_ms.saturating_add(cli.hold_ms)),
        max_burst: MAX_BURST,
        hold: Duration::from_millis(cli.hold_ms),
    };
    let mut runner = Runner::new(engine, scenario, setup);
    if let Some(t) = cli.register_target {
        runner.set_target(t);
    }
    let setup_report = run_setup(cli, &mut runner)?;
    runner.set_target(cli.target);
    if setup_report.is_some() && cli.setup_pause_ms > 0 {
        std::thread::sleep(Duration::from_millis(cli.setup_pause_ms));
    }

    let (mode_name, rates, secs) = match (&cli.ramp, cli.rate) {
        (Some(r), _) => ("ramp", r.rates(), cli.step_seconds),
        (None, 0.0) => ("closed", vec![0.0], cli.duration),
        (None, rate) => ("open", vec![rate], cli.duration),
    };
    let mut phases = Vec::new();
    let mut budget = cli.max_requests;
    let mut misses = 0;
    for rate in rates {
        if budget == 0 {
            break;
        }
        let spec = PhaseSpec {
            rate,
            outstanding: cli.outstanding,
            duration: Duration::from_secs_f64(secs),
            max_requests: budget,
        };
        let gen0 = procstat::cpu_seconds(None);
        let srv0 = procstat::total_cpu_seconds(&cli.server_pid);
        let out = runner
            .run_phase(&spec)
            .map_err(|e| format!("engine: {e}"))?;
        let gen1 = procstat::cpu_seconds(None);
        let srv1 = procstat::total_cpu_seconds(&cli.server_pid);
        if !cli.server_pid.is_empty() && srv1.is_none() {
            eprintln!("sipload: the server process is gone");
        }
        let delta = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| b - a);
        let mut p = PhaseReport::new(
            &out.stats,
            (rate > 0.0).then_some(rate),
            (rate == 0.0).then_some(cli.outstanding),
            out.send_time,
            delta(gen0, gen1),
            delta(srv0, srv1),
        );
        p.scenario = runner.scenario_mut().phase_extra();
        budget = budget.saturating_sub(p.sent);
        if mode_name == "ramp" && !cli.json {
            eprintln!("{}", report::phase_line(&p));
        }
        misses = if p.sustained { 0 } else { misses + 1 };
        phases.push(p);
        if mode_name == "ramp" && misses >= cli.ramp_patience {
            break;
        }
    }
    let sustained = || phases.iter().filter(|p| p.sustained);
    let best_sustained_rate = sustained().filter_map(|p| p.offered_rate).reduce(f64::max);
    let best = match mode_name {
        "ramp" => sustained().max_by(|a, b| a.achieved_rps.total_cmp(&b.achieved_rps)),
        _ => phases.first(),
    }
    .cloned();
    let engine = runner.engine();
    let report = Report {
        scenario: scenario_name,
        target: cli.target.to_string(),
        mode: mode_name.into(),
        uas: cli.uas,
        sources: cli.sources,
        t1_ms: cli.t1_ms,
        count_any_reply: cli.count_any_reply,
        server_pid: cli.server_pid.clone(),
        setup: setup_report,
        phases,
        best_sustained_rate: (mode_name == "ramp")
            .then_some(best_sustained_rate)
            .flatten(),
        best,
        engine: EngineReport::new(engine.kind(), engine.stats()),
    };
    if cli.json {
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        println!("{text}");
    } else {
        print!("{}", report::human(&report));
    }
    Ok(())
}

/// `flood` (`flood.rs`): exits non-zero when the generator offered less than 95 % of --rate.
fn run_flood(cli: &Cli, mut engine: Engine, locals: &[SocketAddr]) -> Result<(), String> {
    if cli.rate <= 0.0 {
        return Err("flood is open loop: --rate must be positive".into());
    }
    let spec = flood::FloodSpec {
        target: cli.target,
        domain: cli.domain.clone(),
        rate: cli.rate,
        duration: Duration::from_secs_f64(cli.duration),
        drain: Duration::from_millis(cli.drain_ms),
        aors: cli.aors,
        expires: cli.expires,
        run_id: run_id(),
        max_burst: MAX_BURST,
        method: cli.flood_method,
    };
    let r = flood::run(&spec, &mut engine, locals, &cli.server_pid)
        .map_err(|e| format!("engine: {e}"))?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&r).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", flood::human(&r));
    }
    if !r.valid {
        return Err(format!(
            "achieved {:.0}/s of {:.0}/s offered (< {:.0} %): the generator, not the server, \
             limited this run",
            r.achieved_rate,
            r.offered_rate,
            100.0 * flood::MIN_ACHIEVED
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_count_up_from_the_base() {
        let base = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(source_ip(base, 0), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(
            source_ip(base, 255),
            IpAddr::V4(Ipv4Addr::new(127, 0, 1, 0))
        );
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(source_ip(v6, 0), v6);
    }

    #[test]
    fn uas_get_distinct_ports_spread_over_the_sources() {
        let s = bind_uas(6, 3, IpAddr::V4(Ipv4Addr::LOCALHOST)).expect("loopback binds");
        let addrs: Vec<SocketAddr> = s.iter().map(|s| s.local_addr().expect("bound")).collect();
        let ips: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
        assert_eq!(
            ips,
            [
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.3",
                "127.0.0.1",
                "127.0.0.2",
                "127.0.0.3"
            ]
        );
        let mut ports: Vec<(IpAddr, u16)> = addrs.iter().map(|a| (a.ip(), a.port())).collect();
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 6);
    }
}
