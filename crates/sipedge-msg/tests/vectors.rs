//! The conformance corpus (`tests/vectors/`: RFC 4475 and RFC 5118 torture messages, plus
//! regression vectors from fuzzing): every valid message parses, validates and reads back its
//! key fields; every invalid one fails with its documented reply; nothing panics.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sipedge_msg::{Message, Reply};

#[derive(Debug, Deserialize)]
struct Manifest {
    vector: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ExpectedReply {
    Code(u16),
    Word(String),
}

#[derive(Debug, Deserialize)]
struct Vector {
    file: String,
    section: String,
    outcome: String,
    reply: ExpectedReply,
    #[serde(default)]
    liberal_ok: bool,
    kind: Option<String>,
    method: Option<String>,
    status: Option<u16>,
    request_uri: Option<String>,
    call_id: Option<String>,
    cseq: Option<u32>,
    cseq_method: Option<String>,
    from_uri: Option<String>,
    from_tag: Option<String>,
    to_uri: Option<String>,
    to_tag: Option<String>,
    via_count: Option<usize>,
    top_via_host: Option<String>,
    top_via_port: Option<u16>,
    top_via_branch: Option<String>,
    top_via_transport: Option<String>,
    top_via_received: Option<String>,
    contact_count: Option<usize>,
    contact_uri: Option<String>,
    content_length: Option<u32>,
    max_forwards: Option<u8>,
    body_len: Option<usize>,
}

/// Invalid vectors the RFC lets a liberal element accept, which this parser accepts, each
/// with the RFC's words. Any other invalid vector must be refused.
const ACCEPTED_LIBERALLY: &[(&str, &str)] = &[(
    "rfc4475/baddate.sip",
    "RFC 4475 §3.1.2.12: an element 'shouldn't [reject] unless the contents of the Date header \
     field were actually important to its processing' — the edge does not use Date.",
)];

/// Invalid vectors answered with a reply other than the manifest's first choice, which the
/// RFC names as acceptable.
const ALTERNATIVE_REPLIES: &[(&str, u16, &str)] = &[(
    "rfc4475/mismatch02.sip",
    400,
    "RFC 4475 §3.1.2.18: '501 Not Implemented ... A 400 Bad Request is also acceptable'",
)];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn check_valid(v: &Vector, bytes: &[u8]) -> Result<(), String> {
    let m = Message::parse(bytes).map_err(|e| format!("parse failed: {e}"))?;
    m.validate().map_err(|e| format!("validate failed: {e}"))?;
    let mut errs = Vec::new();
    let mut check = |what: &str, ok: bool, got: String| {
        if !ok {
            errs.push(format!("{what}: got {got}"));
        }
    };
    if let Some(kind) = &v.kind {
        check(
            "kind",
            (kind == "request") == m.is_request(),
            format!("{}", m.is_request()),
        );
    }
    if let Some(method) = &v.method {
        let got = m.method().map(|x| text(x.as_bytes())).unwrap_or_default();
        check("method", &got == method, got);
    }
    if let Some(status) = v.status {
        check(
            "status",
            m.status() == Some(status),
            format!("{:?}", m.status()),
        );
    }
    if let Some(ruri) = &v.request_uri {
        let got = text(m.request_uri_raw().unwrap_or_default());
        check("request_uri", &got == ruri, got);
        m.request_uri()
            .map_err(|e| format!("request_uri does not parse: {e}"))?;
    }
    if let Some(call_id) = &v.call_id {
        let got = text(m.call_id().unwrap());
        check("call_id", &got == call_id, got);
    }
    let cseq = m.cseq().unwrap();
    if let Some(n) = v.cseq {
        check("cseq", cseq.seq == n, cseq.seq.to_string());
    }
    if let Some(method) = &v.cseq_method {
        let got = text(cseq.method.as_bytes());
        check("cseq_method", &got == method, got);
    }
    let from = m.from().unwrap();
    let to = m.to().unwrap();
    if let Some(u) = &v.from_uri {
        check(
            "from_uri",
            from.uri().raw() == u.as_bytes(),
            text(from.uri().raw()),
        );
    }
    check(
        "from_tag",
        from.tag().map(text) == v.from_tag,
        format!("{:?}", from.tag().map(text)),
    );
    if let Some(u) = &v.to_uri {
        check(
            "to_uri",
            to.uri().raw() == u.as_bytes(),
            text(to.uri().raw()),
        );
    }
    check(
        "to_tag",
        to.tag().map(text) == v.to_tag,
        format!("{:?}", to.tag().map(text)),
    );
    if let Some(n) = v.via_count {
        check(
            "via_count",
            m.vias().count() == n,
            m.vias().count().to_string(),
        );
    }
    let via = m.top_via().unwrap();
    if let Some(h) = &v.top_via_host {
        check("top_via_host", via.host() == h.as_bytes(), text(via.host()));
    }
    check(
        "top_via_port",
        via.port() == v.top_via_port,
        format!("{:?}", via.port()),
    );
    if let Some(b) = &v.top_via_branch {
        check(
            "top_via_branch",
            via.branch() == Some(b.as_bytes()),
            format!("{:?}", via.branch().map(text)),
        );
    }
    if let Some(t) = &v.top_via_transport {
        check(
            "top_via_transport",
            via.transport() == t.as_bytes(),
            text(via.transport()),
        );
    }
    if let Some(r) = &v.top_via_received {
        check(
            "top_via_received",
            via.received() == Some(r.as_bytes()),
            format!("{:?}", via.received().map(text)),
        );
    }
    if let Some(n) = v.contact_count {
        check(
            "contact_count",
            m.contacts().count() == n,
            m.contacts().count().to_string(),
        );
    }
    if let Some(u) = &v.contact_uri {
        let c = m.contacts().next().unwrap().unwrap();
        let got = c
            .addr()
            .map(|a| text(a.uri().raw()))
            .unwrap_or_else(|| "*".into());
        check("contact_uri", &got == u, got);
    }
    if let Some(n) = v.content_length {
        check(
            "content_length",
            m.content_length() == Some(n),
            format!("{:?}", m.content_length()),
        );
    }
    if let Some(n) = v.max_forwards {
        let got = m.max_forwards().unwrap();
        check("max_forwards", got == Some(n), format!("{got:?}"));
    }
    if let Some(n) = v.body_len {
        check("body_len", m.body().len() == n, m.body().len().to_string());
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("; "))
    }
}

/// The reply an edge sends for this datagram, or `None` when it accepts it.
fn reply_for(bytes: &[u8]) -> Option<Reply> {
    match Message::parse(bytes) {
        Err(_) => Some(Reply::Drop),
        Ok(m) => m.validate().err().map(|e| m.error_reply(e)),
    }
}

fn check_invalid(v: &Vector, bytes: &[u8]) -> Result<(), String> {
    let got = reply_for(bytes);
    if v.liberal_ok && got.is_none() {
        return if ACCEPTED_LIBERALLY.iter().any(|(f, _)| *f == v.file) {
            Ok(())
        } else {
            Err("accepted an invalid message not listed in ACCEPTED_LIBERALLY".into())
        };
    }
    let Some(got) = got else {
        return Err("accepted an invalid message".into());
    };
    let ok = match (&v.reply, got) {
        (ExpectedReply::Word(w), Reply::Drop) => w == "drop",
        (ExpectedReply::Code(c), Reply::Status(code, _)) => {
            *c == code
                || ALTERNATIVE_REPLIES
                    .iter()
                    .any(|(f, alt, _)| *f == v.file && *alt == code)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {:?}, got {got:?}", v.reply))
    }
}

#[test]
fn rfc_torture_vectors() {
    let text = std::fs::read_to_string(root().join("manifest.toml")).unwrap();
    let manifest: Manifest = toml::from_str(&text).unwrap();
    assert!(manifest.vector.len() >= 60, "corpus went missing");
    let mut failures = Vec::new();
    for v in &manifest.vector {
        let bytes = std::fs::read(root().join(&v.file)).unwrap();
        let result = std::panic::catch_unwind(|| match v.outcome.as_str() {
            "valid" => check_valid(v, &bytes),
            "invalid" => check_invalid(v, &bytes),
            other => Err(format!("unknown outcome {other}")),
        })
        .unwrap_or_else(|_| Err("PANIC".into()));
        if let Err(e) = result {
            failures.push(format!("{} ({}): {e}", v.file, v.section));
        }
    }
    for (f, why) in ACCEPTED_LIBERALLY
        .iter()
        .map(|(f, w)| (*f, *w))
        .chain(ALTERNATIVE_REPLIES.iter().map(|(f, _, w)| (*f, *w)))
    {
        assert!(
            manifest.vector.iter().any(|v| v.file == f),
            "{f} listed but not in the corpus ({why})"
        );
    }
    assert!(
        failures.is_empty(),
        "{} vector(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Regression inputs (fuzzer findings): none may panic, and each has its expected reply in
/// its file name's manifest entry or simply must not panic.
#[test]
fn regression_inputs_do_not_panic() {
    let dir = root().join("regress");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "sip") {
            let bytes = std::fs::read(&p).unwrap();
            let _ = reply_for(&bytes);
            if let Ok(m) = Message::parse(&bytes) {
                let _ = m.vias().count();
                let _ = m.contacts().count();
                let _ = m.routes().count();
                let _ = m.authorization().count();
            }
        }
    }
}
