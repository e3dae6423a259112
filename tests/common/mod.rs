//! A small SIP test client and a handle on a running `sipedge` process.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sipedge_core::auth::{expected_response, ha1, Algorithm, DigestInput};
use sipedge_msg::Message;

/// The domain every test edge serves (`[server] domains`); the digest realm defaults to it.
pub const DOMAIN: &str = "edge.test";

/// How long a test waits for a reply that must come.
pub const WAIT: Duration = Duration::from_secs(2);

/// A running sipedge on its own loopback address.
pub struct Edge {
    pub child: Option<Child>,
    pub sip: SocketAddr,
    pub admin: SocketAddr,
    /// The config file the edge was started with (tests edit it before a SIGHUP).
    pub config: PathBuf,
    pub _dir: TempDir,
}

pub use tempfile::TempDir;

/// A fresh directory removed on drop, named after `tag` (unique even when tests run in
/// parallel in one process).
pub fn temp_dir(tag: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("sipedge-test-{tag}-"))
        .tempdir()
        .unwrap()
}

/// Tests run in parallel and must not share the default journal directory: memory-only
/// unless a test configures `[registrar.persistence]` itself.
pub const MEMORY_ONLY: &str = "\n[registrar]\npersistence = false\n";

pub fn write_config(
    dir: &std::path::Path,
    ip: &str,
    port: u16,
    admin_port: u16,
    io: &str,
) -> PathBuf {
    let path = dir.join("sipedge.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = [\"udp:{ip}:{port}\"]\ndomains = [\"{DOMAIN}\"]\nio = \"{io}\"\nrecv_buffer_bytes = 4194304\nmax_message_bytes = 4096\n\n[admin]\nlisten = \"{ip}:{admin_port}\"\n\n[log]\nlevel = \"warn\"\n{MEMORY_ONLY}"
        ),
    )
    .unwrap();
    path
}

impl Edge {
    /// Starts sipedge with `shards` shards on `ip:port` and waits until it answers.
    pub fn start(tag: &str, ip: &str, port: u16, shards: usize, io: &str) -> Edge {
        Edge::start_with(tag, ip, port, shards, io, "")
    }

    /// Like [`Edge::start`], with `extra` TOML appended to the config (whole tables only).
    pub fn start_with(
        tag: &str,
        ip: &str,
        port: u16,
        shards: usize,
        io: &str,
        extra: &str,
    ) -> Edge {
        Edge::start_env(tag, ip, port, shards, io, extra, &[])
    }

    /// Like [`Edge::start_with`], with environment variables for the process (the
    /// debug-only test hooks, e.g. `SIPEDGE_TEST_PRESSURE_FILE`).
    pub fn start_env(
        tag: &str,
        ip: &str,
        port: u16,
        shards: usize,
        io: &str,
        extra: &str,
        env: &[(&str, &std::path::Path)],
    ) -> Edge {
        Edge::start_listen(tag, ip, port, shards, io, &[], extra, env)
    }

    /// Like [`Edge::start_env`], with more `[server] listen` entries after the UDP one
    /// (e.g. `"tcp:127.0.60.1:5060"`, issue 19).
    #[allow(clippy::too_many_arguments)]
    pub fn start_listen(
        tag: &str,
        ip: &str,
        port: u16,
        shards: usize,
        io: &str,
        more_listen: &[String],
        extra: &str,
        env: &[(&str, &std::path::Path)],
    ) -> Edge {
        let dir = temp_dir(tag);
        let cfg = write_config(dir.path(), ip, port, port + 1, io);
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        if !more_listen.is_empty() {
            let all: Vec<String> = std::iter::once(format!("udp:{ip}:{port}"))
                .chain(more_listen.iter().cloned())
                .map(|l| format!("\"{l}\""))
                .collect();
            text = text.replacen(
                &format!("\"udp:{ip}:{port}\"]"),
                &format!("{}]", all.join(", ")),
                1,
            );
        }
        // An extra with its own `[registrar]` table says `persistence` there itself.
        if extra.contains("[registrar.persistence]") || extra.contains("[registrar]\n") {
            text = text.replace(MEMORY_ONLY, "");
        }
        text.push_str(extra);
        std::fs::write(&cfg, text).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sipedge"))
            .arg("--config")
            .arg(&cfg)
            .arg("--shards")
            .arg(shards.to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let edge = Edge {
            child: Some(child),
            sip: format!("{ip}:{port}").parse().unwrap(),
            admin: format!("{ip}:{}", port + 1).parse().unwrap(),
            config: cfg,
            _dir: dir,
        };
        let client = Client::new(ip);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            client.send(edge.sip, &options(edge.sip, &client, 1));
            if client.recv(Duration::from_millis(200)).is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sipedge did not answer within 15 s"
            );
        }
        edge
    }

    /// Sends SIGTERM and returns the exit status (bounded wait).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("sipedge did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GET /metrics.
    pub fn metrics(&self) -> String {
        let mut s = TcpStream::connect_timeout(&self.admin, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    /// Sum of a metric over every label set, or per shard with `shard`.
    pub fn metric(&self, name: &str, shard: Option<usize>) -> u64 {
        let text = self.metrics();
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter(|l| shard.is_none_or(|s| l.contains(&format!("shard=\"{s}\""))))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Edge {
    /// Polls [`Edge::metric`] (summed over shards) until it equals `want` or `limit` passes;
    /// returns the last value read. The admin endpoint answers before every shard has
    /// started (restored its bindings, published its gauges): await those, never sleep.
    pub fn await_metric(&self, name: &str, want: u64, limit: Duration) -> u64 {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.metric(name, None);
            if v == want || Instant::now() >= deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A UDP client on its own ephemeral port.
pub struct Client {
    pub sock: UdpSocket,
}

impl Client {
    pub fn new(ip: &str) -> Client {
        let sock = UdpSocket::bind(format!("{ip}:0")).unwrap();
        Client { sock }
    }
    /// A client on a chosen port (0: ephemeral).
    pub fn bind(ip: &str, port: u16) -> Client {
        let sock = UdpSocket::bind(format!("{ip}:{port}")).unwrap();
        Client { sock }
    }
    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }
    pub fn send(&self, to: SocketAddr, bytes: &[u8]) {
        self.sock.send_to(bytes, to).unwrap();
    }
    /// One datagram, or `None` after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.sock.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = vec![0u8; 65536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }
    /// The status code of the next reply.
    pub fn status(&self, timeout: Duration) -> Option<u16> {
        let bytes = self.recv(timeout)?;
        Message::parse(&bytes).ok()?.status()
    }
}

/// Waits until some process has a UDP socket bound to the IPv4 `addr` (read from
/// `/proc/net/udp`, so the wait never takes the port itself): a SIPp or phone process we
/// spawned is ready to receive. Panics after `limit`.
pub fn wait_udp_bound(addr: SocketAddr, limit: Duration) {
    let SocketAddr::V4(v4) = addr else {
        panic!("wait_udp_bound: IPv4 only, got {addr}");
    };
    let want = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(v4.ip().octets()),
        v4.port()
    );
    let deadline = Instant::now() + limit;
    loop {
        let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
        if table
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(want.as_str()))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nothing bound {addr} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An OPTIONS to the edge from `client`.
pub fn options(edge: SocketAddr, client: &Client, cseq: u32) -> Vec<u8> {
    let me = client.addr();
    format!(
        "OPTIONS sip:{edge} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{cseq}-{port};rport\r\nMax-Forwards: 70\r\nFrom: <sip:probe@{me}>;tag={port}\r\nTo: <sip:{edge}>\r\nCall-ID: opt-{port}-{cseq}\r\nCSeq: {cseq} OPTIONS\r\nContent-Length: 0\r\n\r\n",
        port = me.port()
    )
    .into_bytes()
}

/// A REGISTER for `sip:{user}@edge.test` from `client`. `contact = None` makes it a query
/// (RFC 3261 §10.2.3); `expires = None` leaves the Expires header out.
pub fn register(
    client: &Client,
    user: &str,
    contact: Option<&str>,
    expires: Option<u32>,
    call_id: &str,
    cseq: u32,
) -> Vec<u8> {
    let me = client.addr();
    let contact = contact.map_or(String::new(), |c| format!("Contact: {c}\r\n"));
    let expires = expires.map_or(String::new(), |e| format!("Expires: {e}\r\n"));
    format!(
        "REGISTER sip:edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-r{cseq}-{call_id};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@edge.test>;tag=f{cseq}\r\nTo: <sip:{user}@edge.test>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n{contact}{expires}User-Agent: sipedge-test\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

/// The value of `name="…"` in a challenge or credentials header.
pub fn param(h: &str, name: &str) -> String {
    let i = h.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    h[i..i + h[i..].find('"').unwrap()].to_string()
}

/// The WWW-Authenticate (or Proxy-Authenticate) challenge of a 401/407 reply.
pub fn challenge(reply: &[u8]) -> String {
    let m = Message::parse(reply).unwrap();
    m.header_named(b"WWW-Authenticate")
        .or_else(|| m.header_named(b"Proxy-Authenticate"))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .expect("a challenge")
}

/// MD5 digest credentials (RFC 7616 §3.4, qop=auth, nonce-count `nc`, realm [`DOMAIN`])
/// answering `challenge` (a WWW-/Proxy-Authenticate value).
pub fn digest_answer(
    challenge: &str,
    user: &str,
    pw: &str,
    method: &str,
    uri: &str,
    nc: u32,
) -> String {
    let nonce = param(challenge, "nonce");
    let ha = ha1(
        Algorithm::Md5,
        user.as_bytes(),
        DOMAIN.as_bytes(),
        pw.as_bytes(),
    );
    let ncs = format!("{nc:08x}");
    let r = expected_response(
        Algorithm::Md5,
        &ha[..32],
        &DigestInput {
            method: method.as_bytes(),
            uri: uri.as_bytes(),
            nonce: nonce.as_bytes(),
            qop_auth: Some((ncs.as_bytes(), b"c0ffee")),
        },
    );
    format!(
        "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{}\", algorithm=MD5, qop=auth, nc={ncs}, cnonce=\"c0ffee\"",
        std::str::from_utf8(&r[..32]).unwrap()
    )
}

/// The Contact URIs and their `expires` listed by a 200 OK to a REGISTER.
pub fn listed_contacts(reply: &[u8]) -> Vec<(String, Option<u32>)> {
    let m = Message::parse(reply).unwrap();
    m.contacts()
        .filter_map(|c| c.ok())
        .filter_map(|c| {
            let uri = String::from_utf8_lossy(c.addr()?.uri().raw()).into_owned();
            Some((uri, c.expires().and_then(|e| e.ok())))
        })
        .collect()
}

// ---- Helpers of the hostile-traffic tests (tests/hostile.rs) ----

impl Client {
    /// Every datagram that arrives within `window`, with its sender.
    pub fn drain_for(&self, window: Duration) -> Vec<(SocketAddr, Vec<u8>)> {
        let deadline = Instant::now() + window;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => out.push((from, buf[..n].to_vec())),
                Err(_) => return out,
            }
        }
    }
}

impl Edge {
    /// The process's resident set size (`VmRSS` of /proc/PID/status), KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.as_ref().map(|c| c.id()).unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// True while the process runs.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

/// A clean source that sends an OPTIONS every `every` and waits up to `patience` for its
/// 200, on its own thread, until [`Prober::stop`]; also samples the edge's RSS.
pub struct Prober {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<ProbeReport>,
}

/// What a [`Prober`] saw.
#[derive(Debug, Default, Clone)]
pub struct ProbeReport {
    pub sent: u32,
    /// OPTIONS without an answer within the patience (their CSeqs): a 200, or a 503 with
    /// Retry-After — the shard shedding under pressure (issue 17), which is an answer too.
    pub missed: Vec<u32>,
    /// OPTIONS answered 503 with Retry-After (shed under pressure).
    pub shed: u32,
    pub slowest: Duration,
    pub max_rss_kib: u64,
}

impl Prober {
    pub fn start(edge: &Edge, ip: &str, every: Duration, patience: Duration) -> Prober {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let sip = edge.sip;
        let pid = edge.child.as_ref().map(|c| c.id()).unwrap();
        let client = Client::new(ip);
        let handle = std::thread::spawn(move || {
            let mut r = ProbeReport::default();
            let mut cseq = 1000u32;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                cseq += 1;
                r.sent += 1;
                let t0 = Instant::now();
                client.send(sip, &options(sip, &client, cseq));
                let mut answered = false;
                while t0.elapsed() < patience {
                    let Some(b) = client.recv(patience - t0.elapsed()) else {
                        break;
                    };
                    let Some(m) = Message::parse(&b).ok() else {
                        continue;
                    };
                    if !m.cseq().is_ok_and(|c| c.seq == cseq) {
                        continue;
                    }
                    let shed = m.status() == Some(503) && m.header_named(b"Retry-After").is_some();
                    r.shed += u32::from(shed);
                    if m.status() == Some(200) || shed {
                        answered = true;
                        r.slowest = r.slowest.max(t0.elapsed());
                        break;
                    }
                }
                if !answered {
                    r.missed.push(cseq);
                }
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let rss = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(0);
                r.max_rss_kib = r.max_rss_kib.max(rss);
                std::thread::sleep(every.saturating_sub(t0.elapsed()));
            }
            r
        });
        Prober { stop, handle }
    }

    pub fn stop(self) -> ProbeReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}
