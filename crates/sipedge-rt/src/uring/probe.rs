//! Does io_uring work here, with everything the engine needs? Checked once per process.
//!
//! 1. `io_uring_setup`, trying the best setup flags first (SINGLE_ISSUER + DEFER_TASKRUN +
//!    COOP_TASKRUN + TASKRUN_FLAG, then COOP_TASKRUN + TASKRUN_FLAG, then none). Seccomp
//!    (Docker's default profile) or `kernel.io_uring_disabled` fail here.
//! 2. `IORING_FEAT_EXT_ARG` (timeouts on the wait; Linux 5.11).
//! 3. The opcodes: `RECVMSG`, `SENDMSG`, `READ`, `ASYNC_CANCEL`.
//! 4. A self-test with a real engine on a loopback socket: register a provided-buffer ring,
//!    arm a multishot `RecvMsg` (Linux 6.0), send a datagram to ourselves with `SendMsg`, and
//!    wake the wait through the eventfd `Read`.

use std::fmt;
use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::Duration;

use io_uring::{opcode, IoUring, Probe};

use super::UringEngine;
use crate::wake::WakeFd;
use crate::EngineConfig;

/// What the io_uring probe found usable on this kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UringFeatures {
    /// `IORING_SETUP_SINGLE_ISSUER` (Linux 6.0).
    pub single_issuer: bool,
    /// `IORING_SETUP_DEFER_TASKRUN` (Linux 6.1): completions are posted only when the shard
    /// waits, on its own thread.
    pub defer_taskrun: bool,
    /// `IORING_SETUP_COOP_TASKRUN` + `TASKRUN_FLAG` (Linux 5.19).
    pub coop_taskrun: bool,
    /// `IORING_FEAT_NODROP`: no completion is lost when the completion queue overflows.
    pub nodrop: bool,
    /// `IORING_FEAT_NO_IOWAIT` (Linux 6.15): waiting is not accounted as iowait.
    pub no_iowait: bool,
    /// `IORING_FEAT_RECVSEND_BUNDLE` (Linux 6.10); informational, not used yet.
    pub recvsend_bundle: bool,
    /// `IORING_FEAT_MIN_TIMEOUT` (Linux 6.12); informational, not used yet.
    pub min_timeout: bool,
}

impl UringFeatures {
    /// A ring builder with these setup flags and `cq` completion entries.
    pub(crate) fn builder(&self, cq: u32) -> io_uring::Builder {
        let mut b = IoUring::builder();
        if self.single_issuer {
            b.setup_single_issuer();
        }
        if self.defer_taskrun {
            b.setup_defer_taskrun();
        }
        if self.coop_taskrun {
            b.setup_coop_taskrun().setup_taskrun_flag();
        }
        b.setup_cqsize(cq).setup_clamp();
        b
    }
}

impl fmt::Display for UringFeatures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut setup = Vec::new();
        if self.single_issuer {
            setup.push("SINGLE_ISSUER");
        }
        if self.defer_taskrun {
            setup.push("DEFER_TASKRUN");
        }
        if self.coop_taskrun {
            setup.push("COOP_TASKRUN");
            setup.push("TASKRUN_FLAG");
        }
        if setup.is_empty() {
            setup.push("no setup flags");
        }
        write!(f, "setup {}; features EXT_ARG", setup.join("+"))?;
        for (on, name) in [
            (self.nodrop, "NODROP"),
            (self.no_iowait, "NO_IOWAIT"),
            (self.recvsend_bundle, "RECVSEND_BUNDLE"),
            (self.min_timeout, "MIN_TIMEOUT"),
        ] {
            if on {
                write!(f, ", {name}")?;
            }
        }
        f.write_str("; multishot RecvMsg + provided-buffer ring + SendMsg + eventfd Read work")
    }
}

/// Checks that io_uring works here with everything the engine needs. `Err(reason)` says why
/// not, e.g. seccomp forbids `io_uring_setup` (Docker) or the kernel is too old.
pub fn probe_uring() -> Result<(), String> {
    probe_uring_features().map(|_| ())
}

/// Like [`probe_uring`], and tells which optional features were found. The probe runs once
/// per process; later calls return the first answer.
///
/// It runs on a short-lived thread of its own: closing a ring makes the kernel queue exit
/// work to every thread that used it, with a signal-like notification that interrupts (with
/// `EINTR`) a blocking syscall of that thread shortly afterwards. Only the probe thread sees it.
pub fn probe_uring_features() -> Result<UringFeatures, String> {
    static ANSWER: OnceLock<Result<UringFeatures, String>> = OnceLock::new();
    ANSWER
        .get_or_init(|| {
            std::thread::Builder::new()
                .name("io_uring-probe".to_owned())
                .spawn(run_probe)
                .map_err(|e| format!("could not start the probe thread: {e}"))?
                .join()
                .unwrap_or_else(|_| Err("the io_uring probe panicked".to_owned()))
        })
        .clone()
}

fn run_probe() -> Result<UringFeatures, String> {
    let tiers = [
        UringFeatures {
            single_issuer: true,
            defer_taskrun: true,
            coop_taskrun: true,
            ..UringFeatures::default()
        },
        UringFeatures {
            coop_taskrun: true,
            ..UringFeatures::default()
        },
        UringFeatures::default(),
    ];
    let mut first_error = None;
    for tier in tiers {
        match check_tier(tier) {
            Ok(found) => return Ok(found),
            Err(e) => {
                tracing::debug!(setup = %tier, error = %e, "io_uring probe tier failed");
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or_else(|| "io_uring probe failed".to_owned()))
}

fn check_tier(mut f: UringFeatures) -> Result<UringFeatures, String> {
    let ring = f.builder(16).build(8).map_err(|e| {
        format!("io_uring_setup failed: {e} (seccomp, e.g. Docker's default profile, kernel.io_uring_disabled, or a kernel without io_uring)")
    })?;
    let p = ring.params();
    if !p.is_feature_ext_arg() {
        return Err("the kernel lacks IORING_FEAT_EXT_ARG (needs Linux 5.11 or later)".to_owned());
    }
    f.nodrop = p.is_feature_nodrop();
    f.no_iowait = p.is_feature_no_iowait();
    f.recvsend_bundle = p.is_feature_recvsend_bundle();
    f.min_timeout = p.is_feature_min_timeout();
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("IORING_REGISTER_PROBE failed: {e}"))?;
    for (code, name) in [
        (opcode::RecvMsg::CODE, "RECVMSG"),
        (opcode::SendMsg::CODE, "SENDMSG"),
        (opcode::Read::CODE, "READ"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("the kernel does not support IORING_OP_{name}"));
        }
    }
    drop(ring);
    self_test(&f)?;
    Ok(f)
}

/// Runs a small engine against itself on loopback.
fn self_test(f: &UringFeatures) -> Result<(), String> {
    const PAYLOAD: &[u8] = b"sipedge io_uring probe";
    let sock = ["127.0.0.1:0", "[::1]:0"]
        .iter()
        .find_map(|a| UdpSocket::bind(a).ok())
        .ok_or("no loopback address to run the io_uring self-test on")?;
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    let to: SocketAddr = sock.local_addr().map_err(|e| e.to_string())?;
    let wake = WakeFd::new().map_err(|e| format!("eventfd: {e}"))?;
    let waker = wake.waker();
    let cfg = EngineConfig {
        recv_slots: 4,
        recv_buf_bytes: 256,
        send_slots: 2,
        max_batch: 4,
        ..EngineConfig::default()
    };
    let mut engine = UringEngine::new(f, vec![sock], wake, &cfg)
        .map_err(|(e, _, _)| format!("building the ring failed: {e}"))?;
    let fail = |what: &str, e: std::io::Error| format!("{what}: {e}");
    if !engine.send(0, to, PAYLOAD) {
        return Err("no send slot".to_owned());
    }
    let mut received = false;
    for _ in 0..20 {
        engine
            .wait(Some(Duration::from_millis(50)), || false, &mut |d| {
                received |= d.data == PAYLOAD && d.remote == to && !d.truncated;
            })
            .map_err(|e| fail("io_uring_enter", e))?;
        if received {
            break;
        }
    }
    if engine.stats().datagrams_out != 1 {
        return Err(format!("SendMsg did not complete ({:?})", engine.stats()));
    }
    if !received {
        return Err("multishot RecvMsg with a provided-buffer ring received nothing (needs Linux 6.0 or later)".to_owned());
    }
    // The eventfd read: announce a sleep, wake ourselves, and expect the wait to end on it.
    if engine.wake.prepare_sleep(|| false) {
        waker.wake();
    }
    for _ in 0..20 {
        engine
            .wait(Some(Duration::from_millis(50)), || false, &mut |_| {})
            .map_err(|e| fail("io_uring_enter", e))?;
        if engine.stats().wakeups > 0 {
            return Ok(());
        }
    }
    Err("the eventfd Read never completed".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_and_names_what_it_found() {
        match probe_uring_features() {
            Ok(f) => {
                let text = f.to_string();
                assert!(text.contains("EXT_ARG"), "{text}");
                // Every tier that passes was self-tested; the answer is cached.
                assert_eq!(probe_uring_features(), Ok(f));
                assert_eq!(probe_uring(), Ok(()));
                eprintln!("io_uring probe: {text}");
            }
            Err(reason) => {
                assert!(!reason.is_empty());
                eprintln!("io_uring unavailable: {reason}");
            }
        }
    }
}
