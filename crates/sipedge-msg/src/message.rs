//! [`Message`]: a parsed SIP message borrowing its bytes, with lazy typed accessors.

use smallvec::SmallVec;

use crate::addr::{Contact, NameAddr};
use crate::auth::Credentials;
use crate::error::{ParseError, ParseErrorKind as K};
use crate::fields::{CSeq, ContentType, Event};
use crate::header::HeaderName;
use crate::index::INLINE_HEADERS;
use crate::lex::{all_visible, offset_in, parse_u32, parse_u64, trim};
use crate::list::{tokens, Items};
use crate::uri::Uri;
use crate::via::Via;

/// A byte range `[start, end)` into the message buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: u32,
    /// One past the last byte.
    pub end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Self {
        Self {
            start: start as u32,
            end: end as u32,
        }
    }
    /// The bytes of this span in `buf`.
    #[inline]
    pub fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..self.end as usize]
    }
    /// Length in bytes.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// One header line in the index: byte ranges only, no copies (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub(crate) name: HeaderName,
    /// Length of the line terminator after `value` (2 for CRLF, 1 for LF, 0 at the end).
    pub(crate) eol: u8,
    pub(crate) name_len: u16,
    /// Where the line (the name) starts.
    pub(crate) line_start: u32,
    /// The value, after `: ` up to the end of the last folded line (not trimmed at the end).
    pub(crate) value: Span,
}

impl Header {
    /// The resolved name.
    pub fn name(&self) -> HeaderName {
        self.name
    }
    /// The whole line's range: name to the end of its CRLF, folding included.
    pub fn line(&self) -> Span {
        Span {
            start: self.line_start,
            end: self.value.end + u32::from(self.eol),
        }
    }
    /// The value's range.
    pub fn value(&self) -> Span {
        self.value
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartLine {
    Request { method: Span, uri: Span },
    Response { status: u16, reason: Span },
}

/// A SIP request or response, indexed but not copied. Accessors parse fields when called.
///
/// Accessors for one header return the *first* occurrence; list accessors iterate every
/// value across every line of that header (RFC 3261 §7.3.1), lazily.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) start: StartLine,
    pub(crate) headers: SmallVec<[Header; INLINE_HEADERS]>,
    pub(crate) body: Span,
    /// Offset just past the start line (where the first header line starts).
    pub(crate) headers_start: u32,
    pub(crate) content_length: Option<u32>,
    pub(crate) defect: Option<ParseError>,
    /// Index of the first line of each of the first [`HOT`] header names (by discriminant:
    /// Via, From, To, Call-ID, CSeq, Max-Forwards, Contact, Expires, …, Authorization), or
    /// [`NONE`]: the common lookups skip the scan.
    pub(crate) first: [u8; HOT],
}

/// Header names with a direct first-line index (discriminants below this).
pub(crate) const HOT: usize = 16;
/// "No such header" in [`Message::first`] (also used past 255 header lines).
pub(crate) const NONE: u8 = u8::MAX;

/// A header as seen by [`Message::headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// The resolved name.
    pub name: HeaderName,
    /// The name as written (e.g. `v` or `Via`).
    pub name_bytes: &'a [u8],
    /// The value, whitespace-trimmed (folding kept inside).
    pub value: &'a [u8],
}

impl<'a> Message<'a> {
    /// The message's bytes (for UDP: up to the end of the Content-Length body).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }
    /// True for a response.
    pub fn is_response(&self) -> bool {
        !self.is_request()
    }
    /// The Request-URI as written (`None` for a response).
    pub fn request_uri_raw(&self) -> Option<&'a [u8]> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri.of(self.buf)),
            StartLine::Response { .. } => None,
        }
    }
    /// The Request-URI, parsed.
    pub fn request_uri(&self) -> Result<Uri<'a>, ParseError> {
        let raw = self
            .request_uri_raw()
            .ok_or(ParseError::new(K::BadStartLine, 0))?;
        Uri::parse(raw).map_err(|_| ParseError::new(K::BadRequestUri, offset_in(self.buf, raw)))
    }
    /// Range of the Request-URI in the buffer (for editing).
    pub(crate) fn request_uri_span(&self) -> Option<Span> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }
    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status, .. } => Some(status),
            StartLine::Request { .. } => None,
        }
    }
    /// The reason phrase of a response (may be empty).
    pub fn reason(&self) -> Option<&'a [u8]> {
        match self.start {
            StartLine::Response { reason, .. } => Some(reason.of(self.buf)),
            StartLine::Request { .. } => None,
        }
    }
    /// The body (Content-Length bytes, or the rest of the datagram).
    pub fn body(&self) -> &'a [u8] {
        self.body.of(self.buf)
    }
    /// Offset where the body starts (just past the empty line).
    pub fn body_offset(&self) -> usize {
        self.body.start as usize
    }
    /// The Content-Length value when present and well-formed.
    pub fn content_length(&self) -> Option<u32> {
        self.content_length
    }
    /// The raw header index.
    pub fn header_index(&self) -> &[Header] {
        &self.headers
    }

    /// Every header in order.
    pub fn headers(&self) -> impl Iterator<Item = HeaderRef<'a>> + '_ {
        self.headers.iter().map(|h| self.header_ref(h))
    }

    pub(crate) fn header_ref(&self, h: &Header) -> HeaderRef<'a> {
        let name_start = h.line_start as usize;
        HeaderRef {
            name: h.name,
            name_bytes: &self.buf[name_start..name_start + h.name_len as usize],
            value: trim(h.value.of(self.buf)),
        }
    }

    /// The first value of a known header, trimmed.
    #[inline]
    pub fn header(&self, name: HeaderName) -> Option<&'a [u8]> {
        let slot = name as usize;
        if slot < HOT {
            let i = self.first[slot];
            if i != NONE {
                return Some(trim(self.headers[i as usize].value.of(self.buf)));
            }
            if self.headers.len() < NONE as usize {
                return None;
            }
        }
        self.header_values(name).next()
    }

    /// Every line's value of a known header, trimmed.
    pub fn header_values(&self, name: HeaderName) -> impl Iterator<Item = &'a [u8]> + '_ {
        let buf = self.buf;
        let slot = name as usize;
        let from = if slot < HOT && self.first[slot] != NONE {
            self.first[slot] as usize
        } else if slot < HOT && self.headers.len() < NONE as usize {
            self.headers.len()
        } else {
            0
        };
        self.headers[from..]
            .iter()
            .filter(move |h| h.name == name)
            .map(move |h| trim(h.value.of(buf)))
    }

    /// The first value of any header by name, case-insensitively (compact forms resolve).
    pub fn header_named(&self, name: &[u8]) -> Option<&'a [u8]> {
        let known = HeaderName::from_bytes(name);
        if known != HeaderName::Other {
            return self.header(known);
        }
        self.headers()
            .find(|h| h.name_bytes.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Every comma-separated item of a list header, across all its lines (RFC 3261 §7.3.1).
    pub fn header_items(&self, name: HeaderName) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.header_values(name).flat_map(Items::new)
    }

    /// Number of header lines with this name.
    pub fn count(&self, name: HeaderName) -> usize {
        self.headers.iter().filter(|h| h.name == name).count()
    }

    fn err_at(&self, kind: K, value: &[u8]) -> ParseError {
        ParseError::new(kind, offset_in(self.buf, value))
    }

    fn required(&self, name: HeaderName) -> Result<&'a [u8], ParseError> {
        self.header(name)
            .ok_or(ParseError::new(K::MissingHeader(name), self.body.start))
    }

    /// Every Via value, top first (RFC 3261 §20.42).
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'a>, ParseError>> + '_ {
        self.vias_after(0)
    }

    /// [`Message::vias`] without the first `n`, which are not parsed (`skip` on a mapped
    /// iterator would parse them).
    pub(crate) fn vias_after(
        &self,
        n: usize,
    ) -> impl Iterator<Item = Result<Via<'a>, ParseError>> + '_ {
        self.header_items(HeaderName::Via).skip(n).map(move |v| {
            Via::parse_trimmed(v).map_err(|_| self.err_at(K::BadHeader(HeaderName::Via), v))
        })
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via<'a>, ParseError> {
        let first = self.required(HeaderName::Via)?;
        let item = Items::new(first).next().unwrap_or(first);
        Via::parse_trimmed(item).map_err(|_| self.err_at(K::BadHeader(HeaderName::Via), item))
    }

    fn name_addr(&self, name: HeaderName) -> Result<NameAddr<'a>, ParseError> {
        let v = self.required(name)?;
        NameAddr::parse_trimmed(v).map_err(|_| self.err_at(K::BadHeader(name), v))
    }

    /// From (RFC 3261 §20.20).
    pub fn from(&self) -> Result<NameAddr<'a>, ParseError> {
        self.name_addr(HeaderName::From)
    }

    /// To (RFC 3261 §20.39).
    pub fn to(&self) -> Result<NameAddr<'a>, ParseError> {
        self.name_addr(HeaderName::To)
    }

    /// Call-ID (RFC 3261 §20.8): `word ["@" word]`, no whitespace.
    pub fn call_id(&self) -> Result<&'a [u8], ParseError> {
        let v = self.required(HeaderName::CallId)?;
        if v.is_empty() || !all_visible(v) {
            return Err(self.err_at(K::BadHeader(HeaderName::CallId), v));
        }
        Ok(v)
    }

    /// CSeq (RFC 3261 §20.16).
    pub fn cseq(&self) -> Result<CSeq<'a>, ParseError> {
        let v = self.required(HeaderName::CSeq)?;
        CSeq::parse(v).map_err(|_| self.err_at(K::BadHeader(HeaderName::CSeq), v))
    }

    /// Max-Forwards (RFC 3261 §20.22), 0–255; `Ok(None)` when absent.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        let Some(v) = self.header(HeaderName::MaxForwards) else {
            return Ok(None);
        };
        match parse_u32(v) {
            Some(n) if n <= 255 => Ok(Some(n as u8)),
            _ => Err(self.err_at(K::BadHeader(HeaderName::MaxForwards), v)),
        }
    }

    /// Expires (RFC 3261 §20.19) in seconds; `Ok(None)` when absent. Values past 2³²−1
    /// saturate (RFC 4475 §3.1.2.4 lets an element treat an overlarge expiry as a default;
    /// a registrar clamps it to its maximum anyway).
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        let Some(v) = self.header(HeaderName::Expires) else {
            return Ok(None);
        };
        parse_delta_seconds(v)
            .map(Some)
            .ok_or_else(|| self.err_at(K::BadHeader(HeaderName::Expires), v))
    }

    /// Every Contact (RFC 3261 §20.10), including `*`.
    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'a>, ParseError>> + '_ {
        self.contacts_after(0)
    }

    /// [`Message::contacts`] without the first `n`, which are not parsed.
    pub(crate) fn contacts_after(
        &self,
        n: usize,
    ) -> impl Iterator<Item = Result<Contact<'a>, ParseError>> + '_ {
        self.header_items(HeaderName::Contact)
            .skip(n)
            .map(move |v| {
                Contact::parse_trimmed(v)
                    .map_err(|_| self.err_at(K::BadHeader(HeaderName::Contact), v))
            })
    }

    fn addr_list(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.header_items(name).map(move |v| {
            NameAddr::parse_trimmed(v).map_err(|_| self.err_at(K::BadHeader(name), v))
        })
    }

    /// Every Route value, in order (RFC 3261 §20.34).
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.addr_list(HeaderName::Route)
    }

    /// Every Record-Route value, in order (RFC 3261 §20.30).
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.addr_list(HeaderName::RecordRoute)
    }

    /// Every Path value, in order (RFC 3327 §4).
    pub fn paths(&self) -> impl Iterator<Item = Result<NameAddr<'a>, ParseError>> + '_ {
        self.addr_list(HeaderName::Path)
    }

    /// Content-Type (RFC 3261 §20.15).
    pub fn content_type(&self) -> Result<Option<ContentType<'a>>, ParseError> {
        let Some(v) = self.header(HeaderName::ContentType) else {
            return Ok(None);
        };
        ContentType::parse(v)
            .map(Some)
            .map_err(|_| self.err_at(K::BadHeader(HeaderName::ContentType), v))
    }

    fn credentials(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<Credentials<'a>, ParseError>> + '_ {
        self.header_values(name)
            .map(move |v| Credentials::parse(v).map_err(|_| self.err_at(K::BadHeader(name), v)))
    }

    /// Every Authorization header (RFC 3261 §20.7; several realms may each have one).
    pub fn authorization(&self) -> impl Iterator<Item = Result<Credentials<'a>, ParseError>> + '_ {
        self.credentials(HeaderName::Authorization)
    }

    /// Every Proxy-Authorization header (RFC 3261 §20.28).
    pub fn proxy_authorization(
        &self,
    ) -> impl Iterator<Item = Result<Credentials<'a>, ParseError>> + '_ {
        self.credentials(HeaderName::ProxyAuthorization)
    }

    /// Option tags of Supported (RFC 3261 §20.37).
    pub fn supported(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.header_values(HeaderName::Supported).flat_map(tokens)
    }

    /// Option tags of Require (RFC 3261 §20.32).
    pub fn require(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.header_values(HeaderName::Require).flat_map(tokens)
    }

    /// Option tags of Proxy-Require (RFC 3261 §20.29).
    pub fn proxy_require(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.header_values(HeaderName::ProxyRequire)
            .flat_map(tokens)
    }

    /// Methods listed in Allow (RFC 3261 §20.5).
    pub fn allow(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.header_values(HeaderName::Allow).flat_map(tokens)
    }

    /// True when Supported lists `tag` (option tags compare case-insensitively here).
    pub fn supports(&self, tag: &[u8]) -> bool {
        self.supported().any(|t| t.eq_ignore_ascii_case(tag))
    }

    /// User-Agent (RFC 3261 §20.41), as written.
    pub fn user_agent(&self) -> Option<&'a [u8]> {
        self.header(HeaderName::UserAgent)
    }

    /// Event (RFC 6665 §8.2.1).
    pub fn event(&self) -> Result<Option<Event<'a>>, ParseError> {
        let Some(v) = self.header(HeaderName::Event) else {
            return Ok(None);
        };
        Event::parse(v)
            .map(Some)
            .map_err(|_| self.err_at(K::BadHeader(HeaderName::Event), v))
    }
}

/// `delta-seconds = 1*DIGIT`, saturating at u32::MAX.
pub(crate) fn parse_delta_seconds(v: &[u8]) -> Option<u32> {
    let v = trim(v);
    match parse_u64(v) {
        Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        // More than 20 digits (past u64) saturates too; anything else is malformed.
        None if !v.is_empty() && v.iter().all(u8::is_ascii_digit) => Some(u32::MAX),
        None => None,
    }
}
