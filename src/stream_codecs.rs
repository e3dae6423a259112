//! The codec factories of the stream listeners (issue 19): TCP passes bytes through, TLS and
//! WSS run rustls with the `[tls]` context in force when the connection starts (a SIGHUP
//! reload changes later connections only), WS and WSS frame RFC 6455 messages (RFC 7118).
//! Each shard gets its own factories, so `[tls] handshakes_per_sec` is a per-shard bucket
//! owned by that shard alone.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use sipedge_core::Transport;
use sipedge_rt::stream::rustls::pki_types::ServerName;
use sipedge_rt::stream::{
    client_codec_for, codec_for, CodecError, CodecFactory, CodecLimits, HandshakeBucket, Plain,
    PlainCodec, StreamCodec, StreamTransport,
};

use crate::config::tls::TlsContext;

/// TLS handshakes refused by `[tls] handshakes_per_sec`, all shards (`/metrics`).
pub static TLS_HANDSHAKES_REFUSED: AtomicU64 = AtomicU64::new(0);

/// What every listener's codecs are built from.
#[derive(Debug, Clone)]
pub struct CodecSetup {
    /// `[tls]`, when configured.
    pub tls: Option<Arc<TlsContext>>,
    /// Message and buffer bounds.
    pub limits: CodecLimits,
    /// `[tls] handshakes_per_sec` per shard (0 = unlimited).
    pub handshakes_per_sec: u32,
}

/// A connection refused before its first byte is read (handshake rate, no codec): its
/// first read closes it.
struct Refused(&'static str);

impl StreamCodec for Refused {
    fn read(
        &mut self,
        _input: &[u8],
        _plain: &mut dyn FnMut(Plain<'_>),
        _wire: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        Err(CodecError::Protocol(self.0.into()))
    }

    fn write(&mut self, _sip: &[u8], _wire: &mut Vec<u8>) -> Result<(), CodecError> {
        Err(CodecError::Protocol(self.0.into()))
    }

    fn is_handshaking(&self) -> bool {
        true
    }
}

fn stream_transport(t: Transport) -> Option<StreamTransport> {
    match t {
        Transport::Udp => None,
        Transport::Tcp => Some(StreamTransport::Tcp),
        Transport::Tls => Some(StreamTransport::Tls),
        Transport::Ws => Some(StreamTransport::Ws),
        Transport::Wss => Some(StreamTransport::Wss),
    }
}

/// The codecs of one shard's listener of transport `t`: accepted connections, and
/// connections opened toward a peer (`None` for WS/WSS: a browser accepts none, RFC 7118 §5).
/// `Err`: the transport cannot be served (UDP; TLS without `[tls]`).
pub fn codecs(
    t: Transport,
    setup: &CodecSetup,
) -> Result<(CodecFactory, Option<CodecFactory>), String> {
    let st = stream_transport(t).ok_or("udp is not a stream transport")?;
    if matches!(st, StreamTransport::Tcp) {
        let f: CodecFactory = Arc::new(|_| Box::new(PlainCodec));
        return Ok((Arc::clone(&f), Some(f)));
    }
    let tls = setup.tls.clone();
    let needs_tls = matches!(st, StreamTransport::Tls | StreamTransport::Wss);
    if needs_tls && tls.is_none() {
        return Err(format!(
            "{t:?} listeners need [tls] certificate and private_key"
        ));
    }
    let limits = setup.limits;
    let bucket = Mutex::new(HandshakeBucket::new(if needs_tls {
        setup.handshakes_per_sec
    } else {
        0
    }));
    let server_tls = tls.clone();
    let accept: CodecFactory = Arc::new(move |_remote: SocketAddr| {
        let admitted = bucket
            .lock()
            .map(|mut b| b.try_start(Instant::now()))
            .unwrap_or(false);
        if !admitted {
            TLS_HANDSHAKES_REFUSED.fetch_add(1, Ordering::Relaxed);
            return Box::new(Refused("tls: over [tls] handshakes_per_sec"));
        }
        match codec_for(st, server_tls.as_ref().map(|c| c.server()), limits) {
            Ok(c) => c,
            Err(_) => Box::new(Refused("tls: no server session")),
        }
    });
    let connect: Option<CodecFactory> = match st {
        StreamTransport::Tls => Some(Arc::new(move |remote: SocketAddr| {
            // RFC 5922 §7 wants the URI's host; the core hands the runtime an address, so
            // the peer's certificate must name its IP (a phone's flow is reused instead).
            let name = ServerName::IpAddress(remote.ip().into());
            let cfg = tls.as_ref().map(|c| (c.client(), name));
            match client_codec_for(st, cfg, limits) {
                Ok(c) => c,
                Err(_) => Box::new(Refused("tls: no client session")),
            }
        })),
        _ => None,
    };
    Ok((accept, connect))
}
