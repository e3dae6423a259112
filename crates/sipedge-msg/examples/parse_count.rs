//! Instruction-count harness: `valgrind --tool=callgrind target/release/examples/parse_count
//! N register|register_validated|ok200|invite`; (Ir(N) - Ir(0)) / N is the cost per message.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use sipedge_msg::Message;

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

fn register(buf: &[u8], validate: bool) -> usize {
    let m = Message::parse(buf).unwrap();
    if validate {
        m.validate().unwrap();
    }
    let v = m.top_via().unwrap();
    let mut n = v.host().len() + v.branch().unwrap().len() + usize::from(v.port().unwrap());
    let f = m.from().unwrap();
    n += f.uri().raw().len() + f.tag().unwrap().len();
    n += m.to().unwrap().uri().raw().len();
    n += m.call_id().unwrap().len();
    n += m.cseq().unwrap().seq as usize;
    for c in m.contacts() {
        let c = c.unwrap();
        n += c.addr().unwrap().uri().raw().len() + c.expires().unwrap().unwrap() as usize;
    }
    n += m.expires().unwrap().unwrap() as usize;
    let a = m.authorization().next().unwrap().unwrap();
    n += a.username.unwrap().raw().len() + a.realm.unwrap().raw().len();
    n +=
        a.nonce.unwrap().raw().len() + a.uri.unwrap().raw().len() + a.response.unwrap().raw().len();
    n
}

fn ok200(buf: &[u8]) -> usize {
    let m = Message::parse(buf).unwrap();
    let v = m.top_via().unwrap();
    let mut n = v.host().len() + v.branch().unwrap().len() + usize::from(v.port().unwrap());
    let f = m.from().unwrap();
    n += f.uri().raw().len() + f.tag().unwrap().len();
    n += m.to().unwrap().uri().raw().len();
    n += m.call_id().unwrap().len();
    n += m.cseq().unwrap().seq as usize;
    let c = m.contacts().next().unwrap().unwrap();
    n += c.addr().unwrap().uri().raw().len() + c.expires().unwrap().unwrap() as usize;
    n
}

fn invite(buf: &[u8]) -> usize {
    let m = Message::parse(buf).unwrap();
    m.validate().unwrap();
    let mut n = m.top_via().unwrap().host().len() + m.from().unwrap().uri().raw().len();
    n += m.record_routes().count() + m.routes().count() + m.body().len();
    n
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let what = args.next().unwrap_or_else(|| "register".into());
    let mut sum = 0;
    for _ in 0..n {
        sum += match what.as_str() {
            "register" => register(black_box(REGISTER), false),
            "register_validated" => register(black_box(REGISTER), true),
            "ok200" => ok200(black_box(OK_200)),
            _ => invite(black_box(INVITE_SDP)),
        };
    }
    println!("{sum}");
}
