//! The pinger's public hooks on [`Core`] (thin glue: `nat` does the work).

use std::net::SocketAddr;

use crate::core::Core;
use crate::nat::{NatMode, NatPinger, PingMode};
use crate::time::Millis;

impl Core {
    /// The pinger, lent the store and the sink.
    pub(crate) fn pinger(&mut self) -> NatPinger<'_> {
        NatPinger {
            io: &mut self.io,
            loc: &mut self.loc,
            nat: &mut self.nat,
        }
    }

    /// The user's NAT overrides (by canonical AoR) resolved against `[nat]`: the hook the
    /// `[[users]]` settings arrive through ([`super::NatConfig::users`]).
    /// The generation this shard applied is read (no atomic operation): a reload takes
    /// effect at the shard's next `handle_timeout`, for new REGISTERs and stored bindings
    /// alike.
    pub fn nat_user(&self, aor: &[u8]) -> (NatMode, PingMode) {
        self.io.cfg.nat.resolve(&self.nat.applied, aor)
    }

    /// Hook for the relay: a request or response from `source` was seen for the AoR
    /// `aor_uri` (owned by this shard). Every binding of the AoR registered from `source`
    /// counts as alive (no miss at its next ping). Returns how many matched.
    pub fn note_alive(&mut self, aor_uri: &[u8], source: SocketAddr) -> usize {
        self.pinger().note_alive(aor_uri, source)
    }

    /// The RTT (ms) at quantile `q` (0.0..=1.0) over every answered ping of this shard.
    pub fn ping_rtt_quantile_ms(&self, q: f64) -> u64 {
        self.nat.rtt_quantile_ms(q)
    }

    /// When the pinger wants `handle_timeout` (`nat`).
    pub(crate) fn nat_poll_timeout(&self) -> Option<Millis> {
        self.nat.poll_timeout(self.loc.pinging(), &self.io.cfg.nat)
    }
}
