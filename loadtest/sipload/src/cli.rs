//! Command line.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use clap::{Parser, ValueEnum};

use crate::retx::{DEFAULT_T1_MS, DEFAULT_T2_MS};
use crate::scenario::Kind;

/// sipload — sipedge's SIP load generator: many UAs on their own source ports (and
/// addresses), batched UDP through io_uring or recvmmsg/sendmmsg on one core, open-loop rate
/// control, RFC 3261 retransmissions, latency histograms.
#[derive(Debug, Parser)]
#[command(version)]
pub(crate) struct Cli {
    /// Scenario to run (see loadtest/README.md).
    #[arg(value_enum, default_value = "options")]
    pub(crate) scenario: Kind,
    /// Where to send (must be a loopback address unless --allow-non-loopback).
    #[arg(long, default_value = "127.0.0.1:5060")]
    pub(crate) target: SocketAddr,
    /// Where the setup flows go (the bindings `refresh`/`keepalive` register, the callees of
    /// `call`), when not --target: e.g. register the callees on edge A of a cluster and call
    /// them through edge B (issue 20). UDP only; loopback unless --allow-non-loopback.
    #[arg(long)]
    pub(crate) register_target: Option<SocketAddr>,
    /// Wait this long after the setup before the measured phases (e.g. for a cluster's
    /// write-behind to reach Redis), ms.
    #[arg(long, default_value_t = 0)]
    pub(crate) setup_pause_ms: u64,
    /// Request-URI (default `sip:<target>` for options, `sip:<domain>` for REGISTER).
    #[arg(long)]
    pub(crate) ruri: Option<String>,
    /// SIP domain of the AoRs (their host part, the REGISTER Request-URI).
    #[arg(long, default_value = "localhost")]
    pub(crate) domain: String,
    /// AoRs (bindings): how many `refresh` and `keepalive` register in their setup (default one
    /// per UA); for `register` and `register-auth` a bound after which AoRs are reused
    /// (default: a new AoR per flow, or one per line of --users).
    #[arg(long)]
    pub(crate) aors: Option<u64>,
    /// Registration lifetime asked for (Expires), seconds.
    #[arg(long, default_value_t = 3600)]
    pub(crate) expires: u32,
    /// register-auth: user list, one `user password` per line (default: users sl0, sl1, …
    /// with --password).
    #[arg(long)]
    pub(crate) users: Option<std::path::PathBuf>,
    /// register-auth: password of the generated users.
    #[arg(long, default_value = crate::scenario::DEFAULT_PASSWORD)]
    pub(crate) password: String,
    /// keepalive: the edge's ping interval, seconds (pings per UA are reported per interval).
    #[arg(long, default_value_t = 30.0)]
    pub(crate) ping_interval: f64,
    /// Longest the setup (registering bindings or callees) may take, seconds.
    #[arg(long, default_value_t = 300.0)]
    pub(crate) setup_seconds: f64,
    /// Offered requests per second (open loop); 0 = closed loop: as fast as possible with
    /// --outstanding requests in flight.
    #[arg(long, default_value_t = 10_000.0)]
    pub(crate) rate: f64,
    /// Requests kept in flight in closed-loop mode (--rate 0).
    #[arg(long, default_value_t = 256)]
    pub(crate) outstanding: u64,
    /// Sending time of a run without --ramp, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub(crate) duration: f64,
    /// Most new requests in the whole run (all ramp steps together).
    #[arg(long, default_value_t = u64::MAX)]
    pub(crate) max_requests: u64,
    /// Step the offered rate: START:STEP:MAX requests/s, each step --step-seconds long; stops
    /// at MAX or after --ramp-patience steps in a row that were not sustained.
    #[arg(long, value_name = "START:STEP:MAX")]
    pub(crate) ramp: Option<Ramp>,
    /// Length of one ramp step, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) step_seconds: f64,
    /// Unsustained ramp steps in a row that end the ramp.
    #[arg(long, default_value_t = 1)]
    pub(crate) ramp_patience: u32,
    /// flood: what is flooded — new REGISTERs, or new INVITEs to unregistered users.
    #[arg(long, value_enum, default_value = "register")]
    pub(crate) flood_method: crate::flood::FloodMethod,
    /// call: each caller hangs up (BYE) this long after its INVITE's 200, ms (0: at once),
    /// so calls set up before a load are established through it and hung up during it.
    /// The phase's drain is extended by it.
    #[arg(long, default_value_t = 0)]
    pub(crate) hold_ms: u64,
    /// Wait at most this long after a phase's sending ends for its outstanding requests
    /// (retransmitting as RFC 3261 says); what is still open then counts as unfinished.
    #[arg(long, default_value_t = 2000)]
    pub(crate) drain_ms: u64,
    /// Number of UAs, each with its own socket and source port.
    #[arg(long, default_value_t = 1000)]
    pub(crate) uas: usize,
    /// Spread the UAs over this many source addresses: 127.0.0.1, 127.0.0.2, … (IPv4
    /// loopback), or only the --source-base address when 1.
    #[arg(long, default_value_t = 1)]
    pub(crate) sources: u32,
    /// First source address (default 127.0.0.1, or ::1 for an IPv6 target).
    #[arg(long)]
    pub(crate) source_base: Option<IpAddr>,
    /// RFC 3261 T1, ms (Timer E starts here and doubles to T2; Timer F = 64 × T1).
    #[arg(long, default_value_t = DEFAULT_T1_MS)]
    pub(crate) t1_ms: u64,
    /// RFC 3261 T2, ms.
    #[arg(long, default_value_t = DEFAULT_T2_MS)]
    pub(crate) t2_ms: u64,
    /// Count any datagram coming back that carries one of our branches (an echo of our own
    /// request included) as a reply: for measuring against udp-echo.
    #[arg(long)]
    pub(crate) count_any_reply: bool,
    /// I/O engine.
    #[arg(long, value_enum, default_value = "uring")]
    pub(crate) io: Io,
    /// Transport: one UDP socket per UA, or one persistent TCP connection per UA (`--io`
    /// then does not apply).
    #[arg(long, value_enum, default_value = "udp")]
    pub(crate) transport: Transport,
    /// `--io xdp`: the interface the UAs' address is on (the generator's AF_XDP socket binds
    /// its queue 0; the first request of each UA goes through its UDP socket, until the
    /// server's MAC is learned from its answer).
    #[arg(long, default_value = "")]
    pub(crate) xdp_interface: String,
    /// `--io xdp`: ring check interval while traffic flows, µs (0: woken per packet).
    #[arg(long, default_value_t = 200)]
    pub(crate) xdp_poll_us: u32,
    /// Pin the generator thread to this CPU core.
    #[arg(long)]
    pub(crate) pin: Option<usize>,
    /// Report the CPU seconds these processes (the server: one PID, or a comma-separated list
    /// for a server that forks workers) used during each phase.
    #[arg(long, value_delimiter = ',')]
    pub(crate) server_pid: Vec<u32>,
    /// Print the report as JSON instead of the human-readable summary.
    #[arg(long)]
    pub(crate) json: bool,
    /// Allow a target outside the loopback range.
    #[arg(long)]
    pub(crate) allow_non_loopback: bool,
}

/// `--transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Transport {
    /// UDP.
    Udp,
    /// One persistent TCP connection per UA.
    Tcp,
}

/// `--io`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Io {
    /// io_uring if usable, else recvmmsg/sendmmsg.
    Auto,
    /// io_uring (fail if unusable).
    Uring,
    /// recvmmsg/sendmmsg + ppoll (reads every socket each turn: slow with many UAs).
    Mmsg,
    /// AF_XDP on `--xdp-interface` (sipedge-rt's xdp engine), UDP sockets as fallback.
    Xdp,
}

/// `--ramp START:STEP:MAX`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ramp {
    pub(crate) start: f64,
    pub(crate) step: f64,
    pub(crate) max: f64,
}

impl Ramp {
    /// The offered rate of every step, in order.
    pub(crate) fn rates(&self) -> Vec<f64> {
        let mut out = Vec::new();
        let mut r = self.start;
        while r <= self.max + 1e-9 {
            out.push(r);
            r += self.step;
        }
        out
    }
}

impl FromStr for Ramp {
    type Err = String;

    fn from_str(s: &str) -> Result<Ramp, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [start, step, max] = parts[..] else {
            return Err(format!("`{s}`: expected START:STEP:MAX"));
        };
        let num = |v: &str| {
            v.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or_else(|| format!("`{v}` is not a positive rate"))
        };
        let ramp = Ramp {
            start: num(start)?,
            step: num(step)?,
            max: num(max)?,
        };
        if ramp.max < ramp.start {
            return Err(format!("`{s}`: MAX is below START"));
        }
        Ok(ramp)
    }
}

impl Cli {
    /// Checks what clap cannot.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !self.target.ip().is_loopback() && !self.allow_non_loopback {
            return Err(format!(
                "--target {} is not a loopback address (use --allow-non-loopback)",
                self.target
            ));
        }
        if let Some(t) = self.register_target {
            if !t.ip().is_loopback() && !self.allow_non_loopback {
                return Err(format!(
                    "--register-target {t} is not a loopback address (use --allow-non-loopback)"
                ));
            }
            if self.transport == Transport::Tcp {
                return Err("--register-target needs --transport udp".into());
            }
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return Err("--rate must be ≥ 0".into());
        }
        if self.rate == 0.0 && self.ramp.is_some() {
            return Err("--ramp is open loop; it cannot be combined with --rate 0".into());
        }
        if self.uas == 0 || self.sources == 0 || self.outstanding == 0 || self.t1_ms == 0 {
            return Err("--uas, --sources, --outstanding and --t1-ms must be at least 1".into());
        }
        if self.sources > 1
            && (self.target.is_ipv6() || self.source_base.is_some_and(|b| b.is_ipv6()))
        {
            return Err("--sources > 1 needs IPv4: IPv6 has a single loopback address".into());
        }
        if !(self.duration > 0.0 && self.step_seconds > 0.0 && self.setup_seconds > 0.0) {
            return Err("--duration, --step-seconds and --setup-seconds must be positive".into());
        }
        if !(self.ping_interval.is_finite() && self.ping_interval > 0.0) {
            return Err("--ping-interval must be positive".into());
        }
        if self.aors == Some(0) {
            return Err("--aors must be at least 1".into());
        }
        if self.scenario == Kind::Call && self.uas < 2 {
            return Err("call needs at least 2 UAs (callees and callers)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramp_parses_and_lists_its_steps() {
        let r: Ramp = "20000:20000:100000".parse().expect("valid");
        assert_eq!(
            r.rates(),
            vec![20000.0, 40000.0, 60000.0, 80000.0, 100000.0]
        );
        let r: Ramp = "1000:300:2000".parse().expect("valid");
        assert_eq!(r.rates(), vec![1000.0, 1300.0, 1600.0, 1900.0]);
        for bad in ["", "1:2", "1:2:3:4", "a:1:2", "0:1:2", "5:1:2", "1:-1:2"] {
            assert!(bad.parse::<Ramp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_remote_targets_and_contradictions() {
        let cli = |args: &[&str]| {
            let mut v = vec!["sipload"];
            v.extend_from_slice(args);
            Cli::try_parse_from(v).expect("parses").validate()
        };
        assert!(cli(&[]).is_ok());
        assert!(cli(&["--target", "[::1]:5060"]).is_ok());
        assert!(cli(&["--target", "192.0.2.1:5060"]).is_err());
        assert!(cli(&["--target", "192.0.2.1:5060", "--allow-non-loopback"]).is_ok());
        assert!(cli(&["--register-target", "127.0.0.2:5060"]).is_ok());
        assert!(cli(&["--register-target", "192.0.2.1:5060"]).is_err());
        assert!(cli(&["--register-target", "127.0.0.2:5060", "--transport", "tcp"]).is_err());
        assert!(cli(&["--rate", "0", "--ramp", "1:1:2"]).is_err());
        assert!(cli(&["--uas", "0"]).is_err());
        assert!(cli(&["--target", "[::1]:5060", "--sources", "2"]).is_err());
        assert!(cli(&["--sources", "200"]).is_ok());
        assert!(cli(&["call", "--uas", "1"]).is_err());
        assert!(cli(&["refresh", "--aors", "0"]).is_err());
        assert!(cli(&["register-auth", "--aors", "10"]).is_ok());
        let many = Cli::try_parse_from(["sipload", "--server-pid", "10,11,12"]).expect("parses");
        assert_eq!(many.server_pid, [10, 11, 12]);
    }
}
