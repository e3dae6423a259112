//! Command line.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use clap::{Parser, ValueEnum};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// REGISTER refreshes over persistent connections, closed loop.
    Refresh,
    /// Registered connections held idle.
    Idle,
    /// Connections opened, handshaken and closed.
    Handshake,
}

/// Transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Transport {
    Tcp,
    Tls,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        })
    }
}

#[derive(Debug, Parser)]
#[command(about = "SIP load over TCP/TLS connections")]
pub(crate) struct Cli {
    #[arg(value_enum)]
    pub(crate) mode: Mode,
    /// Server address.
    #[arg(long)]
    pub(crate) target: SocketAddr,
    #[arg(long, value_enum, default_value = "tcp")]
    pub(crate) transport: Transport,
    /// Connections (idle, refresh) or parallel handshakes (handshake).
    #[arg(long, default_value_t = 1000)]
    pub(crate) conns: usize,
    /// Length of the measured phase.
    #[arg(long, default_value_t = 10)]
    pub(crate) secs: u64,
    /// Longest the setup (connect + first REGISTER of every connection) may take.
    #[arg(long, default_value_t = 120)]
    pub(crate) setup_secs: u64,
    /// Connections opened per second during setup.
    #[arg(long, default_value_t = 5000)]
    pub(crate) open_rate: u64,
    /// First local source address; connection i binds to source (i mod source-count).
    #[arg(long, default_value = "127.0.70.1")]
    pub(crate) source: Ipv4Addr,
    #[arg(long, default_value_t = 16)]
    pub(crate) source_count: u32,
    /// SIP domain of the AoRs (`u<i>@domain`).
    #[arg(long, default_value = "sip.example.com")]
    pub(crate) domain: String,
    /// First AoR number.
    #[arg(long, default_value_t = 0)]
    pub(crate) first_user: usize,
    #[arg(long, default_value_t = 3600)]
    pub(crate) expires: u32,
    /// Server processes whose CPU time (utime + stime from /proc) is reported for the
    /// measured phase, per operation.
    #[arg(long, value_delimiter = ',')]
    pub(crate) server_pids: Vec<u32>,
}

impl Cli {
    pub(crate) fn source_for(&self, i: usize) -> Ipv4Addr {
        let n = u32::from(self.source) + (i as u32 % self.source_count.max(1));
        Ipv4Addr::from(n)
    }

    pub(crate) fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
        if self.transport != Transport::Tls {
            return Ok(None);
        }
        // ring: builds without cmake; the handshake mix matches what the server offers.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::insecure::AcceptAny(provider)))
            .with_no_client_auth();
        Ok(Some(Arc::new(cfg)))
    }
}
