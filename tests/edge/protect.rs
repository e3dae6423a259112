//! Issue 17 over the real binary on loopback (127.0.117.0/24): the SIPVicious tools
//! (`svmap`, `svwar`, `svcrack`, each when installed; they send `User-Agent:
//! friendly-scanner`) are banned within 6 s and learn nothing; the density and the
//! guessing rules with an ordinary User-Agent (our own client). `[protect] trusted = []`:
//! loopback is trusted by default. SIPVicious binds every interface, so its source is
//! 127.0.0.1 unless it takes `-b` (svmap); each test runs its own edge, so a ban of
//! 127.0.0.1 in one test's edge never reaches another's.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{challenge, digest_answer, options, register, Client, Edge};

/// Users 100 (password 42) and 101, protection on loopback.
const USERS: &str = "\n[protect]\ntrusted = []\n\n[auth]\nregister = \"digest\"\n\n[[accounts]]\nname = \"acme\"\n\n[[users]]\nusername = \"100\"\npassword = \"42\"\naccount = \"acme\"\n\n[[users]]\nusername = \"101\"\npassword = \"secret101\"\naccount = \"acme\"\n";

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Polls a metric (summed over shards) until it reaches `want`; the time it took.
fn await_at_least(edge: &Edge, name: &str, want: u64, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    loop {
        if edge.metric(name, None) >= want {
            return Some(t0.elapsed());
        }
        if t0.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a SIPVicious tool (bounded by `timeout`), returns its output.
fn sipvicious(args: &str, secs: u32) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("timeout -s KILL {secs} {args} 2>&1"))
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn answered(c: &Client, to: SocketAddr, cseq: u32) -> bool {
    c.send(to, &options(to, c, cseq));
    c.recv(Duration::from_millis(500)).is_some()
}

/// svmap: banned within 6 s of its first request, finds nothing; the banned address gets
/// no answer afterwards, with any User-Agent.
#[test]
fn svmap_is_banned_and_finds_nothing() {
    if !installed("svmap") {
        eprintln!("svmap not installed: skipped");
        return;
    }
    let edge = Edge::start_with("svmap", "127.0.117.1", 5060, 2, "auto", USERS);
    let t0 = Instant::now();
    let out = sipvicious("svmap -b 127.0.117.101 127.0.117.1 -p5060", 20);
    let banned = await_at_least(
        &edge,
        "sipedge_protect_bans_scanner_total",
        1,
        Duration::from_secs(6),
    );
    assert!(
        banned.is_some() && t0.elapsed() < Duration::from_secs(25),
        "{out}"
    );
    assert!(out.contains("found nothing"), "{out}");
    let c = Client::new("127.0.117.101");
    assert!(
        !answered(&c, edge.sip, 1),
        "the scanner's address is banned"
    );
    assert!(answered(&Client::new("127.0.117.102"), edge.sip, 1));
}

/// svwar (forced to go on past the edge's 401 to every user): banned at once, learns none of
/// the configured extensions.
#[test]
fn svwar_learns_no_extension() {
    if !installed("svwar") {
        eprintln!("svwar not installed: skipped");
        return;
    }
    let edge = Edge::start_with("svwar", "127.0.117.2", 5060, 2, "auto", USERS);
    let out = sipvicious("svwar --force -e100-110 127.0.117.2 -p5060", 30);
    assert!(
        await_at_least(
            &edge,
            "sipedge_protect_bans_scanner_total",
            1,
            Duration::from_secs(6)
        )
        .is_some(),
        "{out}"
    );
    for ext in ["100", "101"] {
        assert!(
            !out.contains(&format!("| {ext} ")),
            "svwar learnt {ext}: {out}"
        );
    }
}

/// svcrack on user 100 over passwords 1..100 (the password is 42, which it finds in well
/// under a second when the rules are off): blocked within 10 guesses, password not found.
#[test]
fn svcrack_is_blocked_within_ten_guesses() {
    if !installed("svcrack") {
        eprintln!("svcrack not installed: skipped");
        return;
    }
    let edge = Edge::start_with("svcrack", "127.0.117.3", 5060, 2, "auto", USERS);
    let out = sipvicious(
        "svcrack -u100 -r1-100 --domain=edge.test 127.0.117.3 -p5060",
        30,
    );
    assert!(
        await_at_least(&edge, "sipedge_protect_bans_", 1, Duration::from_secs(6)).is_some(),
        "{out}"
    );
    assert!(!out.contains("| 42 "), "svcrack found the password: {out}");
    let guesses = edge.metric("sipedge_auth_digest_failed_total", None);
    assert!(guesses < 10, "{guesses} guesses evaluated");
}

/// An ordinary User-Agent sending faster than `max_requests_per_sec` is banned (density);
/// another source is still served.
#[test]
fn a_flooding_source_is_banned() {
    let edge = Edge::start_with("density", "127.0.117.4", 5060, 2, "auto", USERS);
    let c = Client::new("127.0.117.104");
    for i in 0..300 {
        c.send(edge.sip, &options(edge.sip, &c, i));
    }
    let mut replies = 0;
    while c.recv(Duration::from_millis(300)).is_some() {
        replies += 1;
    }
    assert!(replies < 300, "{replies} replies");
    assert!(await_at_least(
        &edge,
        "sipedge_protect_bans_density_total",
        1,
        Duration::from_secs(2)
    )
    .is_some());
    assert!(
        !answered(&Client::new("127.0.117.104"), edge.sip, 1),
        "banned, any port"
    );
    assert!(answered(&Client::new("127.0.117.105"), edge.sip, 1));
}

/// An ordinary User-Agent guessing passwords is banned at `auth_failures_max` (5) wrong
/// answers: the 6th round gets no reply.
#[test]
fn a_password_guesser_is_banned() {
    let edge = Edge::start_with("guessing", "127.0.117.5", 5060, 2, "auto", USERS);
    let c = Client::new("127.0.117.106");
    let mut rounds = 0;
    for i in 0..10u32 {
        let call = format!("guess-{i}");
        c.send(
            edge.sip,
            &register(
                &c,
                "100",
                Some("<sip:100@127.0.117.106>"),
                Some(600),
                &call,
                2 * i + 1,
            ),
        );
        let Some(r) = c.recv(Duration::from_millis(700)) else {
            break;
        };
        let auth = digest_answer(
            &challenge(&r),
            "100",
            &format!("wrong{i}"),
            "REGISTER",
            "sip:edge.test",
            1,
        );
        let mut req = String::from_utf8(register(
            &c,
            "100",
            Some("<sip:100@127.0.117.106>"),
            Some(600),
            &call,
            2 * i + 2,
        ))
        .unwrap();
        req = req.replace(
            "Content-Length: 0",
            &format!("Authorization: {auth}\r\nContent-Length: 0"),
        );
        c.send(edge.sip, req.as_bytes());
        if c.recv(Duration::from_millis(700)).is_none() {
            break;
        }
        rounds += 1;
    }
    assert_eq!(rounds, 5, "five wrong answers answered, then nothing");
    assert_eq!(edge.metric("sipedge_protect_bans_guessing_total", None), 1);
    assert!(answered(&Client::new("127.0.117.107"), edge.sip, 1));
}
