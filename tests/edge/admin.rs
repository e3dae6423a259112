//! Issue 18 over the binary: the admin API (a registered UA seen, deleted, re-registered;
//! the token refused and accepted; a reload error shown), `sipedgectl` against it, JSON
//! log lines. Loopback 127.0.118.0/24.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

pub(super) const TOKEN: &str = "test-token-0123456789";
const READ_TOKEN: &str = "read-only-token-0123456789";

/// A sipedge with `[admin] token` (and `log` as given), stderr piped when `pipe_stderr`.
pub(super) fn start(tag: &str, ip: &str, port: u16, log: &str, pipe_stderr: bool) -> Edge {
    let dir = temp_dir(tag);
    let cfg = write_config(dir.path(), ip, port, port + 1, "auto");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            "\n[admin]\n",
            &format!("\n[admin]\ntoken = \"{TOKEN}\"\nread_token = \"{READ_TOKEN}\"\n"),
        )
        .replace("[log]\nlevel = \"warn\"\n", log);
    std::fs::write(&cfg, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sipedge"))
        .arg("--config")
        .arg(&cfg)
        .arg("--shards")
        .arg("2")
        .stdout(Stdio::null())
        .stderr(if pipe_stderr {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
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
    while http(&edge, "GET", "/readyz", None, &[]).0 != 200 {
        assert!(Instant::now() < deadline, "not ready within 15 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    edge
}

/// One request: (status, JSON or text body).
fn http(
    edge: &Edge,
    method: &str,
    path: &str,
    token: Option<&str>,
    query: &[(&str, &str)],
) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://{}{path}", edge.admin);
    let auth = token.map(|t| format!("Bearer {t}"));
    let resp = match method {
        "GET" | "DELETE" => {
            let mut r = if method == "GET" {
                agent.get(&url)
            } else {
                agent.delete(&url)
            };
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            for (k, v) in query {
                r = r.query(*k, *v);
            }
            r.call()
        }
        _ => {
            let mut r = agent.post(&url);
            if let Some(a) = &auth {
                r = r.header("Authorization", a);
            }
            r.send_empty()
        }
    };
    let Ok(mut resp) = resp else {
        return (0, Value::Null);
    };
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub(super) fn register_from(edge: &Edge, client: &Client, user: &str, cid: &str) {
    let me = client.addr();
    let contact = format!("<sip:{user}@{me}>");
    client.send(
        edge.sip,
        &register(client, user, Some(&contact), Some(600), cid, 1),
    );
    assert_eq!(client.status(WAIT), Some(200));
}

fn contacts(v: &Value) -> Vec<String> {
    v["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contact"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn registrations_are_seen_deleted_and_seen_again_and_the_token_is_required() {
    let ip = "127.0.118.1";
    let edge = start("admin-reg", ip, 26010, "[log]\nlevel = \"warn\"\n", false);
    let (a, b) = (Client::new(ip), Client::new(ip));
    register_from(&edge, &a, "alice", "a1");
    register_from(&edge, &b, "alice", "a2");
    register_from(&edge, &a, "bob", "b1");
    let aor = [("aor", "alice@edge.test")];

    // The token: none and a wrong one are refused, the right one accepted.
    assert_eq!(
        http(&edge, "GET", "/api/v1/registrations", None, &aor).0,
        401
    );
    assert_eq!(
        http(
            &edge,
            "GET",
            "/api/v1/registrations",
            Some("wrong-token-0123456"),
            &aor
        )
        .0,
        401
    );
    let (st, v) = http(&edge, "GET", "/api/v1/registrations", Some(TOKEN), &aor);
    assert_eq!(st, 200, "{v}");
    assert_eq!(contacts(&v).len(), 2, "{v}");
    let c0 = &v["contacts"][0];
    assert_eq!(c0["transport"], "udp");
    assert_eq!(c0["user_agent"], "sipedge-test");
    assert!(c0["expires_in"].as_u64().unwrap() > 500);
    // Unauthenticated probes stay open.
    assert_eq!(http(&edge, "GET", "/healthz", None, &[]).0, 200);
    assert_eq!(http(&edge, "GET", "/readyz", None, &[]).0, 200);
    assert_eq!(http(&edge, "GET", "/metrics", None, &[]).0, 200);

    // A listing by prefix, page by page (one binding a page), across both shards.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let mut q = vec![("prefix", "alice@"), ("limit", "1")];
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let (st, v) = http(&edge, "GET", "/api/v1/registrations", Some(TOKEN), &q);
        assert_eq!(st, 200, "{v}");
        for r in v["registrations"].as_array().unwrap() {
            seen.push(r["aor"].as_str().unwrap().to_string());
        }
        cursor = v["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["sip:alice@edge.test", "sip:alice@edge.test"]);

    // The user view: its registrations.
    let (st, v) = http(
        &edge,
        "GET",
        "/api/v1/users/bob@edge.test",
        Some(TOKEN),
        &[],
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["registrations"].as_array().unwrap().len(), 1);

    // Delete one contact, then all.
    let one = format!("sip:alice@{}", b.addr());
    let (st, v) = http(
        &edge,
        "DELETE",
        "/api/v1/registrations/alice@edge.test",
        Some(TOKEN),
        &[("contact", &one)],
    );
    assert_eq!((st, v["removed"].as_u64()), (200, Some(1)), "{v}");
    let (_, v) = http(&edge, "GET", "/api/v1/registrations", Some(TOKEN), &aor);
    assert_eq!(contacts(&v), [format!("sip:alice@{}", a.addr())]);
    let (st, _) = http(
        &edge,
        "DELETE",
        "/api/v1/registrations/alice@edge.test",
        None,
        &[],
    );
    assert_eq!(st, 401, "a delete without the token does nothing");
    let path = "/api/v1/registrations/alice@edge.test";
    let (st, _) = http(&edge, "DELETE", path, Some(READ_TOKEN), &[]);
    assert_eq!(st, 403, "the read-only token cannot delete");
    let (st, v) = http(
        &edge,
        "GET",
        "/api/v1/registrations",
        Some(READ_TOKEN),
        &aor,
    );
    assert_eq!((st, contacts(&v).len()), (200, 1), "but it can read: {v}");
    let (st, v) = http(
        &edge,
        "DELETE",
        "/api/v1/registrations/alice@edge.test",
        Some(TOKEN),
        &[],
    );
    assert_eq!((st, v["removed"].as_u64()), (200, Some(1)), "{v}");
    assert_eq!(
        http(&edge, "GET", "/api/v1/registrations", Some(TOKEN), &aor).0,
        404
    );
    // The phone's own query agrees: no contact left.
    a.send(edge.sip, &register(&a, "alice", None, None, "a1", 5));
    let reply = a.recv(WAIT).unwrap();
    assert!(listed_contacts(&reply).is_empty());

    // Re-registered: seen again.
    register_from(&edge, &a, "alice", "a3");
    let (st, v) = http(&edge, "GET", "/api/v1/registrations", Some(TOKEN), &aor);
    assert_eq!((st, contacts(&v).len()), (200, 1));
    // A MESSAGE to a user who is not registered: 404.
    let (ok, _, err) = {
        let out = Command::new(env!("CARGO_BIN_EXE_sipedgectl"))
            .args(["--addr", &edge.admin.to_string(), "--token", TOKEN])
            .args(["msg", "send", "--to", "nobody@edge.test", "--body", "hi"])
            .output()
            .unwrap();
        (
            out.status.success(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(!ok && err.contains("404"), "{err}");
    // Bad input is a 400, not a crash.
    assert_eq!(
        http(
            &edge,
            "GET",
            "/api/v1/registrations",
            Some(TOKEN),
            &[("cursor", "x")]
        )
        .0,
        400
    );
    assert_eq!(
        http(
            &edge,
            "GET",
            "/api/v1/registrations",
            Some(TOKEN),
            &[("aor", "tel:+1")]
        )
        .0,
        400
    );
}

#[test]
fn a_reload_error_is_shown_and_sipedgectl_drives_the_api() {
    let ip = "127.0.118.2";
    let edge = start("admin-ctl", ip, 26020, "[log]\nlevel = \"warn\"\n", false);
    let a = Client::new(ip);
    register_from(&edge, &a, "carol", "c1");

    let ctl = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sipedgectl"))
            .args(args)
            .env("SIPEDGE_ADMIN", edge.admin.to_string())
            .env("SIPEDGE_TOKEN", TOKEN)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = ctl(&["reg", "show", "carol@edge.test"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("sip:carol@{}", a.addr())), "{out}");
    assert!(out.contains("CONTACT"), "a table: {out}");
    let (ok, out, _) = ctl(&["--json", "reg", "list", "--prefix", "carol"]);
    assert!(ok);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["registrations"].as_array().unwrap().len(), 1);
    let (ok, out, _) = ctl(&["stats"]);
    assert!(ok && out.contains("METRIC"), "{out}");
    let (ok, _, err) = ctl(&["reload"]);
    assert!(ok, "{err}");
    // A wrong token: refused, exit 1.
    let out = Command::new(env!("CARGO_BIN_EXE_sipedgectl"))
        .args([
            "--addr",
            &edge.admin.to_string(),
            "--token",
            "nope-nope-nope-nope",
            "reg",
            "show",
            "carol@edge.test",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    // A broken file: the reload is refused with the reason, the old tables stay.
    let good = std::fs::read_to_string(&edge.config).unwrap();
    let broken = good.replace("max_message_bytes = 4096", "max_message_bytes = 10");
    std::fs::write(&edge.config, broken).unwrap();
    let (st, v) = http(&edge, "POST", "/api/v1/reload", Some(TOKEN), &[]);
    assert_eq!(st, 400, "{v}");
    let why = v["error"].as_str().unwrap();
    assert!(
        why.contains("server.max_message_bytes"),
        "the key is named: {v}"
    );
    let (ok, _, err) = ctl(&["reload"]);
    assert!(!ok && err.contains("400"), "{err}");
    std::fs::write(&edge.config, good).unwrap();
    assert_eq!(
        http(&edge, "POST", "/api/v1/reload", Some(TOKEN), &[]).0,
        200
    );

    let (ok, out, err) = ctl(&["reg", "rm", "carol@edge.test"]);
    assert!(ok, "{err}");
    assert!(out.contains("removed 1"), "{out}");
    let (ok, _, err) = ctl(&["reg", "show", "carol@edge.test"]);
    assert!(!ok && err.contains("404"), "{err}");
}

#[test]
fn json_logs_are_one_object_per_line_without_colour_and_a_flood_is_cut() {
    let ip = "127.0.118.3";
    let log = "[log]\nlevel = \"info,sip::parse=debug\"\nformat = \"json\"\nmax_per_second = 5\n";
    let mut edge = start("admin-log", ip, 26030, log, true);
    // A flood of garbage: every datagram is a malformed-message event.
    let c = Client::new(ip);
    let t0 = Instant::now();
    for _ in 0..300 {
        c.send(edge.sip, b"garbage that is no SIP message\r\n\r\n");
    }
    std::thread::sleep(Duration::from_millis(1100));
    c.send(edge.sip, b"one more garbage datagram\r\n\r\n");
    std::thread::sleep(Duration::from_millis(200));
    let windows = t0.elapsed().as_secs() + 2;
    let stderr = edge.child.as_mut().unwrap().stderr.take().unwrap();
    edge.terminate();
    let lines: Vec<String> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .collect();
    assert!(!lines.is_empty());
    let mut parsed = Vec::new();
    for l in &lines {
        assert!(
            !l.contains('\u{1b}'),
            "no ANSI escapes when stderr is not a terminal: {l}"
        );
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{l}"
        );
        parsed.push(v);
    }
    assert!(lines.iter().any(|l| l.contains("sipedge running")));
    let malformed: Vec<&Value> = parsed
        .iter()
        .filter(|v| v["fields"]["message"] == "malformed message")
        .collect();
    assert!(!malformed.is_empty(), "the first ones are logged");
    assert!(
        malformed.len() as u64 <= 5 * windows,
        "{} malformed lines for 301 datagrams: the flood was not cut",
        malformed.len()
    );
    assert!(
        malformed
            .iter()
            .any(|v| v["fields"]["suppressed"].as_u64() > Some(0)),
        "a later line says how many were cut"
    );
    assert!(
        malformed[0]["fields"]["remote"].is_string(),
        "the source is named"
    );
}

#[test]
fn a_public_admin_listen_without_a_token_is_refused() {
    let dir = temp_dir("admin-public");
    let cfg = write_config(dir.path(), "127.0.118.4", 26040, 26041, "auto");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "listen = \"127.0.118.4:26041\"",
        "listen = \"0.0.0.0:26041\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sipedge"))
        .args(["--check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin.token"));
}

#[test]
fn systemd_hears_ready_then_the_watchdog() {
    use std::os::unix::net::UnixDatagram;
    let dir = temp_dir("admin-notify");
    let cfg = write_config(dir.path(), "127.0.118.5", 26050, 26051, "auto");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sipedge"))
        .arg("--config")
        .arg(&cfg)
        .args(["--shards", "2"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut edge = Edge {
        child: Some(child),
        sip: "127.0.118.5:26050".parse().unwrap(),
        admin: "127.0.118.5:26051".parse().unwrap(),
        config: cfg,
        _dir: dir,
    };
    let mut buf = [0u8; 256];
    let mut heard = Vec::new();
    while heard.len() < 3 {
        let n = sock.recv(&mut buf).expect("a notification within 15 s");
        heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(heard[0], "READY=1", "{heard:?}");
    assert!(heard[1..].iter().all(|h| h == "WATCHDOG=1"), "{heard:?}");
    // Ready means serving.
    assert_eq!(http(&edge, "GET", "/readyz", None, &[]).0, 200);
    edge.terminate();
}
