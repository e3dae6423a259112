//! Message-level behaviour: what the registrar and proxy read, how framing treats the bytes,
//! which reply a broken request gets, and what the writers put on the wire.
#![allow(clippy::unwrap_used)]

use sipedge_msg::*;

const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKnashds7;rport\r\n\
Max-Forwards: 70\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=456248\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:alice@192.0.2.10:5062;transport=udp>;expires=600;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1, <sip:alice@198.51.100.7>;q=0.5\r\n\
Supported: path, outbound\r\n\
Expires: 7200\r\n\
User-Agent: TestPhone/1.0\r\n\
Content-Length: 0\r\n\r\n";

fn s(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap()
}

#[test]
fn register_fields_read_back() {
    let m = Message::parse(REGISTER).unwrap();
    m.validate().unwrap();
    assert_eq!(m.method(), Some(Method::Register));
    assert_eq!(s(m.request_uri_raw().unwrap()), "sip:example.com");
    let via = m.top_via().unwrap();
    assert_eq!((s(via.host()), via.port()), ("192.0.2.10", Some(5062)));
    assert_eq!(via.branch(), Some(&b"z9hG4bKnashds7"[..]));
    assert_eq!(via.rport(), RPort::Requested);
    let from = m.from().unwrap();
    assert_eq!(s(from.uri().raw()), "sip:alice@example.com");
    assert_eq!(from.tag(), Some(&b"456248"[..]));
    assert_eq!(m.to().unwrap().tag(), None);
    assert_eq!(m.call_id().unwrap(), b"843817637684230@998sdasdh09");
    let cseq = m.cseq().unwrap();
    assert_eq!((cseq.seq, cseq.method), (1826, Method::Register));
    assert_eq!(m.max_forwards().unwrap(), Some(70));
    assert_eq!(m.expires().unwrap(), Some(7200));
    let contacts: Vec<_> = m.contacts().map(Result::unwrap).collect();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0].expires(), Some(Ok(600)));
    assert_eq!(contacts[0].reg_id(), Some(1));
    assert_eq!(
        contacts[0].instance(),
        Some(&b"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"[..])
    );
    assert_eq!(contacts[1].q(), Some(Ok(500)));
    assert_eq!(s(contacts[1].addr().unwrap().uri().host()), "198.51.100.7");
    assert!(m.supports(b"path") && m.supports(b"OUTBOUND") && !m.supports(b"gruu"));
    assert_eq!(m.user_agent(), Some(&b"TestPhone/1.0"[..]));
    assert_eq!(m.content_length(), Some(0));
    assert!(m.body().is_empty());
}

#[test]
fn compact_forms_folding_and_split_lists() {
    let raw = b"INVITE sip:bob@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1,\r\n SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2\r\n\
VIA: SIP/2.0/UDP c.example.com;branch=z9hG4bK3\r\n\
f: <sip:alice@example.com>\r\n ;tag=1928\r\n\
t: Bob\r\n\t<sip:bob@example.com>\r\n\
i: abc@host\r\n\
CSeq:\r\n 1 INVITE\r\n\
m: <sip:alice@a.example.com>\r\n\
Subject:\r\n\
c: application/sdp\r\n\
l: 4\r\n\r\nv=0\n";
    let m = Message::parse(raw).unwrap();
    m.validate().unwrap();
    let vias: Vec<_> = m.vias().map(Result::unwrap).collect();
    let hosts: Vec<_> = vias.iter().map(|v| s(v.host())).collect();
    assert_eq!(hosts, ["a.example.com", "b.example.com", "c.example.com"]);
    assert_eq!(vias[1].transport(), b"TCP");
    assert_eq!(vias[1].port(), Some(5070));
    assert_eq!(m.from().unwrap().tag(), Some(&b"1928"[..]));
    assert_eq!(m.to().unwrap().display_name(), Some(&b"Bob"[..]));
    assert_eq!(m.cseq().unwrap().seq, 1);
    assert_eq!(m.header(HeaderName::Subject), Some(&b""[..]));
    assert!(m
        .content_type()
        .unwrap()
        .unwrap()
        .is(b"application", b"sdp"));
    assert_eq!(m.body(), b"v=0\n");
    assert_eq!(m.header_named(b"content-length"), Some(&b"4"[..]));
}

#[test]
fn response_fields() {
    let raw = b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
    let m = Message::parse(raw).unwrap();
    m.validate().unwrap();
    assert!(m.is_response());
    assert_eq!(m.status(), Some(180));
    assert_eq!(m.reason(), Some(&b"Ringing"[..]));
    assert_eq!(m.cseq().unwrap().method, Method::Invite);
}

#[test]
fn udp_framing() {
    // Bytes past Content-Length are not part of the message (RFC 3261 §18.3).
    let raw = b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 3\r\n\r\nabcTRAILING";
    let m = Message::parse(raw).unwrap();
    assert_eq!(m.body(), b"abc");
    assert!(m.as_bytes().ends_with(b"abc"));
    // No Content-Length over UDP: the body is the rest of the datagram.
    let raw = b"MESSAGE sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:h>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n\r\nhello";
    let m = Message::parse(raw).unwrap();
    m.validate().unwrap();
    assert_eq!(m.body(), b"hello");
    // A declared length past the datagram's end is a 400.
    let raw = b"MESSAGE sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:h>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\nContent-Length: 50\r\n\r\nhello";
    let m = Message::parse(raw).unwrap();
    let err = m.validate().unwrap_err();
    assert_eq!(err.kind, ParseErrorKind::BodyTruncated);
    assert_eq!(
        m.error_reply(err),
        Reply::Status(400, "Content-Length Exceeds Message")
    );
}

#[test]
fn keepalives_and_limits() {
    assert!(is_keepalive(b"\r\n\r\n"));
    assert!(is_keepalive(b"\r\n"));
    assert!(!is_keepalive(b""));
    assert!(!is_keepalive(b"\r\nX"));
    let big = vec![b'a'; 70_000];
    assert_eq!(
        Message::parse(&big).unwrap_err().kind,
        ParseErrorKind::MessageTooLarge
    );
    assert_eq!(
        Message::parse(b"\x00\x01\x02garbage").unwrap_err().kind,
        ParseErrorKind::NotSip
    );
    let opts = ParseOptions {
        max_headers: 3,
        ..ParseOptions::default()
    };
    assert_eq!(
        Message::parse_with(REGISTER, &opts).unwrap_err().kind,
        ParseErrorKind::TooManyHeaders
    );
}

#[test]
fn stream_framing() {
    let opts = ParseOptions::default();
    let mut stream = Vec::new();
    stream.extend_from_slice(b"\r\n\r\n");
    stream.extend_from_slice(REGISTER);
    stream.extend_from_slice(&REGISTER[..100]);
    match Message::frame_stream(&stream, &opts).unwrap() {
        StreamFrame::Keepalive { len: 4, ping: true } => {}
        other => panic!("{other:?}"),
    }
    match Message::frame_stream(&stream[4..], &opts).unwrap() {
        StreamFrame::Message { msg, len } => {
            assert_eq!(len, REGISTER.len());
            assert_eq!(msg.cseq().unwrap().seq, 1826);
        }
        other => panic!("{other:?}"),
    }
    let rest = &stream[4 + REGISTER.len()..];
    assert!(matches!(
        Message::frame_stream(rest, &opts).unwrap(),
        StreamFrame::Incomplete
    ));
    // Content-Length is required on streams.
    let no_cl = b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n";
    assert_eq!(
        Message::frame_stream(no_cl, &opts).unwrap_err().kind,
        ParseErrorKind::MissingContentLength
    );
    // A body split across reads is incomplete until it all arrived.
    let with_body = b"MESSAGE sip:h SIP/2.0\r\nContent-Length: 5\r\n\r\nhel";
    assert!(matches!(
        Message::frame_stream(with_body, &opts).unwrap(),
        StreamFrame::Incomplete
    ));
}

fn request(first_line: &str, extra: &str) -> Vec<u8> {
    format!("{first_line}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\n{extra}\r\n").into_bytes()
}

fn reply_of(raw: &[u8]) -> Reply {
    let m = Message::parse(raw).unwrap();
    let err = m.validate().unwrap_err();
    m.error_reply(err)
}

#[test]
fn broken_requests_get_the_right_reply() {
    let cases: &[(&str, &str, u16)] = &[
        (
            "INVITE sip:b@h SIP/2.0",
            "CSeq: 1 INVITE\r\nMax-Forwards: 256\r\n",
            400,
        ),
        ("INVITE sip:b@h SIP/2.0", "CSeq: 1 ACK\r\n", 400),
        ("INVITE sip:b@h SIP/7.0", "CSeq: 1 INVITE\r\n", 505),
        ("INVITE  sip:b@h SIP/2.0", "CSeq: 1 INVITE\r\n", 400),
        ("INVITE sip:b@h SIP/2.0 ", "CSeq: 1 INVITE\r\n", 400),
        ("INVITE <sip:b@h> SIP/2.0", "CSeq: 1 INVITE\r\n", 400),
        (
            "INVITE sip:b@h?Route=%3Csip:x%3E SIP/2.0",
            "CSeq: 1 INVITE\r\n",
            400,
        ),
        ("INVITE sip:b@h SIP/2.0", "", 400),
        (
            "INVITE sip:b@h SIP/2.0",
            "CSeq: 1 INVITE\r\nCall-ID: d\r\n",
            400,
        ),
        (
            "INVITE sip:b@h SIP/2.0",
            "CSeq: 1 INVITE\r\nContent-Length: -1\r\n",
            400,
        ),
        (
            "INVITE sip:b@h SIP/2.0",
            "CSeq: 1 INVITE\r\nno colon here\r\n",
            400,
        ),
        (
            "INVITE sip:b@h SIP/2.0",
            "CSeq: 1 INVITE\r\nExpires: soon\r\n",
            400,
        ),
    ];
    for (line, extra, code) in cases {
        match reply_of(&request(line, extra)) {
            Reply::Status(c, _) => assert_eq!(c, *code, "{line} / {extra}"),
            Reply::Drop => panic!("dropped: {line} / {extra}"),
        }
    }
    let long_uri = format!("INVITE sip:{}@h SIP/2.0", "u".repeat(9000));
    assert_eq!(
        reply_of(&request(&long_uri, "CSeq: 1 INVITE\r\n")),
        Reply::Status(414, "Request-URI Too Long")
    );
    // An ACK or a response is never answered.
    assert_eq!(
        reply_of(&request("ACK sip:b@h SIP/2.0", "CSeq: 1 INVITE\r\n")),
        Reply::Drop
    );
    let bad_resp = b"SIP/2.0 4294967301 Huge\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n";
    assert_eq!(reply_of(bad_resp), Reply::Drop);
}

#[test]
fn unknown_methods_and_schemes_are_carried() {
    let raw = request("NEWMETHOD urn:service:sos SIP/2.0", "CSeq: 9 NEWMETHOD\r\n");
    let m = Message::parse(&raw).unwrap();
    m.validate().unwrap();
    assert_eq!(m.method(), Some(Method::Extension(b"NEWMETHOD")));
    assert_eq!(m.request_uri().unwrap().scheme(), Scheme::Other(b"urn"));
}

#[test]
fn response_written_from_request() {
    let m = Message::parse(REGISTER).unwrap();
    let mut out = Vec::new();
    let spec = ResponseSpec {
        status: 200,
        reason: b"OK",
        to_tag: Some(b"as7d8"),
        received: Some(b"203.0.113.9"),
        rport: Some(40000),
        ..Default::default()
    };
    write_response(&mut out, &m, &spec)
        .header(b"Contact", b"<sip:alice@192.0.2.10:5062>;expires=600")
        .finish(b"");
    let text = s(&out);
    assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
    assert!(text.contains(
        "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bKnashds7;rport=40000;received=203.0.113.9\r\n"
    ), "{text}");
    assert!(
        text.contains("To: <sip:alice@example.com>;tag=as7d8\r\n"),
        "{text}"
    );
    assert!(text.contains("From: \"Alice\" <sip:alice@example.com>;tag=456248\r\n"));
    assert!(text.ends_with("Content-Length: 0\r\n\r\n"));
    let r = Message::parse(&out).unwrap();
    r.validate().unwrap();
    assert_eq!(r.status(), Some(200));
    assert_eq!(r.call_id().unwrap(), m.call_id().unwrap());
    assert_eq!(r.top_via().unwrap().rport(), RPort::Port(40000));
    assert_eq!(
        r.header(HeaderName::Contact),
        Some(&b"<sip:alice@192.0.2.10:5062>;expires=600"[..])
    );
}

#[test]
fn forwarded_request_is_edited_in_one_pass() {
    let raw = b"INVITE sip:proxy.example.com;lr SIP/2.0\r\n\
Via: SIP/2.0/UDP ua.example.com;branch=z9hG4bKua\r\n\
Max-Forwards: 10\r\n\
Route: <sip:edge.example.com;lr>, <sip:next.example.com;lr>\r\n\
From: <sip:a@example.com>;tag=1\r\n\
To: <sip:b@example.com>\r\n\
Call-ID: fwd1\r\n\
CSeq: 1 INVITE\r\n\
Record-Route: <sip:earlier.example.com;lr>\r\n\
Content-Length: 4\r\n\r\nbody";
    let m = Message::parse(raw).unwrap();
    let mut out = Vec::new();
    let edits = ForwardEdits {
        request_uri: Some(b"sip:b@198.51.100.7:5060"),
        via: Some(b"SIP/2.0/UDP edge.example.com;branch=z9hG4bKedge"),
        record_route: Some(b"<sip:edge.example.com;lr>"),
        pop_route: true,
        decrement_max_forwards: true,
        ..ForwardEdits::default()
    };
    write_forward(&mut out, &m, &edits);
    let f = Message::parse(&out).unwrap();
    f.validate().unwrap();
    assert_eq!(f.request_uri_raw(), Some(&b"sip:b@198.51.100.7:5060"[..]));
    let branches: Vec<_> = f.vias().map(|v| v.unwrap().branch().unwrap()).collect();
    assert_eq!(branches, [&b"z9hG4bKedge"[..], b"z9hG4bKua"]);
    assert_eq!(f.max_forwards().unwrap(), Some(9));
    let routes: Vec<_> = f.routes().map(|r| r.unwrap().uri().raw()).collect();
    assert_eq!(routes, [&b"sip:next.example.com;lr"[..]]);
    let rrs: Vec<_> = f.record_routes().map(|r| r.unwrap().uri().raw()).collect();
    assert_eq!(
        rrs,
        [
            &b"sip:edge.example.com;lr"[..],
            b"sip:earlier.example.com;lr"
        ]
    );
    assert_eq!(f.body(), b"body");

    // A response on its way back loses our Via.
    let resp = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP edge.example.com;branch=z9hG4bKedge, SIP/2.0/UDP ua.example.com;branch=z9hG4bKua\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\nCall-ID: fwd1\r\nCSeq: 1 INVITE\r\n\r\n";
    let r = Message::parse(resp).unwrap();
    write_forward(
        &mut out,
        &r,
        &ForwardEdits {
            pop_via: true,
            ..ForwardEdits::default()
        },
    );
    let f = Message::parse(&out).unwrap();
    f.validate().unwrap();
    assert_eq!(f.vias().count(), 1);
    assert_eq!(f.top_via().unwrap().branch(), Some(&b"z9hG4bKua"[..]));
    assert_eq!(f.content_length(), Some(0));
}

#[test]
fn authorization_digest() {
    let raw = request(
        "REGISTER sip:example.com SIP/2.0",
        "CSeq: 2 REGISTER\r\nAuthorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"abc\", uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"xyz\"\r\n",
    );
    let m = Message::parse(&raw).unwrap();
    m.validate().unwrap();
    let c = m.authorization().next().unwrap().unwrap();
    assert!(c.is_digest());
    assert!(c.username.unwrap().eq_bytes(b"alice"));
    assert!(c.uri.unwrap().eq_bytes(b"sip:example.com"));
    assert_eq!(c.nc, Some(&b"00000001"[..]));
}

#[test]
fn forwarding_a_message_without_headers_keeps_its_shape() {
    let m = Message::parse(b"OPTIONS sip:a@b SIP/2.0\r\n\r\nx").unwrap();
    let mut out = Vec::new();
    let edits = ForwardEdits {
        via: Some(b"SIP/2.0/UDP edge;branch=z9hG4bKe"),
        decrement_max_forwards: true,
        ..ForwardEdits::default()
    };
    write_forward(&mut out, &m, &edits);
    let f = Message::parse(&out).unwrap();
    assert_eq!(f.top_via().unwrap().branch(), Some(&b"z9hG4bKe"[..]));
    assert_eq!(f.max_forwards().unwrap(), Some(70));
    assert_eq!(f.content_length(), Some(1));
    assert_eq!(f.body(), b"x");
}

#[test]
fn fuzz_findings_are_refused() {
    // Found by fuzzing (tests/vectors/regress/): each must fail validation with a 400.
    for raw in [
        &b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1;rport=1;rport\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n"[..],
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n",
        b"OPTIONS sip:a@b SIP/2.0\r\nVia:\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n",
    ] {
        let m = Message::parse(raw).unwrap();
        let err = m.validate().unwrap_err();
        assert!(matches!(m.error_reply(err), Reply::Status(400, _)), "{err}");
    }
}

#[test]
fn an_existing_received_is_replaced_not_repeated() {
    let raw = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h ; branch=z9hG4bK1;received=192.0.2.9 ;rport;x=\"q;r\"\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
    let m = Message::parse(raw).unwrap();
    m.validate().unwrap();
    let mut out = Vec::new();
    let spec = ResponseSpec {
        status: 200,
        reason: b"OK",
        to_tag: Some(b"t"),
        received: Some(b"198.51.100.1"),
        rport: Some(7000),
        ..Default::default()
    };
    write_response(&mut out, &m, &spec).finish(b"");
    let r = Message::parse(&out).unwrap();
    r.validate().unwrap();
    let via = r.top_via().unwrap();
    assert_eq!(via.received(), Some(&b"198.51.100.1"[..]));
    assert_eq!(via.rport(), RPort::Port(7000));
    assert_eq!(via.branch(), Some(&b"z9hG4bK1"[..]));
    assert_eq!(via.params().value(b"x"), Some(&b"\"q;r\""[..]));
}
