//! Helpers for the scenario unit tests.

use std::net::SocketAddr;

use sipedge_msg::{HeaderName, Message};

use super::{Params, UaCtx, Users};

/// The local address test UA `ua` has.
pub(crate) fn local(ua: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 41, 1], 4000 + ua as u16))
}

/// A context for UA `ua` with `branch`.
pub(crate) fn ctx(ua: usize, branch: &str) -> UaCtx<'_> {
    UaCtx {
        index: ua,
        local: local(ua),
        branch,
    }
}

/// Parameters for `uas` UAs against 127.0.40.1:5060, domain `localhost`.
pub(crate) fn params(uas: usize) -> Params {
    Params {
        uas,
        target: SocketAddr::from(([127, 0, 40, 1], 5060)),
        ruri: None,
        domain: "localhost".into(),
        aors: None,
        expires: 3600,
        users: Users::default(),
        run_id: 0xabc,
        ping_interval_s: 1.0,
    }
}

/// A response to `req` as a server would send it: status line `status`, the request's Vias,
/// From, To (tagged), Call-ID and CSeq, then `extra` header lines.
pub(crate) fn reply_to(req: &[u8], status: &str, extra: &[&str]) -> Vec<u8> {
    let m = Message::parse(req).expect("the request parses");
    let mut s = format!("SIP/2.0 {status}\r\n");
    for v in m.header_values(HeaderName::Via) {
        s += &format!("Via: {}\r\n", String::from_utf8_lossy(v));
    }
    let h = |n| String::from_utf8_lossy(m.header(n).expect("header")).into_owned();
    s += &format!("From: {}\r\n", h(HeaderName::From));
    let to = h(HeaderName::To);
    let to = if to.contains(";tag=") {
        to
    } else {
        format!("{to};tag=srv")
    };
    s += &format!(
        "To: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
        h(HeaderName::CallId),
        h(HeaderName::CSeq)
    );
    for e in extra {
        s += e;
        s += "\r\n";
    }
    s += "Content-Length: 0\r\n\r\n";
    s.into_bytes()
}
