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
use sipedge_msg::Message;

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

/// Runs a SIPVicious tool (bounded by `secs`) while polling `metric`: the time from the
/// tool's start to the metric's first non-zero value (`None`: not within 6 s), and the
/// tool's output.
fn sipvicious(edge: &Edge, args: &str, secs: u32, metric: &str) -> (Option<Duration>, String) {
    let t0 = Instant::now();
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("timeout -s KILL {secs} {args} 2>&1"))
        .current_dir(std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let banned = await_at_least(edge, metric, 1, Duration::from_secs(6)).map(|_| t0.elapsed());
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "{args}: banned after {banned:?}, tool ran {:?}",
        t0.elapsed()
    );
    (banned, String::from_utf8_lossy(&out.stdout).into_owned())
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
    let (banned, out) = sipvicious(
        &edge,
        "svmap -b 127.0.117.101 127.0.117.1 -p5060",
        20,
        "sipedge_protect_bans_scanner_total",
    );
    assert!(banned.is_some_and(|t| t <= Duration::from_secs(6)), "{out}");
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
    let (banned, out) = sipvicious(
        &edge,
        "svwar --force -e100-110 127.0.117.2 -p5060",
        30,
        "sipedge_protect_bans_scanner_total",
    );
    assert!(banned.is_some_and(|t| t <= Duration::from_secs(6)), "{out}");
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
    let (banned, out) = sipvicious(
        &edge,
        "svcrack -u100 -r1-100 --domain=edge.test 127.0.117.3 -p5060",
        30,
        "sipedge_protect_bans_",
    );
    assert!(banned.is_some_and(|t| t <= Duration::from_secs(6)), "{out}");
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

/// The header lines of `msg` a UAS copies into its response (RFC 3261 §8.2.6.2), with a To
/// tag added.
pub(crate) fn uas_reply(msg: &[u8], status: &str, contact: &str) -> Vec<u8> {
    let m = Message::parse(msg).unwrap();
    let mut out = format!("SIP/2.0 {status}\r\n");
    for h in m.headers() {
        let name = String::from_utf8_lossy(h.name_bytes).to_ascii_lowercase();
        let value = String::from_utf8_lossy(h.value);
        match name.as_str() {
            "via" | "v" | "record-route" | "from" | "f" | "call-id" | "i" | "cseq" => {
                out.push_str(&format!(
                    "{}: {value}\r\n",
                    String::from_utf8_lossy(h.name_bytes)
                ));
            }
            "to" | "t" if value.contains("tag=") => out.push_str(&format!("To: {value}\r\n")),
            "to" | "t" => out.push_str(&format!("To: {value};tag=bob-tag\r\n")),
            _ => {}
        }
    }
    out.push_str(&format!("Contact: {contact}\r\nContent-Length: 0\r\n\r\n"));
    out.into_bytes()
}

/// The next datagram that is not a provisional response.
pub(crate) fn next_final(c: &Client) -> Vec<u8> {
    loop {
        let b = c.recv(Duration::from_secs(3)).expect("a message");
        let m = Message::parse(&b).unwrap();
        if m.status().is_none_or(|s| s >= 200) {
            return b;
        }
    }
}

pub(crate) fn status(b: &[u8]) -> Option<u16> {
    Message::parse(b).unwrap().status()
}

/// A call through `edge` established for the shedding tests: bob registered from `bob_ip`,
/// alice (at `alice_ip`) called him (`{id}-call-1`, branch `z9hG4bK-{id}call1`), he answered
/// 200, and her ACK reached him; [`EstablishedCall::in_dialog`] writes her next requests.
pub(crate) struct EstablishedCall {
    pub(crate) alice: Client,
    pub(crate) bob: Client,
    /// bob's Contact, for his replies.
    pub(crate) contact: String,
    /// The INVITE as alice sent it (a new call is this with `call1` replaced).
    pub(crate) invite: String,
    id: String,
    route: String,
    to: String,
}

impl EstablishedCall {
    pub(crate) fn establish(edge: &Edge, id: &str, bob_ip: &str, alice_ip: &str) -> Self {
        let bob = Client::new(bob_ip);
        let contact = format!("<sip:bob@{}>", bob.addr());
        bob.send(
            edge.sip,
            &register(
                &bob,
                "bob",
                Some(&contact),
                Some(600),
                &format!("{id}-bob"),
                1,
            ),
        );
        assert_eq!(bob.status(Duration::from_secs(2)), Some(200));
        let alice = Client::new(alice_ip);
        let me = alice.addr();
        let invite = format!(
            "INVITE sip:bob@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{id}call1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@edge.test>;tag=alice-tag\r\nTo: <sip:bob@edge.test>\r\nCall-ID: {id}-call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@{me}>\r\nContent-Length: 0\r\n\r\n"
        );
        alice.send(edge.sip, invite.as_bytes());
        let at_bob = bob
            .recv(Duration::from_secs(3))
            .expect("the INVITE relayed to bob");
        bob.send(edge.sip, &uas_reply(&at_bob, "200 OK", &contact));
        let ok = next_final(&alice);
        assert_eq!(status(&ok), Some(200));
        let ok_msg = Message::parse(&ok).unwrap();
        let route: Vec<String> = ok_msg
            .headers()
            .filter(|h| h.name_bytes.eq_ignore_ascii_case(b"Record-Route"))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .collect();
        assert!(!route.is_empty(), "the edge record-routes the call");
        let to = ok_msg
            .header_named(b"To")
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap();
        let call = EstablishedCall {
            alice,
            bob,
            contact,
            invite,
            id: id.to_string(),
            route: route.join(", "),
            to,
        };
        call.alice
            .send(edge.sip, call.in_dialog("ACK", 1, "ack1").as_bytes());
        let _ = call
            .bob
            .recv(Duration::from_secs(2))
            .expect("the ACK relayed to bob");
        call
    }

    /// alice's in-dialog `method` along the route set.
    pub(crate) fn in_dialog(&self, method: &str, cseq: u32, branch: &str) -> String {
        format!(
            "{method} sip:bob@{bob} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{id}{branch};rport\r\nRoute: {route}\r\nMax-Forwards: 70\r\nFrom: <sip:alice@edge.test>;tag=alice-tag\r\nTo: {to}\r\nCall-ID: {id}-call-1\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            bob = self.bob.addr(),
            me = self.alice.addr(),
            id = self.id,
            route = self.route,
            to = self.to,
        )
    }

    /// alice hangs up: the BYE is relayed to bob, he answers, and alice gets the 200.
    pub(crate) fn hang_up(&self, edge: &Edge) {
        self.alice
            .send(edge.sip, self.in_dialog("BYE", 2, "bye1").as_bytes());
        let bye = self
            .bob
            .recv(Duration::from_secs(3))
            .expect("the BYE relayed to bob");
        assert!(bye.starts_with(b"BYE "));
        self.bob
            .send(edge.sip, &uas_reply(&bye, "200 OK", &self.contact));
        assert_eq!(
            status(&next_final(&self.alice)),
            Some(200),
            "the BYE answered"
        );
    }
}

/// While the shard sheds (pressure forced to 1 with the debug-only
/// `SIPEDGE_TEST_PRESSURE_FILE`), a new INVITE gets 503 with Retry-After, and the BYE of a
/// call established before is relayed and answered.
#[test]
fn an_established_call_is_hung_up_while_the_shard_sheds() {
    let dir = crate::common::temp_dir("pressure");
    let file = dir.path().join("level");
    std::fs::write(&file, "0").unwrap();
    let edge = Edge::start_env(
        "shed-bye",
        "127.0.117.6",
        5060,
        1,
        "auto",
        "\n[protect]\ntrusted = []\n",
        &[("SIPEDGE_TEST_PRESSURE_FILE", &file)],
    );
    let call = EstablishedCall::establish(&edge, "shed", "127.0.117.108", "127.0.117.109");
    // The shard sheds from now on: a new call is refused with 503.
    std::fs::write(&file, "1").unwrap();
    let probe = Client::new("127.0.117.110");
    // The shard reads the level between turns: probe until it sheds (bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut i = 0;
    let shed = loop {
        i += 1;
        probe.send(edge.sip, &options(edge.sip, &probe, i));
        if let Some(b) = probe.recv(Duration::from_millis(200)) {
            if status(&b) == Some(503) {
                break Some(b);
            }
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let shed = shed.expect("OPTIONS shed with 503 under pressure");
    let retry: u32 = Message::parse(&shed)
        .unwrap()
        .header_named(b"Retry-After")
        .map(|v| String::from_utf8_lossy(v).trim().parse().unwrap())
        .expect("Retry-After");
    assert!((5..=30).contains(&retry), "{retry}");
    call.alice.send(
        edge.sip,
        call.invite
            .replace("call1", "call2")
            .replace("shed-call-1", "shed-call-2")
            .as_bytes(),
    );
    assert_eq!(
        status(&next_final(&call.alice)),
        Some(503),
        "a new INVITE is shed"
    );
    // The BYE of the established call is relayed and answered.
    call.hang_up(&edge);
    assert!(edge.metric("sipedge_overload_shed_new_total", None) >= 2);
}

const TOKEN: &str = "protect-token-0123456789";
const READ_TOKEN: &str = "protect-read-token-0123456789";

/// An edge with `[admin] token` and `read_token`, 2 shards, the default `[protect]`
/// (loopback trusted: only the operator can ban it).
fn start_with_tokens(tag: &str, ip: &str, port: u16) -> Edge {
    let dir = crate::common::temp_dir(tag);
    let cfg = crate::common::write_config(dir.path(), ip, port, port + 1, "auto");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "\n[admin]\n",
        &format!("\n[admin]\ntoken = \"{TOKEN}\"\nread_token = \"{READ_TOKEN}\"\n"),
    );
    std::fs::write(&cfg, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sipedge"))
        .arg("--config")
        .arg(&cfg)
        .arg("--shards")
        .arg("2")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let edge = Edge {
        child: Some(child),
        sip: format!("{ip}:{port}").parse().unwrap(),
        admin: format!("{ip}:{}", port + 1).parse().unwrap(),
        config: cfg,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while api(&edge, "GET", "/readyz", None, None).0 != 200 {
        assert!(Instant::now() < deadline, "not ready within 15 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    edge
}

/// One admin request: (status, JSON body or `Null`); status 0 when the request failed.
fn api(
    edge: &Edge,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://{}{path}", edge.admin);
    let auth = token.map(|t| format!("Bearer {t}")).unwrap_or_default();
    let resp = match method {
        "GET" => agent.get(&url).header("Authorization", &auth).call(),
        "DELETE" => agent.delete(&url).header("Authorization", &auth).call(),
        _ => {
            let r = agent.post(&url).header("Authorization", &auth);
            match body {
                Some(b) => r.send_json(b),
                None => r.send_empty(),
            }
        }
    };
    let Ok(mut resp) = resp else {
        return (0, serde_json::Value::Null);
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// `sipedgectl --token TOKEN args…`: (success, stdout, stderr).
fn ctl(edge: &Edge, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sipedgectl"))
        .args(["--addr", &edge.admin.to_string(), "--token", TOKEN])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends OPTIONS until one is answered (the shards take a lifted ban between turns).
fn answered_within(c: &Client, to: SocketAddr, limit: Duration) -> bool {
    let t0 = Instant::now();
    let mut cseq = 100;
    while t0.elapsed() < limit {
        cseq += 1;
        if answered(c, to, cseq) {
            return true;
        }
    }
    false
}

/// The operator's bans over the admin API (issue 17 on issue 18's API): a ban refused with
/// the read token (403) or no token (401) bans nothing; one with the write token silences
/// the source on every shard — a trusted loopback one too — while others are answered; it
/// is listed (read token enough) with its reason and time left; lifted, the source is
/// answered again; `sipedgectl ban add|list|rm` drive the same.
#[test]
fn an_operator_ban_over_the_api_silences_a_source_until_lifted() {
    let edge = start_with_tokens("opban", "127.0.117.7", 5060);
    let c = Client::new("127.0.117.111");
    let other = Client::new("127.0.117.112");
    assert!(answered(&c, edge.sip, 1), "answered before any ban");
    let ban = serde_json::json!({ "ip": "127.0.117.111", "secs": 600 });
    let (st, _) = api(&edge, "POST", "/api/v1/bans", Some(READ_TOKEN), Some(&ban));
    assert_eq!(st, 403, "the read token cannot ban");
    let (st, _) = api(&edge, "POST", "/api/v1/bans", None, Some(&ban));
    assert_eq!(st, 401, "no token, no ban");
    let bad = serde_json::json!({ "ip": "not-an-ip", "secs": 600 });
    let (st, _) = api(&edge, "POST", "/api/v1/bans", Some(TOKEN), Some(&bad));
    assert_eq!(st, 400, "a bad address is refused");
    let (_, v) = api(&edge, "GET", "/api/v1/bans", Some(READ_TOKEN), None);
    assert_eq!(v["count"], 0, "nothing banned by refused requests: {v}");
    assert!(answered(&c, edge.sip, 2), "still answered");

    let (st, v) = api(&edge, "POST", "/api/v1/bans", Some(TOKEN), Some(&ban));
    assert_eq!(st, 200, "{v}");
    // Both shards have taken it (each reports it received between turns).
    assert!(
        await_at_least(
            &edge,
            "sipedge_protect_bans_received_total",
            2,
            Duration::from_secs(3)
        )
        .is_some(),
        "every shard took the ban"
    );
    for cseq in 3..6 {
        assert!(
            !answered(&c, edge.sip, cseq),
            "a banned source's OPTIONS gets no answer"
        );
    }
    assert!(answered(&other, edge.sip, 1), "another source is answered");
    let (st, v) = api(&edge, "GET", "/api/v1/bans", Some(READ_TOKEN), None);
    assert_eq!(st, 200);
    let listed = &v["bans"][0];
    assert_eq!(listed["ip"], "127.0.117.111", "{v}");
    assert_eq!(listed["reason"], "operator", "{v}");
    let left = listed["remaining_secs"].as_u64().unwrap();
    assert!((590..=600).contains(&left), "{left}");
    let (ok, out, err) = ctl(&edge, &["ban", "list"]);
    assert!(
        ok && out.contains("127.0.117.111") && out.contains("operator"),
        "{out}{err}"
    );

    // Lifting: the read token cannot; the write token (through sipedgectl) can.
    let path = "/api/v1/bans/127.0.117.111";
    assert_eq!(api(&edge, "DELETE", path, Some(READ_TOKEN), None).0, 403);
    assert!(
        !answered(&c, edge.sip, 7),
        "still banned after a refused unban"
    );
    let (ok, out, err) = ctl(&edge, &["ban", "rm", "127.0.117.111"]);
    assert!(ok && out.contains("unbanned 127.0.117.111"), "{out}{err}");
    assert!(
        answered_within(&c, edge.sip, Duration::from_secs(3)),
        "answered again once the ban is lifted"
    );
    assert_eq!(
        api(&edge, "DELETE", path, Some(TOKEN), None).0,
        404,
        "lifting a ban that is not there"
    );
    // sipedgectl ban add: the same as the API's POST.
    let (ok, out, err) = ctl(&edge, &["ban", "add", "127.0.117.112", "--secs", "60"]);
    assert!(ok && out.contains("banned 127.0.117.112"), "{out}{err}");
    assert!(
        await_at_least(
            &edge,
            "sipedge_protect_bans_received_total",
            4,
            Duration::from_secs(3)
        )
        .is_some(),
        "every shard took the second ban"
    );
    assert!(!answered(&other, edge.sip, 2), "banned by sipedgectl");
    let (ok, _, err) = ctl(&edge, &["ban", "add", "127.0.117.113", "--secs", "0"]);
    assert!(!ok && err.contains("400"), "{err}");
}
