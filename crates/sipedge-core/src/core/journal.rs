//! Durability, core side: binding-change records out ([`Core::poll_journal`]), snapshots
//! ([`Core::for_each_binding_record`]) and start-up replay ([`Core::restore_record`]).
//! The file I/O (framing, CRC, fsync, snapshots on disk) belongs to the shell and the
//! journal crate; the encoding is in `record`.
//!
//! **Wall clock.** Records carry expiry and registration times as absolute UNIX
//! milliseconds, so a restart (whose monotonic clock starts again) can tell what expired
//! while it was down. The core has no clock: the shell calls [`Core::set_wall_clock`] with
//! a monotonic `now` and the UNIX time at that instant, once before restoring or handling
//! traffic and then whenever it likes (every turn is fine; it is two stores). Until it
//! does, records use an offset of 0 and the 200 OK carries no Date.
//!
//! **What is journalled**: every binding created, refreshed or removed by a REGISTER
//! (including evictions by `overflow = "replace_oldest"`). Expiry is not journalled: the
//! upsert already carries the expiry, and restore skips what has expired.

use std::net::SocketAddr;

use sipedge_msg::Uri;

use crate::aor::{owner_of, split_aor};
use crate::bindings::same_binding;
use crate::core::Core;
use crate::location::{BindingData, BindingRef, NONE};
use crate::output::LocalId;
use crate::record::{decode, encode_upsert, Record, RestoreError, Upsert};
use crate::shard::ShardId;
use crate::time::Millis;

/// Where an incremental snapshot ([`Core::binding_records_step`]) has got to, with its
/// reused buffers. A fresh one starts at the first slot.
#[derive(Debug, Default)]
pub struct SnapshotCursor {
    slot: usize,
    aor: Vec<u8>,
    rec: Vec<u8>,
}

impl SnapshotCursor {
    /// Slots visited so far.
    pub fn slots_visited(&self) -> usize {
        self.slot
    }
}

/// A binding a surviving edge adopts from a dead one (issue 20, `[cluster] takeover`): what
/// the cluster store shares of it, plus the listen socket it is now served on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdoptedBinding<'a> {
    /// Canonical AoR (`scheme:user@host`).
    pub aor: &'a [u8],
    /// The Contact URI as registered.
    pub contact: &'a [u8],
    /// Call-ID of the REGISTER (empty when the store had none).
    pub call_id: &'a [u8],
    /// `+sip.instance` and `reg-id` (RFC 5626), empty / 0 when none.
    pub instance: &'a [u8],
    pub reg_id: u32,
    /// The Path (RFC 3327), empty when none.
    pub path: &'a [u8],
    /// CSeq of the REGISTER (RFC 3261 §10.3 step 7).
    pub cseq: u32,
    /// `q` × 1000, `None` when absent.
    pub q: Option<u16>,
    /// Expiry, and the version the adoption is written with (at least the stored
    /// registration time: later than anything the dead edge wrote), UNIX ms.
    pub expires_unix_ms: u64,
    pub registered_unix_ms: u64,
    /// The phone's NAT source address (requests and pings go there).
    pub source: SocketAddr,
    /// The listen socket (UDP) the binding is served on from now on.
    pub local: LocalId,
}

impl Core {
    /// Adopts a dead edge's binding (issue 20 item 5, `[cluster] takeover = true`): stores it
    /// as if restored (UDP flow on `b.local` to `b.source`; NAT pings per `[nat]` as for a
    /// restored binding) and journals it like a REGISTER would, so the journal and the
    /// cluster write-behind record it as this node's. True when stored; false when it had
    /// already expired. Counted in `CoreStats::restored` / `restore_expired` too.
    pub fn adopt_binding(
        &mut self,
        now: Millis,
        b: &AdoptedBinding<'_>,
    ) -> Result<bool, RestoreError> {
        let u = Upsert {
            aor: b.aor,
            contact: b.contact,
            call_id: b.call_id,
            instance: b.instance,
            path: b.path,
            user_agent: b"",
            cseq: b.cseq,
            reg_id: b.reg_id,
            q: b.q,
            expires_unix_ms: b.expires_unix_ms,
            registered_unix_ms: b.registered_unix_ms.min(b.expires_unix_ms),
            source: b.source,
            local: b.local.0,
            transport: crate::location::Transport::Udp,
            arrival: self.io.cfg.shard.0,
            branch: 0,
            // Possibly in Redis already (the dead edge wrote it): through the thinner.
            created: false,
        };
        let mut rec = Vec::new();
        encode_upsert(&mut rec, &u);
        let before = self.io.stats.restore_expired;
        self.restore_record(now, &rec)?;
        if self.io.stats.restore_expired != before {
            return Ok(false);
        }
        if self.io.cfg.journal {
            let mut q = std::mem::take(&mut self.io.journal);
            q.push_with(|out| out.extend_from_slice(&rec));
            self.io.journal = q;
        }
        Ok(true)
    }

    /// Tells the core that the monotonic instant `now` is `unix_ms` milliseconds after the
    /// UNIX epoch (wall clock). See the module docs.
    pub fn set_wall_clock(&mut self, now: Millis, unix_ms: u64) {
        self.io.wall_offset_ms = Some(unix_ms as i64 - now.0 as i64);
    }

    /// The next binding-change record, in the order the changes happened; the borrow ends
    /// at the next call. Empty unless `CoreConfig::journal` is set.
    pub fn poll_journal(&mut self) -> Option<&[u8]> {
        self.io.journal.pop()
    }

    /// Records waiting in [`Core::poll_journal`].
    pub fn pending_journal(&self) -> usize {
        self.io.journal.len()
    }

    /// Calls `f` with an upsert record for every current binding (a snapshot).
    pub fn for_each_binding_record(&self, mut f: impl FnMut(&[u8])) {
        let mut aor = Vec::new();
        let mut rec = Vec::new();
        for head in self.loc.heads() {
            self.loc.aor_of(self.loc.get(head), &mut aor);
            for i in self.loc.chain(head) {
                rec.clear();
                encode_upsert(&mut rec, &self.upsert_of(&aor, self.loc.get(i)));
                f(&rec);
            }
        }
    }

    /// One step of an incremental snapshot: calls `f` with an upsert record for every
    /// binding in the next `max_slots` slots of the table from `cursor`, and returns true
    /// once the cursor has passed the last slot. A shard spreads a snapshot of millions of
    /// bindings over many turns with it, so no turn stalls (a one-call snapshot of 1.9 M
    /// bindings took 5.5 s on the shard thread; PERFORMANCE.md, "Stalls while the table
    /// grows").
    ///
    /// Bindings change between the steps; the snapshot stays right when it is followed, at
    /// replay, by every record journalled since it began (the journal rotates at its start):
    /// a binding never moves to another slot while it lives, so one live at the start and
    /// untouched since is emitted exactly once, in its state at the start; one changed,
    /// removed or added since has that change in the later journal, and records are whole
    /// states replayed in order (later ones win, a removal of an absent binding does
    /// nothing), so whatever state the snapshot caught is overwritten by the right one.
    /// What expired meanwhile is not emitted, as restore would skip it anyway. Contacts of
    /// one AoR come out in slot order, which a restore may list in another order than
    /// registration order.
    pub fn binding_records_step(
        &self,
        cursor: &mut SnapshotCursor,
        max_slots: usize,
        mut f: impl FnMut(&[u8]),
    ) -> bool {
        let end = self
            .loc
            .capacity()
            .min(cursor.slot.saturating_add(max_slots));
        while cursor.slot < end {
            if let Some(b) = self.loc.slot(cursor.slot as u32) {
                self.loc.aor_of(b, &mut cursor.aor);
                cursor.rec.clear();
                encode_upsert(&mut cursor.rec, &self.upsert_of(&cursor.aor, b));
                f(&cursor.rec);
            }
            cursor.slot += 1;
        }
        cursor.slot >= self.loc.capacity()
    }

    /// Applies one record at start-up: an upsert adds or replaces its binding (later
    /// records win), a removal removes it; an upsert that has already expired removes any
    /// earlier version and is counted in `CoreStats::restore_expired`. Expiry is scheduled
    /// on the wheel. Nothing is journalled. Call [`Core::set_wall_clock`] first.
    pub fn restore_record(&mut self, now: Millis, rec: &[u8]) -> Result<(), RestoreError> {
        let record = decode(rec)?;
        let aor = record.aor();
        let owner = owner_of(aor, self.io.cfg.shards);
        if owner != self.io.cfg.shard {
            return Err(RestoreError::NotOwner(owner));
        }
        if !Uri::parse(aor).is_ok_and(|u| u.is_sip()) {
            return Err(RestoreError::Malformed);
        }
        let (domain, user) = split_aor(aor);
        let head = self.loc.head(self.loc.domain_id(domain), user);
        match record {
            Record::Remove {
                contact,
                instance,
                reg_id,
                ..
            } => {
                let uri = Uri::parse(contact).map_err(|_| RestoreError::Malformed)?;
                if let Some(i) = self.find_binding(head, &uri, instance, reg_id) {
                    self.loc.remove(head, i);
                }
                Ok(())
            }
            Record::Upsert(u) => {
                let uri = Uri::parse(u.contact).map_err(|_| RestoreError::Malformed)?;
                let existing = self.find_binding(head, &uri, u.instance, u.reg_id);
                let expires_at = self.io.mono_of_unix(u.expires_unix_ms);
                if expires_at <= now {
                    if let Some(i) = existing {
                        self.loc.remove(head, i);
                    }
                    self.io.stats.restore_expired += 1;
                    return Ok(());
                }
                let d = BindingData {
                    contact: u.contact,
                    call_id: u.call_id,
                    instance: u.instance,
                    path: u.path,
                    user_agent: u.user_agent,
                    cseq: u.cseq,
                    reg_id: u.reg_id,
                    q: u.q,
                    expires_at,
                    granted_secs: (u.expires_unix_ms.saturating_sub(u.registered_unix_ms) / 1000)
                        .min(u64::from(u32::MAX)) as u32,
                    source: u.source,
                    local: LocalId(u.local),
                    transport: u.transport,
                    arrival: ShardId(u.arrival),
                    branch: u.branch,
                };
                let (idx, _) =
                    self.store()
                        .store_binding(domain, user, head, existing.unwrap_or(NONE), &d);
                self.pinger().nat_on_restore(idx, aor);
                self.io.stats.restored += 1;
                Ok(())
            }
        }
    }

    fn find_binding(&self, head: u32, uri: &Uri<'_>, instance: &[u8], reg_id: u32) -> Option<u32> {
        self.loc
            .chain(head)
            .find(|&i| same_binding(self.loc.get(i), uri, instance, reg_id))
    }

    fn upsert_of<'a>(&'a self, aor: &'a [u8], b: BindingRef<'a>) -> Upsert<'a> {
        Upsert {
            aor,
            contact: b.contact(),
            call_id: b.call_id(),
            instance: b.instance(),
            path: b.path(),
            user_agent: self.loc.strings.get(b.ua),
            cseq: b.cseq,
            reg_id: b.reg_id,
            q: b.q(),
            expires_unix_ms: self.io.unix_of(b.expires_at),
            registered_unix_ms: self.io.unix_of(b.registered_at()),
            source: b.source(),
            local: b.local,
            transport: b.transport(),
            arrival: b.arrival,
            branch: b.branch,
            created: false,
        }
    }
}
