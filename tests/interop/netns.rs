//! The network-namespace NAT rig (issue 15) for `tests/interop/netns_nat.rs`: the topology is built
//! and torn down by `loadtest/nat-rig.sh up|down TAG` (one definition for the test and the
//! load test); this module runs processes inside it and removes it on drop, also when a
//! test fails.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The phone behind the NAT (private side).
pub const PHONE: &str = "10.15.0.2";
/// The NAT box's public address: the phones' flows as the edge sees them.
pub const NAT_WAN: &str = "198.18.15.1";
/// The edge's public SIP address.
pub const EDGE: &str = "198.18.15.2";
pub const EDGE_PORT: u16 = 5060;
/// The public UA.
pub const PUBLIC: &str = "198.18.15.3";
/// The edge's admin listener, on the edge namespace's own loopback.
pub const ADMIN: &str = "127.0.137.1:5061";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo().join("loadtest/nat-rig.sh")
}

/// Why the rig cannot run here (not root, a tool missing), or `None`.
pub fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(str::to_owned));
    if uid.as_deref() != Some("0") {
        return Some("not root (network namespaces need CAP_NET_ADMIN)".into());
    }
    for (tool, arg, pkg) in [
        ("ip", "-V", "iproute2"),
        ("iptables", "-V", "iptables"),
        ("sipp", "-v", "sip-tester"),
    ] {
        if Command::new(tool).arg(arg).output().is_err() {
            return Some(format!("`{tool}` is not installed (apt-get install {pkg})"));
        }
    }
    None
}

/// Where a rig lives: its namespace-name prefix and its two /24s (the first three
/// octets). Hosts keep their last octet (NAT .1, phone .2 on the private side; NAT .1,
/// edge .2, public UA .3 on the public side).
#[derive(Clone, Copy, Debug)]
pub struct Net {
    /// Prefix of every namespace and interface name (`nat-rig.sh`'s `RIG_NS`).
    pub prefix: &'static str,
    /// The private /24, e.g. "10.15.0" (`RIG_LAN`).
    pub lan: &'static str,
    /// The public /24, e.g. "198.18.15" (`RIG_WAN`).
    pub wan: &'static str,
}

/// The rig of `netns_nat.rs`'s first test: `sn*`, 10.15.0.0/24, 198.18.15.0/24 (the
/// constants above).
pub const DEFAULT_NET: Net = Net {
    prefix: "sn",
    lan: "10.15.0",
    wan: "198.18.15",
};

/// The namespaces of one rig, removed on drop.
pub struct Rig {
    tag: &'static str,
    net: Net,
}

/// One of the rig's hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// Behind the NAT, 10.15.0.2.
    Phone,
    /// The edge, 198.18.15.2.
    Edge,
    /// The public UA, 198.18.15.3.
    Public,
}

impl Host {
    pub fn ip(self) -> &'static str {
        match self {
            Host::Phone => PHONE,
            Host::Edge => EDGE,
            Host::Public => PUBLIC,
        }
    }
    fn letter(self) -> char {
        match self {
            Host::Phone => 'p',
            Host::Edge => 'e',
            Host::Public => 'u',
        }
    }
}

impl Rig {
    /// Builds the rig `sn<tag>{w,n,p,e,u}` (any leftover of the same tag is removed first).
    pub fn up(tag: &'static str) -> Rig {
        Rig::up_in(DEFAULT_NET, tag)
    }

    /// Builds the rig `<prefix><tag>{w,n,p,e,u}` on `net`'s subnets.
    pub fn up_in(net: Net, tag: &'static str) -> Rig {
        let rig = Rig { tag, net };
        let out = rig.script().args(["up", tag]).output().unwrap();
        assert!(
            out.status.success(),
            "nat-rig.sh up {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        rig
    }

    pub fn ns(&self, host: Host) -> String {
        format!("{}{}{}", self.net.prefix, self.tag, host.letter())
    }

    /// `nat-rig.sh` for this rig's names and subnets.
    fn script(&self) -> Command {
        let mut c = Command::new(script());
        c.env("RIG_NS", self.net.prefix)
            .env("RIG_LAN", self.net.lan)
            .env("RIG_WAN", self.net.wan);
        c
    }

    /// `host`'s address in this rig.
    pub fn ip(&self, host: Host) -> String {
        match host {
            Host::Phone => format!("{}.2", self.net.lan),
            Host::Edge => format!("{}.2", self.net.wan),
            Host::Public => format!("{}.3", self.net.wan),
        }
    }

    /// The NAT box's public address (the phones' flows as the edge sees them).
    pub fn nat_wan(&self) -> String {
        format!("{}.1", self.net.wan)
    }

    /// `ip netns exec <host> program args…`.
    pub fn cmd(&self, host: Host, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(host), program]);
        c
    }

    fn count(&self, what: &str) -> u64 {
        let out = self.script().args([what, self.tag]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }

    /// Datagrams the edge namespace sent (tried to send) to a private address.
    pub fn leaks(&self) -> u64 {
        self.count("leaks")
    }

    /// Datagrams the edge namespace sent to the NAT's public address (the phones' flows).
    pub fn to_nat(&self) -> u64 {
        self.count("to-nat")
    }

    /// Sends one UDP datagram from the edge namespace to `dest` (bash's /dev/udp): proves
    /// the leak counter counts.
    pub fn send_from_edge(&self, dest: &str) {
        let _ = self
            .cmd(Host::Edge, "bash")
            .args(["-c", &format!("echo x > /dev/udp/{dest}/5070")])
            .output();
    }

    /// Starts sipedge in the edge namespace (198.18.15.2:5060 in the default rig) with
    /// `config` (a full file's text).
    pub fn start_edge(&self, dir: &Path, config: &str) -> Proc {
        let path = dir.join("sipedge.toml");
        std::fs::write(&path, config).unwrap();
        let child = self
            .cmd(Host::Edge, env!("CARGO_BIN_EXE_sipedge"))
            .arg("--config")
            .arg(&path)
            .args(["--shards", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Proc(Some(child))
    }

    /// The edge's Prometheus text (GET /metrics over bash's /dev/tcp in its namespace).
    pub fn metrics(&self) -> String {
        let (host, port) = ADMIN.split_once(':').unwrap();
        let script = format!(
            "exec 3<>/dev/tcp/{host}/{port}; printf 'GET /metrics HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' >&3; timeout 5 cat <&3"
        );
        let out = self
            .cmd(Host::Edge, "bash")
            .args(["-c", &script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A counter summed over its label sets.
    pub fn metric(&self, name: &str) -> u64 {
        self.metrics()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = self.script().args(["down", self.tag]).output();
    }
}

/// A child process killed when dropped (a failed test leaves nothing running).
pub struct Proc(pub Option<Child>);

impl Proc {
    pub fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }

    /// Waits at most `limit`; kills it after that.
    pub fn wait_timeout(mut self, limit: Duration) -> Option<Output> {
        let deadline = Instant::now() + limit;
        let mut child = self.0.take().unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                return Some(child.wait_with_output().unwrap());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
