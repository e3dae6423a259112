//! `sipedge-msg`: zero-copy SIP message parsing, serialization and editing.
//!
//! **What it does.** [`Message::parse`] indexes a SIP request or response held in a `&[u8]`:
//! the start line and every header line become byte ranges in a fixed-capacity inline array
//! (32 headers; more spill to the heap, the only allocation path). Header names are resolved
//! once, compact forms included; values are parsed only when an accessor asks for them
//! (`top_via`, `from`, `cseq`, `contacts`, `authorization`, …) and the typed values borrow
//! the input. [`Message::validate`] runs the checks a proxy or registrar needs, and every
//! failure is a [`ParseError`] (`Copy`, no allocation) that maps to the SIP reply to send,
//! or to a silent drop. [`write_response`] and [`write_forward`] serialize into a
//! caller-owned buffer that is reused from message to message.
//!
//! **What it does not do.** No I/O, no clock, no threads, no `unsafe`, no protocol decisions
//! (which response to send is `sipedge-core`'s business), no SDP or multipart parsing.
//!
//! **Layout.** `index` (start line, header index, UDP and stream framing) → `message`
//! (the [`Message`] type and its accessors) → field parsers: `uri`, `via`, `addr`
//! (name-addr, Contact), `fields` (CSeq, Content-Type, Event, quoted strings), `auth`
//! (digest credentials), `params`, `list` (comma lists), `lex` (RFC 3261 §25 basic rules)
//! → `validate` (sanity checks and the error reply) → `write` (responses and forwarding edits).
//! Beside them, the SIP mechanics every layer above shares: `net` (an IP-literal host as an
//! address, an address as text, and where a response goes — RFC 3261 §18.2.2 / RFC 3581:
//! [`ResponseAddr`]), [`fmt`] (decimal and fixed-width hex text without allocating) and
//! [`branch`] (the shard-routing Via branch codec; the MAC over its fields stays with the
//! caller).

#![forbid(unsafe_code)]

mod addr;
mod auth;
pub mod branch;
mod detach;
mod error;
mod fields;
pub mod fmt;
mod header;
mod index;
mod lex;
mod list;
mod message;
mod method;
mod net;
mod params;
mod uri;
mod validate;
mod via;
mod write;

pub use addr::{AddrError, Contact, NameAddr};
pub use auth::{AuthError, Credentials};
pub use detach::Parsed;
pub use error::{ParseError, ParseErrorKind, Reply};
pub use fields::{CSeq, ContentType, Event, FieldError, QuotedStr};
pub use header::HeaderName;
pub use index::{
    is_keepalive, ParseOptions, StreamFrame, DEFAULT_MAX_HEADERS, DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_REQUEST_URI_BYTES, INLINE_HEADERS,
};
pub use lex::{eq_unescaped, eq_unescaped_ignore_case, unescape};
pub use list::{tokens, Items};
pub use message::{Header, HeaderRef, Message, Span};
pub use method::Method;
pub use net::{host_ip, needs_received, response_dest, IpText, ResponseAddr};
pub use params::{ParamIter, Params};
pub use uri::{Scheme, Uri, UriError};
pub use validate::Validated;
pub use via::{RPort, Via, ViaError};
pub use write::{write_forward, write_response, ForwardEdits, ResponseSpec, ResponseWriter};
