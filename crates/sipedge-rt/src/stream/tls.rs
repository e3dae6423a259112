//! [`TlsCodec`]: TLS on a stream connection (RFC 3261 §26.2, `sips:` and `;transport=tls`),
//! sans-IO over rustls: the socket's bytes go into `rustls::Connection::read_tls` from a
//! slice, plaintext comes out of its `reader()` as [`Plain::Stream`], records go out through
//! `write_tls` into the caller's `wire`. No socket, no clock.
//!
//! One type for both roles: a server side for accepted connections
//! ([`TlsCodec::server`]) and a client side for connections the shard opens toward a phone
//! without a live flow or an upstream ([`TlsCodec::client`]; its ClientHello is pending from
//! the start: `read(&[], ..)` or the first `write` puts it in `wire`).
//!
//! Memory: rustls keeps a receive buffer (4 KiB while idle, up to one record plus a read
//! while a record is in flight, up to 64 KiB for a handshake message), a plaintext queue
//! that [`TlsCodec::read`] always empties, and outgoing queues that every call empties into
//! `wire`; outgoing plaintext queued before the handshake ends is capped by `max_buffer`
//! (`set_buffer_limit`). `read` finishes by letting rustls shrink its receive buffer back
//! to one read (see [`TlsCodec::settle`]), so an idle connection keeps no large buffer.

use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::codec::{CodecError, Plain, StreamCodec};

/// A TLS connection, either side. Used only by the shard that owns the connection.
pub struct TlsCodec {
    conn: Connection,
}

impl std::fmt::Debug for TlsCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsCodec")
            .field("server", &matches!(self.conn, Connection::Server(_)))
            .field("handshaking", &self.conn.is_handshaking())
            .finish()
    }
}

/// A reader that has nothing yet (not EOF): lets rustls resize its receive buffer without
/// taking bytes, and without seeing the end of the stream (`Ok(0)` would mean EOF).
struct NothingYet;

impl Read for NothingYet {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl TlsCodec {
    /// The server side of an accepted connection. `max_buffer` bounds the outgoing plaintext
    /// rustls may hold before the handshake completes (the connection's byte cap).
    pub fn server(config: Arc<ServerConfig>, max_buffer: usize) -> Result<Self, CodecError> {
        let mut conn = ServerConnection::new(config).map_err(proto)?;
        conn.set_buffer_limit(Some(max_buffer));
        Ok(Self { conn: conn.into() })
    }

    /// The client side of a connection the shard opens. `name` is the peer's DNS name or IP
    /// address as its certificate names it (RFC 5922 §7); the ClientHello is pending at once.
    pub fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        max_buffer: usize,
    ) -> Result<Self, CodecError> {
        let mut conn = ClientConnection::new(config, name).map_err(proto)?;
        conn.set_buffer_limit(Some(max_buffer));
        Ok(Self { conn: conn.into() })
    }

    /// The protocol version agreed (after the handshake), for logs and tests.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// Moves every pending record (handshake, alert, application data) into `wire`.
    fn flush(&mut self, wire: &mut Vec<u8>) {
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail, and rustls hands over every chunk it holds.
            match self.conn.write_tls(wire) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// Lets rustls shrink its receive buffer to one read when no record is partly held (it
    /// does so at the start of `read_tls`), so an idle connection keeps 4 KiB, not the
    /// largest record it ever received.
    fn settle(&mut self) {
        // WouldBlock: rustls resizes first, takes nothing, and does not see EOF.
        let _ = self.conn.read_tls(&mut NothingYet);
    }

    /// Hands every decrypted byte to `plain`. `Ok(true)` once the peer's close_notify came.
    fn drain_plain(&mut self, plain: &mut dyn FnMut(Plain<'_>)) -> Result<bool, CodecError> {
        loop {
            let mut reader = self.conn.reader();
            match reader.fill_buf() {
                Ok([]) => return Ok(true),
                Ok(chunk) => {
                    let n = chunk.len();
                    plain(Plain::Stream(chunk));
                    reader.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(CodecError::Protocol(e.to_string())),
            }
        }
    }
}

/// The crypto provider of every TLS config sipedge builds: rustls' *ring* provider. *ring*
/// builds with a C compiler alone (aws-lc-rs brings a large C library build); its one
/// lack is the post-quantum key exchange (X25519MLKEM768), hence rustls' deprecation note.
#[allow(deprecated)]
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn proto(e: rustls::Error) -> CodecError {
    CodecError::Protocol(format!("tls: {e}"))
}

impl StreamCodec for TlsCodec {
    /// Feeds the socket's bytes to rustls one read at a time (rustls takes at most 4 KiB
    /// per `read_tls` outside a handshake message), decrypting as records complete. A bad
    /// record or handshake is [`CodecError::Protocol`] with rustls' fatal alert left in
    /// `wire`; the peer's close_notify (RFC 8446 §6.1) is [`CodecError::Closed`] with ours
    /// in `wire`. An empty `input` only flushes what is pending (a client's ClientHello).
    fn read(
        &mut self,
        input: &[u8],
        plain: &mut dyn FnMut(Plain<'_>),
        wire: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let mut rest = input;
        while !rest.is_empty() {
            let taken = match self.conn.read_tls(&mut rest) {
                Ok(n) => n,
                Err(e) => {
                    self.flush(wire);
                    return Err(CodecError::Protocol(format!("tls: {e}")));
                }
            };
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // rustls queued the fatal alert matching `e`: send it before closing.
                    self.flush(wire);
                    return Err(proto(e));
                }
            };
            let closed = self.drain_plain(plain)? || state.peer_has_closed();
            if closed {
                self.conn.send_close_notify();
                self.flush(wire);
                return Err(CodecError::Closed);
            }
            if taken == 0 {
                // rustls took nothing from a non-empty input (it does so for a record
                // length out of range): never loop on it.
                self.flush(wire);
                return Err(CodecError::Protocol("tls: record refused".into()));
            }
        }
        self.flush(wire);
        self.settle();
        Ok(())
    }

    /// Encrypts one SIP message into `wire`; before the handshake ends (client side) it is
    /// held by rustls, up to `max_buffer` bytes, and sent once the handshake completes.
    fn write(&mut self, sip: &[u8], wire: &mut Vec<u8>) -> Result<(), CodecError> {
        let taken = self
            .conn
            .writer()
            .write(sip)
            .map_err(|e| CodecError::Protocol(format!("tls: {e}")))?;
        self.flush(wire);
        if taken < sip.len() {
            return Err(CodecError::TooLarge);
        }
        Ok(())
    }

    fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }
}
