//! Which codec a connection gets: [`codec_for`] for an accepted connection,
//! [`client_codec_for`] for one the shard opens.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};

use super::codec::{CodecError, PlainCodec, StreamCodec};
use super::stack::Stack;
use super::tls::TlsCodec;
use super::ws::WsCodec;

/// The stream transports (RFC 3261 §18 TCP and TLS, RFC 7118 WS and WSS). sipedge-rt knows
/// no SIP: the shard maps `sipedge_core::Transport` onto this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamTransport {
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// WebSocket over TCP.
    Ws,
    /// WebSocket over TLS.
    Wss,
}

/// The byte bounds a codec applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecLimits {
    /// Largest SIP message (`[server] max_message_bytes`): a WebSocket message over it is
    /// refused (Close 1009, [`CodecError::TooLarge`]).
    pub max_message_bytes: usize,
    /// Most outgoing plaintext rustls may hold before its handshake ends (the connection's
    /// byte cap); a `write` beyond it is [`CodecError::TooLarge`].
    pub max_buffer_bytes: usize,
}

fn need_tls<T>(tls: Option<T>) -> Result<T, CodecError> {
    tls.ok_or_else(|| CodecError::Protocol("tls: no [tls] context for a TLS listener".into()))
}

/// The codec of an accepted connection on a `transport` listener. `tls` is the server
/// config in force now (`TlsContext::server()`; a reload affects later connections only);
/// it is required for TLS and WSS.
pub fn codec_for(
    transport: StreamTransport,
    tls: Option<Arc<ServerConfig>>,
    limits: CodecLimits,
) -> Result<Box<dyn StreamCodec>, CodecError> {
    Ok(match transport {
        StreamTransport::Tcp => Box::new(PlainCodec),
        StreamTransport::Tls => {
            Box::new(TlsCodec::server(need_tls(tls)?, limits.max_buffer_bytes)?)
        }
        StreamTransport::Ws => Box::new(WsCodec::server(limits.max_message_bytes)),
        StreamTransport::Wss => Box::new(Stack::new(
            TlsCodec::server(need_tls(tls)?, limits.max_buffer_bytes)?,
            WsCodec::server(limits.max_message_bytes),
        )),
    })
}

/// The codec of a connection the shard opens (toward a phone without a live flow, an
/// upstream, or for RFC 3261 §18.1.1 size switching). TLS needs the client config and the
/// name the peer's certificate must show (RFC 5922 §7: the host of the URI). WebSocket is
/// refused: RFC 7118 §5 clients (browsers) accept no connections, a request to them can
/// only go down their own flow.
pub fn client_codec_for(
    transport: StreamTransport,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    limits: CodecLimits,
) -> Result<Box<dyn StreamCodec>, CodecError> {
    match transport {
        StreamTransport::Tcp => Ok(Box::new(PlainCodec)),
        StreamTransport::Tls => {
            let (config, name) = need_tls(tls)?;
            Ok(Box::new(TlsCodec::client(
                config,
                name,
                limits.max_buffer_bytes,
            )?))
        }
        StreamTransport::Ws | StreamTransport::Wss => Err(CodecError::Protocol(
            "ws: WebSocket connections are never opened toward a client (RFC 7118 §5)".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::tests_tls::{client_config, pki, server_config};

    const LIMITS: CodecLimits = CodecLimits {
        max_message_bytes: 4096,
        max_buffer_bytes: 65536,
    };

    #[test]
    fn each_transport_gets_its_codec() {
        let p = pki();
        let srv = server_config(&p, false, rustls::ALL_VERSIONS);
        // TCP needs no handshake; TLS, WS and WSS start in one.
        let tcp = codec_for(StreamTransport::Tcp, None, LIMITS).expect("tcp");
        assert!(!tcp.is_handshaking());
        for t in [
            StreamTransport::Tls,
            StreamTransport::Ws,
            StreamTransport::Wss,
        ] {
            let c = codec_for(t, Some(srv.clone()), LIMITS).expect("codec");
            assert!(c.is_handshaking(), "{t:?}");
        }
        // TLS and WSS without a [tls] context: refused, not a plaintext listener.
        for t in [StreamTransport::Tls, StreamTransport::Wss] {
            assert!(codec_for(t, None, LIMITS).is_err(), "{t:?}");
        }
        // Outgoing: TCP and TLS; never WebSocket.
        let name = ServerName::try_from("localhost").expect("name");
        let cli = client_config(&p, false, rustls::ALL_VERSIONS);
        let mut c = client_codec_for(StreamTransport::Tls, Some((cli, name)), LIMITS).expect("tls");
        let mut hello = Vec::new();
        c.read(&[], &mut |_| {}, &mut hello).expect("flush");
        assert_eq!(
            hello.first(),
            Some(&0x16),
            "the ClientHello goes out on an empty read"
        );
        assert!(client_codec_for(StreamTransport::Ws, None, LIMITS).is_err());
    }
}
