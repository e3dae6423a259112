//! TCP transport over the real binary (issue 19), on 127.0.60.0/24: REGISTER and calls over
//! persistent connections, CRLF keepalives, calls between UDP and TCP in both directions
//! (across shards), SIPp over TCP, and the limits (slowloris, per-IP flood, oversized).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sipedge_msg::Message;
use sipedge_rt::stream::{Frame, Framer};

use crate::common::{register, Client, Edge, WAIT};
use crate::protect::{next_final, status, uas_reply};

const PORT: u16 = 5060;

/// An edge on `ip` listening on UDP and TCP `ip:5060`, `extra` TOML appended.
pub(crate) fn edge(tag: &str, ip: &str, shards: usize, extra: &str) -> Edge {
    edge_io(tag, ip, shards, "auto", extra)
}

fn edge_io(tag: &str, ip: &str, shards: usize, io: &str, extra: &str) -> Edge {
    Edge::start_listen(
        tag,
        ip,
        PORT,
        shards,
        io,
        &[format!("tcp:{ip}:{PORT}")],
        extra,
        &[],
    )
}

/// A SIP client over one TCP connection from `src` (port chosen by the kernel).
pub(crate) struct Tcp {
    s: TcpStream,
    framer: Framer,
    got: std::collections::VecDeque<Vec<u8>>,
    pongs: usize,
}

impl Tcp {
    /// A client over an established connection (e.g. one the edge opened to us).
    pub(crate) fn from_stream(s: TcpStream) -> Tcp {
        Tcp {
            s,
            framer: Framer::new(1 << 20),
            got: Default::default(),
            pongs: 0,
        }
    }

    pub(crate) fn connect(src: &str, to: SocketAddr) -> Tcp {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let from: SocketAddr = format!("{src}:0").parse().unwrap();
        sock.bind(&from.into()).unwrap();
        sock.connect_timeout(&to.into(), Duration::from_secs(2))
            .unwrap();
        let s: TcpStream = sock.into();
        s.set_nodelay(true).unwrap();
        Tcp {
            s,
            framer: Framer::new(1 << 20),
            got: Default::default(),
            pongs: 0,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.s.local_addr().unwrap()
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Reads until a message (or a pong, counted) arrives or `timeout`; `None`: nothing.
    fn fill(&mut self, timeout: Duration, want_pong: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 8192];
        loop {
            if !self.got.is_empty() || (want_pong && self.pongs > 0) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.s.set_read_timeout(Some(left)).unwrap();
            let n = match self.s.read(&mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            // The edge's pong is a lone CRLF, which a Framer skips: count it here.
            if &buf[..n] == b"\r\n" && self.framer.buffered() == 0 {
                self.pongs += 1;
                continue;
            }
            let got = &mut self.got;
            self.framer
                .push(&buf[..n], &mut |f| {
                    if let Frame::Message(m) = f {
                        got.push_back(m.to_vec());
                    }
                })
                .unwrap();
        }
    }

    /// True once a CRLF pong arrived within `timeout` (RFC 5626 §4.4.1).
    pub(crate) fn pong_within(&mut self, timeout: Duration) -> bool {
        self.fill(timeout, true) && self.pongs > 0
    }

    pub(crate) fn recv(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        self.fill(timeout, false);
        self.got.pop_front()
    }

    pub(crate) fn status(&mut self) -> Option<u16> {
        Message::parse(&self.recv(Duration::from_secs(3))?)
            .ok()?
            .status()
    }

    /// True once the edge closed the connection (EOF or reset) within `timeout`.
    pub(crate) fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            self.s
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            match self.s.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return true,
            }
        }
        false
    }
}

/// A REGISTER over TCP for `user` from `c`, Contact on its connection.
fn tcp_register(c: &Tcp, user: &str, cseq: u32) -> Vec<u8> {
    let me = c.addr();
    format!(
        "REGISTER sip:edge.test SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bK-t{cseq}-{user}-{port};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@edge.test>;tag=f{cseq}\r\nTo: <sip:{user}@edge.test>\r\nCall-ID: tcp-{user}-{port}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{me};transport=tcp>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n",
        port = me.port()
    )
    .into_bytes()
}

pub(crate) fn invite(from_via: &str, me: SocketAddr, to_user: &str, id: &str) -> String {
    format!(
        "INVITE sip:{to_user}@edge.test SIP/2.0\r\nVia: SIP/2.0/{from_via} {me};branch=z9hG4bK-{id};rport\r\nMax-Forwards: 70\r\nFrom: <sip:caller@edge.test>;tag=caller-{id}\r\nTo: <sip:{to_user}@edge.test>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn register_over_tcp_is_answered_on_the_same_connection_with_pipelining_splits_and_pings() {
    let ip = "127.0.60.1";
    let e = edge("tcp-register", ip, 1, "");
    let to: SocketAddr = format!("{ip}:{PORT}").parse().unwrap();
    let mut c = Tcp::connect(ip, to);
    c.send(&tcp_register(&c, "alice", 1));
    assert_eq!(
        c.status(),
        Some(200),
        "REGISTER over TCP answered on its connection"
    );

    // Two messages in one write: both answered.
    let two = [tcp_register(&c, "alice", 2), tcp_register(&c, "alice", 3)].concat();
    c.send(&two);
    assert_eq!(c.status(), Some(200));
    assert_eq!(
        c.status(),
        Some(200),
        "the second message of the write answered too"
    );

    // One message over three writes: answered once whole.
    let m = tcp_register(&c, "alice", 4);
    for part in [&m[..20], &m[20..100], &m[100..]] {
        c.send(part);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        c.status(),
        Some(200),
        "a message split over three writes answered"
    );

    // RFC 5626 §4.4.1: CRLFCRLF ping, CRLF pong.
    c.send(b"\r\n\r\n");
    assert!(
        c.fill(Duration::from_secs(2), true) && c.pongs == 1,
        "CRLF pong"
    );
    assert_eq!(e.await_metric("sipedge_tcp_pings_total", 1, WAIT), 1);
    assert_eq!(e.metric("sipedge_tcp_accepted_total", None), 1);
}

/// The recvmmsg engine waits on the stream poller too (`ppoll`): an idle shard wakes for
/// a TCP message.
#[test]
fn register_over_tcp_with_the_mmsg_engine() {
    let ip = "127.0.60.13";
    let e = edge_io("tcp-mmsg", ip, 1, "mmsg", "");
    let mut c = Tcp::connect(ip, e.sip);
    // Idle first: the shard blocks in ppoll before the message arrives.
    std::thread::sleep(Duration::from_millis(300));
    c.send(&tcp_register(&c, "mmsg", 1));
    assert_eq!(c.status(), Some(200));
}

#[test]
fn a_tcp_caller_reaches_a_udp_callee_and_the_200_comes_back_on_its_connection() {
    let ip = "127.0.60.2";
    let e = edge("tcp-to-udp", ip, 2, "");
    let bob = Client::new(ip);
    let contact = format!("<sip:bob@{}>", bob.addr());
    bob.send(
        e.sip,
        &register(&bob, "bob", Some(&contact), Some(600), "tcp-to-udp-bob", 1),
    );
    assert_eq!(bob.status(Duration::from_secs(2)), Some(200));
    let mut alice = Tcp::connect(ip, e.sip);
    let inv = invite("TCP", alice.addr(), "bob", "tcp-to-udp-call");
    alice.send(inv.as_bytes());
    let at_bob = bob
        .recv(Duration::from_secs(3))
        .expect("INVITE relayed to the UDP callee");
    assert!(at_bob.starts_with(b"INVITE "));
    bob.send(e.sip, &uas_reply(&at_bob, "200 OK", &contact));
    let mut final_status = None;
    while let Some(m) = alice.recv(Duration::from_secs(3)) {
        let s = Message::parse(&m).unwrap().status();
        if s.is_some_and(|s| s >= 200) {
            final_status = s;
            break;
        }
    }
    assert_eq!(
        final_status,
        Some(200),
        "the 200 back on the caller's connection"
    );
}

#[test]
fn a_callee_registered_over_tcp_gets_invites_on_its_connection_from_any_shard() {
    let ip = "127.0.60.3";
    let e = edge("udp-to-tcp", ip, 2, "");
    // Several callees, each on its own connection (spread over both shards by the kernel);
    // each gets a call from its own UDP caller (also spread), so some INVITEs are emitted by
    // a shard that does not own the callee's connection.
    let n = 10;
    let mut callees = Vec::new();
    for i in 0..n {
        let mut c = Tcp::connect(ip, e.sip);
        c.send(&tcp_register(&c, &format!("callee{i}"), 1));
        let r = c.recv(WAIT).expect("an answer");
        assert_eq!(status(&r), Some(200), "{}", String::from_utf8_lossy(&r));
        callees.push(c);
    }
    for (i, c) in callees.iter_mut().enumerate() {
        let caller = Client::new(ip);
        let id = format!("udp-to-tcp-{i}");
        caller.send(
            e.sip,
            invite("UDP", caller.addr(), &format!("callee{i}"), &id).as_bytes(),
        );
        let at = c
            .recv(Duration::from_secs(3))
            .unwrap_or_else(|| panic!("callee{i} got its INVITE on its own connection"));
        assert!(
            at.starts_with(b"INVITE "),
            "{}",
            String::from_utf8_lossy(&at)
        );
        let contact = format!("<sip:callee{i}@{};transport=tcp>", c.addr());
        c.send(&uas_reply(&at, "200 OK", &contact));
        let fin = next_final(&caller);
        assert_eq!(
            status(&fin),
            Some(200),
            "callee{i}'s 200 relayed: {}",
            String::from_utf8_lossy(&fin)
        );
    }
    assert!(
        e.metric("sipedge_tcp_writes_forwarded_total", None) > 0,
        "some INVITEs were handed to the shard owning the connection"
    );
    assert_eq!(
        e.metric("sipedge_tcp_connects_total", None),
        0,
        "never a new connection toward a callee with a live one"
    );
}

#[test]
fn slowloris_connections_are_closed_after_the_header_timeout_while_a_clean_client_is_served() {
    let ip = "127.0.60.4";
    let e = edge(
        "tcp-slowloris",
        ip,
        1,
        "\n[tcp]\nheader_timeout_secs = 1\nidle_timeout_secs = 60\n",
    );
    let n = 5;
    let mut slow: Vec<Tcp> = (0..n).map(|_| Tcp::connect(ip, e.sip)).collect();
    let mut clean = Tcp::connect("127.0.60.5", e.sip);
    let start = Instant::now();
    let head =
        b"REGISTER sip:edge.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.60.4:1;branch=z9hG4bK-slow\r\n";
    let mut closed = vec![false; n];
    let mut k = 0;
    while closed.iter().any(|c| !c) && start.elapsed() < Duration::from_secs(6) {
        for (i, s) in slow.iter_mut().enumerate() {
            if !closed[i] {
                // A byte a beat; a write to a closed connection may fail: that is the point.
                let _ = s.s.write_all(&head[k % head.len()..k % head.len() + 1]);
                closed[i] = s.closed_within(Duration::from_millis(50));
            }
        }
        k += 1;
        clean.send(&tcp_register(&clean, "clean", k as u32));
        assert_eq!(
            clean.status(),
            Some(200),
            "the clean client is served meanwhile"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(closed.iter().all(|c| *c), "every slow connection closed");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "not before header_timeout"
    );
    assert_eq!(
        e.metric("sipedge_tcp_closed_header_timeout_total", None),
        n as u64
    );
    assert_eq!(
        e.metric("sipedge_tcp_connections_open", None),
        1,
        "the clean one"
    );
}

#[test]
fn a_connection_flood_from_one_ip_is_refused_past_the_cap_and_others_are_served() {
    let ip = "127.0.60.6";
    let e = edge("tcp-flood", ip, 2, "\n[tcp]\nmax_connections_per_ip = 4\n");
    let mut flood: Vec<Tcp> = (0..10).map(|_| Tcp::connect("127.0.60.7", e.sip)).collect();
    let mut open = 0;
    // Kept open to the end: a closed one would free its place.
    for c in &mut flood {
        c.send(&tcp_register(c, "flood", 1));
        if c.status() == Some(200) {
            open += 1;
        } else {
            assert!(c.closed_within(Duration::from_secs(1)));
        }
    }
    assert_eq!(
        open, 4,
        "max_connections_per_ip connections served, the rest closed"
    );
    assert_eq!(e.metric("sipedge_tcp_refused_per_ip_total", None), 6);
    let mut other = Tcp::connect("127.0.60.8", e.sip);
    other.send(&tcp_register(&other, "other", 1));
    assert_eq!(other.status(), Some(200), "another source is still served");
}

#[test]
fn an_oversized_message_or_a_stream_without_content_length_closes_the_connection() {
    let ip = "127.0.60.9";
    // max_message_bytes = 4096 in the test config.
    let e = edge("tcp-oversized", ip, 1, "");
    let mut big = Tcp::connect(ip, e.sip);
    big.send(b"MESSAGE sip:bob@edge.test SIP/2.0\r\nContent-Length: 10000\r\n\r\n");
    big.send(&[b'x'; 1000]);
    assert!(
        big.closed_within(Duration::from_secs(2)),
        "a message over max_message_bytes closes"
    );
    let mut endless = Tcp::connect(ip, e.sip);
    let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let _ = endless.s.write_all(b"OPTIONS sip:edge.test SIP/2.0\r\n");
    for _ in 0..100 {
        if endless.s.write_all(line).is_err() {
            break;
        }
    }
    assert!(
        endless.closed_within(Duration::from_secs(2)),
        "headers past the limit close"
    );
    let mut nolen = Tcp::connect(ip, e.sip);
    nolen.send(
        b"OPTIONS sip:edge.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.60.9:1;branch=z9hG4bK-x\r\n\r\n",
    );
    assert!(
        nolen.closed_within(Duration::from_secs(2)),
        "no Content-Length on a stream closes"
    );
    // The client may see the close before the shard publishes its counters.
    assert_eq!(
        e.await_metric("sipedge_tcp_closed_too_large_total", 2, WAIT),
        2
    );
    assert_eq!(
        e.await_metric("sipedge_tcp_closed_protocol_total", 1, WAIT),
        1
    );
}

/// SIPp over TCP (`-t t1`): 100 calls from a TCP caller through a two-shard edge to a
/// SIPp callee registered over UDP — INVITE, 180, 200, ACK and BYE along the Record-Route,
/// the caller's side all on its connection. SIPp exits 0 only when every call succeeded.
#[test]
fn sipp_over_tcp_calls_a_udp_callee_through_the_edge() {
    use crate::relay::{check, sipp, sipp_callee, sipp_installed};
    if !sipp_installed() {
        return;
    }
    let ip = "127.0.60.10";
    // Overload shedding off: on a loaded test machine a slow turn answers calls 503.
    let e = edge("tcp-sipp", ip, 2, "\n[overload]\nenabled = false\n");
    let callee = sipp_callee(&e, "tcp_uas.xml", "bob", "127.0.60.11", 25180, 100, "30s");
    let caller = sipp(
        "relay_uac.xml",
        "bob",
        "127.0.60.12",
        25170,
        &[
            "-t", "t1", "-m", "100", "-r", "50", "-l", "100", "-timeout", "30s",
        ],
        Some(e.sip),
    )
    .output()
    .unwrap();
    check("sipp caller over TCP", &caller);
    check("sipp callee", &callee.wait().unwrap());
    assert_eq!(
        e.metric("sipedge_relay_transactions_total", None),
        200,
        "INVITE + BYE per call"
    );
    assert!(
        e.metric("sipedge_tcp_messages_in_total", None) >= 300,
        "INVITE, ACK, BYE over TCP"
    );
}

/// A phone registered over TCP whose connection closed (the edge restarted its side, or the
/// phone did) is reached by a new connection the edge opens toward its flow address, the
/// INVITE queued until it is up; toward an address nobody listens on, the connect fails
/// and is counted.
#[test]
fn without_a_live_connection_the_edge_connects_out_and_counts_failures() {
    let ip = "127.0.60.14";
    let e = edge("tcp-connect-out", ip, 2, "");
    let phone_addr: SocketAddr = "127.0.60.15:25190".parse().unwrap();
    let reg = {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_reuse_address(true).unwrap();
        sock.bind(&phone_addr.into()).unwrap();
        sock.connect(&e.sip.into()).unwrap();
        let mut c = Tcp {
            s: sock.into(),
            framer: Framer::new(1 << 20),
            got: Default::default(),
            pongs: 0,
        };
        c.send(&tcp_register(&c, "roamer", 1));
        assert_eq!(c.status(), Some(200));
        c
    };
    drop(reg);
    e.await_metric("sipedge_tcp_closed_peer_total", 1, WAIT);
    let listener = {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.set_reuse_address(true).unwrap();
        sock.bind(&phone_addr.into()).unwrap();
        sock.listen(8).unwrap();
        std::net::TcpListener::from(sock)
    };
    let caller = Client::new(ip);
    caller.send(
        e.sip,
        invite("UDP", caller.addr(), "roamer", "connect-out-1").as_bytes(),
    );
    listener.set_nonblocking(false).unwrap();
    let (s, from) = listener.accept().unwrap();
    assert_eq!(
        from.ip(),
        e.sip.ip(),
        "the edge connects from its listen address"
    );
    let mut phone = Tcp {
        s,
        framer: Framer::new(1 << 20),
        got: Default::default(),
        pongs: 0,
    };
    let at = phone
        .recv(Duration::from_secs(3))
        .expect("the INVITE on the new connection");
    assert!(at.starts_with(b"INVITE "));
    assert_eq!(e.metric("sipedge_tcp_connects_total", None), 1);
    drop(listener);
    drop(phone);

    // Nobody listens any more: the connect fails, counted.
    e.await_metric("sipedge_tcp_closed_peer_total", 2, WAIT);
    let failed_before = e.metric("sipedge_tcp_closed_error_total", None);
    caller.send(
        e.sip,
        invite("UDP", caller.addr(), "roamer", "connect-out-2").as_bytes(),
    );
    assert!(
        e.await_metric("sipedge_tcp_closed_error_total", failed_before + 1, WAIT) > failed_before,
        "a failed connect is counted"
    );
}

/// A tls: listen without `[tls]` is refused at start naming the missing key, and a bad
/// `[tcp]` value is refused by `--check` naming its key.
#[test]
fn a_tls_listen_without_tls_and_bad_tcp_limits_are_refused_naming_the_key() {
    let dir = crate::common::temp_dir("tcp-refused");
    let path = dir.path().join("e.toml");
    let run = |text: &str, check: bool| {
        std::fs::write(&path, text).unwrap();
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_sipedge"));
        c.arg("--config").arg(&path);
        if check {
            c.arg("--check");
        }
        c.output().unwrap()
    };
    let base = "[server]\nlisten = [\"udp:127.0.60.16:5060\", \"tls:127.0.60.16:5061\"]\n[admin]\nlisten = \"127.0.60.16:5062\"\n[registrar]\npersistence = false\n";
    let out = run(base, false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("tls.certificate") && err.contains("tls: or wss: listen"),
        "{err}"
    );
    let out = run(
        &format!(
            "{}\n[tcp]\nmax_connections_per_ip = 0\n",
            base.replace("tls:", "tcp:")
        ),
        true,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tcp.max_connections_per_ip"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `idle_timeout_secs`: a registered connection with no byte either way closes; one whose
/// phone sends CRLF keepalives (RFC 5626 §4.4.1) stays open.
#[test]
fn idle_connections_close_and_crlf_keepalives_keep_one_open() {
    let ip = "127.0.60.17";
    let e = edge(
        "tcp-idle",
        ip,
        1,
        "\n[tcp]\nheader_timeout_secs = 1\nidle_timeout_secs = 2\n",
    );
    let mut quiet = Tcp::connect(ip, e.sip);
    quiet.send(&tcp_register(&quiet, "quiet", 1));
    assert_eq!(quiet.status(), Some(200));
    let mut pinging = Tcp::connect(ip, e.sip);
    pinging.send(&tcp_register(&pinging, "pinging", 1));
    assert_eq!(pinging.status(), Some(200));
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(4500) {
        pinging.pongs = 0;
        pinging.send(b"\r\n\r\n");
        assert!(pinging.fill(WAIT, true), "pong while pinging");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        quiet.closed_within(Duration::from_millis(100)),
        "the quiet one closed"
    );
    assert_eq!(e.metric("sipedge_tcp_closed_idle_timeout_total", None), 1);
    pinging.send(&tcp_register(&pinging, "pinging", 2));
    assert_eq!(
        pinging.status(),
        Some(200),
        "the pinging one is still served"
    );
}
