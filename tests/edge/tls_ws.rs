//! Issue 19 over the binary: a phone registers over TLS (a rustls client) and another over
//! WebSocket (a hand-built RFC 6455 client: the Upgrade with `sip`, masked text frames), then
//! a MESSAGE from a UDP phone reaches each down its own connection (RFC 5626 flow), and a
//! TLS client without a certificate the edge trusts gets nothing. Certificates are made
//! by rcgen at test time. Loopback 127.0.61.0/24.
//!
//! Ignored until the stream runtime (issue 19 part A) binds `tls:` and `ws:` listens and
//! serves them with `sipedge_rt::stream::codec_for`; the lead enables it after the merge.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use sipedge_msg::Message;
use sipedge_rt::stream::rustls::{self, pki_types::ServerName, RootCertStore};

use crate::common::{options, temp_dir, Client, Edge, DOMAIN, WAIT};

const IP: &str = "127.0.61.1";
const UDP: u16 = 26060;
const TLS: u16 = 26062;
const WS: u16 = 26063;

/// Writes a CA and a leaf for `IP` into `dir`; returns the CA's PEM.
fn write_pki(dir: &std::path::Path) -> String {
    write_pki_for(dir, IP)
}

/// Writes a CA and a leaf for `ip` (and `localhost`) into `dir` (`cert.pem`, `key.pem`);
/// returns the CA's PEM.
pub(crate) fn write_pki_for(dir: &std::path::Path, ip: &str) -> String {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: OpenSSL (Python's ssl) takes a leaf whose issuer is its own subject
    // for a self-signed certificate.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sipedge test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec![ip.to_string(), "localhost".to_string()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, ip);
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    ca.pem()
}

/// The edge with UDP, TLS and WS listens (admin on UDP + 1); the PKI's directory lives as
/// long as the edge.
fn start() -> (Edge, String, tempfile::TempDir) {
    let pki = temp_dir("tls_ws-pki");
    let ca = write_pki(pki.path());
    let tls = format!(
        "\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
        pki.path().join("cert.pem").display(),
        pki.path().join("key.pem").display()
    );
    let edge = Edge::start_listen(
        "tls_ws",
        IP,
        UDP,
        2,
        "auto",
        &[format!("tls:{IP}:{TLS}"), format!("ws:{IP}:{WS}")],
        &tls,
        &[],
    );
    (edge, ca, pki)
}

fn register(transport: &str, me: SocketAddr, user: &str) -> Vec<u8> {
    let t = transport.to_ascii_lowercase();
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/{transport} {me};branch=z9hG4bK-{user}-1;rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=f1\r\nTo: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: reg-{user}\r\nCSeq: 1 REGISTER\r\nContact: <sip:{user}@{me};transport={t}>\r\n\
         Expires: 600\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn message_to(user: &str, from: &Client) -> Vec<u8> {
    let me = from.addr();
    format!(
        "MESSAGE sip:{user}@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-m-{user};rport\r\n\
         Max-Forwards: 70\r\nFrom: <sip:caller@{DOMAIN}>;tag=c1\r\nTo: <sip:{user}@{DOMAIN}>\r\n\
         Call-ID: msg-{user}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
    )
    .into_bytes()
}

/// Reads one SIP message from a stream (headers, then Content-Length bytes).
fn read_sip(s: &mut impl Read) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).unwrap();
        assert!(n > 0, "connection closed after {buf:?}");
        buf.push(byte[0]);
    }
    let m = Message::parse(&buf).unwrap();
    let len: usize = m
        .header(sipedge_msg::HeaderName::ContentLength)
        .map_or(0, |v| {
            std::str::from_utf8(v).unwrap().trim().parse().unwrap()
        });
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    buf.extend(body);
    buf
}

fn tls_client(ca_pem: &str) -> rustls::ClientConfig {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(sipedge_rt::stream::tls::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// One masked client text frame (RFC 6455 §5.2).
fn ws_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut f = vec![0x81];
    if payload.len() < 126 {
        f.push(0x80 | payload.len() as u8);
    } else {
        f.push(0x80 | 126);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    f
}

/// One unmasked server frame's payload.
fn ws_read(s: &mut TcpStream) -> Vec<u8> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l).unwrap();
            usize::from(u16::from_be_bytes(l))
        }
        127 => panic!("no 64-bit frames expected"),
        n => usize::from(n),
    };
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).unwrap();
    p
}

#[test]
fn register_over_tls_and_websocket_then_receive_a_message() {
    let (mut edge, ca, _pki) = start();

    // TLS: REGISTER → 200 OK listing our contact.
    let tcp = TcpStream::connect(format!("{IP}:{TLS}")).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let me_tls = tcp.local_addr().unwrap();
    let name = ServerName::try_from(IP).unwrap().to_owned();
    let conn = rustls::ClientConnection::new(Arc::new(tls_client(&ca)), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(&register("TLS", me_tls, "tlsphone")).unwrap();
    let reply = read_sip(&mut tls);
    let m = Message::parse(&reply).unwrap();
    assert_eq!(m.status(), Some(200), "{}", String::from_utf8_lossy(&reply));
    assert!(String::from_utf8_lossy(&reply).contains("transport=tls"));

    // WebSocket: Upgrade with `sip`, REGISTER in a text frame → 200 OK in a text frame.
    let mut ws = TcpStream::connect(format!("{IP}:{WS}")).unwrap();
    ws.set_read_timeout(Some(WAIT)).unwrap();
    let me_ws = ws.local_addr().unwrap();
    ws.write_all(
        format!(
            "GET / HTTP/1.1\r\nHost: {IP}:{WS}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        ws.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Protocol: sip"), "{head}");
    ws.write_all(&ws_frame(&register("WS", me_ws, "wsphone")))
        .unwrap();
    let reply = ws_read(&mut ws);
    assert_eq!(Message::parse(&reply).unwrap().status(), Some(200));

    // A UDP phone sends each a MESSAGE: it arrives down their own connection.
    let caller = Client::new(IP);
    caller.send(edge.sip, &message_to("tlsphone", &caller));
    let got = read_sip(&mut tls);
    assert!(
        got.starts_with(b"MESSAGE sip:tlsphone@"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    caller.send(edge.sip, &message_to("wsphone", &caller));
    let got = ws_read(&mut ws);
    assert!(
        got.starts_with(b"MESSAGE sip:wsphone@"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // A TLS client that does not trust the edge's CA cannot talk to it, and the edge
    // lives on.
    let other_ca = write_pki(temp_dir("tls_ws_other").path());
    let tcp = TcpStream::connect(format!("{IP}:{TLS}")).unwrap();
    tcp.set_read_timeout(Some(WAIT)).unwrap();
    let name = ServerName::try_from(IP).unwrap().to_owned();
    let conn = rustls::ClientConnection::new(Arc::new(tls_client(&other_ca)), name).unwrap();
    let mut bad = rustls::StreamOwned::new(conn, tcp);
    assert!(
        bad.write_all(b"OPTIONS").and_then(|_| bad.flush()).is_err() || {
            let mut b = [0u8; 1];
            bad.read(&mut b).is_err()
        }
    );
    let probe = Client::new(IP);
    probe.send(edge.sip, &options(edge.sip, &probe, 2));
    assert!(probe.recv(WAIT).is_some(), "the edge still answers");
    assert!(edge.terminate().success());
}
