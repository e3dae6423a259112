//! The REGISTER we send and the framing of what comes back (RFC 3261 §18.3: Content-Length
//! frames a message on a stream).

use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::cli::{Cli, Transport};

/// Appends REGISTER number `cseq` of user `user` from `local`.
pub(crate) fn register(cli: &Cli, user: usize, cseq: u32, local: SocketAddr, out: &mut Vec<u8>) {
    let t = match cli.transport {
        Transport::Tcp => ("TCP", "tcp"),
        Transport::Tls => ("TLS", "tls"),
    };
    let mut s = String::with_capacity(400);
    let _ = write!(
        s,
        "REGISTER sip:{d} SIP/2.0\r\n\
         Via: SIP/2.0/{vt} {local};branch=z9hG4bK-sl{user}-{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:u{user}@{d}>;tag=t{user}\r\n\
         To: <sip:u{user}@{d}>\r\n\
         Call-ID: sl{user}@streamload\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:u{user}@{local};transport={tp}>\r\n\
         Expires: {e}\r\n\
         User-Agent: streamload\r\n\
         Content-Length: 0\r\n\r\n",
        d = cli.domain,
        vt = t.0,
        tp = t.1,
        e = cli.expires,
    );
    out.extend_from_slice(s.as_bytes());
}

/// One whole response at the front of `buf`: (status, length), or `None` while incomplete.
/// CRLF keepalive pongs before it are skipped (their length is counted).
pub(crate) fn next_response(buf: &[u8]) -> Option<Result<(u16, usize), String>> {
    let skip = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    let msg = &buf[skip..];
    if msg.is_empty() {
        return if skip > 0 { Some(Ok((0, skip))) } else { None };
    }
    let end = memchr::memmem::find(msg, b"\r\n\r\n")? + 4;
    let head = &msg[..end];
    if !head.starts_with(b"SIP/2.0 ") || head.len() < 12 {
        return Some(Err(format!(
            "not a response: {:?}",
            String::from_utf8_lossy(&head[..head.len().min(40)])
        )));
    }
    let status = std::str::from_utf8(&head[8..11])
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    let body = content_length(head).unwrap_or(0);
    let total = skip + end + body;
    if buf.len() < total {
        return None;
    }
    Some(Ok((status, total)))
}

fn content_length(head: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(head).ok()?;
    text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_responses_with_and_without_bodies() {
        let a = b"SIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabcSIP/2.0 401 X\r\nl: 0\r\n\r\n";
        let (s, n) = next_response(a).unwrap().unwrap();
        assert_eq!((s, n), (200, 40));
        let (s, n2) = next_response(&a[n..]).unwrap().unwrap();
        assert_eq!((s, n + n2), (401, a.len()));
        assert!(next_response(&a[..20]).is_none());
        assert_eq!(next_response(b"\r\n").unwrap().unwrap(), (0, 2));
    }
}
