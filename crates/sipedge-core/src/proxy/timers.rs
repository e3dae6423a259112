//! Transaction timers firing (RFC 3261 §17, Appendix A). A timer acts only in the state it
//! was armed for; otherwise it is a stale entry of the lazy-cancel wheel and does nothing.

use crate::proxy::RelayCx;
use crate::time::Millis;
use crate::txn::table::{Cancel, Cli, Srv};
use crate::txn::{decode_timer_key, timer_key, Timer};

impl RelayCx<'_> {
    /// A transaction timer key came off the wheel.
    pub(crate) fn txn_timer(&mut self, now: Millis, key: u64) {
        let Some((t, idx, gen, b)) = decode_timer_key(key) else {
            return;
        };
        let t2 = self.io.cfg.sip.t2_ms;
        let Some(c) = self.relay.txns.get_mut(idx, gen) else {
            return;
        };
        let gen = c.gen;
        let bi = usize::from(b);
        let branch_state = c.branches.get(bi).map(|br| br.state());
        match t {
            // §17.1.1.2: retransmit the INVITE, doubling, while Calling.
            Timer::A if branch_state == Some(Cli::Calling) => {
                let br = &mut c.branches[bi];
                br.interval_ms *= 2;
                let next = br.interval_ms;
                self.resend_branch(idx, bi);
                self.arm(now, next, key);
            }
            // §17.1.1.2 timer B / §17.1.2.2 timer F: no final answer in 64·T1.
            Timer::B if branch_state == Some(Cli::Calling) => self.branch_gave_up(now, idx, bi),
            Timer::F if matches!(branch_state, Some(Cli::Calling | Cli::Proceeding)) => {
                self.branch_gave_up(now, idx, bi)
            }
            // §17.1.2.2: retransmit the non-INVITE, doubling up to T2 (T2 once Proceeding).
            Timer::E if matches!(branch_state, Some(Cli::Calling | Cli::Proceeding)) => {
                let br = &mut c.branches[bi];
                br.interval_ms = if br.state() == Cli::Proceeding {
                    t2
                } else {
                    (br.interval_ms * 2).min(t2)
                };
                let next = br.interval_ms;
                self.resend_branch(idx, bi);
                self.arm(now, next, key);
            }
            // §16.6 step 11 / §16.8: timer C, pushed back by each provisional response.
            Timer::C if branch_state == Some(Cli::Proceeding) => {
                let at = c.branches[bi].timer_c_at;
                if at > now {
                    self.arm(now, at.0 - now.0, key);
                } else {
                    self.cancel_branch(now, idx, bi);
                }
            }
            // §17.1.1.2 timer D, §17.1.2.2 timer K: the branch's retransmission window is over.
            Timer::D | Timer::K if branch_state == Some(Cli::Completed) => {
                c.set_branch(bi, Cli::Terminated);
                self.maybe_free(idx);
            }
            // §17.2.1 timer G: the final response again, doubling up to T2.
            Timer::G if c.state() == Srv::Completed => {
                let next = (c.g_interval_ms * 2).min(t2);
                c.g_interval_ms = next;
                let (local, dest) = (c.up_local, c.up_dest);
                let resp = std::mem::take(&mut c.resp);
                self.io.out.push(local, dest, &resp);
                self.relay.txns.cell_mut(idx).resp = resp;
                self.relay.stats.retransmissions_sent += 1;
                self.arm(now, next, timer_key(Timer::G, idx, gen, 0));
            }
            // §17.2.1 timer H: no ACK came; timer I / J / L: the absorbing window is over.
            Timer::H if c.state() == Srv::Completed => self.server_done(idx),
            Timer::I if c.state() == Srv::Confirmed => self.server_done(idx),
            Timer::J if c.state() == Srv::Completed && !c.invite => self.server_done(idx),
            Timer::L if c.state() == Srv::Accepted => self.server_done(idx),
            // The CANCEL we sent: retransmit like E, give up like F (§9.1: after 64·T1 the
            // INVITE branch counts as cancelled).
            Timer::CancelE
                if c.branches
                    .get(bi)
                    .is_some_and(|br| br.cancel() == Cancel::Sent) =>
            {
                let br = &mut c.branches[bi];
                br.cancel_interval_ms = (br.cancel_interval_ms * 2).min(t2);
                let next = br.cancel_interval_ms;
                self.write_hop(idx, bi, b"CANCEL", None);
                self.relay.stats.retransmissions_sent += 1;
                self.arm(now, next, key);
            }
            // Issue 13: the owner shard never answered our lookup (`proxy::limits`).
            Timer::Lookup if c.lookup_pending && !c.remote => self.lookup_lost(now, idx),
            // Issue 20: the cluster did not answer in time (`proxy::remote`).
            Timer::Remote if c.lookup_pending && c.remote => self.remote_timeout(now, idx),
            Timer::CancelF if c.branches.get(bi).is_some() => {
                c.set_cancel(bi, Cancel::Done);
                if matches!(branch_state, Some(Cli::Calling | Cli::Proceeding)) {
                    self.branch_gave_up(now, idx, bi);
                }
            }
            _ => {}
        }
    }

    /// A branch with no final answer is given up: 408, or 487 when the request was
    /// cancelled, competes as the best response (§16.7 step 6, §16.8). For a non-INVITE
    /// an own 408 is never sent (RFC 4320 §4.2, in `check_complete`).
    fn branch_gave_up(&mut self, now: Millis, idx: u32, b: usize) {
        self.relay.stats.timeouts += 1;
        let c = self.relay.txns.cell_mut(idx);
        c.set_branch(b, Cli::Terminated);
        let code = if c.canceled { 487 } else { 408 };
        // An originated request's timeout is the consumer's 408, never sent (`originate`).
        if !self.local_final(idx, b, code, b"Request Timeout") {
            self.offer_own_best(idx, code);
        }
        self.check_complete(now, idx);
    }

    fn server_done(&mut self, idx: u32) {
        self.relay.txns.cell_mut(idx).set_state(Srv::Terminated);
        self.maybe_free(idx);
    }
}
