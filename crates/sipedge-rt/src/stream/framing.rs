//! [`Framer`]: whole SIP messages out of a connection's byte stream, sans-IO.
//!
//! * RFC 3261 §18.3: on a stream, Content-Length is mandatory and delimits the body; a
//!   message without it is a protocol error (the connection closes — the 400 is optional).
//! * RFC 5626 §4.4.1: a double CRLF between messages is a keepalive ping, answered with a
//!   single CRLF pong ([`Frame::Ping`]); RFC 3261 §7.5: a lone CRLF before a start line is
//!   ignored.
//! * A message larger than `max_message` bytes, or headers not complete within it, closes
//!   the connection: the bytes held per connection stay bounded.
//!
//! Input may arrive split anywhere; bytes of an incomplete message are kept (at most
//! `max_message`). Complete messages are handed out borrowed from the input where possible,
//! copied only when they straddle reads. Counts from the wire use checked arithmetic.

use std::fmt;

/// One item out of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// One whole SIP message (headers and body).
    Message(&'a [u8]),
    /// A CRLFCRLF keepalive ping (RFC 5626 §4.4.1): answer with [`PONG`].
    Ping,
}

/// The answer to a [`Frame::Ping`] (RFC 5626 §4.4.1).
pub const PONG: &[u8] = b"\r\n";

/// Why the stream cannot be framed: the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A message, or headers still without their end, longer than `max_message`.
    TooLarge,
    /// No Content-Length (RFC 3261 §18.3: mandatory on a stream).
    NoContentLength,
    /// A Content-Length that is not a number, or two that disagree.
    BadContentLength,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameError::TooLarge => "message larger than max_message_bytes",
            FrameError::NoContentLength => "no Content-Length on a stream (RFC 3261 §18.3)",
            FrameError::BadContentLength => "bad Content-Length",
        })
    }
}

impl std::error::Error for FrameError {}

/// Per-connection stream framing state: the bytes of the message under way.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    max_message: usize,
}

/// What the start of `data` holds.
enum Next {
    /// `consumed` bytes: a ping, an ignored CRLF, or a whole message of that length.
    Ping,
    Skip(usize),
    Message(usize),
    /// Not complete yet.
    More,
}

impl Framer {
    /// A framer for messages of at most `max_message` bytes.
    pub fn new(max_message: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            max_message: max_message.max(1),
        }
    }

    /// Bytes held of a message not complete yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds `input`; calls `out` for each complete item, in order. After an error the
    /// framer must not be fed again (the connection closes); items before it were delivered.
    pub fn push(&mut self, input: &[u8], out: &mut dyn FnMut(Frame<'_>)) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            // Fast path: frame straight from the input, keep only the tail.
            let used = frame_all(input, self.max_message, out)?;
            self.buf.extend_from_slice(&input[used..]);
            return Ok(());
        }
        // What is held stays below max_message (a longer message is an error), so the
        // buffer is bounded by that plus one read.
        self.buf.extend_from_slice(input);
        let used = frame_all(&self.buf, self.max_message, out)?;
        self.buf.drain(..used);
        Ok(())
    }
}

/// Frames every complete item at the start of `data`; returns the bytes consumed. The
/// unconsumed tail is a message under way, checked against `max`.
fn frame_all(
    mut data: &[u8],
    max: usize,
    out: &mut dyn FnMut(Frame<'_>),
) -> Result<usize, FrameError> {
    let total = data.len();
    loop {
        match next(data, max)? {
            Next::Ping => {
                out(Frame::Ping);
                data = &data[4..];
            }
            Next::Skip(n) => data = &data[n..],
            Next::Message(n) => {
                out(Frame::Message(&data[..n]));
                data = &data[n..];
            }
            Next::More => return Ok(total - data.len()),
        }
    }
}

fn next(data: &[u8], max: usize) -> Result<Next, FrameError> {
    if data.is_empty() {
        return Ok(Next::More);
    }
    if data.starts_with(b"\r\n\r\n") {
        return Ok(Next::Ping);
    }
    if data.starts_with(b"\r\n") {
        // A lone CRLF (RFC 3261 §7.5), unless more CRLF follow to make a ping.
        return Ok(if data.len() < 4 && b"\r\n\r\n".starts_with(data) {
            Next::More
        } else {
            Next::Skip(2)
        });
    }
    if data[0] == b'\r' || data[0] == b'\n' {
        // A bare CR or LF between messages: skipped as well, one byte at a time.
        return Ok(if data == b"\r" {
            Next::More
        } else {
            Next::Skip(1)
        });
    }
    let window = &data[..data.len().min(max)];
    let Some((end, body)) = head(window)? else {
        return if data.len() >= max {
            Err(FrameError::TooLarge)
        } else {
            Ok(Next::More)
        };
    };
    let head_len = end.checked_add(4).ok_or(FrameError::TooLarge)?;
    let len = head_len.checked_add(body).ok_or(FrameError::TooLarge)?;
    if len > max {
        return Err(FrameError::TooLarge);
    }
    Ok(if data.len() >= len {
        Next::Message(len)
    } else {
        Next::More
    })
}

/// One pass over the line ends of `hay` (issue 19: one `memchr` per line, not two): where
/// the first CRLFCRLF starts and the Content-Length of the header lines before it
/// (`Ok(None)`: no CRLFCRLF yet). Content-Length or its compact form `l` (RFC 3261
/// §7.3.3, §20.14), names case-insensitive, whitespace around the colon allowed; the start
/// line is not a header. A line is looked at once its `\n` is seen, so a bad or
/// conflicting Content-Length is refused as soon as its line is whole.
fn head(hay: &[u8]) -> Result<Option<(usize, usize)>, FrameError> {
    let mut found: Option<usize> = None;
    // Where the line under way starts; `None` on the start line.
    let mut line_start: Option<usize> = None;
    for p in memchr::memchr_iter(b'\n', hay) {
        if p >= 3 && &hay[p - 3..=p] == b"\r\n\r\n" {
            return found
                .map(|n| Some((p - 3, n)))
                .ok_or(FrameError::NoContentLength);
        }
        if let Some(start) = line_start {
            content_length_line(&hay[start..p], &mut found)?;
        }
        line_start = Some(p + 1);
    }
    Ok(None)
}

/// Takes the Content-Length of one header line (its `\n` excluded) into `found`; two that
/// disagree, or one that is not a number, are refused.
#[inline]
fn content_length_line(line: &[u8], found: &mut Option<usize>) -> Result<(), FrameError> {
    // Only a name starting with `c` or `l` can be Content-Length or `l`: most lines are
    // passed over on their first byte.
    let first = line.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'c' | b'C' | b'l' | b'L')) {
        return Ok(());
    }
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(colon) = memchr::memchr(b':', line) else {
        return Ok(());
    };
    let name = trim(&line[..colon]);
    if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
        return Ok(());
    }
    let value = trim(&line[colon + 1..]);
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(FrameError::BadContentLength);
    }
    let mut n: usize = 0;
    for d in value {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(usize::from(d - b'0')))
            .ok_or(FrameError::TooLarge)?;
    }
    if found.is_some_and(|f| f != n) {
        return Err(FrameError::BadContentLength);
    }
    *found = Some(n);
    Ok(())
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

#[cfg(test)]
mod tests;
