//! A relayed call through one core (the same messages as `crates/sipedge-core/examples/relay.rs`):
//! the callee `bob` is registered, each call is INVITE → 180 → 200 → ACK → BYE → 200.

use std::net::SocketAddr;

use sipedge_core::{Core, CoreConfig, LocalId, Millis, ProxyConfig};
use sipedge_msg::{HeaderName, Message};

const SDP: &str = "v=0\r\no=- 3912 3912 IN IP4 10.20.0.5\r\ns=-\r\nc=IN IP4 10.20.0.5\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

const BOB: &str = "10.30.0.9:5062";

/// A relaying core with `bob` registered at [`BOB`].
pub(crate) fn core() -> Core {
    let mut c = Core::new(CoreConfig {
        domains: vec!["sip.example.com".into(), "192.0.2.1".into()],
        proxy: ProxyConfig {
            advertise: vec!["192.0.2.1:5060".parse().expect("addr")],
            ..ProxyConfig::default()
        },
        ..CoreConfig::default()
    });
    let reg = format!(
        "REGISTER sip:sip.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {BOB};branch=z9hG4bKr1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:bob@sip.example.com>;tag=r\r\nTo: <sip:bob@sip.example.com>\r\nCall-ID: reg-bob\r\nCSeq: 1 REGISTER\r\nContact: <sip:bob@{BOB}>\r\nExpires: 7200\r\nContent-Length: 0\r\n\r\n"
    );
    c.handle_datagram(Millis(0), LocalId(0), bob(), reg.as_bytes());
    while c.poll_transmit().is_some() {}
    c
}

fn bob() -> SocketAddr {
    BOB.parse().expect("addr")
}

fn invite(i: u64) -> (SocketAddr, Vec<u8>) {
    let src: SocketAddr = format!(
        "10.20.{}.{}:{}",
        i >> 16 & 255,
        i >> 8 & 255,
        5060 + (i & 255)
    )
    .parse()
    .expect("addr");
    let msg = format!(
        "INVITE sip:bob@sip.example.com SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{i:x}a7f3;rport\r\nMax-Forwards: 70\r\nFrom: \"Alice\" <sip:alice{i}@sip.example.com>;tag={i:x}9c1\r\nTo: <sip:bob@sip.example.com>\r\nCall-ID: {i:016x}b2e4@10.20.0.5\r\nCSeq: 1 INVITE\r\nContact: <sip:alice{i}@{src}>\r\nUser-Agent: Yealink SIP-T46S 66.86.0.15\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    (src, msg.into_bytes())
}

/// The callee's response to `req` (Vias, Record-Route, From, To with tag, Call-ID, CSeq).
fn respond(req: &[u8], code: &str, out: &mut Vec<u8>) {
    let m = Message::parse(req).expect("forwarded request parses");
    out.clear();
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(code.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, h) in [
        ("Via", HeaderName::Via),
        ("Record-Route", HeaderName::RecordRoute),
    ] {
        for v in m.header_values(h) {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"From: ");
    out.extend_from_slice(m.header(HeaderName::From).unwrap_or_default());
    out.extend_from_slice(b"\r\nTo: ");
    let to = m.header(HeaderName::To).unwrap_or_default();
    out.extend_from_slice(to);
    if !to.windows(4).any(|w| w == b"tag=") {
        out.extend_from_slice(b";tag=b0b");
    }
    out.extend_from_slice(b"\r\nCall-ID: ");
    out.extend_from_slice(m.header(HeaderName::CallId).unwrap_or_default());
    out.extend_from_slice(b"\r\nCSeq: ");
    out.extend_from_slice(m.header(HeaderName::CSeq).unwrap_or_default());
    out.extend_from_slice(
        format!("\r\nContact: <sip:bob@{BOB}>\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    );
}

/// Feeds one datagram; the last datagram sent to `to` (if any) lands in `last`. Returns the
/// number of datagrams the core sent.
fn feed(
    c: &mut Core,
    now: u64,
    from: SocketAddr,
    bytes: &[u8],
    to: SocketAddr,
    last: &mut Vec<u8>,
) -> usize {
    c.handle_datagram(Millis(now), LocalId(0), from, bytes);
    let mut n = 0;
    while let Some(t) = c.poll_transmit() {
        n += 1;
        if t.remote == to {
            last.clear();
            last.extend_from_slice(t.data);
        }
    }
    n
}

/// Buffers one call reuses.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    fwd: Vec<u8>,
    resp: Vec<u8>,
    up: Vec<u8>,
}

/// Call `i` at virtual millisecond `now`: six messages in, seven out (100, INVITE, 180,
/// 200, ACK, BYE, 200); the timers due by `now` run too. Returns the datagrams sent.
pub(crate) fn call(c: &mut Core, i: u64, now: u64, s: &mut Scratch) -> usize {
    let bob = bob();
    let (src, inv) = invite(i);
    let mut sent = feed(c, now, src, &inv, bob, &mut s.fwd);
    respond(&s.fwd, "180 Ringing", &mut s.resp);
    sent += feed(c, now, bob, &s.resp, src, &mut s.up);
    respond(&s.fwd, "200 OK", &mut s.resp);
    sent += feed(c, now, bob, &s.resp, src, &mut s.up);
    let rr = Message::parse(&s.fwd)
        .ok()
        .and_then(|m| m.header(HeaderName::RecordRoute).map(<[u8]>::to_vec))
        .expect("the INVITE is record-routed");
    let rr = String::from_utf8_lossy(&rr);
    let tail = format!(
        "sip:bob@{BOB} SIP/2.0\r\nVia: SIP/2.0/UDP {src};branch=z9hG4bK{i:x}X;rport\r\nRoute: {rr}\r\nMax-Forwards: 70\r\nFrom: <sip:alice{i}@sip.example.com>;tag={i:x}9c1\r\nTo: <sip:bob@sip.example.com>;tag=b0b\r\nCall-ID: {i:016x}b2e4@10.20.0.5\r\nCSeq: "
    );
    let ack = format!("ACK {tail}1 ACK\r\nContent-Length: 0\r\n\r\n").replace("X;", "a;");
    sent += feed(c, now, src, ack.as_bytes(), bob, &mut s.fwd);
    let bye = format!("BYE {tail}2 BYE\r\nContent-Length: 0\r\n\r\n").replace("X;", "b;");
    sent += feed(c, now, src, bye.as_bytes(), bob, &mut s.fwd);
    respond(&s.fwd, "200 OK", &mut s.resp);
    sent += feed(c, now, bob, &s.resp, src, &mut s.up);
    if c.poll_timeout().is_some_and(|d| d.0 <= now) {
        c.handle_timeout(Millis(now));
        while c.poll_transmit().is_some() {}
    }
    sent
}
