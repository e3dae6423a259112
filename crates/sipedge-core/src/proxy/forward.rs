//! Requests out (RFC 3261 §16.6: one copy per target; §9.1 CANCEL; §17.1.1.3 ACK for a
//! non-2xx) and the responses the relay generates itself.

use std::net::SocketAddr;

use sipedge_msg::{
    write_forward, write_response, ForwardEdits, HeaderName, Message, ResponseAddr, ResponseSpec,
};

use crate::aor::{canonical_aor, owner_of, split_aor};
use crate::bindings::tick_at_or_after;
use crate::lookup::{LookupError, LookupReply};
use crate::output::LocalId;
use crate::proxy::advertise::{write_advertised, write_record_route};
use crate::proxy::token::{self, Flow};
use crate::proxy::{Relay, RelayCx};
use crate::refusal::{Refusal, RelayRefusal};
use crate::time::Millis;
use crate::txn::branch::OurBranch;
use crate::txn::table::{Branch, Cancel, Cell, Cli, Srv};
use crate::txn::{timer_key, Timer};

/// The branch of a 2xx's ACK we forward statelessly (§16.11): mark `sA`, then a MAC of
/// the incoming branch (the codec is `sipedge-msg`'s).
const ACK_BRANCH: sipedge_msg::branch::BranchLayout<1> =
    sipedge_msg::branch::BranchLayout::new(*b"sA", [16]);

/// At most this many targets per request (the branch number has 4 bits).
pub(crate) const MAX_BRANCHES: usize = 16;

const ROUTE_ONLY: &[HeaderName] = &[HeaderName::Route];
const CREDENTIALS: &[HeaderName] = &[HeaderName::ProxyAuthorization, HeaderName::Authorization];
const ROUTE_AND_CREDENTIALS: &[HeaderName] = &[
    HeaderName::Route,
    HeaderName::ProxyAuthorization,
    HeaderName::Authorization,
];

/// The headers a forwarded request loses entirely.
fn removals(route_edit: bool, credentials: bool) -> &'static [HeaderName] {
    match (route_edit, credentials) {
        (true, true) => ROUTE_AND_CREDENTIALS,
        (true, false) => ROUTE_ONLY,
        (false, true) => CREDENTIALS,
        (false, false) => &[],
    }
}

/// Issue 13 (Kamailio's `consume_credentials()`): credentials for our realm are never
/// relayed — a callee would collect a crackable digest of every caller. True when `msg`
/// has some (or unreadable ones): then every Proxy-Authorization and Authorization header
/// is removed and those for other realms are put back through `extra` (RFC 3261 §22.3: a
/// proxy passes credentials meant for a realm further on).
fn credentials_to_consume<'m>(
    msg: &'m Message<'_>,
    realm: &[u8],
    extra: &mut smallvec::SmallVec<[(&'m [u8], &'m [u8]); 2]>,
) -> bool {
    let ours = |v: &[u8]| match sipedge_msg::Credentials::parse(v) {
        Ok(c) => c.realm.is_none_or(|r| r.eq_bytes(realm)),
        Err(_) => true,
    };
    let mut any = false;
    for name in CREDENTIALS {
        for v in msg.header_values(*name) {
            any |= ours(v);
        }
    }
    if !any {
        return false;
    }
    for (name, text) in [
        (
            HeaderName::ProxyAuthorization,
            b"Proxy-Authorization".as_slice(),
        ),
        (HeaderName::Authorization, b"Authorization".as_slice()),
    ] {
        for v in msg.header_values(name) {
            if !ours(v) {
                extra.push((text, v));
            }
        }
    }
    true
}

impl Relay {
    /// Our Via for branch `b` of cell `idx` into `via_buf`.
    fn make_via(
        &mut self,
        mac: &crate::secret::Mac,
        shard: crate::ShardId,
        (proxy, local): (&crate::proxy::ProxyConfig, LocalId),
        idx: u32,
        c: &BranchId,
    ) {
        self.via_buf.clear();
        // RFC 3261 §18.1.1: the Via names the transport of the socket the request leaves by.
        self.via_buf
            .push_str(proxy.transport_of(local).via_prefix());
        write_advertised(&mut self.via_buf, proxy, local);
        self.via_buf.push_str(";branch=");
        let text = OurBranch {
            shard,
            idx,
            gen: c.gen,
            b: c.b,
            loop_hash: c.loop_hash,
        }
        .encode(mac);
        self.via_buf
            .push_str(std::str::from_utf8(&text).expect("branch text is hex"));
    }
}

/// A binding to forward to (from the local table or a lookup reply).
#[derive(Debug)]
pub(crate) struct Target {
    pub uri: Vec<u8>,
    pub path: Vec<u8>,
    pub source: SocketAddr,
    pub local: LocalId,
    pub q: u16,
    /// Registered from behind a NAT (issue 8 detection): reach it at `source`.
    pub nated: bool,
}

/// What a Via branch needs from its cell.
struct BranchId {
    gen: u32,
    b: u8,
    loop_hash: u32,
}

/// Writes the CANCEL (§9.1) or ACK (§17.1.1.3) for branch `br` of the request in `cell`:
/// Request-URI, Call-ID, From, CSeq number and Route as sent, our Via alone, To from
/// `to` (the response's, for an ACK) or the request's.
fn write_hop_request(
    out: &mut Vec<u8>,
    method: &[u8],
    cell: &Cell,
    br: &Branch,
    via: &str,
    to: Option<&[u8]>,
) {
    out.clear();
    let Ok(req) = Message::parse(&cell.req) else {
        return;
    };
    out.extend_from_slice(method);
    out.push(b' ');
    if br.uri.is_empty() {
        out.extend_from_slice(req.request_uri_raw().unwrap_or_default());
    } else {
        out.extend_from_slice(&br.uri);
    }
    out.extend_from_slice(b" SIP/2.0\r\nVia: ");
    out.extend_from_slice(via.as_bytes());
    out.extend_from_slice(b"\r\n");
    if br.route_edit {
        if !br.route.is_empty() {
            out.extend_from_slice(b"Route: ");
            out.extend_from_slice(&br.route);
            out.extend_from_slice(b"\r\n");
        }
    } else {
        for r in req.header_values(HeaderName::Route) {
            out.extend_from_slice(b"Route: ");
            out.extend_from_slice(r);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Max-Forwards: 70\r\nFrom: ");
    out.extend_from_slice(req.header(HeaderName::From).unwrap_or_default());
    out.extend_from_slice(b"\r\nTo: ");
    out.extend_from_slice(to.or(req.header(HeaderName::To)).unwrap_or_default());
    out.extend_from_slice(b"\r\nCall-ID: ");
    out.extend_from_slice(req.call_id().unwrap_or_default());
    out.extend_from_slice(b"\r\nCSeq: ");
    let seq = req.cseq().map(|c| c.seq).unwrap_or(0);
    sipedge_msg::fmt::push_u32(out, seq);
    out.push(b' ');
    out.extend_from_slice(method);
    out.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
}

/// Appends `, <via with received/rport>` to `out` when the sender's Via needs them
/// (sent-by differs from the source IP, or rport asked for); false when it needs nothing.
fn push_stamped_via(out: &mut String, via: &sipedge_msg::Via<'_>, source: SocketAddr) -> bool {
    let ip = sipedge_msg::IpText::new(source.ip());
    let to = sipedge_msg::ResponseAddr::of(Some(via), source, ip.as_bytes());
    let Some(received) = to.received else {
        return false;
    };
    let rport_asked = to.rport.is_some();
    let raw = via.raw();
    let params = via.params().raw();
    let head_len = if params.is_empty() {
        raw.len()
    } else {
        raw.len().saturating_sub(params.len() + 1)
    };
    let (Ok(head), Ok(_)) = (
        std::str::from_utf8(&raw[..head_len]),
        std::str::from_utf8(params),
    ) else {
        return false;
    };
    out.push_str(", ");
    out.push_str(head.trim_end());
    for (name, value) in via.params().iter() {
        if name.eq_ignore_ascii_case(b"received")
            || (rport_asked && name.eq_ignore_ascii_case(b"rport"))
        {
            continue;
        }
        out.push(';');
        out.push_str(std::str::from_utf8(name).unwrap_or_default());
        if let Some(v) = value {
            out.push('=');
            out.push_str(std::str::from_utf8(v).unwrap_or_default());
        }
    }
    out.push_str(";received=");
    out.push_str(std::str::from_utf8(received).unwrap_or_default());
    if let Some(port) = to.rport {
        out.push_str(";rport=");
        sipedge_msg::fmt::push_u64_str(out, u64::from(port));
    }
    true
}

impl RelayCx<'_> {
    /// Arms transaction timer `key` `ms` from `now`.
    pub(crate) fn arm(&mut self, now: Millis, ms: u64, key: u64) {
        self.io.wheel.insert(tick_at_or_after(now.plus(ms)), key);
    }

    /// Prepares our Via for branch `b` of cell `idx` in `relay.via_buf`.
    fn via_for(&mut self, idx: u32, b: usize) {
        let shard = self.io.cfg.shard;
        let c = self.relay.txns.cell(idx);
        let local = c.branches[b].local;
        let id = BranchId {
            gen: c.gen,
            b: b as u8,
            loop_hash: c.loop_hash,
        };
        let RelayCx { relay, io, .. } = self;
        relay.make_via(&io.mac, shard, (&io.cfg.proxy, local), idx, &id);
    }

    /// Writes branch `b`'s request (§16.6) into `relay.fwd_buf`. Deterministic, so a
    /// retransmission is byte-identical to the first copy. `parsed`: the cell's request
    /// as the caller already parsed it (the datagram it was copied from), else it is
    /// parsed again from the cell.
    fn write_branch_request(&mut self, idx: u32, b: usize, parsed: Option<&Message<'_>>) {
        self.via_for(idx, b);
        let rr = self.relay.txns.cell(idx).record_route;
        let realm = self.io.cfg.auth.db.settings.realm.as_bytes();
        let mac = &self.io.mac;
        let proxy = &self.io.cfg.proxy;
        let Relay {
            txns,
            via_buf,
            rr_buf,
            fwd_buf,
            stats,
            tok_buf,
            ..
        } = &mut self.relay;
        let c = txns.cell(idx);
        let br = &c.branches[b];
        let reparsed;
        let req = match parsed {
            Some(m) => m,
            None => match Message::parse(&c.req) {
                Ok(m) => {
                    reparsed = m;
                    &reparsed
                }
                Err(_) => {
                    fwd_buf.clear();
                    return;
                }
            },
        };
        debug_assert_eq!(req.as_bytes(), &c.req[..], "parsed is the cell's request");
        if rr {
            // The dialog token: flow A where the request came from, flow B this branch's
            // destination, MACed over the Call-ID and the caller's tag.
            let from = req.from().ok();
            let caller = from.as_ref().and_then(|f| f.tag()).unwrap_or_default();
            let (a, bf) = (
                Flow {
                    local: c.up_local,
                    addr: c.up_dest,
                },
                Flow {
                    local: br.local,
                    addr: br.dest,
                },
            );
            tok_buf.clear();
            let ids = (req.call_id().unwrap_or_default(), caller, None);
            token::write(tok_buf, mac, ids, a, bf);
            write_record_route(rr_buf, proxy, (c.up_local, br.local), tok_buf);
        }
        // §18.2.1 / RFC 3581 §4: the sender's Via gets received (and rport filled) in the
        // copy we forward, so the responses, and a late 2xx sent by Via, find it behind NAT.
        let pop_via = match req.top_via() {
            Ok(v) => push_stamped_via(via_buf, &v, c.up_dest),
            Err(_) => false,
        };
        let mut extra: smallvec::SmallVec<[(&[u8], &[u8]); 2]> = smallvec::SmallVec::new();
        if br.route_edit && !br.route.is_empty() {
            extra.push((b"Route".as_slice(), br.route.as_slice()));
        }
        let consume = credentials_to_consume(req, realm, &mut extra);
        if consume {
            stats.credentials_consumed += 1;
        }
        let edits = ForwardEdits {
            request_uri: (!br.uri.is_empty()).then_some(br.uri.as_slice()),
            via: Some(via_buf.as_bytes()),
            pop_via,
            record_route: rr.then_some(rr_buf.as_bytes()),
            decrement_max_forwards: true,
            remove: removals(br.route_edit, consume),
            extra: &extra,
            ..ForwardEdits::default()
        };
        write_forward(fwd_buf, req, &edits);
    }

    fn push_fwd(&mut self, local: LocalId, dest: SocketAddr) {
        let buf = std::mem::take(&mut self.relay.fwd_buf);
        if !buf.is_empty() {
            self.io.out.push(local, dest, &buf);
        }
        self.relay.fwd_buf = buf;
    }

    /// Sends branch `b` for the first time and arms its timers: A and B (INVITE; the
    /// proxy's C once it is Proceeding), E and F otherwise (RFC 3261 §17.1.1.2, §17.1.2.2, §16.6 step 11).
    pub(crate) fn send_branch(&mut self, now: Millis, idx: u32, b: usize) {
        self.send_branch_parsed(now, idx, b, None);
    }

    /// [`Self::send_branch`] with the cell's request as already parsed (`parsed`).
    pub(crate) fn send_branch_parsed(
        &mut self,
        now: Millis,
        idx: u32,
        b: usize,
        parsed: Option<&Message<'_>>,
    ) {
        self.relay.stats.branches += 1;
        self.write_branch_request(idx, b, parsed);
        if self.switch_to_tcp(idx, b) {
            self.write_branch_request(idx, b, parsed);
        }
        let t1 = self.io.cfg.sip.t1_ms;
        let c = self.relay.txns.cell_mut(idx);
        let br = &mut c.branches[b];
        br.interval_ms = t1;
        br.timer_c_at = now.plus(crate::txn::TIMER_C_MS);
        let (local, dest, gen, invite) = (br.local, br.dest, c.gen, c.invite);
        self.push_fwd(local, dest);
        let bb = b as u8;
        if invite {
            self.arm(now, t1, timer_key(Timer::A, idx, gen, bb));
            self.arm(now, 64 * t1, timer_key(Timer::B, idx, gen, bb));
            // Timer C starts with the first provisional response (B covers Calling).
        } else {
            self.arm(now, t1, timer_key(Timer::E, idx, gen, bb));
            self.arm(now, 64 * t1, timer_key(Timer::F, idx, gen, bb));
        }
    }

    /// RFC 3261 §18.1.1: a request written for UDP (`relay.fwd_buf`) that is larger than
    /// `[proxy] udp_mtu` goes over TCP instead, when we listen on TCP. True when branch
    /// `b` was moved to a TCP socket (its request must be written again: Via, Record-Route).
    ///
    /// Not when the destination is a binding's registered flow ([`Branch::pinned`]): a
    /// phone behind NAT cannot take a new TCP connection, so the request stays on UDP and
    /// may be fragmented — what Kamailio's `udp_mtu_try_proto` does in practice too (its
    /// switch is for destinations that listen; a NATed flow keeps its transport).
    fn switch_to_tcp(&mut self, idx: u32, b: usize) -> bool {
        let proxy = &self.io.cfg.proxy;
        let br = &self.relay.txns.cell(idx).branches[b];
        if proxy.udp_mtu == 0
            || self.relay.fwd_buf.len() <= proxy.udp_mtu
            || br.pinned
            || proxy.transport_of(br.local) != crate::Transport::Udp
        {
            return false;
        }
        let Some(tcp) = proxy.socket_for(crate::Transport::Tcp, br.dest, br.local) else {
            return false;
        };
        self.relay.stats.udp_to_tcp += 1;
        self.relay.txns.cell_mut(idx).branches[b].local = tcp;
        true
    }

    /// Timer A / E: the branch's request again.
    pub(crate) fn resend_branch(&mut self, idx: u32, b: usize) {
        self.relay.stats.retransmissions_sent += 1;
        self.write_branch_request(idx, b, None);
        let br = &self.relay.txns.cell(idx).branches[b];
        let (local, dest) = (br.local, br.dest);
        self.push_fwd(local, dest);
    }

    /// The current bindings of `aor_uri` on this shard as relay targets, highest q first
    /// (the relay's own lookup: only what forwarding needs, no copy of the rest).
    pub(crate) fn local_targets(
        &mut self,
        now: Millis,
        aor_uri: &[u8],
    ) -> Result<smallvec::SmallVec<[Target; 2]>, LookupError> {
        let uri = sipedge_msg::Uri::parse(aor_uri).map_err(|_| LookupError::NotAnAor)?;
        let mut aor = std::mem::take(&mut self.relay.aor_buf);
        let result = match canonical_aor(&uri, self.io.cfg.registrar.case_sensitive, &mut aor) {
            Err(_) => Err(LookupError::NotAnAor),
            Ok(()) if owner_of(&aor, self.io.cfg.shards) != self.io.cfg.shard => {
                Err(LookupError::NotOwner(owner_of(&aor, self.io.cfg.shards)))
            }
            Ok(()) => {
                let (domain, user) = split_aor(&aor);
                let head = self.loc.head(self.loc.domain_id(domain), user);
                let mut out: smallvec::SmallVec<[Target; 2]> = self
                    .loc
                    .chain(head)
                    .map(|i| self.loc.get(i))
                    .filter(|b| b.expires_at > now)
                    .map(|b| Target {
                        uri: b.contact().to_vec(),
                        path: b.path().to_vec(),
                        source: b.source(),
                        local: LocalId(b.local),
                        q: b.q().unwrap_or(1000),
                        nated: b.nat.nated(),
                    })
                    .collect();
                out.sort_by_key(|t| std::cmp::Reverse(t.q));
                Ok(out)
            }
        };
        self.relay.aor_buf = aor;
        result
    }

    /// One branch per binding (§16.5 parallel forking), or, when there is none (the answer
    /// of another shard's lookup), one 404 and the cell ends at once — nothing was
    /// forwarded, so nothing is retransmitted (issue 13; 404 whether or not the user is
    /// provisioned: no enumeration). `parsed`: the cell's request as already parsed.
    pub(crate) fn fork(
        &mut self,
        now: Millis,
        idx: u32,
        targets: impl IntoIterator<Item = Target>,
        (route_edit, route): (bool, &[u8]),
        parsed: Option<&Message<'_>>,
    ) {
        let (mut failed_flows, mut no_transport) = (false, false);
        for t in targets.into_iter().take(MAX_BRANCHES) {
            let Some((local, mut dest)) =
                self.binding_destination(&t.uri, t.source, t.local, t.nated)
            else {
                // Issue 19: its Contact asks for a transport we do not serve.
                self.relay.stats.transport_refused += 1;
                no_transport = true;
                continue;
            };
            // RFC 3327 §5.3: the Path recorded at registration becomes the Route, and the
            // request goes to its first hop (proxy/path.rs).
            let hop =
                crate::proxy::path::first_hop(&t.path, t.source, |u| self.io.cfg.is_ours_uri(u));
            let (route_edit, route) = match hop {
                None => (route_edit, route.to_vec()),
                Some(h) => {
                    dest = h.dest;
                    (true, h.route)
                }
            };
            if dest == t.source && self.loc.dead_flows.contains(local, dest) {
                failed_flows = true; // RFC 5626 §5.3: not into a failed flow (`flows`)
                continue;
            }
            let mut branch = Branch::new(local, dest, (t.uri, route, route_edit), now);
            branch.pinned = t.nated || dest == t.source;
            self.relay.txns.cell_mut(idx).branches.push(branch);
        }
        if self.relay.txns.cell(idx).branches.is_empty() {
            self.relay.stats.refused += 1;
            let refusal = if failed_flows {
                RelayRefusal::FlowFailed // every binding's flow failed (RFC 5626 §5.3)
            } else if no_transport {
                RelayRefusal::TransportUnavailable
            } else {
                RelayRefusal::NotFound
            };
            let (code, reason) = refusal.reply();
            self.own_response(idx, code, reason);
            self.relay.txns.cell_mut(idx).set_state(Srv::Terminated);
            self.maybe_free(idx);
            return;
        }
        for b in 0..self.relay.txns.cell(idx).branches.len() {
            self.send_branch_parsed(now, idx, b, parsed);
        }
    }

    /// The owner shard answered a lookup the relay asked for.
    pub(crate) fn relay_lookup_reply(&mut self, now: Millis, reply: LookupReply) {
        let idx = reply.token as u32;
        let gen = (reply.token >> 32) as u32 & crate::txn::GEN_MASK;
        let Some(c) = self.relay.txns.get_mut(idx, gen) else {
            return;
        };
        if !c.lookup_pending {
            return;
        }
        c.lookup_pending = false;
        let reply_has_targets = !reply.contacts.is_empty();
        if !reply_has_targets && self.remote_after_mesh(now, idx) {
            return; // issue 20: the cluster is asked, or the peer's request refused
        }
        let targets = reply.contacts.into_iter().map(|c| Target {
            uri: c.uri,
            path: c.path,
            source: c.source,
            local: c.local,
            q: c.q.unwrap_or(1000),
            nated: c.received.is_some(),
        });
        if reply_has_targets {
            self.hundred_trying(idx, None);
        }
        self.fork(now, idx, targets, (false, &[]), None);
    }

    /// A response we generate for cell `idx` (RFC 3261 §8.2.6: Vias, From, To with our
    /// tag above 100, Call-ID, CSeq), sent upstream and kept for retransmissions (a 100 is
    /// not kept: a retransmitted INVITE gets a fresh one).
    pub(crate) fn own_response(&mut self, idx: u32, code: u16, reason: &[u8]) {
        self.own_response_parsed(idx, code, reason, None);
    }

    /// [`Self::own_response`] with the cell's request as already parsed (`parsed`).
    pub(crate) fn own_response_parsed(
        &mut self,
        idx: u32,
        code: u16,
        reason: &[u8],
        parsed: Option<&Message<'_>>,
    ) {
        let c = self.relay.txns.cell(idx);
        let reparsed;
        let req = match parsed {
            Some(m) => m,
            None => match Message::parse(&c.req) {
                Ok(m) => {
                    reparsed = m;
                    &reparsed
                }
                Err(_) => return,
            },
        };
        debug_assert_eq!(req.as_bytes(), &c.req[..], "parsed is the cell's request");
        // Keyed by the node secret, not a table seed: table-hash outputs never go out.
        // A 100 carries no tag (§8.2.6.2): not computed for it.
        let tag = (code > 100).then(|| {
            let from = req.from().ok();
            let v = self.io.mac.digest(
                crate::secret::Purpose::ToTag,
                &[
                    req.call_id().unwrap_or_default(),
                    from.as_ref().and_then(|f| f.tag()).unwrap_or_default(),
                    &c.loop_hash.to_le_bytes(),
                ],
            );
            sipedge_msg::fmt::hex_u64(v)
        });
        let up = c.up_dest;
        let ip_text = sipedge_msg::IpText::new(up.ip());
        let to = ResponseAddr::of(req.top_via().ok().as_ref(), up, ip_text.as_bytes());
        let spec = ResponseSpec {
            status: code,
            reason,
            to_tag: tag.as_ref().map(|t| &t[..]),
            received: to.received,
            rport: to.rport,
            ..Default::default()
        };
        let mut out = std::mem::take(&mut self.relay.fwd_buf);
        {
            let mut w = write_response(&mut out, req, &spec);
            w.header(b"Server", self.io.cfg.server_name.as_bytes());
            if code == 503 {
                // RFC 3261 §21.5.4: our overload 503s say when to come back (proxy::limits).
                w.header_u32(b"Retry-After", super::limits::OVERLOAD_RETRY_AFTER_SECS);
            }
            w.finish(b"");
        }
        let c = self.relay.txns.cell_mut(idx);
        if code > 100 {
            // Kept for retransmitted requests; a 100 is cheaper to make again than to keep.
            c.resp.clear();
            c.resp.extend_from_slice(&out);
        }
        let local = c.up_local;
        self.io.out.push(local, up, &out);
        self.relay.fwd_buf = out;
        self.io.stats.replies_out += 1;
    }

    /// The cell ends with a final response of our own (no branch was forwarded).
    pub(crate) fn finish_own(&mut self, now: Millis, idx: u32, refusal: RelayRefusal) {
        let (code, reason) = refusal.reply();
        if refusal != RelayRefusal::RequestTerminated {
            self.relay.stats.refused += 1;
        }
        self.own_response(idx, code, reason);
        self.server_completed(now, idx);
    }

    /// The server transaction sent its final (non-2xx) response: INVITE → Completed with
    /// G and H (§17.2.1); non-INVITE → Completed with J (§17.2.2).
    pub(crate) fn server_completed(&mut self, now: Millis, idx: u32) {
        let (t1, t2) = (self.io.cfg.sip.t1_ms, self.io.cfg.sip.t2_ms);
        let c = self.relay.txns.cell_mut(idx);
        c.set_state(Srv::Completed);
        let gen = c.gen;
        if c.invite {
            // Issue 16: a final non-2xx ends the call; its channels are released.
            self.dialog_failed(idx);
            let c = self.relay.txns.cell_mut(idx);
            c.g_interval_ms = t1.min(t2);
            self.arm(now, t1, timer_key(Timer::G, idx, gen, 0));
            self.arm(now, 64 * t1, timer_key(Timer::H, idx, gen, 0));
        } else {
            self.arm(now, 64 * t1, timer_key(Timer::J, idx, gen, 0));
        }
    }

    /// §16.10 / §9.1: cancel branch `b` — now when it is Proceeding, after its first
    /// provisional response when still Calling.
    pub(crate) fn cancel_branch(&mut self, now: Millis, idx: u32, b: usize) {
        let c = self.relay.txns.cell_mut(idx);
        match (c.branches[b].state(), c.branches[b].cancel()) {
            (Cli::Calling, Cancel::None) => c.set_cancel(b, Cancel::Pending),
            (Cli::Proceeding, Cancel::None | Cancel::Pending) => self.send_cancel(now, idx, b),
            _ => {}
        }
    }

    /// Sends the CANCEL for branch `b` and arms its retransmission and timeout.
    pub(crate) fn send_cancel(&mut self, now: Millis, idx: u32, b: usize) {
        let t1 = self.io.cfg.sip.t1_ms;
        let c = self.relay.txns.cell_mut(idx);
        let gen = c.gen;
        if matches!(c.branches[b].cancel(), Cancel::None | Cancel::Pending) {
            c.set_cancel(b, Cancel::Sent);
            c.branches[b].cancel_interval_ms = t1;
            self.arm(now, t1, timer_key(Timer::CancelE, idx, gen, b as u8));
            self.arm(now, 64 * t1, timer_key(Timer::CancelF, idx, gen, b as u8));
        }
        self.write_hop(idx, b, b"CANCEL", None);
    }

    /// Writes and queues a CANCEL or ACK for branch `b`.
    pub(crate) fn write_hop(&mut self, idx: u32, b: usize, method: &[u8], to: Option<&[u8]>) {
        self.via_for(idx, b);
        let Relay {
            txns,
            via_buf,
            fwd_buf,
            ..
        } = &mut self.relay;
        let c = txns.cell(idx);
        let br = &c.branches[b];
        write_hop_request(fwd_buf, method, c, br, via_buf, to);
        let (local, dest) = (br.local, br.dest);
        self.push_fwd(local, dest);
    }

    /// An ACK for a 2xx, forwarded statelessly (§16.11) with a Via of ours whose branch
    /// is derived from the incoming one.
    pub(crate) fn forward_ack(
        &mut self,
        local: LocalId,
        dest: SocketAddr,
        msg: &Message<'_>,
        ruri: Option<&[u8]>,
        route_edit: bool,
        route: &[u8],
    ) {
        let incoming = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch())
            .unwrap_or_default();
        // Keyed by the node secret, not a table seed: table-hash outputs never go out.
        let h = self
            .io
            .mac
            .digest(crate::secret::Purpose::AckBranch, &[incoming]);
        let realm = self.io.cfg.auth.db.settings.realm.as_bytes();
        let proxy = &self.io.cfg.proxy;
        let Relay {
            via_buf,
            fwd_buf,
            stats,
            ..
        } = &mut self.relay;
        via_buf.clear();
        via_buf.push_str(proxy.transport_of(local).via_prefix());
        write_advertised(via_buf, proxy, local);
        let mut branch = [0u8; ACK_BRANCH.branch_len()];
        ACK_BRANCH.encode(&[h], &mut branch);
        via_buf.push_str(";branch=");
        via_buf.push_str(std::str::from_utf8(&branch).unwrap_or_default());
        let mut extra: smallvec::SmallVec<[(&[u8], &[u8]); 2]> = smallvec::SmallVec::new();
        if route_edit && !route.is_empty() {
            extra.push((b"Route".as_slice(), route));
        }
        let consume = credentials_to_consume(msg, realm, &mut extra);
        if consume {
            stats.credentials_consumed += 1;
        }
        let edits = ForwardEdits {
            request_uri: ruri,
            via: Some(via_buf.as_bytes()),
            decrement_max_forwards: true,
            remove: removals(route_edit, consume),
            extra: &extra,
            ..ForwardEdits::default()
        };
        write_forward(fwd_buf, msg, &edits);
        self.push_fwd(local, dest);
    }
}
