//! The `sipedge` binary: CLI, configuration, shard threads, admin endpoint, signals.
//! Protocol decisions live in `sipedge-core`; this crate only wires things together.

// A binary crate: `pub` inside its modules only means "visible to main".
#![allow(unreachable_pub)]

mod admin;
mod admin_api;
mod admin_bans;
mod admin_ctl;
mod auth_config;
mod bans;
mod cluster;
mod cluster_glue;
mod config;
mod config_admin;
mod config_cluster;
mod config_dialogs;
mod config_limits;
mod config_listen;
mod config_nat;
mod config_protect;
mod config_relay;
mod config_tcp;
mod logging;
mod metrics;
mod metrics_dialogs;
mod metrics_limits;
mod metrics_nat;
mod metrics_protect;
mod metrics_relay;
mod metrics_streams;
mod metrics_turns;
mod overload;
mod overload_delay;
mod overload_writer;
mod persist;
mod sdnotify;
mod shard;
mod stream_codecs;
mod streams;

use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use mimalloc::MiMalloc;
use sipedge_core::{CoreConfig, ShardId, TxnLimits};
use sipedge_msg::ParseOptions;
use sipedge_rt::{EngineConfig, IoMode, Mesh, MeshLimits, SocketOptions, WakeFd};

use crate::config::{Config, EMBEDDED_NAME};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// How long shards get to start before the start is declared failed.
const SHARD_START_TIMEOUT: Duration = Duration::from_secs(10);

/// sipedge — a SIP edge: registrar, location service, NAT keepalives, authentication, relay.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded default (loopback only) runs.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit (non-zero with a message naming the key).
    #[arg(long)]
    check: bool,
    /// Number of shards, overriding `[server] workers`.
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sipedge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let (cfg, name) = match &cli.config {
        Some(p) => (Config::load(p)?, p.display().to_string()),
        None => (Config::embedded()?, EMBEDDED_NAME.to_string()),
    };
    if cli.check {
        println!("config {name}: OK");
        return Ok(());
    }
    logging::init(&cfg.log)?;

    let shards = match (cli.shards, cfg.workers) {
        (Some(0), _) => bail!("--shards must be at least 1"),
        (Some(n), _) => n,
        (None, 0) => sipedge_rt::available_cores(),
        (None, n) => n,
    };
    if cfg.io == IoMode::Uring {
        if let Err(why) = sipedge_rt::probe_uring() {
            bail!("config {name}: key `server.io`: \"uring\" requested but io_uring is unusable here: {why}");
        }
    }
    // Issue 19: every connection is a descriptor: raise the soft limit to the hard one, and
    // say so when even that cannot hold `[tcp] max_connections`.
    if cfg
        .listen
        .iter()
        .any(|l| l.transport != sipedge_core::Transport::Udp)
    {
        match rlimit::increase_nofile_limit(u64::MAX) {
            // Each shard has its own descriptor table (sipedge_rt::own_fd_table) holding
            // its share of the connections.
            Ok(n) if n < cfg.tcp.max_connections.div_ceil(shards) as u64 + 1024 => {
                tracing::warn!(
                    open_files = n,
                    max_connections = cfg.tcp.max_connections,
                    shards,
                    "RLIMIT_NOFILE is below a shard's share of [tcp] max_connections: connections past it are refused (raise LimitNOFILE)"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not raise RLIMIT_NOFILE"),
        }
    }
    // Issue 19: the TLS configs, shared by every shard and swapped on SIGHUP.
    let tls = match &cfg.tls {
        Some(s) => Some(Arc::new(config::tls::TlsContext::build(s).map_err(
            |(k, e)| anyhow::anyhow!("config {name}: key `tls.{k}`: {e}"),
        )?)),
        None => None,
    };
    let (sockets, stream_listeners) = bind_all(&cfg, &name, shards, tls.clone())?;
    // Before any shard serves: every journal recovered and routed to its owner shard.
    let mut restored = match &cfg.persistence {
        Some(p) => Some(
            persist::restore(p, shards as u16)
                .with_context(|| format!("config {name}: key `registrar.persistence.path`"))?,
        ),
        None => None,
    };
    let wakes = (0..shards)
        .map(|_| WakeFd::new())
        .collect::<Result<Vec<_>, _>>()
        .context("creating wake-up eventfds")?;
    // Issue 13: each queue bounded by messages and bytes, allocated as it is used.
    let meshes = Mesh::new(
        shards,
        MeshLimits {
            messages: cfg.limits.mesh_queue_messages,
            bytes: cfg.limits.mesh_queue_bytes,
            weigh: streams::Wire::weight,
        },
        wakes.iter().map(WakeFd::waker).collect(),
    );
    let wakers: Vec<_> = wakes.iter().map(WakeFd::waker).collect();
    let metrics: Vec<_> = (0..shards).map(|_| Arc::default()).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let auth = auth_core_config(&cfg, seed)?;
    // Issue 13: the node secret keys every token we MAC; drawn independently of `seed`.
    let secret = node_secret(&cfg, &name)?;
    let cores = sipedge_rt::available_cores();
    // Signal handlers go in before any shard starts: a SIGTERM that arrives while the shards
    // are still starting must stop the edge cleanly, not kill it with the default action.
    let signals = {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .context("installing signal handlers")?
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let (events_tx, events_rx) = mpsc::channel();
    let mut threads = Vec::new();
    // Issue 16: the call limits' counters, shared by every shard (and every reload).
    let call_limits =
        sipedge_core::limits::LimitsTable::build(&auth.db, cfg.call_limits.clone(), None)
            .into_handle();
    let tables = Arc::new(shard::SharedTables::new(sipedge_core::ReloadTables {
        auth: Arc::clone(&auth.db),
        nat_users: cfg.nat.users.clone(),
        limits: Arc::clone(&call_limits),
    }));
    // Issue 17: the shared ban list, also the admin API's (`/api/v1/bans`, admin_bans.rs).
    let bans = Arc::new(bans::BanRegistry::new(epoch, cfg.protection.core.max_bans));
    bans.set_wakers(wakers.clone());
    if cfg.protection.kernel_filter {
        attach_ban_filter(&bans, &sockets, cfg.protection.core.max_bans);
    }
    // Issue 19: the LocalId of each UDP socket (listen entries mix transports), and the
    // directory of which shard owns each stream connection.
    let udp_locals: Vec<u16> = cfg
        .listen
        .iter()
        .enumerate()
        .filter(|(_, l)| l.transport == sipedge_core::Transport::Udp)
        .map(|(i, _)| i as u16)
        .collect();
    let directory = Arc::new(sipedge_rt::stream::Directory::new());
    let stream_limits = cfg.tcp.per_shard(shards, cfg.max_message_bytes);
    let (ports, inboxes): (Vec<_>, Vec<_>) = wakers.iter().cloned().map(admin_ctl::channel).unzip();
    // Issue 20: the cluster thread (Redis/Valkey), before the shards so a start resync
    // finds it; a Redis down at start is not an error.
    let cluster = if cfg.cluster.enabled() {
        Some(cluster::start(&cfg.cluster, wakers.clone())?)
    } else {
        None
    };
    let admin = admin::Admin::start(
        cfg.admin_listen,
        admin::AdminState {
            metrics: metrics.clone(),
            ports: ports.clone(),
            token: cfg.admin.token.clone(),
            read_token: cfg.admin.read_token.clone(),
            started: AtomicBool::new(false),
            reload: {
                let (path, tables, wakers, tls) = (
                    cli.config.clone(),
                    Arc::clone(&tables),
                    wakers.clone(),
                    tls.clone(),
                );
                Box::new(move || reload(path.as_deref(), &tables, &wakers, tls.as_deref()))
            },
            tables: Arc::clone(&tables),
            case_sensitive: cfg.registrar.case_sensitive,
            epoch,
            message_timeout: Duration::from_millis(64 * cfg.sip.t1_ms) + admin::ASK_TIMEOUT,
            bans: Arc::clone(&bans),
            cluster: cluster.as_ref().map(|(c, _)| Arc::clone(c.stats())),
        },
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "config {name}: key `admin.listen`: cannot listen on {}: {e}",
            cfg.admin_listen
        )
    })?;
    let mut inboxes = inboxes.into_iter();
    for (id, (((socks, listeners), wake), mesh)) in sockets
        .into_iter()
        .zip(stream_listeners)
        .zip(wakes)
        .zip(meshes)
        .enumerate()
    {
        let setup = shard::ShardSetup {
            id,
            pin: Some(id % cores),
            sockets: socks,
            udp_locals: udp_locals.clone(),
            streams: streams::StreamSetup {
                listeners,
                limits: stream_limits,
                directory: Arc::clone(&directory),
                refuse: Some(bans::accept_filter(&bans)),
            },
            wake,
            mesh,
            io: cfg.io,
            engine: EngineConfig {
                recv_buf_bytes: cfg.max_message_bytes,
                xdp: cfg.xdp.clone(),
                ..EngineConfig::default()
            },
            core: CoreConfig {
                shard: ShardId(id as u16),
                shards: shards as u16,
                domains: cfg.domains.clone(),
                parse: ParseOptions {
                    max_message_bytes: cfg.max_message_bytes,
                    ..ParseOptions::default()
                },
                seed: seed ^ id as u64,
                registrar: cfg.registrar,
                journal: restored.is_some() || cfg.cluster.writes(),
                nat: sipedge_core::NatConfig {
                    advertise: advertise(&cfg),
                    ..cfg.nat.clone()
                },
                sip: cfg.sip,
                proxy: sipedge_core::ProxyConfig {
                    record_route: cfg.proxy.record_route,
                    allow_outbound: cfg.proxy.allow_outbound,
                    advertise: cfg.listen.iter().map(|l| l.addr).collect(),
                    advertise_names: cfg.listen.iter().map(|l| l.advertised()).collect(),
                    transports: cfg.listen.iter().map(|l| l.transport).collect(),
                    udp_mtu: cfg.proxy.udp_mtu,
                    secret: secret.clone(),
                },
                auth: auth.clone(),
                // Each shard owns about 1/shards of the AoRs (route hash); the index adds
                // its own headroom for the unevenness.
                expected_bindings: usize::try_from(cfg.expected_bindings.div_ceil(shards as u64))
                    .unwrap_or(usize::MAX),
                prefault: cfg.prefault,
                txn_limits: TxnLimits::per_shard(
                    cfg.limits.max_transactions,
                    cfg.limits.max_transaction_bytes,
                    shards as u16,
                ),
                protect: cfg.protection.core.clone(),
                limits: Arc::clone(&call_limits),
                dialogs: sipedge_core::dialog::DialogConfig {
                    max_dialogs: cfg.dialogs.max_dialogs.div_ceil(shards),
                    ..cfg.dialogs
                },
                // Issue 20: off until `[cluster]` (the `cluster` branch) is connected here:
                // `mode != standalone`, `node`, the peers' addresses, and its timeouts.
                cluster: cluster_glue::core_config(
                    cfg.cluster.enabled(),
                    &cfg.cluster.node,
                    &cfg.cluster.peers,
                    cfg.cluster.lookup_timeout_ms,
                    0,
                ),
                ..CoreConfig::default()
            },
            persist: restored.as_mut().map(|r| shard::PersistSetup {
                layout: r.layout.clone(),
                options: r.options,
                records: std::mem::take(&mut r.per_shard[id]),
            }),
            metrics: Arc::clone(&metrics[id]),
            stop: Arc::clone(&stop),
            epoch,
            ready: ready_tx.clone(),
            tables: Arc::clone(&tables),
            bans: Arc::clone(&bans),
            overload: cfg.protection.overload,
            admin: inboxes
                .next()
                .ok_or_else(|| anyhow::anyhow!("one admin inbox per shard"))?,
            cluster: cluster.as_ref().map(|(c, _)| c.clone()),
        };
        let died = events_tx.clone();
        let t = std::thread::Builder::new()
            .name(format!("shard-{id}"))
            .spawn(move || {
                // Issue 13: a shard that fails or panics takes the process down (below),
                // never leaving 1/N of the AoRs silently unanswered.
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shard::run(setup)));
                let cause = match outcome {
                    Ok(Ok(())) => return,
                    Ok(Err(e)) => e,
                    Err(p) => format!("panicked: {}", panic_text(p.as_ref())),
                };
                let _ = died.send(MainEvent::ShardDied { id, cause });
            })
            .context("spawning a shard thread")?;
        threads.push(t);
    }
    let mut engines = Vec::new();
    for _ in 0..shards {
        match ready_rx.recv_timeout(SHARD_START_TIMEOUT) {
            Ok(Ok(kind)) => engines.push(kind.to_string()),
            Ok(Err(e)) => {
                stop_all(&stop, &wakers, threads);
                admin.stop();
                bail!(e);
            }
            Err(_) => {
                stop_all(&stop, &wakers, threads);
                admin.stop();
                bail!("shards did not start within {SHARD_START_TIMEOUT:?}");
            }
        }
    }
    admin.set_started();
    // systemd (contrib/sipedge.service, Type=notify): ready once every shard serves, and the
    // watchdog fed while every shard turns.
    sdnotify::notify("READY=1");
    let watchdog = sdnotify::Watchdog::start(ports);
    tracing::info!(
        shards,
        listen = ?cfg.listen.iter().map(|l| l.addr).collect::<Vec<_>>(),
        admin = %cfg.admin_listen,
        engines = ?engines,
        "sipedge running"
    );

    let outcome = wait_for_event(signals, events_tx, &events_rx, || {
        let _ = reload(cli.config.as_deref(), &tables, &wakers, tls.as_deref());
    });
    tracing::info!("stopping");
    sdnotify::notify("STOPPING=1");
    if let Some(w) = watchdog {
        w.stop();
    }
    stop_all(&stop, &wakers, threads);
    admin.stop();
    if let Some((_, threads)) = cluster {
        threads.stop();
    }
    match outcome? {
        None => {
            tracing::info!("stopped");
            Ok(())
        }
        Some((id, cause)) => bail!("shard {id} died ({cause}); the edge stopped"),
    }
}

/// What the main thread waits for.
#[derive(Debug)]
enum MainEvent {
    Signal(i32),
    ShardDied { id: usize, cause: String },
}

/// A panic payload as text.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// The Via sent-by of our keepalives per socket: its advertised `host:port` (`--check`
/// refuses a wildcard listen without `advertise`).
fn advertise(cfg: &Config) -> Vec<String> {
    cfg.listen.iter().map(|l| l.advertised()).collect()
}

/// Per shard: its UDP sockets (UDP entries in listen order) and its stream listeners.
type ShardSockets = (
    Vec<Vec<std::net::UdpSocket>>,
    Vec<Vec<sipedge_rt::stream::StreamListener>>,
);

/// Binds every listen entry once per shard: UDP entries as the engine's sockets, stream
/// entries (tcp:) as each shard's own SO_REUSEPORT listener (issue 19). A port that
/// something else holds is refused first with a plain bind: SO_REUSEPORT would otherwise
/// let a second edge silently share it.
fn bind_all(
    cfg: &Config,
    name: &str,
    shards: usize,
    tls: Option<Arc<config::tls::TlsContext>>,
) -> anyhow::Result<ShardSockets> {
    use sipedge_core::Transport;
    let key = |i: usize| format!("config {name}: key `server.listen[{i}]`");
    let setup = stream_codecs::CodecSetup {
        tls,
        limits: sipedge_rt::stream::CodecLimits {
            max_message_bytes: cfg.max_message_bytes,
            max_buffer_bytes: cfg.tcp.max_connection_bytes,
        },
        handshakes_per_sec: cfg.tls.as_ref().map_or(0, |t| t.handshakes_per_sec),
    };
    let mut codecs = Vec::new();
    for (i, l) in cfg.listen.iter().enumerate() {
        if l.transport == Transport::Udp {
            std::net::UdpSocket::bind(l.addr)
                .with_context(|| format!("{}: cannot bind {}", key(i), l.addr))?;
        } else {
            // Checked once here; each shard gets its own factories below.
            stream_codecs::codecs(l.transport, &setup)
                .map_err(|e| anyhow::anyhow!("{}: {e}", key(i)))?;
            std::net::TcpListener::bind(l.addr)
                .with_context(|| format!("{}: cannot bind {}", key(i), l.addr))?;
            codecs.push((i, l.addr, l.transport));
        }
    }
    let listeners = (0..shards)
        .map(|_| {
            codecs
                .iter()
                .map(|(i, addr, transport)| {
                    let (accept, connect) = stream_codecs::codecs(*transport, &setup)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", key(*i)))?;
                    let socket = sipedge_rt::stream::bind_tcp_reuseport(
                        *addr,
                        sipedge_rt::stream::LISTEN_BACKLOG,
                    )
                    .with_context(|| format!("{}: cannot bind {addr}", key(*i)))?;
                    Ok(sipedge_rt::stream::StreamListener {
                        local: *i as u16,
                        socket,
                        codec: accept,
                        connect,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((bind_udp(cfg, name, shards)?, listeners))
}

/// Binds every UDP listen entry once per shard.
fn bind_udp(
    cfg: &Config,
    name: &str,
    shards: usize,
) -> anyhow::Result<Vec<Vec<std::net::UdpSocket>>> {
    let opts = SocketOptions {
        recv_buffer_bytes: cfg.recv_buffer_bytes,
        send_buffer_bytes: cfg.send_buffer_bytes,
    };
    (0..shards)
        .map(|_| {
            cfg.listen
                .iter()
                .enumerate()
                .filter(|(_, l)| l.transport == sipedge_core::Transport::Udp)
                .map(|(i, l)| {
                    sipedge_rt::bind_udp_reuseport(l.addr, &opts).with_context(|| {
                        format!(
                            "config {name}: key `server.listen[{i}]`: cannot bind {}",
                            l.addr
                        )
                    })
                })
                .collect()
        })
        .collect()
}

fn stop_all(
    stop: &AtomicBool,
    wakers: &[sipedge_rt::Waker],
    threads: Vec<std::thread::JoinHandle<()>>,
) {
    stop.store(true, Ordering::SeqCst);
    for w in wakers {
        w.wake();
    }
    for t in threads {
        let _ = t.join();
    }
}

/// Waits for SIGINT/SIGTERM (`Ok(None)`) or a shard's death (`Ok(Some((shard, cause)))`,
/// logged at error); SIGHUP calls `on_hup` and keeps waiting.
fn wait_for_event(
    mut signals: signal_hook::iterator::Signals,
    tx: mpsc::Sender<MainEvent>,
    rx: &mpsc::Receiver<MainEvent>,
    mut on_hup: impl FnMut(),
) -> anyhow::Result<Option<(usize, String)>> {
    use signal_hook::consts::SIGHUP;
    let handle = signals.handle();
    let forward = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(MainEvent::Signal(sig)).is_err() {
                    break;
                }
            }
        })
        .context("spawning the signal thread")?;
    let result = loop {
        match rx.recv() {
            Ok(MainEvent::Signal(SIGHUP)) => on_hup(),
            Ok(MainEvent::Signal(sig)) => {
                tracing::info!(signal = sig, "signal received");
                break None;
            }
            Ok(MainEvent::ShardDied { id, cause }) => {
                tracing::error!(shard = id, cause, "shard died; stopping the edge");
                break Some((id, cause));
            }
            Err(_) => break None,
        }
    };
    handle.close();
    let _ = forward.join();
    Ok(result)
}

/// The file in the persistence directory that keeps a generated node secret.
const NODE_SECRET_FILE: &str = "node_secret";

/// The node secret (issue 13): `[server] secret` when set; else, with persistence on, the
/// one kept in `<persistence path>/node_secret` (created 0600 with 32 random bytes the
/// first time), so dialog tokens handed out before a restart still verify; else 32
/// random bytes from the OS for this run.
fn node_secret(cfg: &Config, name: &str) -> anyhow::Result<sipedge_core::NodeSecret> {
    use std::io::{Read as _, Write as _};
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(s) = &cfg.secret {
        return Ok(s.clone());
    }
    let random = || -> anyhow::Result<sipedge_core::NodeSecret> {
        let mut s = [0u8; sipedge_core::NODE_SECRET_LEN];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut s))
            .context("reading the node secret from /dev/urandom")?;
        Ok(sipedge_core::NodeSecret(s))
    };
    let Some(p) = &cfg.persistence else {
        return random();
    };
    let path = p.path.join(NODE_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => sipedge_core::NodeSecret::from_hex(&text).map_err(|e| {
            anyhow::anyhow!(
                "config {name}: key `registrar.persistence.path`: {}: {e}",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let s = random()?;
            std::fs::create_dir_all(&p.path)
                .with_context(|| format!("creating {}", p.path.display()))?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("creating {}", path.display()))?;
            f.write_all(s.to_hex().as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "node secret generated and kept");
            Ok(s)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The core's auth config: the tables from `cfg`, the nonce secret (configured, else 32
/// bytes from the OS) and a random instance id.
fn auth_core_config(cfg: &Config, seed: u64) -> anyhow::Result<sipedge_core::auth::AuthConfig> {
    use sipedge_core::auth::{AuthConfig, AuthDb};
    let db = AuthDb::build(&cfg.auth.spec).context("building the auth tables")?;
    let nonce_secret = match &cfg.auth.nonce_secret {
        Some(s) => s.clone(),
        None => {
            use std::io::Read as _;
            let mut s = vec![0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut s))
                .context("reading the nonce secret from /dev/urandom")?;
            s
        }
    };
    Ok(AuthConfig {
        db: db.into_handle(),
        nonce_secret,
        instance: (seed >> 32) as u32 ^ seed as u32,
        ..AuthConfig::default()
    })
}

/// SIGHUP: re-reads the config file and publishes new auth tables (`[auth]`, accounts,
/// users, users_file, ip_auth) and per-user NAT overrides (`nat`, `nat_ping` of the users),
/// then wakes the shards so each takes them between two turns (`Core::handle_config`) and
/// re-applies the NAT overrides to the bindings of the changed users at once; bindings and nonces are untouched. Other
/// sections need a restart. A bad file is logged and the old tables stay, and so does a
/// file that would turn authentication off or drop every user (`auth_reload.rs`).
/// The same for `POST /api/v1/reload`: `Ok(summary)`, or `Err(why it was refused)`.
fn reload(
    path: Option<&std::path::Path>,
    tables: &shard::SharedTables,
    wakers: &[sipedge_rt::Waker],
    tls: Option<&config::tls::TlsContext>,
) -> Result<String, String> {
    let Some(path) = path else {
        tracing::info!(target: "sip::auth", "SIGHUP: no --config file, nothing to reload");
        return Ok("no --config file, nothing to reload".into());
    };
    let current = tables.current();
    let built = Config::load(path)
        .map_err(anyhow::Error::from)
        .and_then(|c| {
            crate::auth_config::reload::check_reload(&current.auth, &c.auth.spec, path)
                .map_err(anyhow::Error::msg)?;
            let db =
                sipedge_core::auth::AuthDb::build(&c.auth.spec).map_err(anyhow::Error::from)?;
            // Issue 19: the certificate for new TLS connections (a bad file refuses the
            // whole reload: Config::load already read it).
            let tls_note =
                config::tls::reload::apply(tls, c.tls.as_ref()).map_err(anyhow::Error::msg)?;
            Ok((db, c.nat.users, c.call_limits, tls_note))
        });
    match built {
        Ok((db, nat, call_limits, tls_note)) => {
            let users = db.user_count();
            let nat_users = current.nat_users.next(nat.to_map());
            let nat_changed = nat_users.changed();
            let auth = Arc::new(db);
            // Issue 16: the counters of every key that still exists carry over.
            let limits =
                sipedge_core::limits::LimitsTable::build(&auth, call_limits, Some(&current.limits))
                    .into_handle();
            tables.publish(sipedge_core::ReloadTables {
                auth,
                nat_users,
                limits,
            });
            for w in wakers {
                w.wake();
            }
            tracing::info!(target: "sip::auth", users, nat_changed, "SIGHUP: auth tables and per-user NAT settings reloaded (other sections need a restart)");
            Ok(format!(
                "{users} users, {nat_changed} per-user NAT changes, {tls_note}; other sections need a restart"
            ))
        }
        Err(e) => {
            tracing::error!(target: "sip::auth", error = %e, "SIGHUP: reload refused, old tables kept");
            Err(format!("{e:#}; old tables kept"))
        }
    }
}

/// Issue 17: the eBPF socket filter that drops banned sources in the kernel, on every
/// socket; where BPF is not permitted the shards' own check is all there is (logged once).
fn attach_ban_filter(
    bans: &bans::BanRegistry,
    sockets: &[Vec<std::net::UdpSocket>],
    max_bans: usize,
) {
    let entries = u32::try_from(max_bans).unwrap_or(u32::MAX);
    let filter = match sipedge_rt::BanFilter::new(entries) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "kernel ban filter unavailable: bans are checked in user space only");
            return;
        }
    };
    for s in sockets.iter().flatten() {
        let v6 = s.local_addr().is_ok_and(|a| a.is_ipv6());
        if let Err(e) = filter.attach(s, v6) {
            tracing::warn!(error = %e, "kernel ban filter not attached: bans are checked in user space only");
            return;
        }
    }
    bans.set_filter(filter);
}
