//! The relay's counters (issue 7), published beside the shard's own (`metrics.rs`) and
//! rendered after them: `sipedge_relay_*`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sipedge_core::ProxyStats;

use crate::metrics::ShardMetrics;

/// Relay counters of one shard, written only by that shard.
#[derive(Debug, Default)]
pub struct RelayMetrics {
    transactions: AtomicU64,
    branches: AtomicU64,
    retransmissions_absorbed: AtomicU64,
    retransmissions_sent: AtomicU64,
    acks_absorbed: AtomicU64,
    acks_forwarded: AtomicU64,
    cancels: AtomicU64,
    responses_forwarded: AtomicU64,
    responses_no_transaction: AtomicU64,
    responses_forged: AtomicU64,
    tokens_refused: AtomicU64,
    credentials_consumed: AtomicU64,
    responses_handed_off: AtomicU64,
    timeouts: AtomicU64,
    refused: AtomicU64,
    lookups_remote: AtomicU64,
    active: AtomicU64,
}

impl RelayMetrics {
    /// Copies the core's relay counters and the number of live transactions.
    pub fn publish(&self, s: &ProxyStats, active: usize) {
        self.transactions.store(s.transactions, Relaxed);
        self.branches.store(s.branches, Relaxed);
        self.retransmissions_absorbed
            .store(s.retransmissions_absorbed, Relaxed);
        self.retransmissions_sent
            .store(s.retransmissions_sent, Relaxed);
        self.acks_absorbed.store(s.acks_absorbed, Relaxed);
        self.acks_forwarded.store(s.acks_forwarded, Relaxed);
        self.cancels.store(s.cancels, Relaxed);
        self.responses_forwarded
            .store(s.responses_forwarded, Relaxed);
        self.responses_no_transaction
            .store(s.responses_no_transaction, Relaxed);
        self.responses_forged.store(s.responses_forged, Relaxed);
        self.tokens_refused.store(s.tokens_refused, Relaxed);
        self.credentials_consumed
            .store(s.credentials_consumed, Relaxed);
        self.responses_handed_off
            .store(s.responses_handed_off, Relaxed);
        self.timeouts.store(s.timeouts, Relaxed);
        self.refused.store(s.refused, Relaxed);
        self.lookups_remote.store(s.lookups_remote, Relaxed);
        self.active.store(active as u64, Relaxed);
    }
}

type Field = fn(&RelayMetrics) -> &AtomicU64;

const COUNTERS: &[(&str, &str, Field)] = &[
    (
        "relay_transactions_total",
        "Requests relayed statefully (transactions created).",
        |m| &m.transactions,
    ),
    (
        "relay_branches_total",
        "Requests forwarded downstream (one per target).",
        |m| &m.branches,
    ),
    (
        "relay_retransmissions_absorbed_total",
        "Retransmitted requests answered by their transaction.",
        |m| &m.retransmissions_absorbed,
    ),
    (
        "relay_retransmissions_sent_total",
        "Requests and responses retransmitted by timers A, E, G.",
        |m| &m.retransmissions_sent,
    ),
    (
        "relay_acks_absorbed_total",
        "ACKs for our non-2xx absorbed hop by hop.",
        |m| &m.acks_absorbed,
    ),
    (
        "relay_acks_forwarded_total",
        "ACKs for 2xx forwarded end to end.",
        |m| &m.acks_forwarded,
    ),
    (
        "relay_cancels_total",
        "CANCELs matched to their INVITE.",
        |m| &m.cancels,
    ),
    (
        "relay_responses_forwarded_total",
        "Responses forwarded upstream by their transaction.",
        |m| &m.responses_forwarded,
    ),
    (
        "relay_responses_no_transaction_total",
        "Responses dropped: their transaction ended (RFC 6026, no stateless relay).",
        |m| &m.responses_no_transaction,
    ),
    (
        "relay_responses_forged_total",
        "Responses dropped: our branch shape, MAC not ours.",
        |m| &m.responses_forged,
    ),
    (
        "relay_tokens_refused_total",
        "Requests with a To tag refused (404): no dialog token of ours verified.",
        |m| &m.tokens_refused,
    ),
    (
        "relay_credentials_consumed_total",
        "Forwarded requests stripped of credentials for our realm.",
        |m| &m.credentials_consumed,
    ),
    (
        "relay_responses_handed_off_total",
        "Responses handed to the shard owning their transaction.",
        |m| &m.responses_handed_off,
    ),
    (
        "relay_timeouts_total",
        "Branches that timed out (timers B, F, C).",
        |m| &m.timeouts,
    ),
    (
        "relay_refused_total",
        "Requests refused by a proxy rule (403, 404, 420, 482, 483, 503).",
        |m| &m.refused,
    ),
    (
        "relay_lookups_remote_total",
        "Location lookups asked of another shard.",
        |m| &m.lookups_remote,
    ),
];

/// Appends the relay's metrics of every shard to `out`.
pub fn render(out: &mut String, shards: &[std::sync::Arc<ShardMetrics>]) {
    let mut metric = |name: &str, help: &str, kind: &str, field: Field| {
        let _ = writeln!(
            out,
            "# HELP sipedge_{name} {help}\n# TYPE sipedge_{name} {kind}"
        );
        for (i, m) in shards.iter().enumerate() {
            let _ = writeln!(
                out,
                "sipedge_{name}{{shard=\"{i}\"}} {}",
                field(&m.relay).load(Relaxed)
            );
        }
    };
    for (name, help, field) in COUNTERS {
        metric(name, help, "counter", *field);
    }
    metric(
        "relay_active_transactions",
        "Live relay transactions on the shard.",
        "gauge",
        |m| &m.active,
    );
}
