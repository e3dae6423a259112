//! systemd readiness and watchdog (`Type=notify`, `WatchdogSec=`; sd_notify(3)): one
//! datagram on `$NOTIFY_SOCKET` per state. Nothing happens when the variable is unset (not
//! started by systemd). The watchdog is fed only while every shard answers a ping through
//! its control inbox, so a wedged shard loop gets the process restarted.

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::admin_ctl::{Answer, Ask, ShardPort};

/// Sends `state` (e.g. `READY=1`) to systemd; `false` when not under systemd or it failed.
pub fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return false;
    };
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket (sd_notify(3)).
        use std::os::linux::net::SocketAddrExt as _;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&path))
    };
    sent.is_ok()
}

/// The watchdog interval systemd asked for (`$WATCHDOG_USEC`, for this process).
fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let us: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (us > 0).then(|| Duration::from_micros(us))
}

/// The watchdog feeder, when systemd asked for one.
#[derive(Debug)]
pub struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Watchdog {
    /// Starts feeding every half interval while each shard answers within a quarter.
    pub fn start(ports: Vec<ShardPort>) -> Option<Watchdog> {
        let interval = watchdog_interval()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    if all_turning(&ports, interval / 4) {
                        notify("WATCHDOG=1");
                    } else {
                        tracing::error!("a shard did not answer its watchdog ping");
                    }
                    let rest = (interval / 2).saturating_sub(began.elapsed());
                    // Sleep in short steps so a stop is quick.
                    let until = Instant::now() + rest;
                    while Instant::now() < until && !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50).min(rest));
                    }
                }
            })
            .ok()?;
        Some(Watchdog { stop, thread })
    }

    /// Stops feeding.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Every shard answers a ping within `patience`.
fn all_turning(ports: &[ShardPort], patience: Duration) -> bool {
    let mut waits = Vec::new();
    for p in ports {
        match p.ask(Ask::Ping) {
            Ok(rx) => waits.push(rx),
            Err(_) => return false,
        }
    }
    let deadline = Instant::now() + patience;
    for mut rx in waits {
        loop {
            match rx.try_recv() {
                Ok(Answer::Pong) => break,
                Ok(_) => return false,
                Err(tokio::sync::oneshot::error::TryRecvError::Empty)
                    if Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(_) => return false,
            }
        }
    }
    true
}
