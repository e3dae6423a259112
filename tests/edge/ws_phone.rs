//! Issue 19 over the binary with a real WebSocket client: `tests/interop/clients/ws_phone.py`
//! (Debian's python3-websockets) registers over `ws://` and over `wss://` (trusting the
//! test CA) with `Sec-WebSocket-Protocol: sip`, then receives a call from a UDP caller
//! through the edge — INVITE, 180/200 back, the ACK and the caller's BYE down its
//! connection (RFC 7118, RFC 5626 flow), the BYE's 200 back to the caller. Loopback
//! 127.0.61.10–19. Skipped, visibly, when no python3 with `websockets` is installed.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sipedge_msg::Message;

use crate::common::{Client, Edge};
use crate::protect::{next_final, status};

const IP: &str = "127.0.61.10";
const UDP: u16 = 26070;
const WS: u16 = 26072;
const WSS: u16 = 26073;
const LINE_WAIT: Duration = Duration::from_secs(10);

/// Debian's python3 (the package installs there; another python3 first in PATH, e.g.
/// pyenv's, may lack it), or any python3 that imports `websockets`.
fn python() -> Option<&'static str> {
    for py in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(py)
            .args(["-c", "import websockets"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    eprintln!(
        "\n*** SKIPPED: no python3 with `websockets` (apt-get install python3-websockets) ***\n"
    );
    None
}

/// The phone process, killed when dropped; its stdout lines arrive on `lines`.
struct Phone {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Phone {
    fn start(py: &str, url: &str, user: &str, ca: Option<&std::path::Path>) -> Phone {
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/interop/clients/ws_phone.py");
        let mut cmd = Command::new(py);
        cmd.arg(script).args(["--url", url, "--user", user]);
        if let Some(ca) = ca {
            cmd.arg("--ca").arg(ca);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Phone { child, lines }
    }

    fn expect(&self, want: &str) {
        let got = self.lines.recv_timeout(LINE_WAIT);
        assert_eq!(got.as_deref(), Ok(want), "the phone's next step");
    }

    fn exit_ok(&mut self) -> bool {
        for _ in 0..100 {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A UDP caller calls `user` through the edge; the phone answers; ACK; BYE → 200.
fn call(edge: &Edge, phone: &mut Phone, user: &str, caller_ip: &str) {
    let caller = Client::new(caller_ip);
    let me = caller.addr();
    let id = format!("ws-call-{user}");
    caller.send(
        edge.sip,
        format!(
            "INVITE sip:{user}@edge.test SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{id}-1;rport\r\nMax-Forwards: 70\r\nFrom: <sip:caller@edge.test>;tag=caller-tag\r\nTo: <sip:{user}@edge.test>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{me}>\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    );
    phone.expect("invite");
    let ok = next_final(&caller);
    assert_eq!(status(&ok), Some(200), "{}", String::from_utf8_lossy(&ok));
    let m = Message::parse(&ok).unwrap();
    let route: Vec<String> = m
        .headers()
        .filter(|h| h.name_bytes.eq_ignore_ascii_case(b"Record-Route"))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .collect();
    assert!(!route.is_empty(), "the edge record-routes the call");
    let text = String::from_utf8_lossy(&ok);
    assert!(
        text.contains("transport=ws"),
        "the callee's Record-Route names WS: {text}"
    );
    let to = String::from_utf8_lossy(m.header_named(b"To").unwrap()).into_owned();
    let target = String::from_utf8_lossy(m.header_named(b"Contact").unwrap())
        .trim_matches(|c| c == '<' || c == '>')
        .to_string();
    // A UAC's route set is the Record-Route reversed (RFC 3261 §12.1.2).
    let route: Vec<String> = route.into_iter().rev().collect();
    let in_dialog = |method: &str, cseq: u32| {
        format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-{id}-{method};rport\r\nRoute: {route}\r\nMax-Forwards: 70\r\nFrom: <sip:caller@edge.test>;tag=caller-tag\r\nTo: {to}\r\nCall-ID: {id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
            route = route.join(", ")
        )
    };
    caller.send(edge.sip, in_dialog("ACK", 1).as_bytes());
    phone.expect("ack");
    caller.send(edge.sip, in_dialog("BYE", 2).as_bytes());
    let fin = next_final(&caller);
    assert_eq!(status(&fin), Some(200), "{}", String::from_utf8_lossy(&fin));
    phone.expect("bye");
    assert!(phone.exit_ok(), "the phone exits 0");
}

#[test]
fn a_websocket_phone_registers_over_ws_and_wss_and_receives_a_call() {
    let Some(py) = python() else {
        return;
    };
    let pki = crate::common::temp_dir("ws-phone-pki");
    let _ca = crate::tls_ws::write_pki_for(pki.path(), IP);
    let (cert, key, ca) = (
        pki.path().join("cert.pem"),
        pki.path().join("key.pem"),
        pki.path().join("ca.pem"),
    );
    std::fs::write(&ca, &_ca).unwrap();
    let edge = Edge::start_listen(
        "ws-phone",
        IP,
        UDP,
        2,
        "auto",
        // One entry: `start_listen` adds each after the UDP one by a text replace that
        // matches only once.
        &[format!("ws:{IP}:{WS}\", \"wss:{IP}:{WSS}")],
        &format!(
            // Overload shedding off (a loaded test machine's slow turn would answer 503).
            "\n[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n\n[overload]\nenabled = false\n",
            cert.display(),
            key.display()
        ),
        &[],
    );

    let mut ws = Phone::start(py, &format!("ws://{IP}:{WS}"), "wsbob", None);
    ws.expect("registered");
    call(&edge, &mut ws, "wsbob", "127.0.61.11");

    let mut wss = Phone::start(py, &format!("wss://{IP}:{WSS}"), "wssbob", Some(&ca));
    wss.expect("registered");
    call(&edge, &mut wss, "wssbob", "127.0.61.12");
}
