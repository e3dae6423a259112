//! A deterministic simulation of a multi-shard edge driven by a byte string: the shared
//! harness of the `core_seq` fuzz target (`fuzz/fuzz_targets/core_seq.rs`), the proptest
//! `sim_invariants.rs` and the regression replay `sim_regressions.rs`.
//!
//! The bytes are read as a small grammar ([`Sim::step`]): REGISTER with N contacts of
//! chosen shapes, expires and credentials; INVITE to a registered AoR; responses echoing a
//! request the edge sent (forwarded INVITEs, NAT pings, CANCELs); ACK / BYE / CANCEL in the
//! calls made; time advancing; raw bytes; mutated and replayed datagrams. Every datagram
//! lands on the shard its 4-tuple hashes to; mesh messages are delivered until none is
//! left; timers run when `poll_timeout` says. After every step: `Core::check_invariants`
//! on every shard, and the outputs are checked (how many, how big, parseable, responses
//! only to senders, requests only to addresses of the scenario while no raw bytes were fed).
//! A broken rule is a [`Finding`] whose `kind` says which.
// `run` hands back the whole simulation with its finding (once per input, not a hot path).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::result_large_err
)]

pub mod msgs;
mod ops;

use std::net::{IpAddr, SocketAddr};

use sipedge_core::auth::Algorithm;
use sipedge_core::{Core, LocalId, Millis, ShardId};
use sipedge_msg::{is_keepalive, Message};

use msgs::*;

/// A rule the run broke: `kind` is a stable short name (see `fuzz/README.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

fn finding(kind: &'static str, detail: String) -> Finding {
    Finding { kind, detail }
}

/// The input, read front to back; past its end every read is 0.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub fn u16(&mut self) -> u16 {
        u16::from(self.u8()) << 8 | u16::from(self.u8())
    }
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = (start + n).min(self.data.len());
        self.pos = start + n;
        &self.data[start..end]
    }
}

/// A call a phone started (for its ACK, CANCEL and BYE).
#[derive(Debug, Clone)]
struct Call {
    src: SocketAddr,
    local: u16,
    branch: String,
    cseq: u32,
    ruri: String,
    from: String,
    to: String,
    call_id: String,
}

/// Datagrams per handled datagram: a fork to every contact, 100 Trying, a reply, CANCELs.
fn max_out_per_datagram(max_contacts: u16) -> usize {
    4 * usize::from(max_contacts) + 8
}

const RING: usize = 16;

/// Timer wakes per [`Sim::advance`] at the times `poll_timeout` names; then coarser.
const FINE_WAKES: usize = 200;

fn push_ring<T>(v: &mut Vec<T>, x: T) {
    if v.len() == RING {
        v.remove(0);
    }
    v.push(x);
}

/// The simulated edge and its peers.
pub struct Sim {
    pub world: World,
    pub cores: Vec<Core>,
    pub now: u64,
    cseq: u32,
    nc: u32,
    nonces: Vec<String>,
    /// Requests and responses the edge sent, and where.
    edge_reqs: Vec<(SocketAddr, Vec<u8>)>,
    edge_resps: Vec<(SocketAddr, Vec<u8>)>,
    /// Datagrams the peers sent (for replay and mutation).
    ours: Vec<(SocketAddr, u16, Vec<u8>)>,
    calls: [Option<Call>; 4],
    /// Raw or mutated bytes were fed: any address may have been registered.
    tainted: bool,
    /// A trace of the steps (for a readable failure).
    pub trace: Vec<String>,
    pub keep_trace: bool,
    /// Stop (with a `known-*` finding) before inputs that reach a reported, unfixed bug.
    pub skip_known: bool,
}

impl Sim {
    pub fn new(world: World) -> Sim {
        let cores = (0..world.shards)
            .map(|i| Core::new(world.config(i)))
            .collect();
        Sim {
            world,
            cores,
            now: 1_000_000,
            cseq: 1,
            nc: 0,
            nonces: Vec::new(),
            edge_reqs: Vec::new(),
            edge_resps: Vec::new(),
            ours: Vec::new(),
            calls: Default::default(),
            tainted: false,
            trace: Vec::new(),
            keep_trace: false,
            skip_known: false,
        }
    }

    /// Runs the whole input: the world from its first two bytes, then steps until the input
    /// is used up (at most `max_steps`), then 5 minutes of quiet after which no
    /// transaction may be left.
    pub fn run(data: &[u8], max_steps: usize, keep_trace: bool) -> Result<Sim, (Sim, Finding)> {
        Self::run_with(data, max_steps, keep_trace, false)
    }

    /// [`Sim::run`], optionally stopping before known, unfixed bugs (`skip_known`).
    pub fn run_with(
        data: &[u8],
        max_steps: usize,
        keep_trace: bool,
        skip_known: bool,
    ) -> Result<Sim, (Sim, Finding)> {
        let mut inp = Input::new(data);
        let world = World::from_bytes(inp.u8(), inp.u8());
        let mut sim = Sim::new(world);
        sim.keep_trace = keep_trace;
        sim.skip_known = skip_known;
        let mut steps = 0;
        while !inp.is_empty() && steps < max_steps {
            steps += 1;
            if let Err(f) = sim.step(&mut inp) {
                return Err((sim, f));
            }
        }
        match sim.finish() {
            Ok(()) => Ok(sim),
            Err(f) => Err((sim, f)),
        }
    }

    fn note(&mut self, s: impl FnOnce() -> String) {
        if self.keep_trace {
            self.trace.push(s());
        }
    }

    /// The shard a datagram from `src` on socket `local` lands on (SO_REUSEPORT hashes the
    /// 4-tuple: the same peer always reaches the same shard).
    fn arrival(&self, local: u16, src: SocketAddr) -> usize {
        let ip: u32 = match src.ip() {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(a) => a.segments().iter().map(|&s| u32::from(s)).sum(),
        };
        (ip as usize + usize::from(src.port()) + usize::from(local)) % self.cores.len()
    }

    /// Feeds one datagram and checks what came of it.
    pub fn deliver(&mut self, local: u16, src: SocketAddr, bytes: &[u8]) -> Result<(), Finding> {
        let now = self.now;
        self.note(|| {
            format!(
                "t={now} {src} -> socket {local}:\n{}",
                String::from_utf8_lossy(bytes)
            )
        });
        push_ring(&mut self.ours, (src, local, bytes.to_vec()));
        // The error reply to a malformed request copies what it got (two From lines, a bad
        // To, no Call-ID…): it has to parse, not to validate.
        let malformed = Message::parse(bytes).and_then(|m| m.validate()).is_err();
        let s = self.arrival(local, src);
        self.cores[s].handle_datagram(Millis(self.now), LocalId(local), src, bytes);
        let outs = self.pump()?;
        let max = max_out_per_datagram(self.world.max_contacts);
        if outs.len() > max {
            return Err(finding(
                "output-count",
                format!("one datagram made the edge send {} (max {max})", outs.len()),
            ));
        }
        self.check_outputs(outs, malformed)?;
        self.check_all()
    }

    /// Delivers mesh messages until none is left; returns every datagram sent meanwhile.
    fn pump(&mut self) -> Result<Vec<(SocketAddr, Vec<u8>)>, Finding> {
        let mut outs = Vec::new();
        let n = self.cores.len();
        for round in 0.. {
            if round > 64 {
                return Err(finding(
                    "mesh-loop",
                    "64 rounds of hand-offs for one input".into(),
                ));
            }
            let mut moved = false;
            for i in 0..n {
                while let Some((to, m)) = self.cores[i].poll_shard_msg() {
                    let t = usize::from(to.0);
                    if t >= n || t == i {
                        return Err(finding(
                            "mesh-target",
                            format!("shard {i} hands off to shard {t} of {n}"),
                        ));
                    }
                    self.cores[t].handle_shard_msg(Millis(self.now), ShardId(i as u16), m);
                    moved = true;
                }
            }
            for c in &mut self.cores {
                while let Some(t) = c.poll_transmit() {
                    outs.push((t.remote, t.data.to_vec()));
                }
                while c.poll_event().is_some() {}
                while c.poll_lookup().is_some() {}
            }
            if !moved {
                break;
            }
        }
        Ok(outs)
    }

    fn check_all(&self) -> Result<(), Finding> {
        for (i, c) in self.cores.iter().enumerate() {
            c.check_invariants()
                .map_err(|e| finding(classify(&e), format!("shard {i}: {e}")))?;
        }
        Ok(())
    }

    /// Addresses a request of the edge may go to in this scenario: the peers, the contacts
    /// the builders register, the callee's Contact.
    fn in_scenario(&self, dest: SocketAddr) -> bool {
        let ip = dest.ip();
        SOURCES.iter().any(|s| addr(s).ip() == ip)
            || match ip {
                IpAddr::V4(a) => {
                    let o = a.octets();
                    (o[..3] == [10, 0, 0] && o[3] < 4)
                        || a == std::net::Ipv4Addr::new(203, 0, 113, 9)
                }
                IpAddr::V6(a) => {
                    let s = a.segments();
                    s[..7] == [0x2001, 0xdb8, 0, 0, 0, 0, 0] && s[7] < 4
                }
            }
    }

    fn check_outputs(
        &mut self,
        outs: Vec<(SocketAddr, Vec<u8>)>,
        malformed_input: bool,
    ) -> Result<(), Finding> {
        for (dest, bytes) in outs {
            self.note(|| format!("  edge -> {dest}: {}", first_line(&bytes)));
            if bytes.len() > MAX_MESSAGE_BYTES + FORWARD_ROOM {
                return Err(finding(
                    "output-size",
                    format!("a {}-byte datagram to {dest}", bytes.len()),
                ));
            }
            if is_keepalive(&bytes) {
                continue;
            }
            let text = || String::from_utf8_lossy(&bytes).into_owned();
            let m = match Message::parse(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    return Err(finding(
                        "output-invalid",
                        format!("{e:?} to {dest}:\n{}", text()),
                    ))
                }
            };
            let lenient = malformed_input && m.status().is_some_and(|c| c >= 400);
            match m.validate() {
                Err(e) if !lenient => {
                    return Err(finding(
                        "output-invalid",
                        format!("{e:?} to {dest}:\n{}", text()),
                    ))
                }
                _ => {}
            }
            let response = m.is_response();
            let sender = SOURCES.iter().any(|s| addr(s).ip() == dest.ip());
            if response && !sender {
                return Err(finding(
                    "reflect",
                    format!("a response to {dest}, which sent nothing:\n{}", text()),
                ));
            }
            if !response && !self.tainted && !self.in_scenario(dest) {
                return Err(finding(
                    "relay",
                    format!("a request to {dest}, outside the scenario:\n{}", text()),
                ));
            }
            drop(m);
            if response {
                if let Some(n) = nonce_of(&bytes) {
                    if self.nonces.len() == 4 {
                        self.nonces.remove(0);
                    }
                    self.nonces.push(n);
                }
                push_ring(&mut self.edge_resps, (dest, bytes));
            } else {
                push_ring(&mut self.edge_reqs, (dest, bytes));
            }
        }
        Ok(())
    }

    /// Runs time forward by `ms`, waking the cores when `poll_timeout` says.
    pub fn advance(&mut self, ms: u64, check_every: usize) -> Result<(), Finding> {
        let target = self.now.saturating_add(ms);
        let mut wakes = 0usize;
        let mut same = 0usize;
        loop {
            let due = self
                .cores
                .iter()
                .filter_map(|c| c.poll_timeout())
                .map(|t| t.0)
                .min();
            let Some(due) = due.filter(|&d| d <= target) else {
                break;
            };
            let mut due = due.max(self.now);
            if wakes >= FINE_WAKES {
                // Keepalives want a wake every tick (10 ms) while any binding is pinged: past
                // FINE_WAKES, wake in coarse steps, as a busy shell whose turns run late
                // would (the core catches up on what fell due in between).
                let step = ((target - self.now) / 256).max(1_000);
                due = due.max(self.now + step).min(target);
            }
            same = if due == self.now { same + 1 } else { 0 };
            if same > 1000 {
                return Err(finding(
                    "timer-spin",
                    format!("poll_timeout keeps saying {due}"),
                ));
            }
            self.now = due;
            self.wake()?;
            wakes += 1;
            if wakes.is_multiple_of(check_every) {
                self.check_all()?;
            }
        }
        self.now = target;
        self.wake()?;
        self.check_all()
    }

    fn wake(&mut self) -> Result<(), Finding> {
        let bindings: usize = self.cores.iter().map(|c| c.binding_count()).sum();
        let txns: usize = self.cores.iter().map(|c| c.transaction_count()).sum();
        let max = 16 + 4 * bindings + 4 * txns * (usize::from(self.world.max_contacts) + 1);
        for c in &mut self.cores {
            c.handle_timeout(Millis(self.now));
        }
        let outs = self.pump()?;
        if outs.len() > max {
            return Err(finding(
                "output-count",
                format!("one timer wake sent {} datagrams (max {max})", outs.len()),
            ));
        }
        self.check_outputs(outs, false)
    }

    /// Five minutes of quiet: every transaction must be gone (the longest path is timer C,
    /// 181 s, then the CANCEL's 64·T1 and timer H's 64·T1).
    pub fn finish(&mut self) -> Result<(), Finding> {
        self.advance(300_000, 256)?;
        for (i, c) in self.cores.iter().enumerate() {
            if c.transaction_count() != 0 {
                return Err(finding(
                    "txn-leak",
                    format!(
                        "shard {i} holds {} transactions 5 minutes after the last input",
                        c.transaction_count()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn fresh_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    /// Credentials per the mode byte: none, MD5, SHA-256, wrong password; nc none/1/next.
    fn auth_header(
        &mut self,
        inp: &mut Input<'_>,
        user: usize,
        method: &str,
        uri: &str,
        name: &str,
    ) -> String {
        let mode = inp.u8();
        let pick = usize::from(inp.u8());
        let ncmode = inp.u8() % 3;
        if mode.is_multiple_of(4) || self.nonces.is_empty() {
            return String::new();
        }
        let nonce = self.nonces[pick % self.nonces.len()].clone();
        let (u, pw, _, _) = USERS[user];
        let pw = if mode % 4 == 3 { "wrong" } else { pw };
        let alg = if mode % 4 == 2 {
            Algorithm::Sha256
        } else {
            Algorithm::Md5
        };
        let nc = match ncmode {
            0 => None,
            1 => Some(1),
            _ => {
                self.nc += 1;
                Some(self.nc)
            }
        };
        format!(
            "{name}: {}\r\n",
            credentials(alg, u, pw, &nonce, nc, method, uri)
        )
    }

    fn source(inp: &mut Input<'_>) -> SocketAddr {
        addr(SOURCES[usize::from(inp.u8()) % SOURCES.len()])
    }

    /// One step of the grammar.
    pub fn step(&mut self, inp: &mut Input<'_>) -> Result<(), Finding> {
        match inp.u8() % 12 {
            0 | 1 => self.op_register(inp, false),
            2 => self.op_register(inp, true),
            3 | 4 => self.op_invite(inp),
            5 | 6 => self.op_respond(inp),
            7 => self.op_in_call(inp),
            8 => {
                const MS: [u64; 12] = [
                    1, 10, 100, 500, 1_000, 4_000, 5_000, 16_000, 32_000, 64_000, 181_000,
                    3_600_000,
                ];
                let ms = MS[usize::from(inp.u8()) % MS.len()];
                self.note(|| format!("advance {ms} ms"));
                self.advance(ms, 64)
            }
            9 => {
                let (src, local) = (Self::source(inp), u16::from(inp.u8() % 2));
                let n = usize::from(inp.u16() % 2048);
                let bytes = inp.bytes(n).to_vec();
                self.tainted = true;
                self.deliver(local, src, &bytes)
            }
            10 => self.op_mutate(inp),
            _ => {
                let sel = usize::from(inp.u8());
                let other = inp.u8();
                let Some((src, local, bytes)) =
                    (!self.ours.is_empty()).then(|| self.ours[sel % self.ours.len()].clone())
                else {
                    return Ok(());
                };
                let src = if other.is_multiple_of(4) {
                    addr(SOURCES[usize::from(other / 4) % 6])
                } else {
                    src
                };
                self.deliver(local, src, &bytes)
            }
        }
    }
}

/// The finding kind of a `check_invariants` message.
fn classify(e: &str) -> &'static str {
    if e.contains("loops or is shared") {
        "chain-loop"
    } else if e.contains("no timer") {
        "txn-no-timer"
    } else if e.contains("outlives its expiry") {
        "binding-no-timer"
    } else if e.contains("max_contacts") {
        "contacts-cap"
    } else {
        "table"
    }
}

fn first_line(b: &[u8]) -> String {
    let end = b
        .iter()
        .position(|&c| c == b'\r')
        .unwrap_or(b.len().min(80));
    String::from_utf8_lossy(&b[..end]).into_owned()
}
