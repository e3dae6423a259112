//! The shard loop: one pinned thread per core running its engine and its [`Core`].
//!
//! A turn: wait for datagrams (this also submits the previous turn's sends, so each turn
//! makes one submission), feed them to the core, feed the mesh's hand-offs, fire due timers,
//! then drain every output of the core into the engine and the mesh, and wake each peer that
//! got something at most once. `now` is read once per turn. Protocol decisions stay in the
//! core: this file only moves bytes.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sipedge_core::{Core, CoreConfig, CoreEvent, LocalId, Millis, ReloadTables, ShardId};
use sipedge_rt::{Engine, EngineConfig, EngineKind, IoMode, MeshEndpoint, WakeFd};

use crate::metrics::{LoopStats, ShardMetrics};
use crate::metrics_turns::TurnStats;
use crate::persist::ShardPersist;
use crate::streams::{ShardStreams, Wire};

/// Hand-offs processed per turn, at most (bounded work per turn).
const MAX_MESH_PER_TURN: usize = 1024;
/// A turn this long is logged when it is the longest so far (peers retransmit after T1 =
/// 500 ms, RFC 3261 §17.1.1.1; a fifth of it is already a visible delay).
const SLOW_TURN: Duration = Duration::from_millis(100);

/// The reload tables of the edge (SIGHUP, `main.rs`): the signal thread publishes a new
/// generation, each shard takes it at the start of its next turn and hands it to its core
/// ([`Core::handle_config`]). The shard's read is one relaxed atomic load per turn; the
/// lock is taken only when a reload happened.
#[derive(Debug)]
pub struct SharedTables {
    generation: AtomicU64,
    tables: Mutex<Arc<ReloadTables>>,
}

impl SharedTables {
    /// The tables of the start.
    pub fn new(tables: ReloadTables) -> SharedTables {
        SharedTables {
            generation: AtomicU64::new(0),
            tables: Mutex::new(Arc::new(tables)),
        }
    }

    /// The tables in force.
    pub fn current(&self) -> Arc<ReloadTables> {
        Arc::clone(&self.tables.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Publishes a new generation (the caller wakes the shards).
    pub fn publish(&self, tables: ReloadTables) {
        *self.tables.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(tables);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The tables, when newer than generation `seen` (which is updated).
    fn newer(&self, seen: &mut u64) -> Option<Arc<ReloadTables>> {
        let g = self.generation.load(Ordering::Acquire);
        if g == *seen {
            return None;
        }
        *seen = g;
        Some(self.current())
    }
}

/// Everything a shard thread needs, prepared by `main` before the threads start.
#[derive(Debug)]
pub struct ShardSetup {
    /// This shard.
    pub id: usize,
    /// CPU to pin to (`None`: do not pin).
    pub pin: Option<usize>,
    /// One socket per UDP listen entry, bound with SO_REUSEPORT.
    pub sockets: Vec<UdpSocket>,
    /// The LocalId (listen index) of each UDP socket, in `sockets` order: the listen
    /// entries mix UDP and stream transports, and the engine gets only the UDP ones.
    pub udp_locals: Vec<u16>,
    /// The stream listeners and their limits (issue 19, `streams.rs`).
    pub streams: crate::streams::StreamSetup,
    /// This shard's wake-up fd.
    pub wake: WakeFd,
    /// This shard's end of the mesh.
    pub mesh: MeshEndpoint<Wire>,
    /// Engine choice.
    pub io: IoMode,
    /// Engine sizes.
    pub engine: EngineConfig,
    /// The core's configuration.
    pub core: CoreConfig,
    /// Published counters.
    pub metrics: Arc<ShardMetrics>,
    /// Set by the signal handler.
    pub stop: Arc<AtomicBool>,
    /// The common clock origin, so every shard's `Millis` agree.
    pub epoch: Instant,
    /// Reports the engine the shard runs, or why it could not start.
    pub ready: Sender<Result<EngineKind, String>>,
    /// The journal to restore from and append to (`None`: memory-only).
    pub persist: Option<PersistSetup>,
    /// The reload tables, taken between turns.
    pub tables: Arc<SharedTables>,
    /// The shared ban list (issue 17): this shard's bans go there, everyone's come back.
    pub bans: Arc<crate::bans::BanRegistry>,
    /// `[overload]`: when the shard's pressure level rises.
    pub overload: crate::config_protect::OverloadSettings,
    /// Admin API requests (`admin_ctl.rs`), answered between turns.
    pub admin: crate::admin_ctl::ShardInbox,
    /// `[cluster]` (issue 20): the cluster thread's handle (`None`: standalone).
    pub cluster: Option<crate::cluster::ClusterClient>,
}

/// This shard's part of `[registrar.persistence]`, prepared by `persist::restore`.
#[derive(Debug)]
pub struct PersistSetup {
    /// Where the shards' journals live.
    pub layout: sipedge_journal::Layout,
    /// Sync policy and thresholds.
    pub options: sipedge_journal::JournalOptions,
    /// The recovered records this shard owns, in replay order.
    pub records: sipedge_journal::RecordBatch,
}

fn millis_since(epoch: Instant) -> Millis {
    Millis(epoch.elapsed().as_millis() as u64)
}

/// The wall clock since the Unix epoch (the kernel's receive stamps' clock).
fn unix_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The shard ids whose loop must fail at its first turn, and how, from
/// `SIPEDGE_TEST_SHARD_FAULT=<id>:panic|error` — honoured only in debug builds, so tests
/// over the binary can prove a dead shard takes the process down.
#[cfg(debug_assertions)]
fn injected_fault(id: usize) -> Option<&'static str> {
    let v = std::env::var("SIPEDGE_TEST_SHARD_FAULT").ok()?;
    let (shard, how) = v.split_once(':')?;
    if shard.parse::<usize>().ok()? != id {
        return None;
    }
    match how {
        "panic" => Some("panic"),
        "error" => Some("error"),
        _ => None,
    }
}

#[cfg(not(debug_assertions))]
fn injected_fault(_id: usize) -> Option<&'static str> {
    None
}

/// Runs a shard until `stop` is set. `Err` names why the shard stopped on its own (its
/// engine failed): the caller takes the process down, since a dead shard would leave
/// 1/N of the AoRs unanswered while the process looks alive. A panic unwinds to the
/// caller the same way. Start-up failures are reported on `ready` and return `Ok`.
pub fn run(setup: ShardSetup) -> Result<(), String> {
    let ShardSetup {
        id,
        pin,
        sockets,
        udp_locals,
        streams,
        wake,
        mut mesh,
        io,
        engine,
        core,
        metrics,
        stop,
        epoch,
        ready,
        persist,
        tables,
        bans,
        overload,
        mut admin,
        cluster,
    } = setup;
    // Issue 20: binding changes go to the cluster writer too (cluster mode, or a shared array).
    let mut tee = cluster
        .clone()
        .filter(crate::cluster::ClusterClient::writes)
        .map(|c| crate::cluster::ShardTee::new(c, id));
    let span = tracing::info_span!("shard", id);
    let _enter = span.enter();
    // Before the engine exists (its io_uring workers share their creator's table): the
    // shard's connections live in its own descriptor table, and RLIMIT_NOFILE counts per
    // shard (sipedge_rt::own_fd_table). Descriptors handed in (sockets, wakers) stay valid.
    // Not with io = "xdp": the first shard creates the XDP program and its XSKMAP, and every
    // shard writes its socket into that map by descriptor (`xdp/prog.rs`), so the shards
    // must share one table.
    if io != IoMode::Xdp {
        if let Err(e) = sipedge_rt::own_fd_table() {
            tracing::warn!(error = %e, "shard shares the process's descriptor table");
        }
    }
    if let Some(cpu) = pin {
        if !sipedge_rt::pin_current_thread(cpu) {
            tracing::warn!(cpu, "could not pin shard to its core");
        }
    }
    // io = "xdp": shard k serves RX/TX queue k of the interface.
    let mut engine_cfg = engine;
    engine_cfg.xdp.queue = id as u32;
    // The engine owns the sockets from here on; their fds stay valid as long as it lives.
    let mut pressure = crate::overload::Pressure::new(
        overload,
        sockets
            .iter()
            .map(std::os::fd::AsRawFd::as_raw_fd)
            .collect(),
    );
    let mut kernel_shed = crate::overload::KernelShedWriter::new(pressure.fds());
    // The stale drop's meter (`overload_delay.rs`): how long a turn's batch waited.
    let max_queue_delay = if overload.enabled && io != sipedge_rt::IoMode::Xdp {
        Duration::from_millis(u64::from(overload.max_queue_delay_ms))
    } else {
        Duration::ZERO // AF_XDP frames do not pass the socket: no receive stamps
    };
    // The kernel shed controller's sojourn target needs the same stamps (not with XDP).
    let sojourn =
        overload.enabled && overload.kernel_shed_wait_ms > 0 && io != sipedge_rt::IoMode::Xdp;
    let mut queue_delay =
        crate::overload_delay::QueueDelay::new(max_queue_delay, sojourn, pressure.fds());
    let shed_fds = pressure.fds();
    let mut ban_cursor = crate::bans::BanCursor::default();
    let mut last_sweep = Instant::now();
    // Takeover (issue 20): an adopted binding is served on the socket bound to the dead
    // edge's (floating) address, else on the first UDP socket.
    let udp_addrs: Vec<(std::net::SocketAddr, u16)> = sockets
        .iter()
        .zip(&udp_locals)
        .filter_map(|(s, l)| s.local_addr().ok().map(|a| (a, *l)))
        .collect();
    let mut engine = match Engine::new(io, sockets, wake, &engine_cfg) {
        Ok(e) => e,
        Err(e) => {
            let _ = ready.send(Err(format!("shard {id}: cannot start the I/O engine: {e}")));
            return Ok(());
        }
    };
    let mut streams = match ShardStreams::new(id as u16, streams) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(format!(
                "shard {id}: cannot start the stream listeners: {e}"
            )));
            return Ok(());
        }
    };
    if let Some(s) = &streams {
        engine.watch_readable(s.raw_fd());
    }
    let udp_index = crate::streams::udp_index(&udp_locals);
    metrics.set_engine(engine.kind());
    tracing::info!(engine = %engine.kind(), "shard running");
    let mut core = Core::new(core);
    core.set_wall_clock(millis_since(epoch), unix_millis());
    // Restore before reporting ready: the edge answers only once its bindings are back.
    let mut persist = match persist {
        Some(p) => {
            let restored = ShardPersist::restore(
                &mut core,
                millis_since(epoch),
                id as u16,
                &p.layout,
                p.options,
                p.records,
            );
            match restored {
                Ok(sp) => Some(sp),
                Err(e) => {
                    let _ = ready.send(Err(format!("shard {id}: {e:#}")));
                    return Ok(());
                }
            }
        }
        None => None,
    };
    // Published before the first turn, so what was restored shows even on an idle shard.
    metrics.publish(
        core.stats(),
        engine.stats(),
        &mesh.stats(),
        &LoopStats::default(),
    );
    metrics.publish_location(core.binding_count(), core.aor_count());
    let _ = ready.send(Ok(engine.kind()));
    let mut lp = LoopStats::default();
    let mut turns = TurnStats::default();
    let fault = injected_fault(id);
    let mut failure = None;
    let mut tables_seen = 0;
    // The thread's CPU clock at the last turn's end: a turn's CPU time is the lag the
    // pressure level reads (`overload.rs`), one clock read per turn. Read here, after the
    // shard's setup (building the core for a million bindings is 200 ms of CPU, seen as
    // the first turn's lag, level 1 and 503s at start).
    let mut cpu_at = sipedge_rt::thread_cpu_time();

    while !stop.load(Ordering::Relaxed) {
        lp.turns += 1;
        // Configuration arrives between turns: a reload never splits one.
        if let Some(t) = tables.newer(&mut tables_seen) {
            core.handle_config(&t);
        }
        // Bans from the other shards and the operator, between turns (issue 17).
        if sync_bans(&mut core, &bans, &mut ban_cursor, millis_since(epoch)) {
            // Shown at once, not after the next datagram (an idle shard may block now).
            metrics
                .protect
                .publish(&core.protect_stats(), &pressure.sample);
        }
        if id == 0 && last_sweep.elapsed() >= Duration::from_secs(1) {
            last_sweep = Instant::now();
            bans.sweep(); // ended bans leave the shared list and the kernel filter
        }
        match fault {
            Some("panic") => panic!("injected fault (SIPEDGE_TEST_SHARD_FAULT)"),
            Some(_) => {
                failure = Some("injected engine failure (SIPEDGE_TEST_SHARD_FAULT)".to_string());
                break;
            }
            None => {}
        }
        let due = match (
            core.poll_timeout(),
            persist.as_ref().and_then(ShardPersist::next_deadline),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut timeout =
            due.map(|due| Duration::from_millis(due.0.saturating_sub(millis_since(epoch).0)));
        if let Some(s) = &streams {
            // The once-a-second sweep of connection timeouts.
            timeout = Some(timeout.map_or(s.max_wait(), |t| t.min(s.max_wait())));
        }
        if pressure.kernel_shed_share() > 0 {
            // While the filter sheds, the controller must see windows even when nothing is
            // admitted, or a share set during a flood would outlive it (`overload.rs`).
            let w = crate::overload::RATE_WINDOW;
            timeout = Some(timeout.map_or(w, |t| t.min(w)));
        }
        queue_delay.watch = sojourn && pressure.watching();
        let mut turn_now = None;
        // When the turn's work began: the first datagram handed over, or the wait's return.
        let mut work_start = None;
        let received = {
            let core = &mut core;
            let turn_now = &mut turn_now;
            let work_start = &mut work_start;
            let queue_delay = &mut queue_delay;
            let streams = &streams;
            let has_pending = || {
                streams.as_ref().is_some_and(ShardStreams::has_pending)
                    || mesh.has_pending()
                    || admin.has_pending()
                    || stop.load(Ordering::Relaxed)
                    || bans.pending(&ban_cursor)
                    || tee.as_ref().is_some_and(crate::cluster::ShardTee::pending)
                    || cluster.as_ref().is_some_and(|c| c.has_answers(id))
            };
            engine.wait(timeout, has_pending, |d| {
                let now = *turn_now.get_or_insert_with(|| {
                    let at = Instant::now();
                    *work_start = Some(at);
                    Millis(at.saturating_duration_since(epoch).as_millis() as u64)
                });
                if let Some(late) = queue_delay.on_datagram(d.socket, unix_now) {
                    // Before this datagram is served: a late batch's rest is dropped.
                    core.handle_queue_delay(late);
                }
                if d.truncated {
                    core.handle_truncated_datagram(now, d.remote);
                } else {
                    let local = udp_locals.get(d.socket).copied().unwrap_or(0);
                    core.handle_datagram(now, LocalId(local), d.remote, d.data);
                }
            })
        };
        match received {
            Ok(0) => {}
            Ok(n) => {
                lp.recv_batches += 1;
                lp.recv_batch_datagrams += n as u64;
            }
            Err(e) => {
                failure = Some(format!("I/O engine failed: {e}"));
                break;
            }
        }
        let work_start = work_start.unwrap_or_else(Instant::now);
        let now = turn_now.unwrap_or_else(|| {
            Millis(work_start.saturating_duration_since(epoch).as_millis() as u64)
        });
        // Follows wall-clock steps (NTP) for the Date header and journal timestamps.
        let wall = unix_millis();
        core.set_wall_clock(now, wall);
        if let Some(s) = streams.as_mut() {
            // Whole messages read from this shard's connections, as datagrams of their
            // listener (the core's flows are (LocalId, peer) either way).
            let polled = s.poll(now, &mut engine, &mut |local, remote, msg| {
                core.handle_datagram(now, LocalId(local), remote, msg);
            });
            if let Err(e) = polled {
                failure = Some(format!("stream poller failed: {e}"));
                break;
            }
            // Closed connections (this turn's reads and sweep, the last turn's writes): an
            // Outbound flow fails (RFC 5626 §5.3), responses owed find a new connection.
            s.drain_closed(&mut |local, remote| {
                core.handle_flow_closed(now, LocalId(local), remote);
            });
        }
        mesh.recv(MAX_MESH_PER_TURN, |from, msg| match msg {
            Wire::Core(msg) => core.handle_shard_msg(now, ShardId(from as u16), msg),
            Wire::Write {
                local,
                remote,
                bytes,
            } => {
                if let Some(s) = streams.as_mut() {
                    s.handle_write(now, local, remote, &bytes);
                }
            }
        });
        // Admin API queries: a few cheap ones and at most ONE listing slice per turn
        // (`admin_ctl.rs`: bounded by cost), before the journal's turn end, so a removal is
        // journalled with this turn's changes. A query arriving while the shard blocks wakes
        // it (eventfd, `ShardPort::ask`); a listing under way keeps `has_pending` true.
        admin.serve(&mut core, now);
        if core.poll_timeout().is_some_and(|due| due <= now) {
            core.handle_timeout(now);
        }
        // Answers that came with this turn's datagrams or timers (a MESSAGE's finals).
        admin.deliver(&mut core);
        // Issue 20: remote answers in, remote lookups out, before the outputs drain.
        crate::cluster_glue::turn(
            &mut core,
            now,
            id,
            cluster
                .as_ref()
                .map(|c| c as &dyn crate::cluster_glue::ClusterPort),
        );
        if let Some(c) = cluster.as_ref() {
            c.drain_adopted(id, |a| {
                crate::cluster_glue::adopt(&mut core, now, &udp_addrs, c, &a)
            });
        }
        // Before the turn's replies reach the engine: with `sync = "every"` this is the
        // group commit that makes every acknowledged change durable first.
        // The journal's share of the turn, for the slow-turn log line.
        let mut journal_time = Duration::ZERO;
        if let Some(p) = persist.as_mut() {
            let t = Instant::now();
            p.end_turn_with(&mut core, now, |r| {
                if let Some(tee) = tee.as_mut() {
                    tee.record(r, wall);
                }
            });
            journal_time = t.elapsed();
        } else if let Some(tee) = tee.as_mut() {
            tee.drain(&mut core, wall);
        }
        // A resync (start, or an overflow) re-sends every binding, a bounded slice a turn.
        if let Some(tee) = tee.as_mut() {
            tee.resync_step(&core, wall);
        }
        drain(
            &mut core,
            now,
            Outputs {
                engine: &mut engine,
                udp_index: &udp_index,
                streams: streams.as_mut(),
            },
            &mut mesh,
            &mut lp,
            &bans,
        );
        if let Some(s) = streams.as_mut() {
            s.flush(now, &mut engine);
            s.publish(&metrics.streams);
        }
        if let Some(p) = persist.as_mut() {
            let t = Instant::now();
            p.maybe_snapshot(&core);
            journal_time += t.elapsed();
        }
        mesh.flush_wakeups();
        metrics.publish(core.stats(), engine.stats(), &mesh.stats(), &lp);
        metrics
            .relay
            .publish(core.proxy_stats(), core.transaction_count());
        metrics.publish_location(core.binding_count(), core.aor_count());
        metrics.publish_auth(core.auth_stats());
        let txn_bytes = core.transaction_bytes();
        metrics.limits.publish(&core.stats().overload, txn_bytes);
        metrics.dialogs.publish(&core);
        if let Some(p) = persist.as_ref() {
            metrics.limits.publish_journal(p);
        }
        let worked = work_start.elapsed();
        // The CPU the thread used since the last turn ended: this turn's work, with the
        // receive work of its wait (io_uring task work runs in this thread), without the
        // time it waited for a CPU.
        let cpu_now = sipedge_rt::thread_cpu_time();
        let turn = match (cpu_now, cpu_at) {
            (Some(n), Some(l)) => crate::overload::Turn {
                wall: worked,
                cpu: n.saturating_sub(l),
            },
            _ => crate::overload::Turn::all_work(worked),
        };
        cpu_at = cpu_now;
        if let Some(wait) = queue_delay.take_turn_wait() {
            pressure.note_wait(wait);
        }
        if let Some(late) = queue_delay.end_turn() {
            core.handle_queue_delay(late);
        }
        metrics.protect.publish_queue_wait(queue_delay.last_wait);
        // What the shard served: the stale drop's datagrams were read, not served, so the
        // kernel shed controller counts them as shed (it admits what the shard serves).
        let stale = core.protect_stats().stale_dropped;
        // Of the classes the filter sheds only: responses and ACKs are never shed, and a
        // new INVITE's ACK (its final error's: absorbed, or without a transaction counted
        // in `dropped` with what else was read and not served) doubled what an INVITE
        // flood's rate matching counted as served — it admitted twice what fit (seen: the
        // share swinging 820–998 ‰, the queue 0–3.5 MB; with the cuts between windows
        // gone, the queue held at the stale bound, 58k stale drops).
        let never_shed = {
            let (c, p) = (core.stats(), core.proxy_stats());
            c.responses_in
                .saturating_add(c.dropped)
                .saturating_add(p.acks_absorbed)
                .saturating_add(p.acks_forwarded)
        };
        let read = engine
            .stats()
            .datagrams_in
            .saturating_sub(stale)
            .saturating_sub(never_shed);
        let flow = || {
            let shed = shed_fds.iter().fold(0u64, |n, &fd| {
                let s = bans.kernel_shed(fd);
                n.saturating_add(s.options)
                    .saturating_add(s.register)
                    .saturating_add(s.invite)
            });
            (read, shed.saturating_add(stale))
        };
        if let Some(level) =
            pressure.end_turn_with(Instant::now(), turn, &|fd| bans.filter_drops(fd), &flow)
        {
            core.handle_pressure(level);
            tracing::info!(target: "sip::overload", level, turn_ms = worked.as_millis() as u64, turn_cpu_ms = turn.cpu.as_millis() as u64, queue_percent = pressure.sample.queue_percent, kernel_drops = pressure.sample.kernel_drops, "shard pressure level changed");
        }
        kernel_shed.after_turn(&pressure, &bans, &metrics.protect);
        core.handle_kernel_shed(kernel_shed.active());
        metrics
            .protect
            .publish(&core.protect_stats(), &pressure.sample);
        let longest = turns.longest();
        turns.record(worked);
        if worked > longest && worked >= SLOW_TURN {
            tracing::warn!(
                turn_ms = worked.as_millis() as u64,
                turn_cpu_ms = turn.cpu.as_millis() as u64,
                journal_ms = journal_time.as_millis() as u64,
                bindings = core.binding_count(),
                "slowest shard loop turn so far"
            );
        }
        metrics.turns.publish(&turns);
    }
    if let Err(e) = engine.flush() {
        tracing::warn!(error = %e, "final flush failed");
    }
    if let Some(p) = persist {
        p.shutdown(&mut core);
    }
    if let Some(cause) = failure {
        tracing::error!(shard = id, cause, "shard failed");
        return Err(cause);
    }
    tracing::info!("shard stopped");
    Ok(())
}

/// Where the core's Transmits go: the UDP engine, or a stream connection.
struct Outputs<'a> {
    engine: &'a mut Engine,
    /// LocalId → engine socket; `None`: a stream listener.
    udp_index: &'a [Option<usize>],
    streams: Option<&'a mut ShardStreams>,
}

/// Moves every output of the core to the engine, the streams and the mesh.
fn drain(
    core: &mut Core,
    now: Millis,
    out: Outputs<'_>,
    mesh: &mut MeshEndpoint<Wire>,
    lp: &mut LoopStats,
    bans: &crate::bans::BanRegistry,
) {
    while let Some((to, msg)) = core.poll_shard_msg() {
        // A full queue is counted by the mesh; the message is dropped, never waited for,
        // and handed back so the core can end what waited for it (issue 13).
        if let Err(Wire::Core(msg)) = mesh.send(to.0 as usize, Wire::Core(msg)) {
            core.handle_undelivered(now, to, msg);
        }
    }
    // After the mesh: a hand-off the mesh refused may have produced a reply.
    let Outputs {
        engine,
        udp_index,
        mut streams,
    } = out;
    while let Some(t) = core.poll_transmit() {
        match udp_index.get(usize::from(t.local.0)).copied().flatten() {
            Some(socket) => {
                if !engine.send(socket, t.remote, t.data) {
                    lp.send_drops += 1;
                }
            }
            None => match streams.as_deref_mut() {
                Some(s) if s.serves(t.local.0) => s.send(now, t.local.0, t.remote, t.data, mesh),
                _ => lp.send_drops += 1,
            },
        }
    }
    // Binding-change records were taken by the journal before `drain`; without a journal
    // (`CoreConfig::journal` off) none are produced.
    while let Some(ev) = core.poll_event() {
        match ev {
            CoreEvent::Malformed {
                remote,
                kind,
                at,
                answered,
            } => {
                // Per packet: rate-limited (`[log] max_per_second`).
                crate::logging::limited!(debug, target: "sip::parse", %remote, kind = kind.label(), at, answered, "malformed message")
            }
            CoreEvent::PingTimeout { source, misses } => {
                crate::logging::limited!(info, target: "sip::nat", %source, misses, "binding deregistered: keepalives unanswered")
            }
            CoreEvent::Banned { ip, until, reason } => {
                if bans.record(ip, until, reason) {
                    let secs = until.0.saturating_sub(now.0) / 1000;
                    tracing::info!(target: "sip::protect", %ip, reason = reason.label(), secs, "source banned");
                }
            }
        }
    }
}

/// Applies the shared ban list's changes to the core (issue 17); true if there were any.
fn sync_bans(
    core: &mut Core,
    bans: &crate::bans::BanRegistry,
    cursor: &mut crate::bans::BanCursor,
    now: Millis,
) -> bool {
    use crate::bans::BanChange;
    let mut any = false;
    bans.sync(cursor, |c| {
        any = true;
        match c {
            BanChange::Ban(ip, until) => core.handle_ban(now, ip, until),
            BanChange::Unban(ip) => core.handle_unban(ip),
            BanChange::Reset => core.handle_unban_all(),
        }
    });
    any
}
