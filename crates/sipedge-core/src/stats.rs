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
}
