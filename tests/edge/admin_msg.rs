//! Issue 18 over the binary: `POST /api/v1/messages` and `sipedgectl msg send` deliver a
//! SIP MESSAGE (RFC 3428) to every contact of a user — two phones on their own sockets
//! answering 200 and 486, and a NATed phone (private Contact) reached at its flow — and
//! the reply lists each contact's final; a phone that never answers is a 408 for the
//! operator and nothing on the wire. Loopback 127.0.118.10-11.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sipedge_msg::{HeaderName, Message};

use super::admin::{register_from, start, TOKEN};
use crate::common::*;

/// `[sip] t1_ms = 50`: timer F (64·T1) is 3.2 s.
const FAST_T1: &str = "[log]\nlevel = \"warn\"\n\n[sip]\nt1_ms = 50\nt2_ms = 400\n";

fn post(admin: std::net::SocketAddr, body: &Value) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(20)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(format!("http://{admin}/api/v1/messages"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .send_json(body)
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The next MESSAGE `c` receives; answered `code` (none when `code` is 0).
fn answer(c: &Client, code: u16) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let Some(bytes) = c.recv(Duration::from_millis(200)) else {
            continue;
        };
        let m = Message::parse(&bytes).unwrap();
        if m.method().map(|m| m.as_bytes().to_vec()) != Some(b"MESSAGE".to_vec()) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if code != 0 {
            let h = |n| String::from_utf8_lossy(m.header(n).unwrap()).into_owned();
            let vias: String = m
                .header_values(HeaderName::Via)
                .map(|v| format!("Via: {}\r\n", String::from_utf8_lossy(v)))
                .collect();
            let resp = format!(
                "SIP/2.0 {code} {}\r\n{vias}From: {}\r\nTo: {};tag=p{code}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                if code == 486 { "Busy Here" } else { "OK" },
                h(HeaderName::From),
                h(HeaderName::To),
                h(HeaderName::CallId),
                h(HeaderName::CSeq),
            );
            let src = m.top_via().unwrap();
            let host = String::from_utf8_lossy(src.host()).into_owned();
            let to = format!("{host}:{}", src.port().unwrap_or(5060));
            c.send(to.parse().unwrap(), resp.as_bytes());
        }
        return Some(text);
    }
    None
}

/// `results` as (contact, code), sorted.
fn finals(v: &Value) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = v["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {v}"))
        .iter()
        .map(|r| {
            (
                r["contact"].as_str().unwrap().to_string(),
                r["code"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_message_reaches_every_contact_and_the_operator_sees_each_final() {
    let ip = "127.0.118.10";
    let edge = start("admin-msg", ip, 26110, FAST_T1, false);
    let (a, b, n) = (Client::new(ip), Client::new(ip), Client::new(ip));
    register_from(&edge, &a, "dora", "d1");
    register_from(&edge, &b, "dora", "d2");
    // A phone behind a NAT: a private Contact, registered from its public flow.
    n.send(
        edge.sip,
        &register(
            &n,
            "dora",
            Some("<sip:dora@10.0.0.9:5060>"),
            Some(600),
            "d3",
            1,
        ),
    );
    assert_eq!(n.status(WAIT), Some(200));

    let req = serde_json::json!({
        "to": "dora@edge.test",
        "from": "sip:noc@edge.test",
        "body": "Maintenance tonight at 22:00",
        "content_type": "text/plain",
    });
    let api = {
        let edge_admin = edge.admin;
        let req = req.clone();
        std::thread::spawn(move || post(edge_admin, &req))
    };
    let got_a = answer(&a, 200).expect("phone a gets the MESSAGE");
    assert!(
        got_a.starts_with(&format!("MESSAGE sip:dora@{} SIP/2.0\r\n", a.addr())),
        "{got_a}"
    );
    assert!(
        got_a.contains("\r\nTo: <sip:dora@edge.test>\r\n"),
        "{got_a}"
    );
    assert!(
        got_a.contains("\r\nFrom: <sip:noc@edge.test>;tag="),
        "{got_a}"
    );
    assert!(got_a.contains("\r\nCSeq: 1 MESSAGE\r\n"), "{got_a}");
    assert!(
        got_a.ends_with("\r\n\r\nMaintenance tonight at 22:00"),
        "{got_a}"
    );
    answer(&b, 486).expect("phone b gets the MESSAGE");
    let got_n = answer(&n, 200).expect("the NATed phone gets it at its flow");
    assert!(
        got_n.starts_with("MESSAGE sip:dora@10.0.0.9:5060 SIP/2.0\r\n"),
        "{got_n}"
    );
    let (st, v) = api.join().unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["to"], "sip:dora@edge.test");
    assert_eq!(
        finals(&v),
        {
            let mut want = vec![
                (format!("sip:dora@{}", a.addr()), 200),
                (format!("sip:dora@{}", b.addr()), 486),
                ("sip:dora@10.0.0.9:5060".to_string(), 200),
            ];
            want.sort();
            want
        },
        "{v}"
    );
    // The phones got nothing else: no response, no second copy once answered.
    for c in [&a, &b, &n] {
        assert!(c.recv(Duration::from_millis(300)).is_none());
    }

    // `sipedgectl msg send`: a table of the finals; phone b now never answers (408).
    let ctl = std::thread::spawn({
        let admin = edge.admin.to_string();
        move || {
            Command::new(env!("CARGO_BIN_EXE_sipedgectl"))
                .args(["--addr", &admin, "--token", TOKEN])
                .args(["msg", "send", "--to", "dora@edge.test", "--body", "again"])
                .output()
                .unwrap()
        }
    });
    answer(&a, 200).unwrap();
    answer(&n, 200).unwrap();
    answer(&b, 0).expect("b hears it and stays silent");
    let out = ctl.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("CONTACT"), "a table: {text}");
    let b_row = text
        .lines()
        .find(|l| l.contains(&b.addr().to_string()))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(b_row.contains("408"), "timer F, for the operator: {text}");
    // Only retransmissions of the MESSAGE reached b, never a 408 on the wire.
    for (_, d) in b.drain_for(Duration::from_millis(200)) {
        assert!(
            d.starts_with(b"MESSAGE "),
            "{}",
            String::from_utf8_lossy(&d)
        );
    }

    // Refusals: not registered, too large, bad input.
    let (st, _) = post(
        edge.admin,
        &serde_json::json!({"to": "nobody@edge.test", "body": "x"}),
    );
    assert_eq!(st, 404);
    let big = "x".repeat(1301);
    let (st, _) = post(
        edge.admin,
        &serde_json::json!({"to": "dora@edge.test", "body": big}),
    );
    assert_eq!(st, 413);
    let (st, _) = post(
        edge.admin,
        &serde_json::json!({"to": "dora@edge.test", "body": "x", "content_type": "text/plain\r\nX: y"}),
    );
    assert_eq!(st, 400);
    let (st, _) = post(
        edge.admin,
        &serde_json::json!({"to": "dora@edge.test", "body": 5}),
    );
    assert_eq!(st, 400);
}
