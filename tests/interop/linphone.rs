//! Issue 15 item 3, Linphone: with the default `[auth]` settings plus two `[[users]]`,
//! Linphone 5.1 (`linphone-daemon` from Debian's `linphone-cli`) registers, calls another
//! Linphone through the edge, the call is answered (200, ACK) and hung up (BYE); with
//! `[auth] algorithms = ["SHA-256"]` it registers with SHA-256 (RFC 8760); with a wrong
//! password it does not register. Over the real binary on 127.0.136.128/25, ports 27000+.
//!
//! How Linphone runs headless here: `linphone-daemon --pipe NAME --config RC` with HOME in a
//! temp dir, driven over its unix socket (`/tmp/NAME`) by its text protocol
//! (`register-status`, `call`, `call-status`, `terminate`, `quit`). The account is in the
//! linphonerc (`[proxy_0]` with `reg_route` = the edge, `[auth_info_0]`): an account added
//! with the daemon's `register` command is not the default one, so its calls skip the edge.
//! `$HOME/.local/share/linphone` must exist: without it the core cannot open its database,
//! never finishes starting and never opens a SIP socket (why a first headless attempt
//! failed). No sound card is needed: the call reaches StreamsRunning with none.
//! Skipped with a message when `linphone-daemon` is not installed (`.ci/run` installs it).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::stock_clients::{installed, wait_bounded, TWO_USERS};
use crate::common::{temp_dir, Edge, DOMAIN};

/// Every wait for Linphone or the edge is bounded by this.
const LIMIT: Duration = Duration::from_secs(20);

/// One headless Linphone: a `linphone-daemon` and the connection to its command socket.
struct Linphone {
    child: Child,
    sock: UnixStream,
    sock_path: PathBuf,
    log: PathBuf,
}

impl Linphone {
    /// Starts `linphone-daemon` for `user` (password `pass`) with SIP on `ip:sip_port` and
    /// RTP on `rtp_port` (bound to every address by Linphone: unique per test), its account
    /// registering through `edge`; `auto_answer` answers every call.
    #[allow(clippy::too_many_arguments)]
    fn start(
        dir: &Path,
        edge: &Edge,
        user: &str,
        pass: &str,
        ip: &str,
        sip_port: u16,
        rtp_port: u16,
        auto_answer: bool,
    ) -> Linphone {
        let home = dir.join(user);
        std::fs::create_dir_all(home.join(".local/share/linphone")).unwrap();
        let rc = home.join("linphonerc");
        std::fs::write(
            &rc,
            format!(
                "[sip]\nsip_port={sip_port}\nsip_tcp_port=-1\nsip_tls_port=-1\nbind_address={ip}\ndefault_proxy=0\n\n\
                 [rtp]\naudio_rtp_port={rtp_port}\nvideo_rtp_port={}\n\n\
                 [video]\ncapture=0\ndisplay=0\n\n\
                 [proxy_0]\nreg_proxy=<sip:{edge};transport=udp>\nreg_route=<sip:{edge};transport=udp;lr>\n\
                 reg_identity=sip:{user}@{DOMAIN}\nreg_expires=600\nreg_sendregister=1\npublish=0\n\n\
                 [auth_info_0]\nusername={user}\npasswd={pass}\n",
                rtp_port + 2,
                edge = edge.sip,
            ),
        )
        .unwrap();
        let name = format!("sipedge-test-lp-{}-{user}-{ip}", std::process::id());
        let sock_path = Path::new("/tmp").join(&name);
        let _ = std::fs::remove_file(&sock_path);
        let log = home.join("log.txt");
        let child = Command::new("linphone-daemon")
            .args(["--pipe", &name, "--config"])
            .arg(&rc)
            .arg("--log")
            .arg(&log)
            .args(auto_answer.then_some("--auto-answer"))
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + LIMIT;
        let sock = loop {
            if let Ok(s) = UnixStream::connect(&sock_path) {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "linphone-daemon opened no socket"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Linphone {
            child,
            sock,
            sock_path,
            log,
        }
    }

    /// Sends one command and returns the daemon's answer (`Status: Ok …`).
    fn cmd(&mut self, line: &str) -> String {
        self.sock.write_all(format!("{line}\n").as_bytes()).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // The first bytes may take a while; the rest of an answer follows at once.
        let mut wait = Duration::from_secs(5);
        loop {
            self.sock.set_read_timeout(Some(wait)).unwrap();
            match self.sock.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
            wait = Duration::from_millis(150);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Polls `command` until its answer contains `needle` or [`LIMIT`] passes; the last answer.
    fn await_answer(&mut self, command: &str, needle: &str) -> Result<String, String> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let answer = self.cmd(command);
            if answer.contains(needle) {
                return Ok(answer);
            }
            if Instant::now() > deadline {
                return Err(answer);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits (at most [`LIMIT`]) until the daemon's log shows a received request whose start
    /// line begins with `start` (belle-sip logs every message it receives in full).
    fn received(&self, start: &str) -> bool {
        let needle = format!("\n{start}");
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            if std::fs::read_to_string(&self.log).is_ok_and(|t| t.contains(&needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The state lines of the daemon's log (registration and call states), for a failure.
    fn states(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("moving from state") || l.contains("-error-"))
            .filter(|l| !l.contains("soundcard") && !l.contains("alsa"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `quit`, bounded; killed if it does not go.
    fn quit(mut self) {
        let _ = self.sock.write_all(b"quit\n");
        wait_bounded(&mut self.child, Duration::from_secs(5));
    }
}

impl Drop for Linphone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.sock_path);
    }
}

const REGISTERED: &str = "LinphoneRegistrationOk";

/// Linphone 5.1 on the default config: alice and bob register (digest MD5), alice calls bob
/// (her INVITE's 407 is answered), bob answers, the call runs on both sides, alice hangs up
/// and bob's side ends (the BYE crossed the edge). The edge holds both bindings and counts
/// the relayed INVITE, ACK and BYE.
#[test]
fn linphone_registers_and_calls_on_the_default_config() {
    if !installed("linphone-daemon", "--help") {
        return;
    }
    let mut edge = Edge::start_with("lp-call", "127.0.136.129", 27000, 2, "auto", TWO_USERS);
    let dir = temp_dir("lp-call-ua");
    let mut bob = Linphone::start(
        dir.path(),
        &edge,
        "bob",
        "builder",
        "127.0.136.131",
        27100,
        27200,
        true,
    );
    let mut alice = Linphone::start(
        dir.path(),
        &edge,
        "alice",
        "wonderland",
        "127.0.136.130",
        27100,
        27210,
        false,
    );
    let bob_reg = bob.await_answer("register-status 1", REGISTERED);
    assert!(
        bob_reg.is_ok(),
        "bob did not register: {bob_reg:?}\n{}",
        bob.states()
    );
    let alice_reg = alice.await_answer("register-status 1", REGISTERED);
    assert!(
        alice_reg.is_ok(),
        "alice did not register: {alice_reg:?}\n{}",
        alice.states()
    );
    assert_eq!(edge.await_metric("sipedge_bindings{", 2, LIMIT), 2);

    let placed = alice.cmd(&format!("call sip:bob@{DOMAIN}"));
    assert!(placed.contains("Status: Ok"), "call refused: {placed}");
    let running = "LinphoneCallStreamsRunning";
    let alice_call = alice.await_answer("call-status", running);
    let bob_call = bob.await_answer("call-status", running);
    assert!(
        alice_call.is_ok() && bob_call.is_ok(),
        "the call was not established: alice {alice_call:?} bob {bob_call:?}\n{}\n---\n{}",
        alice.states(),
        bob.states()
    );
    assert!(bob_call.unwrap().contains("Direction: in"));
    // The ACK for the 200 crossed the edge (bob's StreamsRunning does not wait for it).
    assert!(
        bob.received("ACK sip:bob@"),
        "bob got no ACK:\n{}",
        bob.states()
    );

    let hung = alice.cmd("terminate");
    assert!(hung.contains("Status: Ok"), "terminate refused: {hung}");
    let ended = bob.await_answer("call-status", "No current call");
    assert!(
        ended.is_ok() && bob.received("BYE sip:bob@"),
        "bob's call did not end (no BYE): {ended:?}\n{}",
        bob.states()
    );
    assert!(edge.metric("sipedge_auth_digest_ok_total", None) >= 3);
    assert!(edge.metric("sipedge_relay_acks_forwarded_total", None) >= 1);
    // INVITE and BYE at least (alice's first INVITE gets the 407 and is not relayed).
    assert!(edge.metric("sipedge_relay_transactions_total", None) >= 2);
    alice.quit();
    bob.quit();
    assert!(edge.terminate().success());
}

/// With `[auth] algorithms = ["SHA-256"]` Linphone 5.1 answers the SHA-256 challenge and
/// registers (the edge accepts nothing else); with a wrong password it does not: its
/// account ends Failed and the edge holds no binding for it.
#[test]
fn linphone_registers_with_sha256_and_not_with_a_wrong_password() {
    if !installed("linphone-daemon", "--help") {
        return;
    }
    let extra = format!("\n[auth]\nalgorithms = [\"SHA-256\"]\n{TWO_USERS}");
    let mut edge = Edge::start_with("lp-sha", "127.0.136.140", 27010, 1, "auto", &extra);
    let dir = temp_dir("lp-sha-ua");
    let mut alice = Linphone::start(
        dir.path(),
        &edge,
        "alice",
        "wonderland",
        "127.0.136.141",
        27100,
        27220,
        false,
    );
    let mut bob = Linphone::start(
        dir.path(),
        &edge,
        "bob",
        "not-the-password",
        "127.0.136.142",
        27100,
        27230,
        false,
    );
    let alice_reg = alice.await_answer("register-status 1", REGISTERED);
    assert!(
        alice_reg.is_ok(),
        "alice did not register with SHA-256: {alice_reg:?}\n{}",
        alice.states()
    );
    let bob_reg = bob.await_answer("register-status 1", "LinphoneRegistrationFailed");
    assert!(
        bob_reg.is_ok(),
        "bob's wrong password did not fail: {bob_reg:?}\n{}",
        bob.states()
    );
    assert_eq!(edge.await_metric("sipedge_bindings{", 1, LIMIT), 1);
    assert!(edge.metric("sipedge_auth_digest_ok_total", None) >= 1);
    assert!(edge.metric("sipedge_auth_digest_failed_total", None) >= 1);
    alice.quit();
    bob.quit();
    assert!(edge.terminate().success());
}
