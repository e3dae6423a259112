//! The relay's transaction state machines and their legal edges, written once
//! (`LIFECYCLE.md` beside this file draws them). Every change of state of a cell or a
//! branch goes through [`Cell::set_state`](super::table::Cell::set_state),
//! [`Cell::set_branch`](super::table::Cell::set_branch) or
//! [`Cell::set_cancel`](super::table::Cell::set_cancel), which ask the functions here
//! whether the edge is legal: an illegal edge is a bug (a `debug_assert!`), counted in
//! release ([`Table::illegal_edges`](super::table::Table::illegal_edges)) and taken anyway,
//! so a release build behaves as before the check.

/// Server transaction states (RFC 3261 §17.2; Accepted from RFC 6026 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Srv {
    /// Nothing sent upstream beyond 100 (INVITE: Proceeding; non-INVITE: Trying).
    Trying,
    /// A provisional response other than 100 was sent.
    Proceeding,
    /// A final response (INVITE: non-2xx) was sent; absorbing retransmissions.
    Completed,
    /// INVITE: the ACK for our non-2xx arrived (timer I running).
    Confirmed,
    /// INVITE: a 2xx was forwarded (timer L running; 2xx retransmissions still pass).
    Accepted,
    /// Done; the cell is freed once every branch is done too.
    Terminated,
}

/// Client transaction states (RFC 3261 §17.1; Calling is Trying for a non-INVITE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cli {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

/// A CANCEL for a branch (RFC 3261 §9.1, §16.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    None,
    /// Wanted, but no provisional response yet: sent when one arrives (§9.1).
    Pending,
    /// Sent; retransmitted until answered.
    Sent,
    /// Answered or given up.
    Done,
}

impl Srv {
    /// Whether `self → to` is an edge of the server machine (`invite`: §17.2.1 with
    /// RFC 6026 §7.1; otherwise §17.2.2 with RFC 4320 §4.1).
    pub(crate) fn legal(self, to: Srv, invite: bool) -> bool {
        use Srv::*;
        match (self, to) {
            // §17.2.1 / §16.7 step 5: a provisional (not 100) forwarded upstream; later
            // ones keep the state. RFC 4320 §4.1: none is forwarded for a non-INVITE.
            (Trying | Proceeding, Proceeding) => invite,
            // §17.2.1 (non-2xx final, timers G and H) / §17.2.2 (any final, timer J).
            (Trying | Proceeding, Completed) => true,
            // RFC 6026 §7.1: a 2xx forwarded (timer L).
            (Trying | Proceeding, Accepted) => invite,
            // §17.2.1: the ACK for our non-2xx (timer I).
            (Completed, Confirmed) => invite,
            // §17.2.1 timer H (no ACK) / §17.2.2 timer J.
            (Completed, Terminated) => true,
            // §17.2.1 timer I; RFC 6026 §7.1 timer L.
            (Confirmed | Accepted, Terminated) => invite,
            // §16.5: no target at all: our own final response, the cell is freed at once.
            (Trying, Terminated) => true,
            _ => false,
        }
    }
}

impl Cli {
    /// Whether `self → to` is an edge of the client machine (`invite`: §17.1.1 with
    /// RFC 6026 §7.2; otherwise §17.1.2, Calling standing for Trying).
    pub(crate) fn legal(self, to: Cli, invite: bool) -> bool {
        use Cli::*;
        match (self, to) {
            // §17.1.1.2 / §17.1.2.2: a provisional; later ones keep the state.
            (Calling | Proceeding, Proceeding) => true,
            // §17.1.1.2: 300-699 (ACK sent, timer D); §17.1.2.2: any final (timer K).
            (Calling | Proceeding, Completed) => true,
            // §17.1.1.2: a 2xx goes to the TU and ends the INVITE client transaction; timer
            // B / F, or the CANCEL's 64·T1 (§9.1), give the branch up (§16.8).
            (Calling | Proceeding, Terminated) => true,
            // §17.1.1.2 timer D / §17.1.2.2 timer K; an INVITE's 2xx after a non-2xx.
            (Completed, Terminated) => true,
            // RFC 6026 §7.2: every 2xx of an INVITE passes on (Terminated stands for its
            // client Accepted state: the 2xx goes upstream while the cell is Accepted).
            (Terminated, Terminated) => invite,
            _ => false,
        }
    }
}

impl Cancel {
    /// Whether `self → to` is an edge of a branch's CANCEL (§9.1, §16.10).
    pub(crate) fn legal(self, to: Cancel) -> bool {
        use Cancel::*;
        matches!(
            (self, to),
            // §9.1: no provisional yet: wait for one.
            (None, Pending)
            // §9.1 / §16.10: sent (timers E and F of the CANCEL's own transaction).
            | (None | Pending, Sent)
            // A final answer to it, or its timer F: done (a stale F finds it done already).
            | (Sent | Done, Done)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_machines_differ_where_the_rfcs_do() {
        assert!(Srv::Completed.legal(Srv::Confirmed, true));
        assert!(!Srv::Completed.legal(Srv::Confirmed, false));
        assert!(Srv::Proceeding.legal(Srv::Accepted, true));
        assert!(!Srv::Trying.legal(Srv::Accepted, false));
        assert!(!Srv::Trying.legal(Srv::Proceeding, false));
        assert!(!Srv::Terminated.legal(Srv::Trying, true));
        assert!(!Srv::Accepted.legal(Srv::Completed, true));
        assert!(!Srv::Confirmed.legal(Srv::Completed, true));
    }

    #[test]
    fn no_machine_leaves_terminated() {
        for to in [Cli::Calling, Cli::Proceeding, Cli::Completed] {
            assert!(!Cli::Terminated.legal(to, true));
            assert!(!Cli::Terminated.legal(to, false));
        }
        assert!(!Cli::Terminated.legal(Cli::Terminated, false));
        assert!(!Cli::Completed.legal(Cli::Proceeding, true));
        assert!(!Cancel::Done.legal(Cancel::Sent));
        assert!(!Cancel::Sent.legal(Cancel::Pending));
    }
}
