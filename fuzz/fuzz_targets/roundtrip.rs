//! parse → serialize → parse must give the same message.
//!
//! 1. Forwarding, for EVERY message that `Message::parse` accepts (valid or not): the bytes
//!    written by `write_forward` with no edits (`ForwardEdits::default()`) parse again, and
//!    the re-parsed message has
//!    * the same kind, method bytes, status code, reason phrase and Request-URI bytes;
//!    * the same header list, compared through `Message::headers()` entry by entry: resolved
//!      name, name as written (`v` stays `v`), whitespace-trimmed value (folding inside the
//!      value is kept byte for byte). The one allowed difference: when the original had no
//!      Content-Length, the copy ends with one more header, `Content-Length: <body length>`,
//!      which `write_forward` adds on purpose (RFC 3261 §18.3, so the copy can go over TCP);
//!    * the same body bytes.
//!    When the original passed `validate()` the copy must pass too. (An invalid original may
//!    become valid: malformed header lines are not in the index and are not copied.)
//!    Forwarding the copy again must give exactly the same bytes (idempotence).
//!    The re-parse uses the default limits plus room for that one added line (one more
//!    header, 32 more bytes): a message right at the limits legitimately grows past them.
//! 2. Responses, for every REQUEST that passes `validate()` (and `validated()`, which must
//!    agree, and whose parsed top Via and To tag must give `write_response` the same bytes):
//!    `write_response` (with and without
//!    a To tag, `received` and `rport`) gives a response that parses, passes `validate()`,
//!    carries the request's Call-ID, CSeq, From and the same Via list (the top Via only gains
//!    `received` / `rport=PORT`), and a To tag.

#![no_main]

mod common;
mod known;

use libfuzzer_sys::fuzz_target;
use sipedge_msg::{
    write_forward, write_response, ForwardEdits, HeaderName, HeaderRef, Message, ParseOptions,
    RPort, ResponseSpec, Via, DEFAULT_MAX_HEADERS, DEFAULT_MAX_MESSAGE_BYTES,
};

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::parse(data) else {
        return;
    };
    let validated = msg.validated();
    assert_eq!(
        msg.validate(),
        validated.map(|_| ()),
        "validate and validated disagree"
    );
    forward_roundtrip(&msg, validated.is_ok());
    if let (Ok(v), true) = (validated, msg.is_request()) {
        let spec = ResponseSpec {
            status: 200,
            reason: b"OK",
            to_tag: Some(b"fz7"),
            received: Some(b"192.0.2.1"),
            rport: Some(5062),
            ..ResponseSpec::default()
        };
        response_check(&msg, &spec);
        // The writer given the parsed top Via and To tag writes the same bytes.
        let (mut plain, mut parsed) = (Vec::new(), Vec::new());
        write_response(&mut plain, &msg, &spec).finish(b"");
        let with = ResponseSpec {
            top_via: Some(&v.top_via),
            to_has_tag: Some(v.to_has_tag()),
            ..spec
        };
        write_response(&mut parsed, &msg, &with).finish(b"");
        assert_eq!(plain, parsed, "pre-parsed write_response differs");
        response_check(
            &msg,
            &ResponseSpec {
                status: 486,
                reason: b"Busy Here",
                ..ResponseSpec::default()
            },
        );
    }
});

fn reparse_opts() -> ParseOptions {
    ParseOptions {
        max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES + 32,
        max_headers: DEFAULT_MAX_HEADERS + 1,
        ..ParseOptions::default()
    }
}

fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

fn forward_roundtrip(msg: &Message<'_>, valid: bool) {
    let mut out = Vec::new();
    write_forward(&mut out, msg, &ForwardEdits::default());
    let re = match Message::parse_with(&out, &reparse_opts()) {
        Ok(re) => re,
        Err(e) => panic!("write_forward output does not parse ({e}): {}", show(&out)),
    };

    assert_eq!(
        msg.is_request(),
        re.is_request(),
        "kind differs: {}",
        show(&out)
    );
    assert_eq!(
        msg.method().map(|m| m.as_bytes()),
        re.method().map(|m| m.as_bytes()),
        "method differs: {}",
        show(&out)
    );
    assert_eq!(msg.status(), re.status(), "status differs: {}", show(&out));
    assert_eq!(msg.reason(), re.reason(), "reason differs: {}", show(&out));
    assert_eq!(
        msg.request_uri_raw(),
        re.request_uri_raw(),
        "Request-URI differs: {}",
        show(&out)
    );

    let before: Vec<HeaderRef<'_>> = msg.headers().collect();
    let after: Vec<HeaderRef<'_>> = re.headers().collect();
    let had_cl = before.iter().any(|h| h.name == HeaderName::ContentLength);
    let expected_len = before.len() + usize::from(!had_cl);
    if after.len() != expected_len || before.iter().zip(&after).any(|(a, b)| a != b) {
        let fmt = |hs: &[HeaderRef<'_>]| {
            hs.iter()
                .map(|h| format!("{:?} {:?}={:?}", h.name, show(h.name_bytes), show(h.value)))
                .collect::<Vec<_>>()
                .join("\n  ")
        };
        panic!(
            "headers differ after write_forward\n before:\n  {}\n after:\n  {}\n output: {}",
            fmt(&before),
            fmt(&after),
            show(&out)
        );
    }
    if !had_cl {
        let added = &after[before.len()];
        assert_eq!(added.name, HeaderName::ContentLength);
        assert_eq!(added.value, msg.body().len().to_string().as_bytes());
    }
    assert_eq!(msg.body(), re.body(), "body differs: {}", show(&out));

    if valid {
        let v = re.validate();
        assert!(
            v.is_ok(),
            "valid message invalid after write_forward ({v:?}): {}",
            show(&out)
        );
    }

    let mut again = Vec::new();
    write_forward(&mut again, &re, &ForwardEdits::default());
    assert!(
        again == out,
        "write_forward is not idempotent:\n once:  {}\n twice: {}",
        show(&out),
        show(&again)
    );
}

fn response_check(req: &Message<'_>, spec: &ResponseSpec<'_>) {
    let mut out = Vec::new();
    write_response(&mut out, req, spec).finish(b"");
    let resp = match Message::parse(&out) {
        Ok(r) => r,
        Err(e) => panic!("write_response output does not parse ({e}): {}", show(&out)),
    };
    if let Err(e) = resp.validate() {
        panic!(
            "write_response output fails validate() ({e:?}, {e})\n request:  {}\n response: {}",
            show(req.as_bytes()),
            show(&out)
        );
    }
    assert_eq!(resp.status(), Some(spec.status));
    assert_eq!(
        resp.call_id(),
        req.call_id(),
        "Call-ID differs: {}",
        show(&out)
    );
    assert_eq!(resp.cseq(), req.cseq(), "CSeq differs: {}", show(&out));
    assert_eq!(resp.header(HeaderName::From), req.header(HeaderName::From));

    let req_tag = req.to().ok().and_then(|t| t.tag());
    let resp_tag = resp.to().ok().and_then(|t| t.tag());
    match (req_tag, spec.to_tag) {
        (Some(t), _) => assert_eq!(resp_tag, Some(t), "To tag changed: {}", show(&out)),
        (None, Some(t)) => assert_eq!(
            resp_tag,
            Some(t),
            "response To has no usable tag\n request:  {}\n response: {}",
            show(req.as_bytes()),
            show(&out)
        ),
        (None, None) => assert_eq!(resp_tag, None),
    }

    let req_vias: Vec<Via<'_>> = req.vias().map(|v| v.expect("validated")).collect();
    let resp_vias: Vec<Via<'_>> = match resp.vias().collect() {
        Ok(v) => v,
        Err(e) => panic!("response Via does not parse ({e:?}): {}", show(&out)),
    };
    assert_eq!(
        req_vias.len(),
        resp_vias.len(),
        "Via count differs\n request:  {}\n response: {}",
        show(req.as_bytes()),
        show(&out)
    );
    for (i, (a, b)) in req_vias.iter().zip(&resp_vias).enumerate() {
        if i > 0 || (spec.received.is_none() && spec.rport.is_none()) {
            assert_eq!(a.raw(), b.raw(), "Via #{i} differs: {}", show(&out));
            continue;
        }
        assert_eq!(
            (a.protocol(), a.transport(), a.host(), a.port(), a.branch()),
            (b.protocol(), b.transport(), b.host(), b.port(), b.branch()),
            "top Via differs: {}",
            show(&out)
        );
        if let Some(r) = spec.received {
            assert_eq!(
                b.received(),
                Some(r),
                "top Via lacks received: {}",
                show(&out)
            );
        }
        let want = match (a.rport(), spec.rport) {
            (RPort::Requested, Some(p)) => RPort::Port(p),
            (r, _) => r,
        };
        assert_eq!(b.rport(), want, "top Via rport: {}", show(&out));
    }
    common::exercise(&resp).expect("checked above");
}
