//! Real `redis-server`s for the cluster tests (Debian's `redis-server` / `redis-tools`),
//! each in its own temp dir on its own loopback address, killed on drop. Shared by the
//! `cluster` test binary and the cluster thread's unit tests (`src/cluster/tests.rs`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when the binaries exist. Missing: the caller skips with a clear message, except in
/// CI (`CI` set), where `.ci/run` installs them and a missing one is a failure.
pub fn available() -> bool {
    let ok = ["redis-server", "redis-cli"].iter().all(|b| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server/redis-cli missing in CI (.ci/run installs redis-server redis-tools)"
        );
        eprintln!("SKIPPED: redis-server/redis-cli not installed (apt-get install redis-server redis-tools)");
    }
    ok
}

/// One `redis-server` process.
pub struct RedisServer {
    child: Option<Child>,
    pub ip: String,
    pub port: u16,
    dir: PathBuf,
    cluster: bool,
}

impl RedisServer {
    /// Starts a server on `ip:port` (cluster-enabled or not) and waits until it answers PING.
    pub fn start(ip: &str, port: u16, cluster: bool) -> RedisServer {
        let dir =
            std::env::temp_dir().join(format!("sipedge-redis-{ip}-{port}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = RedisServer {
            child: None,
            ip: ip.into(),
            port,
            dir,
            cluster,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.current_dir(&self.dir)
            .args(["--port", &self.port.to_string(), "--bind", &self.ip])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--dir", &self.dir.display().to_string()]);
        if self.cluster {
            // The bus's outgoing connections leave from 127.0.0.1 on loopback: announce the
            // address each node really listens on, or peers cannot connect back.
            cmd.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args([
                "--cluster-node-timeout",
                "2000",
                "--cluster-announce-ip",
                &self.ip,
            ]);
        }
        self.child = Some(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server {}:{} did not start",
                self.ip,
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis://ip:port`.
    pub fn url(&self) -> String {
        format!("redis://{}:{}", self.ip, self.port)
    }

    /// Runs `redis-cli` against this server (`-c`: follows cluster redirections).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", &self.ip, "-p", &self.port.to_string(), "-c"])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGKILL (the data is gone: no persistence).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same address (empty).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of masters, no replicas.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts one cluster-enabled server per `(ip, port)`, joins them with
    /// `redis-cli --cluster create … --cluster-replicas 0`, waits for `cluster_state:ok`.
    pub fn start(addrs: &[(&str, u16)]) -> RedisCluster {
        let nodes: Vec<_> = addrs
            .iter()
            .map(|(ip, p)| RedisServer::start(ip, *p, true))
            .collect();
        let hostports: Vec<String> = addrs.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
        // `timeout`: `--cluster create` waits for the join forever otherwise.
        let out = Command::new("timeout")
            .args(["60", "redis-cli", "--cluster", "create"])
            .args(&hostports)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while !nodes
            .iter()
            .all(|n| n.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
        {
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        RedisCluster { nodes }
    }

    /// The seed URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// `redis-cli -c` on the first node.
    pub fn cli(&self, args: &[&str]) -> String {
        self.nodes[0].cli(args)
    }
}
