//! A stream peer that reads slowly (issue 19): the edge's writes to it fill the socket, go
//! out in part or not at all (`EAGAIN`), and must still all arrive, whole and in order, and
//! promptly, once it reads — with io_uring the writes are ring sends whose partial and
//! `EAGAIN` results put the rest back in front (`stream::ring_send`). Mutation-checked: with
//! the rest dropped instead, answers go missing. On 127.0.48.0/24, ports 5071+.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sipedge_msg::Message;
use sipedge_rt::stream::{Frame, Framer};

use crate::common::Edge;

const PORT: u16 = 5071;

fn register(me: SocketAddr, user: &str, cseq: u32) -> String {
    format!(
        "REGISTER sip:edge.test SIP/2.0\r\nVia: SIP/2.0/TCP {me};branch=z9hG4bK-b{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@edge.test>;tag=f{cseq}\r\nTo: <sip:{user}@edge.test>\r\nCall-ID: backlog-{user}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@{me};transport=tcp>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Pipelines `n` REGISTERs on one connection whose receive buffer is tiny and reads nothing
/// for a while (the edge's send buffer fills), then reads: every answer arrives, in order.
fn backlog_on(io: &str, ip: &str) {
    let edge = Edge::start_listen(
        &format!("backlog-{io}"),
        ip,
        PORT,
        1,
        io,
        &[format!("tcp:{ip}:{PORT}")],
        // Room for every answer held at once: the test is about order, not the cap.
        "[tcp]\nmax_connection_bytes = 16777216\n",
        &[],
    );
    let to: SocketAddr = format!("{ip}:{PORT}").parse().unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // A small window: the edge's replies back up into its send buffer.
    sock.set_recv_buffer_size(2048).unwrap();
    let from: SocketAddr = "127.0.48.100:0".parse().unwrap();
    sock.bind(&from.into()).unwrap();
    sock.connect_timeout(&to.into(), Duration::from_secs(2))
        .unwrap();
    let mut s: TcpStream = sock.into();
    s.set_nodelay(true).unwrap();
    let me = s.local_addr().unwrap();
    // ~5 MB of answers: more than loopback's send buffer holds here (it grows with the
    // segment size, to a few MB).
    const N: u32 = 16_000;
    let mut all = String::new();
    for cseq in 1..=N {
        all.push_str(&register(me, &format!("bl{}", cseq % 40), cseq));
    }
    s.write_all(all.as_bytes()).unwrap();
    // Not reading: the edge answers into a full window.
    std::thread::sleep(Duration::from_millis(500));
    // Then a larger window, so reading ~5 MB takes a moment, not 2 KiB per round trip.
    socket2::SockRef::from(&s)
        .set_recv_buffer_size(1 << 20)
        .unwrap();
    let mut framer = Framer::new(1 << 20);
    let mut cseqs = Vec::new();
    let mut buf = [0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(10);
    while cseqs.len() < N as usize && Instant::now() < deadline {
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let n = match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => continue,
        };
        framer
            .push(&buf[..n], &mut |f| {
                if let Frame::Message(m) = f {
                    let m = Message::parse(m).expect("a whole SIP message");
                    assert!(m.status().is_some(), "a response");
                    cseqs.push(m.cseq().expect("CSeq").seq);
                }
            })
            .expect("framed");
    }
    let want: Vec<u32> = (1..=N).collect();
    assert_eq!(cseqs, want, "every answer, in order ({io})");
    drop(edge);
}

#[test]
fn a_slow_reader_gets_every_answer_in_order_over_io_uring() {
    backlog_on("auto", "127.0.48.10");
}

#[test]
fn a_slow_reader_gets_every_answer_in_order_with_the_mmsg_engine() {
    backlog_on("mmsg", "127.0.48.11");
}
