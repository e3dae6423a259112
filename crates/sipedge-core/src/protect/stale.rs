//! Stale drop (issue 17, "keep the queue short under pressure so what is admitted is
//! answered quickly"): while the shell measures that the shard's receive queue holds more
//! than it can serve in `[overload] max_queue_delay_ms` ([`crate::Core::handle_queue_delay`]),
//! new requests are read and dropped without reply, before the full parse, so the backlog
//! drains at the cost of a read and a look at a few header lines per datagram instead of
//! being served seconds late.
//!
//! What may go: a request (not a response, RFC 3261 §7.2) whose method is not ACK, CANCEL
//! or BYE and whose To header has no tag — an out-of-dialog request (§12: a request inside a
//! dialog carries the remote tag in To; §8.1.1.2: a new one has none). Its client
//! retransmits it (§17.1.1.2 timer A, §17.1.2.2 timer E), and the retransmission meets a
//! shorter queue. Responses, ACK, CANCEL, BYE, requests with a To tag, CRLF keepalives,
//! STUN and anything that does not look like a request are never dropped here (when in
//! doubt, keep: a wrong keep costs a late answer, a wrong drop a lost BYE).

/// True when `bytes` is a new, out-of-dialog request the stale drop may discard: a
/// request line opening with a method token other than ACK, CANCEL and BYE, and no `tag`
/// parameter in the To header (`To` or compact `t`, any case, folded lines included).
/// Reads only up to the end of the headers; costs a scan of the header bytes.
pub(crate) fn droppable_when_stale(bytes: &[u8]) -> bool {
    let Some(sp) = bytes.iter().take(32).position(|&b| b == b' ') else {
        return false; // no method token: a keepalive, STUN, garbage
    };
    let method = &bytes[..sp];
    if method.is_empty() || !method.iter().all(|b| b.is_ascii_uppercase()) {
        return false;
    }
    if method == b"SIP/2.0" || matches!(method, b"ACK" | b"CANCEL" | b"BYE") {
        return false;
    }
    let mut lines = bytes.split(|&b| b == b'\n').skip(1);
    let mut in_to = false;
    for line in lines.by_ref() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break; // end of the headers
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            // A folded continuation line (RFC 3261 §7.3.1) of the header before.
            if in_to && has_tag(line) {
                return false;
            }
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            in_to = false;
            continue;
        };
        let name = line[..colon].trim_ascii();
        in_to = name.eq_ignore_ascii_case(b"to") || name.eq_ignore_ascii_case(b"t");
        if in_to && has_tag(&line[colon + 1..]) {
            return false;
        }
    }
    true
}

/// A `;tag` parameter in (part of) a To header value, any case, spaces around `;` allowed
/// (RFC 3261 §25.1 SEMI). A `;tag=` inside the URI's angle brackets counts too: keeping
/// such a request is the safe mistake.
fn has_tag(value: &[u8]) -> bool {
    value.split(|&b| b == b';').skip(1).any(|param| {
        let p = param.trim_ascii_start();
        p.len() >= 3
            && p[..3].eq_ignore_ascii_case(b"tag")
            && matches!(
                p.get(3..).and_then(|r| r.trim_ascii_start().first()),
                Some(b'=')
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, to: &str) -> Vec<u8> {
        format!(
            "{method} sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             From: <sip:b@example.com>;tag=1\r\n{to}\r\nCall-ID: x\r\nCSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn new_requests_may_go() {
        for m in ["REGISTER", "INVITE", "OPTIONS", "MESSAGE", "SUBSCRIBE"] {
            assert!(
                droppable_when_stale(&req(m, "To: <sip:a@example.com>")),
                "{m}"
            );
        }
        assert!(droppable_when_stale(&req(
            "INVITE",
            "To: <sip:a@example.com;tagx=1>;tagged=2"
        )));
    }

    #[test]
    fn in_dialog_requests_and_responses_stay() {
        for to in [
            "To: <sip:a@example.com>;tag=9",
            "t: <sip:a@example.com> ; TAG = 9",
            "TO:sip:a@example.com;x=1;tag=9",
            "To: <sip:a@example.com>\r\n ;tag=9",
        ] {
            assert!(!droppable_when_stale(&req("INVITE", to)), "{to}");
        }
        for m in ["ACK", "BYE", "CANCEL"] {
            assert!(
                !droppable_when_stale(&req(m, "To: <sip:a@example.com>")),
                "{m}"
            );
        }
        assert!(!droppable_when_stale(
            b"SIP/2.0 200 OK\r\nTo: <sip:a@example.com>\r\n\r\n"
        ));
        assert!(!droppable_when_stale(b"\r\n\r\n"));
        assert!(!droppable_when_stale(b"\x00\x01\x00\x00"));
        assert!(!droppable_when_stale(b"garbage"));
        assert!(!droppable_when_stale(b"lower sip:x SIP/2.0\r\n\r\n"));
    }

    #[test]
    fn a_to_tag_after_the_body_does_not_count() {
        let mut m = req("REGISTER", "To: <sip:a@example.com>");
        m.extend_from_slice(b"To: x;tag=1\r\n");
        assert!(droppable_when_stale(&m));
    }
}
