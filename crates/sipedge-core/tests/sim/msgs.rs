//! The simulation's world: the edge's configuration (several shards, registrar, digest
//! users, IP auth, NAT pings, relay), the phones' addresses and the messages they send.

use std::net::SocketAddr;

use sipedge_core::auth::{
    expected_response, ha1, AccountSpec, Algorithm, AuthDb, AuthMode, AuthSettings, AuthSpec,
    DigestInput, IpAuthSpec, NatPing, UserSpec,
};
use sipedge_core::{
    CoreConfig, NatConfig, Overflow, PingMethod, PingMode, ProxyConfig, RegistrarConfig, ShardId,
};
use sipedge_msg::{HeaderName, Message};

pub const DOMAIN: &str = "edge.example.com";
/// Our address on socket 0 and socket 1.
pub const EDGE: [&str; 2] = ["192.0.2.1:5060", "[2001:db8::1]:5060"];
/// Where the phones, trunks and attackers send from.
pub const SOURCES: [&str; 6] = [
    "203.0.113.5:5070",     // a phone on a public address
    "198.51.100.10:5062",   // another phone
    "198.51.100.130:5080",  // an IP-authenticated trunk (account acme)
    "[2001:db8:5::7]:5090", // an IPv6 phone
    "10.1.2.3:5060",        // a private source (an edge behind NAT, or a spoof)
    "192.0.2.99:6000",      // an attacker
];
/// Users: name, password, (MD5, SHA-256) credentials provisioned. "eve" is not provisioned.
pub const USERS: [(&str, &str, bool, bool); 4] = [
    ("alice", "pa", true, true),
    ("bob", "pb", true, false),
    ("carol", "pc", false, true),
    ("eve", "pe", false, false),
];
/// Largest datagram the cores accept (and the fuzzer's messages stay under).
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Record-Route and Via room a forwarded message may add beyond the largest one received.
pub const FORWARD_ROOM: usize = 512;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|_| panic!("address {s}"))
}

/// Configuration knobs the input's first bytes choose.
#[derive(Debug, Clone, Copy)]
pub struct World {
    pub shards: u16,
    pub register_digest: bool,
    pub invite_digest: bool,
    pub overflow_replace: bool,
    pub ping_timeout: bool,
    pub ping_all: bool,
    pub max_contacts: u16,
}

impl World {
    pub fn from_bytes(a: u8, b: u8) -> World {
        World {
            shards: 2 + u16::from(a % 2),
            register_digest: a & 2 != 0,
            invite_digest: a & 4 != 0,
            overflow_replace: a & 8 != 0,
            ping_timeout: a & 16 != 0,
            ping_all: a & 32 != 0,
            max_contacts: 1 + u16::from(b % 4),
        }
    }

    fn user_spec(name: &str, password: &str, md5: bool, sha: bool) -> UserSpec {
        let h = |alg| ha1(alg, name.as_bytes(), DOMAIN.as_bytes(), password.as_bytes());
        UserSpec {
            username: name.into(),
            account: Some("acme".into()),
            ha1_md5: md5.then(|| {
                let mut m = [0u8; 32];
                m.copy_from_slice(&h(Algorithm::Md5)[..32]);
                m
            }),
            ha1_sha256: sha.then(|| h(Algorithm::Sha256)),
            nat_ping: NatPing::default(),
            ..UserSpec::default()
        }
    }

    pub fn config(&self, shard: u16) -> CoreConfig {
        let spec = AuthSpec {
            settings: AuthSettings {
                realm: DOMAIN.into(),
                register: if self.register_digest {
                    AuthMode::Digest
                } else {
                    AuthMode::None
                },
                invite: if self.invite_digest {
                    AuthMode::Digest
                } else {
                    AuthMode::None
                },
                ..AuthSettings::default()
            },
            accounts: vec![AccountSpec {
                name: "acme".into(),
                ..AccountSpec::default()
            }],
            users: USERS
                .iter()
                .filter(|u| u.2 || u.3)
                .map(|&(n, p, m, s)| Self::user_spec(n, p, m, s))
                .collect(),
            ip_auth: vec![IpAuthSpec {
                cidr: "198.51.100.128/25"
                    .parse()
                    .unwrap_or_else(|_| unreachable!()),
                account: "acme".into(),
                cli_auth: false,
                register: Vec::new(),
            }],
        };
        let mut c = CoreConfig {
            shard: ShardId(shard),
            shards: self.shards,
            domains: vec![DOMAIN.into(), "192.0.2.1".into(), "2001:db8::1".into()],
            seed: 0x5eed,
            registrar: RegistrarConfig {
                max_contacts: self.max_contacts,
                overflow: if self.overflow_replace {
                    Overflow::ReplaceOldest
                } else {
                    Overflow::Reject
                },
                ..RegistrarConfig::default()
            },
            nat: NatConfig {
                ping: if self.ping_timeout {
                    PingMode::Timeout
                } else {
                    PingMode::Enabled
                },
                ping_interval_secs: 5,
                method: PingMethod::Options,
                ping_nated_only: !self.ping_all,
                advertise: EDGE.iter().map(|s| s.to_string()).collect(),
                ..NatConfig::default()
            },
            proxy: ProxyConfig {
                advertise: EDGE.iter().map(|s| addr(s)).collect(),
                secret: sipedge_core::NodeSecret::from_hex(&"fe".repeat(32)).unwrap_or_default(),
                ..ProxyConfig::default()
            },
            ..CoreConfig::default()
        };
        c.parse.max_message_bytes = MAX_MESSAGE_BYTES;
        c.auth.db = AuthDb::build(&spec)
            .unwrap_or_else(|e| panic!("auth spec: {e}"))
            .into_handle();
        c.auth.nonce_secret = b"sim-secret".to_vec();
        c.auth.instance = 7;
        c.auth.nc_window = 64;
        c
    }
}

/// The Via sent-by of `src` (IPv6 bracketed).
pub fn sent_by(src: SocketAddr) -> String {
    match src {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// Contact shape `shape` number `k` of `user` registered from `src`. Under RFC 3261
/// §19.1.4 (a parameter in one URI only is ignored) 1 and 2 each equal 0 but not each
/// other; 3 (transport given) and 4 (user case differs) equal none of them.
pub fn contact(shape: u8, user: &str, k: u8, src: SocketAddr) -> String {
    let k = k % 4;
    match shape % 8 {
        0 => format!("<sip:{user}@10.0.0.{k}:5060>"),
        1 => format!("<sip:{user}@10.0.0.{k}:5060;foo=bar>"),
        2 => format!("<sip:{user}@10.0.0.{k}:5060;foo=baz>"),
        3 => format!("<sip:{user}@10.0.0.{k}:5060;transport=udp>"),
        4 => format!("<sip:{}@10.0.0.{k}:5060>", user.to_uppercase()),
        5 => format!("<sip:{user}@{}>", sent_by(src)),
        6 => format!(
            "<sip:{user}@10.0.0.{k}:5060;ob>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-00000000000{k}>\";reg-id=1"
        ),
        _ => format!("<sips:{user}@[2001:db8::{k}]:5061>"),
    }
}

/// An `expires` value: absent, the usual ones, and the hostile ones.
pub fn expires(choice: u8) -> Option<&'static str> {
    [
        None,
        Some("0"),
        Some("0"),
        Some("30"),
        Some("60"),
        Some("3600"),
        Some("99999"),
        Some("4294967296"),
        Some("-1"),
        Some("abc"),
    ][usize::from(choice) % 10]
}

/// Digest credentials for `user` answering `nonce` (qop=auth with `nc` when given).
pub fn credentials(
    alg: Algorithm,
    user: &str,
    password: &str,
    nonce: &str,
    nc: Option<u32>,
    method: &str,
    uri: &str,
) -> String {
    let h = ha1(alg, user.as_bytes(), DOMAIN.as_bytes(), password.as_bytes());
    let ncs = nc.map(|n| format!("{n:08x}"));
    let input = DigestInput {
        method: method.as_bytes(),
        uri: uri.as_bytes(),
        nonce: nonce.as_bytes(),
        qop_auth: ncs.as_deref().map(|n| (n.as_bytes(), &b"0a4f113b"[..])),
    };
    let r = expected_response(alg, &h[..alg.hex_len()], &input);
    let r = String::from_utf8_lossy(&r[..alg.hex_len()]).into_owned();
    let a = String::from_utf8_lossy(alg.token()).into_owned();
    match ncs {
        Some(nc) => format!(
            "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm={a}, qop=auth, nc={nc}, cnonce=\"0a4f113b\""
        ),
        None => format!(
            "Digest username=\"{user}\", realm=\"{DOMAIN}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm={a}"
        ),
    }
}

/// The nonce of a 401/407 challenge, if `bytes` is one.
pub fn nonce_of(bytes: &[u8]) -> Option<String> {
    let m = Message::parse(bytes).ok()?;
    let v = m
        .header(HeaderName::WwwAuthenticate)
        .or_else(|| m.header(HeaderName::ProxyAuthenticate))?;
    let s = String::from_utf8_lossy(v);
    let i = s.find("nonce=\"")? + 7;
    let rest = &s[i..];
    Some(rest[..rest.find('"')?].to_string())
}

/// A request from `src` (`extra`: header lines, each ending in CRLF).
#[allow(clippy::too_many_arguments)]
pub fn request(
    method: &str,
    ruri: &str,
    src: SocketAddr,
    branch: &str,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
    max_forwards: u8,
    extra: &str,
) -> Vec<u8> {
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={branch};rport\r\nMax-Forwards: {max_forwards}\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n{extra}Content-Length: 0\r\n\r\n",
        sent_by(src)
    )
    .into_bytes()
}

/// The response a UAS sends to `req` (a request the edge sent), with a To tag.
pub fn respond(req: &[u8], code: u16, to_tag: &str) -> Option<Vec<u8>> {
    let m = Message::parse(req).ok()?;
    m.method()?;
    let mut s = format!("SIP/2.0 {code} Whatever\r\n");
    for v in m.header_values(HeaderName::Via) {
        s.push_str(&format!("Via: {}\r\n", String::from_utf8_lossy(v)));
    }
    for v in m.header_values(HeaderName::RecordRoute) {
        s.push_str(&format!("Record-Route: {}\r\n", String::from_utf8_lossy(v)));
    }
    let h = |n| m.header(n).map(|v| String::from_utf8_lossy(v).into_owned());
    let to = h(HeaderName::To)?;
    let to = if to.contains("tag=") || code == 100 {
        to
    } else {
        format!("{to};tag={to_tag}")
    };
    s.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:callee@203.0.113.9:5060>\r\nContent-Length: 0\r\n\r\n",
        h(HeaderName::From)?,
        h(HeaderName::CallId)?,
        h(HeaderName::CSeq)?
    ));
    Some(s.into_bytes())
}

/// The Record-Route values and To of a response the edge sent upstream.
pub fn dialog_of(resp: &[u8]) -> Option<(Vec<String>, String)> {
    let m = Message::parse(resp).ok()?;
    m.status()?;
    let rr = m
        .header_values(HeaderName::RecordRoute)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let to = String::from_utf8_lossy(m.header(HeaderName::To)?).into_owned();
    Some((rr, to))
}
