//! A reload of the per-user NAT overrides, on the shard (module docs of `nat`, "Reload"):
//! handed in between turns ([`Core::handle_config`]), applied to the bindings this shard owns of the AoRs whose
//! override changed.

use std::sync::Arc;

use super::{NatMode, NatUserTable, PingMode};

impl super::ping::NatPinger<'_> {
    /// Takes the generation `users` (from [`Core::handle_config`]), when it is not the one
    /// applied, and re-applies it to the bindings of the AoRs it changes.
    pub(crate) fn nat_reload(&mut self, users: &super::NatUsers) {
        let cur = users.table();
        if Arc::ptr_eq(cur, &self.nat.applied) {
            return;
        }
        let cur = Arc::clone(cur);
        self.io.cfg.nat.users = users.clone();
        let old = std::mem::replace(&mut self.nat.applied, Arc::clone(&cur));
        self.nat.active = self.io.cfg.nat.pings_possible(&cur);
        // The table lists what changed since the generation before it; after a skipped
        // generation (two reloads between two turns) the two tables are compared instead.
        let diffed;
        let changed = if cur.generation == old.generation + 1 {
            &cur.changed
        } else {
            diffed = old.diff(&cur);
            &diffed
        };
        for aor in changed {
            self.nat_reapply(&old, aor);
        }
    }

    /// Gives the bindings of `aor` (when this shard owns it) the settings now in force;
    /// `old` is the generation they were made with.
    fn nat_reapply(&mut self, old: &NatUserTable, aor: &[u8]) {
        if crate::aor::owner_of(aor, self.io.cfg.shards) != self.io.cfg.shard {
            return;
        }
        let (old_mode, _) = self.io.cfg.nat.resolve(old, aor);
        let (mode, ping): (NatMode, PingMode) = self.nat_user(aor);
        let (domain, user) = crate::aor::split_aor(aor);
        let mut cur = self.loc.head(self.loc.domain_id(domain), user);
        while cur != crate::location::NONE {
            let next = self.loc.get(cur).next;
            let nated = match mode {
                NatMode::Force => true,
                NatMode::Disabled => false,
                // Still `auto`: what the REGISTER detected (Via included) stands.
                NatMode::Auto if old_mode == NatMode::Auto => self.loc.nat_mut(cur).nated(),
                NatMode::Auto => self.nated_by_record(cur),
            };
            self.loc.set_nat(cur, nated, ping);
            cur = next;
        }
    }
}
