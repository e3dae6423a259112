//! TLS codec against a real rustls peer, in memory: certificates from rcgen at test time.

use std::io::{Read, Write};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

use super::codec::{CodecError, Plain, StreamCodec};
use super::tls::TlsCodec;

pub(super) const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\nTo: <sip:alice@example.com>\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@192.0.2.10:5061;transport=tls>\r\n\
Content-Length: 0\r\n\r\n";
pub(super) const OK: &[u8] = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds\r\n\
To: <sip:alice@example.com>;tag=37GkEhwl6\r\nFrom: <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@192.0.2.10:5061;transport=tls>;expires=3600\r\n\
Content-Length: 0\r\n\r\n";

/// A test PKI: a CA, a server certificate for `localhost` and a client certificate, all
/// made now (no key is committed).
pub(super) struct Pki {
    pub(super) ca: CertificateDer<'static>,
    pub(super) server_chain: Vec<CertificateDer<'static>>,
    pub(super) server_key: Vec<u8>,
    pub(super) client_chain: Vec<CertificateDer<'static>>,
    pub(super) client_key: Vec<u8>,
}

pub(super) fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("ca");
    let leaf = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec![name.to_string()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("sign");
        (vec![cert.der().clone()], key.serialize_der())
    };
    let (server_chain, server_key) = leaf("localhost");
    let (client_chain, client_key) = leaf("phone.example.com");
    Pki {
        ca: ca.der().clone(),
        server_chain,
        server_key,
        client_chain,
        client_key,
    }
}

use super::tls::crypto_provider as provider;

fn key(der: &[u8]) -> PrivateKeyDer<'static> {
    PrivatePkcs8KeyDer::from(der.to_vec()).into()
}

pub(super) fn server_config(
    p: &Pki,
    verify_client: bool,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let b = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("versions");
    let b = if verify_client {
        let mut roots = RootCertStore::empty();
        roots.add(p.ca.clone()).expect("ca");
        let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .expect("verifier");
        b.with_client_cert_verifier(v)
    } else {
        b.with_no_client_auth()
    };
    Arc::new(
        b.with_single_cert(p.server_chain.clone(), key(&p.server_key))
            .expect("cert"),
    )
}

pub(super) fn client_config(
    p: &Pki,
    with_cert: bool,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(p.ca.clone()).expect("ca");
    let b = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots);
    Arc::new(if with_cert {
        b.with_client_auth_cert(p.client_chain.clone(), key(&p.client_key))
            .expect("client cert")
    } else {
        b.with_no_client_auth()
    })
}

const ALL: &[&rustls::SupportedProtocolVersion] = rustls::ALL_VERSIONS;

/// Moves bytes both ways until neither side has anything to say, feeding each side
/// `chunk` bytes at a time. The server's plaintext is appended to `got`; the client's to
/// `client_got`.
pub(super) fn pump(
    client: &mut ClientConnection,
    server: &mut dyn StreamCodec,
    chunk: usize,
    got: &mut Vec<u8>,
    client_got: &mut Vec<u8>,
) -> Result<(), CodecError> {
    for _ in 0..64 {
        let mut c2s = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut c2s).expect("client write_tls");
        }
        let mut s2c = Vec::new();
        let mut result = Ok(());
        for piece in c2s.chunks(chunk) {
            result = server.read(
                piece,
                &mut |p| match p {
                    Plain::Stream(b) | Plain::Message(b) => got.extend_from_slice(b),
                },
                &mut s2c,
            );
            if result.is_err() {
                break;
            }
        }
        for piece in s2c.chunks(chunk) {
            let mut rd = piece;
            while !rd.is_empty() {
                client.read_tls(&mut rd).expect("client read_tls");
                if client.process_new_packets().is_err() {
                    break;
                }
            }
        }
        let mut buf = [0u8; 4096];
        while let Ok(n) = client.reader().read(&mut buf) {
            if n == 0 {
                break;
            }
            client_got.extend_from_slice(&buf[..n]);
        }
        result?;
        if c2s.is_empty() && s2c.is_empty() {
            return Ok(());
        }
    }
    panic!("no quiescence after 64 rounds");
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("name")
}

/// REGISTER up, 200 OK down, over TLS `version`, every byte fed `chunk` at a time.
fn exchange(p: &Pki, chunk: usize, version: &'static rustls::SupportedProtocolVersion) {
    let mut server = TlsCodec::server(server_config(p, false, ALL), 64 * 1024).expect("server");
    let mut client =
        ClientConnection::new(client_config(p, false, &[version]), localhost()).expect("c");
    let (mut got, mut client_got) = (Vec::new(), Vec::new());
    assert!(server.is_handshaking());
    pump(&mut client, &mut server, chunk, &mut got, &mut client_got).expect("handshake");
    assert!(!server.is_handshaking(), "chunk {chunk}: handshake done");
    assert_eq!(server.protocol_version(), Some(version.version));
    client.writer().write_all(REGISTER).expect("write");
    pump(&mut client, &mut server, chunk, &mut got, &mut client_got).expect("register");
    assert_eq!(got, REGISTER, "chunk {chunk}: the server read the REGISTER");
    let mut wire = Vec::new();
    server.write(OK, &mut wire).expect("write 200");
    let mut rd = &wire[..];
    while !rd.is_empty() {
        let mut one = &rd[..chunk.min(rd.len())];
        rd = &rd[one.len()..];
        while !one.is_empty() {
            client.read_tls(&mut one).expect("read_tls");
            client.process_new_packets().expect("client process");
        }
    }
    let mut buf = Vec::new();
    let _ = client.reader().read_to_end(&mut buf);
    assert_eq!(buf, OK, "chunk {chunk}: the client read the 200 OK");
}

#[test]
fn register_both_ways_at_every_split() {
    let p = pki();
    // Chunk 1 puts a read boundary between every two bytes of the handshake and records.
    for chunk in [1, 2, 5, 13, 100, 1500, usize::MAX] {
        exchange(&p, chunk, &rustls::version::TLS13);
    }
    for chunk in [1, 7, usize::MAX] {
        exchange(&p, chunk, &rustls::version::TLS12);
    }
}

#[test]
fn verify_client_refuses_a_client_without_certificate() {
    let p = pki();
    let cfg = server_config(&p, true, ALL);
    let mut server = TlsCodec::server(cfg.clone(), 64 * 1024).expect("server");
    let mut client = ClientConnection::new(client_config(&p, false, ALL), localhost()).expect("c");
    let (mut got, mut cg) = (Vec::new(), Vec::new());
    // TLS 1.3: the client finishes first and may send the REGISTER at once.
    let _ = client.writer().write_all(REGISTER);
    let r = pump(&mut client, &mut server, usize::MAX, &mut got, &mut cg);
    assert!(
        matches!(&r, Err(CodecError::Protocol(why)) if why.contains("tls")),
        "{r:?}"
    );
    assert!(
        got.is_empty(),
        "no SIP passed from an unauthenticated client"
    );
    // With a certificate from the CA it is served.
    let mut server = TlsCodec::server(cfg, 64 * 1024).expect("server");
    let mut client = ClientConnection::new(client_config(&p, true, ALL), localhost()).expect("c");
    client.writer().write_all(REGISTER).expect("w");
    pump(&mut client, &mut server, usize::MAX, &mut got, &mut cg).expect("served");
    assert_eq!(got, REGISTER);
}

/// A TLS 1.1 ClientHello (RFC 4346 §7.4.1.2), no extensions: one suite, null compression.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x02, 0x00, 0x2f]); // TLS_RSA_WITH_AES_128_CBC_SHA
    body.extend_from_slice(&[0x01, 0x00]); // compression: null
    let mut hs = vec![0x01, 0, 0, u8::try_from(body.len()).expect("len")];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x02, 0, u8::try_from(hs.len()).expect("len")];
    rec.extend_from_slice(&hs);
    rec
}

#[test]
fn tls11_and_garbage_are_refused_with_an_alert() {
    let p = pki();
    let cfg = server_config(&p, false, ALL);
    for (what, bytes) in [
        ("tls 1.1", tls11_client_hello()),
        (
            "plain sip",
            b"REGISTER sip:example.com SIP/2.0\r\n\r\n".to_vec(),
        ),
        ("http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
    ] {
        let mut server = TlsCodec::server(cfg.clone(), 64 * 1024).expect("server");
        let mut wire = Vec::new();
        let mut got = 0;
        let r = server.read(&bytes, &mut |_| got += 1, &mut wire);
        assert!(matches!(r, Err(CodecError::Protocol(_))), "{what}: {r:?}");
        assert_eq!(got, 0, "{what}");
        // A TLS-framed peer gets a fatal alert record (content type 21).
        if what == "tls 1.1" {
            assert_eq!(wire.first(), Some(&0x15), "{what}: alert sent: {wire:?}");
        }
    }
}

#[test]
fn min_version_13_refuses_a_tls12_only_client() {
    let p = pki();
    let mut server = TlsCodec::server(
        server_config(&p, false, &[&rustls::version::TLS13]),
        64 * 1024,
    )
    .expect("server");
    let mut client = ClientConnection::new(
        client_config(&p, false, &[&rustls::version::TLS12]),
        localhost(),
    )
    .expect("c");
    let (mut got, mut cg) = (Vec::new(), Vec::new());
    let r = pump(&mut client, &mut server, usize::MAX, &mut got, &mut cg);
    assert!(matches!(r, Err(CodecError::Protocol(_))), "{r:?}");
}

#[test]
fn close_notify_closes_and_is_answered() {
    let p = pki();
    let mut server = TlsCodec::server(server_config(&p, false, ALL), 64 * 1024).expect("s");
    let mut client = ClientConnection::new(client_config(&p, false, ALL), localhost()).expect("c");
    let (mut got, mut cg) = (Vec::new(), Vec::new());
    pump(&mut client, &mut server, usize::MAX, &mut got, &mut cg).expect("handshake");
    // A last REGISTER and the close in one read: the REGISTER still counts.
    client.writer().write_all(REGISTER).expect("w");
    client.send_close_notify();
    let mut c2s = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut c2s).expect("wt");
    }
    let mut wire = Vec::new();
    let r = server.read(
        &c2s,
        &mut |p| {
            if let Plain::Stream(b) = p {
                got.extend_from_slice(b)
            }
        },
        &mut wire,
    );
    assert_eq!(r, Err(CodecError::Closed));
    assert_eq!(got, REGISTER);
    let mut rd = &wire[..];
    client.read_tls(&mut rd).expect("rt");
    let st = client.process_new_packets().expect("pnp");
    assert!(st.peer_has_closed(), "our close_notify reached the client");
}

#[test]
fn outgoing_client_codec_talks_to_a_rustls_server() {
    let p = pki();
    let mut codec = TlsCodec::client(client_config(&p, true, ALL), localhost(), 64 * 1024)
        .expect("client codec");
    let mut server = ServerConnection::new(server_config(&p, true, ALL)).expect("server");
    // The REGISTER is written before the handshake: held, then sent.
    let mut wire = Vec::new();
    codec.write(REGISTER, &mut wire).expect("write");
    let mut got = Vec::new();
    for _ in 0..16 {
        let mut rd = &wire[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).expect("srv read");
            server.process_new_packets().expect("srv process");
        }
        wire.clear();
        let mut buf = [0u8; 4096];
        while let Ok(n) = server.reader().read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let mut back = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut back).expect("srv write");
        }
        if back.is_empty() {
            break;
        }
        codec
            .read(&back, &mut |_| {}, &mut wire)
            .expect("codec read");
    }
    assert!(!codec.is_handshaking());
    assert_eq!(
        got, REGISTER,
        "the held REGISTER went out after the handshake"
    );
}

#[test]
fn a_write_beyond_the_buffer_cap_before_the_handshake_is_too_large() {
    let p = pki();
    let mut codec =
        TlsCodec::client(client_config(&p, false, ALL), localhost(), 1000).expect("client codec");
    let mut wire = Vec::new();
    assert_eq!(
        codec.write(&[b'x'; 4000], &mut wire),
        Err(CodecError::TooLarge)
    );
}
