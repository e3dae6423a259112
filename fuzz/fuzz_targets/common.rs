//! Shared by the fuzz targets: touch every accessor of a parsed message, and the invariants
//! that must hold for any message, valid or not.

#![allow(dead_code)]

use std::hint::black_box;

use sipedge_msg::{
    Contact, Credentials, HeaderName, Message, NameAddr, ParamIter, Params, ParseError, Reply, Uri,
    Via,
};

/// Every named variant of [`HeaderName`] (keep in step with `crates/sipedge-msg/src/header.rs`).
pub const KNOWN_HEADERS: &[HeaderName] = &[
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::MaxForwards,
    HeaderName::Contact,
    HeaderName::Expires,
    HeaderName::MinExpires,
    HeaderName::Route,
    HeaderName::RecordRoute,
    HeaderName::Path,
    HeaderName::ContentLength,
    HeaderName::ContentType,
    HeaderName::ContentEncoding,
    HeaderName::Authorization,
    HeaderName::ProxyAuthorization,
    HeaderName::WwwAuthenticate,
    HeaderName::ProxyAuthenticate,
    HeaderName::Supported,
    HeaderName::Require,
    HeaderName::ProxyRequire,
    HeaderName::Unsupported,
    HeaderName::Allow,
    HeaderName::AllowEvents,
    HeaderName::Accept,
    HeaderName::UserAgent,
    HeaderName::Server,
    HeaderName::Event,
    HeaderName::Subject,
    HeaderName::ReferTo,
    HeaderName::ReferredBy,
    HeaderName::SessionExpires,
    HeaderName::Identity,
    HeaderName::Date,
    HeaderName::RetryAfter,
    HeaderName::PAssertedIdentity,
    HeaderName::Timestamp,
    HeaderName::Other,
];

fn params(p: Params<'_>) {
    black_box(p.raw());
    black_box(p.is_empty());
    let it: ParamIter<'_> = p.iter();
    for (name, value) in it {
        black_box((name, value));
        // A lookup by a name that the iterator yielded must find something.
        assert!(
            p.has(name),
            "Params::has misses an iterated name {:?}",
            name
        );
    }
    black_box(p.value(b"tag"));
    black_box(p.get(b"lr"));
}

pub fn uri(u: &Uri<'_>) {
    black_box((u.raw(), u.scheme(), u.user(), u.password(), u.host()));
    black_box((u.host_unbracketed(), u.port(), u.headers(), u.is_sip()));
    black_box((u.transport(), u.maddr(), u.is_loose_route()));
    black_box(u.user_eq(b"alice", true));
    black_box(u.user_eq(u.user().unwrap_or_default(), false));
    params(u.params());
    black_box(sipedge_msg::unescape(u.raw()).count());
    black_box(sipedge_msg::eq_unescaped(u.raw(), u.host()));
    black_box(sipedge_msg::eq_unescaped_ignore_case(u.raw(), u.raw()));
}

pub fn via(v: &Via<'_>) {
    black_box((
        v.raw(),
        v.protocol(),
        v.transport(),
        v.host(),
        v.host_unbracketed(),
    ));
    black_box((
        v.port(),
        v.branch(),
        v.has_rfc3261_branch(),
        v.received(),
        v.rport(),
    ));
    black_box((v.maddr(), v.ttl()));
    params(v.params());
}

pub fn name_addr(a: &NameAddr<'_>) {
    black_box((a.raw(), a.display_name(), a.tag()));
    uri(a.uri());
    params(a.params());
}

pub fn contact(c: &Contact<'_>) {
    if let Some(a) = c.addr() {
        name_addr(a);
    }
    black_box((c.expires(), c.q(), c.instance(), c.reg_id()));
}

pub fn credentials(c: &Credentials<'_>) {
    black_box((c.scheme, c.is_digest(), c.nc));
    for q in [
        c.username,
        c.realm,
        c.nonce,
        c.uri,
        c.response,
        c.algorithm,
        c.cnonce,
        c.opaque,
        c.qop,
    ]
    .into_iter()
    .flatten()
    {
        black_box(q.raw());
        black_box(q.unescaped().count());
        black_box(q.eq_bytes(b"auth"));
        let mut out = Vec::new();
        q.write_unescaped(&mut out);
        black_box(out);
    }
}

fn error(e: ParseError) {
    black_box(e.kind.label());
    match e.reply() {
        Reply::Status(code, reason) => {
            assert!(
                (400..=599).contains(&code),
                "error reply {code} is not 4xx/5xx"
            );
            assert!(!reason.is_empty());
        }
        Reply::Drop => {}
    }
    black_box(e.to_string());
}

fn res<T>(r: Result<T, ParseError>, f: impl FnOnce(T)) {
    match r {
        Ok(v) => f(v),
        Err(e) => error(e),
    }
}

/// Calls every accessor and runs every lazy iterator to its end. Returns `validate()`.
pub fn exercise(msg: &Message<'_>) -> Result<(), ParseError> {
    let buf = msg.as_bytes();
    black_box((msg.is_request(), msg.is_response(), msg.request_uri_raw()));
    assert_ne!(msg.is_request(), msg.is_response());
    black_box((msg.status(), msg.reason(), msg.method()));
    if let Some(m) = msg.method() {
        black_box(m.as_bytes());
        black_box(m.to_string());
    }
    res(msg.request_uri(), |u| uri(&u));
    assert!(msg.body().len() <= buf.len());
    assert!(msg.body_offset() <= buf.len());
    black_box(msg.content_length());
    if let Some(cl) = msg.content_length() {
        // The body is Content-Length bytes, or fewer when the datagram is short (a defect).
        assert!(msg.body().len() <= cl as usize);
    }

    assert_eq!(msg.headers().count(), msg.header_index().len());
    for (h, r) in msg.header_index().iter().zip(msg.headers()) {
        assert_eq!(h.name(), r.name);
        black_box((h.line(), h.value(), h.line().len(), h.value().is_empty()));
        black_box(h.line().of(buf));
        // A header can always be found again by the name it was written with.
        assert!(
            msg.header_named(r.name_bytes).is_some(),
            "header_named({:?}) finds nothing",
            String::from_utf8_lossy(r.name_bytes)
        );
    }
    for &name in KNOWN_HEADERS {
        black_box((name.as_str(), name.is_list(), name.is_single()));
        black_box(msg.header(name));
        black_box(msg.header_values(name).count());
        black_box(msg.header_items(name).count());
        black_box(msg.count(name));
    }
    black_box(msg.header_named(b"X-Fuzz"));
    black_box(msg.header_named(b"v"));

    res(msg.top_via(), |v| via(&v));
    for v in msg.vias() {
        res(v, |v| via(&v));
    }
    res(msg.from(), |a| name_addr(&a));
    res(msg.to(), |a| name_addr(&a));
    res(msg.call_id(), |c| {
        black_box(c);
    });
    res(msg.cseq(), |c| {
        black_box((c.seq, c.method));
    });
    res(msg.max_forwards(), |m| {
        black_box(m);
    });
    res(msg.expires(), |e| {
        black_box(e);
    });
    for c in msg.contacts() {
        res(c, |c| contact(&c));
    }
    for r in msg.routes().chain(msg.record_routes()).chain(msg.paths()) {
        res(r, |a| name_addr(&a));
    }
    res(msg.content_type(), |ct| {
        if let Some(ct) = ct {
            black_box((ct.media_type, ct.subtype, ct.is(b"application", b"sdp")));
            params(ct.params);
        }
    });
    for c in msg.authorization().chain(msg.proxy_authorization()) {
        res(c, |c| credentials(&c));
    }
    black_box(msg.supported().count());
    black_box(msg.require().count());
    black_box(msg.proxy_require().count());
    black_box(msg.allow().count());
    black_box(msg.supports(b"path"));
    black_box(msg.user_agent());
    res(msg.event(), |e| {
        if let Some(e) = e {
            black_box((e.package, e.id()));
            params(e.params);
        }
    });

    let v = msg.validate();
    match v {
        Ok(()) => valid_invariants(msg),
        Err(e) => {
            error(e);
            black_box(msg.error_reply(e));
            assert!(
                e.at as usize <= buf.len(),
                "error offset {} past the message ({})",
                e.at,
                buf.len()
            );
        }
    }
    // validate() is a pure function of the message.
    assert_eq!(v, msg.validate());
    v
}

/// What a message that passed `validate()` promises to its users (sipedge-core calls these
/// accessors right after `validate()` and must not meet an error there).
fn valid_invariants(msg: &Message<'_>) {
    let top = msg.top_via();
    assert!(
        top.is_ok(),
        "validate() passed but top_via() fails: {top:?}"
    );
    let first = msg.vias().next();
    assert!(
        matches!(first, Some(Ok(ref v)) if Ok(v) == top.as_ref()),
        "validate() passed but vias().next() = {first:?} differs from top_via() = {top:?}"
    );
    assert!(msg.from().is_ok() && msg.to().is_ok());
    assert!(msg.call_id().is_ok() && msg.cseq().is_ok());
    assert!(msg.max_forwards().is_ok() && msg.expires().is_ok());
    assert!(msg.content_type().is_ok());
    assert!(msg.contacts().all(|c| c.is_ok()));
    assert!(msg.routes().chain(msg.record_routes()).all(|r| r.is_ok()));
    if let Some(m) = msg.method() {
        assert!(msg.request_uri().is_ok());
        assert_eq!(msg.cseq().map(|c| c.method), Ok(m));
    } else {
        let s = msg.status().unwrap_or(0);
        assert!(
            (100..=699).contains(&s),
            "validate() passed a response with status {s}"
        );
    }
}
