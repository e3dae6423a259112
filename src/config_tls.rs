//! `[tls]` (issue 19): the certificate and key the edge presents on `tls:` and `wss:`
//! listeners (and to peers on connections it opens), the CAs that verify client
//! certificates, the lowest TLS version, and the handshake rate. Parsed into
//! [`TlsSettings`]; [`TlsContext`] holds the rustls configs the shards share and is rebuilt
//! on SIGHUP (`tls_reload.rs`). The section is optional unless a `tls:`/`wss:` listen
//! exists. rustls only (no OpenSSL), with the *ring* provider.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Deserialize;
use sipedge_rt::stream::rustls::{
    self,
    pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer},
    server::WebPkiClientVerifier,
    ClientConfig, RootCertStore, ServerConfig,
};
use sipedge_rt::stream::tls::crypto_provider;

use crate::config_listen::{Listen, Transport};

#[path = "tls_reload.rs"]
pub mod reload;

/// Default `[tls] min_version`.
pub const DEFAULT_TLS_MIN_VERSION: &str = "1.2";
/// Default `[tls] handshakes_per_sec` (per shard; 0 = unlimited).
pub const DEFAULT_TLS_HANDSHAKES_PER_SEC: u32 = sipedge_rt::stream::DEFAULT_TLS_HANDSHAKES_PER_SEC;

/// `[tls]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawTls {
    certificate: String,
    private_key: String,
    ca: String,
    verify_client: bool,
    min_version: String,
    handshakes_per_sec: u32,
}

impl Default for RawTls {
    fn default() -> Self {
        Self {
            certificate: String::new(),
            private_key: String::new(),
            ca: String::new(),
            verify_client: false,
            min_version: DEFAULT_TLS_MIN_VERSION.into(),
            handshakes_per_sec: DEFAULT_TLS_HANDSHAKES_PER_SEC,
        }
    }
}

/// The lowest TLS version accepted (RFC 8446; RFC 7525 §3.1.1: nothing below 1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    V1_2,
    /// TLS 1.3 only.
    V1_3,
}

/// `[tls]`, validated: paths resolved against the config file's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `certificate`: PEM chain, leaf first.
    pub certificate: PathBuf,
    /// `private_key`: PEM (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// `ca`: PEM CAs that verify client certificates, and the trust anchors of the
    /// connections the edge opens.
    pub ca: Option<PathBuf>,
    /// `verify_client`: a client certificate is required and verified against `ca`.
    pub verify_client: bool,
    /// `min_version`.
    pub min_version: TlsVersion,
    /// `handshakes_per_sec`: per shard, for `sipedge_rt::stream::HandshakeBucket`.
    pub handshakes_per_sec: u32,
}

/// An error naming its key, as the other config errors do: `(key, message)`.
type KeyError = (String, String);

fn key_err(key: &str, message: impl Into<String>) -> KeyError {
    (format!("tls.{key}"), message.into())
}

/// `[tls]`: `None` when it is empty and no listen needs it; checked against the files (they
/// are read and the configs built, so `--check` catches a bad certificate).
pub(crate) fn parse(
    raw: &RawTls,
    listen: &[Listen],
    file: &str,
) -> Result<Option<TlsSettings>, KeyError> {
    let needed = listen
        .iter()
        .any(|l| matches!(l.transport, Transport::Tls | Transport::Wss));
    if !needed && raw.certificate.is_empty() && raw.private_key.is_empty() {
        return Ok(None);
    }
    let base = Path::new(file).parent().unwrap_or(Path::new("."));
    let path = |key: &str, v: &str| {
        if v.is_empty() {
            Err(key_err(
                key,
                "required by a tls: or wss: listen (a PEM file path)",
            ))
        } else {
            Ok(base.join(v))
        }
    };
    let min_version = match raw.min_version.as_str() {
        "1.2" => TlsVersion::V1_2,
        "1.3" => TlsVersion::V1_3,
        other => {
            return Err(key_err(
                "min_version",
                format!("`{other}` is not one of \"1.2\", \"1.3\""),
            ))
        }
    };
    let ca = (!raw.ca.is_empty()).then(|| base.join(&raw.ca));
    if raw.verify_client && ca.is_none() {
        return Err(key_err("ca", "required when verify_client = true"));
    }
    let s = TlsSettings {
        certificate: path("certificate", &raw.certificate)?,
        private_key: path("private_key", &raw.private_key)?,
        ca,
        verify_client: raw.verify_client,
        min_version,
        handshakes_per_sec: raw.handshakes_per_sec,
    };
    TlsContext::configs(&s)?;
    Ok(Some(s))
}

fn load_certs(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, KeyError> {
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| key_err(key, format!("`{shown}`: {e}")))?;
    if certs.is_empty() {
        return Err(key_err(key, format!("`{shown}` holds no PEM certificate")));
    }
    Ok(certs)
}

/// The rustls configs built from one [`TlsSettings`].
type Configs = (Arc<ServerConfig>, Arc<ClientConfig>);

/// The TLS configs in force, shared by every shard (`Arc<TlsContext>`). A connection takes
/// the server config when it is accepted ([`TlsContext::server`]) and keeps it: a reload
/// changes the certificate of later connections only.
#[derive(Debug)]
pub struct TlsContext {
    server: ArcSwap<ServerConfig>,
    client: ArcSwap<ClientConfig>,
}

impl TlsContext {
    /// Reads the files of `s` and builds the configs.
    pub fn build(s: &TlsSettings) -> Result<TlsContext, KeyError> {
        let (server, client) = Self::configs(s)?;
        Ok(TlsContext {
            server: ArcSwap::new(server),
            client: ArcSwap::new(client),
        })
    }

    /// The server config for a connection accepted now (`sipedge_rt::stream::codec_for`).
    pub fn server(&self) -> Arc<ServerConfig> {
        self.server.load_full()
    }

    /// The client config for a connection opened now (`client_codec_for`).
    pub fn client(&self) -> Arc<ClientConfig> {
        self.client.load_full()
    }

    /// Rebuilds from `s` (SIGHUP): on success later connections use the new configs; on
    /// error nothing changes.
    pub fn reload(&self, s: &TlsSettings) -> Result<(), KeyError> {
        let (server, client) = Self::configs(s)?;
        self.server.store(server);
        self.client.store(client);
        Ok(())
    }

    fn configs(s: &TlsSettings) -> Result<Configs, KeyError> {
        let chain = load_certs("certificate", &s.certificate)?;
        let key = PrivateKeyDer::from_pem_file(&s.private_key)
            .map_err(|e| key_err("private_key", format!("`{}`: {e}", s.private_key.display())))?;
        let mut roots = RootCertStore::empty();
        if let Some(ca) = &s.ca {
            for cert in load_certs("ca", ca)? {
                roots
                    .add(cert)
                    .map_err(|e| key_err("ca", format!("`{}`: {e}", ca.display())))?;
            }
        }
        let roots = Arc::new(roots);
        let versions: &[&rustls::SupportedProtocolVersion] = match s.min_version {
            TlsVersion::V1_2 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::V1_3 => &[&rustls::version::TLS13],
        };
        let builder = ServerConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(versions)
            .map_err(|e| key_err("min_version", e.to_string()))?;
        let builder = if s.ca.is_some() {
            let v = WebPkiClientVerifier::builder_with_provider(roots.clone(), crypto_provider());
            // Without verify_client a certificate is verified when one is shown.
            let v = if s.verify_client {
                v
            } else {
                v.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(v.build().map_err(|e| key_err("ca", e.to_string()))?)
        } else {
            builder.with_no_client_auth()
        };
        let server = builder
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| key_err("private_key", format!("with tls.certificate: {e}")))?;
        // Connections the edge opens present the same certificate (mutual TLS with trunks).
        let client = ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(versions)
            .map_err(|e| key_err("min_version", e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(|e| key_err("private_key", format!("with tls.certificate: {e}")))?;
        Ok((Arc::new(server), Arc::new(client)))
    }
}

#[cfg(test)]
#[path = "config_tls_tests.rs"]
mod tests;
