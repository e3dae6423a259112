//! `[tls]` parsing and the SIGHUP swap, with certificates made by rcgen at test time.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use sipedge_rt::stream::rustls::pki_types::{CertificateDer, ServerName};
use sipedge_rt::stream::rustls::{self, ClientConnection, RootCertStore};
use sipedge_rt::stream::{Plain, StreamCodec, TlsCodec};

use super::reload::apply;
use super::*;
use crate::config::Config;

/// A CA and a `localhost` leaf signed by it, as PEM files in `dir` named `{tag}-*.pem`;
/// returns the leaf's DER.
fn write_pki(dir: &Path, tag: &str) -> CertificateDer<'static> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("k")).expect("ca");
    let key = KeyPair::generate().expect("k");
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .expect("p")
        .signed_by(&key, &ca)
        .expect("sign");
    let w = |name: &str, text: String| {
        std::fs::write(dir.join(format!("{tag}-{name}.pem")), text).expect("write pem")
    };
    w("ca", ca.pem());
    w("cert", leaf.pem());
    w("key", key.serialize_pem());
    leaf.der().clone()
}

fn config(dir: &Path, body: &str) -> Result<Config, crate::config::ConfigError> {
    let file = dir.join("sipedge.toml");
    let text =
        format!("[server]\nlisten = [\"udp:127.0.0.1:5060\", \"tls:127.0.0.1:5061\"]\n{body}");
    Config::parse(&text, &file.display().to_string())
}

const A: &str = "[tls]\ncertificate = \"a-cert.pem\"\nprivate_key = \"a-key.pem\"\n";

#[test]
fn tls_section_parses_with_paths_relative_to_the_config() {
    let dir = tempfile::tempdir().expect("tmp");
    write_pki(dir.path(), "a");
    let c = config(dir.path(), A).unwrap_or_else(|e| panic!("{e}"));
    let s = c.tls.expect("[tls]");
    assert_eq!(s.certificate, dir.path().join("a-cert.pem"));
    assert_eq!(s.min_version, TlsVersion::V1_2);
    assert!(!s.verify_client);
    assert_eq!(s.handshakes_per_sec, DEFAULT_TLS_HANDSHAKES_PER_SEC);
    let v13 = format!("{A}min_version = \"1.3\"\nca = \"a-ca.pem\"\nverify_client = true\n");
    let s = config(dir.path(), &v13)
        .unwrap_or_else(|e| panic!("{e}"))
        .tls
        .expect("tls");
    assert_eq!(s.min_version, TlsVersion::V1_3);
    assert!(s.verify_client);
    // No TLS listen and no [tls]: nothing to load.
    let udp = Config::parse("", "/nonexistent/x.toml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(udp.tls, None);
}

#[test]
fn tls_errors_name_the_key() {
    let dir = tempfile::tempdir().expect("tmp");
    write_pki(dir.path(), "a");
    write_pki(dir.path(), "b");
    for (body, key) in [
        ("", "tls.certificate"),
        ("[tls]\ncertificate = \"a-cert.pem\"\n", "tls.private_key"),
        (
            "[tls]\ncertificate = \"missing.pem\"\nprivate_key = \"a-key.pem\"\n",
            "tls.certificate",
        ),
        (
            "[tls]\ncertificate = \"a-key.pem\"\nprivate_key = \"a-key.pem\"\n",
            "tls.certificate",
        ),
        (
            "[tls]\ncertificate = \"a-cert.pem\"\nprivate_key = \"a-cert.pem\"\n",
            "tls.private_key",
        ),
        // A key that is not the certificate's.
        (
            "[tls]\ncertificate = \"a-cert.pem\"\nprivate_key = \"b-key.pem\"\n",
            "tls.private_key",
        ),
        (&format!("{A}min_version = \"1.1\"\n"), "tls.min_version"),
        (&format!("{A}verify_client = true\n"), "tls.ca"),
        (&format!("{A}ca = \"a-key.pem\"\n"), "tls.ca"),
    ] {
        let e = config(dir.path(), body).expect_err(body);
        assert_eq!(e.key, key, "{body}: {e}");
    }
}

/// Handshakes a rustls client (trusting `ca`) with `codec`; returns the certificate the
/// server showed.
fn served_cert(codec: &mut TlsCodec, ca: &Path) -> CertificateDer<'static> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca") {
        roots.add(c.expect("pem")).expect("add");
    }
    let cfg = rustls::ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .expect("v")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let mut client = ClientConnection::new(Arc::new(cfg), name).expect("client");
    client.writer().write_all(b"OPTIONS").expect("w");
    let mut got = Vec::new();
    for _ in 0..8 {
        let mut c2s = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut c2s).expect("wt");
        }
        let mut s2c = Vec::new();
        codec
            .read(
                &c2s,
                &mut |p| {
                    if let Plain::Stream(b) = p {
                        got.extend_from_slice(b)
                    }
                },
                &mut s2c,
            )
            .expect("server read");
        let mut rd = &s2c[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).expect("rt");
            client.process_new_packets().expect("handshake");
        }
    }
    let _ = client.reader().read(&mut [0; 16]);
    assert_eq!(got, b"OPTIONS");
    client.peer_certificates().expect("certs")[0].clone()
}

#[test]
fn sighup_swaps_the_certificate_for_new_connections_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let cert_a = write_pki(dir.path(), "a");
    let cert_b = write_pki(dir.path(), "b");
    let a = config(dir.path(), A)
        .unwrap_or_else(|e| panic!("{e}"))
        .tls
        .expect("a");
    let ctx = TlsContext::build(&a).expect("ctx");
    // A connection accepted before the reload.
    let mut before = TlsCodec::server(ctx.server(), 65536).expect("codec");
    // The operator replaces the certificate; SIGHUP.
    let b_body = A.replace("a-", "b-");
    let b = config(dir.path(), &b_body)
        .unwrap_or_else(|e| panic!("{e}"))
        .tls
        .expect("b");
    assert_eq!(apply(Some(&ctx), Some(&b)), Ok("TLS certificate reloaded"));
    let mut after = TlsCodec::server(ctx.server(), 65536).expect("codec");
    assert_eq!(
        served_cert(&mut after, &dir.path().join("b-ca.pem")),
        cert_b
    );
    assert_eq!(
        served_cert(&mut before, &dir.path().join("a-ca.pem")),
        cert_a
    );

    // A bad file on reload: refused, the context in force stays.
    std::fs::write(dir.path().join("b-cert.pem"), "not a certificate").expect("w");
    let e = apply(Some(&ctx), Some(&b)).expect_err("refused");
    assert!(e.contains("tls.certificate"), "{e}");
    let mut later = TlsCodec::server(ctx.server(), 65536).expect("codec");
    assert_eq!(
        served_cert(&mut later, &dir.path().join("b-ca.pem")),
        cert_b
    );
    // Removing [tls] while listeners are up is refused too.
    assert!(apply(Some(&ctx), None).is_err());
}
