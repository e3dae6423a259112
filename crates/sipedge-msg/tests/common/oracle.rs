//! Oracle glue for `tests/differential.rs`: reads the same fields out of a SIP message with
//! our parser, with `ezk-sip-types` and with `rsip`, and renders each field into one
//! normalised string so that the three can be compared with `==`.
//!
//! Normalisation (the only liberties taken; each follows an equivalence the RFC defines):
//!
//! * URIs are compared component by component, not as written (RFC 3261 §19.1.4):
//!   the scheme, the host, parameter names and parameter values are case-insensitive and
//!   are lowercased; `%HH` escapes in the user part, the password, parameters and headers are
//!   decoded (ezk hands them back decoded, rsip and we hand them back as written); an IP
//!   address host is compared as an address (ezk and rsip parse it, so `[2001:DB8::1]` and
//!   `[2001:db8:0::1]` are the same host); the order of parameters is kept.
//! * ezk's `Params` has no iterator: its parameters are read back from its own rendering
//!   (`;name=value`, `?h=v&h2=v2`), which escapes every character outside its sets, so the
//!   rendering is decoded again before comparison.
//! * Methods are compared as the oracle renders them (both oracles print known methods in
//!   upper case, whatever case was on the wire; a difference there is a real disagreement).
//! * A field an oracle cannot decode is rendered as `Err(..)`; the message itself counts as
//!   accepted when its start line and header section parse.
//!
//! The message-level glue for ezk mirrors `ezk-sip-core`'s `parse_complete_sip` (the
//! `PullParser` + `MessageLine` + `Line` + `Headers::insert` loop), since `ezk-sip-types` has
//! no whole-message entry point of its own.

use std::fmt;
use std::net::IpAddr;

use sipedge_msg::{Message, Scheme, Uri};

/// The fields the differential tests compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Field {
    Method,
    RequestUri,
    Status,
    CallId,
    CSeq,
    FromUri,
    FromTag,
    ToUri,
    ToTag,
    TopViaBranch,
}

impl Field {
    pub(crate) const ALL: [Field; 10] = [
        Field::Method,
        Field::RequestUri,
        Field::Status,
        Field::CallId,
        Field::CSeq,
        Field::FromUri,
        Field::FromTag,
        Field::ToUri,
        Field::ToTag,
        Field::TopViaBranch,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::Method => "method",
            Field::RequestUri => "Request-URI",
            Field::Status => "status",
            Field::CallId => "Call-ID",
            Field::CSeq => "CSeq",
            Field::FromUri => "From URI",
            Field::FromTag => "From tag",
            Field::ToUri => "To URI",
            Field::ToTag => "To tag",
            Field::TopViaBranch => "top Via branch",
        }
    }
}

/// One field's rendering, or why it could not be read.
pub(crate) type Value = Result<String, String>;

/// The fields of one message as one parser sees them. Fields that do not apply (the method
/// of a response) are absent.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    pub(crate) fields: Vec<(Field, Value)>,
}

impl View {
    fn set(&mut self, field: Field, value: Value) {
        self.fields.push((field, value));
    }

    pub(crate) fn get(&self, field: Field) -> Option<&Value> {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v)
    }
}

/// The oracles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Oracle {
    Ezk,
    Rsip,
}

impl Oracle {
    pub(crate) const ALL: [Oracle; 2] = [Oracle::Ezk, Oracle::Rsip];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Oracle::Ezk => "ezk",
            Oracle::Rsip => "rsip",
        }
    }

    /// Parses with this oracle; `Err` when it rejects the message as a whole.
    pub(crate) fn view(self, buf: &[u8]) -> Result<View, String> {
        match self {
            Oracle::Ezk => ezk(buf),
            Oracle::Rsip => rsip(buf),
        }
    }
}

/// A disagreement between our parser and an oracle on one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diff {
    pub(crate) field: Field,
    pub(crate) ours: Value,
    pub(crate) theirs: Value,
}

/// Every field on which `theirs` differs from `ours` (fields only one side has are skipped).
pub(crate) fn diff(ours: &View, theirs: &View) -> Vec<Diff> {
    let mut out = Vec::new();
    for field in Field::ALL {
        if let (Some(o), Some(t)) = (ours.get(field), theirs.get(field)) {
            if o != t {
                out.push(Diff {
                    field,
                    ours: o.clone(),
                    theirs: t.clone(),
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Normalised URIs.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NHost {
    Ip(IpAddr),
    Name(String),
}

/// A URI reduced to the components RFC 3261 §19.1.4 compares. A URI of another scheme
/// than sip, sips and tel is kept whole (`opaque`, scheme lowercased): our parser carries
/// such URIs as written (RFC 3261 §19.1, absoluteURI), so it is compared with the oracle's
/// rendering of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NUri {
    pub(crate) opaque: Option<String>,
    pub(crate) scheme: String,
    pub(crate) user: Option<Vec<u8>>,
    pub(crate) password: Option<Vec<u8>>,
    pub(crate) host: NHost,
    pub(crate) port: Option<u16>,
    pub(crate) params: Vec<(String, Option<String>)>,
    pub(crate) headers: Vec<(String, Option<String>)>,
}

fn show_bytes(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

impl fmt::Display for NUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(o) = &self.opaque {
            return write!(f, "{o}");
        }
        write!(f, "{}:", self.scheme)?;
        if let Some(user) = &self.user {
            write!(f, "user[{}]", show_bytes(user))?;
            if let Some(pw) = &self.password {
                write!(f, ":pw[{}]", show_bytes(pw))?;
            }
            f.write_str("@")?;
        }
        match &self.host {
            NHost::Ip(ip) => write!(f, "ip[{ip}]")?,
            NHost::Name(n) => write!(f, "{n}")?,
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        for (n, v) in &self.params {
            write!(f, ";{n}")?;
            if let Some(v) = v {
                write!(f, "={v}")?;
            }
        }
        for (i, (n, v)) in self.headers.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            write!(f, "{n}")?;
            if let Some(v) = v {
                write!(f, "={v}")?;
            }
        }
        Ok(())
    }
}

/// `%HH`-decodes (a malformed escape stays as written).
pub(crate) fn pct_decode(s: &[u8]) -> Vec<u8> {
    sipedge_msg::unescape(s).collect()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn norm_param(name: &[u8], value: Option<&[u8]>) -> (String, Option<String>) {
    (
        lossy(&pct_decode(name)).to_lowercase(),
        value.map(|v| lossy(&pct_decode(v)).to_lowercase()),
    )
}

fn norm_host(raw: &str) -> NHost {
    let inner = raw
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(raw);
    match inner.parse::<IpAddr>() {
        Ok(ip) => NHost::Ip(ip),
        Err(_) => NHost::Name(raw.to_ascii_lowercase()),
    }
}

/// Splits a `;a=b;c` (or `?a=b&c`) rendering into normalised pairs.
fn split_params(s: &str, sep: char) -> Vec<(String, Option<String>)> {
    s.split(sep)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => norm_param(n.as_bytes(), Some(v.as_bytes())),
            None => norm_param(p.as_bytes(), None),
        })
        .collect()
}

/// Our URI, normalised.
pub(crate) fn norm_ours(u: &Uri<'_>) -> NUri {
    let scheme = match u.scheme() {
        Scheme::Sip => "sip".to_string(),
        Scheme::Sips => "sips".to_string(),
        Scheme::Tel => "tel".to_string(),
        Scheme::Other(s) => lossy(s).to_ascii_lowercase(),
    };
    let opaque = matches!(u.scheme(), Scheme::Other(_)).then(|| {
        let raw = lossy(u.raw());
        let (_, rest) = raw.split_once(':').unwrap_or_default();
        format!("{scheme}:{rest}")
    });
    NUri {
        opaque,
        scheme,
        user: u.user().map(pct_decode),
        password: u.password().map(pct_decode),
        host: norm_host(&lossy(u.host())),
        port: u.port(),
        params: u.params().iter().map(|(n, v)| norm_param(n, v)).collect(),
        headers: u
            .headers()
            .map(|h| split_params(&lossy(h), '&'))
            .unwrap_or_default(),
    }
}

fn render_tag(tag: Option<String>) -> String {
    match tag {
        Some(t) => format!("tag={t}"),
        None => "(no tag)".to_string(),
    }
}

fn render_branch(branch: Option<String>) -> String {
    match branch {
        Some(b) => format!("branch={b}"),
        None => "(no branch)".to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Our parser.

/// Our parser's view: `Err` when `parse` or `validate` fails.
pub(crate) fn ours(buf: &[u8]) -> Result<View, String> {
    let msg = Message::parse(buf).map_err(|e| format!("parse: {e}"))?;
    msg.validate().map_err(|e| format!("validate: {e}"))?;
    let mut v = View::default();
    if msg.is_request() {
        let method = msg
            .method()
            .map(|m| lossy(m.as_bytes()))
            .unwrap_or_default();
        v.set(Field::Method, Ok(method));
        v.set(
            Field::RequestUri,
            msg.request_uri()
                .map(|u| norm_ours(&u).to_string())
                .map_err(|e| e.to_string()),
        );
    } else {
        v.set(Field::Status, Ok(msg.status().unwrap_or(0).to_string()));
    }
    v.set(
        Field::CallId,
        msg.call_id().map(lossy).map_err(|e| e.to_string()),
    );
    v.set(
        Field::CSeq,
        msg.cseq()
            .map(|c| format!("{} {}", c.seq, lossy(c.method.as_bytes())))
            .map_err(|e| e.to_string()),
    );
    for (uri_f, tag_f, addr) in [
        (Field::FromUri, Field::FromTag, msg.from()),
        (Field::ToUri, Field::ToTag, msg.to()),
    ] {
        match addr {
            Ok(a) => {
                v.set(uri_f, Ok(norm_ours(a.uri()).to_string()));
                v.set(tag_f, Ok(render_tag(a.tag().map(lossy))));
            }
            Err(e) => {
                v.set(uri_f, Err(e.to_string()));
                v.set(tag_f, Err(e.to_string()));
            }
        }
    }
    v.set(
        Field::TopViaBranch,
        msg.top_via()
            .map(|via| render_branch(via.branch().map(lossy)))
            .map_err(|e| e.to_string()),
    );
    Ok(v)
}

// ---------------------------------------------------------------------------------------
// ezk-sip-types.

fn norm_ezk(u: &ezk_sip_types::uri::SipUri) -> NUri {
    use ezk_sip_types::host::Host;
    use ezk_sip_types::uri::SipUriUserPart;
    let (user, password) = match &u.user_part {
        SipUriUserPart::Empty => (None, None),
        SipUriUserPart::User(user) => (Some(user.as_bytes().to_vec()), None),
        SipUriUserPart::UserPw(up) => (
            Some(up.user.as_bytes().to_vec()),
            Some(pct_decode(up.password.as_bytes())),
        ),
    };
    let host = match &u.host_port.host {
        Host::IP4(ip) => NHost::Ip(IpAddr::V4(*ip)),
        Host::IP6(ip) => NHost::Ip(IpAddr::V6(*ip)),
        Host::Name(n) => NHost::Name(n.as_str().to_ascii_lowercase()),
    };
    NUri {
        opaque: None,
        scheme: if u.sips { "sips" } else { "sip" }.to_string(),
        user,
        password,
        host,
        port: u.host_port.port,
        params: split_params(&u.uri_params.to_string(), ';'),
        headers: split_params(&u.header_params.to_string().replacen('?', "", 1), '&'),
    }
}

/// ezk's view; `Err` when the start line or a header line does not parse.
pub(crate) fn ezk(buf: &[u8]) -> Result<View, String> {
    use ezk_sip_types::header::typed::{CSeq, CallID, FromTo, Via};
    use ezk_sip_types::msg::{Line, MessageLine, PullParser};
    use ezk_sip_types::parse::Parse;
    use ezk_sip_types::{Headers, Name};

    let buffer = bytes::Bytes::copy_from_slice(buf);
    let mut parser = PullParser::new(&buffer, 0);
    let mut start = None;
    let mut headers = Headers::new();
    for item in &mut parser {
        let line = item.map_err(|_| "head: incomplete (no empty line)".to_string())?;
        let line = std::str::from_utf8(line).map_err(|_| "head: line is not UTF-8".to_string())?;
        if start.is_none() {
            let (_, l) =
                MessageLine::parse(&buffer)(line).map_err(|e| format!("start line: {e:?}"))?;
            start = Some(l);
        } else {
            let (_, l) = Line::parse(&buffer, line).map_err(|e| format!("header line: {e:?}"))?;
            headers.insert(l.name, l.value);
        }
    }
    let start = start.ok_or_else(|| "head: empty".to_string())?;

    let mut v = View::default();
    match &start {
        MessageLine::Request(rl) => {
            v.set(Field::Method, Ok(rl.method.to_string()));
            v.set(Field::RequestUri, Ok(norm_ezk(&rl.uri).to_string()));
        }
        MessageLine::Response(sl) => {
            v.set(Field::Status, Ok(sl.code.into_u16().to_string()));
        }
    }
    v.set(
        Field::CallId,
        headers
            .get_named::<CallID>()
            .map(|c| c.0.as_str().to_string())
            .map_err(|e| e.to_string()),
    );
    v.set(
        Field::CSeq,
        headers
            .get_named::<CSeq>()
            .map(|c| format!("{} {}", c.cseq, c.method))
            .map_err(|e| e.to_string()),
    );
    for (name, uri_f, tag_f) in [
        (Name::FROM, Field::FromUri, Field::FromTag),
        (Name::TO, Field::ToUri, Field::ToTag),
    ] {
        match headers.get::<FromTo>(name) {
            Ok(a) => {
                v.set(uri_f, Ok(norm_ezk(&a.uri.uri).to_string()));
                v.set(
                    tag_f,
                    Ok(render_tag(a.tag.as_ref().map(|t| t.as_str().to_string()))),
                );
            }
            Err(e) => {
                v.set(uri_f, Err(e.to_string()));
                v.set(tag_f, Err(e.to_string()));
            }
        }
    }
    v.set(
        Field::TopViaBranch,
        match headers.get_named::<Vec<Via>>() {
            Ok(vias) => match vias.first() {
                Some(via) => Ok(render_branch(
                    via.params.get_val("branch").map(|b| b.as_str().to_string()),
                )),
                None => Err("no Via value decodes".to_string()),
            },
            Err(e) => Err(e.to_string()),
        },
    );
    Ok(v)
}

// ---------------------------------------------------------------------------------------
// rsip.

fn norm_rsip(u: &rsip::Uri) -> NUri {
    use rsip::{Host, Scheme};
    let scheme = match &u.scheme {
        Some(Scheme::Sip) => "sip".to_string(),
        Some(Scheme::Sips) => "sips".to_string(),
        Some(Scheme::Other(s)) => s.to_ascii_lowercase(),
        None => "(none)".to_string(),
    };
    let host = match &u.host_with_port.host {
        Host::IpAddr(ip) => NHost::Ip(*ip),
        Host::Domain(d) => NHost::Name(d.to_string().to_ascii_lowercase()),
    };
    let params = u
        .params
        .iter()
        .flat_map(|p| split_params(&p.to_string(), ';'))
        .collect();
    let opaque = matches!(u.scheme, Some(Scheme::Other(_))).then(|| {
        let raw = u.to_string();
        let (_, rest) = raw.split_once(':').unwrap_or_default();
        format!("{scheme}:{rest}")
    });
    NUri {
        opaque,
        scheme,
        user: u.auth.as_ref().map(|a| pct_decode(a.user.as_bytes())),
        password: u
            .auth
            .as_ref()
            .and_then(|a| a.password.as_ref().map(|p| pct_decode(p.as_bytes()))),
        host,
        port: u.host_with_port.port.map(|p| *p.value()),
        params,
        headers: Vec::new(),
    }
}

/// rsip's view; `Err` when `SipMessage::try_from` fails.
pub(crate) fn rsip(buf: &[u8]) -> Result<View, String> {
    use rsip::prelude::*;

    let msg = rsip::SipMessage::try_from(buf).map_err(|e| format!("message: {e}"))?;
    let mut v = View::default();
    match &msg {
        rsip::SipMessage::Request(r) => {
            v.set(Field::Method, Ok(r.method.to_string()));
            v.set(Field::RequestUri, Ok(norm_rsip(&r.uri).to_string()));
        }
        rsip::SipMessage::Response(r) => {
            v.set(Field::Status, Ok(r.status_code.code().to_string()));
        }
    }
    v.set(
        Field::CallId,
        msg.call_id_header()
            .map(|c| c.value().to_string())
            .map_err(|e| e.to_string()),
    );
    v.set(
        Field::CSeq,
        msg.cseq_header()
            .and_then(|c| c.typed())
            .map(|c| format!("{} {}", c.seq, c.method))
            .map_err(|e| e.to_string()),
    );
    match msg.from_header().and_then(|h| h.typed()) {
        Ok(a) => {
            v.set(Field::FromUri, Ok(norm_rsip(&a.uri).to_string()));
            v.set(
                Field::FromTag,
                Ok(render_tag(a.tag().map(|t| t.value().to_string()))),
            );
        }
        Err(e) => {
            v.set(Field::FromUri, Err(e.to_string()));
            v.set(Field::FromTag, Err(e.to_string()));
        }
    }
    match msg.to_header().and_then(|h| h.typed()) {
        Ok(a) => {
            v.set(Field::ToUri, Ok(norm_rsip(&a.uri).to_string()));
            v.set(
                Field::ToTag,
                Ok(render_tag(a.tag().map(|t| t.value().to_string()))),
            );
        }
        Err(e) => {
            v.set(Field::ToUri, Err(e.to_string()));
            v.set(Field::ToTag, Err(e.to_string()));
        }
    }
    v.set(
        Field::TopViaBranch,
        msg.via_header()
            .and_then(|h| h.typed())
            .map(|via| render_branch(via.branch().map(|b| b.value().to_string())))
            .map_err(|e| e.to_string()),
    );
    Ok(v)
}
