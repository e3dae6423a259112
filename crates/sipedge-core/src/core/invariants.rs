//! Internal consistency checks of one shard's state, for the fuzzer (`fuzz/`, target
//! `core_seq`) and the seeded simulation tests (`tests/sim_*.rs`).
//!
//! [`Core::check_invariants`] walks every table of the shard — O(state), never for the data
//! path — and names the first broken rule. Call it between steps, once every mesh message
//! of the step has been delivered (a cell waiting for a lookup reply has no timer of its own
//! while the reply is in flight).
//!
//! | table | rules |
//! | --- | --- |
//! | location | every live binding has an expiry timer armed at or before its expiry; every AoR chain ends (no loop, at most `len()` steps); every member is live, of the head's AoR; the index finds each head; chains sum to `len()`; live slots count to `len()`; no AoR above `max_contacts`; the keepalive counts (`pinging`) match the bindings' NAT states |
//! | transactions | live cells count to `len()`; each has at most `max(1, max_contacts)` branches and stored messages no longer than `max_message_bytes` (plus room for our Via, Record-Route and edits); each has an armed timer naming its slot and generation, unless it waits for a lookup reply |
//! | queues | pending events within their cap |

use std::collections::{HashMap, HashSet};

use crate::bindings::tick_at_or_after;
use crate::core::Core;
use crate::location::NONE;
use crate::txn::{decode_timer_key, GEN_MASK, TXN_TIMER_BIT};

/// What our edits may add to a stored message beyond `max_message_bytes`: our Via, a
/// Record-Route, a rewritten Request-URI and Route, a Content-Length (bytes).
const EDIT_ROOM: usize = 8 * 1024;

impl Core {
    /// Checks the shard's tables against each other (see the module docs); `Err` names the
    /// first rule broken. Not for the data path: it walks every table.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_location()?;
        self.check_transactions()?;
        if self.io.events.len() > crate::io::MAX_PENDING_EVENTS {
            return Err(format!("{} events pending", self.io.events.len()));
        }
        Ok(())
    }

    fn check_location(&self) -> Result<(), String> {
        let loc = &self.loc;
        let len = loc.len();
        let max_contacts = usize::from(self.io.cfg.registrar.max_contacts).max(1);
        let mut in_chains = 0usize;
        let mut seen = HashSet::new();
        for head in loc.heads() {
            let h = loc
                .slot(head)
                .ok_or_else(|| format!("index names slot {head}, which is not live"))?;
            let (domain, user) = (h.domain, h.user().to_vec());
            if loc.head(Some(domain), &user) != head {
                return Err(format!("the index does not find the AoR of head {head}"));
            }
            let mut steps = 0usize;
            let mut cur = head;
            while cur != NONE {
                steps += 1;
                if steps > len || !seen.insert(cur) {
                    return Err(format!(
                        "the chain of head {head} loops or is shared (slot {cur} seen twice, \
                         {steps} steps, {len} bindings)"
                    ));
                }
                let b = loc
                    .slot(cur)
                    .ok_or_else(|| format!("chain of head {head} reaches free slot {cur}"))?;
                if b.domain != domain || b.user() != user.as_slice() {
                    return Err(format!("slot {cur} is in the chain of another AoR"));
                }
                cur = b.next;
            }
            if steps > max_contacts {
                return Err(format!(
                    "AoR of head {head} has {steps} bindings, max_contacts is {max_contacts}"
                ));
            }
            in_chains += steps;
        }
        if in_chains != len {
            return Err(format!(
                "chains hold {in_chains} bindings, len() says {len}"
            ));
        }
        // Binding expiry timers: key `slot << 32 | gen` → the earliest deadline armed.
        let mut expiry: HashMap<u64, u64> = HashMap::new();
        self.io.wheel.for_each_armed(|at, &key| {
            if key & TXN_TIMER_BIT == 0 {
                let e = expiry.entry(key).or_insert(at.0);
                *e = (*e).min(at.0);
            }
        });
        let mut live = 0usize;
        let mut pinging = [0usize; 2];
        for idx in 0..loc.capacity() {
            if let Some(b) = loc.slot(idx as u32) {
                live += 1;
                if let Some(k) = b.nat.ping_class() {
                    pinging[k] += 1;
                }
                let due = tick_at_or_after(b.expires_at).0;
                let key = crate::bindings::timer_key(idx as u32, b.gen);
                if expiry.get(&key).is_none_or(|&at| at > due) {
                    return Err(format!(
                        "binding {idx} (gen {}) expires at tick {due} with no expiry timer armed \
                         by then: it outlives its expiry",
                        b.gen
                    ));
                }
            }
        }
        if live != len {
            return Err(format!("{live} live slots, len() says {len}"));
        }
        if pinging != loc.pinging() {
            return Err(format!(
                "pinging counts {:?}, bindings say {pinging:?}",
                loc.pinging()
            ));
        }
        Ok(())
    }

    fn check_transactions(&self) -> Result<(), String> {
        let txns = &self.relay.txns;
        let mut armed = HashSet::new();
        self.io.wheel.for_each_armed(|_, &key| {
            if key & TXN_TIMER_BIT != 0 {
                if let Some((_, idx, gen, _)) = decode_timer_key(key) {
                    armed.insert((idx, gen));
                }
            }
        });
        let max_branches = usize::from(self.io.cfg.registrar.max_contacts).max(1);
        let max_bytes = self.io.cfg.parse.max_message_bytes + EDIT_ROOM;
        let mut live = 0usize;
        let mut remote = 0usize;
        for (idx, c) in txns.live_cells() {
            live += 1;
            if c.lookup_pending && c.remote {
                // Issue 20: a cell waiting for the cluster has its timer (no leak).
                remote += 1;
                if !armed.contains(&(idx, c.gen & GEN_MASK)) {
                    return Err(format!(
                        "cell {idx} waits for a remote lookup with no timer"
                    ));
                }
            }
            if c.branches.len() > max_branches {
                return Err(format!(
                    "cell {idx} has {} branches (max_contacts {max_branches})",
                    c.branches.len()
                ));
            }
            for (what, buf) in [
                ("request", &c.req),
                ("response", &c.resp),
                ("best", &c.best),
            ] {
                if buf.len() > max_bytes {
                    return Err(format!("cell {idx} stores a {}-byte {what}", buf.len()));
                }
            }
            if !c.lookup_pending && !armed.contains(&(idx, c.gen & GEN_MASK)) {
                return Err(format!(
                    "cell {idx} (state {:?}, branches {:?}) is live with no timer: it never \
                     leaves the table",
                    c.state(),
                    c.branches.iter().map(|b| b.state()).collect::<Vec<_>>()
                ));
            }
        }
        if remote != self.relay.remote.pending {
            return Err(format!(
                "{remote} cells wait for a remote lookup, the count says {}",
                self.relay.remote.pending
            ));
        }
        if live != txns.len() {
            return Err(format!("{live} live cells, len() says {}", txns.len()));
        }
        // Every state change took an edge of its machine (`txn::state`, `txn/LIFECYCLE.md`).
        let illegal = txns.illegal_edges();
        if illegal != 0 {
            return Err(format!("{illegal} illegal transaction state edges taken"));
        }
        Ok(())
    }
}
