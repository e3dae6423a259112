//! Instructions per REGISTER through one core, as the shard loop drives it: a deterministic
//! run for `valgrind --tool=callgrind` (or a plain timing run).
//!
//! N phones (default 20 000) in sipload's `refresh` shape (`sip:sl<k>@localhost`, one UA
//! address per phone, Contact without parameters, Expires 3600, User-Agent, rport) are
//! registered into a fresh core (phase `new_bindings`), then refresh R rounds (phase
//! `refreshes`, CSeq rising, new branch per request). The core runs as `src/shard.rs` runs
//! it with the default durable config: journal on, wall clock set once per turn, turns of
//! [`TURN`] datagrams, then every journal record drained (copied with its 8-byte frame
//! header, as `ShardJournal::append` does; the CRC-32 is the journal crate's, not counted
//! here) and every reply drained (copied, as `Engine::send` does).
//!
//! ```sh
//! nice -n 19 cargo build --release -p sipedge-core --example register_cost
//! nice -n 19 valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/register_cost 20000 3
//! callgrind_annotate --inclusive=yes /tmp/cg.out | head -60
//! ```
//!
//! The program prints the phase sizes; the inclusive instruction counts of
//! `register_cost::new_bindings` and `register_cost::refreshes` divided by them are the
//! cost per REGISTER (see PERFORMANCE.md "REGISTER through one core").
//!
//! `register_cost accessors` instead calls each `sipedge-msg` function the registrar uses
//! [`ACCESSOR_CALLS`] times on the refresh REGISTER (functions `register_cost::m_*`): their
//! inclusive counts divided by that are the parser's share of a REGISTER, call by call.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use mimalloc::MiMalloc;
use sipedge_core::{Core, CoreConfig, LocalId, Millis};
use sipedge_msg::{write_response, Message, ResponseSpec};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Datagrams per loop turn (the shard reaps a batch, then drains).
const TURN: usize = 64;
/// 2026-12-01T20:00:00Z, the wall clock the run pretends.
const UNIX_START_MS: u64 = 1_796_155_200_000;

/// Phone `k`'s UA address (sipload: one address per UA).
fn source(k: u32) -> SocketAddr {
    let ip = Ipv4Addr::new(127, 41, (k >> 8) as u8, k as u8);
    SocketAddr::new(IpAddr::V4(ip), 5060 + (k % 1000) as u16)
}

/// sipload's REGISTER (loadtest/sipload/src/scenario/register.rs) for phone `k`.
fn register(out: &mut Vec<u8>, k: u32, cseq: u32) {
    use std::io::Write as _;
    out.clear();
    let local = source(k);
    let _ = write!(
        out,
        "REGISTER sip:localhost SIP/2.0\r\n\
Via: SIP/2.0/UDP {local};rport;branch=z9hG4bKsl{k:x}.{cseq:x}\r\n\
Max-Forwards: 70\r\n\
From: <sip:sl{k}@localhost>;tag=r{k}\r\n\
To: <sip:sl{k}@localhost>\r\n\
Call-ID: {k}-1a2b@sipload\r\n\
CSeq: {cseq} REGISTER\r\n\
Contact: <sip:sl{k}@{local}>\r\n\
Expires: 3600\r\n\
User-Agent: sipload\r\n\
Content-Length: 0\r\n\r\n"
    );
}

/// What the shell's drain does with the core's output (journal before transmits).
#[derive(Default)]
struct Shell {
    journal: Vec<u8>,
    sends: Vec<u8>,
    replies: u64,
    records: u64,
}

impl Shell {
    fn end_turn(&mut self, core: &mut Core) {
        while let Some(rec) = core.poll_journal() {
            self.journal
                .extend_from_slice(&(rec.len() as u32).to_le_bytes());
            self.journal.extend_from_slice(&[0; 4]);
            self.journal.extend_from_slice(rec);
            self.records += 1;
        }
        while let Some(t) = core.poll_transmit() {
            self.sends.extend_from_slice(t.data);
            black_box(t.remote);
            self.replies += 1;
        }
        while core.poll_event().is_some() {}
        black_box(core.stats().registers_ok);
        // The journal writes and the engine submits once the turn's buffers are full.
        if self.journal.len() > 1 << 20 {
            self.journal.clear();
        }
        self.sends.clear();
    }
}

/// Feeds `reqs` (phone, bytes) in turns of [`TURN`] at `now`, as the shard loop does.
fn run(core: &mut Core, shell: &mut Shell, now: &mut Millis, reqs: &[(u32, Vec<u8>)]) {
    for turn in reqs.chunks(TURN) {
        now.0 += 1;
        core.set_wall_clock(*now, UNIX_START_MS + now.0);
        for (k, bytes) in turn {
            core.handle_datagram(*now, LocalId(0), source(*k), bytes);
        }
        if core.poll_timeout().is_some_and(|due| due <= *now) {
            core.handle_timeout(*now);
        }
        shell.end_turn(core);
    }
}

#[inline(never)]
fn new_bindings(core: &mut Core, shell: &mut Shell, now: &mut Millis, reqs: &[(u32, Vec<u8>)]) {
    // (Distinct bodies: the linker must not fold the two phases into one symbol.)
    black_box("new_bindings");
    run(core, shell, now, reqs);
}

#[inline(never)]
fn refreshes(core: &mut Core, shell: &mut Shell, now: &mut Millis, reqs: &[(u32, Vec<u8>)]) {
    black_box("refreshes");
    run(core, shell, now, reqs);
}

/// Calls per accessor in `accessors` mode.
const ACCESSOR_CALLS: u32 = 10_000;

macro_rules! accessor {
    ($name:ident, $m:ident, $body:expr) => {
        #[inline(never)]
        fn $name($m: &Message<'_>) {
            for _ in 0..ACCESSOR_CALLS {
                black_box($body);
            }
        }
    };
}
accessor!(m_validate, m, m.validate().is_ok());
accessor!(m_validated, m, m.validated().ok().map(|v| v.cseq.seq));
accessor!(m_top_via, m, m.top_via().ok().map(|v| v.branch()));
accessor!(m_to, m, m.to().ok().map(|a| a.uri().host().len()));
accessor!(m_from_tag, m, m.from().ok().and_then(|a| a.tag()));
accessor!(m_cseq, m, m.cseq().ok().map(|c| c.seq));
accessor!(
    m_request_uri,
    m,
    m.request_uri().ok().map(|u| u.host().len())
);
accessor!(
    m_contact_and_params,
    m,
    m.contacts().next().and_then(Result::ok).map(|c| (
        c.expires().is_some(),
        c.q().is_some(),
        c.instance(),
        c.reg_id()
    ))
);

#[inline(never)]
fn m_parse(bytes: &[u8]) {
    for _ in 0..ACCESSOR_CALLS {
        black_box(
            Message::parse(black_box(bytes))
                .map(|m| m.header_index().len())
                .ok(),
        );
    }
}

#[inline(never)]
fn m_write_response(m: &Message<'_>, out: &mut Vec<u8>) {
    let spec = ResponseSpec {
        status: 200,
        reason: b"OK",
        to_tag: Some(b"0123456789abcdef"),
        received: Some(b"127.41.0.7"),
        rport: Some(5067),
        ..Default::default()
    };
    for _ in 0..ACCESSOR_CALLS {
        let mut w = write_response(out, black_box(m), &spec);
        w.header(b"Server", b"sipedge/0.1.0");
        w.finish(b"");
        black_box(out.len());
    }
}

/// [`m_write_response`] with the top Via and To tag flag of [`Message::validated`], as the
/// registrar writes its replies.
#[inline(never)]
fn m_write_response_validated(m: &Message<'_>, out: &mut Vec<u8>) {
    let v = m.validated().expect("the REGISTER is valid");
    let spec = ResponseSpec {
        status: 200,
        reason: b"OK",
        to_tag: Some(b"0123456789abcdef"),
        received: Some(b"127.41.0.7"),
        rport: Some(5067),
        top_via: Some(&v.top_via),
        to_has_tag: Some(v.to_has_tag()),
    };
    for _ in 0..ACCESSOR_CALLS {
        let mut w = write_response(out, black_box(m), &spec);
        w.header(b"Server", b"sipedge/0.1.0");
        w.finish(b"");
        black_box(out.len());
    }
}

fn accessors() {
    let mut bytes = Vec::new();
    register(&mut bytes, 7, 2);
    let m = Message::parse(&bytes).expect("the REGISTER parses");
    let mut out = Vec::with_capacity(1024);
    m_parse(&bytes);
    m_validate(&m);
    m_top_via(&m);
    m_to(&m);
    m_from_tag(&m);
    m_cseq(&m);
    m_request_uri(&m);
    m_contact_and_params(&m);
    m_write_response(&m, &mut out);
    m_validated(&m);
    m_write_response_validated(&m, &mut out);
    println!("accessors: {ACCESSOR_CALLS} calls each (register_cost::m_*)");
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("accessors") {
        accessors();
        return;
    }
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let rounds: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let mut core = Core::new(CoreConfig {
        domains: vec!["localhost".into()],
        journal: true,
        seed: 0x5eed,
        ..CoreConfig::default()
    });
    let mut shell = Shell::default();
    let mut now = Millis(1000);
    let make = |cseq: u32| -> Vec<(u32, Vec<u8>)> {
        (0..n)
            .map(|k| {
                let mut v = Vec::new();
                register(&mut v, k, cseq);
                (k, v)
            })
            .collect()
    };

    let first = make(1);
    let t = Instant::now();
    new_bindings(&mut core, &mut shell, &mut now, &first);
    let new_ns = t.elapsed().as_nanos() as f64 / f64::from(n);
    drop(first);
    assert_eq!(core.stats().bindings_created, u64::from(n));

    let mut refresh_ns = 0.0;
    for r in 0..rounds {
        let reqs = make(2 + r);
        let t = Instant::now();
        refreshes(&mut core, &mut shell, &mut now, &reqs);
        refresh_ns += t.elapsed().as_nanos() as f64;
    }
    let refreshed = u64::from(n) * u64::from(rounds);
    assert_eq!(core.stats().bindings_refreshed, refreshed);
    assert_eq!(core.stats().registers_ok, u64::from(n) + refreshed);
    assert_eq!(shell.replies, u64::from(n) + refreshed);
    assert_eq!(shell.records, u64::from(n) + refreshed);
    println!("new_bindings: {n} REGISTERs, {new_ns:.0} ns each");
    println!(
        "refreshes: {refreshed} REGISTERs ({rounds} rounds), {:.0} ns each",
        refresh_ns / refreshed as f64
    );
}
