//! Stream transports (issue 19): TCP, TLS and WebSocket connections owned by a shard.
//!
//! A connection's bytes pass through a [`StreamCodec`] between the socket and SIP: the
//! identity for TCP ([`PlainCodec`]), rustls for TLS ([`TlsCodec`]), RFC 6455 framing for
//! WS ([`WsCodec`], RFC 7118), both for WSS ([`Stack`]); [`codec_for`] /
//! [`client_codec_for`] pick one. SIP framing of the plain bytes (Content-Length, CRLF
//! keepalives, RFC 3261 §18.3, RFC 5626 §4.4.1) is the connection's, not the codec's,
//! except where the codec already delimits messages ([`Plain::Message`], one SIP message
//! per WebSocket message, RFC 7118 §5). [`HandshakeBucket`] rations TLS handshakes.

pub mod codec;
pub mod factory;
pub mod limit;
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
pub use factory::{client_codec_for, codec_for, CodecLimits, StreamTransport};
pub use limit::{HandshakeBucket, DEFAULT_TLS_HANDSHAKES_PER_SEC};
/// rustls, as the codecs use it (configs are built by the binary, `src/config_tls.rs`).
pub use rustls;
pub use stack::Stack;
pub use tls::TlsCodec;
pub use ws::WsCodec;
