//! Stream transports (issue 19): TCP, TLS and WebSocket connections owned by a shard.
//!
//! A connection's bytes pass through a [`StreamCodec`] between the socket and SIP: the
//! identity for TCP ([`PlainCodec`]), rustls for TLS ([`TlsCodec`]), RFC 6455 framing for
//! WS ([`WsCodec`], RFC 7118), both for WSS ([`Stack`]); [`codec_for`] /
//! [`client_codec_for`] pick one. SIP framing of the plain bytes (Content-Length, CRLF
//! keepalives, RFC 3261 §18.3, RFC 5626 §4.4.1) is the connection's ([`Framer`]), not the
//! codec's, except where the codec already delimits messages ([`Plain::Message`], one SIP
//! message per WebSocket message, RFC 7118 §5). [`HandshakeBucket`] rations TLS handshakes.
//!
//! | module | what |
//! | --- | --- |
//! | `codec` | [`StreamCodec`], [`PlainCodec`] |
//! | `tls`, `ws`, `stack`, `factory` | the TLS, WebSocket and WSS codecs and the factory |
//! | `limit` | [`HandshakeBucket`] |
//! | `framing` | [`Framer`]: whole messages and pings out of a byte stream (sans-IO) |
//! | `conn` | the per-shard connection slab, [`StreamLimits`], [`StreamStats`] |
//! | `shard` | [`Streams`]: a shard's listeners and connections over epoll (mio) |
//! | `ring_send` | their writes as sends on the shard's io_uring ([`Streams::flush_on`]) |
//! | `directory` | [`Directory`]: which shard owns a flow's connection; connections per IP |
//! | `socket` | [`bind_tcp_reuseport`], outgoing connects |

pub mod codec;
mod conn;
mod directory;
pub mod factory;
pub mod framing;
pub mod limit;
mod ring_send;
mod shard;
mod socket;
pub mod stack;
pub mod tls;
pub mod ws;

#[cfg(test)]
mod tests_mem;
#[cfg(test)]
mod tests_tls;
#[cfg(test)]
mod tests_ws;

pub use codec::{CodecError, Plain, PlainCodec, StreamCodec};
pub use conn::{
    CloseReason, StreamLimits, StreamStats, DEFAULT_HEADER_TIMEOUT_SECS, DEFAULT_IDLE_TIMEOUT_SECS,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_CONNECTION_BYTES,
};
pub use directory::Directory;
pub use factory::{client_codec_for, codec_for, CodecLimits, StreamTransport};
pub use framing::{Frame, FrameError, Framer, PONG};
pub use limit::{HandshakeBucket, DEFAULT_TLS_HANDSHAKES_PER_SEC};
/// rustls, as the codecs use it (configs are built by the binary, `src/config_tls.rs`).
pub use rustls;
pub use shard::{AcceptFilter, CodecFactory, Sent, StreamListener, Streams, LISTEN_BACKLOG};
pub use socket::bind_tcp_reuseport;
pub use stack::Stack;
pub use tls::TlsCodec;
pub use ws::WsCodec;

/// A failed outgoing connect (rate-limited by the caller's log settings: debug).
fn log_connect_failed(remote: std::net::SocketAddr, e: &dyn std::fmt::Display) {
    tracing::debug!(target: "sip::tcp", %remote, error = %e, "outgoing connection failed");
}
