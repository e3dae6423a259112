//! SIPp over TLS (issue 19), on 127.0.60.50–59: a SIPp caller registers over TLS and calls
//! a SIPp callee registered over UDP through a two-shard edge — INVITE, 180, 200, ACK and
//! BYE along the Record-Route, the caller's side all on its TLS connection, the callee's
//! over UDP.
//!
//! Debian's SIPp (sip-tester 3.6.1) is built without OpenSSL (`-t l1` exits with "To use
//! a TLS transport you must compile SIPp with OpenSSL"), so the caller's SIPp speaks
//! `-t t1` to a TLS client in this test ([`TlsRelay`], rustls trusting the test CA) that
//! carries each of its connections over TLS to the edge's `tls:` listen: the edge sees
//! exactly what a TLS SIPp would send. Where `sipp -t l1` works, that is used directly.
#![allow(clippy::unwrap_used)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sipedge_rt::stream::rustls::{self, pki_types::ServerName, RootCertStore};

use crate::common::Edge;
use crate::relay::{check, sipp, sipp_callee, sipp_installed};

const IP: &str = "127.0.60.50";
const UDP: u16 = 5060;
const TLS: u16 = 5062;
const CALLS: usize = 50;

fn tls_client(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(sipedge_rt::stream::tls::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A TLS client for plain-TCP SIPp: each connection accepted on `listen` is carried over
/// a rustls connection to `to` (the edge's `tls:` listen, its certificate checked against
/// the test CA). Stops when dropped.
struct TlsRelay {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl TlsRelay {
    fn start(listen: &str, to: SocketAddr, ca_pem: &str) -> TlsRelay {
        let l = TcpListener::bind(listen).unwrap();
        let addr = l.local_addr().unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = tls_client(ca_pem);
        let halt = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((plain, _)) => {
                        let (cfg, halt) = (Arc::clone(&cfg), Arc::clone(&halt));
                        std::thread::spawn(move || {
                            let _ = carry(plain, to, cfg, &halt);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TlsRelay { stop, addr }
    }
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Writes all of `b` to a nonblocking socket.
fn write_fully(s: &mut TcpStream, mut b: &[u8]) -> std::io::Result<()> {
    while !b.is_empty() {
        match s.write(b) {
            Ok(n) => b = &b[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Moves bytes between `plain` and a TLS connection to `to` until either side closes.
fn carry(
    mut plain: TcpStream,
    to: SocketAddr,
    cfg: Arc<rustls::ClientConfig>,
    halt: &AtomicBool,
) -> std::io::Result<()> {
    let mut tcp = TcpStream::connect(to)?;
    let name = ServerName::try_from(to.ip().to_string()).unwrap();
    let mut tls = rustls::ClientConnection::new(cfg, name).unwrap();
    plain.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    tcp.set_nodelay(true)?;
    let mut buf = vec![0u8; 16 * 1024];
    while !halt.load(Ordering::Relaxed) {
        let mut idle = true;
        match plain.read(&mut buf) {
            Ok(0) => {
                tls.send_close_notify();
                let _ = tls.write_tls(&mut tcp);
                return Ok(());
            }
            Ok(n) => {
                tls.writer().write_all(&buf[..n])?;
                idle = false;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        while tls.wants_write() {
            match tls.write_tls(&mut tcp) {
                Ok(_) => idle = false,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        match tls.read_tls(&mut tcp) {
            Ok(0) => return Ok(()),
            Ok(_) => {
                tls.process_new_packets()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                idle = false;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        loop {
            match tls.reader().read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => write_fully(&mut plain, &buf[..n])?,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if idle {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(())
}

/// Whether this SIPp was built with OpenSSL (`-t l1`).
fn sipp_speaks_tls() -> bool {
    let out = std::process::Command::new("sipp")
        .args([
            "-t",
            "l1",
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            "1s",
            "127.0.0.1:9",
        ])
        .current_dir(std::env::temp_dir())
        .output();
    out.is_ok_and(|o| {
        let text = String::from_utf8_lossy(&o.stderr) + String::from_utf8_lossy(&o.stdout);
        !text.contains("compile SIPp with OpenSSL")
    })
}

#[test]
fn sipp_over_tls_registers_and_calls_a_udp_callee_through_the_edge() {
    if !sipp_installed() {
        return;
    }
    let pki = crate::common::temp_dir("tls-sipp-pki");
    let ca = crate::tls_ws::write_pki_for(pki.path(), IP);
    let edge = Edge::start_listen(
        "tls-sipp",
        IP,
        UDP,
        2,
        "auto",
        &[format!("tls:{IP}:{TLS}")],
        &format!(
            // Overload shedding off: on a loaded test machine a slow turn would answer a
            // call 503 (issue 17), which is not what this test is about.
            "\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n\n[overload]\nenabled = false\n",
            pki.path().join("cert.pem").display(),
            pki.path().join("key.pem").display()
        ),
        &[],
    );
    let tls_at: SocketAddr = format!("{IP}:{TLS}").parse().unwrap();
    // SIPp's transport and target: itself over TLS, or plain TCP to the relay.
    let direct = sipp_speaks_tls();
    let relay = (!direct).then(|| TlsRelay::start("127.0.60.53:0", tls_at, &ca));
    let (transport, target) = match &relay {
        Some(r) => ("t1", r.addr),
        None => ("l1", tls_at),
    };
    if direct {
        // SIPp's TLS reads cacert.pem/cakey.pem from its directory (`-tls_cert`/`-tls_key`).
        eprintln!("sipp speaks TLS: -t l1 straight to the edge");
    }
    let tls_args = [
        "-tls_cert",
        &pki.path().join("cert.pem").display().to_string(),
        "-tls_key",
        &pki.path().join("key.pem").display().to_string(),
    ]
    .map(str::to_owned);
    let extra: Vec<&str> = if direct {
        tls_args.iter().map(String::as_str).collect()
    } else {
        Vec::new()
    };

    // The caller registers over TLS (its own AoR), then calls bob.
    let mut args = vec!["-t", transport, "-m", "1", "-timeout", "10s"];
    args.extend(&extra);
    let reg = sipp(
        "relay_register.xml",
        "tlscaller",
        "127.0.60.51",
        25400,
        &args,
        Some(target),
    )
    .output()
    .unwrap();
    check("sipp register over TLS", &reg);
    assert_eq!(
        edge.metric("sipedge_bindings_created_total", None),
        1,
        "the TLS registration is stored"
    );

    let callee = sipp_callee(
        &edge,
        "tls_uas.xml",
        "bob",
        "127.0.60.52",
        25410,
        CALLS,
        "30s",
    );
    let calls = CALLS.to_string();
    let mut args = vec![
        "-t", transport, "-m", &calls, "-r", "25", "-l", "50", "-timeout", "30s",
    ];
    args.extend(&extra);
    let caller = sipp(
        "relay_uac.xml",
        "bob",
        "127.0.60.51",
        25401,
        &args,
        Some(target),
    )
    .output()
    .unwrap();
    check("sipp caller over TLS", &caller);
    check("sipp callee over UDP", &callee.wait().unwrap());
    assert_eq!(
        edge.metric("sipedge_relay_transactions_total", None),
        2 * CALLS as u64,
        "INVITE + BYE per call"
    );
    assert!(
        edge.metric("sipedge_tcp_messages_in_total", None) > 3 * CALLS as u64,
        "REGISTER, then INVITE, ACK, BYE per call over TLS"
    );
    drop(relay);
}
