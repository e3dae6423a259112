//! The kernel shed share's way to the eBPF filter (issue 17 item 6): the shard's
//! [`Pressure`] meter decides the share, this writes it to the filter of each socket and
//! reads the filter's counts back for the metrics.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::overload::Pressure;

/// Writes the meter's kernel shed share to the filter when it changes and reads the
/// filter's shed counts back for the metrics (every [`SHED_READ_EVERY`] while shedding).
#[derive(Debug)]
pub struct KernelShedWriter {
    fds: Vec<RawFd>,
    written: u64,
    /// A kernel filter took the last share written.
    attached: bool,
    /// The filter may have shed since the counts were last read.
    unread: bool,
    last_read: Option<Instant>,
}

/// The kernel shed counters are read at most this often (one bpf call per socket).
const SHED_READ_EVERY: Duration = Duration::from_millis(100);

impl KernelShedWriter {
    /// For the shard's sockets `fds`.
    pub fn new(fds: Vec<RawFd>) -> KernelShedWriter {
        KernelShedWriter {
            fds,
            written: 0,
            attached: false,
            unread: false,
            last_read: None,
        }
    }

    /// The filter is shedding OPTIONS/REGISTER/new INVITEs by a share now (a share was written to an
    /// attached filter).
    pub fn active(&self) -> bool {
        self.written != 0 && self.attached
    }

    /// After each turn: writes a changed share, publishes the counts.
    pub fn after_turn(
        &mut self,
        p: &Pressure,
        bans: &crate::bans::BanRegistry,
        metrics: &crate::metrics_protect::ProtectMetrics,
    ) {
        let share = p.kernel_shed_share();
        if share != self.written {
            for &fd in &self.fds {
                bans.set_kernel_shed(fd, share);
            }
            self.written = share;
            self.attached = bans.has_filter();
            self.unread = true;
            metrics.publish_kernel_shed_share(share);
        }
        self.unread |= share != 0;
        let now = Instant::now();
        let due = self
            .last_read
            .is_none_or(|t| now.saturating_duration_since(t) >= SHED_READ_EVERY);
        // Read while shedding and once after (the last counts), never when calm.
        if due && self.unread {
            self.last_read = Some(now);
            let mut total = sipedge_rt::KernelShed::default();
            for &fd in &self.fds {
                let s = bans.kernel_shed(fd);
                total.options = total.options.saturating_add(s.options);
                total.register = total.register.saturating_add(s.register);
                total.invite = total.invite.saturating_add(s.invite);
            }
            metrics.publish_kernel_shed(total);
            self.unread = share != 0;
        }
    }
}
