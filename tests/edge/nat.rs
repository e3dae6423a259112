//! NAT keepalives over the real binary on loopback (1 s interval, `ping = "timeout"`, two
//! shards): a UA that answers OPTIONS stays registered and its RTT is counted; one that
//! ignores them receives exactly `ping_failures_max` pings and is deregistered; CRLF mode
//! sends 4-byte keepalives; a SIGHUP that changes a user's `nat` / `nat_ping` reaches its
//! registered phone (127.0.92.0/24). Waits are bounded; nothing asserts a duration.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::{listed_contacts, register, Client, Edge};

const IP: &str = "127.0.80.1";
const FAILURES: u32 = 2;

/// A phone behind a "NAT": its Contact is private. Counts what the edge sends it and, when
/// `answer`, answers each OPTIONS with 200 OK. Returns (OPTIONS pings, CRLF keepalives).
fn phone(c: Client, answer: bool, stop: Arc<AtomicBool>) -> JoinHandle<(u32, u32)> {
    std::thread::spawn(move || {
        let (mut options, mut crlf) = (0, 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        c.sock
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let Ok((n, from)) = c.sock.recv_from(&mut buf) else {
                continue;
            };
            let d = &buf[..n];
            if d == b"\r\n\r\n" {
                crlf += 1;
            } else if d.starts_with(b"OPTIONS ") {
                options += 1;
                if answer {
                    c.sock.send_to(&ok_for(d), from).unwrap();
                }
            }
        }
        (options, crlf)
    })
}

/// The 200 OK to an OPTIONS (Via, From, To, Call-ID, CSeq copied; RFC 3261 §8.2.6.2).
fn ok_for(req: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(req);
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for line in text.split("\r\n").skip(1).take_while(|l| !l.is_empty()) {
        if ["Via", "From", "To", "Call-ID", "CSeq"]
            .iter()
            .any(|h| line.starts_with(&format!("{h}:")))
        {
            out.push_str(line);
            if line.starts_with("To:") {
                out.push_str(";tag=ua");
            }
            out.push_str("\r\n");
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// REGISTERs `user` from `c` with a private Contact and checks the 200 OK.
fn register_nated(edge: &Edge, c: &Client, user: &str) {
    c.send(
        edge.sip,
        &register(
            c,
            user,
            Some("<sip:ua@10.0.0.1:5060>"),
            Some(600),
            &format!("{user}-reg"),
            1,
        ),
    );
    let reply = c.recv(Duration::from_secs(2)).expect("a 200 OK");
    assert_eq!(
        listed_contacts(&reply),
        vec![("sip:ua@10.0.0.1:5060".to_string(), Some(600))],
        "the original Contact is listed"
    );
}

/// The contacts the edge lists for `user`, asked from a separate client.
fn contacts_of(edge: &Edge, q: &Client, user: &str, cseq: u32) -> Vec<(String, Option<u32>)> {
    q.send(edge.sip, &register(q, user, None, None, "query", cseq));
    listed_contacts(
        &q.recv(Duration::from_secs(2))
            .expect("a reply to the query"),
    )
}

#[test]
fn a_mute_phone_is_deregistered_and_an_answering_one_stays() {
    let edge = Edge::start_with(
        "nat-timeout",
        IP,
        25800,
        2,
        "auto",
        &format!(
            "\n[nat]\nping = \"timeout\"\nping_interval_secs = 1\nping_failures_max = {FAILURES}\n"
        ),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (talk, mute) = (Client::new("127.0.80.2"), Client::new("127.0.80.3"));
    register_nated(&edge, &talk, "talk");
    register_nated(&edge, &mute, "mute");
    let talk = phone(talk, true, Arc::clone(&stop));
    let mute = phone(mute, false, Arc::clone(&stop));
    let q = Client::new(IP);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut cseq = 1;
    while !contacts_of(&edge, &q, "mute", cseq).is_empty() {
        cseq += 1;
        assert!(
            Instant::now() < deadline,
            "the mute phone was never deregistered"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Let the answering phone collect a few more pings, then stop both.
    while edge.metric("sipedge_nat_pings_answered_total", None) < 3 {
        assert!(
            Instant::now() < deadline,
            "the answering phone's pings were not matched"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let (talk_pings, _) = talk.join().unwrap();
    let (mute_pings, _) = mute.join().unwrap();
    assert_eq!(
        mute_pings, FAILURES,
        "exactly ping_failures_max pings, then removal"
    );
    assert!(talk_pings >= 3);
    assert_eq!(
        contacts_of(&edge, &q, "talk", cseq + 1).len(),
        1,
        "the answering phone stays registered"
    );
    assert_eq!(
        edge.metric("sipedge_nat_ping_deregistrations_total", None),
        1
    );
    assert!(edge.metric("sipedge_nat_ping_rtt_seconds_count", None) >= 3);
    assert!(edge.metric("sipedge_nat_registrations_total", None) >= 2);
}

#[test]
fn crlf_mode_sends_four_byte_keepalives() {
    let edge = Edge::start_with(
        "nat-crlf",
        IP,
        25810,
        1,
        "auto",
        "\n[nat]\nmethod = \"crlf\"\nping_interval_secs = 1\n",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let c = Client::new("127.0.80.4");
    register_nated(&edge, &c, "crlf");
    let ua = phone(c, true, Arc::clone(&stop));
    let deadline = Instant::now() + Duration::from_secs(20);
    while edge.metric("sipedge_nat_pings_sent_total", None) < 2 {
        assert!(Instant::now() < deadline, "no keepalives sent");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let (options, crlf) = ua.join().unwrap();
    assert_eq!(options, 0, "no OPTIONS in CRLF mode");
    assert!(crlf >= 2, "{crlf} CRLF keepalives received");
}

/// SIGHUP applies a user's changed `nat` / `nat_ping` to a phone already registered: with
/// keepalives off by default and `nat = "disabled"` for pat, its NATed-looking phone is
/// never pinged; after `nat = "force"` is written and SIGHUP sent, the phone (which never
/// answers) receives exactly `ping_failures_max` pings at its source address — not at its
/// private Contact — and is deregistered, without registering again.
#[test]
fn sighup_applies_changed_per_user_nat_settings_to_registered_phones() {
    let ip = "127.0.92.1";
    let users = "\n[auth]\nregister = \"none\"\n\n[[accounts]]\nname = \"acme\"\n\n[[users]]\nusername = \"pat\"\naccount = \"acme\"\npassword = \"pw\"\nnat = \"disabled\"\nnat_ping = \"timeout\"\n\n[[users]]\nusername = \"sam\"\naccount = \"acme\"\npassword = \"pw\"\n";
    let edge = Edge::start_with(
        "nat-reload",
        ip,
        25920,
        2,
        "auto",
        &format!("\n[nat]\nping = \"disabled\"\nping_interval_secs = 1\nping_failures_max = {FAILURES}\n{users}"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (pat, sam) = (Client::new("127.0.92.2"), Client::new("127.0.92.3"));
    register_nated(&edge, &pat, "pat");
    register_nated(&edge, &sam, "sam");
    let pat = phone(pat, false, Arc::clone(&stop));
    let q = Client::new(ip);
    // Three ping intervals with keepalives off for both.
    std::thread::sleep(Duration::from_millis(3_000));
    assert_eq!(edge.metric("sipedge_nat_pings_sent_total", None), 0);
    assert_eq!(contacts_of(&edge, &q, "pat", 1).len(), 1);

    let cfg = edge.config.clone();
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("nat = \"disabled\""));
    std::fs::write(&cfg, text.replace("nat = \"disabled\"", "nat = \"force\"")).unwrap();
    let pid = edge.child.as_ref().unwrap().id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut cseq = 2;
    while !contacts_of(&edge, &q, "pat", cseq).is_empty() {
        cseq += 1;
        assert!(
            Instant::now() < deadline,
            "pat was never pinged out after the reload"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    let (pat_pings, _) = pat.join().unwrap();
    assert_eq!(
        pat_pings, FAILURES,
        "pinged at its source, ping_failures_max times, then removed"
    );
    assert_eq!(
        edge.metric("sipedge_nat_ping_deregistrations_total", None),
        1
    );
    assert_eq!(
        contacts_of(&edge, &q, "sam", cseq + 1).len(),
        1,
        "sam keeps the defaults (no keepalives) and stays"
    );
}
