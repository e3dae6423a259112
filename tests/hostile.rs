//! Hostile traffic against the real binary (issue 13), on loopback 127.0.134.0/24: the
//! attacks of the issue one by one, then floods of INVITEs with distinct Call-IDs and of
//! spoofed-looking responses while a clean source keeps probing with OPTIONS.
//!
//! What each test asserts is what a user or a victim would notice: the edge still answers,
//! a binding is (not) there, a datagram is NOT sent to an address that never spoke to us.
//! Tests that need a fix from another branch are `#[ignore = "needs …"]` until it lands:
//! `double_removal_register_keeps_the_edge_up` (registrar), `replayed_record_route_token_is_not_relayed_to_a_foreign_ip`
//! (relay token), `response_with_a_branch_like_ours_is_not_reflected` (branch MAC),
//! `unauthenticated_invite_with_a_foreign_from_is_not_delivered` (auth) and
//! `floods_of_1e5_leave_options_answered_and_memory_bounded` (transaction caps).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{register, Client, Edge, Prober, DOMAIN, WAIT};
use sipedge_msg::{HeaderName, Message};

/// How long a victim listens for what must not come.
const QUIET: Duration = Duration::from_millis(1000);
/// An address that never sends anything to the edge (a "foreign IP literal").
const VICTIM_IP: &str = "127.0.134.250";

fn users_toml() -> String {
    format!(
        "\n[auth]\nrealm = \"{DOMAIN}\"\nalgorithms = [\"MD5\"]\ninvite = \"digest\"\nregister = \"digest\"\n\n[[accounts]]\nname = \"acme\"\n\n[[users]]\nusername = \"alice\"\naccount = \"acme\"\npassword = \"wonderland\"\n\n[[users]]\nusername = \"bob\"\naccount = \"acme\"\npassword = \"builder\"\n"
    )
}

fn status_of(b: &[u8]) -> Option<u16> {
    Message::parse(b).ok()?.status()
}

/// The next reply that is not a 100 Trying.
fn final_status(c: &Client) -> Option<u16> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match status_of(&c.recv(WAIT)?) {
            Some(100) => continue,
            s => return s,
        }
    }
    None
}

fn assert_answers_options(edge: &Edge, ip: &str) {
    let c = Client::new(ip);
    c.send(edge.sip, &common::options(edge.sip, &c, 7));
    assert_eq!(c.status(WAIT), Some(200), "the edge still answers OPTIONS");
}

/// A request from `c` (its own address in Via, with rport).
fn request(c: &Client, method: &str, ruri: &str, call: &str, cseq: u32, extra: &str) -> Vec<u8> {
    let me = c.addr();
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{call}-{cseq}-{method};rport\r\nMax-Forwards: 70\r\nFrom: <sip:caller@{DOMAIN}>;tag=c-{call}\r\nTo: <{ruri}>\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@{me}>\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The response a UAS sends to `req` (To tag added).
fn respond(req: &[u8], code: u16) -> Vec<u8> {
    let m = Message::parse(req).unwrap();
    let mut s = format!("SIP/2.0 {code} X\r\n");
    for v in m.header_values(HeaderName::Via) {
        s.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    for v in m.header_values(HeaderName::RecordRoute) {
        s.push_str(&format!("Record-Route: {}\r\n", String::from_utf8_lossy(v)));
    }
    let h = |n| String::from_utf8_lossy(m.header(n).unwrap()).into_owned();
    s.push_str(&format!(
        "From: {}\r\nTo: {};tag=callee\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:callee@127.0.134.2:5999>\r\nContent-Length: 0\r\n\r\n",
        h(HeaderName::From),
        h(HeaderName::To),
        h(HeaderName::CallId),
        h(HeaderName::CSeq)
    ));
    s.into_bytes()
}

/// The next request that reaches `c` (skipping anything else).
fn next_request(c: &Client) -> Vec<u8> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(b) = c.recv(WAIT) {
            if Message::parse(&b).is_ok_and(|m| m.method().is_some()) {
                return b;
            }
        }
    }
    panic!("no request reached {}", c.addr());
}

/// `sip:NAME@edge.test` registered by `c` with its own address as the contact.
fn register_here(edge: &Edge, c: &Client, user: &str) {
    let contact = format!("<sip:{user}@{}>", c.addr());
    c.send(
        edge.sip,
        &register(
            c,
            user,
            Some(&contact),
            Some(600),
            &format!("reg-{user}"),
            1,
        ),
    );
    assert_eq!(c.status(WAIT), Some(200), "{user} registered");
}

/// Issue 13: a REGISTER with two `expires=0` Contacts that both match one stored contact
/// (RFC 3261 §19.1.4: a parameter present in one URI only is ignored) but not each other
/// removed the binding twice — a chain loop in release builds, an overflow panic in debug.
#[test]
fn double_removal_register_keeps_the_edge_up() {
    let ip = "127.0.134.1";
    let mut edge = Edge::start("hostile-dbl", ip, 25300, 2, "auto");
    let phone = Client::new(ip);
    let me = phone.addr();
    register_here(&edge, &phone, "dora");
    let two = format!(
        "<sip:dora@{me};foo=1>;expires=0\r\nContact: <sip:dora@{me};foo=2>;expires=0\r\nContact: <sip:dora@127.0.134.1:5999>;expires=600"
    );
    phone.send(
        edge.sip,
        &register(&phone, "dora", Some(&two), None, "reg-dora", 2),
    );
    let s = phone.status(WAIT);
    assert!(matches!(s, Some(200 | 400 | 403)), "answered: {s:?}");
    // The AoR can still be refreshed, queried and cleared, and the edge keeps answering.
    for cseq in 3..6 {
        phone.send(
            edge.sip,
            &register(&phone, "dora", None, None, "reg-dora", cseq),
        );
        assert_eq!(phone.status(WAIT), Some(200), "query {cseq}");
    }
    for i in 0..8 {
        assert_answers_options(&edge, &format!("127.0.134.{}", 10 + i));
    }
    assert!(edge.alive(), "the process survived");
    assert!(edge.terminate().success());
}

/// Issue 13: the dialog token of our Record-Route lets an in-dialog request leave our
/// domains; replayed with a Route to a foreign IP literal it must not make us a relay.
#[test]
fn replayed_record_route_token_is_not_relayed_to_a_foreign_ip() {
    let ip = "127.0.134.2";
    let mut edge = Edge::start("hostile-rr", ip, 25310, 2, "auto");
    let victim = Client::new(VICTIM_IP);
    let callee = Client::new(ip);
    register_here(&edge, &callee, "carl");
    let caller = Client::new(ip);
    caller.send(
        edge.sip,
        &request(&caller, "INVITE", "sip:carl@edge.test", "rr1", 1, ""),
    );
    let inv = next_request(&callee);
    callee.send(edge.sip, &respond(&inv, 200));
    let ok = loop {
        let b = caller.recv(WAIT).expect("the 200 reaches the caller");
        if status_of(&b) == Some(200) {
            break b;
        }
    };
    let rr: Vec<String> = Message::parse(&ok)
        .unwrap()
        .header_values(HeaderName::RecordRoute)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(!rr.is_empty(), "the edge record-routes");
    // The attacker replays the token of that dialog toward the victim: as a new INVITE
    // with the same Call-ID, and as an in-dialog BYE whose route goes on to the victim.
    let route = format!(
        "Route: {}, <sip:{}:{};lr>\r\n",
        rr[0],
        VICTIM_IP,
        victim.addr().port()
    );
    let target = format!("sip:x@{}", victim.addr());
    for (method, cseq) in [("INVITE", 5), ("BYE", 6), ("MESSAGE", 7)] {
        caller.send(
            edge.sip,
            &request(&caller, method, &target, "rr1", cseq, &route),
        );
    }
    let got = victim.drain_for(QUIET);
    assert!(
        got.is_empty(),
        "relayed to the victim: {:?}",
        first_lines(&got)
    );
    assert_answers_options(&edge, ip);
    assert!(edge.terminate().success());
}

/// Issue 13: a response whose top Via carries a branch that looks like ours (our prefix,
/// a slot with no live transaction) is forwarded by its next Via: a reflector.
#[test]
fn response_with_a_branch_like_ours_is_not_reflected() {
    let ip = "127.0.134.3";
    let mut edge = Edge::start("hostile-branch", ip, 25320, 2, "auto");
    let victim = Client::new(VICTIM_IP);
    let attacker = Client::new(ip);
    for i in 0..64u32 {
        attacker.send(edge.sip, &forged_response(&edge, i, victim.addr()));
    }
    let got = victim.drain_for(QUIET);
    assert!(
        got.is_empty(),
        "reflected to the victim: {:?}",
        first_lines(&got)
    );
    assert_answers_options(&edge, ip);
    assert!(edge.terminate().success());
}

/// A 200 OK to an INVITE whose top Via names the edge with a branch shaped like ours
/// (`z9hG4bKsE` + shard + slot + generation + branch + loop hash) and whose next Via
/// names `next`.
fn forged_response(edge: &Edge, i: u32, next: SocketAddr) -> Vec<u8> {
    let shard = i % 2;
    let branch = format!(
        "z9hG4bKsE{shard:04x}{:08x}{:05x}0{:08x}",
        i / 2,
        i * 7919 % 0xfffff,
        i
    );
    format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {};branch={branch}\r\nVia: SIP/2.0/UDP {next};branch=z9hG4bK-v{i}\r\nFrom: <sip:a@{DOMAIN}>;tag=1\r\nTo: <sip:b@{DOMAIN}>;tag=2\r\nCall-ID: forged-{i}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        edge.sip
    )
    .into_bytes()
}

/// Issue 13: with digest on, an INVITE from an unknown source claiming one of our users in
/// From (RFC 3261 §22.3: our users authenticate), to a registered user, is challenged (407)
/// or refused — never delivered. A From in a foreign domain is an inbound call and is
/// delivered by design (Kamailio's default script: only `from_uri == myself` is
/// authenticated), so it is not part of this test.
#[test]
fn unauthenticated_invite_with_a_local_from_is_not_delivered() {
    let ip = "127.0.134.4";
    let mut edge = Edge::start_with("hostile-from", ip, 25330, 2, "auto", &users_toml());
    let bob = Client::new(ip);
    // bob registers with digest.
    let contact = format!("<sip:bob@{}>", bob.addr());
    bob.send(
        edge.sip,
        &register(&bob, "bob", Some(&contact), Some(600), "reg-bob", 1),
    );
    let challenge = bob.recv(WAIT).unwrap();
    assert_eq!(status_of(&challenge), Some(401));
    let creds = digest(&challenge, "bob", "builder", "REGISTER", "sip:edge.test", 1);
    let mut r = String::from_utf8(register(
        &bob,
        "bob",
        Some(&contact),
        Some(600),
        "reg-bob",
        2,
    ))
    .unwrap();
    r = r.replace(
        "Content-Length: 0",
        &format!("Authorization: {creds}\r\nContent-Length: 0"),
    );
    bob.send(edge.sip, r.as_bytes());
    assert_eq!(bob.status(WAIT), Some(200), "bob registered");
    let attacker = Client::new(ip);
    let me = attacker.addr();
    for (i, from) in ["<sip:alice@edge.test>", "<sip:carol@edge.test>"]
        .iter()
        .enumerate()
    {
        let inv = format!(
            "INVITE sip:bob@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-ff{i};rport\r\nMax-Forwards: 70\r\nFrom: {from};tag=x{i}\r\nTo: <sip:bob@edge.test>\r\nCall-ID: foreign-from-{i}\r\nCSeq: 1 INVITE\r\nContact: <sip:x@{me}>\r\nContent-Length: 0\r\n\r\n"
        );
        attacker.send(edge.sip, inv.as_bytes());
        let s = final_status(&attacker);
        let got = bob.drain_for(QUIET);
        let invites: Vec<_> = got
            .iter()
            .filter(|(_, b)| b.starts_with(b"INVITE"))
            .collect();
        assert!(
            invites.is_empty(),
            "From {from} delivered to bob: {:?}",
            first_lines(&got)
        );
        assert!(matches!(s, Some(403 | 407)), "From {from}: answered {s:?}");
    }
    assert!(edge.terminate().success());
}

/// Issue 13: a captured authenticated REGISTER replayed (new branch and CSeq, the same
/// credentials, the attacker's Contact) must not change the binding.
#[test]
fn replayed_authenticated_register_is_refused() {
    let ip = "127.0.134.5";
    let mut edge = Edge::start_with("hostile-replay", ip, 25340, 2, "auto", &users_toml());
    let alice = Client::new(ip);
    let contact = format!("<sip:alice@{}>", alice.addr());
    alice.send(
        edge.sip,
        &register(&alice, "alice", Some(&contact), Some(600), "reg-a", 1),
    );
    let challenge = alice.recv(WAIT).unwrap();
    let creds = digest(
        &challenge,
        "alice",
        "wonderland",
        "REGISTER",
        "sip:edge.test",
        1,
    );
    let with = |c: &Client, contact: &str, cseq: u32| {
        String::from_utf8(register(
            c,
            "alice",
            Some(contact),
            Some(600),
            "reg-a",
            cseq,
        ))
        .unwrap()
        .replace(
            "Content-Length: 0",
            &format!("Authorization: {creds}\r\nContent-Length: 0"),
        )
    };
    alice.send(edge.sip, with(&alice, &contact, 2).as_bytes());
    assert_eq!(alice.status(WAIT), Some(200), "alice registered");
    // The attacker replays the credentials from its own socket with its own Contact.
    let attacker = Client::new(ip);
    let evil = format!("<sip:alice@{}>", attacker.addr());
    for cseq in 3..6 {
        attacker.send(edge.sip, with(&attacker, &evil, cseq).as_bytes());
        let s = attacker.status(WAIT);
        assert!(matches!(s, Some(401 | 403)), "replay {cseq} answered {s:?}");
    }
    // alice's own query (fresh credentials) lists only her contact.
    alice.send(edge.sip, &register(&alice, "alice", None, None, "reg-q", 1));
    let ch = alice.recv(WAIT).unwrap();
    let creds = digest(&ch, "alice", "wonderland", "REGISTER", "sip:edge.test", 1);
    let q = String::from_utf8(register(&alice, "alice", None, None, "reg-q", 2))
        .unwrap()
        .replace(
            "Content-Length: 0",
            &format!("Authorization: {creds}\r\nContent-Length: 0"),
        );
    alice.send(edge.sip, q.as_bytes());
    let reply = alice.recv(WAIT).unwrap();
    assert_eq!(status_of(&reply), Some(200));
    let listed = common::listed_contacts(&reply);
    assert!(
        listed
            .iter()
            .all(|(u, _)| !u.contains(&attacker.addr().to_string())),
        "the replay registered the attacker: {listed:?}"
    );
    assert!(edge.terminate().success());
}

/// Digest credentials (MD5, qop=auth, nc) answering the challenge in `reply`.
fn digest(reply: &[u8], user: &str, pw: &str, method: &str, uri: &str, nc: u32) -> String {
    common::digest_answer(&common::challenge(reply), user, pw, method, uri, nc)
}

fn first_lines(got: &[(SocketAddr, Vec<u8>)]) -> Vec<String> {
    got.iter()
        .take(4)
        .map(|(from, b)| {
            let l = String::from_utf8_lossy(b);
            format!("{from}: {}", l.lines().next().unwrap_or(""))
        })
        .collect()
}

/// Flood sizes (issue 13: 10⁵ of each).
const FLOOD: u32 = 100_000;
/// Datagrams per burst, and the pause after each: paces the flood below what a debug
/// build can take on a shared 2-core VM, so the test measures the edge, not the kernel's
/// receive-buffer drops.
const BURST: u32 = 40;
const PAUSE: Duration = Duration::from_millis(5);
/// Flood sending ports.
const PORTS: usize = 6;
/// The caps the flood edge runs with (`[limits]`, issue 13).
const FLOOD_LIMITS: &str =
    "\n[limits]\nmax_transactions = 20000\nmax_transaction_bytes = 67108864\n";
/// The RSS the process must stay under, MiB: the 64 MiB of transaction bytes above, the
/// default mesh budget, and the binary's own footprint with room for the debug build.
const RSS_CAP_MIB: u64 = 256;

/// Issue 13 at full size: 10⁵ INVITEs with distinct Call-IDs and 10⁵ spoofed-looking
/// responses (see [`flood`]), about 28 s at the paced rate.
#[test]
fn floods_of_1e5_leave_options_answered_and_memory_bounded() {
    flood(
        FLOOD,
        "hostile-flood",
        "127.0.134.6",
        25350,
        ["127.0.134.60", "127.0.134.61"],
    );
}

/// The same floods at a tenth of the size: what CI runs today.
#[test]
fn floods_of_1e4_leave_options_answered_and_memory_bounded() {
    flood(
        FLOOD / 10,
        "hostile-flood-s",
        "127.0.134.7",
        25360,
        ["127.0.134.70", "127.0.134.71"],
    );
}

/// `n` INVITEs with distinct Call-IDs to a registered user whose phone never answers, and
/// `n` responses that look spoofed (unknown branches, next Via at the sender), from several
/// source ports. Throughout, a clean source's OPTIONS (one every 50 ms) gets its 200 within
/// 1 s — or, while a shard sheds under pressure (issue 17), a 503 with Retry-After; nothing reaches an address that did not send; RSS stays under [`RSS_CAP_MIB`].
fn flood(n: u32, tag: &str, ip: &str, port: u16, [phone_ip, prober_ip]: [&str; 2]) {
    // One flood at a time: two would measure each other.
    static ONE_FLOOD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_FLOOD.lock().unwrap_or_else(|e| e.into_inner());
    // The transaction caps of issue 13, set low enough that the flood reaches them: past
    // them the edge answers 503 statelessly and keeps serving.
    let mut edge = Edge::start_with(tag, ip, port, 2, "auto", FLOOD_LIMITS);
    let victim = Client::new(VICTIM_IP);
    // The callee's phone: registered, never reads (its receive buffer fills and drops).
    let sink = Client::new(phone_ip);
    register_here(&edge, &sink, "sink");
    let prober = Prober::start(
        &edge,
        prober_ip,
        Duration::from_millis(50),
        Duration::from_secs(1),
    );
    let senders: Vec<Client> = (0..PORTS).map(|_| Client::new(ip)).collect();
    let start = Instant::now();
    for i in 0..2 * n {
        let s = &senders[i as usize % PORTS];
        let me = s.addr();
        let bytes = if i % 2 == 0 {
            // Via sent-by names the victim without rport: replies must still go to the
            // source address (RFC 3261 §18.2.2 received), never to the victim.
            format!(
                "INVITE sip:sink@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {VICTIM_IP}:{vp};branch=z9hG4bK-fl{i}\r\nMax-Forwards: 70\r\nFrom: <sip:flood@{DOMAIN}>;tag=f{i}\r\nTo: <sip:sink@edge.test>\r\nCall-ID: flood-{i}@{me}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
                vp = victim.addr().port()
            )
        } else {
            format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {};branch=z9hG4bK{:016x}\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-s{i}\r\nFrom: <sip:a@{DOMAIN}>;tag=1\r\nTo: <sip:b@{DOMAIN}>;tag=2\r\nCall-ID: spoof-{i}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
                edge.sip,
                u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )
        };
        s.send(edge.sip, bytes.as_bytes());
        if i % BURST == BURST - 1 {
            std::thread::sleep(PAUSE);
        }
    }
    let flood_time = start.elapsed();
    eprintln!(
        "flood: {} datagrams in {flood_time:?} ({:.0}/s)",
        2 * n,
        f64::from(2 * n) / flood_time.as_secs_f64()
    );
    // Let the backlog drain while the prober keeps probing.
    std::thread::sleep(Duration::from_secs(2));
    let report = prober.stop();
    let got = victim.drain_for(Duration::from_millis(200));
    eprintln!(
        "flood of {} datagrams took {flood_time:?}; probe: {report:?}",
        2 * n
    );
    assert!(edge.alive(), "the process survived the flood");
    assert!(report.sent > 20, "the prober ran ({} probes)", report.sent);
    // Issue 17: under pressure the kernel filter may shed OPTIONS by share — a counted drop,
    // never a silent one. Every probe is answered, 503'd, or counted in that shed.
    let kernel_shed_options: u64 = edge
        .metrics()
        .lines()
        .filter(|l| {
            l.starts_with("sipedge_overload_kernel_shed_total") && l.contains("class=\"options\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(
        report.missed.len() as u64 <= kernel_shed_options
            && report.missed.len() * 20 <= report.sent as usize,
        "{} of {} OPTIONS got no 200 (nor a shed 503) within 1 s and the kernel shed counted {} \
         (slowest answered: {:?})",
        report.missed.len(),
        report.sent,
        kernel_shed_options,
        report.slowest
    );
    assert!(
        got.is_empty(),
        "datagrams reached the victim: {:?}",
        first_lines(&got)
    );
    assert!(
        report.max_rss_kib < RSS_CAP_MIB * 1024,
        "RSS reached {} MiB (cap {RSS_CAP_MIB} MiB)",
        report.max_rss_kib / 1024
    );
    assert_answers_options(&edge, ip);
    assert!(edge.terminate().success());
}
