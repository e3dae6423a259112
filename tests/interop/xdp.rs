//! `io = "xdp"` end to end (issue 21): the real binary in a network namespace behind a veth
//! pair (native XDP, copy mode), driven from a second namespace. OPTIONS and REGISTER are
//! answered through the AF_XDP socket (the engine's counters say so), ICMP is still answered
//! by the kernel, a MESSAGE too large for one frame (IP fragments both ways) is still relayed
//! through the fallback socket, and the XDP program leaves the interface on SIGTERM and on
//! `kill -9`, after which the next start attaches again.
//!
//! Needs root and `ip` (iproute2); skipped with a message otherwise. Names: `x21-t*`, addresses
//! 198.18.21.0/24 (198.18.21.1-3).
#![allow(unsafe_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{options, register, Client};
use sipedge_msg::Message;

const NS_A: &str = "x21-ta";
const NS_B: &str = "x21-tb";
const EDGE: &str = "198.18.21.1:5060";
const ADMIN: &str = "198.18.21.1:9065";

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn xdp_attached() -> bool {
    let out = Command::new("ip")
        .args(["-n", NS_A, "link", "show", "x21ta"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("prog/xdp")
}

struct Rig {
    dir: crate::common::TempDir,
}

impl Rig {
    fn new() -> Option<Rig> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 || !ip(&["-V"]) {
            eprintln!("\n*** SKIPPED: the AF_XDP test needs root and iproute2 (`ip`) ***\n");
            return None;
        }
        let _ = ip(&["netns", "del", NS_A]);
        let _ = ip(&["netns", "del", NS_B]);
        for cmd in [
            vec!["netns", "add", NS_A],
            vec!["netns", "add", NS_B],
            vec![
                "link", "add", "x21ta", "type", "veth", "peer", "name", "x21tb",
            ],
            vec!["link", "set", "x21ta", "netns", NS_A],
            vec!["link", "set", "x21tb", "netns", NS_B],
            vec!["-n", NS_A, "addr", "add", "198.18.21.1/24", "dev", "x21ta"],
            vec!["-n", NS_B, "addr", "add", "198.18.21.2/24", "dev", "x21tb"],
            // A peer that never sends to the edge (no frame to learn its MAC from).
            vec!["-n", NS_B, "addr", "add", "198.18.21.3/24", "dev", "x21tb"],
            vec!["-n", NS_A, "link", "set", "x21ta", "up"],
            vec!["-n", NS_B, "link", "set", "x21tb", "up"],
            vec!["-n", NS_A, "link", "set", "lo", "up"],
            vec!["-n", NS_B, "link", "set", "lo", "up"],
        ] {
            assert!(ip(&cmd), "ip {cmd:?} failed");
        }
        let dir = crate::common::temp_dir("xdp");
        std::fs::write(
            dir.path().join("sipedge.toml"),
            format!(
                "[server]\nlisten = [\"udp:{EDGE}\"]\ndomains = [\"edge.test\"]\nio = \"xdp\"\nxdp_interface = \"x21ta\"\n\n[admin]\nlisten = \"{ADMIN}\"\n# Not loopback: a token is required (issue 18).\ntoken = \"xdp-test-token-0123456789\"\n\n[log]\nlevel = \"info\"\n{}",
                crate::common::MEMORY_ONLY
            ),
        )
        .unwrap();
        Some(Rig { dir })
    }

    fn start(&self) -> Proc {
        Proc(
            Command::new("ip")
                .args(["netns", "exec", NS_A, env!("CARGO_BIN_EXE_sipedge")])
                .arg("--config")
                .arg(self.dir.path().join("sipedge.toml"))
                .args(["--shards", "1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

/// A running sipedge, killed if the test fails half-way.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", NS_A]);
        let _ = ip(&["netns", "del", NS_B]);
    }
}

/// Moves the calling thread into namespace `ns`.
fn enter(ns: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    // SAFETY: setns on an open netns fd; affects only this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

fn edge() -> SocketAddr {
    EDGE.parse().unwrap()
}

fn wait_answering(c: &Client) {
    // Late answers of an earlier instance to earlier probes are not this instance's.
    while c.recv(Duration::from_millis(20)).is_some() {}
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        c.send(edge(), &options(edge(), c, 1));
        if c.recv(Duration::from_millis(200)).is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sipedge did not answer within 15 s"
        );
    }
}

fn metrics() -> String {
    let mut s =
        TcpStream::connect_timeout(&ADMIN.parse().unwrap(), Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn status(c: &Client) -> u16 {
    let bytes = c.recv(Duration::from_secs(5)).expect("a reply");
    Message::parse(&bytes).unwrap().status().unwrap()
}

/// One ICMP echo to `to` from this thread's namespace through a raw socket (no `ping`).
fn icmp_echo(to: [u8; 4]) -> bool {
    // SAFETY: plain socket creation; checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    assert!(fd >= 0);
    let tv = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: a live timeval of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
    }
    // Echo request, id 0x5678, seq 1, checksum precomputed over these 8 bytes.
    let mut pkt = [8u8, 0, 0, 0, 0x56, 0x78, 0, 1];
    let c = !(0x0800u32 + 0x5678 + 1) as u16;
    pkt[2..4].copy_from_slice(&c.to_be_bytes());
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(to),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: live buffers of the lengths passed; `sa` is a sockaddr_in.
    let sent = unsafe {
        libc::sendto(
            fd,
            pkt.as_ptr().cast(),
            pkt.len(),
            0,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    let mut ok = false;
    let mut buf = [0u8; 256];
    for _ in 0..10 {
        // SAFETY: receives into a live buffer of its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if sent < 0 || n < 28 {
            break;
        }
        let ihl = usize::from(buf[0] & 0xf) * 4;
        if buf[12..16] == to && buf[ihl] == 0 && buf[ihl + 4..ihl + 6] == [0x56, 0x78] {
            ok = true;
            break;
        }
    }
    // SAFETY: closes the fd opened above, once.
    unsafe { libc::close(fd) };
    ok
}

fn message(from: &Client, to: &str, body: &str) -> Vec<u8> {
    message_n(from, to, body, 1)
}

/// MESSAGE number `n` (its own transaction and dialog).
fn message_n(from: &Client, to: &str, body: &str, n: u32) -> Vec<u8> {
    let me = from.addr();
    format!(
        "MESSAGE sip:{to}@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-xm-{to}-{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@edge.test>;tag=a-xm{n}\r\nTo: <sip:{to}@edge.test>\r\nCall-ID: xm-{to}-{n}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The first MESSAGE `c` receives (skipping retransmissions of earlier ones).
fn recv_message(c: &Client, body: &str) -> Vec<u8> {
    loop {
        let bytes = c.recv(Duration::from_secs(5)).expect("the MESSAGE arrives");
        if bytes.starts_with(b"MESSAGE")
            && Message::parse(&bytes).unwrap().body() == body.as_bytes()
        {
            return bytes;
        }
    }
}

fn wait_detached() -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while xdp_attached() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn sip_over_xdp_with_kernel_fallbacks_and_clean_detach() {
    let Some(rig) = Rig::new() else { return };
    std::thread::spawn(move || {
        enter(NS_B);
        let mut child = rig.start();
        let probe = Client::new("198.18.21.2");
        wait_answering(&probe);
        assert!(xdp_attached(), "the program is attached while sipedge runs");

        // OPTIONS and REGISTER through the AF_XDP socket.
        let before = metrics();
        let c = Client::new("198.18.21.2");
        c.send(edge(), &options(edge(), &c, 7));
        assert_eq!(status(&c), 200);
        let bob = Client::new("198.18.21.2");
        let contact = format!("<sip:bob@{}>", bob.addr());
        bob.send(
            edge(),
            &register(&bob, "bob", Some(&contact), Some(600), "xreg", 1),
        );
        assert_eq!(status(&bob), 200);
        let after = metrics();
        assert!(after.contains("engine=\"xdp_copy\""), "{after}");
        let d = |n| metric(&after, n) - metric(&before, n);
        assert!(
            d("sipedge_xdp_rx_frames_total") >= 2,
            "requests came in as XDP frames"
        );
        assert!(
            d("sipedge_xdp_tx_frames_total") >= 2,
            "replies went out as XDP frames"
        );

        // ICMP is still the kernel's.
        assert!(
            icmp_echo([198, 18, 21, 1]),
            "ping is answered by the kernel"
        );

        // A request the edge originates (the relayed MESSAGE) to a peer whose MAC it learned
        // goes out as an XDP frame too.
        let carol = Client::new("198.18.21.2");
        let contact = format!("<sip:carol@{}>", carol.addr());
        carol.send(
            edge(),
            &register(&carol, "carol", Some(&contact), Some(600), "xreg-c", 1),
        );
        assert_eq!(status(&carol), 200);
        let before = metrics();
        let alice = Client::new("198.18.21.2");
        alice.send(edge(), &message(&alice, "carol", "hi carol"));
        let got = carol
            .recv(Duration::from_secs(5))
            .expect("the MESSAGE reaches carol");
        assert_eq!(Message::parse(&got).unwrap().body(), b"hi carol");
        let after = metrics();
        let d = |n| metric(&after, n) - metric(&before, n);
        assert!(
            d("sipedge_xdp_tx_frames_total") >= 1,
            "the relayed MESSAGE went out as a frame"
        );
        assert_eq!(
            d("sipedge_xdp_tx_via_socket_total"),
            0,
            "nothing needed the socket"
        );

        // A peer the edge never heard from (dave registers from another address and never
        // answers): the first relayed MESSAGE goes through the socket, so the kernel resolves
        // dave's MAC (ARP); the kernel's neighbour table (rtnetlink) then sends the next one
        // as a frame. Learning MACs from received frames never could: dave sends none.
        let dave = Client::new("198.18.21.3");
        let contact = format!("<sip:dave@{}>", dave.addr());
        bob.send(
            edge(),
            &register(&bob, "dave", Some(&contact), Some(600), "xreg-d", 1),
        );
        assert_eq!(status(&bob), 200);
        alice.send(edge(), &message_n(&alice, "dave", "hi dave", 1));
        recv_message(&dave, "hi dave");
        std::thread::sleep(Duration::from_millis(300));
        let before = metrics();
        alice.send(edge(), &message_n(&alice, "dave", "hi again", 2));
        recv_message(&dave, "hi again");
        let after = metrics();
        let d = |n| metric(&after, n) - metric(&before, n);
        assert!(
            d("sipedge_xdp_tx_frames_total") >= 1,
            "the second MESSAGE to a silent peer went out as a frame"
        );
        assert_eq!(
            d("sipedge_xdp_tx_via_socket_total"),
            0,
            "the silent peer's MAC came from the kernel"
        );

        // A 3000-byte MESSAGE: fragments in (program passes them; the kernel reassembles for
        // the fallback socket), relayed to bob above the MTU (through the socket, fragmented).
        let body = "x".repeat(3000);
        alice.send(edge(), &message(&alice, "bob", &body));
        let got = loop {
            let bytes = bob
                .recv(Duration::from_secs(5))
                .expect("the large MESSAGE reaches bob");
            if bytes.starts_with(b"MESSAGE") {
                break bytes;
            }
        };
        assert_eq!(Message::parse(&got).unwrap().body(), body.as_bytes());
        let relayed = metrics();
        assert!(metric(&relayed, "sipedge_xdp_tx_via_socket_total") >= 1);

        // SIGTERM: the link goes with the process.
        let _ = Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status();
        let st = child.0.wait().unwrap();
        assert!(st.success(), "sipedge exits cleanly: {st}");
        assert!(wait_detached(), "the XDP program is detached after SIGTERM");

        // kill -9: the bpf_link is released with the process too, and a new start attaches.
        let mut child = rig.start();
        wait_answering(&probe);
        assert!(xdp_attached());
        child.0.kill().unwrap();
        let _ = child.0.wait();
        assert!(wait_detached(), "the XDP program is detached after kill -9");
        let child = rig.start();
        wait_answering(&probe);
        // (The first probe may have been queued on the UDP socket before the program was
        // attached; the next ones are the XDP path's.)
        let mut served = 0;
        for n in 0..20 {
            probe.send(edge(), &options(edge(), &probe, 100 + n));
            assert_eq!(status(&probe), 200);
            served = metric(&metrics(), "sipedge_xdp_rx_frames_total");
            if served >= 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(served >= 1, "served over XDP again");
        drop(child);
        drop(rig);
    })
    .join()
    .unwrap();
}
