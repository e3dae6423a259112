//! [`StreamCodec`]: what a connection's transport does to its bytes (TLS records, WebSocket
//! frames), sans-IO: bytes in from the socket, bytes out to the socket, SIP bytes to and from
//! the shard.

use std::fmt;

/// SIP bytes decoded from a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plain<'a> {
    /// Part of a byte stream: the connection frames SIP messages itself (Content-Length,
    /// RFC 3261 §18.3) and answers CRLF keepalives (RFC 5626 §4.4.1). TCP, TLS.
    Stream(&'a [u8]),
    /// Exactly one whole SIP message (RFC 7118 §5: one SIP message per WebSocket message);
    /// Content-Length may be absent. WS, WSS.
    Message(&'a [u8]),
}

/// Why a connection must close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodecError {
    /// The peer broke the protocol (a bad TLS record, a bad WebSocket handshake or frame).
    Protocol(String),
    /// The peer asked to close (TLS close_notify, WebSocket Close); `wire` may still hold a
    /// last reply to flush before closing.
    Closed,
    /// More bytes held than the connection may hold (`[tcp] max_connection_bytes`).
    TooLarge,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Protocol(why) => write!(f, "protocol error: {why}"),
            CodecError::Closed => f.write_str("closed by the peer"),
            CodecError::TooLarge => f.write_str("too many bytes held"),
        }
    }
}

impl std::error::Error for CodecError {}

/// A connection's transport layer between the socket and SIP. One per connection, used only
/// by the shard that owns the connection.
pub trait StreamCodec {
    /// `input`: bytes read from the socket. Calls `plain` with the SIP bytes they complete
    /// (zero or more times) and appends to `wire` what must be written back to the socket
    /// (handshake records, a WebSocket pong or close). An error closes the connection after
    /// `wire` is flushed.
    fn read(
        &mut self,
        input: &[u8],
        plain: &mut dyn FnMut(Plain<'_>),
        wire: &mut Vec<u8>,
    ) -> Result<(), CodecError>;

    /// Encodes one SIP message (or a CRLF pong) to send, appending it to `wire`.
    fn write(&mut self, sip: &[u8], wire: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Still in the handshake (TLS, WebSocket upgrade): no SIP has passed yet. The
    /// connection's handshake timeout applies while this holds.
    fn is_handshaking(&self) -> bool;
}

/// TCP: the bytes are the SIP stream.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainCodec;

impl StreamCodec for PlainCodec {
    fn read(
        &mut self,
        input: &[u8],
        plain: &mut dyn FnMut(Plain<'_>),
        _wire: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        if !input.is_empty() {
            plain(Plain::Stream(input));
        }
        Ok(())
    }

    fn write(&mut self, sip: &[u8], wire: &mut Vec<u8>) -> Result<(), CodecError> {
        wire.extend_from_slice(sip);
        Ok(())
    }

    fn is_handshaking(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_passes_bytes_through_both_ways() {
        let mut c = PlainCodec;
        let mut got = Vec::new();
        let mut wire = Vec::new();
        c.read(b"OPTIONS", &mut |p| got.push(format!("{p:?}")), &mut wire)
            .unwrap();
        assert_eq!(got, vec![format!("{:?}", Plain::Stream(b"OPTIONS"))]);
        assert!(wire.is_empty());
        c.write(b"SIP/2.0 200 OK\r\n", &mut wire).unwrap();
        assert_eq!(wire, b"SIP/2.0 200 OK\r\n");
        assert!(!c.is_handshaking());
    }
}
