//! Stream connections' counters (issue 19), published beside the shard's own (`metrics.rs`):
//! `sipedge_tcp_*`, one metric per refusal and per close reason.

use std::sync::atomic::Ordering;

use sipedge_rt::stream::StreamStats;

use crate::metrics::{render_cells, Cells, ShardMetrics};

sipedge_core::counters! {
    /// The published copy of [`StreamStats`] plus the shard's hand-offs of writes.
    #[derive(Debug, Default, Clone, Copy)]
    pub struct TcpCounters {
        open: "tcp_connections_open", gauge, "Stream connections open on the shard.";
        accepted: "tcp_accepted_total", counter, "Stream connections accepted.";
        connects: "tcp_connects_total", counter, "Outgoing stream connections started.";
        refused_total: "tcp_refused_max_connections_total", counter,
            "Connections closed at accept: tcp.max_connections reached.";
        refused_per_ip: "tcp_refused_per_ip_total", counter,
            "Connections closed at accept: the source IP holds tcp.max_connections_per_ip.";
        refused_banned: "tcp_refused_banned_total", counter,
            "Connections closed at accept: the source IP is banned.";
        refused_fd_limit: "tcp_refused_fd_limit_total", counter,
            "Connections closed at accept: the shard's descriptor table is full (RLIMIT_NOFILE).";
        closed_peer: "tcp_closed_peer_total", counter, "Connections closed by the peer.";
        closed_timeout_header: "tcp_closed_header_timeout_total", counter,
            "Connections closed: no whole message within tcp.header_timeout_secs (slowloris), or a connect that did not complete.";
        closed_timeout_idle: "tcp_closed_idle_timeout_total", counter,
            "Connections closed: no byte either way within tcp.idle_timeout_secs.";
        closed_too_large: "tcp_closed_too_large_total", counter,
            "Connections closed: a message over max_message_bytes or more than tcp.max_connection_bytes held.";
        closed_protocol: "tcp_closed_protocol_total", counter,
            "Connections closed: the stream could not be framed (no Content-Length) or its codec refused it.";
        closed_error: "tcp_closed_error_total", counter,
            "Connections closed on a socket error, or outgoing connects that failed.";
        bytes_in: "tcp_bytes_in_total", counter, "Bytes read from stream connections.";
        bytes_out: "tcp_bytes_out_total", counter, "Bytes written to stream connections.";
        messages_in: "tcp_messages_in_total", counter, "SIP messages read from stream connections.";
        messages_out: "tcp_messages_out_total", counter, "SIP messages queued on stream connections.";
        pings: "tcp_pings_total", counter, "CRLFCRLF keepalive pings answered (RFC 5626 §4.4.1).";
        send_drops: "tcp_send_drops_total", counter,
            "Messages for a stream flow not sent: no connection and none could be opened.";
        forwarded: "tcp_writes_forwarded_total", counter,
            "Messages handed to the shard that owns their connection.";
    }
}

/// Stream counters of one shard, written only by that shard.
#[derive(Debug, Default)]
pub struct StreamMetrics {
    counters: Cells<TcpCounters>,
}

impl StreamMetrics {
    /// Copies the shard's stream counters; `forwarded`: writes handed to another shard.
    pub fn publish(&self, s: &StreamStats, forwarded: u64) {
        self.counters.publish(&TcpCounters {
            open: s.open,
            accepted: s.accepted,
            connects: s.connects,
            refused_total: s.refused_total,
            refused_per_ip: s.refused_per_ip,
            refused_banned: s.refused_banned,
            refused_fd_limit: s.refused_fd_limit,
            closed_peer: s.closed_peer,
            closed_timeout_header: s.closed_timeout_header,
            closed_timeout_idle: s.closed_timeout_idle,
            closed_too_large: s.closed_too_large,
            closed_protocol: s.closed_protocol,
            closed_error: s.closed_error,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            messages_in: s.messages_in,
            messages_out: s.messages_out,
            pings: s.pings,
            send_drops: s.send_drops,
            forwarded,
        });
    }
}

/// Appends the stream metrics of every shard to `out`.
pub fn render(out: &mut String, shards: &[std::sync::Arc<ShardMetrics>]) {
    render_cells(out, shards, |m| &m.streams.counters);
    use std::fmt::Write as _;
    let refused = crate::stream_codecs::TLS_HANDSHAKES_REFUSED.load(Ordering::Relaxed);
    let _ = write!(
        out,
        "# HELP sipedge_tls_handshakes_refused_total TLS connections closed unanswered: over [tls] handshakes_per_sec.\n\
         # TYPE sipedge_tls_handshakes_refused_total counter\n\
         sipedge_tls_handshakes_refused_total {refused}\n"
    );
}
