//! Per-shard protocol counters (plain integers; the shell publishes them for scraping).

use sipedge_msg::ParseErrorKind;

/// Counters kept by one shard's core.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Requests that parsed and validated.
    pub requests_in: u64,
    /// Responses that parsed and validated.
    pub responses_in: u64,
    /// CRLF keepalive datagrams (RFC 5626 §3.5.1).
    pub keepalives_in: u64,
    /// Parse or validation failures, by [`ParseErrorKind::index`].
    pub parse_errors: [u64; ParseErrorKind::COUNT],
    /// Messages dropped without a reply (bad responses, unanswerable requests, ACKs…).
    pub dropped: u64,
    /// Responses that matched no transaction (RFC 3261 §18.1.2: discarded).
    pub responses_unmatched: u64,
    /// Replies the edge generated itself.
    pub replies_out: u64,
    /// Hand-offs received from other shards.
    pub shard_msgs_in: u64,
    /// REGISTER requests seen (valid ones, before ownership: one handed to its owner counts
    /// on both shards, as do `requests_in`).
    pub registers_in: u64,
    /// REGISTERs handed to the AoR's owner shard.
    pub registers_handed_off: u64,
    /// REGISTERs answered 200 OK.
    pub registers_ok: u64,
    /// REGISTERs refused (403, 404, 400, 423, 500, 503).
    pub registers_failed: u64,
    /// REGISTERs that would have added a binding to a full shard (`[registrar]
    /// max_bindings`): 503 with Retry-After (also in `registers_failed`).
    pub registers_table_full: u64,
    /// REGISTER retransmissions answered again without change.
    pub register_retransmissions: u64,
    /// Bindings added.
    pub bindings_created: u64,
    /// Bindings refreshed.
    pub bindings_refreshed: u64,
    /// Bindings removed by a REGISTER (expires=0, `*`, eviction).
    pub bindings_removed: u64,
    /// Bindings evicted by `overflow = "replace_oldest"` (also in `bindings_removed`).
    pub bindings_evicted: u64,
    /// Bindings that expired.
    pub bindings_expired: u64,
    /// Bindings restored from records.
    pub restored: u64,
    /// Restored records skipped because they had expired.
    pub restore_expired: u64,
    /// Lookups answered for other shards.
    pub lookups_answered: u64,
    /// NAT keepalives.
    pub nat: crate::nat::NatStats,
    /// Caps reached and what was refused or dropped (issue 13).
    pub overload: OverloadStats,
}

/// What the caps of issue 13 refused, shrank or dropped on one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OverloadStats {
    /// Requests answered 503 because `[limits] max_transactions` was reached.
    pub txn_full: u64,
    /// Requests answered 503 because `[limits] max_transaction_bytes` was reached.
    pub txn_bytes_full: u64,
    /// Cells that got no lookup answer from the owner shard (503).
    pub lookups_lost: u64,
    /// Messages for another shard the shell could not queue (mesh full).
    pub shard_msgs_undelivered: u64,
    /// Stateless replies shrunk (optional headers left out) to stay within three times
    /// the request's size.
    pub replies_shrunk: u64,
    /// Stateless replies not sent: even without optional headers they would have been
    /// more than three times the request's size.
    pub replies_too_large: u64,
}
