//! Indexing: one pass over the bytes that finds the start line, every header line and the
//! body, storing byte ranges only (RFC 3261 §7). Field values are parsed later, on demand.
//!
//! Framing (RFC 3261 §18.3): over UDP the body is Content-Length bytes, or the rest of the
//! datagram when Content-Length is absent; bytes past the declared length are ignored
//! (RFC 4475 §3.1.1.11 `dblreq`); a length past the datagram's end is an error. Over streams
//! the header section must end with an empty line and Content-Length is required.

use smallvec::SmallVec;

use crate::error::{ParseError, ParseErrorKind as K};
use crate::header::HeaderName;
use crate::lex::{eq_token_ci, find2, find_byte, parse_u64, skip_token, trim};
use crate::message::{Header, Message, Span, StartLine, HOT, NONE};
use crate::method::Method;

/// Default upper bound on one message, in bytes (the largest UDP payload).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 65_535;
/// Default upper bound on the number of header lines in one message.
pub const DEFAULT_MAX_HEADERS: usize = 256;
/// Default upper bound on the Request-URI, in bytes (longer → 414).
pub const DEFAULT_MAX_REQUEST_URI_BYTES: usize = 8_192;
/// Header entries stored inline before the index spills to the heap.
pub const INLINE_HEADERS: usize = 32;

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Larger messages are refused with `MessageTooLarge` (513).
    pub max_message_bytes: usize,
    /// More header lines are refused with `TooManyHeaders` (400).
    pub max_headers: usize,
    /// A longer Request-URI is refused with `RequestUriTooLong` (414).
    pub max_request_uri_bytes: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_request_uri_bytes: DEFAULT_MAX_REQUEST_URI_BYTES,
        }
    }
}

/// True for a keepalive datagram: only CR and LF bytes (RFC 5626 §3.5.1 CRLF keepalive,
/// and the `CRLFCRLF` ping of §4.4.1).
pub fn is_keepalive(buf: &[u8]) -> bool {
    !buf.is_empty() && buf.iter().all(|&b| b == b'\r' || b == b'\n')
}

/// Result of framing a stream buffer (TCP/TLS).
#[derive(Debug)]
pub enum StreamFrame<'a> {
    /// Not enough bytes for a whole message yet; read more and call again.
    Incomplete,
    /// Leading CRLFs (keepalives, RFC 5626 §4.4.1) to consume. `ping` is true for a
    /// `CRLFCRLF` ping, which the receiver answers with a single `CRLF` pong.
    Keepalive {
        /// Bytes to consume.
        len: usize,
        /// The bytes were a double-CRLF ping.
        ping: bool,
    },
    /// A complete message occupying `len` bytes at the start of the buffer.
    Message {
        /// The message (check [`Message::validate`] before trusting it).
        msg: Box<Message<'a>>,
        /// Bytes to consume.
        len: usize,
    },
}

impl<'a> Message<'a> {
    /// Parses one UDP datagram holding one SIP message.
    ///
    /// Fails only when the bytes cannot be indexed at all (too large, not SIP, too many
    /// headers): nothing can be answered then. Defects found while indexing (a bad start line,
    /// a bad header line, a bad Content-Length) are kept and reported by
    /// [`Message::validate`], so that the caller can still build an error response.
    #[inline]
    pub fn parse(buf: &'a [u8]) -> Result<Message<'a>, ParseError> {
        Self::parse_with(buf, &ParseOptions::default())
    }

    /// [`Message::parse`] with explicit limits.
    #[inline]
    pub fn parse_with(buf: &'a [u8], opts: &ParseOptions) -> Result<Message<'a>, ParseError> {
        if buf.len() > opts.max_message_bytes {
            return Err(ParseError::new(
                K::MessageTooLarge,
                opts.max_message_bytes as u32,
            ));
        }
        index(buf, opts, false)
    }

    /// Frames the next message of a stream (RFC 3261 §18.3, RFC 5626 §4.4.1).
    pub fn frame_stream(buf: &'a [u8], opts: &ParseOptions) -> Result<StreamFrame<'a>, ParseError> {
        let lead = buf
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count();
        if lead > 0 {
            if lead == buf.len() && lead < 4 && b"\r\n\r\n".starts_with(buf) {
                // Possibly the first half of a double-CRLF ping.
                return Ok(StreamFrame::Incomplete);
            }
            let ping = buf[..lead].starts_with(b"\r\n\r\n");
            return Ok(StreamFrame::Keepalive { len: lead, ping });
        }
        let Some(head_end) = find_header_end(buf) else {
            if buf.len() > opts.max_message_bytes {
                return Err(ParseError::new(
                    K::MessageTooLarge,
                    opts.max_message_bytes as u32,
                ));
            }
            return Ok(StreamFrame::Incomplete);
        };
        if head_end > opts.max_message_bytes {
            return Err(ParseError::new(
                K::MessageTooLarge,
                opts.max_message_bytes as u32,
            ));
        }
        let head = index(&buf[..head_end], opts, true)?;
        if let Some(err) = head.defect {
            return Err(err);
        }
        let Some(cl) = head.content_length() else {
            return Err(ParseError::new(K::MissingContentLength, head_end as u32));
        };
        let total = head_end + cl as usize;
        if total > opts.max_message_bytes {
            return Err(ParseError::new(
                K::MessageTooLarge,
                opts.max_message_bytes as u32,
            ));
        }
        if buf.len() < total {
            return Ok(StreamFrame::Incomplete);
        }
        let msg = index(&buf[..total], opts, true)?;
        Ok(StreamFrame::Message {
            msg: Box::new(msg),
            len: total,
        })
    }
}

/// Offset just past the empty line ending the header section, if present.
fn find_header_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(nl) = find_byte(buf, i, b'\n') {
        let next = nl + 1;
        match buf.get(next) {
            Some(b'\n') => return Some(next + 1),
            Some(b'\r') if buf.get(next + 1) == Some(&b'\n') => return Some(next + 2),
            _ => i = next,
        }
    }
    None
}

/// End of the line starting at `from`: (content end without CR, next line start).
#[inline]
fn line_at(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let nl = find_byte(buf, from, b'\n')?;
    let end = if nl > from && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((end, nl + 1))
}

/// The end of the line containing `from`: (content end without CR, next line start). At the
/// end of a datagram a last line without CRLF is accepted; on a stream it is an error.
#[inline]
fn next_line(buf: &[u8], from: usize, stream: bool) -> Result<(usize, usize), ParseError> {
    match line_at(buf, from) {
        Some(l) => Ok(l),
        None if !stream => Ok((buf.len(), buf.len())),
        None => Err(ParseError::new(K::UnterminatedHeaders, from as u32)),
    }
}

#[inline]
fn index<'a>(buf: &'a [u8], opts: &ParseOptions, stream: bool) -> Result<Message<'a>, ParseError> {
    // RFC 3261 §7.5: ignore CRLFs before the start line.
    let mut pos = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    let Some((line_end, next)) = line_at(buf, pos) else {
        return Err(ParseError::new(K::NotSip, pos as u32));
    };
    let mut defect = None;
    let start = start_line(buf, pos, line_end, opts, &mut defect)?;
    pos = next;

    // Built in place: the message (with its inline header array) is not moved afterwards.
    let mut msg = Message {
        buf,
        start,
        headers: SmallVec::new(),
        body: Span::new(buf.len(), buf.len()),
        headers_start: pos as u32,
        content_length: None,
        defect,
        first: [NONE; HOT],
    };
    let mut body_start = None;
    // Header lines indexed so far (`msg.headers.len()`, without SmallVec's inline/heap test).
    let mut count = 0usize;
    while pos < buf.len() {
        let first = buf[pos];
        // One comparison for the usual line, which starts with a letter.
        if first <= b' ' {
            if first == b'\r' || first == b'\n' {
                // The empty line ending the header section (a lone CR that is not CRLF
                // counts as the start of a malformed line).
                let next = if first == b'\n' { pos + 1 } else { pos + 2 };
                if first == b'\n' || buf.get(pos + 1) == Some(&b'\n') {
                    body_start = Some(next.min(buf.len()));
                    break;
                }
            }
            if first == b' ' || first == b'\t' {
                // RFC 3261 §7.3.1 folding: the line continues the previous header's value.
                let (end, next) = next_line(buf, pos, stream)?;
                match msg.headers.last_mut() {
                    Some(h) => {
                        h.value.end = end as u32;
                        h.eol = (next - end) as u8;
                    }
                    None => set_defect(&mut msg.defect, K::BadHeaderLine, pos),
                }
                pos = next;
                continue;
            }
        }
        // `field-name HCOLON value`: one vector search finds the line end, a second the
        // colon. A known name resolves by hash and an exact comparison, which also proves it
        // a `token`; any other name is checked byte by byte.
        let nl = find_byte(buf, pos, b'\n');
        let line_end = match nl {
            Some(nl) if buf[nl - 1] == b'\r' => nl - 1,
            Some(nl) => nl,
            None => buf.len(),
        };
        let (name, name_end, colon) = match HeaderName::known_prefix(&buf[pos..line_end]) {
            // A known name is a non-empty token, and short.
            Some((name, len)) => (name, pos + len, pos + len),
            None => match other_name(buf, pos, line_end) {
                Some(n) => n,
                None => {
                    set_defect(&mut msg.defect, K::BadHeaderLine, pos);
                    pos = match nl {
                        Some(nl) => nl + 1,
                        None if !stream => buf.len(),
                        None => return Err(ParseError::new(K::UnterminatedHeaders, pos as u32)),
                    };
                    continue;
                }
            },
        };
        let i = match buf.get(colon + 1..colon + 3) {
            // The usual `Name: value`.
            Some(&[b' ', c]) if c != b' ' && c != b'\t' => colon + 2,
            _ => skip_sp(buf, colon + 1),
        };
        let (end, next) = match nl {
            Some(nl) => (line_end, nl + 1),
            None if !stream => (buf.len(), buf.len()),
            None => return Err(ParseError::new(K::UnterminatedHeaders, i as u32)),
        };
        if count >= opts.max_headers {
            return Err(ParseError::new(K::TooManyHeaders, pos as u32));
        }
        let slot = name as usize;
        if slot < HOT && msg.first[slot] == NONE && count < NONE as usize {
            msg.first[slot] = count as u8;
        }
        count += 1;
        msg.headers.push(Header {
            name,
            name_len: (name_end - pos) as u16,
            eol: (next - end) as u8,
            line_start: pos as u32,
            value: Span::new(i.min(end), end),
        });
        pos = next;
    }
    if stream && body_start.is_none() {
        return Err(ParseError::new(K::UnterminatedHeaders, buf.len() as u32));
    }
    msg.body = Span::new(body_start.unwrap_or(buf.len()), buf.len());
    frame_body(&mut msg, stream);
    Ok(msg)
}

/// A header line at `pos` (ending at `line_end`) whose name is not a known one: its name,
/// where the name ends and where the colon is; `None` when the name is empty, too long or
/// not a `token` (RFC 3261 §7.3.1, `field-name HCOLON`).
#[inline(always)]
fn other_name(buf: &[u8], pos: usize, line_end: usize) -> Option<(HeaderName, usize, usize)> {
    let colon = find_byte(&buf[..line_end], pos, b':').unwrap_or(pos);
    let mut name_end = colon;
    while name_end > pos && matches!(buf[name_end - 1], b' ' | b'\t') {
        name_end -= 1;
    }
    let name = HeaderName::from_token(&buf[pos..name_end]);
    let bad = name_end == pos
        || name_end - pos > u16::MAX as usize
        || (name == HeaderName::Other && skip_token(buf, pos) != name_end);
    (!bad).then_some((name, name_end, colon))
}

/// Skips SP and HTAB.
#[inline]
fn skip_sp(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && (buf[i] == b' ' || buf[i] == b'\t') {
        i += 1;
    }
    i
}

fn set_defect(defect: &mut Option<ParseError>, kind: K, at: usize) {
    if defect.is_none() {
        *defect = Some(ParseError::new(kind, at as u32));
    }
}

/// Applies Content-Length to the body span (RFC 3261 §18.3, §20.14).
fn frame_body(msg: &mut Message<'_>, stream: bool) {
    // The first Content-Length from the hot-header slots (a full scan past 255 lines).
    let from = match msg.first[HeaderName::ContentLength as usize] {
        NONE if msg.headers.len() < NONE as usize => return,
        NONE => 0,
        i => i as usize,
    };
    let mut cl_value = None;
    for h in msg.headers[from..]
        .iter()
        .filter(|h| h.name == HeaderName::ContentLength)
    {
        if cl_value.is_some() {
            // Several Content-Length values cannot frame a body (RFC 4475 §3.1.2.4 `mcl01`).
            let at = h.line_start as usize;
            set_defect(
                &mut msg.defect,
                K::DuplicateHeader(HeaderName::ContentLength),
                at,
            );
            return;
        }
        cl_value = Some(h.value);
    }
    let Some(span) = cl_value else { return };
    let value = trim(span.of(msg.buf));
    let at = span.start as usize;
    let Some(len) = parse_u64(value).and_then(|v| u32::try_from(v).ok()) else {
        set_defect(&mut msg.defect, K::BadHeader(HeaderName::ContentLength), at);
        return;
    };
    msg.content_length = Some(len);
    let available = msg.body.len();
    if len as usize > available {
        if !stream {
            set_defect(&mut msg.defect, K::BodyTruncated, at);
        }
        return;
    }
    msg.body.end = msg.body.start + len;
    msg.buf = &msg.buf[..msg.body.end as usize];
}

/// RFC 3261 §7.1 Request-Line / §7.2 Status-Line. Exactly one SP between elements.
fn start_line(
    buf: &[u8],
    start: usize,
    end: usize,
    opts: &ParseOptions,
    defect: &mut Option<ParseError>,
) -> Result<StartLine, ParseError> {
    let line = &buf[start..end];
    if line.len() >= 4 && eq_token_ci(b"SIP/", &line[..4]) {
        return status_line(line, start, defect);
    }
    // The usual methods by one comparison each (the same end the token scan finds).
    let method_end = match line.first() {
        Some(b'R') if line.starts_with(b"REGISTER ") => 8,
        Some(b'I') if line.starts_with(b"INVITE ") => 6,
        Some(b'A') if line.starts_with(b"ACK ") => 3,
        Some(b'B') if line.starts_with(b"BYE ") => 3,
        Some(b'O') if line.starts_with(b"OPTIONS ") => 7,
        _ => skip_token(line, 0),
    };
    if method_end == 0 || line.get(method_end) != Some(&b' ') {
        // Not even `token SP`: this is not SIP.
        return Err(ParseError::new(K::NotSip, start as u32));
    }
    let method = Span::new(start, start + method_end);
    let rest = &line[method_end + 1..];
    let at = start + method_end + 1;
    // Request-URI runs to the last SP; the version follows it.
    let fast = rest.ends_with(b" SIP/2.0");
    let last_sp = if fast {
        Some(rest.len() - 8)
    } else {
        rest.iter().rposition(|&b| b == b' ')
    };
    let (uri, version) = match last_sp {
        Some(sp) => (Span::new(at, at + sp), &rest[sp + 1..]),
        None => {
            set_defect(defect, K::BadStartLine, at);
            (Span::new(at, at + rest.len()), &b""[..])
        }
    };
    let uri_bytes = uri.of(buf);
    if uri_bytes.is_empty() || uri_bytes.first() == Some(&b' ') || version.is_empty() {
        set_defect(defect, K::BadStartLine, at);
    } else if uri_bytes.len() > opts.max_request_uri_bytes {
        set_defect(defect, K::RequestUriTooLong, at);
    } else if find2(rest, 0, b' ', b'\t').is_some_and(|sp| sp < uri_bytes.len()) {
        // The search runs over the rest of the line, which also holds the version: 16 bytes
        // or more take memchr's vector path.
        set_defect(defect, K::BadRequestUri, at);
    } else if !fast {
        check_version(version, start + line.len() - version.len(), defect);
    }
    Ok(StartLine::Request { method, uri })
}

fn check_version(v: &[u8], at: usize, defect: &mut Option<ParseError>) {
    if v == b"SIP/2.0" {
        return;
    }
    // SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT; only 2.0 is spoken (RFC 3261 §7.1).
    let well_formed = v.len() > 4
        && v[..4].eq_ignore_ascii_case(b"SIP/")
        && match v[4..].iter().position(|&b| b == b'.') {
            Some(dot) => parse_u64(&v[4..4 + dot]).is_some() && parse_u64(&v[5 + dot..]).is_some(),
            None => false,
        };
    if !well_formed {
        set_defect(defect, K::BadStartLine, at);
    } else if &v[4..] != b"2.0" {
        set_defect(defect, K::UnsupportedVersion, at);
    }
}

fn status_line(
    line: &[u8],
    start: usize,
    defect: &mut Option<ParseError>,
) -> Result<StartLine, ParseError> {
    let sp = line.iter().position(|&b| b == b' ');
    let Some(sp) = sp else {
        return Err(ParseError::new(K::NotSip, start as u32));
    };
    check_version(&line[..sp], start, defect);
    let rest = &line[sp + 1..];
    let code_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let code = &rest[..code_end];
    let status = match parse_u64(code) {
        Some(c) if code.len() == 3 && (100..=699).contains(&c) => c as u16,
        _ => {
            set_defect(defect, K::BadStatusCode, start + sp + 1);
            0
        }
    };
    let reason_start = (start + sp + 1 + code_end + 1).min(start + line.len());
    Ok(StartLine::Response {
        status,
        reason: Span::new(reason_start, start + line.len()),
    })
}

impl<'a> Message<'a> {
    /// The method of a request (`None` for a response).
    pub fn method(&self) -> Option<Method<'a>> {
        match self.start {
            StartLine::Request { method, .. } => Method::from_bytes(method.of(self.buf)),
            StartLine::Response { .. } => None,
        }
    }
}
