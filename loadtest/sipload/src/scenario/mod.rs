//! Scenarios: what each UA sends, how replies are judged, and how a UA answers the edge.
//!
//! The runner owns everything generic — sockets, pacing, the transaction table, RFC 3261
//! retransmissions, matching a reply to its request by the top Via branch, counters and the
//! latency histogram. A scenario writes requests, judges final responses, and (for `call` and
//! `keepalive`) answers requests the edge sends to its UAs.
//!
//! A *flow* is what the pacer starts: one OPTIONS, one REGISTER, a REGISTER plus its
//! authenticated retry, or a whole call (INVITE, ACK, BYE). A final response either ends the
//! flow ([`Verdict::Success`] / [`Verdict::Failure`]) or continues it ([`Verdict::Next`]) with a
//! follow-up request on the same UA, which is a new client transaction.
//!
//! | module | scenario |
//! | --- | --- |
//! | `options` | stateless OPTIONS ping-pong |
//! | `register` | `register` (new bindings), `refresh` (re-register), `register-auth` (digest) |
//! | `digest` | RFC 7616 / RFC 2617 digest responses (MD5, SHA-256, qop=auth) |
//! | `call` | UAC INVITE/ACK/BYE to UAS instances of the same run |
//! | `keepalive` | registered UAs that answer the edge's OPTIONS pings and count CRLF pings |
//! | `sip` | small text helpers shared by the scenarios |

mod call;
pub(crate) mod digest;
mod keepalive;
mod options;
mod register;
mod sip;

use std::net::SocketAddr;

use clap::ValueEnum;
use sipedge_msg::Message;

pub(crate) use call::{error_ack, Call};
pub(crate) use keepalive::Keepalive;
pub(crate) use options::Options;
pub(crate) use register::{RegMode, Register, Users, DEFAULT_PASSWORD};
pub(crate) use sip::is_keepalive;

/// The scenarios sipload knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// Stateless OPTIONS ping-pong: every flow is one OPTIONS and its final response.
    Options,
    /// REGISTER new bindings: every flow registers an AoR not registered before in this run.
    Register,
    /// Re-REGISTER existing bindings: a setup phase registers `--aors` AoRs, then every flow
    /// refreshes one (same Call-ID, next CSeq, RFC 3261 §10.2.4).
    Refresh,
    /// REGISTER answered by a 401/407 challenge, then again with digest credentials.
    RegisterAuth,
    /// Calls: half the UAs register as callees (setup), the other half call them.
    Call,
    /// Register the UAs (setup), then only answer the edge's OPTIONS pings and count CRLF pings.
    Keepalive,
    /// Issue 17's overload offer: new REGISTERs at --rate, prebuilt and rewritten in place,
    /// replies counted by status code only (`flood.rs`; no transactions, no retransmissions).
    Flood,
}

/// Everything a scenario is built from (from the command line).
#[derive(Debug, Clone)]
pub(crate) struct Params {
    pub(crate) uas: usize,
    pub(crate) target: SocketAddr,
    pub(crate) ruri: Option<String>,
    /// SIP domain of the AoRs (To/From host, REGISTER Request-URI).
    pub(crate) domain: String,
    /// AoRs (bindings) for refresh/keepalive/register-auth; `None`: as many as needed.
    pub(crate) aors: Option<u64>,
    /// Registration lifetime asked for, seconds.
    pub(crate) expires: u32,
    /// Credentials for register-auth.
    pub(crate) users: Users,
    /// Distinguishes this run's Call-IDs from earlier runs against the same server.
    pub(crate) run_id: u32,
    /// Keepalive: the interval the edge is expected to ping at, for the per-interval report.
    pub(crate) ping_interval_s: f64,
}

/// What a request is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UaCtx<'a> {
    /// UA index = index of its socket.
    pub(crate) index: usize,
    /// The UA's own address (Via sent-by, Contact).
    pub(crate) local: SocketAddr,
    /// The branch the runner chose for this transaction (it carries the transaction key).
    pub(crate) branch: &'a str,
}

/// How a final response is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The flow did what the scenario wanted.
    Success,
    /// A final response the scenario counts as a failure of the flow.
    Failure,
    /// An expected step (a 401 challenge, the INVITE's 200): the flow goes on with the request
    /// the scenario wrote into `next`.
    Next,
}

/// One scenario's behaviour.
pub(crate) trait Scenario {
    /// Its name, as in reports.
    fn name(&self) -> &'static str;

    /// Flows to run (closed loop, unmeasured) before the measured phases: registering the
    /// bindings a `refresh` renews, the callees of `call`, the UAs of `keepalive`.
    fn setup_flows(&self) -> u64 {
        0
    }

    /// The setup is over: from now on [`Scenario::write_request`] starts measured flows.
    fn end_setup(&mut self) {}

    /// True when measured phases send nothing and only answer the edge (`keepalive`).
    fn passive(&self) -> bool {
        false
    }

    /// Writes the request that starts `ua`'s next flow into `out` (empty on entry).
    /// False when this UA has nothing to start now.
    fn write_request(&mut self, ua: &UaCtx<'_>, out: &mut Vec<u8>) -> bool;

    /// Judges a final response (status ≥ 200) to one of `ua`'s transactions. With
    /// [`Verdict::Next`] it has written the follow-up request into `next` (using `ua.branch`,
    /// the new transaction's branch); `extra` may receive a datagram sent first outside any
    /// transaction (the ACK of a 2xx, RFC 3261 §13.2.2.4).
    fn on_final(
        &mut self,
        ua: &UaCtx<'_>,
        msg: &Message<'_>,
        next: &mut Vec<u8>,
        extra: &mut Vec<u8>,
    ) -> Verdict;

    /// A request from the edge arrived on `ua`'s socket. Pushes the responses to send back
    /// (in order) into `out`; false when the scenario does not expect it (counted unexpected).
    fn on_request(&mut self, _ua: &UaCtx<'_>, _msg: &Message<'_>, _out: &mut Vec<Vec<u8>>) -> bool {
        false
    }

    /// A keepalive datagram (only CR/LF bytes, RFC 5626 §3.5.1, or NUL bytes as nathelper
    /// sends) arrived on `ua`'s socket. False: unexpected.
    fn on_keepalive(&mut self, _ua: usize) -> bool {
        false
    }

    /// A measured phase starts (length of its sending window).
    fn begin_phase(&mut self, _window_s: f64) {}

    /// What the scenario measured itself during the last phase (keepalive ping counts).
    fn phase_extra(&mut self) -> Option<serde_json::Value> {
        None
    }
}

/// Builds a scenario.
pub(crate) fn build(kind: Kind, p: &Params) -> Box<dyn Scenario> {
    match kind {
        Kind::Options => Box::new(Options::new(p.uas, p.target, p.ruri.as_deref())),
        Kind::Register => Box::new(Register::new(RegMode::New, p)),
        Kind::Refresh => Box::new(Register::new(RegMode::Refresh, p)),
        Kind::RegisterAuth => Box::new(Register::new(RegMode::Auth, p)),
        Kind::Call => Box::new(Call::new(p)),
        Kind::Keepalive => Box::new(Keepalive::new(p)),
        // `flood` runs in flood.rs and never builds a scenario; a plain register if it did.
        Kind::Flood => Box::new(Register::new(RegMode::New, p)),
    }
}

#[cfg(test)]
pub(crate) mod testkit;
