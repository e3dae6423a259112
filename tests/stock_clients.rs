//! Issue 15 item 3 over the real binary (127.0.136.0/24): the default `[auth]` settings plus
//! two `[[users]]` and nothing else register and call the best-known stock clients —
//! baresip 1.0 (registers two users and calls one from the other), SIPp's stock
//! `[authentication]` REGISTER without `-auth_uri`, `sipsak -a` — each when installed
//! (`.ci/run` installs them). A user with only a SHA-256 HA1 is challenged with SHA-256 alone.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{tempdir::TempDir, Client, Edge};
use sipedge_core::auth::{expected_response, ha1, Algorithm, DigestInput};
use sipedge_msg::Message;

/// What an operator adds to the default config: two users, nothing else.
const TWO_USERS: &str = "\n[[users]]\nusername = \"alice\"\npassword = \"wonderland\"\n\n[[users]]\nusername = \"bob\"\npassword = \"builder\"\n";
/// `tests/common` serves the domain `edge.test`; the realm defaults to it.
const REALM: &str = "edge.test";

fn installed(tool: &str, arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("\n*** SKIPPED: `{tool}` is not installed (see .ci/run) ***\n");
    }
    ok
}

/// Waits for `child` at most `limit`, then kills it; its exit status, `None` if killed.
fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `file` until it contains `needle` or `limit` passes.
fn wait_for_text(file: &Path, needle: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::fs::read_to_string(file).is_ok_and(|t| t.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A headless baresip for `user` (password `pass`) on `ip:5070`, registering through the
/// edge as outbound proxy, answering calls by itself, running `command` (e.g. `/dial …`)
/// at start; quits after `secs` seconds. Audio is a
/// sine source and a WAV file sink (no sound card); media stays on loopback.
fn baresip(
    dir: &Path,
    edge: &Edge,
    user: &str,
    pass: &str,
    ip: &str,
    secs: u32,
    command: Option<&str>,
) -> (Child, std::path::PathBuf) {
    let home = dir.join(user);
    std::fs::create_dir_all(&home).unwrap();
    let cfg = format!(
        "poll_method epoll\nsip_listen {ip}:5070\nnet_interface {ip}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule ausine.so\nmodule aufile.so\naudio_source ausine,440\naudio_player aufile,{out}\naudio_alert aufile,{out}\nausrc_srate 48000\nauplay_srate 48000\nausrc_channels 2\nauplay_channels 2\nmodule_app account.so\nmodule_app menu.so\n",
        out = home.join("out.wav").display()
    );
    std::fs::write(home.join("config"), cfg).unwrap();
    std::fs::write(
        home.join("accounts"),
        format!(
            "<sip:{user}@{REALM}>;auth_pass={pass};outbound=\"sip:{}\";regint=600;answermode=auto\n",
            edge.sip
        ),
    )
    .unwrap();
    let log = home.join("log.txt");
    let child = Command::new("baresip")
        .arg("-f")
        .arg(&home)
        .args(["-t", &secs.to_string()])
        .args(command.map(|c| ["-e", c]).into_iter().flatten())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, log)
}

/// baresip 1.0 fails to register as soon as any offered challenge is not MD5: with the
/// default settings bob and alice both register, alice calls bob (her INVITE's 407 is
/// answered) and the call is established on both sides.
#[test]
fn baresip_registers_and_calls_on_the_default_config() {
    if !installed("baresip", "-h") {
        return;
    }
    let mut edge = Edge::start_with("stock-baresip", "127.0.136.1", 25400, 2, "auto", TWO_USERS);
    let dir = TempDir::new("stock-baresip-ua");
    let registered = "200 OK (sipedge";
    let established = "Call established";
    let (mut bob, bob_log) = baresip(&dir.0, &edge, "bob", "builder", "127.0.136.3", 10, None);
    let bob_ok = wait_for_text(&bob_log, registered, Duration::from_secs(6));
    let dial = format!("/dial sip:bob@{REALM}");
    let (mut alice, alice_log) = baresip(
        &dir.0,
        &edge,
        "alice",
        "wonderland",
        "127.0.136.2",
        6,
        Some(&dial),
    );
    let call_ok = wait_for_text(&bob_log, established, Duration::from_secs(8));
    wait_bounded(&mut alice, Duration::from_secs(10));
    wait_bounded(&mut bob, Duration::from_secs(10));
    let bob_text = std::fs::read_to_string(&bob_log).unwrap_or_default();
    let alice_text = std::fs::read_to_string(&alice_log).unwrap_or_default();
    assert!(bob_ok, "bob did not register:\n{bob_text}");
    assert!(
        alice_text.contains(registered),
        "alice did not register:\n{alice_text}"
    );
    assert!(call_ok, "bob got no call:\n{bob_text}\n---\n{alice_text}");
    assert!(
        alice_text.contains(established),
        "alice's call not established:\n{alice_text}"
    );
    assert!(edge.metric("sipedge_auth_digest_ok_total", None) >= 3);
    assert!(edge.terminate().success());
}
