//! WebSocket codec against hand-built client frames (RFC 6455 §5), and WSS through TLS.

use std::io::{Read, Write};

use rustls::pki_types::ServerName;
use rustls::ClientConnection;

use super::codec::{CodecError, Plain, StreamCodec};
use super::stack::Stack;
use super::tests_tls::{client_config, pki, pump, server_config, OK, REGISTER};
use super::tls::TlsCodec;
use super::ws::WsCodec;

const UPGRADE: &[u8] = b"GET / HTTP/1.1\r\nHost: edge.example.com\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: https://www.example.com\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A masked client frame (RFC 6455 §5.2) with FIN `fin` and `opcode`.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | u8::try_from(n).expect("len")),
        n @ 126..=0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&u16::try_from(n).expect("len").to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    f
}

/// Feeds `input` `chunk` bytes at a time; returns (messages, wire, result).
fn feed(
    c: &mut dyn StreamCodec,
    input: &[u8],
    chunk: usize,
) -> (Vec<Vec<u8>>, Vec<u8>, Result<(), CodecError>) {
    let (mut msgs, mut wire) = (Vec::new(), Vec::new());
    for piece in input.chunks(chunk) {
        let r = c.read(
            piece,
            &mut |p| match p {
                Plain::Message(m) => msgs.push(m.to_vec()),
                Plain::Stream(_) => panic!("websocket delivers whole messages"),
            },
            &mut wire,
        );
        if r.is_err() {
            return (msgs, wire, r);
        }
    }
    (msgs, wire, Ok(()))
}

fn open() -> WsCodec {
    let mut ws = WsCodec::server(64 * 1024);
    let (msgs, wire, r) = feed(&mut ws, UPGRADE, usize::MAX);
    r.expect("upgrade");
    assert!(msgs.is_empty());
    let text = String::from_utf8(wire).expect("utf8");
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    // RFC 6455 §1.3's example key and answer.
    assert!(
        text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{text}"
    );
    assert!(text.contains("Sec-WebSocket-Protocol: sip\r\n"), "{text}");
    assert!(!ws.is_handshaking());
    ws
}

#[test]
fn upgrade_then_masked_text_frame_is_one_message_at_every_split() {
    let mut input = UPGRADE.to_vec();
    input.extend(frame(true, 1, REGISTER));
    input.extend(frame(true, 2, REGISTER)); // binary is SIP too (RFC 7118 §5.1)
    for chunk in 1..=input.len().min(300) {
        let mut ws = WsCodec::server(64 * 1024);
        let (msgs, wire, r) = feed(&mut ws, &input, chunk);
        r.expect("read");
        assert!(wire.starts_with(b"HTTP/1.1 101 "), "chunk {chunk}");
        assert_eq!(
            msgs,
            vec![REGISTER.to_vec(), REGISTER.to_vec()],
            "chunk {chunk}"
        );
    }
    // Outgoing: one unmasked text frame.
    let mut ws = open();
    let mut wire = Vec::new();
    ws.write(OK, &mut wire).expect("write");
    assert_eq!(wire[0], 0x81, "FIN + text");
    assert_eq!(wire[1], 126, "unmasked, 16-bit length");
    assert_eq!(
        usize::from(u16::from_be_bytes([wire[2], wire[3]])),
        OK.len()
    );
    assert_eq!(&wire[4..], OK);
}

#[test]
fn an_upgrade_without_the_sip_subprotocol_is_refused() {
    let text = std::str::from_utf8(UPGRADE).expect("utf8");
    for bad in [
        text.replace("Sec-WebSocket-Protocol: sip\r\n", ""),
        text.replace("Protocol: sip", "Protocol: chat, SIP-x"),
        text.replace("Version: 13", "Version: 8"),
        text.replace("Upgrade: websocket\r\n", ""),
        text.replace("GET", "POST"),
    ] {
        let mut ws = WsCodec::server(64 * 1024);
        let (msgs, wire, r) = feed(&mut ws, bad.as_bytes(), usize::MAX);
        assert!(matches!(r, Err(CodecError::Protocol(_))), "{bad}: {r:?}");
        assert!(msgs.is_empty());
        let reply = String::from_utf8(wire).expect("utf8");
        assert!(
            reply.starts_with("HTTP/1.1 400 ") || reply.starts_with("HTTP/1.1 426 "),
            "{reply}"
        );
    }
}

#[test]
fn an_upgrade_request_over_8k_is_refused() {
    let mut ws = WsCodec::server(64 * 1024);
    let mut big = b"GET / HTTP/1.1\r\n".to_vec();
    while big.len() <= 8 * 1024 {
        big.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let (_, _, r) = feed(&mut ws, &big, 1000);
    assert!(
        matches!(r, Err(CodecError::Protocol(ref w)) if w.contains("8 KiB")),
        "{r:?}"
    );
}

#[test]
fn fragments_are_reassembled_with_a_ping_between_them() {
    let mut ws = open();
    let (a, rest) = REGISTER.split_at(40);
    let (b, c) = rest.split_at(100);
    let mut input = frame(false, 1, a);
    input.extend(frame(true, 9, b"hi")); // a ping may come between fragments (§5.4)
    input.extend(frame(false, 0, b));
    input.extend(frame(true, 0, c));
    for chunk in [1, 3, usize::MAX] {
        let mut ws2 = open();
        let (msgs, wire, r) = feed(&mut ws2, &input, chunk);
        r.expect("read");
        assert_eq!(msgs, vec![REGISTER.to_vec()], "chunk {chunk}");
        assert_eq!(wire, [0x8a, 2, b'h', b'i'], "chunk {chunk}: the pong");
    }
    // A continuation with no message begun is a protocol error, answered with Close 1002.
    let (_, wire, r) = feed(&mut ws, &frame(true, 0, b"x"), usize::MAX);
    assert!(matches!(r, Err(CodecError::Protocol(_))), "{r:?}");
    assert_eq!(wire, [0x88, 2, 0x03, 0xea]);
}

#[test]
fn close_is_answered_and_closes() {
    let mut ws = open();
    let (msgs, wire, r) = feed(&mut ws, &frame(true, 8, &1000u16.to_be_bytes()), usize::MAX);
    assert_eq!(r, Err(CodecError::Closed));
    assert!(msgs.is_empty());
    assert_eq!(wire, [0x88, 2, 0x03, 0xe8], "Close 1000 echoed");
    assert_eq!(ws.write(OK, &mut Vec::new()), Err(CodecError::Closed));
}

#[test]
fn oversize_messages_are_refused_from_the_header() {
    // One frame over the cap: refused before its payload arrives.
    let mut ws = WsCodec::server(1000);
    feed(&mut ws, UPGRADE, usize::MAX).2.expect("upgrade");
    let f = frame(true, 1, &[b'a'; 1001]);
    let (msgs, wire, r) = feed(&mut ws, &f[..20], usize::MAX);
    assert_eq!(r, Err(CodecError::TooLarge));
    assert!(msgs.is_empty());
    assert_eq!(wire, [0x88, 2, 0x03, 0xf1], "Close 1009");
    // Fragments that add up past the cap.
    let mut ws = WsCodec::server(1000);
    feed(&mut ws, UPGRADE, usize::MAX).2.expect("upgrade");
    let mut input = Vec::new();
    for op in [1, 0, 0] {
        input.extend(frame(false, op, &[b'a'; 400]));
    }
    let (msgs, _, r) = feed(&mut ws, &input, usize::MAX);
    assert_eq!(r, Err(CodecError::TooLarge));
    assert!(msgs.is_empty());
    // A 2^63 length does not overflow anything.
    let mut ws = open();
    let mut huge = vec![0x81, 0x80 | 127];
    huge.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
    huge.extend_from_slice(&[1, 2, 3, 4]);
    let (_, _, r) = feed(&mut ws, &huge, usize::MAX);
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn unmasked_or_reserved_frames_are_refused() {
    let mut unmasked = vec![0x81, 3];
    unmasked.extend_from_slice(b"abc");
    let mut rsv = frame(true, 1, b"abc");
    rsv[0] |= 0x40;
    let long_ping = frame(true, 9, &[0; 126]);
    let bad_utf8 = frame(true, 1, &[0xff, 0xfe]);
    for (what, f) in [
        ("unmasked", unmasked),
        ("rsv1", rsv),
        ("long ping", long_ping),
        ("bad utf-8", bad_utf8),
    ] {
        let mut ws = open();
        let (msgs, wire, r) = feed(&mut ws, &f, usize::MAX);
        assert!(matches!(r, Err(CodecError::Protocol(_))), "{what}: {r:?}");
        assert!(msgs.is_empty(), "{what}");
        assert_eq!(&wire[..2], [0x88, 2], "{what}: a Close frame");
    }
}

#[test]
fn wss_stack_round_trip() {
    let p = pki();
    let mut server = Stack::new(
        TlsCodec::server(server_config(&p, false, rustls::ALL_VERSIONS), 64 * 1024).expect("tls"),
        WsCodec::server(64 * 1024),
    );
    let name = ServerName::try_from("localhost").expect("name");
    let mut client =
        ClientConnection::new(client_config(&p, false, rustls::ALL_VERSIONS), name).expect("c");
    assert!(server.is_handshaking());
    let (mut got, mut back) = (Vec::new(), Vec::new());
    client.writer().write_all(UPGRADE).expect("w");
    client
        .writer()
        .write_all(&frame(true, 1, REGISTER))
        .expect("w");
    // 1-byte reads put a boundary everywhere in the TLS and WebSocket layers.
    pump(&mut client, &mut server, 1, &mut got, &mut back).expect("pump");
    assert!(!server.is_handshaking());
    assert_eq!(got, REGISTER);
    assert!(
        back.starts_with(b"HTTP/1.1 101 "),
        "{:?}",
        String::from_utf8_lossy(&back)
    );
    // The 200 OK goes down as a text frame inside TLS.
    let mut wire = Vec::new();
    server.write(OK, &mut wire).expect("write");
    let mut rd = &wire[..];
    while !rd.is_empty() {
        client.read_tls(&mut rd).expect("rt");
        client.process_new_packets().expect("pnp");
    }
    let mut plain = Vec::new();
    let _ = client.reader().read_to_end(&mut plain);
    let len = u16::try_from(OK.len()).expect("len").to_be_bytes();
    assert_eq!(plain[..4], [0x81, 126, len[0], len[1]]);
    assert_eq!(&plain[4..], OK);
}

/// An in-memory socket whose far end is our codec: what the client writes is fed to the
/// codec at once, what the codec answers is what the client reads.
struct Loop {
    server: WsCodec,
    to_client: Vec<u8>,
    msgs: Vec<Vec<u8>>,
    result: Result<(), CodecError>,
}

impl Read for Loop {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.to_client.is_empty() {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.to_client.len());
        buf[..n].copy_from_slice(&self.to_client[..n]);
        self.to_client.drain(..n);
        Ok(n)
    }
}

impl Write for Loop {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let msgs = &mut self.msgs;
        let r = self.server.read(
            buf,
            &mut |p| {
                if let Plain::Message(m) = p {
                    msgs.push(m.to_vec())
                }
            },
            &mut self.to_client,
        );
        if self.result.is_ok() {
            self.result = r;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// tungstenite's client (a maintained RFC 6455 implementation) against our server codec.
#[test]
fn a_tungstenite_client_registers_pings_and_closes() {
    use tungstenite::client::IntoClientRequest;
    use tungstenite::Message;
    let mut req = "ws://edge.example.com/".into_client_request().expect("req");
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().expect("hdr"));
    let sock = Loop {
        server: WsCodec::server(64 * 1024),
        to_client: Vec::new(),
        msgs: Vec::new(),
        result: Ok(()),
    };
    let (mut ws, resp) = tungstenite::client::client(req, sock).expect("handshake");
    assert_eq!(resp.status(), 101);
    assert_eq!(resp.headers()["Sec-WebSocket-Protocol"], "sip");
    let text = std::str::from_utf8(REGISTER).expect("utf8");
    ws.send(Message::text(text)).expect("send");
    assert_eq!(ws.get_ref().msgs, vec![REGISTER.to_vec()]);
    // The 200 OK back.
    let sock = ws.get_mut();
    let mut wire = Vec::new();
    sock.server.write(OK, &mut wire).expect("write");
    sock.to_client.extend(wire);
    match ws.read().expect("read") {
        Message::Text(t) => assert_eq!(t.as_bytes(), OK),
        other => panic!("{other:?}"),
    }
    // Ping → pong (tungstenite hands pongs to the reader).
    ws.send(Message::Ping(b"ka".to_vec().into())).expect("ping");
    match ws.read().expect("read") {
        Message::Pong(p) => assert_eq!(&p[..], b"ka"),
        other => panic!("{other:?}"),
    }
    // Close → the codec answers and reports Closed.
    ws.close(None).expect("close");
    let _ = ws.flush();
    assert!(matches!(ws.read(), Ok(Message::Close(_)) | Err(_)));
    assert_eq!(ws.get_ref().result, Err(CodecError::Closed));
}
