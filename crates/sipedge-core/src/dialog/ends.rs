//! What a confirmed dialog keeps to send requests of its own to both ends (issue 16 item 1:
//! in-dialog keepalives and the BYE that ends a call), packed in one heap block.
//!
//! RFC 3261 §12.2.1.1: a request within a dialog has the remote target as Request-URI, the
//! route set as Route, the local URI and tag in From, the remote URI and tag in To, the
//! dialog's Call-ID and a CSeq of the local sequence space. The edge speaks for the caller
//! toward the callee (side B) and for the callee toward the caller (side A):
//!
//! | toward | Request-URI | Route | From | To |
//! | --- | --- | --- | --- | --- |
//! | A (caller) | the INVITE's Contact | Record-Route entries after ours in the 2xx | callee URI + tag | caller URI + tag |
//! | B (callee) | the 2xx's Contact | Record-Route entries before ours, reversed | caller URI + tag | callee URI + tag |
//!
//! Each goes to that end's flow — the one the Record-Route token names (the socket and the
//! address the relay itself uses for the dialog's requests), never a URI from the wire.
//!
//! Layout: `awaiting (1) · ping sent ms mod 2³² (4) · INVITE CSeq (4) · flags (1) · flow A ·
//! flow B` (a flow: socket 2, IP 4 or 16, port 2), then [`FIELDS`] strings, each its length
//! (one byte; two for the route sets) and its bytes. At most [`MAX_ENDS_BYTES`], and at most
//! 255 bytes a string but the route sets: a dialog whose fields do not fit is tracked
//! without keepalives or BYE (counted `unreachable`).
//!
//! A remote target that is exactly `sip:USER@` + its end's flow (`sip:ADDR` without a user)
//! — a phone whose Contact is the address it sends from, the common case — keeps only
//! `USER` and a flag bit, and is rebuilt byte for byte when a request is written (issue 16:
//! the block of a typical call fits mimalloc's 160-byte class instead of 192).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::output::{Flow, LocalId};
use crate::txn::table::Cell;

/// Largest packed block: a dialog whose fields need more is tracked without keepalives.
pub(crate) const MAX_ENDS_BYTES: usize = 1024;

/// The strings kept, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Field {
    CallId = 0,
    CallerTag,
    CalleeTag,
    CallerUri,
    CalleeUri,
    /// The INVITE's Contact URI (the caller's remote target).
    CallerTarget,
    /// The 2xx's Contact URI (the callee's remote target).
    CalleeTarget,
    /// Route toward the caller (may be empty).
    RouteA,
    /// Route toward the callee (may be empty).
    RouteB,
}

/// Number of [`Field`]s.
pub(crate) const FIELDS: usize = 9;

/// Bytes of the length of field `i`: the route sets (the last two) may pass 255 bytes.
fn len_bytes(i: usize) -> usize {
    if i >= Field::RouteA as usize {
        2
    } else {
        1
    }
}

const AWAITING: usize = 0;
const SENT: usize = 1;
const CSEQ: usize = 5;
const FLAGS: usize = 9;
/// Flag bits: flow A / B is IPv6; the caller's / callee's target is its flow (user kept).
const A_V6: u8 = 1;
const B_V6: u8 = 2;
const A_TARGET_IS_FLOW: u8 = 4;
const B_TARGET_IS_FLOW: u8 = 8;
const FLOWS: usize = 10;

/// Side A (the caller) or B (the callee).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    A = 0,
    B = 1,
}

impl Side {
    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

fn flow_len(v6: bool) -> usize {
    2 + if v6 { 16 } else { 4 } + 2
}

fn put_flow(out: &mut Vec<u8>, f: Flow) {
    out.extend_from_slice(&f.local.0.to_be_bytes());
    match f.addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&f.addr.port().to_be_bytes());
}

fn get_flow(s: &[u8], v6: bool) -> Option<Flow> {
    let local = LocalId(u16::from_be_bytes([*s.first()?, *s.get(1)?]));
    let ip_len = if v6 { 16 } else { 4 };
    let ip = s.get(2..2 + ip_len)?;
    let ip = if v6 {
        let mut o = [0u8; 16];
        o.copy_from_slice(ip);
        IpAddr::V6(Ipv6Addr::from(o))
    } else {
        IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
    };
    let p = s.get(2 + ip_len..4 + ip_len)?;
    Some(Flow {
        local,
        addr: SocketAddr::new(ip, u16::from_be_bytes([p[0], p[1]])),
    })
}

/// `sip:USER@ADDR`, or `sip:ADDR` when `user` is empty, with `ADDR` the address as a URI
/// writes it (`1.2.3.4:5060`, `[2001:db8::1]:5060`).
fn write_flow_uri(out: &mut Vec<u8>, user: &[u8], addr: SocketAddr) {
    out.extend_from_slice(b"sip:");
    if !user.is_empty() {
        out.extend_from_slice(user);
        out.push(b'@');
    }
    out.extend_from_slice(&addr_text(addr));
}

/// `addr` as `Display` writes it (`ip:port`, `[ip]:port` for IPv6), on the stack, without
/// `fmt` (about 2,500 instructions per call saved on the relayed call).
fn addr_text(addr: SocketAddr) -> smallvec::SmallVec<[u8; 64]> {
    let mut buf = smallvec::SmallVec::new();
    let ip = sipedge_msg::IpText::new(addr.ip());
    if addr.is_ipv6() {
        buf.push(b'[');
        buf.extend_from_slice(ip.as_bytes());
        buf.push(b']');
    } else {
        buf.extend_from_slice(ip.as_bytes());
    }
    buf.push(b':');
    let mut port = [0u8; 5];
    let mut i = port.len();
    let mut p = addr.port();
    loop {
        i -= 1;
        port[i] = b'0' + (p % 10) as u8;
        p /= 10;
        if p == 0 {
            break;
        }
    }
    buf.extend_from_slice(&port[i..]);
    buf
}

/// The user part of `target` when `target` is exactly what [`write_flow_uri`] rebuilds from
/// it and `addr` (compared with the address text, no allocation).
fn user_if_flow(target: &[u8], addr: SocketAddr) -> Option<&[u8]> {
    let rest = target.strip_prefix(b"sip:")?;
    let (user, host) = match rest.iter().rposition(|&c| c == b'@') {
        Some(i) if i > 0 => (&rest[..i], &rest[i + 1..]),
        Some(_) => return None, // `sip:@host` is not what write_flow_uri writes
        None => (&b""[..], rest),
    };
    (host == addr_text(addr).as_slice()).then_some(user)
}

/// Packs a dialog's ends; `None` when the fields pass [`MAX_ENDS_BYTES`].
pub(crate) fn pack(
    a: Flow,
    b: Flow,
    invite_cseq: u32,
    fields: &[&[u8]; FIELDS],
) -> Option<Box<[u8]>> {
    let mut fields = *fields;
    let mut flags = (u8::from(a.addr.is_ipv6()) * A_V6) | (u8::from(b.addr.is_ipv6()) * B_V6);
    for (i, flow, bit) in [
        (Field::CallerTarget, a, A_TARGET_IS_FLOW),
        (Field::CalleeTarget, b, B_TARGET_IS_FLOW),
    ] {
        if let Some(user) = user_if_flow(fields[i as usize], flow.addr) {
            fields[i as usize] = user;
            flags |= bit;
        }
    }
    let flows = flow_len(a.addr.is_ipv6()) + flow_len(b.addr.is_ipv6());
    let strings: usize = fields
        .iter()
        .enumerate()
        .map(|(i, f)| len_bytes(i) + f.len())
        .sum();
    let total = FLOWS + flows + strings;
    let short = fields[..Field::RouteA as usize]
        .iter()
        .all(|f| f.len() <= 255);
    if total > MAX_ENDS_BYTES || !short {
        return None;
    }
    let mut out = Vec::with_capacity(total);
    out.push(0);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&invite_cseq.to_be_bytes());
    out.push(flags);
    put_flow(&mut out, a);
    put_flow(&mut out, b);
    for (i, f) in fields.iter().enumerate() {
        // Checked above: a short field fits a u8, any field a u16 (total ≤ MAX_ENDS_BYTES).
        if len_bytes(i) == 1 {
            out.push(f.len() as u8);
        } else {
            out.extend_from_slice(&(f.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(f);
    }
    Some(out.into_boxed_slice())
}

/// A read view of a packed block (made by [`pack`] only; a malformed one reads as empty).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ends<'a>(pub(crate) &'a [u8]);

impl<'a> Ends<'a> {
    /// The flow of `side`.
    pub(crate) fn flow(&self, side: Side) -> Option<Flow> {
        let flags = *self.0.get(FLAGS)?;
        let a_len = flow_len(flags & A_V6 != 0);
        match side {
            Side::A => get_flow(self.0.get(FLOWS..)?, flags & A_V6 != 0),
            Side::B => get_flow(self.0.get(FLOWS + a_len..)?, flags & B_V6 != 0),
        }
    }

    /// Writes the remote target of `side` (the Request-URI of a request toward it).
    pub(crate) fn write_target(&self, side: Side, out: &mut Vec<u8>) {
        let (field, bit) = match side {
            Side::A => (Field::CallerTarget, A_TARGET_IS_FLOW),
            Side::B => (Field::CalleeTarget, B_TARGET_IS_FLOW),
        };
        let stored = self.field(field);
        let flags = self.0.get(FLAGS).copied().unwrap_or(0);
        match self.flow(side).filter(|_| flags & bit != 0) {
            Some(flow) => write_flow_uri(out, stored, flow.addr),
            None => out.extend_from_slice(stored),
        }
    }

    pub(crate) fn invite_cseq(&self) -> u32 {
        self.0
            .get(CSEQ..CSEQ + 4)
            .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// The string `f` (empty when absent).
    pub(crate) fn field(&self, f: Field) -> &'a [u8] {
        let Some(&flags) = self.0.get(FLAGS) else {
            return b"";
        };
        let mut at = FLOWS + flow_len(flags & A_V6 != 0) + flow_len(flags & B_V6 != 0);
        for i in 0..FIELDS {
            let n = len_bytes(i);
            let Some(l) = self.0.get(at..at + n) else {
                return b"";
            };
            let len = l.iter().fold(0usize, |acc, &b| acc << 8 | usize::from(b));
            let Some(s) = self.0.get(at + n..at + n + len) else {
                return b"";
            };
            if i == f as usize {
                return s;
            }
            at += n + len;
        }
        b""
    }
}

/// Sides still to answer the last keepalive round (bits of [`Side::bit`]).
pub(crate) fn awaiting(block: &[u8]) -> u8 {
    block.get(AWAITING).copied().unwrap_or(0)
}

/// When the last keepalive round was sent (ms mod 2³²).
pub(crate) fn sent(block: &[u8]) -> u32 {
    block
        .get(SENT..SENT + 4)
        .map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// A new keepalive round at `sent` awaits `bits`.
pub(crate) fn set_round(block: &mut [u8], bits: u8, sent: u32) {
    if let Some(b) = block.get_mut(AWAITING) {
        *b = bits;
    }
    if let Some(s) = block.get_mut(SENT..SENT + 4) {
        s.copy_from_slice(&sent.to_be_bytes());
    }
}

/// `side` answered the round.
pub(crate) fn answered(block: &mut [u8], side: Side) {
    if let Some(b) = block.get_mut(AWAITING) {
        *b &= !side.bit();
    }
}

/// The kind of request the edge sends inside a dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Own {
    Options,
    Bye,
}

/// RFC 3261 §8.1.1.5: a CSeq is below 2³¹. Our BYE takes the highest: the dialog ends with
/// it, so no later request of either end can be refused for being lower (§12.2.2).
pub(crate) const BYE_CSEQ: u32 = (1 << 31) - 1;

/// Writes our own request `own` toward `side` into `out` (cleared first); `via` is our
/// Via value without the branch, `branch` the branch (with its cookie), `reason` a Reason
/// header value (RFC 3326) for a BYE.
///
/// CSeq of a keepalive (§12.2.1.1 wants it above the local sequence number; we do not own
/// either end's sequence space): toward B the INVITE's number — never above what the caller
/// used, so the callee's remote CSeq never moves and the caller's next re-INVITE or BYE is
/// never refused 500 for being lower (§12.2.2); toward A 0, for the same reason in the
/// callee's space we never saw. A UA that finds it lower answers 500 — an answer, so the
/// end is alive; §12.2.2 matches the dialog (481) before it checks the CSeq.
pub(crate) fn write_request(
    out: &mut Vec<u8>,
    e: Ends<'_>,
    own: Own,
    side: Side,
    (via, branch): (&[u8], &[u8]),
    reason: &[u8],
) {
    use Field::*;
    let (route, local_uri, local_tag, remote_uri, remote_tag) = match side {
        Side::A => (RouteA, CalleeUri, CalleeTag, CallerUri, CallerTag),
        Side::B => (RouteB, CallerUri, CallerTag, CalleeUri, CalleeTag),
    };
    let (method, cseq): (&[u8], u32) = match (own, side) {
        (Own::Options, Side::A) => (b"OPTIONS", 0),
        (Own::Options, Side::B) => (b"OPTIONS", e.invite_cseq()),
        (Own::Bye, _) => (b"BYE", BYE_CSEQ),
    };
    out.clear();
    out.extend_from_slice(method);
    out.push(b' ');
    e.write_target(side, out);
    out.extend_from_slice(b" SIP/2.0\r\nVia: ");
    out.extend_from_slice(via);
    out.extend_from_slice(b";branch=");
    out.extend_from_slice(branch);
    out.extend_from_slice(b"\r\nMax-Forwards: 70\r\n");
    let r = e.field(route);
    if !r.is_empty() {
        out.extend_from_slice(b"Route: ");
        out.extend_from_slice(r);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"From: <");
    out.extend_from_slice(e.field(local_uri));
    out.extend_from_slice(b">;tag=");
    out.extend_from_slice(e.field(local_tag));
    out.extend_from_slice(b"\r\nTo: <");
    out.extend_from_slice(e.field(remote_uri));
    out.extend_from_slice(b">;tag=");
    out.extend_from_slice(e.field(remote_tag));
    out.extend_from_slice(b"\r\nCall-ID: ");
    out.extend_from_slice(e.field(CallId));
    out.extend_from_slice(b"\r\nCSeq: ");
    out.extend_from_slice(cseq.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(method);
    out.extend_from_slice(b"\r\n");
    if own == Own::Bye && !reason.is_empty() {
        out.extend_from_slice(b"Reason: ");
        out.extend_from_slice(reason);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
}

impl super::DialogCx<'_> {
    /// The ends of the dialog that cell `idx`'s INVITE and branch `b`'s 2xx (`msg`, `v`)
    /// confirm ([`pack`]): flow A is where the INVITE came from and its responses go, flow
    /// B where branch `b` went — the two flows of our Record-Route token. `None` (counted
    /// `unreachable`) when our Record-Route is not in the 2xx (the dialog's requests do
    /// not pass here) or the fields do not fit.
    pub(crate) fn ends(
        &mut self,
        cell: &Cell,
        b: usize,
        (msg, v): (&sipedge_msg::Message<'_>, &sipedge_msg::Validated<'_>),
    ) -> Option<Box<[u8]>> {
        let made = self.make_ends(cell, b, (msg, v));
        if made.is_none() {
            self.dialogs.stats.unreachable += 1;
        }
        made
    }

    fn make_ends(
        &self,
        c: &Cell,
        b: usize,
        (msg, v): (&sipedge_msg::Message<'_>, &sipedge_msg::Validated<'_>),
    ) -> Option<Box<[u8]>> {
        use sipedge_msg::{HeaderName, Message, NameAddr};
        let branch = c.branches.get(b)?;
        let a = Flow {
            local: c.up_local,
            addr: c.up_dest,
        };
        let bflow = Flow {
            local: branch.local,
            addr: branch.dest,
        };
        let invite = Message::parse(&c.req).ok()?;
        let inv = invite.validated().ok()?;
        let caller_target = inv.first_contact?.addr()?.uri().raw();
        let callee_target = v.first_contact?.addr()?.uri().raw();
        // §12.1.1 / §12.1.2: the route set is the Record-Route list; ours splits it into
        // the part toward the callee (before ours, reversed) and toward the caller (after).
        let rr: smallvec::SmallVec<[&[u8]; 4]> =
            msg.header_items(HeaderName::RecordRoute).collect();
        let ours = rr.iter().position(|r| {
            NameAddr::parse(r).is_ok_and(|n| {
                n.uri().params().value(b"sed").is_some() && self.io.cfg.is_ours_uri(n.uri())
            })
        })?;
        let mut route_b = Vec::new();
        for (i, r) in rr[..ours].iter().rev().enumerate() {
            if i > 0 {
                route_b.extend_from_slice(b", ");
            }
            route_b.extend_from_slice(r);
        }
        let mut route_a = Vec::new();
        for (i, r) in rr[ours + 1..].iter().enumerate() {
            if i > 0 {
                route_a.extend_from_slice(b", ");
            }
            route_a.extend_from_slice(r);
        }
        let fields: [&[u8]; FIELDS] = [
            v.call_id,
            inv.from.tag().unwrap_or_default(),
            v.to.tag()?,
            inv.from.uri().raw(),
            inv.to.uri().raw(),
            caller_target,
            callee_target,
            &route_a,
            &route_b,
        ];
        pack(a, bflow, inv.cseq.seq, &fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(s: &str, l: u16) -> Flow {
        Flow {
            local: LocalId(l),
            addr: s.parse().unwrap_or_else(|_| unreachable!()),
        }
    }

    #[test]
    fn pack_round_trip_and_cap() {
        let a = flow("203.0.113.5:5070", 0);
        let b = flow("[2001:db8::1]:5062", 3);
        let f: [&[u8]; FIELDS] = [
            b"call",
            b"t1",
            b"t2",
            b"sip:a@x",
            b"sip:b@x",
            b"sip:a@1.2.3.4",
            b"",
            b"",
            b"<sip:p>",
        ];
        let mut blk = pack(a, b, 7, &f).unwrap_or_else(|| unreachable!());
        let e = Ends(&blk);
        assert_eq!(e.flow(Side::A), Some(a));
        assert_eq!(e.flow(Side::B), Some(b));
        assert_eq!(e.invite_cseq(), 7);
        assert_eq!(e.field(Field::CallId), b"call");
        assert_eq!(e.field(Field::CalleeTarget), b"");
        assert_eq!(e.field(Field::RouteB), b"<sip:p>");
        set_round(&mut blk, 3, 99);
        answered(&mut blk, Side::B);
        assert_eq!((awaiting(&blk), sent(&blk)), (1, 99));
        let big = vec![b'x'; MAX_ENDS_BYTES];
        let f2: [&[u8]; FIELDS] = [b"", b"", b"", b"", b"", b"", b"", b"", &big];
        assert!(pack(a, b, 1, &f2).is_none());
        let long = vec![b'y'; 256];
        let f3: [&[u8]; FIELDS] = [&long, b"", b"", b"", b"", b"", b"", b"", b""];
        assert!(pack(a, b, 1, &f3).is_none(), "a short field over 255 bytes");
        let route = vec![b'r'; 300];
        let f4: [&[u8]; FIELDS] = [b"c", b"", b"", b"", b"", b"", b"", &route, b"x"];
        let blk = pack(a, b, 1, &f4).unwrap_or_else(|| unreachable!());
        assert_eq!(Ends(&blk).field(Field::RouteA), &route[..]);
        assert_eq!(Ends(&blk).field(Field::RouteB), b"x");
    }

    /// A Contact that is its end's flow is kept as its user part and written back byte for
    /// byte; any other (a parameter, a name, another port, `sip:@…`) is kept whole.
    #[test]
    fn a_target_that_is_the_flow_is_rebuilt_exactly() {
        let a = flow("10.20.3.90:5150", 0);
        let b = flow("[2001:db8::1]:5062", 1);
        let cases: [(&[u8], &[u8], bool); 6] = [
            (
                b"sip:alice@10.20.3.90:5150",
                b"sip:bob@[2001:db8::1]:5062",
                true,
            ),
            (b"sip:10.20.3.90:5150", b"sip:[2001:db8::1]:5062", true),
            (
                b"sip:alice@10.20.3.90:5150;ob",
                b"sip:bob@[2001:db8::1]:5063",
                false,
            ),
            (
                b"sip:alice@10.20.3.90",
                b"sips:bob@[2001:db8::1]:5062",
                false,
            ),
            (b"sip:@10.20.3.90:5150", b"sip:bob@host.example:5062", false),
            (b"sip:a@b@10.20.3.90:5150", b"", true),
        ];
        for (ta, tb, short) in cases {
            let f: [&[u8]; FIELDS] = [b"c", b"t1", b"t2", b"sip:a@x", b"sip:b@x", ta, tb, b"", b""];
            let blk = pack(a, b, 1, &f).unwrap_or_else(|| unreachable!());
            let whole = 10 + 8 + 20 + 11 + 1 + 2 + 2 + 7 + 7 + ta.len() + tb.len();
            assert_eq!(
                blk.len() < whole,
                short,
                "{:?}",
                String::from_utf8_lossy(ta)
            );
            for (side, t) in [(Side::A, ta), (Side::B, tb)] {
                let mut out = Vec::new();
                Ends(&blk).write_target(side, &mut out);
                assert_eq!(out, t);
                write_request(&mut out, Ends(&blk), Own::Options, side, (b"v", b"br"), b"");
                let mut line = b"OPTIONS ".to_vec();
                line.extend_from_slice(t);
                line.extend_from_slice(b" SIP/2.0\r\n");
                assert!(out.starts_with(&line), "{}", String::from_utf8_lossy(&out));
            }
        }
    }
}
