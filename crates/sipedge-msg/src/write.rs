//! Serialization into caller-owned, reused buffers: responses built from a request
//! (RFC 3261 §8.2.6.2) and requests/responses edited for forwarding (RFC 3261 §16.6, §16.7).
//! Nothing here allocates once `out` has grown to its working size.

use crate::fmt::push_u32;
use crate::header::HeaderName;
use crate::lex::{offset_in, trim};
use crate::list::Items;
use crate::message::{Header, Message};
use crate::via::Via;

/// What a response to a request looks like, beyond the headers copied from the request.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseSpec<'r> {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: &'r [u8],
    /// Tag to add to To when the request's To has none (RFC 3261 §8.2.6.2).
    pub to_tag: Option<&'r [u8]>,
    /// `received` to add to the top Via (RFC 3261 §18.2.1).
    pub received: Option<&'r [u8]>,
    /// Source port to fill into a valueless `rport` of the top Via (RFC 3581 §4).
    pub rport: Option<u16>,
    /// The request's top Via when the caller has parsed it already
    /// ([`crate::Validated::top_via`]); `None`: [`write_response`] parses it when it must
    /// edit it.
    pub top_via: Option<&'r Via<'r>>,
    /// Whether the request's To has a tag, when the caller knows
    /// ([`crate::Validated::to_has_tag`]); `None`: [`write_response`] parses To to find out.
    pub to_has_tag: Option<bool>,
}

/// Writes headers and the body of a response started by [`write_response`].
#[derive(Debug)]
pub struct ResponseWriter<'o> {
    out: &'o mut Vec<u8>,
}

/// Clears `out` and writes the status line and the Via, From, To, Call-ID and CSeq of `req`
/// (RFC 3261 §8.2.6.2: copied, Vias in order, To tagged). Add headers with
/// [`ResponseWriter::header`], then [`ResponseWriter::finish`] with the body.
pub fn write_response<'o>(
    out: &'o mut Vec<u8>,
    req: &Message<'_>,
    spec: &ResponseSpec<'_>,
) -> ResponseWriter<'o> {
    out.clear();
    out.extend_from_slice(b"SIP/2.0 ");
    push_u32(out, u32::from(spec.status));
    out.push(b' ');
    out.extend_from_slice(spec.reason);
    out.extend_from_slice(b"\r\n");
    let mut first_via = true;
    for h in req.header_index() {
        let value = trim(h.value.of(req.buf));
        match h.name {
            HeaderName::Via if first_via => {
                first_via = false;
                write_top_via(out, value, spec);
            }
            HeaderName::Via => line(out, b"Via", value),
            HeaderName::From => line(out, b"From", value),
            HeaderName::To => {
                out.extend_from_slice(b"To: ");
                out.extend_from_slice(value);
                if let Some(tag) = spec.to_tag {
                    let has_tag = spec.to_has_tag.unwrap_or_else(|| {
                        crate::NameAddr::parse(value).is_ok_and(|a| a.tag().is_some())
                    });
                    if !has_tag {
                        out.extend_from_slice(b";tag=");
                        out.extend_from_slice(tag);
                    }
                }
                out.extend_from_slice(b"\r\n");
            }
            HeaderName::CallId => line(out, b"Call-ID", value),
            HeaderName::CSeq => line(out, b"CSeq", value),
            _ => {}
        }
    }
    ResponseWriter { out }
}

/// Writes the top Via item with `received`/`rport` filled in, then the rest of its line.
/// An existing `received` is replaced, never repeated (found by fuzzing), and a valueless
/// `rport` gets the port (RFC 3581 §4).
fn write_top_via(out: &mut Vec<u8>, value: &[u8], spec: &ResponseSpec<'_>) {
    // The caller's parsed Via is used only when it is this line's first item.
    let parsed = spec.top_via.filter(|v| starts(value, v.raw()));
    let item = match parsed {
        Some(v) => v.raw(),
        None => Items::new(value).next().unwrap_or(value),
    };
    let rest = &value[offset_in(value, item) as usize + item.len()..];
    out.extend_from_slice(b"Via: ");
    if spec.received.is_none() && spec.rport.is_none() {
        out.extend_from_slice(item);
        out.extend_from_slice(rest);
        out.extend_from_slice(b"\r\n");
        return;
    }
    match parsed
        .copied()
        .ok_or(crate::ViaError)
        .or_else(|_| Via::parse(item))
    {
        Ok(via) => {
            let params = via.params().raw();
            let head_end = if params.is_empty() {
                item.len()
            } else {
                // Up to (not including) the ';' before the parameters.
                offset_in(item, params) as usize - 1
            };
            out.extend_from_slice(trim(&item[..head_end]));
            for (name, v) in via.params().iter() {
                if spec.received.is_some() && name.eq_ignore_ascii_case(b"received") {
                    continue;
                }
                out.push(b';');
                match (spec.rport, v) {
                    (Some(port), None) if name.eq_ignore_ascii_case(b"rport") => {
                        out.extend_from_slice(b"rport=");
                        push_u32(out, u32::from(port));
                    }
                    _ => {
                        let start = offset_in(item, name) as usize;
                        let end = v.map_or(start + name.len(), |v| {
                            offset_in(item, v) as usize + v.len()
                        });
                        out.extend_from_slice(&item[start..end]);
                    }
                }
            }
            if let Some(received) = spec.received {
                out.extend_from_slice(b";received=");
                out.extend_from_slice(received);
            }
        }
        _ => out.extend_from_slice(item),
    }
    out.extend_from_slice(rest);
    out.extend_from_slice(b"\r\n");
}

impl ResponseWriter<'_> {
    /// Appends `name: value`.
    pub fn header(&mut self, name: &[u8], value: &[u8]) -> &mut Self {
        line(self.out, name, value);
        self
    }
    /// Appends `name: n`.
    pub fn header_u32(&mut self, name: &[u8], n: u32) -> &mut Self {
        self.out.extend_from_slice(name);
        self.out.extend_from_slice(b": ");
        push_u32(self.out, n);
        self.out.extend_from_slice(b"\r\n");
        self
    }
    /// Appends raw bytes (one or more complete header lines, CRLF-terminated).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.out.extend_from_slice(bytes);
        self
    }
    /// Appends Content-Length, the empty line and the body.
    pub fn finish(&mut self, body: &[u8]) {
        self.header_u32(b"Content-Length", body.len() as u32);
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(body);
    }
}

/// How a message is changed on its way through the proxy. Applied in one pass by
/// [`write_forward`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ForwardEdits<'e> {
    /// New Request-URI (RFC 3261 §16.6 step 2); `None` keeps it.
    pub request_uri: Option<&'e [u8]>,
    /// Our Via value, placed above every other Via (RFC 3261 §16.6 step 8).
    pub via: Option<&'e [u8]>,
    /// Our Record-Route value, placed above every other (RFC 3261 §16.6 step 4).
    pub record_route: Option<&'e [u8]>,
    /// Remove the topmost Via value (responses, RFC 3261 §16.7 step 3).
    pub pop_via: bool,
    /// Remove the topmost Route value (our own, RFC 3261 §16.4).
    pub pop_route: bool,
    /// Decrement Max-Forwards, adding `Max-Forwards: 70` when absent (RFC 3261 §16.6 step 3).
    pub decrement_max_forwards: bool,
    /// Headers to drop entirely (e.g. credentials for our own realm).
    pub remove: &'e [HeaderName],
    /// Extra header lines to append: `(name, value)`.
    pub extra: &'e [(&'e [u8], &'e [u8])],
}

/// Clears `out` and writes `msg` with `edits` applied. Header lines not edited are copied
/// byte for byte; the body is copied unchanged, and Content-Length is added when absent so
/// the copy can travel over a stream transport (RFC 3261 §18.3).
pub fn write_forward(out: &mut Vec<u8>, msg: &Message<'_>, edits: &ForwardEdits<'_>) {
    out.clear();
    let buf = msg.buf;
    let first_line_end = msg.headers_start as usize;
    match (msg.request_uri_span(), edits.request_uri) {
        (Some(span), Some(uri)) => {
            out.extend_from_slice(&buf[..span.start as usize]);
            out.extend_from_slice(uri);
            out.extend_from_slice(&buf[span.end as usize..first_line_end]);
        }
        _ => out.extend_from_slice(&buf[..first_line_end]),
    }
    if let Some(via) = edits.via {
        line(out, b"Via", via);
    }
    if let Some(rr) = edits.record_route {
        line(out, b"Record-Route", rr);
    }
    let (mut via_popped, mut route_popped) = (!edits.pop_via, !edits.pop_route);
    let mut saw_max_forwards = false;
    let mut saw_content_length = false;
    for h in msg.header_index() {
        if edits.remove.contains(&h.name) {
            continue;
        }
        match h.name {
            HeaderName::Via if !via_popped => {
                via_popped = true;
                write_without_first(out, b"Via", msg, h);
            }
            HeaderName::Route if !route_popped => {
                route_popped = true;
                write_without_first(out, b"Route", msg, h);
            }
            HeaderName::MaxForwards if edits.decrement_max_forwards && !saw_max_forwards => {
                saw_max_forwards = true;
                let n = msg.max_forwards().ok().flatten().unwrap_or(70);
                out.extend_from_slice(b"Max-Forwards: ");
                push_u32(out, u32::from(n.saturating_sub(1)));
                out.extend_from_slice(b"\r\n");
            }
            _ => {
                saw_max_forwards |= h.name == HeaderName::MaxForwards;
                saw_content_length |= h.name == HeaderName::ContentLength;
                out.extend_from_slice(h.line().of(buf));
                if h.eol == 0 {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
    if edits.decrement_max_forwards && !saw_max_forwards && msg.is_request() {
        out.extend_from_slice(b"Max-Forwards: 70\r\n");
    }
    for (name, value) in edits.extra {
        line(out, name, value);
    }
    if !saw_content_length {
        out.extend_from_slice(b"Content-Length: ");
        push_u32(out, msg.body.len() as u32);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(msg.body());
}

/// Writes a list header without its first item (or nothing when that was the only one).
fn write_without_first(out: &mut Vec<u8>, name: &[u8], msg: &Message<'_>, h: &Header) {
    let value = trim(h.value.of(msg.buf));
    let mut items = Items::new(value);
    items.next();
    let rest = match items.next() {
        Some(second) => &value[offset_in(value, second) as usize..],
        None => return,
    };
    line(out, name, rest);
}

/// True when `inner` is a prefix of `outer` in the same buffer (not merely equal bytes).
fn starts(outer: &[u8], inner: &[u8]) -> bool {
    outer.as_ptr() == inner.as_ptr() && inner.len() <= outer.len()
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}
