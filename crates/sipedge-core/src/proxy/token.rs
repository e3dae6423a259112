//! The dialog token of our Record-Route (`<sip:us;lr;sed=TOKEN>`, issue 13).
//!
//! An in-dialog request that comes back on our Route skips authentication and may leave our
//! domains, so the token is what stands between the edge and an open relay. It therefore
//! names **where the request may go** and is **MACed with the node secret** over the dialog:
//!
//! `TOKEN = flags (1 hex) · flow A · flow B · MAC (16 hex)`, a flow being
//! `socket (2 hex) · IP (8 hex, or 32 for IPv6) · port (4 hex)`:
//!
//! * flow A is the caller's side — where the dialog-creating request came from (its
//!   response address, §18.2.2 / RFC 3581), flow B the callee's — where that branch went
//!   (a NATed phone's public flow, or the next hop). An in-dialog request bearing the token
//!   is sent to one of these two and nowhere else: never to its Request-URI or a Route an
//!   attacker wrote (RFC 5626 §5.3 does the same with its flow tokens). This also reaches a
//!   NATed end at its flow rather than at a private Contact.
//! * the MAC (SipHash-2-4, [`crate::secret`]) covers the token text, the Call-ID, the
//!   caller's tag (From tag of the dialog-creating request) and, when flag bit 0 is set,
//!   the callee's tag (To tag of the response). The request carries the token without the
//!   callee's tag (it is not known yet): that copy is the callee's route set. RFC 3261
//!   §16.7 step 4 lets a proxy rewrite the Record-Route value it inserted when it forwards
//!   a response, so the provisional and 2xx responses going upstream carry the token with
//!   the callee's tag: the caller's route set is bound to the dialog's both tags.
//!
//! A request bearing the token is matched to its direction by its tags (§12.2.1.1: the
//! caller's requests have From = caller tag, To = callee tag; the callee's the reverse):
//! from the caller it goes to B, from the callee to A.

use sipedge_msg::fmt::{get_hex, push_hex};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::output::LocalId;
use crate::secret::{tags_equal, Mac, Purpose};

pub(crate) use crate::output::Flow;

/// Flag bits (the first hex digit).
const CALLEE_TAG: u8 = 1;
const A_V6: u8 = 2;
const B_V6: u8 = 4;

/// The longest token text (two IPv6 flows).
pub(crate) const MAX_LEN: usize = 1 + 2 * (2 + 32 + 4) + 16;

fn put_flow(out: &mut Vec<u8>, f: Flow) {
    push_hex(out, u64::from(f.local.0 & 0xff), 2);
    match f.addr.ip() {
        IpAddr::V4(ip) => push_hex(out, u64::from(u32::from(ip)), 8),
        IpAddr::V6(ip) => {
            let v = u128::from(ip);
            push_hex(out, (v >> 64) as u64, 16);
            push_hex(out, v as u64, 16);
        }
    }
    push_hex(out, u64::from(f.addr.port()), 4);
}

/// Reads one flow from the front of `s`; the rest after it.
fn get_flow(s: &[u8], v6: bool) -> Option<(Flow, &[u8])> {
    let ip_len = if v6 { 32 } else { 8 };
    if s.len() < 2 + ip_len + 4 {
        return None;
    }
    let local = LocalId(get_hex(&s[..2])? as u16);
    let ip = if v6 {
        let hi = u128::from(get_hex(&s[2..18])?);
        let lo = u128::from(get_hex(&s[18..34])?);
        IpAddr::V6(Ipv6Addr::from(hi << 64 | lo))
    } else {
        IpAddr::V4(Ipv4Addr::from(get_hex(&s[2..10])? as u32))
    };
    let port = get_hex(&s[2 + ip_len..6 + ip_len])? as u16;
    Some((
        Flow {
            local,
            addr: SocketAddr::new(ip, port),
        },
        &s[6 + ip_len..],
    ))
}

/// The binary form of flags and flows (what the head text spells), for the MAC.
fn flows_bin(out: &mut [u8; 1 + 2 * 19], flags: u8, a: Flow, b: Flow) -> usize {
    out[0] = flags;
    let mut n = 1;
    for f in [a, b] {
        out[n] = (f.local.0 & 0xff) as u8;
        n += 1;
        match f.addr.ip() {
            IpAddr::V4(ip) => {
                out[n..n + 4].copy_from_slice(&ip.octets());
                n += 4;
            }
            IpAddr::V6(ip) => {
                out[n..n + 16].copy_from_slice(&ip.octets());
                n += 16;
            }
        }
        out[n..n + 2].copy_from_slice(&f.addr.port().to_be_bytes());
        n += 2;
    }
    n
}

/// The MAC of a token: its flags and flows, then the dialog.
fn tag_of(mac: &Mac, flags: u8, (a, b): (Flow, Flow), ids: (&[u8], &[u8], Option<&[u8]>)) -> u64 {
    let mut bin = [0u8; 1 + 2 * 19];
    let n = flows_bin(&mut bin, flags, a, b);
    match ids {
        (call_id, caller, Some(callee)) => {
            mac.digest(Purpose::RecordRoute, &[&bin[..n], call_id, caller, callee])
        }
        (call_id, caller, None) => mac.digest(Purpose::RecordRoute, &[&bin[..n], call_id, caller]),
    }
}

fn flags_of(callee: bool, a: Flow, b: Flow) -> u8 {
    let bit = |on: bool, v: u8| if on { v } else { 0 };
    bit(callee, CALLEE_TAG) | bit(a.addr.is_ipv6(), A_V6) | bit(b.addr.is_ipv6(), B_V6)
}

/// Appends the text before the MAC: flags and the two flows.
fn write_head(out: &mut Vec<u8>, callee: bool, a: Flow, b: Flow) {
    push_hex(out, u64::from(flags_of(callee, a, b)), 1);
    put_flow(out, a);
    put_flow(out, b);
}

/// Appends the token for a dialog between `a` (caller side) and `b` (callee side) to `out`.
pub(crate) fn write(
    out: &mut Vec<u8>,
    mac: &Mac,
    (call_id, caller, callee): (&[u8], &[u8], Option<&[u8]>),
    a: Flow,
    b: Flow,
) {
    write_head(out, callee.is_some(), a, b);
    let flags = flags_of(callee.is_some(), a, b);
    let tag = tag_of(mac, flags, (a, b), (call_id, caller, callee));
    push_hex(out, tag, 16);
}

/// A token as read from a Route, MAC not yet checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    flags: u8,
    pub a: Flow,
    pub b: Flow,
    tag: u64,
}

impl Token {
    /// Reads a token of our exact shape; `None` for anything else.
    pub(crate) fn parse(s: &[u8]) -> Option<Token> {
        if s.len() > MAX_LEN || s.is_empty() {
            return None;
        }
        let flags = get_hex(&s[..1])? as u8;
        if flags > (CALLEE_TAG | A_V6 | B_V6) {
            return None;
        }
        let (a, rest) = get_flow(&s[1..], flags & A_V6 != 0)?;
        let (b, rest) = get_flow(rest, flags & B_V6 != 0)?;
        if rest.len() != 16 {
            return None;
        }
        Some(Token {
            flags,
            a,
            b,
            tag: get_hex(rest)?,
        })
    }

    /// Where a request of this dialog with these tags goes (From tag, To tag): B when it
    /// comes from the caller, A when from the callee; `None` when the MAC verifies for
    /// neither — another dialog's token, or a forged one.
    pub(crate) fn destination(
        &self,
        mac: &Mac,
        call_id: &[u8],
        from_tag: &[u8],
        to_tag: &[u8],
    ) -> Option<Flow> {
        let ok = |caller: &[u8], callee: &[u8]| {
            let callee = (self.flags & CALLEE_TAG != 0).then_some(callee);
            let t = tag_of(mac, self.flags, (self.a, self.b), (call_id, caller, callee));
            tags_equal(t, self.tag)
        };
        if ok(from_tag, to_tag) {
            Some(self.b)
        } else if ok(to_tag, from_tag) {
            Some(self.a)
        } else {
            None
        }
    }
}

/// RFC 3261 §16.7 step 4: in a response going upstream, rewrites the token this proxy put
/// in the request's Record-Route for flows `a`, `b` (written without the callee's tag) into
/// the one bound to the callee's tag `callee` too. Both have the same length, so the rewrite
/// is in place; the old one is found by its flows alone (no MAC computed for it). Nothing
/// happens when the response does not carry our value (a callee may drop it, and then the
/// caller has no route through us). `head`, `new`: reused scratch buffers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rewrite_in(
    buf: &mut [u8],
    mac: &Mac,
    (call_id, caller, callee): (&[u8], &[u8], &[u8]),
    a: Flow,
    b: Flow,
    head: &mut Vec<u8>,
    new: &mut Vec<u8>,
) {
    head.clear();
    head.extend_from_slice(b";sed=");
    write_head(head, false, a, b);
    // A scan of the `;`s (a handful per message) beats building a substring finder.
    let Some(at) = memchr::memchr_iter(b';', buf).find(|&p| buf[p..].starts_with(head)) else {
        return;
    };
    let at = at + 5;
    new.clear();
    write(new, mac, (call_id, caller, Some(callee)), a, b);
    // The value found must be a whole token of our length: a callee that altered it (a
    // shorter or longer value) keeps its bytes, and nothing past the value is overwritten.
    let old_len = buf[at..]
        .iter()
        .take_while(|c| c.is_ascii_hexdigit())
        .count();
    if old_len != new.len() {
        return;
    }
    if let Some(dst) = buf.get_mut(at..at + new.len()) {
        dst.copy_from_slice(new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::NodeSecret;

    fn flow(s: &str, l: u16) -> Flow {
        Flow {
            local: LocalId(l),
            addr: s.parse().unwrap_or_else(|_| SocketAddr::from(([0; 4], 0))),
        }
    }

    #[test]
    fn directions_tags_and_forgery() {
        let mac = Mac::new(&NodeSecret([3; 32]));
        let (a, b) = (flow("203.0.113.5:5070", 0), flow("[2001:db8::1]:5062", 1));
        let mut early = Vec::new();
        write(&mut early, &mac, (b"call", b"ta", None), a, b);
        let mut full = Vec::new();
        write(&mut full, &mac, (b"call", b"ta", Some(b"tb")), a, b);
        assert_eq!(early.len(), full.len());
        let t = Token::parse(&early).unwrap_or_else(|| panic!("parses"));
        // The callee's copy: the callee's requests go to A, the caller's to B.
        assert_eq!(t.destination(&mac, b"call", b"tb", b"ta"), Some(a));
        assert_eq!(t.destination(&mac, b"call", b"ta", b"tb"), Some(b));
        assert_eq!(t.destination(&mac, b"other", b"tb", b"ta"), None);
        assert_eq!(t.destination(&mac, b"call", b"x", b"y"), None);
        let f = Token::parse(&full).unwrap_or_else(|| panic!("parses"));
        assert_eq!(f.destination(&mac, b"call", b"ta", b"tb"), Some(b));
        assert_eq!(f.destination(&mac, b"call", b"tb", b"ta"), Some(a));
        assert_eq!(
            f.destination(&mac, b"call", b"ta", b"zz"),
            None,
            "callee tag bound"
        );
        // Another destination with the same MAC: refused.
        let mut moved = early.clone();
        moved[5] = if moved[5] == b'0' { b'1' } else { b'0' };
        let m = Token::parse(&moved).unwrap_or_else(|| panic!("parses"));
        assert_eq!(m.destination(&mac, b"call", b"ta", b"tb"), None);
        assert!(Token::parse(b"0123").is_none());
        assert!(Token::parse(&early[..early.len() - 1]).is_none());
        let mut buf = b"SIP/2.0 200 OK\r\nRecord-Route: <sip:x;lr;sed=".to_vec();
        buf.extend_from_slice(&early);
        buf.extend_from_slice(b">\r\n\r\n");
        let (mut h, mut n) = (Vec::new(), Vec::new());
        rewrite_in(
            &mut buf,
            &mac,
            (b"call", b"ta", b"tb"),
            a,
            b,
            &mut h,
            &mut n,
        );
        assert!(memchr::memmem::find(&buf, &full).is_some());
        // A callee that shortened the value (found by core_seq): left as it is, and the
        // bytes after it (the `>`) are never overwritten.
        let mut cut = b"SIP/2.0 200 OK\r\nRecord-Route: <sip:x;lr;sed=".to_vec();
        cut.extend_from_slice(&early[..early.len() - 2]);
        cut.extend_from_slice(b">\r\n\r\n");
        let before = cut.clone();
        rewrite_in(
            &mut cut,
            &mac,
            (b"call", b"ta", b"tb"),
            a,
            b,
            &mut h,
            &mut n,
        );
        assert_eq!(cut, before);
    }
}
