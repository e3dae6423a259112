//! The shard's slice of the location table: AoR → contact bindings, in a compact layout.
//!
//! **Layout** (measured by `examples/location_memory.rs`, see PERFORMANCE.md):
//!
//! * Every binding is one fixed 72-byte [`Binding`] in a chunked slab (chunks of
//!   [`CHUNK`] entries: growth never copies, indices stay stable) plus **one** block of
//!   the byte arena ([`Blobs`], 4-byte handle, 8-byte granularity) holding its variable
//!   strings back to back: the AoR's user part, the contact URI, the Call-ID, the
//!   `+sip.instance`, the Path and, for IPv6 sources, the address. Lengths live in the
//!   fixed part; nothing else is allocated per binding. When the contact is
//!   `sip:user@…` with the AoR's own user (most phones), the user is not stored twice.
//! * The AoR's domain (`scheme:host`) and the User-Agent are **interned** with reference
//!   counts ([`Interner`]): a million phones of one domain and a handful of models store
//!   each string once.
//! * The AoR index ([`AorIndex`]) maps each AoR to its first binding (4 bytes per AoR
//!   plus control bytes), in 256 `hashbrown::HashTable<u32>` parts so that its growth never
//!   rehashes more than 1/256 of it in one turn; the bindings of one AoR are chained through
//!   `Binding::next`. The key (domain id, user) is read back from the binding, so the index
//!   stores no key.
//! * A slot's `gen` counts its removals and early reschedules; the expiry timer's key is
//!   `(index, gen)` so a stale timer is recognised when it fires (no wheel search).

use crate::aor::{DomainKey, TableHasher};

mod aor_index;
mod binding;
mod blobs;
mod interner;
pub(crate) mod nat_bits;

use self::aor_index::AorIndex;
pub use self::binding::Transport;
pub(crate) use self::binding::*;
use self::blobs::Blobs;
pub(crate) use self::interner::{Interner, MAX_FIELD_BYTES};

/// String bytes faulted in per expected binding by [`Location::prefault`]: a phone's
/// contact URI (60–90 B), Call-ID (30–45 B) and, for RFC 5626 phones, its 47-byte
/// `+sip.instance` average about this.
const PREFAULT_BLOB_BYTES: usize = 128;

/// The location table of one shard.
#[derive(Debug)]
pub(crate) struct Location {
    hasher: TableHasher,
    /// AoR → its first binding.
    index: AorIndex,
    chunks: Vec<Box<[Binding]>>,
    free: Vec<u32>,
    blobs: Blobs,
    pub(crate) strings: Interner,
    bindings: usize,
    /// One past the highest slot index ever handed out ([`Self::capacity`]).
    high_water: usize,
    /// The last domain looked up (`scheme:host`) and its id: most REGISTERs of a shard name
    /// the same domain. [`NONE`] when empty.
    domain_cache: (u32, Vec<u8>),
    /// Bindings with keepalives on, `[not NATed, NATed]` (the pinger sleeps at zero).
    pinging: [usize; 2],
    /// Flows known to have failed: requests to them get 430 (RFC 5626 §5.3; `flows`).
    /// Bounded ([`crate::flows::DEAD_FLOW_CAP`]).
    pub(crate) dead_flows: crate::flows::DeadFlows,
    /// Outbound flows of this shard's stream connections (issue 19, `stream_flows`).
    pub(crate) outbound_flows: crate::flows::OutboundFlows,
}

impl Location {
    /// An empty table whose index holds `expected_aors` before it grows (0: on demand).
    pub(crate) fn new(seed: u64, expected_aors: usize) -> Location {
        Location {
            hasher: TableHasher::new(seed),
            index: AorIndex::with_capacity(expected_aors),
            chunks: Vec::new(),
            free: Vec::new(),
            blobs: Blobs::default(),
            strings: Interner::new(),
            bindings: 0,
            high_water: 0,
            domain_cache: (NONE, Vec::new()),
            pinging: [0; 2],
            dead_flows: crate::flows::DeadFlows::default(),
            outbound_flows: crate::flows::OutboundFlows::default(),
        }
    }

    /// `[registrar] prefault`: allocates and writes, now, the records and string storage of
    /// `expected` bindings, so a registration storm pays no first-touch page faults for
    /// them (measured on the overload rig: −13 % server CPU per new binding, and fewer
    /// requests gone stale behind a 2 MiB fault). Indices are handed out in the same order
    /// as without it.
    pub(crate) fn prefault(&mut self, expected: usize) {
        if !self.chunks.is_empty() {
            return; // a new table only
        }
        let chunks = expected.div_ceil(CHUNK);
        self.chunks.reserve(chunks);
        for _ in 0..chunks {
            self.chunks
                .push((0..CHUNK).map(|_| Binding::vacant()).collect());
        }
        // Popped from the end: the lowest index first, as `insert` hands them out.
        self.free.reserve(chunks * CHUNK);
        self.free
            .extend((0..chunks * CHUNK).rev().map(|i| i as u32));
        self.blobs
            .prefault(expected.saturating_mul(PREFAULT_BLOB_BYTES));
    }

    /// The table's seeded hasher.
    pub(crate) fn hasher(&self) -> &TableHasher {
        &self.hasher
    }

    /// A seeded 32-bit hash of `bytes` (the table's hasher).
    pub(crate) fn hash32(&self, bytes: &[u8]) -> u32 {
        self.hasher.hash(&[bytes]) as u32
    }

    /// Number of live bindings.
    pub(crate) fn len(&self) -> usize {
        self.bindings
    }

    /// Number of AoRs with at least one binding.
    pub(crate) fn aors(&self) -> usize {
        self.index.len()
    }

    /// Binding `idx` with its strings.
    pub(crate) fn get(&self, idx: u32) -> BindingRef<'_> {
        let b = self.raw(idx);
        BindingRef {
            b,
            blob: self.blobs.get(b.blob, b.blob_len()),
        }
    }

    /// The fixed part of binding `idx` (no strings: cheaper than [`Location::get`]).
    pub(crate) fn raw(&self, idx: u32) -> &Binding {
        &self.chunks[idx as usize / CHUNK][idx as usize % CHUNK]
    }

    fn get_mut(&mut self, idx: u32) -> &mut Binding {
        &mut self.chunks[idx as usize / CHUNK][idx as usize % CHUNK]
    }

    /// The slot `idx` if it holds a binding with generation `gen`.
    pub(crate) fn live(&self, idx: u32, gen: u32) -> Option<BindingRef<'_>> {
        let b = self
            .chunks
            .get(idx as usize / CHUNK)?
            .get(idx as usize % CHUNK)?;
        (b.is_live() && b.gen == gen).then(|| self.get(idx))
    }

    /// Slots handed out at least once: every binding's index is below it, so the
    /// keepalive sweep, the admin listing and the journal snapshot walk `0..capacity` (not
    /// the slots `prefault` made: a million vacant ones would cost the sweep a cache miss
    /// each per interval).
    pub(crate) fn capacity(&self) -> usize {
        self.high_water
    }

    /// Slot `idx` if it holds a binding (any generation).
    pub(crate) fn slot(&self, idx: u32) -> Option<BindingRef<'_>> {
        let b = self
            .chunks
            .get(idx as usize / CHUNK)?
            .get(idx as usize % CHUNK)?;
        b.is_live().then(|| self.get(idx))
    }

    /// Sets the NATed flag and the ping mode of binding `idx`, keeping the counts right.
    pub(crate) fn set_nat(&mut self, idx: u32, nated: bool, mode: self::nat_bits::PingMode) {
        if let Some(k) = self.raw(idx).nat.ping_class() {
            self.pinging[k] -= 1;
        }
        let st = &mut self.get_mut(idx).nat;
        st.set(nated, mode);
        if let Some(k) = st.ping_class() {
            self.pinging[k] += 1;
        }
    }

    /// Bindings with keepalives on: `[not NATed, NATed]`.
    pub(crate) fn pinging(&self) -> [usize; 2] {
        self.pinging
    }

    /// The NAT state of binding `idx` (use [`Location::set_nat`] for the flag and mode).
    pub(crate) fn nat_mut(&mut self, idx: u32) -> &mut self::nat_bits::NatState {
        &mut self.get_mut(idx).nat
    }

    /// The hash of the AoR of the binding `b` (for the index's rehash).
    fn hash_of(hasher: &TableHasher, blobs: &Blobs, b: &Binding) -> u64 {
        let prefix = b.own_user_len() + usize::from(b.contact_len);
        Self::key_hash(hasher, b.domain, user_of(b, blobs.get(b.blob, prefix)))
    }

    /// Writes `user` and the strings of `d` into a fresh arena block for `idx`, freeing
    /// its old block.
    fn set_strings(&mut self, idx: u32, user: &[u8], d: &BindingData<'_>) {
        let v6 = v6_octets(d.source);
        let (old, old_len) = {
            let b = self.raw(idx);
            (b.blob, b.blob_len())
        };
        let shared = user_in_contact(d.contact, user);
        let own_user = if shared { &[][..] } else { user };
        let parts = [own_user, d.contact, d.call_id, d.instance, d.path];
        let total =
            parts.iter().map(|p| p.len()).sum::<usize>() + if v6.is_some() { 16 } else { 0 };
        let h = self.blobs.alloc(total);
        let block = self.blobs.get_mut(h, total);
        let mut at = 0;
        for part in parts {
            block[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        if let Some(o) = v6 {
            block[at..].copy_from_slice(&o);
        }
        self.blobs.free(old, old_len);
        let b = self.get_mut(idx);
        b.blob = h;
        b.user_len = user.len() as u8;
        b.contact_len = d.contact.len() as u16;
        b.call_id_len = d.call_id.len() as u16;
        b.instance_len = d.instance.len() as u16;
        b.path_len = d.path.len() as u16;
        b.flags &= !(FLAG_V6 | FLAG_USER_IN_CONTACT);
        if v6.is_some() {
            b.flags |= FLAG_V6;
        }
        if shared {
            b.flags |= FLAG_USER_IN_CONTACT;
        }
    }

    fn key_hash(h: &TableHasher, domain: u32, user: &[u8]) -> u64 {
        h.hash(&[&domain.to_le_bytes(), user])
    }

    /// The interned id of an AoR's domain, if any binding uses it.
    pub(crate) fn domain_id(&self, d: DomainKey<'_>) -> Option<u32> {
        let mut buf = [0u8; 300];
        let n = d.scheme.len() + 1 + d.host.len();
        let key = buf.get_mut(..n)?;
        key[..d.scheme.len()].copy_from_slice(d.scheme);
        key[d.scheme.len()] = b':';
        key[d.scheme.len() + 1..].copy_from_slice(d.host);
        self.strings.find(&self.hasher, key)
    }

    /// [`Location::domain_id`] through a one-entry cache.
    pub(crate) fn domain_id_cached(&mut self, d: DomainKey<'_>) -> Option<u32> {
        let (id, key) = &self.domain_cache;
        if *id != NONE
            && key.len() == d.scheme.len() + 1 + d.host.len()
            && key.starts_with(d.scheme)
            && key[d.scheme.len()] == b':'
            && key.ends_with(d.host)
        {
            return Some(*id);
        }
        let found = self.domain_id(d)?;
        let key = &mut self.domain_cache.1;
        key.clear();
        key.extend_from_slice(d.scheme);
        key.push(b':');
        key.extend_from_slice(d.host);
        self.domain_cache.0 = found;
        Some(found)
    }

    fn release_string(&mut self, id: u32) {
        if self.strings.release(&self.hasher, id) && self.domain_cache.0 == id {
            self.domain_cache.0 = NONE;
        }
    }

    /// The AoR's domain as `scheme:host`.
    pub(crate) fn domain_of(&self, b: &Binding) -> &[u8] {
        self.strings.get(b.domain)
    }

    /// The first binding of the AoR `(domain, user)`, or [`NONE`].
    pub(crate) fn head(&self, domain: Option<u32>, user: &[u8]) -> u32 {
        let Some(domain) = domain else { return NONE };
        let hash = Self::key_hash(&self.hasher, domain, user);
        self.index
            .find(hash, |&i| {
                let b = self.get(i);
                b.domain == domain && b.user() == user
            })
            .unwrap_or(NONE)
    }

    /// The bindings of the AoR whose first binding is `head`. The walk stops after
    /// [`MAX_CHAIN`] bindings whatever the links say, so a damaged chain can never turn
    /// into an endless loop (an AoR holds at most `max_contacts` ≤ 1000 bindings).
    pub(crate) fn chain(&self, head: u32) -> impl Iterator<Item = u32> + '_ {
        let mut cur = head;
        let mut left = MAX_CHAIN;
        std::iter::from_fn(move || {
            if cur == NONE || left == 0 {
                return None;
            }
            left -= 1;
            let here = cur;
            cur = self.raw(cur).next;
            Some(here)
        })
    }

    /// Adds a binding to the AoR `(domain, user)` whose first binding is `head` (or [`NONE`]
    /// for a new AoR). Returns the binding's index.
    pub(crate) fn insert(
        &mut self,
        domain: DomainKey<'_>,
        user: &[u8],
        head: u32,
        d: &BindingData<'_>,
    ) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                let base = self.chunks.len() * CHUNK;
                self.chunks
                    .push((0..CHUNK).map(|_| Binding::vacant()).collect());
                self.free
                    .extend((base + 1..base + CHUNK).rev().map(|i| i as u32));
                base as u32
            }
        };
        self.high_water = self.high_water.max(idx as usize + 1);
        let domain_id = if head == NONE {
            match self.domain_id_cached(domain) {
                // The domain is interned already (the usual case: one more AoR of it).
                Some(id) => {
                    self.strings.strings[id as usize].1 += 1;
                    id
                }
                None => self.acquire_domain(domain),
            }
        } else {
            let id = self.get(head).domain;
            self.strings.strings[id as usize].1 += 1;
            id
        };
        let ua = self.intern_ua(d.user_agent);
        self.set_strings(idx, user, d);
        let b = self.get_mut(idx);
        b.set_scalars(d);
        b.domain = domain_id;
        b.ua = ua;
        if head == NONE {
            b.next = NONE;
            let hasher = self.hasher;
            let hash = Self::key_hash(&hasher, domain_id, user);
            let (chunks, blobs) = (&self.chunks, &self.blobs);
            self.index.insert_unique(hash, idx, |&i| {
                Self::hash_of(
                    &hasher,
                    blobs,
                    &chunks[i as usize / CHUNK][i as usize % CHUNK],
                )
            });
        } else {
            // Append at the end of the chain: the 200 OK lists contacts in registration order.
            let last = self.chain(head).last().unwrap_or(head);
            self.get_mut(idx).next = NONE;
            self.get_mut(last).next = idx;
        }
        self.bindings += 1;
        idx
    }

    /// Interns a domain no binding uses yet.
    #[cold]
    fn acquire_domain(&mut self, domain: DomainKey<'_>) -> u32 {
        let mut key = Vec::with_capacity(domain.scheme.len() + 1 + domain.host.len());
        key.extend_from_slice(domain.scheme);
        key.push(b':');
        key.extend_from_slice(domain.host);
        self.strings.acquire(&self.hasher, &key)
    }

    fn intern_ua(&mut self, ua: &[u8]) -> u32 {
        if ua.is_empty() {
            NONE
        } else {
            let ua = &ua[..ua.len().min(MAX_USER_AGENT_BYTES)];
            self.strings.acquire(&self.hasher, ua)
        }
    }

    /// Updates binding `idx` in place. Allocates nothing when the contact, Call-ID, instance,
    /// Path and User-Agent are unchanged (a refresh).
    pub(crate) fn update(&mut self, idx: u32, d: &BindingData<'_>) {
        let ua_in = &d.user_agent[..d.user_agent.len().min(MAX_USER_AGENT_BYTES)];
        let old_ua = self.raw(idx).ua;
        if self.strings.get(old_ua) != ua_in || (old_ua == NONE && !ua_in.is_empty()) {
            let new = self.intern_ua(ua_in);
            if old_ua != NONE {
                self.release_string(old_ua);
            }
            self.get_mut(idx).ua = new;
        }
        if !self.get(idx).same_strings(d) {
            let mut user = [0u8; 256];
            let n = {
                let u = self.get(idx).user();
                user[..u.len()].copy_from_slice(u);
                u.len()
            };
            self.set_strings(idx, &user[..n], d);
        }
        self.get_mut(idx).set_scalars(d);
    }

    /// Removes binding `idx` from the AoR whose first binding is `head`. Bumps the slot's
    /// generation (its expiry timer becomes stale). Returns the AoR's new head.
    pub(crate) fn remove(&mut self, head: u32, idx: u32) -> u32 {
        let live = self.raw(idx).is_live();
        debug_assert!(live, "remove of a vacant slot {idx}");
        if !live {
            // Removing a vacant slot would put it on the free list twice (two bindings in
            // one slot, a chain that loops): never, whatever the caller believes.
            return head;
        }
        let next = self.get(idx).next;
        let new_head = if head == idx {
            let hasher = self.hasher;
            let b = self.get(idx);
            let hash = Self::key_hash(&hasher, b.domain, b.user());
            self.index.remove(hash, idx);
            if next != NONE {
                let b = self.get(next);
                let hash = Self::key_hash(&hasher, b.domain, b.user());
                let (chunks, blobs) = (&self.chunks, &self.blobs);
                self.index.insert_unique(hash, next, |&i| {
                    Self::hash_of(
                        &hasher,
                        blobs,
                        &chunks[i as usize / CHUNK][i as usize % CHUNK],
                    )
                });
            }
            next
        } else {
            let prev = self.chain(head).find(|&i| self.get(i).next == idx);
            if let Some(prev) = prev {
                self.get_mut(prev).next = next;
            }
            head
        };
        let (domain, ua, blob, blob_len) = {
            let b = self.raw(idx);
            (b.domain, b.ua, b.blob, b.blob_len())
        };
        self.blobs.free(blob, blob_len);
        self.release_string(domain);
        if ua != NONE {
            self.release_string(ua);
        }
        if let Some(k) = self.raw(idx).nat.ping_class() {
            self.pinging[k] -= 1;
        }
        let b = self.get_mut(idx);
        let gen = b.gen.wrapping_add(1);
        *b = Binding::vacant();
        b.gen = gen;
        self.free.push(idx);
        self.bindings -= 1;
        new_head
    }

    /// Makes the binding's current expiry timer stale (an earlier one replaces it).
    pub(crate) fn bump_gen(&mut self, idx: u32) -> u32 {
        let b = self.get_mut(idx);
        b.gen = b.gen.wrapping_add(1);
        b.gen
    }

    /// The head binding index of every AoR.
    pub(crate) fn heads(&self) -> impl Iterator<Item = u32> + '_ {
        self.index.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aor::split_aor;
    use crate::output::LocalId;
    use crate::output::ShardId;
    use crate::time::Millis;

    fn data<'a>(contact: &'a [u8], ua: &'a [u8], source: &str) -> BindingData<'a> {
        BindingData {
            contact,
            call_id: b"call-1",
            instance: b"",
            path: b"",
            user_agent: ua,
            cseq: 1,
            reg_id: 0,
            q: Some(500),
            expires_at: Millis(3_600_000),
            granted_secs: 3600,
            source: source.parse().expect("addr"),
            local: LocalId(1),
            transport: Transport::Udp,
            arrival: ShardId(0),
            branch: 7,
        }
    }

    /// `[registrar] prefault`: the storage of the expected bindings exists before the
    /// first one arrives, inserting them allocates no more of it, and they get the same
    /// indices, in the same order, as in a table that grows on demand.
    #[test]
    fn a_prefaulted_table_hands_out_the_same_slots_without_growing() {
        const EXPECTED: usize = 3 * CHUNK;
        let mut grown = Location::new(9, 0);
        let mut faulted = Location::new(9, 0);
        faulted.prefault(EXPECTED);
        assert_eq!(faulted.chunks.len() * CHUNK, EXPECTED);
        assert_eq!(
            faulted.capacity(),
            0,
            "no slot handed out yet: nothing to sweep"
        );
        let (_, spare) = faulted.blobs.pages();
        assert_eq!(
            spare,
            (EXPECTED * PREFAULT_BLOB_BYTES).div_ceil(blobs::PAGE_BYTES)
        );
        let (dom, _) = split_aor(b"sip:x@example.com");
        for i in 0..EXPECTED {
            let user = format!("user{i}");
            let contact = format!("sip:{user}@10.0.{}.{}:5060", i / 250, i % 250);
            let d = data(contact.as_bytes(), b"Phone/1", "10.0.0.1:5060");
            let a = grown.insert(dom, user.as_bytes(), NONE, &d);
            let b = faulted.insert(dom, user.as_bytes(), NONE, &d);
            assert_eq!(a, b, "binding {i}");
            if i % 7 == 3 {
                // Removals and re-use follow the same order too.
                assert_eq!(grown.remove(a, a), NONE);
                assert_eq!(faulted.remove(b, b), NONE);
            }
        }
        assert_eq!(faulted.chunks.len() * CHUNK, EXPECTED, "no chunk added");
        assert_eq!(faulted.capacity(), grown.capacity());
        let (used, spare) = faulted.blobs.pages();
        assert_eq!(used, grown.blobs.pages().0);
        assert!(spare > 0, "the strings fit in the faulted pages");
        // Past the expected count, the table grows as before.
        let d = data(b"sip:late@10.9.9.9", b"Phone/1", "10.0.0.1:5060");
        let late = faulted.insert(dom, b"late", NONE, &d);
        assert_eq!(late, grown.insert(dom, b"late", NONE, &d));
        faulted.prefault(10 * EXPECTED);
        assert_eq!(
            faulted.chunks.len() * CHUNK,
            EXPECTED,
            "only a new table is prefaulted"
        );
    }

    #[test]
    fn binding_is_compact() {
        assert_eq!(std::mem::size_of::<Binding>(), 72);
    }

    #[test]
    fn insert_chain_update_remove() {
        let mut t = Location::new(9, 0);
        let (dom, user) = split_aor(b"sip:alice@example.com");
        let a = t.insert(
            dom,
            user,
            NONE,
            &data(b"sip:alice@10.0.0.1", b"Phone/1", "10.0.0.1:5060"),
        );
        let did = t.domain_id(dom);
        assert_eq!(t.head(did, user), a);
        let b = t.insert(
            dom,
            user,
            a,
            &data(b"sip:alice@[2001:db8::1]", b"Phone/1", "[2001:db8::1]:5062"),
        );
        assert_eq!(t.chain(a).collect::<Vec<_>>(), [a, b]);
        assert_eq!(
            t.get(b).source(),
            "[2001:db8::1]:5062".parse().expect("addr")
        );
        assert_eq!(t.get(b).contact(), b"sip:alice@[2001:db8::1]");
        assert_eq!(t.get(a).user(), b"alice");
        assert_eq!(t.domain_of(&t.get(a)), b"sip:example.com");
        assert_eq!(t.strings.get(t.get(a).ua), b"Phone/1");
        assert_eq!(t.get(a).q(), Some(500));
        // Refresh with a new UA.
        let mut d = data(b"sip:alice@10.0.0.1", b"Phone/2", "10.0.0.1:5070");
        d.cseq = 2;
        t.update(a, &d);
        assert_eq!(t.get(a).source().port(), 5070);
        assert_eq!(t.strings.get(t.get(a).ua), b"Phone/2");
        // A contact without the AoR's user stores the user apart; a change of contact
        // moves the binding to a new block and back.
        d.contact = b"sip:10.0.0.1:5070";
        t.update(a, &d);
        assert_eq!(t.get(a).user(), b"alice");
        assert_eq!(t.get(a).contact(), b"sip:10.0.0.1:5070");
        assert_eq!(t.get(a).call_id(), b"call-1");
        d.contact = b"sip:alicex@10.0.0.1";
        t.update(a, &d);
        assert_eq!(
            (t.get(a).user(), t.get(a).contact()),
            (&b"alice"[..], &b"sip:alicex@10.0.0.1"[..])
        );
        d.contact = b"sip:alice@10.0.0.1";
        t.update(a, &d);
        assert_eq!(t.get(a).user(), b"alice");
        assert_eq!(t.head(did, user), a, "the index still finds the AoR");
        // Removing the head moves the index to the next binding.
        let gen = t.get(a).gen;
        let head = t.remove(a, a);
        assert_eq!(head, b);
        assert_eq!(t.head(did, user), b);
        assert!(t.live(a, gen).is_none());
        assert_eq!(t.remove(b, b), NONE);
        assert_eq!(t.head(t.domain_id(dom), user), NONE);
        assert_eq!((t.len(), t.aors()), (0, 0));
        assert!(t.domain_id(dom).is_none(), "the domain string was released");
    }
}
