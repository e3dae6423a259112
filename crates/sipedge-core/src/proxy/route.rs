//! Requests into the relay: server-transaction matching (§17.2.3), the proxy checks
//! (§16.3), route processing (§16.4), target determination (§16.5).

use std::net::SocketAddr;

use sipedge_msg::{HeaderName, Message, Method, NameAddr, Scheme, Uri, Validated, Via};

use crate::config::SUPPORTED;
use crate::lookup::LookupError;
use crate::output::LocalId;
use crate::proxy::forward::Target;
use crate::proxy::token::{Flow, Token};
use crate::proxy::RelayCx;
use crate::proxy::RELAY_TOKEN_BIT;
use crate::refusal::{Refusal, RelayRefusal};
use crate::shard::ShardMsg;
use crate::stateless::Req;
use crate::time::Millis;
use crate::txn::branch::OurBranch;
use crate::txn::table::{Branch, Srv};
use crate::txn::{timer_key, Timer};
use smallvec::SmallVec;

pub use crate::stats::ProxyStats;

/// How a request is routed (RFC 3261 §16.4).
pub(super) struct Plan {
    /// Replacement Request-URI (strict-route peer); `None` keeps it.
    pub(super) ruri: Option<Vec<u8>>,
    /// The Route headers are replaced by `route` (ours removed).
    pub(super) route_edit: bool,
    pub(super) route: Vec<u8>,
    /// The request has a To tag and our Route carries a dialog token that verifies for its
    /// Call-ID and tags: it goes to this end of the dialog (issue 13), unauthenticated.
    dialog: Option<Flow>,
    /// The first remaining Route's URI, if any.
    next_route: Option<Vec<u8>>,
}

/// A request's route, decided before its transaction exists ([`Core::relay_decide`]).
struct Decision {
    plan: Plan,
    in_dialog: bool,
    /// The next hop when no location lookup is needed.
    hop: Option<(LocalId, SocketAddr)>,
    /// The AoR looked up (empty: no lookup).
    aor: Vec<u8>,
    /// The lookup's answer on this shard (`None`: no lookup).
    local_targets: Option<Result<SmallVec<[Target; 2]>, LookupError>>,
    /// Who the out-of-dialog request was authenticated as (issue 16 limits).
    who: Option<crate::auth::AuthOk>,
}

/// The address a URI names, when its host is an IP literal (no DNS in the core yet).
pub(crate) fn uri_addr(uri: &Uri<'_>) -> Option<SocketAddr> {
    let port = uri
        .port()
        .unwrap_or(if matches!(uri.scheme(), Scheme::Sips) {
            5061
        } else {
            5060
        });
    Some(SocketAddr::new(sipedge_msg::host_ip(uri.host())?, port))
}

/// Option tags we support for Proxy-Require (the same as Require).
fn supported(tag: &[u8]) -> bool {
    SUPPORTED
        .split(',')
        .map(str::trim)
        .any(|s| !s.is_empty() && s.as_bytes().eq_ignore_ascii_case(tag))
}

impl RelayCx<'_> {
    fn via_is_ours(&self, via: &Via<'_>) -> bool {
        let port = via.port().unwrap_or(5060);
        self.io.cfg.is_our_domain(via.host())
            && crate::proxy::advertise::port_is_ours(&self.io.cfg.proxy, port)
    }

    /// The server-transaction key (RFC 3261 §17.2.3): top-Via branch, sent-by and method
    /// (ACK counts as INVITE); without an RFC 3261 branch, the RFC 2543 fields —
    /// Request-URI, From tag, Call-ID, CSeq number, top Via — minus the To tag, which the
    /// ACK carries from our response.
    pub(crate) fn server_key(
        &self,
        msg: &Message<'_>,
        req: &Validated<'_>,
        method: Method<'_>,
    ) -> u64 {
        let class = match method {
            Method::Invite | Method::Ack => b"INVITE".as_slice(),
            m => m.as_bytes(),
        };
        let via = &req.top_via;
        match Some(via).filter(|v| v.has_rfc3261_branch()) {
            Some(v) => {
                let port = v.port().unwrap_or(5060).to_le_bytes();
                self.loc
                    .hasher()
                    .hash(&[v.branch().unwrap_or_default(), v.host(), &port, class])
            }
            None => {
                let seq = req.cseq.seq.to_le_bytes();
                self.loc.hasher().hash(&[
                    msg.request_uri_raw().unwrap_or_default(),
                    req.from.tag().unwrap_or_default(),
                    req.call_id,
                    &seq,
                    via.raw(),
                    class,
                ])
            }
        }
    }

    /// The loop-detection value of §16.6 step 8 (To tag, From tag, Call-ID, Request-URI as
    /// received, CSeq number, Proxy-Require; the top Via is left out so a looped copy,
    /// which arrives under another hop's Via, hashes the same).
    fn loop_hash(&self, msg: &Message<'_>, req: &Validated<'_>) -> u32 {
        let seq = req.cseq.seq.to_le_bytes();
        self.loc.hasher().hash(&[
            req.to.tag().unwrap_or_default(),
            req.from.tag().unwrap_or_default(),
            req.call_id,
            msg.request_uri_raw().unwrap_or_default(),
            &seq,
            msg.header(HeaderName::ProxyRequire).unwrap_or_default(),
        ]) as u32
    }

    /// Entry point for every request before the stateless handlers: true when the relay
    /// took it. REGISTER, OPTIONS to the edge itself, an unmatched CANCEL (481) and
    /// non-SIP schemes (416) are left to them.
    pub(crate) fn relay_request(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        req: &Validated<'_>,
    ) -> bool {
        let Some(method) = msg.method() else {
            return false;
        };
        let Some(uri) = req.request_uri else {
            return false;
        };
        if !matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) {
            return false;
        }
        match method {
            Method::Register => return false,
            Method::Ack => {
                self.relay_ack(now, local, remote, msg, req);
                return true;
            }
            Method::Cancel => return self.relay_cancel(now, local, remote, msg, req),
            // A request for the edge itself (no user, our host, no Route): the edge is
            // the UAS — OPTIONS 200, others 405/501 (stateless).
            _ if uri.user().is_none()
                && self.io.cfg.is_ours_uri(&uri)
                && msg.count(HeaderName::Route) == 0 =>
            {
                return false
            }
            _ => {}
        }
        let Some((key, loop_hash)) = self.relay_checks(local, remote, msg, req, method) else {
            return true;
        };
        let Some(d) = self.relay_decide(now, local, remote, (msg, req), &uri) else {
            return true;
        };
        // Issue 16: a BYE ends its tracked call; a new call takes its channels or is refused.
        if method == Method::Bye && d.in_dialog {
            self.dialog_bye(req);
        }
        let charge = if method == Method::Invite && !d.in_dialog {
            let who = d.who.as_ref();
            match self.limits_admit(now, local, remote, (msg, req), who, &d.aor) {
                Some(c) => Some(c),
                None => return true,
            }
        } else {
            None
        };
        // A transaction from here on (§16.6–16.7), if one fits (issue 13: 503 if not).
        if !self.admit_transaction(local, remote, msg, req) {
            return true;
        }
        let idx = self.new_cell(local, remote, (msg, req), key, loop_hash, d.in_dialog);
        if let Some(c) = charge {
            self.dialog_hold(idx, c);
        }
        self.relay_start(now, idx, d, msg);
        true
    }

    /// Where a request goes, decided before any transaction exists (§16.4–16.5, §22.3,
    /// issue 13): `None` when it was refused here with one stateless reply.
    fn relay_decide(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        (msg, req): (&Message<'_>, &Validated<'_>),
        uri: &Uri<'_>,
    ) -> Option<Decision> {
        let plan = self.plan_route(msg, req, uri);
        let in_dialog = plan.dialog.is_some();
        if req.to_has_tag() && !in_dialog {
            // Issue 13 (Kamailio's default script: `has_totag` → `loose_route()`, else 404
            // "Not here"): a To tag alone never makes a request in-dialog — only our Route
            // with a token that verifies for this dialog does.
            self.relay.stats.tokens_refused += 1;
            self.refuse(local, remote, msg, req, RelayRefusal::NotHere);
            return None;
        }
        // §22.3: an out-of-dialog request is authenticated (IP/CLI, else digest with a 407
        // challenge) before any transaction exists; in-dialog requests are vouched for by
        // our Record-Route's dialog token instead.
        let (outbound_ok, who) = if in_dialog {
            (false, None)
        } else {
            self.relay_authenticate(now, local, remote, msg, req)?
        };
        let target_raw: Vec<u8> = plan.ruri.clone().unwrap_or_else(|| uri.raw().to_vec());
        let Ok(target) = Uri::parse(&target_raw) else {
            self.refuse(local, remote, msg, req, RelayRefusal::BadRoute);
            return None;
        };
        let lookup = !in_dialog && plan.next_route.is_none() && self.io.cfg.is_ours_uri(&target);
        if !lookup && !in_dialog {
            // §16.5 and the open-relay rule: outbound only for an authenticated sender,
            // when allowed.
            if !(self.io.cfg.proxy.allow_outbound && outbound_ok) {
                self.refuse(local, remote, msg, req, RelayRefusal::RelayingForbidden);
                return None;
            }
        }
        // In a dialog: the end its token names (RFC 5626 §5.3 flow-token routing), never
        // the Request-URI or a Route the sender wrote.
        let hop = match (plan.dialog, &plan.next_route) {
            (Some(f), _) if self.loc.dead_flows.contains(f.local, f.addr) => {
                // RFC 5626 §5.3: that end's flow failed (`flows`).
                self.refuse(local, remote, msg, req, RelayRefusal::FlowFailed);
                return None;
            }
            (Some(f), _) if self.flow_ok(f) => Ok((f.local, f.addr)),
            (Some(_), _) => Err(RelayRefusal::NextHopUnresolvable),
            // Issue 19: by a socket of the transport the URI asks for.
            (None, Some(r)) => match Uri::parse(r) {
                Ok(u) => self.uri_hop(&u, local),
                Err(_) => Err(RelayRefusal::NextHopUnresolvable),
            },
            (None, None) => self.uri_hop(&target, local),
        };
        let hop = match hop {
            Ok(h) => Some(h),
            Err(_) if lookup => None,
            Err(r) => {
                self.refuse(local, remote, msg, req, r);
                return None;
            }
        };
        // The targets of a lookup this shard can answer, before any transaction exists: a
        // request that finds none is refused with one stateless reply (issue 13: no 100
        // Trying before the decision to forward, no retransmitted final response). 404 for
        // an unknown and for an unregistered user alike (no enumeration; Kamailio's
        // `lookup()` answers 404 for both).
        let aor = if lookup {
            target_raw.clone()
        } else {
            Vec::new()
        };
        let local_targets = if lookup {
            match self.local_targets(now, &aor) {
                Ok(t) if t.is_empty() => {
                    // Issue 20: with the cluster on, the cell waits for a remote lookup
                    // (`proxy::remote`); else 404 as always.
                    if let Some(r) = self.no_binding_here(remote) {
                        self.refuse(local, remote, msg, req, r);
                        return None;
                    }
                    Some(Ok(t))
                }
                Err(LookupError::NotAnAor) => {
                    self.refuse(local, remote, msg, req, RelayRefusal::NotFound);
                    return None;
                }
                r => Some(r),
            }
        } else {
            None
        };
        Some(Decision {
            plan,
            in_dialog,
            hop,
            aor,
            local_targets,
            who,
        })
    }

    /// §22.3 for an out-of-dialog request: `(may go outbound, who)`, or `None` when it was
    /// rejected here (one challenge or refusal sent).
    fn relay_authenticate(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        req: &Validated<'_>,
    ) -> Option<(bool, Option<crate::auth::AuthOk>)> {
        if self.is_peer(remote) {
            // Issue 20: a peer edge relays a call for a user it found registered here; it
            // authenticated the caller (and removed our realm's credentials). Trusted like
            // an `[[ip_auth]]` source for a local user, never for relaying out.
            self.relay.stats.peer_requests += 1;
            return Some((false, None));
        }
        match self
            .authenticator()
            .authenticate_with(now, remote, msg, Some(req.from.uri().host()))
        {
            crate::auth::AuthOutcome::Authenticated(ok) => {
                Some((self.may_go_outbound(&ok), Some(ok)))
            }
            crate::auth::AuthOutcome::Rejected(r) => {
                self.relay.stats.refused += 1;
                self.authenticator()
                    .reject_request(now, local, remote, (msg, None), r);
                None
            }
        }
    }

    /// The new cell `idx` starts: forked to the local targets, a lookup asked of the
    /// owner shard, or the one next hop (§16.6). `msg`: the request the cell stores, as
    /// parsed on arrival (not parsed again for the 100 and the branches).
    fn relay_start(&mut self, now: Millis, idx: u32, d: Decision, msg: &Message<'_>) {
        let Decision {
            plan,
            hop,
            aor,
            local_targets,
            ..
        } = d;
        let Plan {
            ruri,
            route_edit,
            route,
            ..
        } = plan;
        match local_targets {
            // Issue 20: no binding here, the cluster is asked (`proxy::remote`).
            Some(Ok(targets)) if targets.is_empty() => self.start_remote(now, idx, Some(msg)),
            Some(Ok(targets)) => {
                self.hundred_trying(idx, Some(msg));
                self.fork(now, idx, targets, (route_edit, &route), Some(msg));
            }
            Some(Err(LookupError::NotOwner(owner))) => {
                // The 100 Trying waits for the owner's answer (issue 13).
                let c = self.relay.txns.cell_mut(idx);
                c.lookup_pending = true;
                let token = RELAY_TOKEN_BIT
                    | u64::from(c.gen & crate::txn::GEN_MASK) << 32
                    | u64::from(idx);
                self.relay.stats.lookups_remote += 1;
                self.io
                    .shard_out
                    .push_back((owner, ShardMsg::Lookup { aor, token }));
                self.arm_lookup_timer(now, idx);
            }
            Some(Err(LookupError::NotAnAor)) => {}
            None => {
                if let Some((out_local, dest)) = hop {
                    self.hundred_trying(idx, Some(msg));
                    let b = Branch::new(
                        out_local,
                        dest,
                        (ruri.unwrap_or_default(), route, route_edit),
                        now,
                    );
                    self.relay.txns.cell_mut(idx).branches.push(b);
                    self.send_branch_parsed(now, idx, 0, Some(msg));
                }
            }
        }
    }

    /// Before any routing (RFC 3261 §16.3, §17.2.3): a retransmission meets its
    /// transaction; Max-Forwards, loops and Proxy-Require are checked. `None`: answered
    /// here; else the server transaction key and the §16.6 loop hash.
    fn relay_checks(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        req: &Validated<'_>,
        method: Method<'_>,
    ) -> Option<(u64, u32)> {
        // §17.2.3: a retransmission meets its transaction and gets the last response.
        let key = self.server_key(msg, req, method);
        if let Some(idx) = self.relay.txns.find(key) {
            self.relay.stats.retransmissions_absorbed += 1;
            let c = self.relay.txns.cell(idx);
            if c.resp.is_empty()
                && c.invite
                && c.state() == Srv::Trying
                && (!c.lookup_pending || c.remote)
            {
                self.own_response(idx, 100, b"Trying");
                return None;
            }
            if !c.resp.is_empty()
                && matches!(c.state(), Srv::Trying | Srv::Proceeding | Srv::Completed)
            {
                self.io.out.push(c.up_local, c.up_dest, &c.resp);
            }
            return None;
        }
        // §16.3 step 3.
        if req.max_forwards == Some(0) {
            self.refuse(local, remote, msg, req, RelayRefusal::TooManyHops);
            return None;
        }
        // §16.3 step 4.
        let loop_hash = self.loop_hash(msg, req);
        let looped = req.vias(msg).flatten().any(|v| {
            v.branch()
                .and_then(|b| OurBranch::decode(b, &self.io.mac))
                .is_some_and(|b| b.loop_hash == loop_hash)
                && self.via_is_ours(&v)
        });
        if looped {
            self.refuse(local, remote, msg, req, RelayRefusal::LoopDetected);
            return None;
        }
        // §16.3 step 5.
        if let Some(tag) = msg.proxy_require().find(|t| !supported(t)) {
            self.relay.stats.refused += 1;
            let r = RelayRefusal::BadExtension.reply();
            self.io
                .respond(local, remote, Req::Valid(msg, req), r, |w| {
                    w.header(b"Unsupported", tag);
                });
            return None;
        }
        Some((key, loop_hash))
    }

    /// §16.2 / §17.2.1: an INVITE about to be forwarded gets 100 Trying at once, so the
    /// UAC stops retransmitting. `parsed`: the cell's request as already parsed.
    pub(crate) fn hundred_trying(&mut self, idx: u32, parsed: Option<&Message<'_>>) {
        if self.relay.txns.cell(idx).invite {
            self.own_response_parsed(idx, 100, b"Trying", parsed);
        }
    }

    /// A flow from a dialog token names one of our sockets.
    fn flow_ok(&self, f: Flow) -> bool {
        usize::from(f.local.0) < self.io.cfg.proxy.advertise.len().max(1)
    }

    /// A refusal before any transaction exists: a stateless reply (a retransmission gets
    /// the same one).
    fn refuse(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        req: &Validated<'_>,
        refusal: RelayRefusal,
    ) {
        self.relay.stats.refused += 1;
        self.io
            .respond(local, remote, Req::Valid(msg, req), refusal.reply(), |w| {
                if refusal == RelayRefusal::TransportUnavailable {
                    // RFC 3261 §20.43: 399 (miscellaneous), naming what is missing.
                    w.header(
                        b"Warning",
                        b"399 sipedge \"No socket for the target's transport\"",
                    );
                }
            });
    }

    /// RFC 3261 §16.4: a Request-URI that is our Record-Route (a strict router before us)
    /// is replaced by the last Route; our own top Route is removed.
    ///
    /// A request with a To tag whose removed Route (or strict-routed Request-URI) of ours
    /// carries a dialog token that verifies for its Call-ID and tags gets `dialog`: the end
    /// of the dialog it goes to ([`crate::proxy::token`]).
    pub(super) fn plan_route(&self, msg: &Message<'_>, req: &Validated<'_>, uri: &Uri<'_>) -> Plan {
        let routes: smallvec::SmallVec<[&[u8]; 4]> = msg.header_items(HeaderName::Route).collect();
        let mut rest: &[&[u8]] = &routes;
        let mut plan = Plan {
            ruri: None,
            route_edit: false,
            route: Vec::new(),
            dialog: None,
            next_route: None,
        };
        let to_tag = req.to.tag().filter(|_| req.to_has_tag());
        if !rest.is_empty() && uri.user().is_none() && self.io.cfg.is_ours_uri(uri) {
            if let Some(last) = rest.last().and_then(|r| NameAddr::parse(r).ok()) {
                plan.ruri = Some(last.uri().raw().to_vec());
                rest = &rest[..rest.len() - 1];
                plan.route_edit = true;
                plan.dialog = to_tag.and_then(|t| self.dialog_of(uri, req, t));
            }
        }
        // RFC 5658 §4: our double Record-Route comes back as two Routes of ours; both go.
        for _ in 0..2 {
            let Some(first) = rest.first().and_then(|r| NameAddr::parse(r).ok()) else {
                break;
            };
            if !self.io.cfg.is_ours_uri(first.uri()) {
                break;
            }
            rest = &rest[1..];
            plan.route_edit = true;
            if plan.dialog.is_none() {
                plan.dialog = to_tag.and_then(|t| self.dialog_of(first.uri(), req, t));
            }
        }
        if plan.route_edit {
            for (i, r) in rest.iter().enumerate() {
                if i > 0 {
                    plan.route.extend_from_slice(b", ");
                }
                plan.route.extend_from_slice(r);
            }
        }
        plan.next_route = rest
            .first()
            .and_then(|r| NameAddr::parse(r).ok())
            .map(|a| a.uri().raw().to_vec());
        plan
    }

    /// The end of the dialog a request with To tag `to_tag` goes to, when `uri` (a Route
    /// or Request-URI of ours) carries a dialog token that verifies for it.
    fn dialog_of(&self, uri: &Uri<'_>, req: &Validated<'_>, to_tag: &[u8]) -> Option<Flow> {
        let t = Token::parse(uri.params().value(b"sed")?)?;
        let from_tag = req.from.tag().unwrap_or_default();
        t.destination(&self.io.mac, req.call_id, from_tag, to_tag)
    }

    /// A new cell for `msg` (its server transaction).
    fn new_cell(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        (msg, req): (&Message<'_>, &Validated<'_>),
        key: u64,
        loop_hash: u32,
        in_dialog: bool,
    ) -> u32 {
        self.relay.stats.transactions += 1;
        let method = msg.method();
        let dialog_creating = matches!(
            method,
            Some(Method::Invite | Method::Subscribe | Method::Refer | Method::Notify)
        );
        // §18.2.2 / RFC 3581 §4: responses go to the source IP, and to the source port
        // when the top Via asks for rport, else the sent-by port; over a stream, down the
        // connection the request came on (§18.2.2: the source, whatever the Via says).
        let up_dest = if self.io.cfg.proxy.is_stream(local) {
            remote
        } else {
            sipedge_msg::response_dest(&req.top_via, remote)
        };
        let record_route = self.io.cfg.proxy.record_route && dialog_creating && !in_dialog;
        let idx = self.relay.txns.insert(key);
        let c = self.relay.txns.cell_mut(idx);
        c.invite = method == Some(Method::Invite);
        c.up_local = local;
        c.up_dest = up_dest;
        c.req.extend_from_slice(msg.as_bytes());
        c.loop_hash = loop_hash;
        c.record_route = record_route;
        c.g_interval_ms = self.io.cfg.sip.t1_ms;
        idx
    }

    /// ACK (RFC 3261 §17.2.1): for our non-2xx final response it ends the server
    /// transaction here (hop by hop); any other ACK (a 2xx's) is forwarded end to end,
    /// statelessly (§16.11), to the dialog end its token names — only when its Route of
    /// ours carries a token that verifies (an ACK is never challenged, §22.1).
    fn relay_ack(
        &mut self,
        now: Millis,
        _local: LocalId,
        _remote: SocketAddr,
        msg: &Message<'_>,
        req: &Validated<'_>,
    ) {
        let key = self.server_key(msg, req, Method::Ack);
        if let Some(idx) = self.relay.txns.find(key) {
            let t4 = self.io.cfg.sip.t4_ms;
            let c = self.relay.txns.cell_mut(idx);
            if c.invite && matches!(c.state(), Srv::Completed | Srv::Confirmed) {
                if c.state() == Srv::Completed {
                    c.set_state(Srv::Confirmed);
                    let k = timer_key(Timer::I, idx, c.gen, 0);
                    self.arm(now, t4, k);
                }
                self.relay.stats.acks_absorbed += 1;
                return;
            }
        }
        if req.max_forwards == Some(0) {
            self.io.stats.dropped += 1;
            return;
        }
        let Some(uri) = req.request_uri else { return };
        // An ACK is never challenged (§22.1): it goes only along a dialog token of ours
        // that verifies, to that dialog's end.
        let plan = self.plan_route(msg, req, &uri);
        let Some(f) = plan
            .dialog
            .filter(|&f| self.flow_ok(f) && !self.loc.dead_flows.contains(f.local, f.addr))
        else {
            // No transaction and nowhere to go (or a failed flow, RFC 5626 §5.3): absorbed
            // (an ACK has no response).
            self.io.stats.dropped += 1;
            return;
        };
        self.relay.stats.acks_forwarded += 1;
        self.forward_ack(
            f.local,
            f.addr,
            msg,
            plan.ruri.as_deref(),
            plan.route_edit,
            &plan.route,
        );
    }

    /// CANCEL (RFC 3261 §9.2, §16.10): matched to its INVITE by the INVITE's key; answered
    /// 200 here and sent on every pending branch. No INVITE: left to the stateless 481.
    fn relay_cancel(
        &mut self,
        now: Millis,
        local: LocalId,
        remote: SocketAddr,
        msg: &Message<'_>,
        req: &Validated<'_>,
    ) -> bool {
        let key = self.server_key(msg, req, Method::Invite);
        let Some(idx) = self
            .relay
            .txns
            .find(key)
            .filter(|&i| self.relay.txns.cell(i).invite)
        else {
            return false;
        };
        self.relay.stats.cancels += 1;
        self.io
            .respond(local, remote, Req::Valid(msg, req), (200, b"OK"), |_| {});
        let c = self.relay.txns.cell_mut(idx);
        if matches!(c.state(), Srv::Trying | Srv::Proceeding) && !c.canceled {
            c.canceled = true;
            if c.lookup_pending {
                // Nothing was forwarded yet: the INVITE ends here with 487.
                self.clear_lookup(idx);
                self.finish_own(now, idx, RelayRefusal::RequestTerminated);
                return true;
            }
            for b in 0..c.branches.len() {
                self.cancel_branch(now, idx, b);
            }
        }
        true
    }
}
