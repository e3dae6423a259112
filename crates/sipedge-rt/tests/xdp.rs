//! The AF_XDP engine on a veth pair between two network namespaces (native XDP, copy mode):
//! an echo served by the engine, with the frames counted on the XDP path, ICMP still answered
//! by the kernel, a fragmented datagram still delivered (through the fallback socket), and the
//! program gone from the interface once the engine is dropped.
//!
//! Needs root and `ip` (iproute2); skipped with a message otherwise. Names: namespaces and
//! veths `x21rt*` (namespaces `x21-rt*`), addresses 198.18.21.0/24.
#![allow(unsafe_code, clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sipedge_rt::{bind_udp_reuseport, Engine, EngineConfig, EngineKind, IoMode, WakeFd, XdpConfig};

const NS_A: &str = "x21-rta";
const NS_B: &str = "x21-rtb";

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

fn ns_ip(ns: &str, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ip"])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The two namespaces and their veth pair; removed on drop.
struct Rig;

impl Rig {
    fn new() -> Option<Rig> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 || !ip(&["-V"]) {
            eprintln!("skipping the AF_XDP test: needs root and iproute2 (`ip`)");
            return None;
        }
        let _ = ip(&["netns", "del", NS_A]);
        let _ = ip(&["netns", "del", NS_B]);
        for cmd in [
            vec!["netns", "add", NS_A],
            vec!["netns", "add", NS_B],
            vec![
                "link", "add", "x21rta", "type", "veth", "peer", "name", "x21rtb",
            ],
            vec!["link", "set", "x21rta", "netns", NS_A],
            vec!["link", "set", "x21rtb", "netns", NS_B],
            vec!["-n", NS_A, "addr", "add", "198.18.21.1/24", "dev", "x21rta"],
            vec!["-n", NS_B, "addr", "add", "198.18.21.2/24", "dev", "x21rtb"],
            vec!["-n", NS_A, "link", "set", "x21rta", "up"],
            vec!["-n", NS_B, "link", "set", "x21rtb", "up"],
            vec!["-n", NS_A, "link", "set", "lo", "up"],
            vec!["-n", NS_B, "link", "set", "lo", "up"],
        ] {
            assert!(ip(&cmd), "ip {cmd:?} failed");
        }
        Some(Rig)
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

/// Sends one ICMP echo request to `to` from the calling thread's namespace and waits up to
/// 2 s for the reply (a raw socket: no `ping` binary needed).
fn icmp_echo(to: std::net::Ipv4Addr) -> bool {
    // SAFETY: plain socket creation; checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
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
    let mut pkt = [8u8, 0, 0, 0, 0x12, 0x34, 0, 1, b'x', b'd', b'p', b'!'];
    let mut sum: u32 = pkt
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    pkt[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(to.octets()),
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
        if sent < 0 {
            break;
        }
        // SAFETY: receives into a live buffer of its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 28 {
            break;
        }
        let ihl = usize::from(buf[0] & 0xf) * 4;
        if buf[12..16] == to.octets() && buf[ihl] == 0 && buf[ihl + 4..ihl + 6] == [0x12, 0x34] {
            ok = true;
            break;
        }
    }
    // SAFETY: closes the fd opened above, once.
    unsafe { libc::close(fd) };
    ok
}

#[test]
fn xdp_echo_icmp_fragments_and_detach_on_a_veth_pair() {
    echo_run(0);
    // The same with busy polling on (`xdp_busy_poll_us`): the options are accepted and the
    // receive path that drives the queue from the engine's thread still delivers everything.
    echo_run(50);
}

fn echo_run(busy_poll_us: u32) {
    let Some(_rig) = Rig::new() else { return };
    let server: SocketAddr = "198.18.21.1:5060".parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let srv = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            enter(NS_A);
            let sock = bind_udp_reuseport(server, &Default::default()).unwrap();
            let cfg = EngineConfig {
                xdp: XdpConfig {
                    interface: "x21rta".into(),
                    busy_poll_us,
                    ..XdpConfig::default()
                },
                ..EngineConfig::default()
            };
            let mut engine = Engine::new(IoMode::Xdp, vec![sock], WakeFd::new().unwrap(), &cfg)
                .unwrap_or_else(|e| panic!("xdp engine: {e}"));
            ready_tx.send(engine.kind()).unwrap();
            let mut got = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                engine
                    .wait(
                        Some(Duration::from_millis(5)),
                        || false,
                        |d| {
                            got.push((d.socket, d.remote, d.data.to_vec()));
                        },
                    )
                    .unwrap();
                for (s, r, data) in got.drain(..) {
                    assert!(engine.send(s, r, &data));
                }
            }
            engine.flush().unwrap();
            engine.stats().clone()
        })
    };
    let kind = ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        kind,
        EngineKind::Xdp { zero_copy: false },
        "veth runs copy mode"
    );
    assert!(
        ns_ip(NS_A, &["link", "show", "x21rta"]).contains("prog/xdp"),
        "the program is attached"
    );

    let client = std::thread::spawn(move || {
        enter(NS_B);
        let c = UdpSocket::bind("198.18.21.2:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 8192];
        for i in 0..50 {
            let msg = format!("OPTIONS {i}");
            c.send_to(msg.as_bytes(), server).unwrap();
            let (n, from) = c.recv_from(&mut buf).expect("echo over XDP");
            assert_eq!((&buf[..n], from), (msg.as_bytes(), server));
        }
        // 3000 bytes: fragmented on the 1500-byte link, passed to the kernel by the program,
        // reassembled, received and echoed through the UDP socket.
        let big = vec![b'x'; 3000];
        c.send_to(&big, server).unwrap();
        let (n, _) = c
            .recv_from(&mut buf)
            .expect("the fragmented datagram is echoed");
        assert_eq!(n, 3000);
    });
    client.join().unwrap();
    let ping_ok = std::thread::spawn(|| {
        enter(NS_B);
        icmp_echo("198.18.21.1".parse().unwrap())
    })
    .join()
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    let stats = srv.join().unwrap();
    assert!(
        stats.xdp_rx_frames >= 50,
        "requests came through XDP: {stats:?}"
    );
    // The first answer may go through the socket: the kernel learned the client's MAC from
    // its ARP request (a STALE entry), and a stale neighbour is re-confirmed by the kernel.
    assert!(
        stats.xdp_tx_frames >= 49,
        "answers went out through XDP: {stats:?}"
    );
    assert_eq!(stats.xdp_native, 1, "veth takes native XDP");
    assert!(
        stats.xdp_tx_via_socket >= 1,
        "the large echo went through the socket"
    );
    assert!(
        stats.datagrams_in >= 51,
        "the fragmented datagram reached the fallback socket: {stats:?}"
    );
    assert!(ping_ok, "ICMP echo is still answered by the kernel");
    assert!(
        !ns_ip(NS_A, &["link", "show", "x21rta"]).contains("prog/xdp"),
        "the program is detached once the engine is dropped"
    );
}
