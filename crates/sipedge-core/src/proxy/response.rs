//! Responses from downstream (RFC 3261 §16.7, §17.1): matched by our Via branch, run
//! through the branch's client transaction, and sent upstream by the cell.

use std::net::SocketAddr;

use sipedge_msg::{write_forward, ForwardEdits, HeaderName, Message, Method, Validated};

use crate::output::LocalId;
use crate::proxy::token::{self, Flow};
use crate::proxy::Relay;
use crate::proxy::RelayCx;
use crate::refusal::{Refusal, RelayRefusal};
use crate::shard::ShardMsg;
use crate::time::Millis;
use crate::txn::branch::{Decoded, OurBranch};
use crate::txn::table::{Cancel, Cli, Srv};
use crate::txn::{timer_key, Timer, TIMER_D_MS};

/// §16.7 step 6 ranking: lower is better. 2xx (non-INVITE), then 6xx, then 3xx, 4xx, 5xx;
/// a response we made up ourselves (408, 487) loses to a real one of its class.
fn rank(code: u16, ours: bool) -> u16 {
    let class = match code / 100 {
        2 => 0,
        6 => 1,
        3 => 2,
        4 => 3,
        _ => 4,
    };
    class * 2 + u16::from(ours)
}

impl RelayCx<'_> {
    /// A valid response arrived (RFC 3261 §18.1.2 → §17.1.3 matching).
    pub(crate) fn handle_response(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &sipedge_msg::Validated<'_>,
    ) {
        let ours = match v
            .top_via
            .branch()
            .map(|b| OurBranch::check(b, &self.io.mac))
        {
            Some(Decoded::Ours(b)) => b,
            Some(Decoded::Forged) => {
                // Our shape, not our MAC: a guessed branch. Dropped here, before any
                // hand-off (issue 13).
                self.relay.stats.responses_forged += 1;
                return;
            }
            // Not sent by us: §18.1.2, discarded.
            _ => {
                self.io.stats.responses_unmatched += 1;
                return;
            }
        };
        if ours.shard != self.io.cfg.shard {
            if ours.shard.0 < self.io.cfg.shards {
                // The client transaction lives on the shard the branch names: one hop.
                self.relay.stats.responses_handed_off += 1;
                self.io.shard_out.push_back((
                    ours.shard,
                    ShardMsg::Datagram {
                        local,
                        remote,
                        arrived: now,
                        bytes: msg.as_bytes().to_vec(),
                        parsed: msg.detach(v).map(Box::new),
                    },
                ));
            } else {
                self.io.stats.responses_unmatched += 1;
            }
            return;
        }
        let Some(code) = msg.status() else { return };
        let cseq = v.cseq;
        let b = usize::from(ours.b);
        let Some(c) = self.relay.txns.get(ours.idx, ours.gen) else {
            // The cell is gone: RFC 6026 §7.1 — 2xx retransmissions pass only while the
            // transaction is Accepted (timer L); after that, nothing unmatched is forwarded
            // (a stateless relay by the second Via would reflect anything to anyone).
            self.relay.stats.responses_no_transaction += 1;
            return;
        };
        if b >= c.branches.len() {
            self.io.stats.responses_unmatched += 1;
            return;
        }
        let idx = ours.idx;
        match cseq.method {
            Method::Cancel => {
                // The answer to a CANCEL we sent: absorbed.
                let c = self.relay.txns.cell_mut(idx);
                if c.branches[b].cancel() == Cancel::Sent && code >= 200 {
                    c.set_cancel(b, Cancel::Done);
                }
            }
            Method::Invite if c.invite => self.invite_response(now, idx, b, code, (msg, v)),
            Method::Invite | Method::Ack => self.io.stats.responses_unmatched += 1,
            _ if !c.invite => self.non_invite_response(now, idx, b, code, (msg, v)),
            _ => self.io.stats.responses_unmatched += 1,
        }
    }

    /// INVITE client transaction (§17.1.1.2) plus the proxy's choices (§16.7).
    fn invite_response(
        &mut self,
        now: Millis,
        idx: u32,
        b: usize,
        code: u16,
        (msg, v): (&Message<'_>, &Validated<'_>),
    ) {
        let c = self.relay.txns.cell_mut(idx);
        let gen = c.gen;
        let state = c.branches[b].state();
        match code {
            100..=199 => {
                if !matches!(state, Cli::Calling | Cli::Proceeding) {
                    return;
                }
                c.set_branch(b, Cli::Proceeding);
                c.branches[b].timer_c_at = now.plus(crate::txn::TIMER_C_MS);
                let cancel_pending = c.branches[b].cancel() == Cancel::Pending;
                if state == Cli::Calling {
                    // §16.6 step 11: timer C runs while the branch is Proceeding; later
                    // provisionals only move its deadline (lazily re-armed when it fires).
                    let k = timer_key(Timer::C, idx, gen, b as u8);
                    self.arm(now, crate::txn::TIMER_C_MS, k);
                }
                if cancel_pending {
                    self.send_cancel(now, idx, b);
                }
                // §16.7 step 5: every provisional but 100 goes upstream at once — until a
                // final response went (a losing phone's 180 after the 2xx stays here).
                let open = matches!(
                    self.relay.txns.cell(idx).state(),
                    Srv::Trying | Srv::Proceeding
                );
                if code > 100 && open {
                    self.forward_upstream(idx, b, (msg, v), true);
                }
            }
            200..=299 => {
                // Every 2xx goes upstream (§16.7 step 5), retransmissions too (RFC 6026).
                c.set_branch(b, Cli::Terminated);
                let first = matches!(c.state(), Srv::Trying | Srv::Proceeding);
                if first {
                    c.set_state(Srv::Accepted);
                    c.resp.clear();
                    let t1 = self.io.cfg.sip.t1_ms;
                    self.arm(now, 64 * t1, timer_key(Timer::L, idx, gen, 0));
                }
                self.forward_upstream(idx, b, (msg, v), false);
                if first {
                    // Issue 16: the call is confirmed; its channels stay held by the dialog.
                    self.dialog_confirmed(now, (idx, b), (msg, v));
                    // §16.7 step 10: the other branches are cancelled.
                    for o in 0..self.relay.txns.cell(idx).branches.len() {
                        if o != b {
                            self.cancel_branch(now, idx, o);
                        }
                    }
                } else {
                    // A late 2xx (RFC 6026) may end the last branch of a cell whose server
                    // side is already over (a 2xx after the branch's non-2xx final, once the
                    // caller's ACK ended the server transaction): the branch's timer D no
                    // longer fires for it, so the cell is freed here or never (core_seq C7).
                    self.maybe_free(idx);
                }
            }
            _ => match state {
                Cli::Calling | Cli::Proceeding => {
                    c.set_branch(b, Cli::Completed);
                    self.write_hop(idx, b, b"ACK", msg.header(HeaderName::To));
                    self.arm(now, TIMER_D_MS, timer_key(Timer::D, idx, gen, b as u8));
                    self.offer_best(idx, b, code, (msg, v));
                    if code >= 600 {
                        // §16.7 step 6: a 6xx ends the search.
                        for o in 0..self.relay.txns.cell(idx).branches.len() {
                            if o != b {
                                self.cancel_branch(now, idx, o);
                            }
                        }
                    }
                    self.check_complete(now, idx);
                }
                // §17.1.1.2: a retransmitted final response gets the ACK again.
                Cli::Completed => self.write_hop(idx, b, b"ACK", msg.header(HeaderName::To)),
                Cli::Terminated => {}
            },
        }
    }

    /// non-INVITE client transaction (§17.1.2.2).
    fn non_invite_response(
        &mut self,
        now: Millis,
        idx: u32,
        b: usize,
        code: u16,
        (msg, v): (&Message<'_>, &Validated<'_>),
    ) {
        let t4 = self.io.cfg.sip.t4_ms;
        let c = self.relay.txns.cell_mut(idx);
        let gen = c.gen;
        match (code, c.branches[b].state()) {
            // RFC 4320 §4.1: no provisional response other than 100 goes to a non-INVITE
            // request (and the 100 is hop by hop), so none is forwarded upstream.
            (100..=199, Cli::Calling | Cli::Proceeding) => c.set_branch(b, Cli::Proceeding),
            (200.., Cli::Calling | Cli::Proceeding) => {
                c.set_branch(b, Cli::Completed);
                self.arm(now, t4, timer_key(Timer::K, idx, gen, b as u8));
                self.offer_best(idx, b, code, (msg, v));
                self.check_complete(now, idx);
            }
            _ => {}
        }
    }

    /// Keeps `msg` (our Via removed) as the cell's best final response if it beats the
    /// one held (§16.7 step 6).
    fn offer_best(
        &mut self,
        idx: u32,
        b: usize,
        code: u16,
        (msg, v): (&Message<'_>, &Validated<'_>),
    ) {
        if self.local_final(idx, b, code, msg.reason().unwrap_or_default()) {
            return; // an originated request's final goes to its consumer (`originate`)
        }
        let c = self.relay.txns.cell_mut(idx);
        if c.best_code != 0 && rank(code, false) >= rank(c.best_code, c.best.is_empty()) {
            return;
        }
        c.best_code = code;
        write_forward(
            &mut c.best,
            msg,
            &ForwardEdits {
                pop_via: true,
                ..ForwardEdits::default()
            },
        );
        if (200..300).contains(&code) {
            // A 2xx to a dialog-creating non-INVITE (SUBSCRIBE, REFER).
            let mut best = std::mem::take(&mut self.relay.txns.cell_mut(idx).best);
            self.rewrite_record_route(idx, b, v, &mut best);
            self.relay.txns.cell_mut(idx).best = best;
        }
    }

    /// RFC 3261 §16.7 step 4: the response going upstream carries our Record-Route with a
    /// token bound to the callee's tag too ([`crate::proxy::token`]) — the caller's route
    /// set. Only for a cell that recorded the route and a response with a To tag.
    fn rewrite_record_route(&mut self, idx: u32, b: usize, v: &Validated<'_>, out: &mut [u8]) {
        if !self.relay.txns.cell(idx).record_route {
            return;
        }
        let Some(to_tag) = v.to.tag().filter(|t| !t.is_empty()) else {
            return;
        };
        let caller = v.from.tag().unwrap_or_default();
        let call_id = v.call_id;
        let Relay {
            txns,
            tok_buf,
            tok_new,
            ..
        } = &mut self.relay;
        let c = txns.cell(idx);
        let Some(br) = c.branches.get(b) else { return };
        let a = Flow {
            local: c.up_local,
            addr: c.up_dest,
        };
        let bf = Flow {
            local: br.local,
            addr: br.dest,
        };
        // The response's Call-ID and From tag: the request's unless the callee changed
        // them, and then the old token is not found and nothing is rewritten.
        let ids = (call_id, caller, to_tag);
        token::rewrite_in(out, &self.io.mac, ids, a, bf, tok_buf, tok_new);
    }

    /// A made-up final response for a branch that gave up (408, or 487 once cancelled).
    pub(crate) fn offer_own_best(&mut self, idx: u32, code: u16) {
        let c = self.relay.txns.cell_mut(idx);
        if c.best_code != 0 && rank(code, true) >= rank(c.best_code, c.best.is_empty()) {
            return;
        }
        c.best_code = code;
        c.best.clear();
    }

    /// §16.7 step 6–8: when every branch has its final answer and nothing final went
    /// upstream yet, the best one goes.
    pub(crate) fn check_complete(&mut self, now: Millis, idx: u32) {
        if self.local_complete(idx) {
            return; // no server transaction: the finals went to the consumer (`originate`)
        }
        let c = self.relay.txns.cell(idx);
        if !matches!(c.state(), Srv::Trying | Srv::Proceeding) || c.lookup_pending || !c.all_final()
        {
            self.maybe_free(idx);
            return;
        }
        if c.best_code == 503 {
            // §16.7 step 6: a 503 is not passed on (it would stop the caller's other
            // servers); the proxy answers 500.
            let (code, reason) = RelayRefusal::ServerError.reply();
            self.own_response(idx, code, reason);
        } else if c.best.is_empty() && !c.invite && matches!(c.best_code, 0 | 408) {
            // RFC 4320 §4.2: a transaction-stateful element MUST NOT send a 408 to a
            // non-INVITE request — the client has timed out by now (its timer F is ours
            // too), so a 408 only adds load at the worst moment. Nothing is sent; the
            // server transaction is Completed with no response, so timer J absorbs
            // retransmissions silently.
            self.relay.txns.cell_mut(idx).resp.clear();
        } else if c.best.is_empty() {
            let code = if c.best_code == 0 { 408 } else { c.best_code };
            let reason: &[u8] = match code {
                487 => b"Request Terminated",
                _ => b"Request Timeout",
            };
            self.own_response(idx, code, reason);
        } else {
            let Relay { txns, .. } = &mut self.relay;
            let c = txns.cell_mut(idx);
            std::mem::swap(&mut c.resp, &mut c.best);
            let (local, dest) = (c.up_local, c.up_dest);
            self.relay.stats.responses_forwarded += 1;
            let resp = std::mem::take(&mut self.relay.txns.cell_mut(idx).resp);
            self.io.out.push(local, dest, &resp);
            self.relay.txns.cell_mut(idx).resp = resp;
        }
        let c = self.relay.txns.cell(idx);
        if c.invite && (200..300).contains(&c.best_code) {
            // Not reached: INVITE 2xx go upstream as they come.
            return;
        }
        self.server_completed(now, idx);
    }

    /// Frees the cell once its server transaction and every branch are done.
    pub(crate) fn maybe_free(&mut self, idx: u32) {
        let c = self.relay.txns.cell(idx);
        if c.live
            && c.state() == Srv::Terminated
            && c.branches.iter().all(|b| b.state() == Cli::Terminated)
        {
            self.dialog_failed(idx);
            self.relay.txns.free(idx);
            self.relay.stats.illegal_transaction_edges = self.relay.txns.retired_illegal_edges();
        }
    }

    /// Sends `msg` upstream with our Via removed (§16.7 step 3, 9); `keep` stores it as
    /// the response a retransmitted request gets.
    fn forward_upstream(
        &mut self,
        idx: u32,
        b: usize,
        (msg, v): (&Message<'_>, &Validated<'_>),
        keep: bool,
    ) {
        self.relay.stats.responses_forwarded += 1;
        let mut buf = std::mem::take(&mut self.relay.fwd_buf);
        write_forward(
            &mut buf,
            msg,
            &ForwardEdits {
                pop_via: true,
                ..ForwardEdits::default()
            },
        );
        self.rewrite_record_route(idx, b, v, &mut buf);
        let c = self.relay.txns.cell_mut(idx);
        if keep && matches!(c.state(), Srv::Trying | Srv::Proceeding) {
            c.set_state(Srv::Proceeding);
            c.resp.clear();
            c.resp.extend_from_slice(&buf);
        }
        let (local, dest) = (c.up_local, c.up_dest);
        self.io.out.push(local, dest, &buf);
        self.relay.fwd_buf = buf;
    }
}
