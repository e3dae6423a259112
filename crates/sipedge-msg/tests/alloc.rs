//! Heap allocations on the hot paths, counted by a global allocator (PERFORMANCE.md reports
//! these numbers; this file proves them).
//!
//! * Parsing a REGISTER and reading Via, From, To, Call-ID, CSeq, Contact, Expires and
//!   Authorization allocates nothing; neither does parsing a 200 OK or an INVITE with SDP and
//!   reading their fields.
//! * Building a 200 OK into a reused buffer allocates nothing once the buffer has grown.
//! * Forward-editing an INVITE into a reused buffer allocates nothing once it has grown.
//! * A message with more than `INLINE_HEADERS` (32) header lines does allocate: the header
//!   index spills to the heap. This also shows that the counter sees allocations.
//!
//! The test harness runs tests on parallel threads, so the counter is per thread: each test
//! counts only what its own thread allocates.
#![allow(unsafe_code)]
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use sipedge_msg::{
    write_forward, write_response, Contact, ForwardEdits, HeaderName, Message, ResponseSpec,
    INLINE_HEADERS,
};

/// `System`, counting every allocation and reallocation made by the current thread.
struct Counting;

thread_local! {
    // `const`-initialised and without `Drop`: touching it never allocates, so the allocator
    // can use it without recursing.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    // `try_with`: the slot may already be gone while a thread is being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is a thread-local counter update, which neither
// allocates nor touches the memory being managed.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: the caller's guarantees for `layout` are passed on to `System` as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: `ptr` was allocated by `System` (every allocation goes through this type,
        // which only hands out `System` memory) with `layout`, as the caller guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`: `ptr` came from `System` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (and reallocations) made by this thread while running `f`.
fn allocations<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    let after = ALLOCATIONS.with(Cell::get);
    (after - before, r)
}

/// The 565-byte REGISTER of `benches/parse.rs`.
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

/// The 200 OK of `benches/parse.rs`.
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

/// The INVITE with SDP of `benches/parse.rs`.
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

/// Parses and reads what every message here has: top Via (host, port, branch), From (URI,
/// tag), To (URI), Call-ID, CSeq and the first Contact (URI, expires). Returns the Contact's
/// expires so the caller can check a value came out.
fn read_common(m: &Message<'_>) -> Option<u32> {
    let via = m.top_via().unwrap();
    black_box((via.host(), via.port(), via.branch().unwrap()));
    let from = m.from().unwrap();
    black_box((from.uri(), from.tag().unwrap()));
    black_box(m.to().unwrap().uri());
    black_box(m.call_id().unwrap());
    black_box(m.cseq().unwrap());
    let contact = m.contacts().next().unwrap().unwrap();
    let Contact::Addr(addr) = contact else {
        panic!("Contact: *")
    };
    black_box(addr.uri());
    contact.expires().map(Result::unwrap)
}

fn parse_and_read_register(buf: &[u8]) -> u32 {
    let m = Message::parse(buf).unwrap();
    m.validate().unwrap();
    assert_eq!(read_common(&m), Some(3600));
    let expires = m.expires().unwrap().unwrap();
    let a = m.authorization().next().unwrap().unwrap();
    assert!(a.username.unwrap().eq_bytes(b"alice"));
    black_box((
        a.realm.unwrap(),
        a.nonce.unwrap(),
        a.uri.unwrap(),
        a.response.unwrap(),
    ));
    expires
}

#[test]
fn parsing_the_register_and_reading_its_fields_does_not_allocate() {
    assert_eq!(REGISTER.len(), 565);
    for _ in 0..100 {
        let (n, expires) = allocations(|| parse_and_read_register(black_box(REGISTER)));
        assert_eq!(expires, 3600);
        assert_eq!(n, 0, "parse + read of the REGISTER allocated");
    }
}

#[test]
fn parsing_a_200_ok_and_an_invite_does_not_allocate() {
    let (n, ()) = allocations(|| {
        let m = Message::parse(black_box(OK_200)).unwrap();
        m.validate().unwrap();
        assert_eq!(read_common(&m), Some(3600));
        assert_eq!(m.vias().count(), 2);
    });
    assert_eq!(n, 0, "parse + read of the 200 OK allocated");

    let (n, ()) = allocations(|| {
        let m = Message::parse(black_box(INVITE_SDP)).unwrap();
        m.validate().unwrap();
        assert_eq!(read_common(&m), None);
        assert_eq!(m.record_routes().map(Result::unwrap).count(), 2);
        assert_eq!(m.routes().map(Result::unwrap).count(), 2);
        assert_eq!(m.body().len(), 209);
    });
    assert_eq!(n, 0, "parse + read of the INVITE allocated");
}

fn build_200ok(out: &mut Vec<u8>, req: &Message<'_>) {
    let contact = req.contacts().next().unwrap().unwrap();
    let uri = contact.addr().unwrap().uri().raw();
    let spec = ResponseSpec {
        status: 200,
        reason: b"OK",
        to_tag: Some(b"37GkEhwl6"),
        received: Some(b"198.51.100.7"),
        rport: Some(5062),
        ..Default::default()
    };
    write_response(out, req, &spec)
        .raw(b"Contact: <")
        .raw(uri)
        .raw(b">;expires=")
        .raw(itoa::Buffer::new().format(3600u32).as_bytes())
        .raw(b"\r\n")
        .header(b"Date", b"Tue, 24 Nov 2026 13:00:00 GMT")
        .finish(b"");
}

#[test]
fn building_the_200_ok_into_a_reused_buffer_does_not_allocate() {
    let req = Message::parse(REGISTER).unwrap();
    let mut out = Vec::new();
    // Warm-up: the buffer grows to its working size.
    let (grew, ()) = allocations(|| build_200ok(&mut out, &req));
    assert!(grew > 0, "the first build must grow the empty buffer");
    for _ in 0..100 {
        let (n, ()) = allocations(|| build_200ok(&mut out, black_box(&req)));
        assert_eq!(n, 0, "building the 200 OK into the reused buffer allocated");
    }
    let res = Message::parse(&out).unwrap();
    res.validate().unwrap();
    assert_eq!(res.status(), Some(200));
    assert_eq!(res.to().unwrap().tag(), Some(&b"37GkEhwl6"[..]));
    let via = res.top_via().unwrap();
    assert_eq!(via.received(), Some(&b"198.51.100.7"[..]));
    assert_eq!(via.rport(), sipedge_msg::RPort::Port(5062));
    let c = res.contacts().next().unwrap().unwrap();
    assert_eq!(c.expires(), Some(Ok(3600)));
    assert!(res.header(HeaderName::Date).is_some());
    assert_eq!(res.content_length(), Some(0));
}

fn forward(out: &mut Vec<u8>, msg: &Message<'_>) {
    let edits = ForwardEdits {
        request_uri: Some(b"sip:bob@192.0.2.20:5070;transport=udp"),
        via: Some(b"SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-edge-5b2e41"),
        record_route: Some(b"<sip:198.51.100.1;lr>"),
        pop_route: true,
        decrement_max_forwards: true,
        ..ForwardEdits::default()
    };
    write_forward(out, msg, &edits);
}

#[test]
fn forward_editing_the_invite_into_a_reused_buffer_does_not_allocate() {
    let inv = Message::parse(INVITE_SDP).unwrap();
    let mut out = Vec::new();
    let (grew, ()) = allocations(|| forward(&mut out, &inv));
    assert!(grew > 0, "the first forward must grow the empty buffer");
    for _ in 0..100 {
        let (n, ()) = allocations(|| forward(&mut out, black_box(&inv)));
        assert_eq!(
            n, 0,
            "forward-editing the INVITE into the reused buffer allocated"
        );
    }
    let fwd = Message::parse(&out).unwrap();
    fwd.validate().unwrap();
    assert_eq!(fwd.max_forwards().unwrap(), Some(67));
    assert_eq!(fwd.routes().count(), 1);
    assert_eq!(fwd.vias().count(), 4);
    assert_eq!(fwd.record_routes().count(), 3);
}

#[test]
fn more_than_32_headers_spill_the_index_to_the_heap() {
    assert_eq!(INLINE_HEADERS, 32);
    // The REGISTER with extra header lines inserted before Content-Length.
    let with = |extra: usize| {
        let cut = REGISTER.len() - b"Content-Length: 0\r\n\r\n".len();
        let mut msg = REGISTER[..cut].to_vec();
        for i in 0..extra {
            msg.extend_from_slice(format!("X-Pad-{i}: {i}\r\n").as_bytes());
        }
        msg.extend_from_slice(&REGISTER[cut..]);
        msg
    };
    // 11 header lines in the REGISTER: 21 more is exactly 32, still inline.
    let at_limit = with(21);
    let over = with(22);

    let (n, count) = allocations(|| Message::parse(&at_limit).unwrap().header_index().len());
    assert_eq!(count, 32);
    assert_eq!(n, 0, "32 headers still fit inline");

    let (n, count) = allocations(|| Message::parse(&over).unwrap().header_index().len());
    assert_eq!(count, 33);
    assert!(n >= 1, "33 headers must spill to the heap (counted {n})");
    // Still parsed correctly, just not for free.
    let (n, expires) = allocations(|| parse_and_read_register(&over));
    assert_eq!(expires, 3600);
    assert!(n >= 1);
}
