//! The transaction-stateful relay (RFC 3261 §16): requests to registered users, in-dialog
//! requests on our Record-Route, and (when allowed) outbound requests.
//!
//! | step | rule | reply when it fails |
//! | --- | --- | --- |
//! | §17.2.3 | a retransmission meets its server transaction: the last response is sent again | — |
//! | §17.2.3 / §9.2 | a CANCEL meets its INVITE: 200 to the CANCEL, CANCEL on every branch | 481 (no INVITE) |
//! | §17.2.1 | an ACK for our non-2xx final response is absorbed hop by hop; any other ACK is forwarded end to end, statelessly | — |
//! | §16.3 step 3 | Max-Forwards 0 | 483 |
//! | §16.3 step 4 | a Via of ours whose loop hash equals this request's | 482 |
//! | §16.3 step 5 | Proxy-Require tags we do not support | 420 with Unsupported |
//! | §16.4 | strict-route peer: Request-URI is our Record-Route → last Route becomes the Request-URI; our own top Route is removed | — |
//! | issue 13 | a request with a To tag is in-dialog only on our Route carrying a dialog token that verifies for its Call-ID and tags ([`token`]); it then goes to the dialog's other end and skips authentication | 404 "Not Here" (stateless, once; an ACK is absorbed) |
//! | §22.3 | out-of-dialog requests authenticated first (issue 6: IP/CLI, else digest) | 407 / 403 / 400 |
//! | §16.5 | Request-URI in our domains (out of dialog) → location lookup on the AoR's owner shard | 404 for "no such user" and "not registered" alike (issue 13: no user enumeration) |
//! | §16.5 | Request-URI elsewhere: only with `allow_outbound` and a digest user or IP/CLI trunk | 403 "Relaying Forbidden" |
//! | §16.6 | per target: Request-URI, Max-Forwards − 1, Record-Route `<sip:us;lr;sed=token>` (`record_route`), our Via; the sender's Via gets received/rport; NAT-aware destination | 503 when no next hop is an IP address (no DNS yet) |
//! | §16.7, RFC 4320 §4 | 1xx (not 100) forwarded for INVITE only; a non-INVITE that times out gets no 408 (nothing at all); every 2xx forwarded and the other branches cancelled; 6xx cancels the rest; else the best final response once all branches are done | — |
//!
//! Responses go back by our Via: the cell remembers the request's source and socket. A
//! response whose branch does not verify (MAC, [`crate::txn::branch`]) or whose cell is gone
//! is dropped and counted: RFC 6026 §7.1 replaces the stateless forwarding of RFC 3261
//! §16.7 — the INVITE server transaction stays Accepted for 64·T1 after a 2xx and passes
//! 2xx retransmissions, and after that nothing unmatched is forwarded (a relay of unmatched
//! responses is an anonymous reflector).
//!
//! Refusals before anything is forwarded are one stateless reply each (RFC 3261 §8.2.6.1,
//! §16.3): no 100 Trying before the decision to forward, no timer G retransmission — a
//! spoofed source gets at most one datagram per request, never larger than ~3× it.
//! Credentials for our realm are removed from every forwarded request (issue 13, as
//! Kamailio's `consume_credentials()`); those for other realms pass.

pub(crate) mod advertise;
mod dialogs;
mod forward;
mod hooks;
mod limits;
pub(crate) mod originate;
pub(crate) mod path;
pub(crate) mod remote;
mod response;
mod route;
mod timers;
pub(crate) mod token;

use std::net::SocketAddr;

use crate::txn::table::Table;

pub use crate::proxy::limits::OVERLOAD_RETRY_AFTER_SECS;
pub use crate::proxy::route::ProxyStats;

pub use crate::config::ProxyConfig;

/// The relay's per-shard state: the transaction cells, reused buffers and counters.
#[derive(Debug)]
pub(crate) struct Relay {
    pub(crate) txns: Table,
    pub(crate) stats: ProxyStats,
    /// Reused: our Via value, our Record-Route value, a forwarded message.
    via_buf: String,
    rr_buf: String,
    fwd_buf: Vec<u8>,
    /// Reused: the dialog token as sent in a request and as rewritten in its responses.
    tok_buf: Vec<u8>,
    tok_new: Vec<u8>,
    /// Reused: the canonical AoR of a request's target.
    pub(crate) aor_buf: Vec<u8>,
    /// Requests the edge originated, in flight and finished (`originate`).
    pub(crate) originated: originate::Originated,
    /// Remote lookups waiting for the shell, and the cells waiting for their answer
    /// (issue 20, `remote`).
    pub(crate) remote: remote::RemoteQueue,
}

/// The relay (RFC 3261 §16, the transaction layer of §17): its own state ([`Relay`]:
/// the transaction table), the location store it routes by, the authenticator's state (and the
/// guessing counts of `protect`) for the requests it admits, and the shard's sink, lent by the dispatcher. It names no
/// other subsystem's state beyond these.
pub(crate) struct RelayCx<'a> {
    pub(crate) io: &'a mut crate::io::Io,
    pub(crate) loc: &'a mut crate::location::Location,
    pub(crate) relay: &'a mut Relay,
    pub(crate) auth: &'a mut crate::auth::AuthState,
    /// The guessing counts the authenticator keeps (`protect`, issue 17).
    pub(crate) protect: &'a mut crate::protect::Protect,
    /// Calls holding channels (issue 16, `dialog`): the relay's hooks in `dialogs`.
    pub(crate) dialogs: &'a mut crate::dialog::Dialogs,
}

impl RelayCx<'_> {
    /// The authenticator (the relay's hook, `auth`).
    pub(crate) fn authenticator(&mut self) -> crate::auth::Authenticator<'_> {
        crate::auth::Authenticator {
            io: self.io,
            auth: self.auth,
            protect: self.protect,
        }
    }
}

impl Relay {
    pub(crate) fn new(seed: u64, limits: crate::txn::table::TxnLimits) -> Relay {
        let mut txns = Table::new(seed);
        txns.set_limits(limits);
        Relay {
            tok_buf: Vec::with_capacity(token::MAX_LEN),
            tok_new: Vec::with_capacity(token::MAX_LEN),
            txns,
            stats: ProxyStats::default(),
            via_buf: String::with_capacity(96),
            rr_buf: String::with_capacity(64),
            fwd_buf: Vec::with_capacity(2048),
            aor_buf: Vec::with_capacity(64),
            originated: originate::Originated::default(),
            remote: remote::RemoteQueue::default(),
        }
    }
}

/// Set in lookup tokens that belong to the relay (`token = bit | gen << 32 | slot`).
pub(crate) const RELAY_TOKEN_BIT: u64 = 1 << 63;

/// Does this lookup answer belong to the relay?
pub(crate) fn is_relay_token(token: u64) -> bool {
    token & RELAY_TOKEN_BIT != 0
}

/// Writes `addr` as a SIP host:port (IPv6 bracketed).
/// No `fmt` machinery: this runs for every Via and Record-Route we write.
fn write_hostport(out: &mut String, addr: SocketAddr) {
    let ip = sipedge_msg::IpText::new(addr.ip());
    let ip = std::str::from_utf8(ip.as_bytes()).unwrap_or_default();
    if addr.is_ipv6() {
        out.push('[');
        out.push_str(ip);
        out.push(']');
    } else {
        out.push_str(ip);
    }
    out.push(':');
    sipedge_msg::fmt::push_u64_str(out, u64::from(addr.port()));
}
