//! The relay through one core, sans-IO: memory per active INVITE transaction, and calls per
//! second (every message of a call parsed, matched, edited and serialized).
//!
//! ```sh
//! nice -n 19 cargo run --release -p sipedge-core --example relay -- memory [N]     # default 100 000
//! nice -n 19 cargo run --release -p sipedge-core --example relay -- calls [N]      # default 200 000
//! nice -n 19 cargo run --release -p sipedge-core --example relay -- calls [N] limits
//! nice -n 19 cargo run --release -p sipedge-core --example relay -- dialogs [N]    # default 1 000 000
//! ```
//!
//! `limits` (issue 16): the same calls with limits on every call — bob is a user of
//! account `acme`, both with channels and CPS limits, and `[limits] channels`/`cps` for
//! the server (set high enough never to refuse): each call takes and releases three keys
//! and is tracked as a dialog from its 200 to its BYE.
//!
//! `dialogs`: N calls answered (INVITE, 200) and never hung up, after N/10 warm-up calls,
//! the clock moving 1 ms per call so their transactions end; then every timer runs out.
//! RSS growth over the N / N is the cost of one tracked dialog (the transaction table is at
//! its high-water mark before the N start).
//!
//! `memory`: N callers each send a typical INVITE (SDP body, ~700 bytes) to one registered
//! callee who never answers; N transactions stay open (server transaction, one client
//! branch, timers A/B/C on the wheel). RSS growth / N is the cost of one active INVITE
//! transaction, including the stored request and the 100 Trying kept for retransmissions.
//!
//! `calls`: N complete calls — INVITE, 100, 180, 200, ACK (end to end), BYE, 200 — with
//! the virtual clock moving 1 ms per call, so every transaction also runs its timers to
//! the end. Reports calls per second and µs per call for the core alone (no kernel).
//! Runs with mimalloc, the binary's allocator.

use std::net::SocketAddr;
use std::time::Instant;

use mimalloc::MiMalloc;
use sipedge_core::{Core, CoreConfig, LocalId, Millis, ProxyConfig};
use sipedge_msg::{HeaderName, Message};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

const SDP: &str = "v=0\r\no=- 3912 3912 IN IP4 10.20.0.5\r\ns=-\r\nc=IN IP4 10.20.0.5\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

const BOB: &str = "10.30.0.9:5062";

/// Limits on every call: bob (user of `acme`) and the server, never reached.
fn with_limits(cfg: &mut CoreConfig) {
    use sipedge_core::auth::{AccountSpec, AuthDb, AuthMode, AuthSettings, AuthSpec, UserSpec};
    use sipedge_core::limits::{Limit, LimitsSpec, LimitsTable};
    let big = Some(1_000_000_000);
    let spec = AuthSpec {
        settings: AuthSettings {
            realm: "sip.example.com".into(),
            register: AuthMode::None,
            invite: AuthMode::None,
            ..AuthSettings::default()
        },
        accounts: vec![AccountSpec {
            name: "acme".into(),
            channels: big,
            cps: big,
            ..AccountSpec::default()
        }],
        users: vec![UserSpec {
            username: "bob".into(),
            account: Some("acme".into()),
            channels: big,
            cps: big,
            ha1_md5: Some([b'0'; 32]),
            ..UserSpec::default()
        }],
        ip_auth: Vec::new(),
    };
    let db = AuthDb::build(&spec).expect("auth").into_handle();
    let limits = LimitsSpec {
        server: Limit::new(big, big),
        ..LimitsSpec::default()
    };
    cfg.limits = LimitsTable::build(&db, limits, None).into_handle();
    cfg.auth.db = db;
}

fn core() -> Core {
    core_with(false)
}

fn core_with(limits: bool) -> Core {
    core_from(limits, |_| {})
}

/// A core as [`core_with`], `tune` applied to its config first.
fn core_from(limits: bool, tune: impl FnOnce(&mut CoreConfig)) -> Core {
    let mut cfg = CoreConfig {
        domains: vec!["sip.example.com".into(), "192.0.2.1".into()],
        proxy: ProxyConfig {
            advertise: vec!["192.0.2.1:5060".parse().expect("addr")],
            ..ProxyConfig::default()
        },
        ..CoreConfig::default()
    };
    if limits {
        with_limits(&mut cfg);
    }
    tune(&mut cfg);
    let mut c = Core::new(cfg);
    let reg = format!(
        "REGISTER sip:sip.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKr1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@sip.example.com>;tag=r\r\nTo: <sip:bob@sip.example.com>\r\nCall-ID: reg-bob\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{BOB}>\r\nExpires: 7200\r\nContent-Length: 0\r\n\r\n"
    );
    c.handle_datagram(
        Millis(0),
        LocalId(0),
        BOB.parse().expect("addr"),
        reg.as_bytes(),
    );
    while c.poll_transmit().is_some() {}
    c
}

fn invite(i: u64) -> (SocketAddr, Vec<u8>) {
    let src: SocketAddr = format!(
        "10.20.{}.{}:{}",
        i >> 16 & 255,
        i >> 8 & 255,
        5060 + (i & 255)
    )
    .parse()
    .expect("addr");
    let msg = format!(
        "INVITE sip:bob@sip.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{i:x}a7f3;rport\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice{i}@sip.example.com>;tag={i:x}9c1\r\nTo: <sip:bob@sip.example.com>\r\nCall-ID: {i:016x}b2e4@10.20.0.5\r\nCSeq: 1 INVITE\r\nContact: <sip:alice{i}@{src}>\r\nUser-Agent: Yealink SIP-T46S 66.86.0.15\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    (src, msg.into_bytes())
}

/// The callee's response to `req` (Vias, Record-Route, From, To with tag, Call-ID, CSeq).
fn respond(req: &[u8], code: &str, out: &mut Vec<u8>) {
    let m = Message::parse(req).expect("forwarded request parses");
    out.clear();
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(code.as_bytes());
    out.extend_from_slice(b"\r\n");
    for v in m.header_values(HeaderName::Via) {
        out.extend_from_slice(b"Via: ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    for v in m.header_values(HeaderName::RecordRoute) {
        out.extend_from_slice(b"Record-Route: ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    for (n, name) in [(HeaderName::From, "From"), (HeaderName::To, "To")] {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(m.header(n).unwrap_or_default());
        if n == HeaderName::To
            && !m
                .header(n)
                .unwrap_or_default()
                .windows(4)
                .any(|w| w == b"tag=")
        {
            out.extend_from_slice(b";tag=b0b");
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Call-ID: ");
    out.extend_from_slice(m.header(HeaderName::CallId).unwrap_or_default());
    out.extend_from_slice(b"\r\nCSeq: ");
    out.extend_from_slice(m.header(HeaderName::CSeq).unwrap_or_default());
    out.extend_from_slice(
        format!("\r\nContact: <sip:bob@{BOB}>\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    );
}

/// Feeds one datagram; the last datagram sent to `to` (if any) lands in `last`.
fn feed(
    c: &mut Core,
    now: u64,
    from: SocketAddr,
    bytes: &[u8],
    to: SocketAddr,
    last: &mut Vec<u8>,
) -> usize {
    c.handle_datagram(Millis(now), LocalId(0), from, bytes);
    let mut n = 0;
    while let Some(t) = c.poll_transmit() {
        n += 1;
        if t.remote == to {
            last.clear();
            last.extend_from_slice(t.data);
        }
    }
    n
}

fn memory(n: u64) {
    let mut c = core();
    let bob: SocketAddr = BOB.parse().expect("addr");
    let msgs: Vec<(SocketAddr, Vec<u8>)> = (0..n).map(invite).collect();
    let mut last = Vec::new();
    // Warm the output arena and the first allocations before measuring.
    let before = rss_kib();
    for (src, m) in &msgs {
        feed(&mut c, 1, *src, m, bob, &mut last);
    }
    let after = rss_kib();
    assert_eq!(
        c.transaction_count() as u64,
        n,
        "every INVITE holds a transaction"
    );
    let per = (after.saturating_sub(before) * 1024) as f64 / n as f64;
    println!("active INVITE transactions: {n}");
    println!("rss before: {before} KiB, after: {after} KiB");
    println!("rss per active INVITE transaction: {per:.0} bytes");
}

fn calls(n: u64, limits: bool) {
    // `SIPEDGE_NO_DIALOG_KEEPALIVE=1`: the relay without issue 16's per-call keepalive state
    // (`[dialogs] keepalive_secs = 0`), to compare the relay path alone across commits.
    let mut c = if std::env::var_os("SIPEDGE_NO_DIALOG_KEEPALIVE").is_some() {
        core_from(limits, |cfg| cfg.dialogs.keepalive_secs = 0)
    } else {
        core_with(limits)
    };
    let bob: SocketAddr = BOB.parse().expect("addr");
    let mut fwd = Vec::new();
    let mut resp = Vec::new();
    let mut up = Vec::new();
    let mut sent = 0usize;
    let start = Instant::now();
    for i in 0..n {
        let now = 1 + i; // 1 ms per call: timers run as calls go by
        let (src, inv) = invite(i);
        sent += feed(&mut c, now, src, &inv, bob, &mut fwd);
        respond(&fwd, "180 Ringing", &mut resp);
        sent += feed(&mut c, now, bob, &resp, src, &mut up);
        respond(&fwd, "200 OK", &mut resp);
        sent += feed(&mut c, now, bob, &resp, src, &mut up);
        let rr = Message::parse(&fwd)
            .ok()
            .and_then(|m| m.header(HeaderName::RecordRoute).map(<[u8]>::to_vec))
            .expect("the INVITE is record-routed");
        let rr = String::from_utf8_lossy(&rr);
        let tail = format!(
            "sip:bob@{BOB} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{i:x}X;rport\r\nRoute: {rr}\r\nMax-Forwards: 70\r\nFrom: <sip:alice{i}@sip.example.com>;tag={i:x}9c1\r\nTo: <sip:bob@sip.example.com>;tag=b0b\r\nCall-ID: {i:016x}b2e4@10.20.0.5\r\nCSeq: "
        );
        let ack = format!("ACK {tail}1 ACK\r\nContent-Length: 0\r\n\r\n").replace("X;", "a;");
        sent += feed(&mut c, now, src, ack.as_bytes(), bob, &mut fwd);
        let bye = format!("BYE {tail}2 BYE\r\nContent-Length: 0\r\n\r\n").replace("X;", "b;");
        sent += feed(&mut c, now, src, bye.as_bytes(), bob, &mut fwd);
        respond(&fwd, "200 OK", &mut resp);
        sent += feed(&mut c, now, bob, &resp, src, &mut up);
        if c.poll_timeout().is_some_and(|d| d.0 <= now) {
            c.handle_timeout(Millis(now));
            while c.poll_transmit().is_some() {}
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        sent as u64,
        7 * n,
        "every call sends 100, INVITE, 180, 200, ACK, BYE, 200"
    );
    println!("calls: {n} in {secs:.2} s (virtual time {} s)", n / 1000);
    println!(
        "calls per second (one core, sans-IO): {:.0}",
        n as f64 / secs
    );
    println!(
        "µs per call (6 messages in, 7 out): {:.2}",
        secs * 1e6 / n as f64
    );
    println!(
        "transactions still open (timers pending): {}",
        c.transaction_count()
    );
    let st = c.proxy_stats();
    assert_eq!(
        (st.acks_forwarded, st.refused),
        (n, 0),
        "every ACK and BYE relayed"
    );
    println!("relay stats: {st:?}");
    if limits {
        let d = c.dialog_stats();
        assert_eq!(
            (d.opened, d.ended_bye),
            (n, n),
            "every call tracked and ended"
        );
        assert_eq!(c.tables().limits.server_channels(), 0, "every channel back");
        println!("limits: user + account + server on every call; dialog stats: {d:?}");
    }
}

fn dialogs(n: u64) {
    // Keepalives on (so every dialog keeps its ends and a keepalive slot, as with the
    // default 30 s) but at an hour, so no round falls inside the run: nobody answers here.
    let mut c = core_from(true, |cfg| {
        cfg.dialogs.keepalive_secs = 3600;
        // Every call tracked, warm-up included (the default cap is 1M).
        cfg.dialogs.max_dialogs = usize::MAX;
    });
    let bob: SocketAddr = BOB.parse().expect("addr");
    let (mut fwd, mut resp, mut up) = (Vec::new(), Vec::new(), Vec::new());
    // Warm up: the first calls (a tenth) bring the transaction table and the wheel to their
    // high-water mark (~32k cells at 1 ms per call), so the growth after is the dialogs'.
    let warm = n / 10;
    let mut before = rss_kib();
    for i in 0..n + warm {
        if i == warm {
            before = rss_kib();
        }
        let now = 1 + i;
        let (src, inv) = invite(i);
        feed(&mut c, now, src, &inv, bob, &mut fwd);
        respond(&fwd, "200 OK", &mut resp);
        feed(&mut c, now, bob, &resp, src, &mut up);
        if c.poll_timeout().is_some_and(|d| d.0 <= now) {
            c.handle_timeout(Millis(now));
            while c.poll_transmit().is_some() {}
        }
    }
    let end = n + warm + 200_000;
    while let Some(d) = c.poll_timeout().filter(|d| d.0 <= end) {
        c.handle_timeout(d);
        while c.poll_transmit().is_some() {}
    }
    let after = rss_kib();
    let (pending, confirmed) = c.dialog_count();
    assert_eq!(
        (pending, confirmed as u64),
        (0, n + warm),
        "every call tracked"
    );
    println!(
        "tracked dialogs: {confirmed} (transactions left: {})",
        c.transaction_count()
    );
    println!("rss before: {before} KiB, after: {after} KiB");
    let per = (after.saturating_sub(before) * 1024) as f64 / n as f64;
    println!("rss per tracked dialog: {per:.0} bytes (issue 16 budget: 400)");
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "memory".into());
    let n = args.next().and_then(|s| s.parse().ok());
    match mode.as_str() {
        "memory" => memory(n.unwrap_or(100_000)),
        "calls" => calls(
            n.unwrap_or(200_000),
            args.next().as_deref() == Some("limits"),
        ),
        "dialogs" => dialogs(n.unwrap_or(1_000_000)),
        other => eprintln!("unknown mode {other}: memory | calls [N] [limits] | dialogs"),
    }
}
