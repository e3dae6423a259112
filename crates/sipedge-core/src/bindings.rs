//! The location store's operations that keep the rest of the shard right: a binding stored
//! or removed arms its expiry timer on the wheel and queues its journal record ([`Store`],
//! a view of the store and the sink), and the binding expiry timer (ARCHITECTURE.md §4).
//! A binding's flow failing or coming back (RFC 5626 §5.3) is recorded here too
//! ([`Store::flow_failed`], [`Store::flow_alive`]; an Outbound binding that goes takes its
//! flow with it), in the location's table of failed flows (`flows`), and told to the other
//! shards. Shared by the registrar, the pinger and the durability API; names no subsystem.

use std::net::SocketAddr;

use sipedge_msg::Uri;
use sipedge_wheel::Tick;

use crate::aor::{same_contact, DomainKey};
use crate::io::Io;
use crate::location::{BindingData, BindingRef, Location, MAX_USER_AGENT_BYTES, NONE};
use crate::output::LocalId;
use crate::record::{encode_remove, encode_upsert, Upsert};
use crate::shard::{ShardId, ShardMsg};
use crate::time::Millis;

/// Length of a wheel tick for binding expiry, milliseconds.
pub(crate) const TICK_MILLIS: u64 = sipedge_wheel::DEFAULT_TICK_MILLIS;

/// The wheel tick at or after `at` (a timer never fires before its deadline).
pub(crate) fn tick_at_or_after(at: Millis) -> Tick {
    Tick(at.0.div_ceil(TICK_MILLIS))
}

/// The timer key of binding slot `idx` at generation `gen`.
pub(crate) fn timer_key(idx: u32, gen: u32) -> u64 {
    u64::from(idx) << 32 | u64::from(gen)
}

/// RFC 5626 §6 / RFC 3261 §10.3 step 7: does the stored binding `b` stand for the contact
/// `(uri, instance, reg_id)`?
pub(crate) fn same_binding(b: BindingRef<'_>, uri: &Uri<'_>, instance: &[u8], reg_id: u32) -> bool {
    if !instance.is_empty() {
        return b.instance() == instance && b.reg_id == reg_id;
    }
    b.instance().is_empty()
        && b.reg_id == 0
        // Byte-equal URIs are equal (the refresh of a phone); else compare by §19.1.4.
        && (b.contact() == uri.raw() || Uri::parse(b.contact()).is_ok_and(|u| same_contact(&u, uri)))
}

impl Location {
    /// Writes the canonical AoR of `b` into `out`.
    pub(crate) fn aor_of(&self, b: BindingRef<'_>, out: &mut Vec<u8>) {
        out.clear();
        let domain = self.domain_of(&b);
        let colon = domain.iter().position(|&c| c == b':').unwrap_or(0);
        out.extend_from_slice(&domain[..=colon.min(domain.len().saturating_sub(1))]);
        if !b.user().is_empty() {
            out.extend_from_slice(b.user());
            out.push(b'@');
        }
        out.extend_from_slice(&domain[(colon + 1).min(domain.len())..]);
    }
}

/// The store and the sink, lent together: what changes a binding also arms its timer and
/// journals it.
pub(crate) struct Store<'a> {
    pub(crate) io: &'a mut Io,
    pub(crate) loc: &'a mut Location,
}

impl Store<'_> {
    /// Refreshes binding `existing`, or adds one to the AoR (first binding `head`, or
    /// [`NONE`]) when `existing` is [`NONE`], and keeps its expiry timer right. Returns the
    /// binding and the AoR's head.
    pub(crate) fn store_binding(
        &mut self,
        domain: DomainKey<'_>,
        user: &[u8],
        head: u32,
        existing: u32,
        d: &BindingData<'_>,
    ) -> (u32, u32) {
        if existing != NONE {
            let old = self.loc.raw(existing).expires_at;
            self.loc.update(existing, d);
            if d.expires_at < old {
                // The armed timer is too late now: a new generation, a new timer. (A later
                // expiry keeps the armed timer, which re-arms itself when it fires.)
                let gen = self.loc.bump_gen(existing);
                self.io
                    .wheel
                    .insert(tick_at_or_after(d.expires_at), timer_key(existing, gen));
            }
            (existing, head)
        } else {
            let idx = self.loc.insert(domain, user, head, d);
            let gen = self.loc.get(idx).gen;
            self.io
                .wheel
                .insert(tick_at_or_after(d.expires_at), timer_key(idx, gen));
            (idx, if head == NONE { idx } else { head })
        }
    }

    /// Removes binding `idx` of the AoR (first binding `head`), journals it, returns the
    /// new head.
    pub(crate) fn remove_binding(&mut self, aor: &[u8], head: u32, idx: u32) -> u32 {
        self.outbound_binding_gone(idx); // RFC 5626 §5.3 (`flows`)
        self.journal_remove(aor, idx);
        self.io.stats.bindings_removed += 1;
        self.loc.remove(head, idx)
    }

    /// Binding expiry (ARCHITECTURE.md §4): the wheel fired `key`; a stale generation is
    /// ignored, a binding refreshed since is re-armed at its new expiry, an expired one
    /// goes.
    pub(crate) fn binding_timer(&mut self, now: Millis, key: u64) {
        let (idx, gen) = ((key >> 32) as u32, key as u32);
        let Some(b) = self.loc.live(idx, gen) else {
            return;
        };
        if b.expires_at > now {
            let at = tick_at_or_after(b.expires_at);
            self.io.wheel.insert(at, key);
            return;
        }
        let head = self.loc.head(Some(b.domain), b.user());
        self.outbound_binding_gone(idx); // RFC 5626 §5.3 (`flows`)
        self.loc.remove(head, idx);
        self.io.stats.bindings_expired += 1;
    }

    /// RFC 5626 §5.3: flow `(local, addr)` failed — remembered here and on every other
    /// shard, so a request to it gets 430 wherever it lands (`flows`).
    pub(crate) fn flow_failed(&mut self, local: LocalId, addr: SocketAddr) {
        if self.loc.dead_flows.insert(local, addr) {
            self.tell_shards(local, addr, true);
        }
    }

    /// RFC 5626 §4.2.1: flow `(local, addr)` registered again — forgotten here and on every
    /// other shard (`flows`).
    pub(crate) fn flow_alive(&mut self, local: LocalId, addr: SocketAddr) {
        if self.loc.dead_flows.remove(local, addr) {
            self.tell_shards(local, addr, false);
        }
    }

    /// The registrar accepted an Outbound REGISTER over stream flow `(local, addr)`: the
    /// shard that owns the connection (the one the REGISTER arrived on, `Io::arrival`)
    /// remembers the flow, here or told over the mesh ([`ShardMsg::OutboundFlow`]), and
    /// fails it when the connection closes (RFC 5626 §5.3, `stream_flows`). Only an
    /// accepted REGISTER counts: a client refused at authentication cannot make its closes
    /// fail flows on every shard.
    pub(crate) fn outbound_registered(&mut self, local: LocalId, addr: SocketAddr) {
        if self.io.arrival == self.io.cfg.shard {
            self.loc.outbound_flows.insert(local, addr);
        } else {
            let msg = ShardMsg::OutboundFlow {
                local,
                remote: addr,
            };
            self.io.shard_out.push_back((self.io.arrival, msg));
        }
    }

    /// Binding `idx` is about to go (removed or expired): an Outbound binding (`reg-id`,
    /// or a Contact with `ob`) takes its flow with it (RFC 5626 §5.3).
    fn outbound_binding_gone(&mut self, idx: u32) {
        let b = self.loc.get(idx);
        let outbound =
            b.reg_id != 0 || Uri::parse(b.contact()).is_ok_and(|u| u.params().has(b"ob"));
        if outbound {
            let (local, addr) = (LocalId(b.local), b.source());
            self.flow_failed(local, addr);
        }
    }

    /// [`ShardMsg::FlowFailed`] to every other shard (each keeps the same table).
    fn tell_shards(&mut self, local: LocalId, remote: SocketAddr, failed: bool) {
        for s in 0..self.io.cfg.shards {
            if s != self.io.cfg.shard.0 {
                let msg = ShardMsg::FlowFailed {
                    local,
                    remote,
                    failed,
                };
                self.io.shard_out.push_back((ShardId(s), msg));
            }
        }
    }
    /// Queues an upsert record for the binding of `aor` just stored from `d`, encoded from
    /// `d` itself: the same bytes a snapshot reads back from the table (`upsert_of`), with
    /// the User-Agent cut as the table cuts it and an IPv4-mapped source as the IPv4 address
    /// it is stored as (`tests/bindings.rs` compares the two). `created`: the binding did
    /// not exist before this change (a record of kind 3, `record`).
    pub(crate) fn journal_upsert_data(&mut self, aor: &[u8], d: &BindingData<'_>, created: bool) {
        if !self.io.cfg.journal {
            return;
        }
        let source = match d.source.ip() {
            std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => std::net::SocketAddr::new(v4.into(), d.source.port()),
                None => d.source,
            },
            _ => d.source,
        };
        let registered_at = Millis(
            d.expires_at
                .0
                .saturating_sub(u64::from(d.granted_secs) * 1000),
        );
        let u = Upsert {
            aor,
            contact: d.contact,
            call_id: d.call_id,
            instance: d.instance,
            path: d.path,
            user_agent: &d.user_agent[..d.user_agent.len().min(MAX_USER_AGENT_BYTES)],
            cseq: d.cseq,
            reg_id: d.reg_id,
            q: d.q,
            expires_unix_ms: self.io.unix_of(d.expires_at),
            registered_unix_ms: self.io.unix_of(registered_at),
            source,
            local: d.local.0,
            transport: d.transport,
            arrival: d.arrival.0,
            branch: d.branch,
            created,
        };
        let mut q = std::mem::take(&mut self.io.journal);
        q.push_with(|out| encode_upsert(out, &u));
        self.io.journal = q;
    }

    /// Queues a removal record for binding `idx` of `aor` (before it is removed).
    pub(crate) fn journal_remove(&mut self, aor: &[u8], idx: u32) {
        if !self.io.cfg.journal {
            return;
        }
        let b = self.loc.get(idx);
        let (contact, instance, reg_id) = (b.contact(), b.instance(), b.reg_id);
        let mut q = std::mem::take(&mut self.io.journal);
        q.push_with(|out| encode_remove(out, aor, contact, instance, reg_id));
        self.io.journal = q;
    }
}
