//! Issue 15 item 3 over the real binary (127.0.136.0/24): the default `[auth]` settings plus
//! two `[[users]]` and nothing else register and call the best-known stock clients —
//! baresip 1.0 (registers two users and calls one from the other), SIPp's stock
//! `[authentication]` REGISTER without `-auth_uri`, `sipsak -a` — each when installed
//! (`.ci/run` installs them). A user with only a SHA-256 HA1 is challenged with SHA-256 alone.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{temp_dir, Client, Edge, DOMAIN};
use sipedge_core::auth::{expected_response, ha1, Algorithm, DigestInput};
use sipedge_msg::Message;

/// What an operator adds to the default config: two users, nothing else.
pub(crate) const TWO_USERS: &str = "\n[[users]]\nusername = \"alice\"\npassword = \"wonderland\"\n\n[[users]]\nusername = \"bob\"\npassword = \"builder\"\n";
// `common::DOMAIN` is the served domain; the realm defaults to it.

pub(crate) fn installed(tool: &str, arg: &str) -> bool {
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
pub(crate) fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
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
            "<sip:{user}@{DOMAIN}>;auth_pass={pass};outbound=\"sip:{}\";regint=600;answermode=auto\n",
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
    let dir = temp_dir("stock-baresip-ua");
    let registered = "200 OK (sipedge";
    let established = "Call established";
    let (mut bob, bob_log) = baresip(dir.path(), &edge, "bob", "builder", "127.0.136.3", 10, None);
    let bob_ok = wait_for_text(&bob_log, registered, Duration::from_secs(6));
    let dial = format!("/dial sip:bob@{DOMAIN}");
    let (mut alice, alice_log) = baresip(
        dir.path(),
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

/// SIPp's stock `[authentication]` REGISTER with no `-auth_uri`: its digest uri is
/// `sip:remote_ip:remote_port`, this edge itself, and every call gets its 200 OK. The same
/// scenario with a uri naming another host (`-auth_uri`) is still refused (400), and so is a
/// wrong password.
#[test]
fn sipp_stock_register_without_auth_uri() {
    if !installed("sipp", "-v") {
        return;
    }
    let ip = "127.0.136.10";
    let mut edge = Edge::start_with("stock-sipp", ip, 25420, 2, "auto", TWO_USERS);
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/register-auth.xml");
    let sipp = |password: &str, port: u16, calls: &str, extra: &[&str]| {
        Command::new("sipp")
            .arg("-sf")
            .arg(&scenario)
            .args(["-s", "alice", "-au", "alice", "-ap", password])
            .args(extra)
            .args(["-i", "127.0.136.11", "-p", &port.to_string()])
            .args(["-m", calls, "-r", "50", "-l", "10"])
            .args(["-timeout", "15s", "-timeout_error", "-nostdin"])
            .arg(edge.sip.to_string())
            .current_dir(std::env::temp_dir())
            .output()
            .expect("sipp runs")
    };
    let out = sipp("wonderland", 25430, "20", &[]);
    assert!(
        out.status.success(),
        "sipp failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(edge.metric("sipedge_auth_digest_ok_total", None), 20);
    let out = sipp("wonderland", 25431, "1", &["-auth_uri", "127.0.136.99"]);
    assert!(
        !out.status.success(),
        "a digest uri naming another host registered"
    );
    let out = sipp("nope", 25432, "1", &[]);
    assert!(!out.status.success(), "a wrong password registered");
    assert_eq!(edge.metric("sipedge_auth_digest_ok_total", None), 20);
    assert!(edge.metric("sipedge_auth_malformed_total", None) >= 1);
    assert!(edge.terminate().success());
}

/// `sipsak -U … -a PASSWORD` (register, check, remove; it answers the first challenge only
/// and knows only MD5) on the default config.
#[test]
fn sipsak_registers_on_the_default_config() {
    if !installed("sipsak", "--version") {
        return;
    }
    let ip = "127.0.136.20";
    let mut edge = Edge::start_with("stock-sipsak", ip, 25440, 2, "auto", TWO_USERS);
    let run = |password: &str| {
        Command::new("sipsak")
            .args(["-U", "-C", "sip:bob@127.0.136.21:25449"])
            // sipsak 0.9.8 mangles `user@host:port`: the port goes in -r, the user in -u.
            .args(["-s", &format!("sip:bob@{ip}")])
            .args(["-r", &edge.sip.port().to_string(), "-u", "bob", "-x", "600"])
            .args(["--local-ip", "127.0.136.21", "-a", password, "-i"])
            .output()
            .expect("sipsak runs")
    };
    let out = run("builder");
    assert!(
        out.status.success(),
        "sipsak failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(edge.metric("sipedge_auth_digest_ok_total", None) >= 1);
    assert!(!run("nope").status.success(), "a wrong password registered");
    assert!(edge.terminate().success());
}

/// The challenge headers of the 401 to a REGISTER of `user` from `c`.
fn challenge_of(edge: &Edge, c: &Client, user: &str, cseq: u32, auth: &str) -> (u16, Vec<String>) {
    let me = c.addr();
    let auth = if auth.is_empty() {
        String::new()
    } else {
        format!("Authorization: {auth}\r\n")
    };
    let req = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-s{cseq}-{user};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=s{cseq}\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: stock-{user}-{}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{me}>\r\n{auth}Content-Length: 0\r\n\r\n",
        me.port()
    );
    c.send(edge.sip, req.as_bytes());
    let bytes = c.recv(Duration::from_secs(2)).expect("a reply");
    let m = Message::parse(&bytes).unwrap();
    let www = m
        .headers()
        .filter(|h| h.name_bytes.eq_ignore_ascii_case(b"WWW-Authenticate"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .collect();
    (m.status().unwrap(), www)
}

/// A user provisioned with only a SHA-256 HA1 is challenged with SHA-256 alone (and
/// registers with it); a password user next to it gets MD5 alone.
#[test]
fn a_sha256_only_user_gets_only_sha256() {
    let ip = "127.0.136.30";
    let h = ha1(Algorithm::Sha256, b"carol", DOMAIN.as_bytes(), b"secret");
    let users = format!(
        "{TWO_USERS}\n[[users]]\nusername = \"carol\"\nha1_sha256 = \"{}\"\n",
        std::str::from_utf8(&h).unwrap()
    );
    // One shard: this test is over in a fraction of a second, and the binary installs its
    // SIGTERM handler only once every shard is up (an OPTIONS answered by one of two shards
    // does not prove the other is) — with two, a SIGTERM under load could land first.
    let mut edge = Edge::start_with("stock-sha", ip, 25450, 1, "auto", &users);
    let c = Client::new("127.0.136.31");
    let (status, www) = challenge_of(&edge, &c, "alice", 1, "");
    assert_eq!(status, 401);
    assert_eq!(www.len(), 1, "{www:?}");
    assert!(www[0].ends_with("algorithm=MD5"), "{www:?}");
    let (status, www) = challenge_of(&edge, &c, "carol", 2, "");
    assert_eq!(status, 401);
    assert_eq!(www.len(), 1, "{www:?}");
    assert!(www[0].ends_with("algorithm=SHA-256"), "{www:?}");
    let nonce = {
        let i = www[0].find("nonce=\"").unwrap() + 7;
        www[0][i..i + www[0][i..].find('"').unwrap()].to_string()
    };
    let uri = format!("sip:{DOMAIN}");
    let input = DigestInput {
        method: b"REGISTER",
        uri: uri.as_bytes(),
        nonce: nonce.as_bytes(),
        qop_auth: Some((b"00000001", b"c0ffee")),
    };
    let r = expected_response(Algorithm::Sha256, &h, &input);
    let auth = format!(
        "Digest username=\"carol\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{}\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c0ffee\"",
        std::str::from_utf8(&r).unwrap()
    );
    assert_eq!(challenge_of(&edge, &c, "carol", 3, &auth).0, 200);
    let status = edge.terminate();
    assert!(status.success(), "{status:?}");
}
