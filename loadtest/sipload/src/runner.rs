//! The generator loop: one thread, one [`Io`] (the UDP engine, or one TCP connection per
//! UA) over every UA.
//!
//! A loop turn: read the clock, start the requests the pacer (open loop) or the window
//! (closed loop) allows, fire due retransmission timers, then one `Engine::wait` that submits
//! the turn's sends and delivers the replies that arrived, each matched to its transaction by
//! the top Via branch. A phase sends for its duration, then drains: it keeps retransmitting
//! and collecting replies until nothing is outstanding or the drain time is over.
//!
//! The receive callback cannot send (the engine is busy delivering), so what it decides to
//! send — a flow's follow-up request, an ACK, a UA's answer to the edge — is queued and sent
//! right after the `wait` returns, in the same turn.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sipedge_msg::Message;
use sipedge_rt::Datagram;

use crate::tcp::Io;

use crate::pacer::{Pacer, TICK};
use crate::retx::{on_invite_timer, on_timer, RetxPolicy, TimerAction, Timers};
use crate::scenario::{Scenario, UaCtx, Verdict};
use crate::stats::PhaseStats;
use crate::txn::{TxnKey, TxnTable};

/// Longest a turn sleeps, so the loop notices the end of a phase in time.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Replies arriving this long after the sending window still count as answered in it, so a
/// server that keeps up is not penalised for the last requests' round trip.
pub(crate) const REPLY_GRACE: Duration = Duration::from_millis(20);

/// What stays the same for the whole run.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) target: SocketAddr,
    /// Local address of each UA's socket (UA i = socket i).
    pub(crate) locals: Vec<SocketAddr>,
    pub(crate) policy: RetxPolicy,
    pub(crate) count_any_reply: bool,
    pub(crate) drain: Duration,
    /// Most new requests started in one turn.
    pub(crate) max_burst: u64,
    /// A follow-up BYE is sent this long after the response that asked for it (`call
    /// --hold-ms`: the call stays up meanwhile); zero: at once.
    pub(crate) hold: Duration,
}

/// One phase: a whole run, or one ramp step.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhaseSpec {
    /// Offered requests/s; 0 = closed loop.
    pub(crate) rate: f64,
    /// Closed loop: requests kept in flight.
    pub(crate) outstanding: u64,
    pub(crate) duration: Duration,
    pub(crate) max_requests: u64,
}

/// A datagram the receive callback queued.
#[derive(Debug)]
enum Outgoing {
    /// A follow-up request: the live transaction's bytes, to the target.
    Txn(TxnKey),
    /// A datagram outside any transaction (an ACK, a UA's response to the edge).
    Raw {
        ua: usize,
        to: SocketAddr,
        bytes: Vec<u8>,
    },
}

/// What a phase measured.
#[derive(Debug)]
pub(crate) struct PhaseOutcome {
    pub(crate) stats: PhaseStats,
    /// Length of the sending window.
    pub(crate) send_time: Duration,
}

/// Everything but the engine, so the engine's receive callback can borrow it.
struct State {
    scenario: Box<dyn Scenario>,
    setup: Setup,
    table: TxnTable,
    timers: Timers,
    stats: PhaseStats,
    sending: bool,
    /// When sending stopped, plus [`REPLY_GRACE`]: replies until then count as in the window.
    window_close: Option<Instant>,
    next_ua: usize,
    branch: String,
    /// What the receive callback queued for after the `wait`.
    outbox: Vec<Outgoing>,
    /// Scratch for a scenario's extra datagram (ACK).
    extra: Vec<u8>,
    /// Scratch for a UA's responses to the edge.
    replies: Vec<Vec<u8>>,
    /// Follow-up BYEs held for [`Setup::hold`], with when each is due (in order: the hold
    /// is the same for all).
    held: VecDeque<(Instant, TxnKey)>,
}

/// The generator.
pub(crate) struct Runner {
    engine: Io,
    st: State,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("engine", &self.engine)
            .field("scenario", &self.st.scenario.name())
            .finish()
    }
}

/// Queues a datagram; when every send slot is busy, hands the queue to the kernel and tries
/// once more. False: dropped (the retransmission timer will resend it).
fn send(engine: &mut Io, ua: usize, to: SocketAddr, bytes: &[u8]) -> bool {
    if engine.send(ua, to, bytes) {
        return true;
    }
    let _ = engine.flush();
    engine.send(ua, to, bytes)
}

impl Runner {
    pub(crate) fn new(engine: impl Into<Io>, scenario: Box<dyn Scenario>, setup: Setup) -> Runner {
        Runner {
            engine: engine.into(),
            st: State {
                scenario,
                setup,
                table: TxnTable::default(),
                timers: Timers::default(),
                stats: PhaseStats::default(),
                sending: false,
                window_close: None,
                next_ua: 0,
                branch: String::with_capacity(32),
                outbox: Vec::new(),
                extra: Vec::new(),
                replies: Vec::new(),
                held: VecDeque::new(),
            },
        }
    }

    pub(crate) fn engine(&self) -> &Io {
        &self.engine
    }

    /// Sends the next flows (and their retransmissions and follow-ups) to `target`: the setup
    /// may go to another server than the measured phases (`--register-target`).
    pub(crate) fn set_target(&mut self, target: SocketAddr) {
        self.st.setup.target = target;
    }

    pub(crate) fn scenario_mut(&mut self) -> &mut dyn crate::scenario::Scenario {
        self.st.scenario.as_mut()
    }

    /// Runs one phase to its end (sending window, then drain).
    pub(crate) fn run_phase(&mut self, spec: &PhaseSpec) -> io::Result<PhaseOutcome> {
        let Runner { engine, st } = self;
        st.stats = PhaseStats::default();
        st.sending = true;
        st.window_close = None;
        let start = Instant::now();
        let send_end = start + spec.duration;
        let mut pacer = (spec.rate > 0.0)
            .then(|| Pacer::new(spec.rate, start, spec.max_requests, st.setup.max_burst));
        let mut window_end = send_end;
        let passive = st.scenario.passive();
        st.scenario.begin_phase(spec.duration.as_secs_f64());
        loop {
            let now = Instant::now();
            if st.sending && now >= send_end {
                // The last turn: send what was owed by the end of the window, exactly.
                if let Some(p) = pacer.as_mut().filter(|_| !passive) {
                    let n = p.due_all(send_end);
                    (0..n)
                        .take_while(|_| st.start_new(engine, now))
                        .for_each(drop);
                }
                st.stop_sending(send_end);
                window_end = send_end;
            } else if st.sending && !passive && st.stats.c.sent >= spec.max_requests {
                st.stop_sending(now);
                window_end = now;
            }
            let mut behind = false;
            if st.sending && !passive {
                match &mut pacer {
                    Some(p) => {
                        let n = p.due(now);
                        let started = (0..n).take_while(|_| st.start_new(engine, now)).count();
                        p.give_back(n - started as u64);
                        behind = p.behind(now) > 0;
                    }
                    None => {
                        let mut budget = st.setup.max_burst;
                        while budget > 0
                            && (st.table.live() as u64) < spec.outstanding
                            && st.stats.c.sent < spec.max_requests
                            && st.start_new(engine, now)
                        {
                            budget -= 1;
                        }
                    }
                }
            }
            while let Some(key) = st.timers.pop_due(now) {
                st.on_timer(engine, key, now);
            }
            st.release_held(engine, now);
            let mut wake_at = now + MAX_WAIT;
            if let Some(&(due, _)) = st.held.front() {
                wake_at = wake_at.min(due.max(now));
            }
            if st.sending {
                wake_at = wake_at.min(send_end);
                if let Some(next) = pacer
                    .as_ref()
                    .filter(|_| !passive)
                    .and_then(|p| now.checked_add(p.until_next(now).max(TICK)))
                {
                    wake_at = wake_at.min(next);
                }
            } else {
                if st.table.live() == 0 {
                    break;
                }
                let drain_end = window_end + st.setup.drain;
                if now >= drain_end {
                    st.stats.c.unfinished += st.table.abandon_all() as u64;
                    break;
                }
                wake_at = wake_at.min(drain_end);
            }
            if let Some(t) = st.timers.next_due() {
                wake_at = wake_at.min(t);
            }
            let timeout = if behind {
                Duration::ZERO
            } else {
                wake_at.saturating_duration_since(now)
            };
            engine.wait(Some(timeout), || false, |d| st.on_datagram(d))?;
            st.send_outbox(engine);
        }
        st.timers.clear();
        st.held.clear();
        engine.flush()?;
        Ok(PhaseOutcome {
            stats: std::mem::take(&mut st.stats),
            send_time: window_end.saturating_duration_since(start),
        })
    }
}

impl State {
    fn stop_sending(&mut self, at: Instant) {
        self.sending = false;
        self.window_close = Some(at + REPLY_GRACE);
    }

    /// Starts a new flow on the next UA (round robin) that has one to start. False if no UA
    /// had anything to send.
    fn start_new(&mut self, engine: &mut Io, now: Instant) -> bool {
        let n = self.setup.locals.len();
        for _ in 0..n {
            let ua = self.next_ua;
            self.next_ua = (ua + 1) % n;
            let (key, txn) = self.table.start(ua, now, now + self.setup.policy.timeout);
            self.branch.clear();
            key.write_branch(&mut self.branch);
            let ctx = UaCtx {
                index: ua,
                local: self.setup.locals[ua],
                branch: &self.branch,
            };
            if !self.scenario.write_request(&ctx, &mut txn.bytes) {
                self.table.finish(key);
                continue;
            }
            txn.invite = txn.bytes.starts_with(b"INVITE ");
            if !send(engine, ua, self.setup.target, &txn.bytes) {
                self.stats.c.send_drops += 1;
            }
            self.timers.schedule_first(now + self.setup.policy.t1, key);
            self.stats.c.sent += 1;
            self.stats.c.requests += 1;
            return true;
        }
        false
    }

    /// Sends the held BYEs that are due: their transaction starts now (first send,
    /// Timer E/F from here).
    fn release_held(&mut self, engine: &mut Io, now: Instant) {
        while let Some(&(due, key)) = self.held.front() {
            if due > now {
                break;
            }
            self.held.pop_front();
            let Some(txn) = self.table.get_mut(key) else {
                continue;
            };
            txn.first_sent = now;
            txn.deadline = now + self.setup.policy.timeout;
            if !send(engine, txn.ua, self.setup.target, &txn.bytes) {
                self.stats.c.send_drops += 1;
            }
            self.timers.schedule_first(now + self.setup.policy.t1, key);
            self.stats.c.requests += 1;
        }
    }

    /// Sends what the receive callback queued.
    fn send_outbox(&mut self, engine: &mut Io) {
        for out in self.outbox.drain(..) {
            let ok = match out {
                Outgoing::Txn(key) => match self.table.get_mut(key) {
                    Some(txn) => send(engine, txn.ua, self.setup.target, &txn.bytes),
                    None => true, // already answered or timed out
                },
                Outgoing::Raw { ua, to, bytes } => send(engine, ua, to, &bytes),
            };
            if !ok {
                self.stats.c.send_drops += 1;
            }
        }
    }

    /// A retransmission timer is due.
    fn on_timer(&mut self, engine: &mut Io, key: TxnKey, now: Instant) {
        let Some(txn) = self.table.get_mut(key) else {
            return; // answered meanwhile
        };
        let decide = if txn.invite {
            on_invite_timer
        } else {
            on_timer
        };
        match decide(
            &self.setup.policy,
            now,
            txn.deadline,
            txn.sends,
            txn.proceeding,
        ) {
            TimerAction::Wait { next } => self.timers.schedule(next, key),
            TimerAction::Timeout => {
                self.table.finish(key);
                self.stats.c.timeouts += 1;
            }
            TimerAction::Retransmit { next } => {
                txn.sends += 1;
                if !send(engine, txn.ua, self.setup.target, &txn.bytes) {
                    self.stats.c.send_drops += 1;
                }
                self.stats.c.retransmissions += 1;
                self.timers.schedule(next, key);
            }
        }
    }

    /// A datagram arrived on UA `d.socket`.
    fn on_datagram(&mut self, d: Datagram<'_>) {
        let now = Instant::now();
        if d.truncated {
            self.stats.c.unexpected += 1;
            return;
        }
        if crate::scenario::is_keepalive(d.data) {
            if self.scenario.on_keepalive(d.socket) {
                self.stats.c.keepalives += 1;
            } else {
                self.stats.c.unexpected += 1;
            }
            return;
        }
        let Ok(msg) = Message::parse(d.data) else {
            self.stats.c.unexpected += 1;
            return;
        };
        let status = msg.status();
        if status.is_none() && !self.setup.count_any_reply {
            self.on_request(&d, &msg);
            return;
        }
        let c = &mut self.stats.c;
        let key = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .and_then(TxnKey::from_branch);
        let Some(txn) = key
            .and_then(|k| self.table.get_mut(k))
            .filter(|t| t.ua == d.socket)
        else {
            c.unmatched += 1;
            return;
        };
        let invite = txn.invite;
        let code = match status {
            Some(code) if code < 200 => {
                txn.proceeding = true;
                c.provisional += 1;
                return;
            }
            Some(code) => code,
            None => 0, // an echo, with --count-any-reply
        };
        let Some(first_sent) = key.and_then(|k| self.table.finish(k)) else {
            return;
        };
        let s = &mut self.stats;
        s.record_latency(now.saturating_duration_since(first_sent), invite);
        s.c.replies += 1;
        *s.c.codes.entry(code).or_insert(0) += 1;
        let verdict = if status.is_none() {
            Verdict::Success
        } else {
            self.judge(d.socket, &msg, now)
        };
        let s = &mut self.stats;
        match verdict {
            Verdict::Next => return,
            Verdict::Success => s.c.successes += 1,
            Verdict::Failure => s.c.failures += 1,
        }
        if self.sending || self.window_close.is_some_and(|t| now <= t) {
            s.c.replies_in_window += 1;
        }
    }

    /// Lets the scenario judge a final response; on [`Verdict::Next`] the follow-up request is
    /// a new live transaction queued for sending.
    fn judge(&mut self, ua: usize, msg: &Message<'_>, now: Instant) -> Verdict {
        let (key, txn) = self.table.start(ua, now, now + self.setup.policy.timeout);
        self.branch.clear();
        key.write_branch(&mut self.branch);
        let ctx = UaCtx {
            index: ua,
            local: self.setup.locals[ua],
            branch: &self.branch,
        };
        self.extra.clear();
        let verdict = self
            .scenario
            .on_final(&ctx, msg, &mut txn.bytes, &mut self.extra);
        if !self.extra.is_empty() {
            self.outbox.push(Outgoing::Raw {
                ua,
                to: self.setup.target,
                bytes: std::mem::take(&mut self.extra),
            });
        }
        if verdict == Verdict::Next && !txn.bytes.is_empty() {
            txn.invite = txn.bytes.starts_with(b"INVITE ");
            if !self.setup.hold.is_zero() && txn.bytes.starts_with(b"BYE ") {
                // The call stays up for the hold; `release_held` sends the BYE then.
                txn.deadline = now + self.setup.hold + self.setup.policy.timeout;
                self.held.push_back((now + self.setup.hold, key));
                return Verdict::Next;
            }
            self.timers.schedule_first(now + self.setup.policy.t1, key);
            self.outbox.push(Outgoing::Txn(key));
            self.stats.c.requests += 1;
            return Verdict::Next;
        }
        self.table.finish(key);
        match verdict {
            Verdict::Next => Verdict::Failure, // a follow-up the scenario could not write
            v => v,
        }
    }

    /// A request from the edge to one of our UAs: the scenario answers it (to where it came
    /// from, as RFC 3261 §18.2.2 does for UDP with `received`/`rport`), or it is unexpected.
    fn on_request(&mut self, d: &Datagram<'_>, msg: &Message<'_>) {
        let ctx = UaCtx {
            index: d.socket,
            local: self.setup.locals[d.socket],
            branch: "",
        };
        self.replies.clear();
        if !self.scenario.on_request(&ctx, msg, &mut self.replies) {
            self.stats.c.unexpected += 1;
            return;
        }
        self.stats.c.answered += 1;
        for bytes in self.replies.drain(..) {
            self.outbox.push(Outgoing::Raw {
                ua: d.socket,
                to: d.remote,
                bytes,
            });
        }
    }
}
