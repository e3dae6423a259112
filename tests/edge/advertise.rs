//! Issue 15 items 2 and 4 over the binary (127.0.115.0/24): a wildcard listen with
//! `advertise`, answering from the address each peer reached; `--check` refusing a
//! wildcard without it; STUN keepalives answered on the SIP port.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{options, register, temp_dir, Client, TempDir, WAIT};
use sipedge_msg::{HeaderName, Message};

/// Each test its own port (a wildcard bind takes the port on every address).
const PORT: u16 = 25115;
const STUN_PORT: u16 = 25117;

struct Wild {
    child: Child,
    _dir: TempDir,
}

impl Drop for Wild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_wildcard(port: u16) -> Wild {
    let dir = temp_dir("advertise");
    let path = dir.path().join("sipedge.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = [\"udp:0.0.0.0:{port} advertise sip.edge.test\"]\ndomains = [\"edge.test\"]\nio = \"auto\"\n\n[admin]\nlisten = \"127.0.115.1:{}\"\n\n[log]\nlevel = \"warn\"\n\n[registrar]\npersistence = false\n",
            port + 1
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_sipedge"))
        .arg("--config")
        .arg(&path)
        .args(["--shards", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let wild = Wild { child, _dir: dir };
    let probe = Client::new("127.0.115.9");
    let edge: SocketAddr = format!("127.0.115.2:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        probe.send(edge, &options(edge, &probe, 1));
        if probe.recv(Duration::from_millis(200)).is_some() {
            return wild;
        }
        assert!(
            Instant::now() < deadline,
            "sipedge did not answer within 15 s"
        );
    }
}

/// The next datagram and where it came from.
fn recv_from(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = vec![0u8; 65536];
    let (n, from) = sock.recv_from(&mut buf).expect("a datagram");
    buf.truncate(n);
    (buf, from)
}

#[test]
fn wildcard_listen_advertises_its_name_and_answers_from_the_address_reached() {
    let _edge = start_wildcard(PORT);
    let on_a: SocketAddr = format!("127.0.115.2:{PORT}").parse().unwrap();
    let on_b: SocketAddr = format!("127.0.115.3:{PORT}").parse().unwrap();

    // bob registers through address A: the 200 comes from A.
    let bob = Client::new("127.0.115.10");
    let contact = format!("<sip:bob@{}>", bob.addr());
    bob.send(
        on_a,
        &register(&bob, "bob", Some(&contact), Some(600), "adv-reg", 1),
    );
    let (reply, from) = recv_from(&bob.sock);
    assert_eq!(Message::parse(&reply).unwrap().status(), Some(200));
    assert_eq!(from, on_a, "the reply leaves from the address bob sent to");

    // A caller reaches the edge on address B: its 100 Trying comes from B, and bob's
    // INVITE carries the advertised name in Via and Record-Route, never 0.0.0.0.
    let caller = Client::new("127.0.115.11");
    let me = caller.addr();
    let invite = format!(
        "INVITE sip:bob@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-adv-inv;rport\r\nMax-Forwards: 70\r\nFrom: <sip:carol@example.org>;tag=c1\r\nTo: <sip:bob@edge.test>\r\nCall-ID: adv-call\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@{me}>\r\nContent-Length: 0\r\n\r\n"
    );
    caller.send(on_b, invite.as_bytes());
    let (trying, from) = recv_from(&caller.sock);
    let trying_status = Message::parse(&trying).unwrap().status();
    assert_eq!(
        trying_status,
        Some(100),
        "{}",
        String::from_utf8_lossy(&trying)
    );
    assert_eq!(
        from, on_b,
        "the reply leaves from the address the caller sent to"
    );
    let (inv, from) = recv_from(&bob.sock);
    let m = Message::parse(&inv).unwrap();
    let text = String::from_utf8_lossy(&inv).into_owned();
    let via = String::from_utf8_lossy(m.header(HeaderName::Via).unwrap()).into_owned();
    assert!(
        via.starts_with(&format!("SIP/2.0/UDP sip.edge.test:{PORT};")),
        "{text}"
    );
    let rr = String::from_utf8_lossy(m.header(HeaderName::RecordRoute).unwrap()).into_owned();
    assert!(
        rr.starts_with(&format!("<sip:sip.edge.test:{PORT};lr;")),
        "{text}"
    );
    assert!(!text.contains("0.0.0.0"), "{text}");
    assert_eq!(
        from, on_a,
        "bob is reached from the address he registered to"
    );
}

#[test]
fn stun_binding_request_on_the_sip_port_is_answered() {
    let _edge = start_wildcard(STUN_PORT);
    let on_a: SocketAddr = format!("127.0.115.2:{STUN_PORT}").parse().unwrap();
    let phone = UdpSocket::bind("127.0.115.12:0").unwrap();
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    req.extend_from_slice(b"sipedge-stun");
    phone.send_to(&req, on_a).unwrap();
    let (ans, from) = recv_from(&phone);
    assert_eq!(from, on_a);
    assert_eq!(&ans[0..2], &[0x01, 0x01], "Binding success");
    assert_eq!(&ans[8..20], b"sipedge-stun");
    let me = phone.local_addr().unwrap();
    let port = u16::from_be_bytes([ans[26], ans[27]]) ^ 0x2112;
    let ip: Vec<u8> = (0..4).map(|i| ans[28 + i] ^ ans[4 + i]).collect();
    assert_eq!(port, me.port());
    assert_eq!(ip, [127, 0, 115, 12]);
    // A STUN *response* gets nothing back.
    let mut resp = req.clone();
    resp[0] = 0x01;
    resp[1] = 0x01;
    phone.send_to(&resp, on_a).unwrap();
    phone
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(
        phone.recv_from(&mut buf).is_err(),
        "no answer to a response"
    );
}

#[test]
fn check_refuses_a_wildcard_listen_without_advertise() {
    let dir = temp_dir("advertise-check");
    let path = dir.path().join("wild.toml");
    std::fs::write(&path, "[server]\nlisten = [\"udp:0.0.0.0:5060\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sipedge"))
        .args(["--check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("server.listen[0]") && text.contains("advertise"),
        "{text}"
    );
    std::fs::write(
        &path,
        "[server]\nlisten = [\"udp:0.0.0.0:5060 advertise sip.example.com\"]\n",
    )
    .unwrap();
    let ok = Command::new(env!("CARGO_BIN_EXE_sipedge"))
        .args(["--check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn a_call_to_a_binding_registered_with_path_goes_to_the_path_hop() {
    // An edge proxy in front of bob relays his REGISTER with its Path; it is an
    // `[[ip_auth]]` source, so its Path is kept (`[registrar] accept_path = "trusted"`).
    let trusted = "[[accounts]]\nname = \"proxy\"\n\n[[ip_auth]]\ncidr = \"127.0.115.21/32\"\naccount = \"proxy\"\nregister = [\"bob@edge.test\"]\n";
    let edge = crate::common::Edge::start_with("path", "127.0.115.20", 25119, 1, "auto", trusted);
    let proxy = Client::new("127.0.115.21");
    let bob = Client::new("127.0.115.22");
    let (p, b) = (proxy.addr(), bob.addr());
    let reg = format!(
        "REGISTER sip:edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {p};branch=z9hG4bK-path-p\r\nVia: SIP/2.0/UDP {b};branch=z9hG4bK-path-b\r\nMax-Forwards: 69\r\nFrom: <sip:bob@edge.test>;tag=p1\r\nTo: <sip:bob@edge.test>\r\nCall-ID: path-reg\r\nCSeq: 1 REGISTER\r\nSupported: path\r\nPath: <sip:{p};lr;ob>\r\nContact: <sip:bob@{b}>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
    );
    proxy.send(edge.sip, reg.as_bytes());
    assert_eq!(proxy.status(WAIT), Some(200));
    let caller = Client::new("127.0.115.23");
    let me = caller.addr();
    let invite = format!(
        "INVITE sip:bob@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-path-inv;rport\r\nMax-Forwards: 70\r\nFrom: <sip:carol@example.org>;tag=c1\r\nTo: <sip:bob@edge.test>\r\nCall-ID: path-call\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@{me}>\r\nContent-Length: 0\r\n\r\n"
    );
    caller.send(edge.sip, invite.as_bytes());
    let inv = proxy.recv(WAIT).expect("the INVITE reaches the Path hop");
    let m = Message::parse(&inv).unwrap();
    assert_eq!(
        m.method().map(|m| m.as_bytes().to_vec()),
        Some(b"INVITE".to_vec())
    );
    let route = String::from_utf8_lossy(m.header(HeaderName::Route).unwrap()).into_owned();
    assert_eq!(route, format!("<sip:{p};lr;ob>"));
    assert!(
        bob.recv(Duration::from_millis(300)).is_none(),
        "not sent to the Contact"
    );
}
