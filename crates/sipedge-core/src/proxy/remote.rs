//! Calls to AoRs held by another edge (issue 20): the remote lookup, the relay to the
//! binding's home edge, and the requests peer edges relay to us.
//!
//! | event | rule | what the caller sees |
//! | --- | --- | --- |
//! | `[cluster]` off | nothing here runs: no binding → 404 as always (no enumeration) | 404 |
//! | no binding for a local AoR, cluster on, the request not from a peer edge | the cell (its server transaction, RFC 3261 §17.2) is kept and marked pending, a [`RemoteLookup`] goes out (`Core::poll_remote_lookup`, token = slot + generation), a wheel timer `lookup_timeout` is armed. An INVITE gets 100 Trying at once (§16.2: the answer may take a Redis round trip) | 100 (INVITE), then what follows |
//! | more than `max_pending_lookups` cells already waiting on this shard | §21.5.4: temporarily out of room | 503, counted (`remote_pending_full`) |
//! | answer `Found` | one branch per distinct home edge (§16.5 parallel forking, highest q first, at most 16, never our own address), each a client transaction like any (§16.6: our Via, Record-Route with the dialog token, Max-Forwards − 1, our realm's credentials removed), the Request-URI unchanged — the AoR — so the home edge does its own lookup and delivers on the phone's flow, the only way through its NAT pinhole. The bindings are used for this transaction only: never put in the location table, so only the home edge pings them | the home edge's responses, relayed (§16.7) |
//! | answer `NotFound` or `Unavailable`, or the timer fires first | §21.4.18: the callee cannot be reached now | 480, counted by reason |
//! | an answer for a cell that gave up, ended, or was reused (generation differs) | ignored, counted (`remote_late`) | nothing |
//! | CANCEL while pending | §9.2: nothing was forwarded; the INVITE ends | 200 to the CANCEL, 487 |
//! | a request from a peer edge (`[cluster] peers`) | trusted like `[[ip_auth]]` for a local user (no digest: the peer authenticated its caller and removed the credentials), never relayed out of our domains; no binding here → 480 and **never** another remote lookup (loop guard) | the phone's answer, or 480 |

use std::collections::VecDeque;
use std::net::SocketAddr;

use sipedge_msg::{Message, Uri};

use crate::cluster::{RemoteAnswer, RemoteBinding, RemoteLookup};
use crate::proxy::forward::MAX_BRANCHES;
use crate::proxy::RelayCx;
use crate::refusal::RelayRefusal;
use crate::time::Millis;
use crate::txn::table::{Branch, Srv};
use crate::txn::{timer_key, Timer, GEN_MASK};

/// Set in the tokens of remote lookups (`token = bit | gen << 32 | slot`); apart from the
/// relay's mesh-lookup bit (`RELAY_TOKEN_BIT`, bit 63).
const CLUSTER_TOKEN_BIT: u64 = 1 << 62;

/// The lookups waiting for the shell and the number of cells waiting for an answer.
/// Bounded: every queued lookup belongs to a pending cell, and pending cells are capped
/// by `[cluster] max_pending_lookups`.
#[derive(Debug, Default)]
pub(crate) struct RemoteQueue {
    pub(crate) out: VecDeque<RemoteLookup>,
    pub(crate) pending: usize,
}

/// The token of a remote lookup for cell `idx` at generation `gen`.
fn token_of(idx: u32, gen: u32) -> u64 {
    CLUSTER_TOKEN_BIT | u64::from(gen & GEN_MASK) << 32 | u64::from(idx)
}

/// `(idx, gen)` of a token of ours.
fn decode_token(token: u64) -> Option<(u32, u32)> {
    (token >> 52 == CLUSTER_TOKEN_BIT >> 52)
        .then_some((token as u32, (token >> 32) as u32 & GEN_MASK))
}

/// The distinct home edges of `bindings`, highest q first (a home's best binding
/// decides its place), without `ours` (a home that is us: the local lookup already said
/// nothing is here).
fn homes(mut bindings: Vec<RemoteBinding>, ours: &[SocketAddr]) -> Vec<SocketAddr> {
    bindings.sort_by_key(|b| std::cmp::Reverse(b.q));
    let mut out: Vec<SocketAddr> = Vec::new();
    for b in bindings {
        if !out.contains(&b.home) && !ours.contains(&b.home) && out.len() < MAX_BRANCHES {
            out.push(b.home);
        }
    }
    out
}

impl RelayCx<'_> {
    /// Is `remote` one of the peer edges (`[cluster] peers`, cluster on)?
    pub(crate) fn is_peer(&self, remote: SocketAddr) -> bool {
        self.io.cfg.cluster.is_peer(remote.ip())
    }

    /// A local AoR has no binding here, before any cell exists: `Some(refusal)` ends the
    /// request (404 with the cluster off, as always; 480 from a peer: the loop guard; 503
    /// when the pending table is full), `None`: the cell is to wait for a remote lookup.
    pub(crate) fn no_binding_here(&mut self, remote: SocketAddr) -> Option<RelayRefusal> {
        if !self.io.cfg.cluster.enabled {
            return Some(RelayRefusal::NotFound);
        }
        if self.is_peer(remote) {
            self.relay.stats.peer_not_found += 1;
            return Some(RelayRefusal::Unavailable);
        }
        if self.relay.remote.pending >= self.io.cfg.cluster.max_pending_lookups {
            self.relay.stats.remote_pending_full += 1;
            return Some(RelayRefusal::Overloaded);
        }
        None
    }

    /// The owner shard found no binding for the cell `idx` waiting on its mesh lookup:
    /// true when the cluster takes it from here (a remote lookup, or its refusal).
    pub(crate) fn remote_after_mesh(&mut self, now: Millis, idx: u32) -> bool {
        let up = self.relay.txns.cell(idx).up_dest;
        match self.no_binding_here(up) {
            Some(RelayRefusal::NotFound) => false, // cluster off: 404 as always
            Some(r) => {
                self.finish_own(now, idx, r);
                true
            }
            None => {
                self.start_remote(now, idx, None);
                true
            }
        }
    }

    /// The cell `idx` (its request in `parsed` when at hand) waits for the cluster: 100
    /// Trying for an INVITE, a [`RemoteLookup`] queued, the timer armed.
    pub(crate) fn start_remote(&mut self, now: Millis, idx: u32, parsed: Option<&Message<'_>>) {
        let Some((target, _, _)) = self.cell_target(idx) else {
            return self.finish_own(now, idx, RelayRefusal::NotFound);
        };
        let mut aor = std::mem::take(&mut self.relay.aor_buf);
        let canonical = Uri::parse(&target)
            .ok()
            .and_then(|u| {
                crate::aor::canonical_aor(&u, self.io.cfg.registrar.case_sensitive, &mut aor).ok()
            })
            .and_then(|()| std::str::from_utf8(&aor).ok().map(Box::<str>::from));
        self.relay.aor_buf = aor;
        let Some(aor) = canonical else {
            return self.finish_own(now, idx, RelayRefusal::NotFound);
        };
        self.hundred_trying(idx, parsed);
        let wait = self.io.cfg.cluster.lookup_timeout.0;
        let c = self.relay.txns.cell_mut(idx);
        c.lookup_pending = true;
        c.remote = true;
        let gen = c.gen;
        self.relay.remote.pending += 1;
        self.relay.stats.remote_lookups += 1;
        let token = token_of(idx, gen);
        self.relay.remote.out.push_back(RemoteLookup { token, aor });
        self.arm(now, wait, timer_key(Timer::Remote, idx, gen, 0));
    }

    /// The cell `idx` no longer waits for a lookup (answered, timed out, cancelled).
    pub(crate) fn clear_lookup(&mut self, idx: u32) {
        let c = self.relay.txns.cell_mut(idx);
        let was_remote = c.lookup_pending && c.remote;
        c.lookup_pending = false;
        c.remote = false;
        if was_remote {
            self.relay.remote.pending = self.relay.remote.pending.saturating_sub(1);
        }
    }

    /// The cluster thread's answer (`Core::handle_remote_answer`).
    pub(crate) fn remote_answer(&mut self, now: Millis, token: u64, answer: RemoteAnswer) {
        let waiting = decode_token(token).filter(|&(idx, gen)| {
            self.relay
                .txns
                .get(idx, gen)
                .is_some_and(|c| c.lookup_pending && c.remote)
        });
        let Some((idx, _)) = waiting else {
            // The cell gave up (timer), was cancelled, ended or was reused: nothing to do.
            self.relay.stats.remote_late += 1;
            return;
        };
        self.clear_lookup(idx);
        let bindings = match answer {
            RemoteAnswer::Found(b) => b,
            RemoteAnswer::NotFound => {
                self.relay.stats.remote_not_found += 1;
                return self.finish_own(now, idx, RelayRefusal::Unavailable);
            }
            RemoteAnswer::Unavailable => {
                self.relay.stats.remote_unavailable += 1;
                return self.finish_own(now, idx, RelayRefusal::Unavailable);
            }
        };
        let homes = homes(bindings, &self.io.cfg.proxy.advertise);
        if homes.is_empty() {
            self.relay.stats.remote_not_found += 1;
            return self.finish_own(now, idx, RelayRefusal::Unavailable);
        }
        self.relay.stats.remote_found += 1;
        self.fork_homes(now, idx, &homes);
    }

    /// The timer of a remote lookup fired before its answer.
    pub(crate) fn remote_timeout(&mut self, now: Millis, idx: u32) {
        let c = self.relay.txns.cell(idx);
        if !(c.lookup_pending && c.remote) {
            return;
        }
        self.clear_lookup(idx);
        self.relay.stats.remote_timeouts += 1;
        self.finish_own(now, idx, RelayRefusal::Unavailable);
    }

    /// One branch per home edge (§16.5, §16.6), the Request-URI the lookup was for.
    fn fork_homes(&mut self, now: Millis, idx: u32, homes: &[SocketAddr]) {
        let Some((target, route_edit, route)) = self.cell_target(idx) else {
            return self.finish_own(now, idx, RelayRefusal::NotFound);
        };
        let c = self.relay.txns.cell_mut(idx);
        if !matches!(c.state(), Srv::Trying | Srv::Proceeding) {
            return;
        }
        let local = c.up_local;
        for &home in homes {
            let b = Branch::new(
                local,
                home,
                (target.clone(), route.clone(), route_edit),
                now,
            );
            c.branches.push(b);
        }
        for b in 0..homes.len() {
            self.send_branch(now, idx, b);
        }
    }

    /// The cell's target as routing decided it (§16.4 again, on the stored request: the
    /// same input gives the same plan) — the Request-URI to send, whether the Route
    /// headers are replaced, and by what. `None`: the stored request no longer parses.
    fn cell_target(&self, idx: u32) -> Option<(Vec<u8>, bool, Vec<u8>)> {
        let c = self.relay.txns.cell(idx);
        let msg = Message::parse(&c.req).ok()?;
        let v = msg.validated().ok()?;
        let uri = v.request_uri?;
        let plan = self.plan_route(&msg, &v, &uri);
        let target = plan.ruri.unwrap_or_else(|| uri.raw().to_vec());
        Some((target, plan.route_edit, plan.route))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_told_apart() {
        let t = token_of(123_456, 0xABCDE);
        assert_eq!(decode_token(t), Some((123_456, 0xABCDE)));
        assert!(!crate::proxy::is_relay_token(t));
        assert_eq!(decode_token(crate::proxy::RELAY_TOKEN_BIT | 5), None);
        assert_eq!(decode_token(7), None);
    }

    #[test]
    fn homes_are_distinct_by_q_and_never_us() {
        let b = |home: &str, q| RemoteBinding {
            node: "n".into(),
            home: home.parse().unwrap_or_else(|_| unreachable!()),
            contact: "sip:a@x".into(),
            expires_at_unix_ms: 0,
            q,
        };
        let us: SocketAddr = "10.0.0.9:5060".parse().unwrap_or_else(|_| unreachable!());
        let got = homes(
            vec![
                b("10.0.0.1:5060", 500),
                b("10.0.0.2:5060", 1000),
                b("10.0.0.1:5060", 900),
                b("10.0.0.9:5060", 1000),
            ],
            &[us],
        );
        let want: Vec<SocketAddr> = ["10.0.0.2:5060", "10.0.0.1:5060"]
            .iter()
            .map(|s| s.parse().unwrap_or_else(|_| unreachable!()))
            .collect();
        assert_eq!(got, want);
    }
}
