//! A virtual network around one or more cores: phones send, the edge answers, time moves by
//! hand.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;

use sipedge_core::{Core, CoreConfig, LocalId, Millis, ProxyConfig, ShardId};
use sipedge_msg::{HeaderName, Message};

pub const DOMAIN: &str = "edge.example.com";
pub const EDGE: &str = "192.0.2.1:5060";
pub const ALICE: &str = "203.0.113.5:5070";
pub const BOB: &str = "198.51.100.10:5062";
pub const BOB2: &str = "198.51.100.11:5064";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn config() -> CoreConfig {
    CoreConfig {
        domains: vec![DOMAIN.into(), "192.0.2.1".into()],
        proxy: ProxyConfig {
            advertise: vec![addr(EDGE)],
            ..ProxyConfig::default()
        },
        ..CoreConfig::default()
    }
}

/// One datagram the edge sent.
#[derive(Debug, Clone)]
pub struct Out {
    pub to: SocketAddr,
    pub local: LocalId,
    pub bytes: Vec<u8>,
}

impl Out {
    pub fn msg(&self) -> Message<'_> {
        let m = Message::parse(&self.bytes).unwrap();
        if let Err(e) = m.validate() {
            panic!(
                "{e:?} in what the edge sent:\n{}",
                String::from_utf8_lossy(&self.bytes)
            );
        }
        m
    }
    pub fn status(&self) -> Option<u16> {
        self.msg().status()
    }
    pub fn method(&self) -> Option<String> {
        self.msg()
            .method()
            .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
    }
    pub fn header(&self, name: HeaderName) -> Option<String> {
        self.msg()
            .header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
    pub fn top_branch(&self) -> String {
        let m = self.msg();
        String::from_utf8_lossy(m.top_via().unwrap().branch().unwrap()).into_owned()
    }
    pub fn via_count(&self) -> usize {
        self.msg().vias().count()
    }
    pub fn ruri(&self) -> String {
        String::from_utf8_lossy(self.msg().request_uri_raw().unwrap()).into_owned()
    }
    /// "INVITE" or "180" etc., for compact assertions.
    pub fn label(&self) -> String {
        self.method()
            .unwrap_or_else(|| self.status().unwrap().to_string())
    }
}

/// Feeds `bytes` from `from` into `core` at `now` and drains what it sent.
pub fn send(core: &mut Core, now: u64, from: &str, bytes: &[u8]) -> Vec<Out> {
    core.handle_datagram(Millis(now), LocalId(0), addr(from), bytes);
    drain(core)
}

pub fn drain(core: &mut Core) -> Vec<Out> {
    let mut out = Vec::new();
    while let Some(t) = core.poll_transmit() {
        out.push(Out {
            to: t.remote,
            local: t.local,
            bytes: t.data.to_vec(),
        });
    }
    out
}

/// Runs every timer due up to `to` (in the order the core asks) and returns what went out.
pub fn advance(core: &mut Core, to: u64) -> Vec<Out> {
    let mut out = Vec::new();
    while let Some(due) = core.poll_timeout() {
        if due.0 > to {
            break;
        }
        core.handle_timeout(due);
        out.extend(drain(core));
    }
    core.handle_timeout(Millis(to));
    out.extend(drain(core));
    out
}

/// Registers `user` with contact `contact` from `source`.
pub fn register(core: &mut Core, now: u64, user: &str, contact: &str, source: &str) {
    let r = format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {source};branch=z9hG4bKreg{user}{source}\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=r1\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: reg-{user}-{source}\r\nCSeq: 1 REGISTER\r\nContact: <{contact}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    );
    let out = send(core, now, source, r.as_bytes());
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].status(), Some(200), "REGISTER accepted");
}

/// A request from alice.
pub fn request(method: &str, ruri: &str, branch: &str, call: &str, extra: &str) -> Vec<u8> {
    // ACK and CANCEL carry the INVITE's CSeq number (§17.1.1.3, §9.1).
    let cseq = 1;
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {ALICE};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@{DOMAIN}>;tag=alice1\r\nTo: <sip:bob@{DOMAIN}>\r\nCall-ID: {call}\r\nCSeq: {cseq} {method}\r\nContact: <sip:alice@{ALICE}>\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

pub fn invite(call: &str) -> Vec<u8> {
    request(
        "INVITE",
        &format!("sip:bob@{DOMAIN}"),
        &format!("z9hG4bK-{call}"),
        call,
        "",
    )
}

/// The response a UAS sends to the request `req` (as it arrived at the UAS).
pub fn respond(req: &Out, code: u16, reason: &str, to_tag: &str, extra: &str) -> Vec<u8> {
    let m = req.msg();
    let mut s = format!("SIP/2.0 {code} {reason}\r\n");
    for v in m.header_values(HeaderName::Via) {
        s.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    for v in m.header_values(HeaderName::RecordRoute) {
        s.push_str(&format!("Record-Route: {}\r\n", String::from_utf8_lossy(v)));
    }
    let h = |n| String::from_utf8_lossy(m.header(n).unwrap()).into_owned();
    let to = h(HeaderName::To);
    let to = if to.contains("tag=") || to_tag.is_empty() {
        to
    } else {
        format!("{to};tag={to_tag}")
    };
    s.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n{extra}Content-Length: 0\r\n\r\n",
        h(HeaderName::From),
        h(HeaderName::CallId),
        h(HeaderName::CSeq)
    ));
    s.into_bytes()
}

/// Two cores of one two-shard edge.
pub fn two_shards() -> (Core, Core) {
    let mk = |i| {
        Core::new(CoreConfig {
            shard: ShardId(i),
            shards: 2,
            seed: 7,
            ..config()
        })
    };
    (mk(0), mk(1))
}

/// Delivers every mesh message between the two cores until none is left.
pub fn pump(a: &mut Core, b: &mut Core, now: u64) -> (Vec<Out>, Vec<Out>) {
    let (mut oa, mut ob) = (Vec::new(), Vec::new());
    loop {
        let mut moved = false;
        while let Some((to, m)) = a.poll_shard_msg() {
            assert_eq!(to, ShardId(1));
            b.handle_shard_msg(Millis(now), ShardId(0), m);
            moved = true;
        }
        while let Some((to, m)) = b.poll_shard_msg() {
            assert_eq!(to, ShardId(0));
            a.handle_shard_msg(Millis(now), ShardId(1), m);
            moved = true;
        }
        oa.extend(drain(a));
        ob.extend(drain(b));
        if !moved {
            return (oa, ob);
        }
    }
}

/// Digest for INVITEs (user `carol`, HA1 of zeros), none for REGISTER, and an IP-auth trunk at
/// 198.51.100.200 in account `trunk`: the relay tests' and the transport tests' auth.
#[allow(dead_code)] // not every test binary that includes the harness uses it
pub(crate) fn trunk_auth_spec() -> sipedge_core::auth::AuthSpec {
    use sipedge_core::auth::{AccountSpec, AuthMode, AuthSettings, AuthSpec, IpAuthSpec, UserSpec};
    AuthSpec {
        settings: AuthSettings {
            realm: DOMAIN.into(),
            register: AuthMode::None,
            invite: AuthMode::Digest,
            ..AuthSettings::default()
        },
        accounts: vec![AccountSpec {
            name: "trunk".into(),
            ..AccountSpec::default()
        }],
        users: vec![UserSpec {
            username: "carol".into(),
            ha1_md5: Some([b'0'; 32]),
            ..UserSpec::default()
        }],
        ip_auth: vec![IpAuthSpec {
            cidr: "198.51.100.200/32".parse().unwrap(),
            account: "trunk".into(),
            cli_auth: false,
            register: Vec::new(),
        }],
    }
}
