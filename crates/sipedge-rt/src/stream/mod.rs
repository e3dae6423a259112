//! Stream transports (issue 19): TCP, TLS and WebSocket connections owned by a shard.
//!
//! A connection's bytes pass through a [`StreamCodec`] between the socket and SIP: the
//! identity for TCP ([`PlainCodec`]), rustls for TLS, RFC 6455 framing for WS (RFC 7118),
//! both for WSS. SIP framing of the plain bytes (Content-Length, CRLF keepalives, RFC 3261
//! §18.3, RFC 5626 §4.4.1) is the connection's, not the codec's, except where the codec
//! already delimits messages ([`Plain::Message`], one SIP message per WebSocket message,
//! RFC 7118 §5).

pub mod codec;

pub use codec::{CodecError, Plain, PlainCodec, StreamCodec};
