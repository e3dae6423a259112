//! Transactions (RFC 3261 §17) as a transaction-stateful proxy keeps them.
//!
//! One [`Cell`] per proxied request, as Kamailio's `tm` does: the server transaction facing
//! upstream and, in `branches`, one client transaction per forked target downstream. The
//! cells live in a slab ([`table::Table`]); a hash index keyed on the server-transaction
//! key (§17.2.3) finds the cell of a retransmission, an ACK or a CANCEL. Client
//! transactions need no index: the branch we put in our Via encodes the shard, the cell's
//! slot and generation and the branch number, MACed with the node secret ([`branch`]), so
//! a response is matched by verifying and decoding it and checking the CSeq method
//! (§17.1.3), on any shard in one hop; a branch that does not verify is dropped.
//!
//! | state machine | states | timers (UDP) |
//! | --- | --- | --- |
//! | INVITE client (§17.1.1) | Calling → Proceeding → Completed → Terminated | A (retransmit, T1 doubling), B (64·T1 in Calling), D (32 s in Completed), C (proxy, 3 min, §16.8) |
//! | non-INVITE client (§17.1.2) | Trying → Proceeding → Completed → Terminated | E (retransmit, T1 doubling to T2), F (64·T1), K (T4) |
//! | INVITE server (§17.2.1, RFC 6026) | Proceeding → Completed → Confirmed → Terminated; Proceeding → Accepted → Terminated | G (retransmit final, T1 doubling to T2), H (64·T1 waiting for ACK), I (T4), L (64·T1 after a 2xx) |
//! | non-INVITE server (§17.2.2) | Trying → Proceeding → Completed → Terminated | J (64·T1) |
//!
//! Every edge with its trigger, timer and RFC section: `LIFECYCLE.md` beside this file; the
//! legal edges are written once in [`state`] and every change of state goes through
//! `Cell::set_state`, `Cell::set_branch` or `Cell::set_cancel` ([`table`]).
//!
//! Timers are on the shard's wheel with lazy cancellation: a key names the cell slot, the
//! cell's generation (bumped when the slot is freed), the branch and the timer kind
//! ([`timer_key`]); a timer that fires finds the state it was armed for or does nothing.
//! Freed cells keep the capacity of their byte buffers, so in steady state a new
//! transaction allocates nothing.

pub(crate) mod branch;
pub(crate) mod state;
pub(crate) mod table;

/// Default `[sip] t1_ms`: RTT estimate (RFC 3261 §17.1.1.1, Appendix A).
pub const DEFAULT_T1_MS: u64 = 500;
/// Default `[sip] t2_ms`: longest retransmit interval for non-INVITE requests and INVITE
/// responses (RFC 3261 Appendix A).
pub const DEFAULT_T2_MS: u64 = 4_000;
/// Default `[sip] t4_ms`: how long a message may stay in the network (RFC 3261 Appendix A).
pub const DEFAULT_T4_MS: u64 = 5_000;
/// Timer D for UDP: at least 32 s (RFC 3261 §17.1.1.2).
pub(crate) const TIMER_D_MS: u64 = 32_000;
/// Timer C: more than 3 minutes (RFC 3261 §16.6 step 11).
pub(crate) const TIMER_C_MS: u64 = 181_000;

/// `[sip]`: the RFC 3261 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipTimers {
    /// T1, milliseconds.
    pub t1_ms: u64,
    /// T2, milliseconds.
    pub t2_ms: u64,
    /// T4, milliseconds.
    pub t4_ms: u64,
}

impl Default for SipTimers {
    fn default() -> Self {
        Self {
            t1_ms: DEFAULT_T1_MS,
            t2_ms: DEFAULT_T2_MS,
            t4_ms: DEFAULT_T4_MS,
        }
    }
}

/// Which timer a wheel key stands for (RFC 3261 Appendix A names, plus the retransmit and
/// timeout of a CANCEL we send, and RFC 6026's L).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Timer {
    A = 1,
    B,
    C,
    D,
    E,
    F,
    G,
    H,
    I,
    J,
    K,
    L,
    /// Retransmit a CANCEL we sent (its own non-INVITE transaction, like E).
    CancelE,
    /// A CANCEL we sent got no final answer (like F).
    CancelF,
    /// A location lookup asked of the AoR's owner shard got no answer (the mesh dropped
    /// the question or the answer): the cell ends with 503 (`proxy::limits`).
    Lookup,
    /// A remote lookup asked of the cluster thread (issue 20) got no answer within
    /// `[cluster] lookup_timeout`: the cell ends with 480 (`proxy::remote`).
    Remote,
}

impl Timer {
    fn from_u8(v: u8) -> Option<Timer> {
        use Timer::*;
        Some(match v {
            1 => A,
            2 => B,
            3 => C,
            4 => D,
            5 => E,
            6 => F,
            7 => G,
            8 => H,
            9 => I,
            10 => J,
            11 => K,
            12 => L,
            13 => CancelE,
            14 => CancelF,
            15 => Lookup,
            16 => Remote,
            _ => return None,
        })
    }
}

/// Set on every transaction timer key (binding expiry keys are `slot << 32 | gen` with
/// slots far below 2³¹).
pub(crate) const TXN_TIMER_BIT: u64 = 1 << 63;
/// Bits of a cell generation carried in timer keys and branches.
pub(crate) const GEN_MASK: u32 = 0xF_FFFF;

/// The wheel key of timer `t` for branch `b` of cell `idx` at generation `gen`.
pub(crate) fn timer_key(t: Timer, idx: u32, gen: u32, b: u8) -> u64 {
    TXN_TIMER_BIT
        | (t as u64) << 56
        | u64::from(b & 0xf) << 52
        | u64::from(gen & GEN_MASK) << 32
        | u64::from(idx)
}

/// Inverse of [`timer_key`]: `(timer, idx, gen, branch)`.
pub(crate) fn decode_timer_key(key: u64) -> Option<(Timer, u32, u32, u8)> {
    let t = Timer::from_u8(((key >> 56) & 0x7f) as u8)?;
    Some((
        t,
        key as u32,
        ((key >> 32) as u32) & GEN_MASK,
        ((key >> 52) & 0xf) as u8,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_keys_round_trip() {
        let k = timer_key(Timer::CancelF, 123_456, 0xABCDE, 7);
        assert_ne!(k & TXN_TIMER_BIT, 0);
        assert_eq!(
            decode_timer_key(k),
            Some((Timer::CancelF, 123_456, 0xABCDE, 7))
        );
        let binding_key = 5u64 << 32 | 9;
        assert_eq!(binding_key & TXN_TIMER_BIT, 0);
    }
}
