//! Issue 15 item 3, PJSIP: with the default `[auth]` settings plus two `[[users]]`, two
//! pjsua2 user agents (PJSIP 2.15, `tests/interop/clients/pjsua_ua.py`) register with digest,
//! one calls the other through the edge, the call is answered (200, ACK) and hung up (BYE,
//! 200); with `[auth] algorithms = ["SHA-256"]` pjsua2 registers with SHA-256; with a wrong
//! password it does not. Over the real binary on 127.0.136.128/25, ports 27000+.
//!
//! The Python with `pjsua2` is `$SIPEDGE_PJSUA_PYTHON`, else the venv `.ci/run` makes
//! ([`VENV_PYTHON`]: `python3 -m venv /opt/sipedge-pjsua && …/pip install pjsua2-python`,
//! a manylinux wheel, no compiler), else `python3`; skipped with a message when none of
//! them imports `pjsua2`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::stock_clients::{wait_bounded, TWO_USERS};
use crate::common::{temp_dir, Edge, DOMAIN};

/// Where `.ci/run` installs pjsua2 (a venv: Debian's Python refuses a system-wide pip).
const VENV_PYTHON: &str = "/opt/sipedge-pjsua/bin/python3";

/// A Python that imports `pjsua2`, or `None` (with a visible message).
fn pjsua_python() -> Option<String> {
    let candidates = std::env::var("SIPEDGE_PJSUA_PYTHON")
        .into_iter()
        .chain([VENV_PYTHON.to_string(), "python3".to_string()]);
    for python in candidates {
        let ok = Command::new(&python)
            .args(["-c", "import pjsua2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(python);
        }
    }
    eprintln!(
        "\n*** SKIPPED: no Python with `pjsua2` (pip install pjsua2-python; see .ci/run) ***\n"
    );
    None
}

/// One pjsua2 UA run by `pjsua_ua.py` (see its docstring): `role` is `register`, `callee`
/// or `caller`; SIP on `ip:27100`, RTP from `rtp_port`.
struct Ua<'a> {
    python: &'a str,
    edge: &'a Edge,
    user: &'a str,
    pass: &'a str,
    ip: &'a str,
    rtp_port: u16,
}

impl Ua<'_> {
    fn command(&self, role: &str, timeout_secs: u32, log: &Path) -> Command {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/clients/pjsua_ua.py");
        let mut c = Command::new(self.python);
        c.arg(script)
            .args(["--role", role, "--user", self.user, "--password", self.pass])
            .args(["--domain", DOMAIN, "--proxy", &self.edge.sip.to_string()])
            .args(["--ip", self.ip, "--port", "27100"])
            .args(["--rtp-port", &self.rtp_port.to_string()])
            .args(["--timeout", &timeout_secs.to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(log).unwrap())
            .stderr(Stdio::null());
        c
    }

    /// Runs `role` to its end (bounded); its exit status and the events it printed.
    fn run(&self, role: &str, dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
        let log = dir.join(format!("{}-{role}.txt", self.user));
        let mut child = self.command(role, 15, &log).args(extra).spawn().unwrap();
        let status = wait_bounded(&mut child, Duration::from_secs(20));
        (
            status.and_then(|s| s.code()),
            std::fs::read_to_string(&log).unwrap_or_default(),
        )
    }
}

/// pjsua2 on the default config: bob registers and waits, alice registers and calls him
/// (her INVITE's 407 is answered), bob answers, both see the call confirmed, alice hangs up
/// and bob sees the BYE; both exit 0. The edge holds both bindings and counts the relayed
/// ACK.
#[test]
fn pjsua_registers_and_calls_on_the_default_config() {
    let Some(python) = pjsua_python() else {
        return;
    };
    let mut edge = Edge::start_with("pj-call", "127.0.136.150", 27020, 2, "auto", TWO_USERS);
    let dir = temp_dir("pj-call-ua");
    let ua = |user, pass, ip, rtp_port| Ua {
        python: &python,
        edge: &edge,
        user,
        pass,
        ip,
        rtp_port,
    };
    let bob = ua("bob", "builder", "127.0.136.152", 27240);
    let bob_log = dir.path().join("bob-callee.txt");
    let mut callee = bob.command("callee", 18, &bob_log).spawn().unwrap();
    // Alice calls once bob's binding is there.
    assert_eq!(
        edge.await_metric("sipedge_bindings{", 1, Duration::from_secs(20)),
        1,
        "bob did not register:\n{}",
        std::fs::read_to_string(&bob_log).unwrap_or_default()
    );
    let alice = ua("alice", "wonderland", "127.0.136.151", 27260);
    let target = format!("sip:bob@{DOMAIN}");
    let (code, alice_out) = alice.run("caller", dir.path(), &["--target", &target]);
    let bob_status = wait_bounded(&mut callee, Duration::from_secs(20));
    let bob_out = std::fs::read_to_string(&bob_log).unwrap_or_default();
    assert_eq!(
        code,
        Some(0),
        "alice's call failed:\n{alice_out}\n---\n{bob_out}"
    );
    assert!(alice_out.contains("CALL CONFIRMED 200"), "{alice_out}");
    assert!(alice_out.contains("CALL DISCONNECTED"), "{alice_out}");
    assert_eq!(
        bob_status.and_then(|s| s.code()),
        Some(0),
        "bob's side failed:\n{bob_out}\n---\n{alice_out}"
    );
    assert!(bob_out.contains("INCOMING"), "{bob_out}");
    assert!(bob_out.contains("CALL CONFIRMED"), "{bob_out}");
    assert_eq!(edge.metric("sipedge_bindings{", None), 2);
    assert!(edge.metric("sipedge_auth_digest_ok_total", None) >= 3);
    assert!(edge.metric("sipedge_relay_acks_forwarded_total", None) >= 1);
    assert!(edge.terminate().success());
}

/// With `[auth] algorithms = ["SHA-256"]` pjsua2 answers the SHA-256 challenge and registers
/// (the edge accepts nothing else); with a wrong password its REGISTER ends 401 and the edge
/// holds no binding for it.
#[test]
fn pjsua_registers_with_sha256_and_not_with_a_wrong_password() {
    let Some(python) = pjsua_python() else {
        return;
    };
    let extra = format!("\n[auth]\nalgorithms = [\"SHA-256\"]\n{TWO_USERS}");
    let mut edge = Edge::start_with("pj-sha", "127.0.136.160", 27030, 1, "auto", &extra);
    let dir = temp_dir("pj-sha-ua");
    let alice = Ua {
        python: &python,
        edge: &edge,
        user: "alice",
        pass: "wonderland",
        ip: "127.0.136.161",
        rtp_port: 27280,
    };
    let (code, out) = alice.run("register", dir.path(), &[]);
    assert_eq!(code, Some(0), "alice did not register with SHA-256:\n{out}");
    assert!(out.contains("REGISTERED 200"), "{out}");
    let bob = Ua {
        user: "bob",
        pass: "not-the-password",
        ip: "127.0.136.162",
        rtp_port: 27300,
        ..alice
    };
    let (code, out) = bob.run("register", dir.path(), &[]);
    assert_eq!(code, Some(1), "a wrong password registered:\n{out}");
    assert!(out.contains("NOT REGISTERED 401"), "{out}");
    assert_eq!(edge.metric("sipedge_bindings{", None), 1);
    assert!(edge.metric("sipedge_auth_digest_failed_total", None) >= 1);
    assert!(edge.terminate().success());
}
