//! Three edges on one Redis Cluster, and a caller / phone pair made of plain UDP sockets
//! that speak just enough SIP for a call: INVITE, 200, ACK and BYE along the Record-Route.
//! Every wait is bounded; every process is killed on drop (`Edge`, `RedisServer`).
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sipedge_msg::Message;

use crate::common::{register, Client, Edge, DOMAIN, WAIT};
use crate::redis::RedisCluster;

/// The edges' addresses (A, B, C).
pub const EDGE_IPS: [&str; 3] = ["127.0.63.11", "127.0.63.12", "127.0.63.13"];
/// The Redis nodes' addresses.
pub const REDIS_IPS: [&str; 3] = ["127.0.63.1", "127.0.63.2", "127.0.63.3"];
/// Phones and callers (never a peer edge's address: those are trusted).
pub const PHONE_IP: &str = "127.0.63.31";
pub const CALLER_IP: &str = "127.0.63.32";

/// A three-master cluster on `base`, `base + 1`, `base + 2` (one per Redis address).
pub fn redis_cluster(base: u16) -> RedisCluster {
    RedisCluster::start(&[
        (REDIS_IPS[0], base),
        (REDIS_IPS[1], base + 1),
        (REDIS_IPS[2], base + 2),
    ])
}

/// The `[cluster]` table of edge `i` (0 = A): `node = "edge-{a,b,c}"`, the two other edges
/// as `peers`, and `more` lines (e.g. `share = false`).
pub fn cluster_toml(i: usize, mode: &str, urls: &[String], more: &str) -> String {
    let urls: Vec<String> = urls.iter().map(|u| format!("\"{u}\"")).collect();
    let peers: Vec<String> = EDGE_IPS
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .map(|(_, ip)| format!("\"{ip}\""))
        .collect();
    format!(
        "\n[cluster]\nmode = \"{mode}\"\nnode = \"{}\"\nredis = [{}]\npeers = [{}]\n{more}\n",
        node_name(i),
        urls.join(", "),
        peers.join(", ")
    )
}

/// `edge-a`, `edge-b`, `edge-c`.
pub fn node_name(i: usize) -> String {
    format!("edge-{}", (b'a' + i as u8) as char)
}

/// Starts edge `i` on `EDGE_IPS[i]:port` (admin on port + 1) with two shards; `extra` is
/// appended to the config (the `[cluster]` table and anything else).
///
/// Overload shedding (issue 17) is off: it answers 503 when a shard's turn takes over
/// 50 ms, which a debug build on a shared 2-core CI machine running nine `redis-server`s
/// and three edges does now and then; these tests are about the cluster, not about load.
pub fn start_edge(tag: &str, i: usize, port: u16, extra: &str) -> Edge {
    let extra = format!("{extra}\n[overload]\nenabled = false\n");
    Edge::start_with(tag, EDGE_IPS[i], port, 2, "auto", &extra)
}

/// Starts `edge` again on its own config file (after `kill_9`): same journal, same address.
pub fn respawn(edge: &mut Edge, shards: usize) {
    assert!(edge.child.is_none(), "kill it first");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sipedge"))
        .arg("--config")
        .arg(&edge.config)
        .arg("--shards")
        .arg(shards.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    edge.child = Some(child);
    let probe = Client::new(&edge.sip.ip().to_string());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        probe.send(edge.sip, &crate::common::options(edge.sip, &probe, 1));
        if probe.recv(Duration::from_millis(200)).is_some() {
            return;
        }
        assert!(Instant::now() < deadline, "sipedge did not come back");
    }
}

/// Polls `f` every 50 ms until it holds or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// The Redis key of `user`'s bindings.
pub fn aor_key(user: &str) -> String {
    format!("sipedge:b:{{sip:{user}@{DOMAIN}}}")
}

/// Registers `user` from `phone` (Contact = its own address) at `edge` for 600 s; 200.
pub fn register_phone(phone: &Client, edge: &Edge, user: &str, call_id: &str, cseq: u32) {
    let contact = format!("<sip:{user}@{}>", phone.addr());
    phone.send(
        edge.sip,
        &register(phone, user, Some(&contact), Some(600), call_id, cseq),
    );
    assert_eq!(
        recv_where(phone, WAIT, |m| m.is_response()).map(|(_, m)| status(&m)),
        Some(200),
        "{user} registered at {}",
        edge.sip
    );
}

/// Waits until Redis holds a live binding of `user` written by `node`.
pub fn await_in_redis(cluster: &RedisCluster, user: &str, node: &str) {
    let key = aor_key(user);
    assert!(
        wait_for(Duration::from_secs(10), || {
            let v = cluster.cli(&["HGETALL", &key]);
            v.contains(node) && v.contains(":u\n")
        }),
        "{user}'s binding from {node} reached Redis: {:?}",
        cluster.cli(&["HGETALL", &key])
    );
}

/// The status of a response.
pub fn status(m: &[u8]) -> u16 {
    Message::parse(m).ok().and_then(|m| m.status()).unwrap_or(0)
}

/// The next datagram on `c` for which `pred` holds (others are skipped), with its sender.
pub fn recv_where(
    c: &Client,
    timeout: Duration,
    pred: impl Fn(&Message<'_>) -> bool,
) -> Option<(SocketAddr, Vec<u8>)> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        c.sock.set_read_timeout(Some(left)).unwrap();
        let (n, from) = c.sock.recv_from(&mut buf).ok()?;
        let bytes = buf[..n].to_vec();
        if Message::parse(&bytes).is_ok_and(|m| pred(&m)) {
            return Some((from, bytes));
        }
    }
}

fn has_call_id(m: &Message<'_>, call_id: &str) -> bool {
    m.call_id().is_ok_and(|c| c == call_id.as_bytes())
}

fn is_method(m: &Message<'_>, method: &str) -> bool {
    m.is_request()
        && m.cseq()
            .is_ok_and(|c| c.method.as_bytes() == method.as_bytes())
}

/// The header lines of `msg` whose (full or compact) name is one of `names`, in order.
pub fn header_lines(msg: &[u8], names: &[&str]) -> Vec<String> {
    let text = String::from_utf8_lossy(msg);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    head.split("\r\n")
        .skip(1)
        .filter(|l| {
            l.split(':')
                .next()
                .is_some_and(|n| names.iter().any(|want| n.trim().eq_ignore_ascii_case(want)))
        })
        .map(str::to_string)
        .collect()
}

/// The value of every header `name` (comma-separated values split), in order.
pub fn header_values(msg: &[u8], names: &[&str]) -> Vec<String> {
    header_lines(msg, names)
        .iter()
        .flat_map(|l| {
            let v = &l[l.find(':').unwrap() + 1..];
            split_commas(v.trim())
        })
        .collect()
}

/// Splits `a, b` outside angle brackets and quotes.
fn split_commas(v: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for ch in v.chars() {
        match ch {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// A response to `req`: its Via, Record-Route, From, Call-ID and CSeq copied, `To` tagged.
pub fn response_to(req: &[u8], code: u16, reason: &str, to_tag: &str, contact: &str) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for l in header_lines(
        req,
        &[
            "Via",
            "v",
            "Record-Route",
            "From",
            "f",
            "Call-ID",
            "i",
            "CSeq",
        ],
    ) {
        out.push_str(&l);
        out.push_str("\r\n");
    }
    let to = header_lines(req, &["To", "t"]).remove(0);
    if to.contains(";tag=") {
        out.push_str(&to);
    } else {
        out.push_str(&format!("{to};tag={to_tag}"));
    }
    out.push_str(&format!(
        "\r\nContact: {contact}\r\nContent-Length: 0\r\n\r\n"
    ));
    out.into_bytes()
}

/// An INVITE for `user`@edge.test from `caller`.
pub fn invite(caller: &Client, user: &str, call_id: &str) -> Vec<u8> {
    let me = caller.addr();
    format!(
        "INVITE sip:{user}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-i-{call_id};rport\r\nMax-Forwards: 70\r\nFrom: <sip:caller@{me}>;tag=c-{call_id}\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// Sends an INVITE for `user` from `caller` to `edge` and returns the final response (1xx
/// skipped) within `timeout`. A non-2xx is acknowledged (RFC 3261 §17.1.1.3).
pub fn invite_final(
    caller: &Client,
    edge: SocketAddr,
    user: &str,
    call_id: &str,
    timeout: Duration,
) -> Option<Vec<u8>> {
    caller.send(edge, &invite(caller, user, call_id));
    let (_, fin) = recv_where(caller, timeout, |m| {
        has_call_id(m, call_id) && m.status().is_some_and(|s| s >= 200)
    })?;
    if status(&fin) >= 300 {
        let me = caller.addr();
        let to = header_lines(&fin, &["To", "t"]).remove(0);
        let ack = format!(
            "ACK sip:{user}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-i-{call_id};rport\r\nMax-Forwards: 70\r\nFrom: <sip:caller@{me}>;tag=c-{call_id}\r\n{to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        );
        caller.send(edge, ack.as_bytes());
    }
    Some(fin)
}

/// What a whole call showed.
#[derive(Debug)]
pub struct CallSeen {
    /// The INVITE as the phone received it, and from where.
    pub invite_from: SocketAddr,
    pub invite: Vec<u8>,
    /// Where the ACK and the BYE reached the phone from.
    pub ack_from: SocketAddr,
    pub bye_from: SocketAddr,
}

/// In-dialog request `method` (CSeq `cseq`) from the caller after the 200 `ok`: to the
/// remote target (the 200's Contact) along the route set (the 200's Record-Route
/// reversed, RFC 3261 §12.1.2), sent to the first route's address, i.e. `first_hop`.
fn in_dialog(caller: &Client, ok: &[u8], method: &str, cseq: u32, call_id: &str) -> Vec<u8> {
    let me = caller.addr();
    let target = header_values(ok, &["Contact", "m"]).remove(0);
    let target = target.trim_start_matches('<');
    let target = &target[..target.find('>').unwrap_or(target.len())];
    let routes: Vec<String> = header_values(ok, &["Record-Route"])
        .into_iter()
        .rev()
        .collect();
    let to = header_lines(ok, &["To", "t"]).remove(0);
    let mut out = format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{method}-{call_id};rport\r\nMax-Forwards: 70\r\n"
    );
    for r in &routes {
        out.push_str(&format!("Route: {r}\r\n"));
    }
    out.push_str(&format!(
        "From: <sip:caller@{me}>;tag=c-{call_id}\r\n{to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    ));
    out.into_bytes()
}

/// A whole call from `caller` through `edge` to `user`, answered by `phone`: INVITE, the
/// phone's 200 back to the caller, ACK and BYE along the Record-Route, the BYE's 200 back.
/// Panics with what went wrong; returns what the phone saw.
pub fn full_call(
    caller: &Client,
    edge: SocketAddr,
    phone: &Client,
    user: &str,
    call_id: &str,
) -> CallSeen {
    caller.send(edge, &invite(caller, user, call_id));
    let (invite_from, inv) = recv_where(phone, Duration::from_secs(5), |m| {
        has_call_id(m, call_id) && is_method(m, "INVITE")
    })
    .unwrap_or_else(|| panic!("the INVITE for {user} ({call_id}) reached the phone"));
    let contact = format!("<sip:{user}@{}>", phone.addr());
    phone.send(invite_from, &response_to(&inv, 200, "OK", "p1", &contact));
    let (_, ok) = recv_where(caller, Duration::from_secs(5), |m| {
        has_call_id(m, call_id) && m.status().is_some_and(|s| s >= 200)
    })
    .unwrap_or_else(|| panic!("a final response reached the caller ({call_id})"));
    assert_eq!(status(&ok), 200, "{}", String::from_utf8_lossy(&ok));
    caller.send(edge, &in_dialog(caller, &ok, "ACK", 1, call_id));
    let (ack_from, _) = recv_where(phone, Duration::from_secs(5), |m| {
        has_call_id(m, call_id) && is_method(m, "ACK")
    })
    .unwrap_or_else(|| panic!("the ACK reached the phone ({call_id})"));
    caller.send(edge, &in_dialog(caller, &ok, "BYE", 2, call_id));
    let (bye_from, bye) = recv_where(phone, Duration::from_secs(5), |m| {
        has_call_id(m, call_id) && is_method(m, "BYE")
    })
    .unwrap_or_else(|| panic!("the BYE reached the phone ({call_id})"));
    phone.send(bye_from, &response_to(&bye, 200, "OK", "p1", &contact));
    let (_, bye_ok) = recv_where(caller, Duration::from_secs(5), |m| {
        has_call_id(m, call_id) && m.cseq().is_ok_and(|c| c.method.as_bytes() == b"BYE")
    })
    .unwrap_or_else(|| panic!("the BYE's 200 reached the caller ({call_id})"));
    assert_eq!(status(&bye_ok), 200);
    CallSeen {
        invite_from,
        invite: inv,
        ack_from,
        bye_from,
    }
}
