//! Parse once across threads: a [`Message`] and its [`Validated`] fields as offsets into
//! their bytes ([`Parsed`]), re-attached to an identical copy of those bytes on another
//! thread without indexing or validating again (ARCHITECTURE.md §1: a REGISTER handed to
//! its owner shard).
//!
//! Only offsets travel: [`Parsed::attach`] checks every span against the buffer it is
//! given (`None` on any mismatch, never a panic), so a caller that attaches to other bytes
//! gets `None` or nonsense fields, never memory unsafety. The contract is that the bytes
//! are the ones [`Message::detach`] saw.

use smallvec::SmallVec;

use crate::addr::{Contact, NameAddr};
use crate::fields::CSeq;
use crate::index::INLINE_HEADERS;
use crate::message::{Header, Message, Span, StartLine, HOT};
use crate::method::Method;
use crate::params::Params;
use crate::uri::{SchemeTag, Uri};
use crate::validate::Validated;
use crate::via::{RPort, Via};

/// A slice as an offset into the message: `None` as [`S::NONE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct S {
    at: u32,
    len: u32,
}

impl S {
    const NONE: S = S {
        at: u32::MAX,
        len: 0,
    };
}

/// The buffer slices are measured against.
#[derive(Clone, Copy)]
struct Base {
    start: usize,
    len: usize,
}

impl Base {
    fn of(buf: &[u8]) -> Base {
        Base {
            start: buf.as_ptr() as usize,
            len: buf.len(),
        }
    }

    /// `s`'s offset, when it lies in the buffer (an empty slice anywhere is empty).
    fn span(self, s: &[u8]) -> Option<S> {
        if s.is_empty() {
            return Some(S { at: 0, len: 0 });
        }
        let at = (s.as_ptr() as usize).checked_sub(self.start)?;
        let end = at.checked_add(s.len())?;
        if end > self.len {
            return None;
        }
        Some(S {
            at: u32::try_from(at).ok()?,
            len: u32::try_from(s.len()).ok()?,
        })
    }

    fn opt(self, s: Option<&[u8]>) -> Option<S> {
        match s {
            None => Some(S::NONE),
            Some(s) => self.span(s),
        }
    }
}

fn get(buf: &[u8], s: S) -> Option<&[u8]> {
    let at = s.at as usize;
    buf.get(at..at.checked_add(s.len as usize)?)
}

fn get_opt(buf: &[u8], s: S) -> Option<Option<&[u8]>> {
    if s == S::NONE {
        return Some(None);
    }
    get(buf, s).map(Some)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DUri {
    raw: S,
    user: S,
    host: S,
    params: S,
    port: Option<u16>,
    scheme: SchemeTag,
}

impl DUri {
    fn detach(b: Base, u: &Uri<'_>) -> Option<DUri> {
        Some(DUri {
            raw: b.span(u.raw)?,
            user: b.opt(u.user)?,
            host: b.span(u.host)?,
            params: b.span(u.params.raw)?,
            port: u.port,
            scheme: u.scheme,
        })
    }

    fn attach(self, buf: &[u8]) -> Option<Uri<'_>> {
        Some(Uri {
            raw: get(buf, self.raw)?,
            user: get_opt(buf, self.user)?,
            host: get(buf, self.host)?,
            params: Params::new(get(buf, self.params)?),
            port: self.port,
            scheme: self.scheme,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DVia {
    raw: S,
    protocol: S,
    transport: S,
    host: S,
    port: Option<u16>,
    params: S,
    branch: S,
    received: S,
    rport: RPort,
}

impl DVia {
    fn detach(b: Base, v: &Via<'_>) -> Option<DVia> {
        Some(DVia {
            raw: b.span(v.raw)?,
            protocol: b.span(v.protocol)?,
            transport: b.span(v.transport)?,
            host: b.span(v.host)?,
            port: v.port,
            params: b.span(v.params.raw)?,
            branch: b.opt(v.branch)?,
            received: b.opt(v.received)?,
            rport: v.rport,
        })
    }

    fn attach(self, buf: &[u8]) -> Option<Via<'_>> {
        Some(Via {
            raw: get(buf, self.raw)?,
            protocol: get(buf, self.protocol)?,
            transport: get(buf, self.transport)?,
            host: get(buf, self.host)?,
            port: self.port,
            params: Params::new(get(buf, self.params)?),
            branch: get_opt(buf, self.branch)?,
            received: get_opt(buf, self.received)?,
            rport: self.rport,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DNameAddr {
    raw: S,
    uri: DUri,
    tag: S,
    expires: S,
}

impl DNameAddr {
    fn detach(b: Base, a: &NameAddr<'_>) -> Option<DNameAddr> {
        Some(DNameAddr {
            raw: b.span(a.raw)?,
            uri: DUri::detach(b, &a.uri)?,
            tag: b.opt(a.tag)?,
            expires: b.opt(a.expires)?,
        })
    }

    fn attach(self, buf: &[u8]) -> Option<NameAddr<'_>> {
        Some(NameAddr {
            raw: get(buf, self.raw)?,
            uri: self.uri.attach(buf)?,
            tag: get_opt(buf, self.tag)?,
            expires: get_opt(buf, self.expires)?,
        })
    }
}

/// A method: a known one by value, an extension by its offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DMethod {
    Known(Method<'static>),
    Extension(S),
}

impl DMethod {
    fn detach(b: Base, m: Method<'_>) -> Option<DMethod> {
        Some(match m {
            Method::Extension(e) => DMethod::Extension(b.span(e)?),
            Method::Invite => DMethod::Known(Method::Invite),
            Method::Ack => DMethod::Known(Method::Ack),
            Method::Bye => DMethod::Known(Method::Bye),
            Method::Cancel => DMethod::Known(Method::Cancel),
            Method::Register => DMethod::Known(Method::Register),
            Method::Options => DMethod::Known(Method::Options),
            Method::Prack => DMethod::Known(Method::Prack),
            Method::Subscribe => DMethod::Known(Method::Subscribe),
            Method::Notify => DMethod::Known(Method::Notify),
            Method::Publish => DMethod::Known(Method::Publish),
            Method::Info => DMethod::Known(Method::Info),
            Method::Refer => DMethod::Known(Method::Refer),
            Method::Message => DMethod::Known(Method::Message),
            Method::Update => DMethod::Known(Method::Update),
        })
    }

    fn attach(self, buf: &[u8]) -> Option<Method<'_>> {
        match self {
            DMethod::Known(m) => Some(m),
            DMethod::Extension(s) => get(buf, s).map(Method::Extension),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DContact {
    Star,
    Addr(DNameAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DValidated {
    request_uri: Option<DUri>,
    top_via: DVia,
    from: DNameAddr,
    to: DNameAddr,
    call_id: S,
    cseq_seq: u32,
    cseq_method: DMethod,
    max_forwards: Option<u8>,
    expires: Option<u32>,
    first_contact: Option<DContact>,
    contact_count: u32,
}

/// A message indexed and validated once, as offsets into its bytes: [`Message::detach`] on
/// the thread that parsed it, [`Parsed::attach`] to a copy of the same bytes on another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    len: usize,
    start: StartLine,
    headers: SmallVec<[Header; INLINE_HEADERS]>,
    body: Span,
    headers_start: u32,
    content_length: Option<u32>,
    first: [u8; HOT],
    v: DValidated,
}

impl<'a> Message<'a> {
    /// This message and `v` (what [`Message::validated`] returned for it) as offsets, for
    /// [`Parsed::attach`] to a copy of [`Message::as_bytes`]. `None` when a field does not
    /// lie in the message's bytes (then parse the copy instead).
    pub fn detach(&self, v: &Validated<'a>) -> Option<Parsed> {
        if self.defect.is_some() {
            return None;
        }
        let b = Base::of(self.buf);
        let first_contact = match &v.first_contact {
            None => None,
            Some(Contact::Star) => Some(DContact::Star),
            Some(Contact::Addr(a)) => Some(DContact::Addr(DNameAddr::detach(b, a)?)),
        };
        let request_uri = match &v.request_uri {
            None => None,
            Some(u) => Some(DUri::detach(b, u)?),
        };
        Some(Parsed {
            len: self.buf.len(),
            start: self.start,
            // A copy of the used entries, not element by element.
            headers: SmallVec::from_slice(&self.headers),
            body: self.body,
            headers_start: self.headers_start,
            content_length: self.content_length,
            first: self.first,
            v: DValidated {
                request_uri,
                top_via: DVia::detach(b, &v.top_via)?,
                from: DNameAddr::detach(b, &v.from)?,
                to: DNameAddr::detach(b, &v.to)?,
                call_id: b.span(v.call_id)?,
                cseq_seq: v.cseq.seq,
                cseq_method: DMethod::detach(b, v.cseq.method)?,
                max_forwards: v.max_forwards,
                expires: v.expires,
                first_contact,
                contact_count: v.contact_count,
            },
        })
    }
}

impl Parsed {
    /// The message and its validated fields over `buf`, a copy of the bytes this was
    /// detached from, without parsing: `None` when `buf` cannot be those bytes (its length
    /// differs, or a span falls outside it).
    pub fn attach(self, buf: &[u8]) -> Option<(Message<'_>, Validated<'_>)> {
        if buf.len() != self.len {
            return None;
        }
        let d = &self.v;
        let first_contact = match d.first_contact {
            None => None,
            Some(DContact::Star) => Some(Contact::Star),
            Some(DContact::Addr(a)) => Some(Contact::Addr(a.attach(buf)?)),
        };
        let request_uri = match d.request_uri {
            None => None,
            Some(u) => Some(u.attach(buf)?),
        };
        let v = Validated {
            request_uri,
            top_via: d.top_via.attach(buf)?,
            from: d.from.attach(buf)?,
            to: d.to.attach(buf)?,
            call_id: get(buf, d.call_id)?,
            cseq: CSeq {
                seq: d.cseq_seq,
                method: d.cseq_method.attach(buf)?,
            },
            max_forwards: d.max_forwards,
            expires: d.expires,
            first_contact,
            contact_count: d.contact_count,
        };
        let msg = Message {
            buf,
            start: self.start,
            headers: self.headers,
            body: self.body,
            headers_start: self.headers_start,
            content_length: self.content_length,
            defect: None,
            first: self.first,
        };
        Some((msg, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &[u8] = b"REGISTER sip:edge.example.com SIP/2.0\r\n\
v: SIP/2.0/UDP 10.0.0.1:5062;rport;branch=z9hG4bK-1;received=1.2.3.4\r\n\
Via: SIP/2.0/TCP 10.0.0.2\r\n\
Max-Forwards: 70\r\n\
From: \"Al\" <sip:alice@edge.example.com>;tag=a1\r\n\
To: <sip:alice@edge.example.com>\r\n\
Call-ID: c1@10.0.0.1\r\n\
CSeq: 7 REGISTER\r\n\
m: <sip:alice@10.0.0.1:5062;transport=udp>;expires=60;q=0.5, <sip:alice@[2001:db8::1]>\r\n\
Expires: 300\r\n\
Content-Length: 0\r\n\r\n";

    fn round_trip(bytes: &[u8]) {
        let msg = Message::parse(bytes).expect("parses");
        let v = msg.validated().expect("valid");
        let parsed = msg.detach(&v).expect("detaches");
        let copy = bytes.to_vec();
        let (m2, v2) = parsed.clone().attach(&copy).expect("attaches");
        let fresh = Message::parse(&copy).expect("parses");
        let fresh_v = fresh.validated().expect("valid");
        assert_eq!(format!("{m2:?}"), format!("{fresh:?}"));
        assert_eq!(format!("{v2:?}"), format!("{fresh_v:?}"));
        assert_eq!(v2.contacts(&m2).count(), fresh_v.contacts(&fresh).count());
        // Slices of the copy, not of the original.
        let inside = copy.as_ptr_range();
        assert!(inside.contains(&v2.call_id.as_ptr()));
        assert!(inside.contains(&v2.top_via.host().as_ptr()));
        // Other bytes: refused, never a panic.
        assert!(parsed.clone().attach(&copy[1..]).is_none());
        assert!(parsed.attach(b"").is_none());
    }

    #[test]
    fn attach_gives_what_a_fresh_parse_gives() {
        round_trip(REGISTER);
        let invite = String::from_utf8(REGISTER.to_vec())
            .unwrap_or_default()
            .replace("REGISTER", "FOO")
            .replace("m: <sip:alice@10.0.0.1:5062;transport=udp>;expires=60;q=0.5, <sip:alice@[2001:db8::1]>\r\n", "Contact: *\r\n");
        round_trip(invite.as_bytes());
        let response = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-2\r\n\
From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\
Content-Length: 4\r\n\r\nbody";
        round_trip(response);
    }
}
