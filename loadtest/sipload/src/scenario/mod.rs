//! Scenarios: what each UA sends and how replies are judged. One module per scenario.
//!
//! The runner owns everything generic — sockets, pacing, the transaction table, RFC 3261
//! retransmissions, matching a reply to its request by the top Via branch, counters and the
//! latency histogram. A scenario only writes requests and judges final responses, so a new one
//! (register, refresh, register-auth, call, keepalive) is a new module implementing
//! [`Scenario`] plus one arm in [`build`]. Hooks that later scenarios need (a follow-up
//! request after a 401, answering the edge's own requests) extend the trait with default
//! methods, so existing scenarios do not change.

mod options;

use std::net::SocketAddr;

use clap::ValueEnum;
use sipedge_msg::Message;

pub(crate) use options::Options;

/// The scenarios sipload knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// Stateless OPTIONS ping-pong: every transaction is one OPTIONS and its final response.
    Options,
}

/// What a UA's request is built from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UaCtx<'a> {
    /// UA index = index of its socket.
    pub(crate) index: usize,
    /// The UA's own address (Via sent-by, From host).
    pub(crate) local: SocketAddr,
    /// The branch the runner chose for this transaction (it carries the transaction key).
    pub(crate) branch: &'a str,
}

/// How a final response is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The transaction did what the scenario wanted.
    Success,
    /// A final response the scenario counts as a failure.
    Failure,
}

/// One scenario's behaviour.
pub(crate) trait Scenario {
    /// Its name, as in reports.
    fn name(&self) -> &'static str;

    /// Writes the request that starts `ua`'s next transaction into `out` (empty on entry).
    /// False when this UA has nothing to start now.
    fn write_request(&mut self, ua: &UaCtx<'_>, out: &mut Vec<u8>) -> bool;

    /// Judges a final response (status ≥ 200) to one of `ua`'s transactions.
    fn on_final(&mut self, ua: usize, msg: &Message<'_>) -> Verdict;
}

/// Builds a scenario for `uas` UAs sending to `target`, with `ruri` as the Request-URI
/// (default `sip:<target>`).
pub(crate) fn build(
    kind: Kind,
    uas: usize,
    target: SocketAddr,
    ruri: Option<&str>,
) -> Box<dyn Scenario> {
    match kind {
        Kind::Options => Box::new(Options::new(uas, target, ruri)),
    }
}
