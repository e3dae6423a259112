//! Helpers shared by the authentication tests: a user table with accounts, IP-auth and CLI
//! entries, a digest client, INVITE builders.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub use crate::common::*;

use sipedge_core::auth::{expected_response, Algorithm, DigestInput};
use sipedge_core::auth::{
    ha1, AccountSpec, AuthDb, AuthMethod, AuthMode, AuthOutcome, AuthSettings, AuthSpec,
    IpAuthSpec, UserSpec,
};
use sipedge_core::{Core, CoreConfig, Millis};
use sipedge_msg::Message;

pub const REALM: &str = DOMAIN;
pub const PASSWORD: &str = "s3cret";

pub fn user(name: &str, password: &str) -> UserSpec {
    let md5 = ha1(
        Algorithm::Md5,
        name.as_bytes(),
        REALM.as_bytes(),
        password.as_bytes(),
    );
    let mut m = [0u8; 32];
    m.copy_from_slice(&md5[..32]);
    UserSpec {
        username: name.into(),
        account: Some("acme".into()),
        ha1_md5: Some(m),
        ha1_sha256: Some(ha1(
            Algorithm::Sha256,
            name.as_bytes(),
            REALM.as_bytes(),
            password.as_bytes(),
        )),
        ..UserSpec::default()
    }
}

pub fn spec() -> AuthSpec {
    let mut carol = user("carol", PASSWORD);
    carol.ip_whitelist = vec!["10.0.0.0/8".parse().unwrap()];
    AuthSpec {
        settings: AuthSettings {
            realm: REALM.into(),
            register: AuthMode::Digest,
            invite: AuthMode::Digest,
            // Both, SHA-256 first (the default offers MD5 alone).
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            ..AuthSettings::default()
        },
        accounts: vec![
            AccountSpec {
                name: "acme".into(),
                ..AccountSpec::default()
            },
            AccountSpec {
                name: "trunk".into(),
                ..AccountSpec::default()
            },
            AccountSpec {
                name: "retail".into(),
                cli: vec!["^\\+?1555".into()],
                ..AccountSpec::default()
            },
            AccountSpec {
                name: "wholesale".into(),
                cli: vec!["^\\+?44".into(), "^0044".into()],
                ..AccountSpec::default()
            },
        ],
        users: vec![user("alice", PASSWORD), user("bob", "other"), carol],
        ip_auth: vec![
            IpAuthSpec {
                cidr: "198.51.100.0/24".parse().unwrap(),
                account: "trunk".into(),
                cli_auth: false,
                register: vec![format!("pbx1@{DOMAIN}")],
            },
            IpAuthSpec {
                cidr: "198.51.100.128/25".parse().unwrap(),
                account: "acme".into(),
                cli_auth: false,
                register: Vec::new(),
            },
            IpAuthSpec {
                cidr: "203.0.113.0/24".parse().unwrap(),
                account: "retail".into(),
                cli_auth: true,
                register: Vec::new(),
            },
            IpAuthSpec {
                cidr: "203.0.113.0/24".parse().unwrap(),
                account: "wholesale".into(),
                cli_auth: true,
                register: Vec::new(),
            },
            IpAuthSpec {
                cidr: "2001:db8:1::/48".parse().unwrap(),
                account: "trunk".into(),
                cli_auth: false,
                register: Vec::new(),
            },
        ],
    }
}

pub fn auth_config(secret: &[u8], instance: u32) -> CoreConfig {
    let mut c = config();
    c.auth.db = AuthDb::build(&spec()).unwrap().into_handle();
    c.auth.nonce_secret = secret.to_vec();
    c.auth.instance = instance;
    c.auth.nc_window = 1024;
    c
}

pub fn core() -> Core {
    Core::new(auth_config(b"k", 1))
}

/// A challenge header's parameter.
pub fn param(h: &str, name: &str) -> Option<String> {
    let i = h.find(&format!("{name}="))? + name.len() + 1;
    let rest = &h[i..];
    let v = if let Some(r) = rest.strip_prefix('"') {
        &r[..r.find('"')?]
    } else {
        rest.split([',', ' ']).next()?
    };
    Some(v.to_string())
}

/// Every value of header `name` in a reply.
pub fn headers(a: &Answer, name: &str) -> Vec<String> {
    a.msg()
        .headers()
        .filter(|h| h.name_bytes.eq_ignore_ascii_case(name.as_bytes()))
        .map(|h| String::from_utf8_lossy(h.value).into_owned())
        .collect()
}

pub fn nonce_of(a: &Answer) -> String {
    let name = if a.status() == 401 {
        "WWW-Authenticate"
    } else {
        "Proxy-Authenticate"
    };
    param(&headers(a, name)[0], "nonce").unwrap()
}

/// Credentials header value answering `nonce` for `method` / `uri`.
pub fn creds(
    alg: Algorithm,
    user: &str,
    password: &str,
    nonce: &str,
    nc: Option<u32>,
    method: &str,
    uri: &str,
) -> String {
    let h = ha1(alg, user.as_bytes(), REALM.as_bytes(), password.as_bytes());
    let ncs = nc.map(|n| format!("{n:08x}"));
    let input = DigestInput {
        method: method.as_bytes(),
        uri: uri.as_bytes(),
        nonce: nonce.as_bytes(),
        qop_auth: ncs.as_deref().map(|n| (n.as_bytes(), &b"0a4f113b"[..])),
    };
    let r = expected_response(alg, &h[..alg.hex_len()], &input);
    let r = std::str::from_utf8(&r[..alg.hex_len()]).unwrap();
    let alg = std::str::from_utf8(alg.token()).unwrap();
    match ncs {
        Some(nc) => format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm={alg}, qop=auth, nc={nc}, cnonce=\"0a4f113b\""
        ),
        None => format!(
            "Digest username=\"{user}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm={alg}"
        ),
    }
}

pub fn register_as(user: &str) -> Reg {
    reg()
        .to(&format!("<sip:{user}@{DOMAIN}>"))
        .contact(&format!("<sip:{user}@192.0.2.50:40123>"))
}

pub fn with_auth(r: &Reg, creds: &str, cseq: u32) -> Reg {
    r.clone()
        .cseq(cseq)
        .extra(&format!("Authorization: {creds}"))
}

pub fn ruri() -> String {
    format!("sip:{DOMAIN}")
}

pub fn invite(from_user: &str, extra: &str) -> Vec<u8> {
    format!(
        "INVITE sip:+15551234@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.50:40123;branch=z9hG4bK-i1\r\nMax-Forwards: 70\r\nFrom: <sip:{from_user}@{DOMAIN}>;tag=a\r\nTo: <sip:+15551234@{DOMAIN}>\r\nCall-ID: i1\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

pub fn outcome(c: &mut Core, now: u64, from: &str, bytes: &[u8]) -> AuthOutcome {
    let msg = Message::parse(bytes).unwrap();
    c.authenticate_request(Millis(now), from.parse().unwrap(), &msg)
}

pub fn account_of(c: &Core, o: AuthOutcome) -> (AuthMethod, String) {
    let AuthOutcome::Authenticated(ok) = o else {
        panic!("not authenticated: {o:?}")
    };
    let db = c.auth_db();
    (
        ok.method,
        db.account(ok.account.unwrap()).unwrap().name.clone(),
    )
}
