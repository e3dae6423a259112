//! [`WsCodec`]: the server side of SIP over WebSocket (RFC 7118 on RFC 6455), sans-IO.
//!
//! The HTTP/1.1 Upgrade request is answered with 101 and `Sec-WebSocket-Protocol: sip`
//! (RFC 7118 §4.1; a request that does not offer `sip` gets a 400). Then client frames are
//! unmasked, fragmented messages reassembled, and each whole message handed over as
//! [`Plain::Message`] (RFC 7118 §5: one SIP message per WebSocket message). Ping gets a
//! pong, Close gets a Close back and [`CodecError::Closed`]. `write` sends one unmasked
//! text frame per SIP message.
//!
//! Framing: tungstenite's `FrameHeader` parses and formats frame headers (opcodes,
//! extended lengths, mask key) and `derive_accept_key` answers the key; the message
//! assembly around them is ours. tungstenite's `WebSocket<S>` would need a blocking-style
//! `Read + Write` adapter fed by copies, keeps a read buffer and an output buffer of its own
//! per connection (128 KiB read buffer by default) and owns ping/close replies behind
//! `flush`; with its header codec the payload is unmasked once, in place, into the one
//! buffer this codec keeps, and an idle connection holds no buffer at all.
//!
//! Bounds: the upgrade request is at most [`MAX_HANDSHAKE_BYTES`]; a message (the sum of
//! its fragments) over `max_message` is refused from its frame header, before its payload
//! is held (Close 1009, [`CodecError::TooLarge`]).

use std::io::Cursor;

use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::codec::{CodecError, Plain, StreamCodec};

/// Largest HTTP Upgrade request accepted (request line and headers).
pub const MAX_HANDSHAKE_BYTES: usize = 8 * 1024;
/// Most headers in the Upgrade request.
const MAX_HANDSHAKE_HEADERS: usize = 48;
/// A buffer above this is dropped after use rather than kept by an idle connection.
const KEEP_BUFFER_BYTES: usize = 2048;

/// RFC 6455 §7.4.1 status codes we send.
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_BAD_DATA: u16 = 1007;
const CLOSE_TOO_BIG: u16 = 1009;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the HTTP Upgrade request.
    Handshake,
    /// Frames.
    Open,
    /// A Close was sent or received, or the connection failed: nothing more is read.
    Done,
}

/// A server-side WebSocket connection carrying SIP.
#[derive(Debug)]
pub struct WsCodec {
    state: State,
    /// Bytes not yet consumed: the partial Upgrade request, or a partial frame.
    held: Vec<u8>,
    /// The fragments of a message so far (unmasked).
    msg: Vec<u8>,
    /// The opcode of the message being reassembled (`None`: between messages).
    fragmented: Option<Data>,
    max_message: usize,
    /// Bytes of the Upgrade request already searched for its end (a request fed a byte at
    /// a time is scanned once, not once per byte).
    scanned: usize,
}

impl WsCodec {
    /// A connection just accepted; `max_message` bounds one SIP message (the sum of its
    /// fragments), normally `[server] max_message_bytes`.
    pub fn server(max_message: usize) -> Self {
        Self {
            state: State::Handshake,
            held: Vec::new(),
            msg: Vec::new(),
            fragmented: None,
            max_message,
            scanned: 0,
        }
    }

    /// RFC 6455 §4.2.1/§4.2.2 and RFC 7118 §4.1: `Ok(response)` for a valid Upgrade that
    /// offers `sip`, else `Err((http response, why))`.
    fn answer(request: &[u8]) -> Result<Vec<u8>, (&'static str, String)> {
        const BAD: &str =
            "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let mut headers = [httparse::EMPTY_HEADER; MAX_HANDSHAKE_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(request) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => return Err((BAD, "incomplete upgrade".into())),
            Err(e) => return Err((BAD, format!("bad upgrade request: {e}"))),
        }
        if req.method != Some("GET") || req.version != Some(1) {
            return Err((BAD, "upgrade is not GET over HTTP/1.1".into()));
        }
        let headers: &[httparse::Header<'_>] = req.headers;
        let header = |name: &'static str| values(headers, name);
        let has_token = |name: &'static str, token: &str| {
            header(name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        if !has_token("Upgrade", "websocket") || !has_token("Connection", "upgrade") {
            return Err((BAD, "not a WebSocket upgrade".into()));
        }
        if !has_token("Sec-WebSocket-Version", "13") {
            return Err((
                "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                "unsupported Sec-WebSocket-Version".into(),
            ));
        }
        let key = header("Sec-WebSocket-Key").next().unwrap_or("").trim();
        // §4.2.1 item 5: the base64 of 16 bytes is 24 characters.
        if key.len() != 24 {
            return Err((BAD, "bad Sec-WebSocket-Key".into()));
        }
        // Subprotocol names are case-sensitive (RFC 6455 §4.1 item 10; RFC 7118 §4.1: "sip").
        let offers_sip =
            header("Sec-WebSocket-Protocol").any(|v| v.split(',').any(|t| t.trim() == "sip"));
        if !offers_sip {
            return Err((
                BAD,
                "the `sip` subprotocol is not offered (RFC 7118 §4.1)".into(),
            ));
        }
        Ok(format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: sip\r\n\r\n",
            derive_accept_key(key.as_bytes())
        )
        .into_bytes())
    }

    /// Consumes the Upgrade request from `data`; returns how many bytes it took (0: not
    /// complete yet).
    fn handshake(&mut self, data: &[u8], wire: &mut Vec<u8>) -> Result<usize, CodecError> {
        let from = self.scanned.saturating_sub(3).min(data.len());
        let found = data[from..].windows(4).position(|w| w == b"\r\n\r\n");
        self.scanned = data.len();
        let Some(end) = found.map(|at| from + at) else {
            if data.len() > MAX_HANDSHAKE_BYTES {
                self.state = State::Done;
                return Err(CodecError::Protocol(
                    "ws: upgrade request over 8 KiB".into(),
                ));
            }
            return Ok(0);
        };
        let end = end + 4;
        if end > MAX_HANDSHAKE_BYTES {
            self.state = State::Done;
            return Err(CodecError::Protocol(
                "ws: upgrade request over 8 KiB".into(),
            ));
        }
        match Self::answer(&data[..end]) {
            Ok(reply) => {
                wire.extend_from_slice(&reply);
                self.state = State::Open;
                Ok(end)
            }
            Err((reply, why)) => {
                wire.extend_from_slice(reply.as_bytes());
                self.state = State::Done;
                Err(CodecError::Protocol(format!("ws: {why}")))
            }
        }
    }

    /// Ends the connection with a Close frame carrying `code` (RFC 6455 §7.1.7).
    fn fail(&mut self, code: u16, wire: &mut Vec<u8>, err: CodecError) -> CodecError {
        push_frame(wire, OpCode::Control(Control::Close), &code.to_be_bytes());
        self.state = State::Done;
        err
    }

    /// Consumes whole frames from `data`; returns how many bytes they took.
    fn frames(
        &mut self,
        data: &mut [u8],
        plain: &mut dyn FnMut(Plain<'_>),
        wire: &mut Vec<u8>,
    ) -> Result<usize, CodecError> {
        let mut pos = 0;
        while self.state == State::Open && pos < data.len() {
            let mut cur = Cursor::new(&data[pos..]);
            let (header, len) = match FrameHeader::parse(&mut cur) {
                Ok(Some(h)) => h,
                Ok(None) => break,
                Err(e) => {
                    let e = CodecError::Protocol(format!("ws: {e}"));
                    return Err(self.fail(CLOSE_PROTOCOL, wire, e));
                }
            };
            let head = usize::try_from(cur.position()).unwrap_or(usize::MAX);
            self.check(&header, len)
                .map_err(|(code, e)| self.fail(code, wire, e))?;
            // `check` bounded `len` by `max_message`, so it fits a usize.
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            let Some(end) = pos
                .checked_add(head)
                .and_then(|x| x.checked_add(len))
                .filter(|&end| end <= data.len())
            else {
                break;
            };
            let payload = &mut data[pos + head..end];
            if let Some(mask) = header.mask {
                unmask(payload, mask);
            }
            pos = end;
            self.frame(header.opcode, header.is_final, payload, plain, wire)?;
        }
        Ok(pos)
    }

    /// RFC 6455 §5.1–§5.5 rules a header must meet before its payload is read.
    fn check(&self, h: &FrameHeader, len: u64) -> Result<(), (u16, CodecError)> {
        let proto = |why: &str| (CLOSE_PROTOCOL, CodecError::Protocol(format!("ws: {why}")));
        if h.mask.is_none() {
            return Err(proto("unmasked client frame (RFC 6455 §5.1)"));
        }
        if h.rsv1 || h.rsv2 || h.rsv3 {
            return Err(proto(
                "reserved bits set without an extension (RFC 6455 §5.2)",
            ));
        }
        match h.opcode {
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                return Err(proto("reserved opcode (RFC 6455 §5.2)"))
            }
            OpCode::Control(_) if !h.is_final || len > 125 => {
                return Err(proto("fragmented or long control frame (RFC 6455 §5.5)"))
            }
            OpCode::Control(_) => return Ok(()),
            OpCode::Data(Data::Continue) if self.fragmented.is_none() => {
                return Err(proto("continuation outside a message (RFC 6455 §5.4)"))
            }
            OpCode::Data(Data::Text | Data::Binary) if self.fragmented.is_some() => {
                return Err(proto("new message inside a fragmented one (RFC 6455 §5.4)"))
            }
            OpCode::Data(_) => {}
        }
        let total = u64::try_from(self.msg.len())
            .ok()
            .and_then(|held| held.checked_add(len));
        match total {
            Some(t) if t <= u64::try_from(self.max_message).unwrap_or(u64::MAX) => Ok(()),
            _ => Err((CLOSE_TOO_BIG, CodecError::TooLarge)),
        }
    }

    /// One whole, unmasked, checked frame.
    fn frame(
        &mut self,
        opcode: OpCode,
        is_final: bool,
        payload: &[u8],
        plain: &mut dyn FnMut(Plain<'_>),
        wire: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        let kind = match opcode {
            OpCode::Control(Control::Ping) => {
                push_frame(wire, OpCode::Control(Control::Pong), payload);
                return Ok(());
            }
            OpCode::Control(Control::Close) => {
                // §5.5.1: echo the status code back, then close.
                let code = payload.get(..2).unwrap_or(&[]);
                push_frame(wire, OpCode::Control(Control::Close), code);
                self.state = State::Done;
                return Err(CodecError::Closed);
            }
            OpCode::Data(Data::Continue) => self.fragmented.unwrap_or(Data::Binary),
            OpCode::Data(d) => d,
            OpCode::Control(_) => return Ok(()), // pong: nothing to do
        };
        if !is_final {
            self.fragmented = Some(kind);
            self.msg.extend_from_slice(payload);
            return Ok(());
        }
        self.fragmented = None;
        let whole: &[u8] = if self.msg.is_empty() {
            payload
        } else {
            self.msg.extend_from_slice(payload);
            &self.msg
        };
        // §8.1: a text message must be UTF-8.
        if kind == Data::Text && std::str::from_utf8(whole).is_err() {
            let e = CodecError::Protocol("ws: text message is not UTF-8 (RFC 6455 §8.1)".into());
            return Err(self.fail(CLOSE_BAD_DATA, wire, e));
        }
        if !whole.is_empty() {
            plain(Plain::Message(whole));
        }
        self.msg.clear();
        if self.msg.capacity() > KEEP_BUFFER_BYTES {
            self.msg = Vec::new();
        }
        Ok(())
    }

    /// Handshake then frames over `data`; returns the bytes consumed.
    fn consume(
        &mut self,
        data: &mut [u8],
        plain: &mut dyn FnMut(Plain<'_>),
        wire: &mut Vec<u8>,
    ) -> Result<usize, CodecError> {
        let mut used = 0;
        if self.state == State::Handshake {
            used = self.handshake(data, wire)?;
            if used == 0 {
                return Ok(0);
            }
        }
        let rest = &mut data[used..];
        Ok(used + self.frames(rest, plain, wire)?)
    }
}

/// The values of header `name` (case-insensitive), as text ("" when not UTF-8).
fn values<'a>(
    headers: &'a [httparse::Header<'a>],
    name: &'static str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| std::str::from_utf8(h.value).unwrap_or(""))
}

/// RFC 6455 §5.3: XOR with the 4-byte key.
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Appends one final, unmasked frame (a server never masks, RFC 6455 §5.1).
fn push_frame(wire: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    let header = FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode,
        mask: None,
    };
    let len = payload.len() as u64;
    // Formatting into a Vec cannot fail.
    let _ = header.format(len, wire);
    wire.extend_from_slice(payload);
}

impl StreamCodec for WsCodec {
    fn read(
        &mut self,
        input: &[u8],
        plain: &mut dyn FnMut(Plain<'_>),
        wire: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        if self.state == State::Done {
            return Err(CodecError::Closed);
        }
        if input.is_empty() {
            return Ok(());
        }
        // Payloads are unmasked in place, so the bytes are ours to change: `held` (with the
        // new input appended) holds them. Taken out so `consume` may borrow `self`.
        let mut held = std::mem::take(&mut self.held);
        held.extend_from_slice(input);
        let result = self.consume(&mut held, plain, wire);
        match result {
            Ok(used) => {
                held.drain(..used);
                if held.is_empty() && held.capacity() > KEEP_BUFFER_BYTES {
                    held = Vec::new();
                }
                self.held = held;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn write(&mut self, sip: &[u8], wire: &mut Vec<u8>) -> Result<(), CodecError> {
        if self.state != State::Open {
            return Err(CodecError::Closed);
        }
        push_frame(wire, OpCode::Data(Data::Text), sip);
        Ok(())
    }

    fn is_handshaking(&self) -> bool {
        self.state == State::Handshake
    }
}
