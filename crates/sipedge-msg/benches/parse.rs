//! `sipedge-msg` against the two Rust SIP parsers we use as test oracles, in one run.
//!
//! Every group measures one message per iteration (`Throughput::Elements(1)`), with each
//! parser as a function of the same group so criterion compares them back to back:
//!
//! * `parse_register`: parse a 565-byte REGISTER with a Digest Authorization and read top Via
//!   (host, port, branch), From (URI, tag), To (URI), Call-ID, CSeq, Contact (URI, expires),
//!   Expires and Authorization (username, realm, nonce, uri, response).
//!   `sipedge_validated` also runs [`Message::validate`] first, as a registrar or proxy does
//!   before acting on a request.
//! * `parse_200ok`: parse a 200 OK to that REGISTER (2 Vias, Contact with expires, Date) and
//!   read top Via, From, To, Call-ID, CSeq and Contact.
//! * `parse_invite_sdp`: parse a 916-byte INVITE with SDP (3 Vias, Record-Route and Route with
//!   two entries each) and read top Via, From, To, Call-ID, CSeq, Contact, every Record-Route
//!   and Route URI, and the body length.
//! * `build_200ok`: from the parsed REGISTER, write the 200 OK (To tag, `received` and the
//!   `rport` value filled into the top Via, Contact with expires, Date, Content-Length 0) into
//!   a reused `Vec<u8>`. The oracles do the same through their own header types and printers.
//! * `forward_invite`: `write_forward` of the parsed INVITE with a new Via, a Record-Route, the
//!   Max-Forwards decrement, a new Request-URI and our Route popped (ours only: the oracles
//!   have no forwarding editor); `sipedge_parse_forward` includes the parse.
//!
//! How the oracles are driven, through their public APIs only:
//! * ezk-sip-types 0.6 has no whole-message parser, only the parts: `PullParser` splits the
//!   lines, `MessageLine::parse` the start line, `Line::parse` + `Headers::insert`
//!   each header, the body is sliced at `head_end`; typed headers are then decoded with
//!   `Headers::get_named` / `Headers::get`. Input is a `Bytes::from_static`, which costs
//!   nothing (a server receiving into its own buffer would pay for a copy on top).
//! * rsip 0.4: `SipMessage::try_from(&[u8])`, then `HeadersExt` accessors and `.typed()`.
//!
//! Before measuring, `main` checks that the three parsers read the same values from each
//! message (numbers and the lengths of the text fields), so no parser is measured doing less.
//!
//! Run: `cargo bench -p sipedge-msg --bench parse -- --warm-up-time 1 --measurement-time 3`
//!
//! The per-message functions are `#[inline(never)]` so that each parser's work has its own
//! symbol: on a noisy machine, instructions per message counted by callgrind are a steadier
//! comparison than time (`valgrind --tool=callgrind <bench binary> --bench --profile-time 2
//! '^parse_register/rsip$'`, one function per run, then the inclusive instructions of
//! `parse::rs::register` etc. divided by their call count; PERFORMANCE.md has the method).
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::Write as _;

use bytes::Bytes;
use criterion::{criterion_group, Criterion, Throughput};
use sipedge_msg::{write_forward, write_response, ForwardEdits, Message, ResponseSpec};

/// A REGISTER with Digest credentials, exactly 565 bytes (asserted in `check_messages`).
const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK74bf9a1c;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=9fxced76sl\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: a84b4c76e66710@192.0.2.10\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:alice@192.0.2.10:5062;transport=udp>;expires=3600\r\n\
Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", uri=\"sip:example.com\", response=\"dfe56131d1958046689d83306477ecc2\", algorithm=MD5\r\n\
Expires: 3600\r\n\
User-Agent: Linphone/5.2\r\n\
Content-Length: 0\r\n\
\r\n";

/// The 200 OK to `REGISTER` as it comes back through a proxy: 2 Vias, the binding, Date.
const OK_200: &[u8] = b"SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK-edge-1f3a9;received=198.51.100.2\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK74bf9a1c;rport=5062;received=198.51.100.7\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=9fxced76sl\r\n\
To: <sip:alice@example.com>;tag=37GkEhwl6\r\n\
Call-ID: a84b4c76e66710@192.0.2.10\r\n\
CSeq: 2 REGISTER\r\n\
Contact: <sip:alice@192.0.2.10:5062;transport=udp>;expires=3600\r\n\
Date: Tue, 24 Nov 2026 13:00:00 GMT\r\n\
Server: sipedge/0.1\r\n\
Content-Length: 0\r\n\
\r\n";

/// An INVITE with an SDP offer that has crossed two proxies and is routed through the edge.
const INVITE_SDP: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK-p2-8a1c;rport\r\n\
Via: SIP/2.0/UDP 203.0.113.4:5060;branch=z9hG4bK-p1-77c3;received=203.0.113.4\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK776asdhds;rport=5062\r\n\
Max-Forwards: 68\r\n\
Record-Route: <sip:203.0.113.5;lr>, <sip:203.0.113.4;lr>\r\n\
Route: <sip:edge.example.com;lr>, <sip:core.example.com;lr>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
To: <sip:bob@example.com>\r\n\
Call-ID: f81d4fae7dec11d0a765@pc33\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@192.0.2.10:5062>\r\n\
Content-Type: application/sdp\r\n\
Allow: INVITE, ACK, CANCEL, BYE, UPDATE, REFER, NOTIFY\r\n\
Supported: replaces, timer, 100rel\r\n\
Content-Length: 209\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=sendrecv\r\n";

// What the 200 OK adds (the registrar's part).
const TO_TAG: &str = "37GkEhwl6";
const RECEIVED: &str = "198.51.100.7";
const RPORT: u16 = 5062;
const CONTACT_EXPIRES: u32 = 3600;
const DATE: &str = "Tue, 24 Nov 2026 13:00:00 GMT";

// What forwarding the INVITE changes.
const FWD_VIA: &[u8] = b"SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-edge-5b2e41";
const FWD_RR: &[u8] = b"<sip:198.51.100.1;lr>";
const FWD_RURI: &[u8] = b"sip:bob@192.0.2.20:5070;transport=udp";

/// What a parse-and-read function extracted, reduced to numbers so that the three parsers
/// can be checked against each other: numeric fields as read, text fields by their length
/// (host names and URIs are passed to `black_box` but not summed: two of the parsers store
/// them as parsed structures).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Read {
    numbers: u64,
    text_len: usize,
}

impl Read {
    fn num(&mut self, n: impl Into<u64>) {
        // Position-dependent so that swapped fields do not cancel out.
        self.numbers = self.numbers.wrapping_mul(31).wrapping_add(n.into());
    }
    fn text(&mut self, s: impl AsRef<[u8]>) {
        self.text_len += s.as_ref().len();
    }
}

// ---------------------------------------------------------------------------------------
// sipedge-msg
// ---------------------------------------------------------------------------------------

mod ours {
    use super::*;
    use sipedge_msg::Contact;

    /// Top Via, From, To, Call-ID, CSeq and the first Contact: what every message here has.
    pub(crate) fn common(m: &Message<'_>, r: &mut Read) {
        let via = m.top_via().unwrap();
        black_box(via.host());
        r.num(via.port().unwrap());
        r.text(black_box(via.branch().unwrap()));

        let from = m.from().unwrap();
        black_box(from.uri());
        r.text(black_box(from.tag().unwrap()));

        let to = m.to().unwrap();
        black_box(to.uri());

        r.text(black_box(m.call_id().unwrap()));

        let cseq = m.cseq().unwrap();
        r.num(black_box(cseq.seq));
        black_box(cseq.method);

        let contact = m.contacts().next().unwrap().unwrap();
        let Contact::Addr(addr) = contact else {
            panic!("Contact: *")
        };
        black_box(addr.uri());
        if let Some(e) = contact.expires() {
            r.num(black_box(e.unwrap()));
        }
    }

    #[inline(never)]
    pub(crate) fn register(buf: &[u8], validate: bool) -> Read {
        let m = Message::parse(buf).unwrap();
        if validate {
            m.validate().unwrap();
        }
        let mut r = Read::default();
        common(&m, &mut r);
        r.num(black_box(m.expires().unwrap().unwrap()));
        let a = m.authorization().next().unwrap().unwrap();
        r.text(black_box(a.username.unwrap().raw()));
        r.text(black_box(a.realm.unwrap().raw()));
        r.text(black_box(a.nonce.unwrap().raw()));
        black_box(a.uri.unwrap());
        r.text(black_box(a.response.unwrap().raw()));
        r
    }

    #[inline(never)]
    pub(crate) fn ok_200(buf: &[u8]) -> Read {
        let m = Message::parse(buf).unwrap();
        let mut r = Read::default();
        common(&m, &mut r);
        r
    }

    #[inline(never)]
    pub(crate) fn invite(buf: &[u8]) -> Read {
        let m = Message::parse(buf).unwrap();
        let mut r = Read::default();
        common(&m, &mut r);
        let mut n = 0u32;
        for rr in m.record_routes() {
            black_box(rr.unwrap().uri());
            n += 1;
        }
        r.num(n);
        let mut n = 0u32;
        for route in m.routes() {
            black_box(route.unwrap().uri());
            n += 1;
        }
        r.num(n);
        r.num(black_box(m.body().len() as u64));
        r
    }

    /// The registrar's 200 OK: copied Via/From/To/Call-ID/CSeq, To tagged, top Via with
    /// `received` and `rport=PORT`, the binding with its expiry, Date, Content-Length 0.
    #[inline(never)]
    pub(crate) fn build_200ok(out: &mut Vec<u8>, req: &Message<'_>, contact_uri: &[u8]) {
        let spec = ResponseSpec {
            status: 200,
            reason: b"OK",
            to_tag: Some(TO_TAG.as_bytes()),
            received: Some(RECEIVED.as_bytes()),
            rport: Some(RPORT),
            ..Default::default()
        };
        write_response(out, req, &spec)
            .raw(b"Contact: <")
            .raw(contact_uri)
            .raw(b">;expires=")
            .raw(itoa::Buffer::new().format(CONTACT_EXPIRES).as_bytes())
            .raw(b"\r\n")
            .header(b"Date", DATE.as_bytes())
            .finish(b"");
    }

    #[inline(never)]
    pub(crate) fn forward(out: &mut Vec<u8>, msg: &Message<'_>) {
        let edits = ForwardEdits {
            request_uri: Some(FWD_RURI),
            via: Some(FWD_VIA),
            record_route: Some(FWD_RR),
            pop_route: true,
            decrement_max_forwards: true,
            ..ForwardEdits::default()
        };
        write_forward(out, msg, &edits);
    }
}

// ---------------------------------------------------------------------------------------
// ezk-sip-types
// ---------------------------------------------------------------------------------------

mod ezk {
    use super::*;
    use ezk_sip_types::header::typed::{
        AuthResponse, CSeq, CallID, Contact, ContentLength, Expires, FromTo, Routing,
        Username as AuthUser, Via,
    };
    use ezk_sip_types::host::Host;
    use ezk_sip_types::msg::{Line, MessageLine, PullParser, StatusLine};
    use ezk_sip_types::parse::Parse;
    use ezk_sip_types::{Headers, Name, StatusCode};

    /// A whole message, the way ezk-sip-core assembles one from ezk-sip-types' parts.
    pub(crate) struct Msg {
        pub(crate) line: MessageLine,
        pub(crate) headers: Headers,
        pub(crate) body: Bytes,
    }

    pub(crate) fn parse(buf: &Bytes) -> Msg {
        let mut lines = PullParser::new(buf, 0);
        let first = std::str::from_utf8(lines.next().unwrap().unwrap()).unwrap();
        let (_, line) = MessageLine::parse(buf)(first).unwrap();
        let mut headers = Headers::with_capacity(16);
        for l in lines.by_ref() {
            let l = std::str::from_utf8(l.unwrap()).unwrap();
            let (_, l) = Line::parse(buf, l).unwrap();
            headers.insert(l.name, l.value);
        }
        let head_end = lines.head_end();
        let len = headers
            .get_named::<ContentLength>()
            .map_or(buf.len() - head_end, |c| c.0);
        let body = buf.slice(head_end..head_end + len);
        Msg {
            line,
            headers,
            body,
        }
    }

    fn host_len(h: &Host) -> usize {
        black_box(h);
        0
    }

    pub(crate) fn common(m: &Msg, r: &mut Read) {
        let h = &m.headers;
        let via: Via = h.get_named().unwrap();
        host_len(&via.sent_by.host);
        r.num(via.sent_by.port.unwrap());
        r.text(black_box(via.params.get_val("branch").unwrap()));
        black_box(&via);

        let from: FromTo = h.get(Name::FROM).unwrap();
        black_box(&from.uri.uri);
        r.text(black_box(from.tag.as_ref().unwrap()));
        black_box(&from);

        let to: FromTo = h.get(Name::TO).unwrap();
        black_box(&to.uri.uri);
        black_box(&to);

        let call_id: CallID = h.get_named().unwrap();
        r.text(black_box(&call_id.0));

        let cseq: CSeq = h.get_named().unwrap();
        r.num(black_box(cseq.cseq));
        black_box(&cseq.method);

        let contact: Contact = h.get_named().unwrap();
        black_box(&contact.uri.uri);
        if let Some(e) = contact.params.get_val("expires") {
            r.num(black_box(e.parse::<u32>().unwrap()));
        }
        black_box(&contact);
    }

    #[inline(never)]
    pub(crate) fn register(buf: &Bytes) -> Read {
        let m = parse(buf);
        black_box(&m.line);
        let mut r = Read::default();
        common(&m, &mut r);
        let expires: Expires = m.headers.get_named().unwrap();
        r.num(black_box(expires.0));
        let AuthResponse::Digest(a) = m.headers.get(Name::AUTHORIZATION).unwrap() else {
            panic!("not Digest")
        };
        let (AuthUser::Username(user) | AuthUser::UsernameNonASCII(user)) = &a.username;
        r.text(black_box(user));
        r.text(black_box(&a.realm));
        r.text(black_box(&a.nonce));
        black_box(&a.uri);
        r.text(black_box(&a.response));
        black_box(&a);
        r
    }

    #[inline(never)]
    pub(crate) fn ok_200(buf: &Bytes) -> Read {
        let m = parse(buf);
        black_box(&m.line);
        let mut r = Read::default();
        common(&m, &mut r);
        r
    }

    #[inline(never)]
    pub(crate) fn invite(buf: &Bytes) -> Read {
        let m = parse(buf);
        black_box(&m.line);
        let mut r = Read::default();
        common(&m, &mut r);
        let rr: Vec<Routing> = m.headers.get(Name::RECORD_ROUTE).unwrap();
        for x in &rr {
            black_box(&x.uri.uri);
        }
        r.num(rr.len() as u32);
        let routes: Vec<Routing> = m.headers.get(Name::ROUTE).unwrap();
        for x in &routes {
            black_box(&x.uri.uri);
        }
        r.num(routes.len() as u32);
        r.num(black_box(m.body.len() as u64));
        r
    }

    /// The same 200 OK through ezk-sip-types: copy the headers from the parsed request, edit
    /// the top Via and To as typed headers, add the rest, print into `out`.
    #[inline(never)]
    pub(crate) fn build_200ok(out: &mut Vec<u8>, req: &Headers, contact: &Contact) {
        let mut h = Headers::with_capacity(10);
        let mut vias: Vec<Via> = req.get_named().unwrap();
        vias[0].params.push_or_edit("received", RECEIVED);
        vias[0]
            .params
            .push_or_edit("rport", itoa::Buffer::new().format(RPORT));
        h.insert_named(&vias);
        req.clone_into(&mut h, Name::FROM).unwrap();
        let mut to: FromTo = req.get(Name::TO).unwrap();
        if to.tag.is_none() {
            to.tag = Some(TO_TAG.into());
        }
        h.insert_type(Name::TO, &to);
        req.clone_into(&mut h, Name::CALL_ID).unwrap();
        req.clone_into(&mut h, Name::CSEQ).unwrap();
        let mut contact = contact.clone();
        contact
            .params
            .push_or_edit("expires", itoa::Buffer::new().format(CONTACT_EXPIRES));
        h.insert_named(&contact);
        h.insert(Name::DATE, DATE);
        h.insert_named(&ContentLength(0));
        let status = StatusLine {
            code: StatusCode::OK,
            reason: Some("OK".into()),
        };
        out.clear();
        write!(out, "{status}\r\n{h}\r\n").unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// rsip
// ---------------------------------------------------------------------------------------

mod rs {
    use super::*;
    use rsip::common::uri::param::{OtherParamValue, Received, Tag};
    use rsip::common::uri::Param;
    use rsip::headers::{self, Header};
    use rsip::prelude::*;
    use rsip::SipMessage;

    pub(crate) fn parse(buf: &[u8]) -> SipMessage {
        SipMessage::try_from(buf).unwrap()
    }

    pub(crate) fn common(m: &SipMessage, r: &mut Read) {
        let via = m.via_header().unwrap().typed().unwrap();
        black_box(&via.uri.host_with_port.host);
        r.num(via.uri.host_with_port.port.unwrap().value().to_owned());
        r.text(black_box(via.branch().unwrap().value()));
        black_box(&via);

        let from = m.from_header().unwrap().typed().unwrap();
        black_box(&from.uri);
        r.text(black_box(from.tag().unwrap().value()));
        black_box(&from);

        let to = m.to_header().unwrap().typed().unwrap();
        black_box(&to.uri);
        black_box(&to);

        r.text(black_box(m.call_id_header().unwrap().value()));

        let cseq = m.cseq_header().unwrap().typed().unwrap();
        r.num(black_box(cseq.seq));
        black_box(&cseq.method);

        let contact = m.contact_header().unwrap().typed().unwrap();
        black_box(&contact.uri);
        if let Some(e) = contact.expires() {
            r.num(black_box(e.seconds().unwrap()));
        }
        black_box(&contact);
    }

    #[inline(never)]
    pub(crate) fn register(buf: &[u8]) -> Read {
        let m = parse(buf);
        let mut r = Read::default();
        common(&m, &mut r);
        r.num(black_box(m.expires_header().unwrap().seconds().unwrap()));
        let a = m.authorization_header().unwrap().typed().unwrap();
        r.text(black_box(&a.username));
        r.text(black_box(&a.realm));
        r.text(black_box(&a.nonce));
        black_box(&a.uri);
        r.text(black_box(&a.response));
        black_box(&a);
        r
    }

    #[inline(never)]
    pub(crate) fn ok_200(buf: &[u8]) -> Read {
        let m = parse(buf);
        let mut r = Read::default();
        common(&m, &mut r);
        r
    }

    #[inline(never)]
    pub(crate) fn invite(buf: &[u8]) -> Read {
        let m = parse(buf);
        let mut r = Read::default();
        common(&m, &mut r);
        let rr = m.record_route_header().unwrap().typed().unwrap();
        for x in rr.uris() {
            black_box(x);
        }
        r.num(rr.uris().len() as u32);
        let routes = m.route_header().unwrap().typed().unwrap();
        for x in routes.uris() {
            black_box(x);
        }
        r.num(routes.uris().len() as u32);
        r.num(black_box(m.body().len() as u64));
        r
    }

    /// The same 200 OK through rsip: copy the request's headers, edit the top Via and To as
    /// typed headers, add the rest, print into `out`.
    #[inline(never)]
    pub(crate) fn build_200ok(out: &mut Vec<u8>, req: &SipMessage, contact_uri: &str) {
        let mut headers = rsip::Headers::default();
        let mut top = true;
        for h in req.headers().iter() {
            match h {
                Header::Via(v) if top => {
                    top = false;
                    let mut via = v.typed().unwrap();
                    for p in &mut via.params {
                        if let Param::Other(name, value @ None) = p {
                            if name.value().eq_ignore_ascii_case("rport") {
                                *value = Some(OtherParamValue::new(RPORT.to_string()));
                            }
                        }
                    }
                    via.params.push(Param::Received(Received::new(RECEIVED)));
                    headers.push(Header::Via(via.into()));
                }
                Header::To(t) => {
                    let to = t.typed().unwrap();
                    let to = if to.tag().is_some() {
                        to
                    } else {
                        to.with_tag(Tag::new(TO_TAG))
                    };
                    headers.push(Header::To(to.into()));
                }
                Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                    headers.push(h.clone());
                }
                _ => {}
            }
        }
        let mut contact = String::with_capacity(64);
        write!(contact, "<{contact_uri}>;expires={CONTACT_EXPIRES}").unwrap();
        headers.push(Header::Contact(headers::Contact::new(contact)));
        headers.push(Header::Date(headers::Date::new(DATE)));
        headers.push(Header::ContentLength(headers::ContentLength::new("0")));
        let response = rsip::Response {
            status_code: rsip::StatusCode::OK,
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        out.clear();
        write!(out, "{response}").unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Checks and benchmarks
// ---------------------------------------------------------------------------------------

/// Every parser accepts every message and reads the same values; the writers produce what a
/// registrar and a proxy must send. Panics (before any measurement) otherwise.
fn check_messages() {
    assert_eq!(REGISTER.len(), 565, "the REGISTER must be 565 bytes");
    assert!(
        (850..=1000).contains(&INVITE_SDP.len()),
        "{}",
        INVITE_SDP.len()
    );
    for msg in [REGISTER, OK_200, INVITE_SDP] {
        Message::parse(msg).unwrap().validate().unwrap();
    }

    let ours = ours::register(REGISTER, true);
    assert_eq!(
        ours,
        ezk::register(&Bytes::from_static(REGISTER)),
        "REGISTER: ezk"
    );
    assert_eq!(ours, rs::register(REGISTER), "REGISTER: rsip");
    // branch 15 + From tag 10 + Call-ID 25 + alice, example.com, nonce, response
    // (5 + 11 + 32 + 32).
    assert_eq!(ours.text_len, 15 + 10 + 25 + 5 + 11 + 32 + 32);

    let ours = ours::ok_200(OK_200);
    assert_eq!(
        ours,
        ezk::ok_200(&Bytes::from_static(OK_200)),
        "200 OK: ezk"
    );
    assert_eq!(ours, rs::ok_200(OK_200), "200 OK: rsip");

    let ours = ours::invite(INVITE_SDP);
    assert_eq!(
        ours,
        ezk::invite(&Bytes::from_static(INVITE_SDP)),
        "INVITE: ezk"
    );
    assert_eq!(ours, rs::invite(INVITE_SDP), "INVITE: rsip");

    // The 200 OK each writer builds parses back with the fields it must carry.
    let req = Message::parse(REGISTER).unwrap();
    let contact_uri = contact_uri(&req);
    let ezk_req = ezk::parse(&Bytes::from_static(REGISTER));
    let ezk_contact = ezk_req.headers.get_named().unwrap();
    let rsip_req = rs::parse(REGISTER);
    let mut out = Vec::new();
    for who in ["sipedge", "ezk", "rsip"] {
        match who {
            "sipedge" => ours::build_200ok(&mut out, &req, contact_uri),
            "ezk" => ezk::build_200ok(&mut out, &ezk_req.headers, &ezk_contact),
            _ => rs::build_200ok(
                &mut out,
                &rsip_req,
                std::str::from_utf8(contact_uri).unwrap(),
            ),
        }
        if std::env::var_os("PARSE_BENCH_DUMP").is_some() {
            eprintln!(
                "--- 200 OK built by {who}:\n{}",
                String::from_utf8_lossy(&out)
            );
        }
        let res = Message::parse(&out).unwrap();
        res.validate().unwrap();
        assert_eq!(res.status(), Some(200), "{who}");
        let via = res.top_via().unwrap();
        assert_eq!(via.received(), Some(RECEIVED.as_bytes()), "{who}");
        assert_eq!(via.rport(), sipedge_msg::RPort::Port(RPORT), "{who}");
        assert_eq!(res.to().unwrap().tag(), Some(TO_TAG.as_bytes()), "{who}");
        let c = res.contacts().next().unwrap().unwrap();
        assert_eq!(c.addr().unwrap().uri().raw(), contact_uri, "{who}");
        assert_eq!(c.expires(), Some(Ok(CONTACT_EXPIRES)), "{who}");
        assert_eq!(
            res.header(sipedge_msg::HeaderName::Date),
            Some(DATE.as_bytes())
        );
        assert_eq!(res.content_length(), Some(0), "{who}");
        assert_eq!(res.call_id().unwrap(), req.call_id().unwrap(), "{who}");
    }

    // Forwarding: our Via and Record-Route on top, Route popped, Max-Forwards 67, new R-URI.
    let inv = Message::parse(INVITE_SDP).unwrap();
    ours::forward(&mut out, &inv);
    if std::env::var_os("PARSE_BENCH_DUMP").is_some() {
        eprintln!("--- INVITE forwarded:\n{}", String::from_utf8_lossy(&out));
    }
    let fwd = Message::parse(&out).unwrap();
    fwd.validate().unwrap();
    assert_eq!(fwd.request_uri_raw(), Some(FWD_RURI));
    assert_eq!(fwd.top_via().unwrap().raw(), FWD_VIA);
    assert_eq!(fwd.vias().count(), 4);
    assert_eq!(fwd.record_routes().next().unwrap().unwrap().raw(), FWD_RR);
    assert_eq!(fwd.record_routes().count(), 3);
    let routes: Vec<_> = fwd.routes().map(|r| r.unwrap().raw()).collect();
    assert_eq!(routes, [&b"<sip:core.example.com;lr>"[..]]);
    assert_eq!(fwd.max_forwards().unwrap(), Some(67));
    assert_eq!(fwd.body(), inv.body());
}

fn contact_uri<'a>(req: &Message<'a>) -> &'a [u8] {
    let c = req.contacts().next().unwrap().unwrap();
    c.addr().unwrap().uri().raw()
}

fn parse_groups(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse_register");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sipedge", |b| {
        b.iter(|| ours::register(black_box(REGISTER), false))
    });
    g.bench_function("sipedge_validated", |b| {
        b.iter(|| ours::register(black_box(REGISTER), true))
    });
    g.bench_function("ezk-sip-types", |b| {
        b.iter(|| ezk::register(&Bytes::from_static(black_box(REGISTER))))
    });
    g.bench_function("rsip", |b| b.iter(|| rs::register(black_box(REGISTER))));
    g.finish();

    let mut g = c.benchmark_group("parse_200ok");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sipedge", |b| b.iter(|| ours::ok_200(black_box(OK_200))));
    g.bench_function("ezk-sip-types", |b| {
        b.iter(|| ezk::ok_200(&Bytes::from_static(black_box(OK_200))))
    });
    g.bench_function("rsip", |b| b.iter(|| rs::ok_200(black_box(OK_200))));
    g.finish();

    let mut g = c.benchmark_group("parse_invite_sdp");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sipedge", |b| {
        b.iter(|| ours::invite(black_box(INVITE_SDP)))
    });
    g.bench_function("ezk-sip-types", |b| {
        b.iter(|| ezk::invite(&Bytes::from_static(black_box(INVITE_SDP))))
    });
    g.bench_function("rsip", |b| b.iter(|| rs::invite(black_box(INVITE_SDP))));
    g.finish();
}

fn write_groups(c: &mut Criterion) {
    let req = Message::parse(REGISTER).unwrap();
    let contact = contact_uri(&req);
    let ezk_req = ezk::parse(&Bytes::from_static(REGISTER));
    let ezk_contact = ezk_req.headers.get_named().unwrap();
    let rsip_req = rs::parse(REGISTER);
    let rsip_contact = std::str::from_utf8(contact).unwrap();

    let mut g = c.benchmark_group("build_200ok");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(1024);
    g.bench_function("sipedge", |b| {
        b.iter(|| {
            ours::build_200ok(&mut out, black_box(&req), contact);
            black_box(out.len())
        })
    });
    g.bench_function("ezk-sip-types", |b| {
        b.iter(|| {
            ezk::build_200ok(&mut out, black_box(&ezk_req.headers), &ezk_contact);
            black_box(out.len())
        })
    });
    g.bench_function("rsip", |b| {
        b.iter(|| {
            rs::build_200ok(&mut out, black_box(&rsip_req), rsip_contact);
            black_box(out.len())
        })
    });
    g.finish();

    let inv = Message::parse(INVITE_SDP).unwrap();
    let mut g = c.benchmark_group("forward_invite");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sipedge", |b| {
        b.iter(|| {
            ours::forward(&mut out, black_box(&inv));
            black_box(out.len())
        })
    });
    g.bench_function("sipedge_parse_forward", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(INVITE_SDP)).unwrap();
            ours::forward(&mut out, &m);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, parse_groups, write_groups);

fn main() {
    check_messages();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
