//! The generator loop: one thread, one [`Engine`] over every UA socket.
//!
//! A loop turn: read the clock, start the requests the pacer (open loop) or the window
//! (closed loop) allows, fire due retransmission timers, then one `Engine::wait` that submits
//! the turn's sends and delivers the replies that arrived, each matched to its transaction by
//! the top Via branch. A phase sends for its duration, then drains: it keeps retransmitting
//! and collecting replies until nothing is outstanding or the drain time is over.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sipedge_msg::Message;
use sipedge_rt::{Datagram, Engine};

use crate::pacer::{Pacer, TICK};
use crate::retx::{on_timer, RetxPolicy, TimerAction, Timers};
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
}

/// The generator.
pub(crate) struct Runner {
    engine: Engine,
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
fn send(engine: &mut Engine, ua: usize, to: SocketAddr, bytes: &[u8]) -> bool {
    if engine.send(ua, to, bytes) {
        return true;
    }
    let _ = engine.flush();
    engine.send(ua, to, bytes)
}

impl Runner {
    pub(crate) fn new(engine: Engine, scenario: Box<dyn Scenario>, setup: Setup) -> Runner {
        Runner {
            engine,
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
            },
        }
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
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
        loop {
            let now = Instant::now();
            if st.sending && now >= send_end {
                // The last turn: send what was owed by the end of the window, exactly.
                if let Some(p) = &mut pacer {
                    let n = p.due_all(send_end);
                    (0..n)
                        .take_while(|_| st.start_new(engine, now))
                        .for_each(drop);
                }
                st.stop_sending(send_end);
                window_end = send_end;
            } else if st.sending && st.stats.c.sent >= spec.max_requests {
                st.stop_sending(now);
                window_end = now;
            }
            let mut behind = false;
            if st.sending {
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
            let mut wake_at = now + MAX_WAIT;
            if st.sending {
                wake_at = wake_at.min(send_end);
                if let Some(next) = pacer
                    .as_ref()
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
        }
        st.timers.clear();
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

    /// Starts a new transaction on the next UA (round robin). False if the scenario had
    /// nothing to send.
    fn start_new(&mut self, engine: &mut Engine, now: Instant) -> bool {
        let ua = self.next_ua;
        self.next_ua = (ua + 1) % self.setup.locals.len();
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
            return false;
        }
        if !send(engine, ua, self.setup.target, &txn.bytes) {
            self.stats.c.send_drops += 1;
        }
        self.timers.schedule_first(now + self.setup.policy.t1, key);
        self.stats.c.sent += 1;
        true
    }

    /// A retransmission timer is due.
    fn on_timer(&mut self, engine: &mut Engine, key: TxnKey, now: Instant) {
        let Some(txn) = self.table.get_mut(key) else {
            return; // answered meanwhile
        };
        match on_timer(
            &self.setup.policy,
            now,
            txn.deadline,
            txn.sends,
            txn.proceeding,
        ) {
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
        let c = &mut self.stats.c;
        if d.truncated {
            c.unexpected += 1;
            return;
        }
        let Ok(msg) = Message::parse(d.data) else {
            c.unexpected += 1;
            return;
        };
        let status = msg.status();
        if status.is_none() && !self.setup.count_any_reply {
            c.unexpected += 1; // a request from the peer: no scenario answers those yet
            return;
        }
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
        let (code, verdict) = match status {
            Some(code) if code < 200 => {
                txn.proceeding = true;
                c.provisional += 1;
                return;
            }
            Some(code) => (code, self.scenario.on_final(d.socket, &msg)),
            None => (0, Verdict::Success), // an echo, with --count-any-reply
        };
        let Some(first_sent) = key.and_then(|k| self.table.finish(k)) else {
            return;
        };
        let s = &mut self.stats;
        s.record_latency(now.saturating_duration_since(first_sent));
        s.c.replies += 1;
        if self.sending || self.window_close.is_some_and(|t| now <= t) {
            s.c.replies_in_window += 1;
        }
        *s.c.codes.entry(code).or_insert(0) += 1;
        match verdict {
            Verdict::Success => s.c.successes += 1,
            Verdict::Failure => s.c.failures += 1,
        }
    }
}
