//! Every scenario end to end against a small in-process fake edge on loopback: a registrar
//! (optionally with digest auth), a relay to the registered contacts, and a pinger. Counts and
//! codes are asserted, never durations; every run is bounded by its request count and by short
//! timers.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use sipedge_msg::{HeaderName, Message, Method};
use sipedge_rt::{Engine, EngineConfig, IoMode, WakeFd};

use crate::retx::RetxPolicy;
use crate::runner::{PhaseOutcome, PhaseSpec, Runner, Setup};
use crate::scenario::digest::{self, Answer, Challenge};
use crate::scenario::{self, testkit, Kind, Params};

/// How the fake edge behaves.
#[derive(Clone, Copy)]
struct Edge {
    /// Challenge REGISTERs with this algorithm (`"MD5"`, `"SHA-256"`) and check the password.
    auth: Option<&'static str>,
    password: &'static str,
    /// After this many REGISTERs, ping every contact with OPTIONS and CRLF, this many rounds.
    ping_after: Option<(usize, u32)>,
}

const EDGE: Edge = Edge {
    auth: None,
    password: "sipload",
    ping_after: None,
};

fn hdr(m: &Message<'_>, n: HeaderName) -> String {
    String::from_utf8_lossy(m.header(n).unwrap_or_default()).into_owned()
}

fn addr_of_uri(uri: &[u8]) -> Option<SocketAddr> {
    let u = sipedge_msg::Uri::parse(uri).ok()?;
    let host = std::str::from_utf8(u.host()).ok()?;
    format!("{host}:{}", u.port()?).parse().ok()
}

/// The reply `status` to request `m`, with `extra` header lines.
fn reply(m: &Message<'_>, status: &str, extra: &str) -> Vec<u8> {
    let mut s = format!("SIP/2.0 {status}\r\n");
    for v in m.header_values(HeaderName::Via) {
        s += &format!("Via: {}\r\n", String::from_utf8_lossy(v));
    }
    let to = hdr(m, HeaderName::To);
    let to = if to.contains("tag=") {
        to
    } else {
        format!("{to};tag=edge")
    };
    s += &format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        hdr(m, HeaderName::From),
        hdr(m, HeaderName::CallId),
        hdr(m, HeaderName::CSeq)
    );
    s.into_bytes()
}

fn register(edge: &Edge, m: &Message<'_>, contacts: &mut HashMap<Vec<u8>, SocketAddr>) -> Vec<u8> {
    if let Some(alg) = edge.auth {
        let challenge =
            format!("Digest realm=\"localhost\", nonce=\"n0nce\", qop=\"auth\", algorithm={alg}");
        let Some(Ok(c)) = m.authorization().next() else {
            return reply(
                m,
                "401 Unauthorized",
                &format!("WWW-Authenticate: {challenge}\r\n"),
            );
        };
        let ch = Challenge::parse(challenge.as_bytes()).expect("our challenge");
        let field = |q: Option<sipedge_msg::QuotedStr<'_>>| -> Vec<u8> {
            q.map(|q| q.unescaped().collect()).unwrap_or_default()
        };
        let (user, uri, cnonce) = (field(c.username), field(c.uri), field(c.cnonce));
        let want = digest::response(
            &ch,
            &Answer {
                user: &user,
                password: edge.password.as_bytes(),
                method: b"REGISTER",
                uri: &uri,
                cnonce: &cnonce,
                nc: 1,
            },
        );
        if !c.response.is_some_and(|r| r.eq_bytes(want.as_bytes())) {
            return reply(m, "403 Forbidden", "");
        }
    }
    let Some(Ok(c)) = m.contacts().next() else {
        return reply(m, "400 No Contact", "");
    };
    let Some(addr) = c.addr() else {
        return reply(m, "400 Bad Contact", "");
    };
    let aor = m
        .to()
        .expect("To")
        .uri()
        .user()
        .unwrap_or_default()
        .to_vec();
    let Some(at) = addr_of_uri(addr.uri().raw()) else {
        return reply(m, "400 Bad Contact", "");
    };
    contacts.insert(aor, at);
    let contact = String::from_utf8_lossy(addr.raw()).into_owned();
    reply(m, "200 OK", &format!("Contact: {contact};expires=3600\r\n"))
}

/// Runs the fake edge until `stop`; returns its socket address.
fn spawn_edge(edge: Edge) -> (SocketAddr, Arc<AtomicBool>, JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind edge");
    sock.set_read_timeout(Some(Duration::from_millis(10)))
        .expect("timeout");
    let me = sock.local_addr().expect("bound");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let h = std::thread::spawn(move || {
        let mut contacts: HashMap<Vec<u8>, SocketAddr> = HashMap::new();
        let mut registers = 0usize;
        let mut pinged = 0u32;
        let mut buf = vec![0u8; 65536];
        let my_via = format!("Via: SIP/2.0/UDP {me};branch=z9hG4bKedge");
        while !stop2.load(Ordering::Relaxed) {
            if let Some((after, rounds)) = edge.ping_after {
                if registers >= after && pinged < rounds {
                    pinged += 1;
                    for (i, at) in contacts.values().enumerate() {
                        let ping = format!(
                            "OPTIONS sip:{at} SIP/2.0\r\n{my_via}p{pinged}.{i}\r\n\
                             From: <sip:pinger@localhost>;tag=p\r\nTo: <sip:{at}>\r\n\
                             Call-ID: ping{pinged}.{i}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                        );
                        let _ = sock.send_to(ping.as_bytes(), at);
                        let _ = sock.send_to(b"\r\n\r\n", at);
                    }
                }
            }
            let Ok((len, from)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let Ok(m) = Message::parse(&buf[..len]) else {
                continue;
            };
            if m.is_response() {
                // A reply to a request we relayed: pop our Via, send on to the next one.
                let Ok(Some(v)) = m.vias().nth(1).transpose() else {
                    continue; // a reply to our own ping
                };
                let to: SocketAddr = format!(
                    "{}:{}",
                    String::from_utf8_lossy(v.host()),
                    v.port().unwrap_or(5060)
                )
                .parse()
                .expect("loopback sent-by");
                let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                let start = text.find(&my_via).expect("our Via is on top");
                let end = start + text[start..].find("\r\n").expect("line end") + 2;
                let out = format!("{}{}", &text[..start], &text[end..]);
                let _ = sock.send_to(out.as_bytes(), to);
                continue;
            }
            let out = match m.method() {
                Some(Method::Register) => {
                    registers += 1;
                    Some(register(&edge, &m, &mut contacts))
                }
                Some(Method::Options) => Some(reply(&m, "200 OK", "")),
                _ => {
                    // Relay: initial requests to the AoR's contact, in-dialog ones to the
                    // Request-URI, with our Via on top.
                    let ruri = m.request_uri().expect("Request-URI");
                    let target = match m.to().ok().and_then(|t| t.tag()) {
                        Some(_) => addr_of_uri(ruri.raw()),
                        None => contacts.get(ruri.user().unwrap_or_default()).copied(),
                    };
                    match target {
                        Some(at) => {
                            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                            let line_end = text.find("\r\n").expect("start line") + 2;
                            let b = m
                                .top_via()
                                .ok()
                                .and_then(|v| v.branch())
                                .unwrap_or_default();
                            let out = format!(
                                "{}{my_via}{}\r\n{}",
                                &text[..line_end],
                                String::from_utf8_lossy(b),
                                &text[line_end..]
                            );
                            let _ = sock.send_to(out.as_bytes(), at);
                            None
                        }
                        None if m.method() == Some(Method::Ack) => None,
                        None => Some(reply(&m, "404 Not Found", "")),
                    }
                }
            };
            if let Some(out) = out {
                let _ = sock.send_to(&out, from);
            }
        }
    });
    (me, stop, h)
}

/// Runs `kind` with `uas` UAs against a fake edge: its setup (if any), then one open-loop phase
/// of `flows` flows.
fn run(
    kind: Kind,
    edge: Edge,
    uas: usize,
    flows: u64,
    tweak: impl FnOnce(&mut Params),
) -> (Option<PhaseOutcome>, PhaseOutcome) {
    run_split(kind, edge, false, uas, flows, Duration::ZERO, tweak)
}

/// [`run`]; with `setup_elsewhere`, the setup goes to a second fake edge (`--register-target`)
/// that shares nothing with the first; `hold`: `call --hold-ms`.
#[allow(clippy::too_many_arguments)]
fn run_split(
    kind: Kind,
    edge: Edge,
    setup_elsewhere: bool,
    uas: usize,
    flows: u64,
    hold: Duration,
    tweak: impl FnOnce(&mut Params),
) -> (Option<PhaseOutcome>, PhaseOutcome) {
    let (addr, stop, h) = spawn_edge(edge);
    let other = setup_elsewhere.then(|| spawn_edge(edge));
    let sockets: Vec<UdpSocket> = (0..uas)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind UA");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    let locals = sockets
        .iter()
        .map(|s| s.local_addr().expect("bound"))
        .collect();
    let engine = Engine::new(
        IoMode::Auto,
        sockets,
        WakeFd::new().expect("eventfd"),
        &EngineConfig::default(),
    )
    .expect("engine");
    let setup = Setup {
        target: addr,
        locals,
        policy: RetxPolicy::new(Duration::from_millis(100), Duration::from_millis(400)),
        count_any_reply: false,
        drain: Duration::from_secs(8),
        max_burst: 64,
        hold,
    };
    let mut p = testkit::params(uas);
    p.target = addr;
    tweak(&mut p);
    let mut runner = Runner::new(engine, scenario::build(kind, &p), setup);
    if let Some((a, _, _)) = &other {
        runner.set_target(*a);
    }
    let n = runner.scenario_mut().setup_flows();
    let setup_out = (n > 0).then(|| {
        let spec = PhaseSpec {
            rate: 0.0,
            outstanding: 8,
            duration: Duration::from_secs(10),
            max_requests: n,
        };
        let out = runner.run_phase(&spec).expect("setup runs");
        runner.scenario_mut().end_setup();
        out
    });
    runner.set_target(addr);
    let spec = PhaseSpec {
        rate: 2000.0,
        outstanding: 1,
        duration: if flows == 0 {
            Duration::from_millis(600)
        } else {
            Duration::from_secs(5)
        },
        max_requests: flows,
    };
    let out = runner.run_phase(&spec).expect("phase runs");
    stop.store(true, Ordering::Relaxed);
    h.join().expect("edge thread");
    if let Some((_, stop, h)) = other {
        stop.store(true, Ordering::Relaxed);
        h.join().expect("edge thread");
    }
    (setup_out, out)
}

#[test]
fn register_creates_one_binding_per_flow() {
    let (setup, out) = run(Kind::Register, EDGE, 5, 200, |_| {});
    assert!(setup.is_none());
    let c = &out.stats.c;
    assert_eq!((c.sent, c.successes, c.failed()), (200, 200, 0), "{c:?}");
    assert_eq!(c.codes.get(&200), Some(&200));
}

#[test]
fn refresh_registers_the_aors_first_then_renews_them() {
    let (setup, out) = run(Kind::Refresh, EDGE, 4, 90, |p| p.aors = Some(30));
    let s = setup.expect("refresh has a setup");
    assert_eq!((s.stats.c.sent, s.stats.c.successes), (30, 30));
    let c = &out.stats.c;
    assert_eq!((c.sent, c.successes, c.failed()), (90, 90, 0), "{c:?}");
}

#[test]
fn register_auth_answers_md5_and_sha256_challenges() {
    for alg in ["MD5", "SHA-256"] {
        let edge = Edge {
            auth: Some(alg),
            ..EDGE
        };
        let (_, out) = run(Kind::RegisterAuth, edge, 3, 50, |_| {});
        let c = &out.stats.c;
        assert_eq!(
            (c.sent, c.requests, c.successes, c.failed()),
            (50, 100, 50, 0),
            "{alg}: {c:?}"
        );
        assert_eq!(
            (c.codes.get(&401), c.codes.get(&200)),
            (Some(&50), Some(&50))
        );
    }
    // A wrong password: the authenticated REGISTER is refused, every flow fails.
    let edge = Edge {
        auth: Some("MD5"),
        password: "other",
        ..EDGE
    };
    let (_, out) = run(Kind::RegisterAuth, edge, 3, 20, |_| {});
    assert_eq!((out.stats.c.successes, out.stats.c.failures), (0, 20));
    assert_eq!(out.stats.c.codes.get(&403), Some(&20));
}

#[test]
fn calls_reach_the_registered_callees_and_hang_up() {
    let (setup, out) = run(Kind::Call, EDGE, 6, 60, |_| {});
    assert_eq!(setup.expect("callees register").stats.c.successes, 3);
    let c = &out.stats.c;
    assert_eq!((c.sent, c.successes, c.failed()), (60, 60, 0), "{c:?}");
    assert_eq!(c.requests, 120, "INVITE and BYE transactions");
    assert_eq!(
        c.answered, 180,
        "the callees took INVITE, ACK and BYE of every call"
    );
    assert_eq!(c.provisional, 60, "one 180 per call");
    assert_eq!(
        out.stats.invite_latency.len(),
        60,
        "INVITE latency: the INVITEs only"
    );
    assert_eq!(out.stats.latency.len(), 120, "every transaction");
}

/// `--hold-ms`: every call is established, held, then hung up; each BYE is answered
/// (`byes_*` in the phase's scenario report), and the phase lasts at least the hold.
#[test]
fn held_calls_hang_up_after_the_hold() {
    let hold = Duration::from_millis(300);
    let t0 = std::time::Instant::now();
    let (_, out) = run_split(Kind::Call, EDGE, false, 6, 20, hold, |_| {});
    assert!(t0.elapsed() >= hold);
    let c = &out.stats.c;
    assert_eq!((c.sent, c.successes, c.failed()), (20, 20, 0), "{c:?}");
    assert_eq!(c.requests, 40, "INVITE and BYE transactions");
    assert_eq!(c.answered, 60, "INVITE, ACK and BYE of every call");
}

#[test]
fn register_target_sends_the_setup_elsewhere_and_the_calls_to_the_target() {
    // The callees register on the other edge; the target edge holds nobody and answers 404.
    let (setup, out) = run_split(Kind::Call, EDGE, true, 6, 30, Duration::ZERO, |_| {});
    assert_eq!(setup.expect("callees register").stats.c.successes, 3);
    let c = &out.stats.c;
    assert_eq!((c.sent, c.successes, c.failures), (30, 0, 30), "{c:?}");
    assert_eq!(c.codes.get(&404), Some(&30));
    assert_eq!(c.answered, 0, "no call reached a callee");
}

#[test]
fn keepalive_uas_answer_pings_and_count_crlf() {
    let edge = Edge {
        ping_after: Some((8, 2)),
        ..EDGE
    };
    let (setup, out) = run(Kind::Keepalive, edge, 8, 0, |_| {});
    let s = setup.expect("UAs register").stats.c;
    assert_eq!(s.successes, 8);
    let c = &out.stats.c;
    assert_eq!(c.sent, 0, "a keepalive phase sends no requests of its own");
    // The first round may arrive while the setup is finishing: count both phases.
    assert_eq!(
        s.answered + c.answered,
        16,
        "two OPTIONS rounds over 8 contacts"
    );
    assert_eq!(s.keepalives + c.keepalives, 16, "and two CRLF rounds");
    assert_eq!(s.unexpected + c.unexpected, 0);
}
