//! The registrar: REGISTER processed as RFC 3261 §10.3 says, step by step, on the shard
//! that owns the AoR.
//!
//! | step | rule | reply when it fails |
//! | --- | --- | --- |
//! | 1 | the Request-URI names one of `[server] domains` | 403 "Domain Not Served" (we do not forward REGISTERs) |
//! | 2 | Require option tags are supported (done for every request) | 420 |
//! | 3–4 | authentication (digest or IP, on the owner shard), authorization (`username_must_match`) | 401 / 403 / 400, see `auth/mod.rs` |
//! | 5 | the To URI is a `sip:`/`sips:` AoR of one of our domains, canonicalised | 404 "Not Found" (§10.3 step 5) |
//! | 6 | `Contact: *` only alone and with `Expires: 0` | 400 "Invalid Wildcard Contact" |
//! | 7 | expiry: contact `expires`, else Expires, else `default_expires`; `0 < e < min_expires` | 423 with Min-Expires |
//! | 7 | `e > max_expires` | clamped |
//! | 7 | same Call-ID and a CSeq not higher than the binding's | 500 "Out of Order CSeq", nothing changes |
//! | — | more than `max_contacts` bindings | 403 "Too Many Contacts" (`overflow = "reject"`) or the oldest untouched ones go (`"replace_oldest"`) |
//! | — | more Contacts in one request than `max_contacts` | 403 "Too Many Contacts" |
//! | — | a Contact whose `expires` or `q` is malformed, or a field over 4 KiB | 400 naming it |
//! | 8 | 200 OK: every current contact with its remaining `expires`, plus Date | — |
//!
//! A request is checked completely before anything changes, so a failure leaves the
//! bindings as they were. A retransmission (same Call-ID, CSeq and top-Via branch as the
//! binding's last update) gets the 200 OK again with nothing changed — there is no server
//! transaction to absorb it, so this is how a UA whose 200 OK was lost still gets one.
//!
//! Outbound (RFC 5626 §6): a contact with `+sip.instance` and `reg-id` is one flow and
//! replaces the binding with the same instance and reg-id, whatever its URI (a phone
//! behind a NAT that re-registers from a new port does not pile up contacts); with an
//! instance and no reg-id it replaces the binding of that instance. Without an instance,
//! bindings are matched by URI (§19.1.4). Path (RFC 3327 §5.3) is stored with the binding
//! and echoed in the 200 OK when the UA says `Supported: path`.

use std::net::SocketAddr;

use sipedge_msg::fmt::push_u64;
use sipedge_msg::{Contact, HeaderName, Message, NameAddr, Validated};
use smallvec::SmallVec;

use crate::aor::{canonical_aor, owner_of, same_contact, split_aor, AorError};
use crate::auth::{AuthState, Authenticator};
use crate::bindings::same_binding;
use crate::bindings::Store;
use crate::config::Overflow;
use crate::io::Io;
use crate::location::Location;
use crate::location::{BindingData, BindingRef, MAX_FIELD_BYTES, NONE};
use crate::nat::{NatPinger, NatRuntime};
use crate::output::LocalId;
use crate::protect::Protect;
use crate::refusal::{Refusal, RegistrarRefusal};
use crate::shard::ShardMsg;
use crate::stateless::{IpText, ReplyFields, Req};
use crate::time::Millis;

/// One Contact of the request and what will happen to it.
#[derive(Debug, Clone, Copy)]
struct Item<'a> {
    addr: NameAddr<'a>,
    instance: &'a [u8],
    reg_id: u32,
    q: Option<u16>,
    expires: u32,
    /// The binding it refreshes or removes, or [`NONE`].
    existing: u32,
    /// A later Contact of the same request names the same binding: this one is skipped.
    superseded: bool,
}

/// What identifies the request for the Call-ID/CSeq rule (§10.3 step 7), read once.
#[derive(Debug, Clone, Copy)]
struct ReqIds<'a> {
    call_id: &'a [u8],
    cseq: u32,
    /// Hash of the top Via branch: recognises a retransmission of the same request.
    branch: u32,
}

/// What the registrar and its reply read from a REGISTER more than once, parsed once: the
/// reply's fields (top Via for the address, branch and NAT detection; To tag; source text)
/// and the Call-ID/CSeq ids.
#[derive(Debug, Clone, Copy)]
struct RegReq<'a> {
    reply: ReplyFields<'a>,
    ids: ReqIds<'a>,
}

/// Why [`Core::check_register`] stopped: a refusal, or a retransmission of the request that
/// last updated the binding (answered with the current bindings, RFC 3261 §10.3 step 7).
#[derive(Debug, Clone, Copy)]
enum Stop {
    Refused(RegistrarRefusal),
    Retransmission,
}

impl From<RegistrarRefusal> for Stop {
    fn from(r: RegistrarRefusal) -> Stop {
        Stop::Refused(r)
    }
}

/// Retry-After of the 503 a REGISTER gets when the location table is full, seconds: bindings
/// expire all the time, so room comes back within minutes.
pub(crate) const FULL_RETRY_AFTER_SECS: u32 = 300;

/// The registrar's own state: reused buffers (the canonical AoR, the 200 OK's Contact
/// lines, the Path of a REGISTER).
#[derive(Debug)]
pub(crate) struct RegistrarBufs {
    aor_buf: Vec<u8>,
    contact_buf: Vec<u8>,
    path_buf: Vec<u8>,
}

impl Default for RegistrarBufs {
    fn default() -> Self {
        RegistrarBufs {
            aor_buf: Vec::with_capacity(64),
            contact_buf: Vec::with_capacity(1024),
            path_buf: Vec::new(),
        }
    }
}

/// The registrar (RFC 3261 §10.3): the rules, applied to the location store it is lent
/// (Kamailio's `registrar` over `usrloc`), with the authenticator's and the pinger's state
/// for the checks it asks of them, and the shard's sink.
pub(crate) struct Registrar<'a> {
    pub(crate) io: &'a mut Io,
    pub(crate) loc: &'a mut Location,
    pub(crate) bufs: &'a mut RegistrarBufs,
    pub(crate) auth: &'a mut AuthState,
    pub(crate) nat: &'a mut NatRuntime,
    /// Overload shedding and the guessing counts (`protect`, issue 17).
    pub(crate) protect: &'a mut Protect,
}

impl<'a> Registrar<'a> {
    /// The store and the sink: a binding stored or removed arms its timer and journals it.
    fn store(&mut self) -> Store<'_> {
        Store {
            io: self.io,
            loc: self.loc,
        }
    }

    /// Whether the Path of a REGISTER from `remote` is kept (stored with the binding and
    /// echoed in the 200 OK), per `[registrar] accept_path` (RFC 3327 §5.3; `path_policy`):
    /// in `trusted` mode only from a source an `[[ip_auth]]` prefix names.
    fn path_accepted(&self, remote: SocketAddr) -> bool {
        let cfg = &self.io.cfg;
        cfg.registrar
            .accept_path
            .keeps(|| cfg.auth.db.ip_group(remote.ip()).is_some())
    }

    /// The authenticator (steps 3–4).
    fn authenticator(&mut self) -> Authenticator<'_> {
        Authenticator {
            io: self.io,
            auth: self.auth,
            protect: self.protect,
        }
    }

    /// Issue 17 (`protect`), on the AoR's owner before authentication: under pressure
    /// level 1 a REGISTER of an AoR with no binding here, at level 2 any REGISTER, gets a
    /// stateless 503 with Retry-After (RFC 3261 §21.5.4). True: answered.
    fn shed_under_pressure(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &Validated<'_>,
        aor: &[u8],
    ) -> bool {
        let level = self.protect.pressure();
        // Level 1 while the kernel filter sheds REGISTERs by share: it admitted this one.
        if level == 0 || (level < 2 && self.protect.kernel_admits()) {
            return false;
        }
        let (domain, user) = split_aor(aor);
        let bound = self.loc.head(self.loc.domain_id(domain), user) != NONE;
        if bound && level < 2 {
            return false;
        }
        self.io
            .shed(self.protect, local, remote, Req::Valid(msg, v), bound);
        true
    }

    /// The pinger: NAT facts of the request and of each stored contact.
    fn pinger(&mut self) -> NatPinger<'_> {
        NatPinger {
            io: self.io,
            loc: self.loc,
            nat: self.nat,
        }
    }
}

impl Registrar<'_> {
    /// Entry point for a valid REGISTER (RFC 3261 §10.3).
    pub(crate) fn handle_register(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &Validated<'_>,
    ) {
        self.io.stats.registers_in += 1;
        let Some(request_uri) = v.request_uri else {
            return;
        };
        // Step 1: bindings of this domain are ours; we never forward a REGISTER.
        if !self.io.cfg.is_our_domain(request_uri.host()) {
            self.register_failed(local, remote, msg, v, RegistrarRefusal::DomainNotServed);
            return;
        }
        // Step 5: the AoR, from To.
        let to = &v.to;
        if !self.io.cfg.is_our_domain(to.uri().host()) {
            self.register_failed(local, remote, msg, v, RegistrarRefusal::NotFound);
            return;
        }
        let mut aor = std::mem::take(&mut self.bufs.aor_buf);
        match canonical_aor(to.uri(), self.io.cfg.registrar.case_sensitive, &mut aor) {
            Ok(()) => {
                let owner = owner_of(&aor, self.io.cfg.shards);
                if owner == self.io.cfg.shard {
                    // Issue 17: under pressure, new AoRs (then all) get 503 first.
                    if !self.shed_under_pressure(local, remote, msg, v, &aor) {
                        self.register_owned(now, local, remote, msg, v, &aor);
                    }
                } else {
                    // ARCHITECTURE.md §1: the owner processes it and answers from its socket.
                    self.io.stats.registers_handed_off += 1;
                    self.io.shard_out.push_back((
                        owner,
                        ShardMsg::Datagram {
                            local,
                            remote,
                            arrived: now,
                            bytes: msg.as_bytes().to_vec(),
                            parsed: msg.detach(v).map(Box::new),
                        },
                    ));
                }
            }
            Err(e) => {
                let r = match e {
                    AorError::Scheme => RegistrarRefusal::NotFound,
                    AorError::TooLong => RegistrarRefusal::AorTooLong,
                };
                self.register_failed(local, remote, msg, v, r)
            }
        }
        self.bufs.aor_buf = aor;
    }

    fn register_failed(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &Validated<'_>,
        refusal: RegistrarRefusal,
    ) {
        self.io.stats.registers_failed += 1;
        self.io
            .respond(local, remote, Req::Valid(msg, v), refusal.reply(), |_| {});
    }

    /// Steps 6–8 on the owner shard.
    #[allow(clippy::too_many_arguments)]
    fn register_owned(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        v: &Validated<'_>,
        aor: &[u8],
    ) {
        let (domain, user) = split_aor(aor);
        // Steps 3–4 on the owner, which also issues the nonces (auth/mod.rs).
        if self
            .authenticator()
            .register_auth(now, local, remote, msg, v, domain.host, user)
            .is_none()
        {
            return;
        }
        let domain_id = self.loc.domain_id_cached(domain);
        let head = self.loc.head(domain_id, user);
        let mut items: SmallVec<[Item<'_>; 4]> = SmallVec::new();
        let top_via = Some(v.top_via);
        let branch = v.top_via.branch().unwrap_or_default();
        let ids = ReqIds {
            call_id: v.call_id,
            cseq: v.cseq.seq,
            branch: self.loc.hash32(branch),
        };
        // The To tag hashes the raw From (it holds the From tag) and CSeq values: a
        // retransmission still gets the same tag, and nothing is parsed again.
        let from = msg.header(HeaderName::From).unwrap_or_default();
        let cseq = msg.header(HeaderName::CSeq).unwrap_or_default();
        let req = RegReq {
            reply: ReplyFields {
                top_via,
                to_tag: self.io.to_tag_of(ids.call_id, from, branch, cseq),
                to_has_tag: v.to_has_tag(),
                source_text: IpText::new(remote.ip()),
            },
            ids,
        };
        let outcome = self.check_register(msg, v, ids, head, &mut items);
        let head = match outcome {
            Err(Stop::Refused(r)) => {
                self.io.stats.registers_failed += 1;
                if r == RegistrarRefusal::TableFull {
                    self.io.stats.registers_table_full += 1;
                }
                let min = self.io.cfg.registrar.min_expires_secs;
                let reply = Req::Parsed(msg, &req.reply);
                self.io
                    .respond(local, remote, reply, r.reply(), |w| match r {
                        // RFC 3261 §10.3 step 7 / §21.4.17: 423 carries Min-Expires.
                        RegistrarRefusal::IntervalTooBrief => {
                            w.header_u32(b"Min-Expires", min);
                        }
                        // RFC 3261 §21.5.4: 503 with Retry-After, the UA tries again later.
                        RegistrarRefusal::TableFull => {
                            w.header_u32(b"Retry-After", FULL_RETRY_AFTER_SECS);
                        }
                        _ => {}
                    });
                return;
            }
            Err(Stop::Retransmission) => {
                self.io.stats.register_retransmissions += 1;
                head
            }
            Ok(evict) => self.apply_register(
                now,
                (local, remote),
                (msg, v),
                &req,
                aor,
                head,
                &items,
                evict,
            ),
        };
        self.register_ok(now, local, remote, msg, &req, head, &items);
    }

    /// Checks the whole request against the AoR's bindings (chain from `head`) without
    /// changing anything; fills `items`. Returns how many old bindings must be evicted.
    fn check_register<'a>(
        &self,
        msg: &Message<'a>,
        v: &Validated<'a>,
        ids: ReqIds<'_>,
        head: u32,
        items: &mut SmallVec<[Item<'a>; 4]>,
    ) -> Result<usize, Stop> {
        let rc = &self.io.cfg.registrar;
        let bad = |r: RegistrarRefusal| Err(Stop::Refused(r));
        let header_expires = v.expires;
        let (star, count) = self.collect_contacts(msg, v, items)?;
        let ReqIds {
            call_id,
            cseq,
            branch,
        } = ids;
        if call_id.len() > MAX_FIELD_BYTES {
            return bad(RegistrarRefusal::CallIdTooLong);
        }
        // §10.3 step 7: the Call-ID/CSeq rule for an existing binding.
        let ordered = |b: BindingRef<'_>| -> Result<(), Stop> {
            if b.call_id() != call_id || cseq > b.cseq {
                Ok(())
            } else if cseq == b.cseq && branch == b.branch {
                Err(Stop::Retransmission)
            } else {
                Err(RegistrarRefusal::OutOfOrderCSeq.into())
            }
        };
        if star {
            // §10.3 step 6: `*` alone, with Expires: 0, removes every binding.
            if count != 1 || header_expires != Some(0) {
                return bad(RegistrarRefusal::InvalidWildcard);
            }
            for i in self.loc.chain(head) {
                ordered(self.loc.get(i))?;
            }
            return Ok(0);
        }
        // §10.3 step 7: 423 for any contact below the minimum (0 means remove).
        let min = rc.min_expires_secs;
        if items.iter().any(|it| it.expires != 0 && it.expires < min) {
            return Err(RegistrarRefusal::IntervalTooBrief.into());
        }
        let mut retransmission = false;
        for n in 0..items.len() {
            let it = items[n];
            let later = items[n + 1..]
                .iter()
                .any(|o| same_item(o, &it.addr, it.instance, it.reg_id));
            items[n].superseded = later;
            if later {
                continue;
            }
            // A stored binding is claimed by at most one Contact of the request: §19.1.4
            // equality is not transitive (`sip:a@h;x=1` and `sip:a@h;x=2` both equal a
            // stored `sip:a@h` but not each other), so without this one binding could be
            // removed or updated twice. A Contact whose only match was claimed by an earlier
            // one of the request acts as if that binding were not there — as Kamailio,
            // which applies the Contacts one after the other: after a removal, a later
            // removal finds nothing and a later update adds a binding.
            let claimed = &items[..n];
            if let Some((i, b)) = self.loc.chain(head).find_map(|i| {
                if claimed.iter().any(|o| o.existing == i) {
                    return None;
                }
                let b = self.loc.get(i);
                same_binding(b, it.addr.uri(), it.instance, it.reg_id).then_some((i, b))
            }) {
                match ordered(b) {
                    Ok(()) => {}
                    Err(Stop::Retransmission) => retransmission = true,
                    Err(e) => return Err(e),
                }
                items[n].existing = i;
            }
        }
        if retransmission {
            return Err(Stop::Retransmission);
        }
        self.capacity_after(head, items)
    }

    /// §10.3 step 7, the contacts of the request in `items` (a `*` noted, not stored):
    /// returns whether there was a `*` and how many contacts there were.
    fn collect_contacts<'a>(
        &self,
        msg: &Message<'a>,
        v: &Validated<'a>,
        items: &mut SmallVec<[Item<'a>; 4]>,
    ) -> Result<(bool, usize), Stop> {
        let rc = &self.io.cfg.registrar;
        let bad = |r: RegistrarRefusal| Err(Stop::Refused(r));
        let header_expires = v.expires;
        let mut star = false;
        let mut count = 0usize;
        for c in v.contacts(msg) {
            count += 1;
            let Ok(c) = c else {
                return bad(RegistrarRefusal::BadContact);
            };
            let Contact::Addr(addr) = c else {
                star = true;
                continue;
            };
            let expires = match c.expires() {
                Some(Ok(e)) => e,
                Some(Err(_)) => return bad(RegistrarRefusal::BadContactExpires),
                None => header_expires.unwrap_or(rc.default_expires_secs),
            };
            let q = match c.q() {
                Some(Ok(q)) => Some(q),
                Some(Err(_)) => return bad(RegistrarRefusal::BadContactQ),
                None => None,
            };
            // RFC 5626 §6: reg-id only means something with an instance.
            let instance = c.instance().unwrap_or_default();
            let reg_id = if instance.is_empty() {
                0
            } else {
                c.reg_id().unwrap_or(0)
            };
            if addr.uri().raw().len() > MAX_FIELD_BYTES || instance.len() > MAX_FIELD_BYTES {
                return bad(RegistrarRefusal::ContactTooLong);
            }
            if items.len() >= usize::from(rc.max_contacts) {
                // More contacts than an AoR may hold can never fit (and the pairwise
                // checks below stay bounded by max_contacts²).
                return Err(RegistrarRefusal::TooManyContacts.into());
            }
            items.push(Item {
                addr,
                instance,
                reg_id,
                q,
                expires: expires.min(rc.max_expires_secs),
                existing: NONE,
                superseded: false,
            });
        }
        Ok((star, count))
    }

    /// How many old bindings of the chain from `head` must be evicted for `items` to fit
    /// (`max_contacts`, `overflow`), or the refusal when they cannot (`max_bindings`).
    fn capacity_after(&self, head: u32, items: &[Item<'_>]) -> Result<usize, Stop> {
        let rc = &self.io.cfg.registrar;
        // Capacity after the request: current − removed + added. Each stored binding is
        // claimed at most once (above), so `removed <= current`; checked all the same.
        let current = self.loc.chain(head).count();
        let live = items.iter().filter(|it| !it.superseded);
        let removed = live
            .clone()
            .filter(|it| it.existing != NONE && it.expires == 0)
            .count();
        let added = live
            .filter(|it| it.existing == NONE && it.expires != 0)
            .count();
        let touched = items.iter().filter(|it| it.existing != NONE).count();
        let (Some(after), Some(untouched)) = (
            current
                .checked_sub(removed)
                .and_then(|c| c.checked_add(added)),
            current.checked_sub(touched),
        ) else {
            return Err(RegistrarRefusal::InconsistentBindings.into());
        };
        let max = usize::from(rc.max_contacts);
        let evict = match after.checked_sub(max) {
            None | Some(0) => 0,
            Some(over) if rc.overflow == Overflow::ReplaceOldest && over <= untouched => over,
            Some(_) => return Err(RegistrarRefusal::TooManyContacts.into()),
        };
        // `[registrar] max_bindings`: a request that adds bindings to a full shard waits
        // (refreshes and removals never grow the table and always pass).
        let grows = (after - evict).saturating_sub(current);
        if grows > 0 && self.loc.len().saturating_add(grows) > self.max_shard_bindings() {
            return Err(RegistrarRefusal::TableFull.into());
        }
        Ok(evict)
    }

    /// This shard's share of `[registrar] max_bindings` (rounded up).
    fn max_shard_bindings(&self) -> usize {
        self.io
            .cfg
            .registrar
            .max_bindings
            .div_ceil(usize::from(self.io.cfg.shards.max(1)))
    }

    /// Applies a checked request; returns the AoR's head afterwards.
    #[allow(clippy::too_many_arguments)]
    fn apply_register(
        &mut self,
        now: Millis,
        (local, remote): (LocalId, SocketAddr),
        (msg, v): (&Message<'_>, &Validated<'_>),
        req: &RegReq<'_>,
        aor: &[u8],
        mut head: u32,
        items: &[Item<'_>],
        evict: usize,
    ) -> u32 {
        let (domain, user) = split_aor(aor);
        if items.is_empty() && v.contact_count > 0 {
            // `Contact: *` (checked): remove everything.
            for _ in 0..crate::location::MAX_CHAIN {
                if head == NONE {
                    break;
                }
                head = self.store().remove_binding(aor, head, head);
            }
            return head;
        }
        for _ in 0..evict {
            let oldest = self
                .loc
                .chain(head)
                .filter(|&i| items.iter().all(|it| it.existing != i))
                .min_by_key(|&i| self.loc.get(i).registered_at());
            if let Some(i) = oldest {
                head = self.store().remove_binding(aor, head, i);
                self.io.stats.bindings_evicted += 1;
            }
        }
        let mut path = std::mem::take(&mut self.bufs.path_buf);
        path.clear();
        let paths = msg.header_values(HeaderName::Path);
        let keep_path = self.path_accepted(remote); // `[registrar] accept_path`
        for (n, p) in paths.take_while(|_| keep_path).enumerate() {
            if n > 0 {
                path.extend_from_slice(b", ");
            }
            path.extend_from_slice(p);
        }
        path.truncate(MAX_FIELD_BYTES);
        let ReqIds {
            call_id,
            cseq,
            branch,
        } = req.ids;
        let user_agent = msg.user_agent().unwrap_or_default();
        let arrival = self.io.arrival;
        let nat = self.pinger().nat_request(
            req.reply.top_via.as_ref(),
            remote,
            req.reply.source_text,
            aor,
        );
        for it in items.iter().filter(|it| !it.superseded) {
            if it.expires == 0 {
                if it.existing != NONE {
                    head = self.store().remove_binding(aor, head, it.existing);
                }
                continue;
            }
            let d = BindingData {
                contact: it.addr.uri().raw(),
                call_id,
                instance: it.instance,
                path: &path,
                user_agent,
                cseq,
                reg_id: it.reg_id,
                q: it.q,
                expires_at: now.plus(u64::from(it.expires) * 1000),
                granted_secs: it.expires,
                source: remote,
                local,
                // The socket's transport, not what the Via claims (issue 19).
                transport: self.io.cfg.proxy.transport_of(local),
                arrival,
                branch,
            };
            let (idx, new_head) = self
                .store()
                .store_binding(domain, user, head, it.existing, &d);
            head = new_head;
            self.pinger().nat_on_store(idx, &nat, it.addr.uri());
            if it.existing != NONE {
                self.io.stats.bindings_refreshed += 1;
            } else {
                self.io.stats.bindings_created += 1;
            }
            // A creation is journalled as such (record kind 3): the cluster write-behind
            // writes it without a thinning look-up.
            self.store()
                .journal_upsert_data(aor, &d, it.existing == NONE);
        }
        self.bufs.path_buf = path;
        if items.iter().any(|it| !it.superseded && it.expires > 0) {
            // Registered again: no more 430 on this flow (`flows`, RFC 5626 §4.2.1).
            self.store().flow_alive(local, remote);
            let ob = |it: &Item<'_>| it.reg_id != 0 || it.addr.uri().params().has(b"ob");
            if self.io.cfg.proxy.is_stream(local)
                && items
                    .iter()
                    .any(|it| !it.superseded && it.expires > 0 && ob(it))
            {
                // Its connection's close fails the flow (RFC 5626 §5.3, `stream_flows`).
                self.store().outbound_registered(local, remote);
            }
        }
        head
    }

    /// RFC 3261 §10.3 step 8: 200 OK with every current binding and its remaining expiry,
    /// plus Date; Path echoed (RFC 3327 §5.3) and `Require: outbound` (RFC 5626 §6) when
    /// the UA supports them.
    #[allow(clippy::too_many_arguments)]
    fn register_ok(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        req: &RegReq<'_>,
        head: u32,
        items: &[Item<'_>],
    ) {
        self.io.stats.registers_ok += 1;
        let mut lines = std::mem::take(&mut self.bufs.contact_buf);
        lines.clear();
        for i in self.loc.chain(head) {
            let b = self.loc.get(i);
            if b.expires_at <= now {
                continue; // expired, its timer fires within a tick
            }
            lines.extend_from_slice(b"Contact: <");
            lines.extend_from_slice(b.contact());
            lines.extend_from_slice(b">;expires=");
            push_u64(&mut lines, (b.expires_at.0 - now.0).div_ceil(1000));
            if let Some(q) = b.q() {
                lines.extend_from_slice(b";q=");
                push_q(&mut lines, q);
            }
            if !b.instance().is_empty() {
                lines.extend_from_slice(b";+sip.instance=\"");
                lines.extend_from_slice(b.instance());
                lines.push(b'"');
            }
            if b.reg_id != 0 {
                lines.extend_from_slice(b";reg-id=");
                push_u64(&mut lines, u64::from(b.reg_id));
            }
            lines.extend_from_slice(b"\r\n");
        }
        if let Some(unix_ms) = self.io.unix_ms(now) {
            lines.extend_from_slice(b"Date: ");
            self.io.date.write(&mut lines, unix_ms / 1000);
            lines.extend_from_slice(b"\r\n");
        }
        // One pass over Supported for both tags (as `Message::supports` compares them).
        let (mut path, mut outbound) = (false, false);
        for t in msg.supported() {
            path |= t.eq_ignore_ascii_case(b"path");
            outbound |= t.eq_ignore_ascii_case(b"outbound");
        }
        if path && self.path_accepted(remote) {
            for v in msg.header_values(HeaderName::Path) {
                lines.extend_from_slice(b"Path: ");
                lines.extend_from_slice(v);
                lines.extend_from_slice(b"\r\n");
            }
        }
        if outbound && items.iter().any(|it| it.reg_id != 0) {
            lines.extend_from_slice(b"Require: outbound\r\n");
            crate::outbound::write_flow_timer(&mut lines, self.io.cfg.nat.ping_interval_secs);
        }
        self.io.respond(
            local,
            remote,
            Req::Parsed(msg, &req.reply),
            (200, b"OK"),
            |w| {
                w.raw(&lines);
            },
        );
        self.bufs.contact_buf = lines;
    }
}

/// Two contacts of one request that name the same binding.
fn same_item(o: &Item<'_>, uri: &NameAddr<'_>, instance: &[u8], reg_id: u32) -> bool {
    if !instance.is_empty() || !o.instance.is_empty() {
        return o.instance == instance && o.reg_id == reg_id;
    }
    same_contact(o.addr.uri(), uri.uri())
}

/// A q-value from thousandths: 1000 → `1`, 500 → `0.5`, 5 → `0.005` (RFC 3261 §20.10).
pub(crate) fn push_q(out: &mut Vec<u8>, q: u16) {
    if q >= 1000 {
        out.push(b'1');
        return;
    }
    out.extend_from_slice(b"0");
    if q == 0 {
        return;
    }
    out.push(b'.');
    let digits = [q / 100, q / 10 % 10, q % 10];
    let keep = if digits[2] != 0 {
        3
    } else if digits[1] != 0 {
        2
    } else {
        1
    };
    for d in &digits[..keep] {
        out.push(b'0' + *d as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_print_short() {
        for (q, s) in [
            (1000, "1"),
            (500, "0.5"),
            (0, "0"),
            (5, "0.005"),
            (123, "0.123"),
            (50, "0.05"),
        ] {
            let mut v = Vec::new();
            push_q(&mut v, q);
            assert_eq!(v, s.as_bytes(), "{q}");
        }
    }
}
