//! The replies the edge writes itself, without keeping state (RFC 3261 §8.2 UAS behaviour):
//! the one `respond` path of every subsystem ([`Io::respond`]), the amplification bound and
//! the deterministic To tag. A leaf: it names no subsystem.

use std::net::SocketAddr;

use sipedge_msg::{
    write_response, HeaderName, Message, Method, ResponseAddr, ResponseSpec, ResponseWriter,
    Validated, Via,
};

use crate::io::Io;
use crate::output::LocalId;

impl Io {
    /// Overload shedding (issue 17, `protect`; RFC 3261 §21.5.4): a stateless 503 with a
    /// Retry-After drawn from `[overload]`'s range — no transaction, no authentication.
    /// `refresh`: a REGISTER of a bound AoR (counted apart from new requests).
    pub(crate) fn shed(
        &mut self,
        protect: &mut crate::protect::Protect,
        local: LocalId,
        remote: SocketAddr,
        req: Req<'_, '_>,
        refresh: bool,
    ) {
        protect.count_shed(refresh);
        let secs = protect.retry_after();
        self.respond(local, remote, req, (503, b"Service Unavailable"), |w| {
            w.header_u32(b"Retry-After", secs);
        });
    }

    /// The one path every reply the edge writes itself takes: builds a response to `req`
    /// and queues it to the address RFC 3261 §18.2.2 and RFC 3581 §4 give: the source IP,
    /// and the source port when the top Via carries `rport`, else the Via's sent-by port
    /// (5060 when absent); the source port when the Via is unreadable. `maddr` is ignored:
    /// answering to an address the sender chose would make the edge a reflector.
    /// `status` is a [`Refusal::reply`] or a success's status line.
    pub(crate) fn respond(
        &mut self,
        local: LocalId,
        remote: SocketAddr,
        req: Req<'_, '_>,
        (status, reason): (u16, &[u8]),
        extra: impl FnOnce(&mut ResponseWriter<'_>),
    ) {
        match req {
            Req::Raw(msg) => {
                let top_via = msg.top_via().ok();
                let tag = self.to_tag(msg, top_via.as_ref().and_then(|v| v.branch()));
                let ip_text = IpText::new(remote.ip());
                let parsed = (top_via.as_ref(), None);
                self.respond_parsed(
                    local,
                    (remote, &ip_text),
                    msg,
                    parsed,
                    &tag,
                    status,
                    reason,
                    extra,
                )
            }
            Req::Valid(msg, v) => {
                let tag = self.to_tag(msg, v.top_via.branch());
                let ip_text = IpText::new(remote.ip());
                let parsed = (Some(&v.top_via), Some(v.to_has_tag()));
                self.respond_parsed(
                    local,
                    (remote, &ip_text),
                    msg,
                    parsed,
                    &tag,
                    status,
                    reason,
                    extra,
                )
            }
            Req::Parsed(msg, p) => {
                let parsed = (p.top_via.as_ref(), Some(p.to_has_tag));
                let ip = (remote, &p.source_text);
                self.respond_parsed(local, ip, msg, parsed, &p.to_tag, status, reason, extra)
            }
        }
    }

    /// [`Io::respond`] once what the reply needs is at hand.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn respond_parsed(
        &mut self,
        local: LocalId,
        (remote, ip_text): (SocketAddr, &IpText),
        req: &Message<'_>,
        (top_via, to_has_tag): (Option<&Via<'_>>, Option<bool>),
        tag: &[u8; 16],
        status: u16,
        reason: &[u8],
        extra: impl FnOnce(&mut ResponseWriter<'_>),
    ) {
        let to = ResponseAddr::of(top_via, remote, ip_text.as_bytes());
        let spec = ResponseSpec {
            status,
            reason,
            to_tag: (status > 100).then_some(&tag[..]),
            received: to.received,
            rport: to.rport,
            top_via,
            to_has_tag,
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        {
            let mut w = write_response(&mut scratch, req, &spec);
            extra(&mut w);
        }
        // The status line, the copied headers and `extra` end here; Server comes after
        // them so that it is the first thing a reply over its size budget loses.
        let before_server = scratch.len();
        push_line(&mut scratch, b"Server", self.cfg.server_name.as_bytes());
        scratch.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        let send = self.fit_reply(&mut scratch, req, &spec, before_server);
        if send {
            // RFC 3261 §18.2.2: over a stream the reply goes down the connection the
            // request came on (its source), never to the Via's sent-by.
            let dest = if self.cfg.proxy.is_stream(local) {
                remote
            } else {
                to.dest
            };
            self.out.push(local, dest, &scratch);
            self.stats.replies_out += 1;
        }
        self.scratch = scratch;
    }

    /// Issue 13, the amplification rule: a reply to a request from a source nobody has
    /// verified goes out once, never retransmitted, and is at most [`AMPLIFICATION`] times
    /// the request's size (RFC 3261 §8.2.6.1 stateless replies; the same bound as QUIC's
    /// RFC 9000 §8.1 for unvalidated addresses), so the edge cannot be used to reflect more
    /// bytes at a spoofed source than it was sent. Over the bound the reply is shrunk —
    /// first without Server, then (when its extra headers are optional: Allow, Accept,
    /// Supported of an OPTIONS 200 or a 501) with only the headers §8.2.6.2 copies — and
    /// when even that is too large, or the status needs its extra header (401/407
    /// challenge §22.1, 405 Allow §21.4.6, 420 Unsupported §8.2.2.3, 421 Require, 423
    /// Min-Expires §10.3), it is not sent. Each case is counted. A REGISTER's 2xx lists
    /// the bindings: it is left alone when the request changed them (it carried a Contact)
    /// or its source was verified (digest, IP or CLI authentication); a *query* from an
    /// unverified source (open registrar, no Contact: it creates no state) obeys the bound
    /// like any stateless reply, and is not sent rather than sent without its contacts.
    /// Returns whether `scratch` is to be sent.
    fn fit_reply(
        &mut self,
        scratch: &mut Vec<u8>,
        req: &Message<'_>,
        spec: &ResponseSpec<'_>,
        before_server: usize,
    ) -> bool {
        let limit = req.as_bytes().len().saturating_mul(AMPLIFICATION);
        if scratch.len() <= limit
            || (req.method() == Some(Method::Register)
                && (200..300).contains(&spec.status)
                && self.register_reply_answers_state(req))
        {
            return true;
        }
        if req.method() == Some(Method::Register) && (200..300).contains(&spec.status) {
            self.stats.overload.replies_too_large += 1;
            self.stats.dropped += 1;
            return false;
        }
        scratch.truncate(before_server);
        scratch.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        if scratch.len() > limit && !matches!(spec.status, 401 | 405 | 407 | 420 | 421 | 423) {
            write_response(scratch, req, spec).finish(b"");
        }
        if scratch.len() > limit {
            self.stats.overload.replies_too_large += 1;
            self.stats.dropped += 1;
            return false;
        }
        self.stats.overload.replies_shrunk += 1;
        true
    }

    /// Whether a REGISTER's 2xx reports state its request changed (a Contact) or went to a
    /// verified source (the owner's auth check of this REGISTER passed with a method).
    fn register_reply_answers_state(&self, req: &Message<'_>) -> bool {
        req.header(HeaderName::Contact).is_some() || self.register_verified
    }

    /// A To tag derived from the request (seeded hash of the Call-ID, From and CSeq values
    /// and the top Via branch), so a retransmission — the same bytes again — gets the same
    /// tag (RFC 3261 §8.2.6.2, §16.11: stateless elements generate To tags
    /// deterministically). The raw values are hashed: no header is parsed again for it.
    fn to_tag(&self, req: &Message<'_>, branch: Option<&[u8]>) -> [u8; 16] {
        self.to_tag_of(
            req.header(HeaderName::CallId).unwrap_or_default(),
            req.header(HeaderName::From).unwrap_or_default(),
            branch.unwrap_or_default(),
            req.header(HeaderName::CSeq).unwrap_or_default(),
        )
    }

    /// [`Io::to_tag`] from values the caller already holds: the raw Call-ID, From and CSeq
    /// values and the top Via branch.
    pub(crate) fn to_tag_of(
        &self,
        call_id: &[u8],
        from: &[u8],
        branch: &[u8],
        cseq: &[u8],
    ) -> [u8; 16] {
        sipedge_msg::fmt::hex_u64(self.tag_hasher.hash(&[call_id, from, branch, cseq]))
    }
}

/// The request a reply answers, parsed as far as the caller got (nothing is parsed again).
#[derive(Clone, Copy)]
pub(crate) enum Req<'r, 'm> {
    /// Only the message (its validation failed): the top Via is read if it can be.
    Raw(&'r Message<'m>),
    /// A request that passed [`Message::validated`].
    Valid(&'r Message<'m>, &'r Validated<'m>),
    /// A request whose reply fields the caller already holds ([`ReplyFields`]).
    Parsed(&'r Message<'m>, &'r ReplyFields<'m>),
}

/// What a reply reads from its request, computed once by a caller that answers it more
/// than one way (the registrar).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplyFields<'a> {
    /// `None`: the top Via is too broken to read (the reply goes to the source address).
    pub(crate) top_via: Option<Via<'a>>,
    /// The To tag of the reply ([`Io::to_tag_of`]).
    pub(crate) to_tag: [u8; 16],
    /// The request's To already has a tag (the reply keeps it).
    pub(crate) to_has_tag: bool,
    /// The source IP as text (the reply's `received`).
    pub(crate) source_text: IpText,
}

/// A stateless reply is at most this many times the request's size (issue 13).
pub(crate) const AMPLIFICATION: usize = 3;

/// Appends `name: value` CRLF.
fn push_line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// An IP address as text, on the stack (moved to `sipedge-msg`, issue 14 item 4).
pub(crate) use sipedge_msg::IpText;
