//! Shared by `benches/digest.rs` and `examples/digest_cpu.rs`: a core with 10 000 digest
//! users and the requests both measure (INVITE with Proxy-Authorization, REGISTER).
#![allow(dead_code)]

use sipedge_core::auth::{
    expected_response, ha1, Algorithm, AuthDb, AuthMode, AuthSettings, AuthSpec, DigestInput,
    UserSpec,
};
use sipedge_core::{Core, CoreConfig};

pub(crate) const REALM: &str = "sip.example.com";
pub(crate) const USERS: u32 = 10_000;
pub(crate) const SECRET: &[u8] = b"bench-secret-0123456789";

pub(crate) fn user(u: u32) -> UserSpec {
    let name = format!("user{u:07}");
    let m = ha1(Algorithm::Md5, name.as_bytes(), REALM.as_bytes(), b"pw");
    let mut md5 = [0u8; 32];
    md5.copy_from_slice(&m[..32]);
    UserSpec {
        ha1_md5: Some(md5),
        ha1_sha256: Some(ha1(
            Algorithm::Sha256,
            name.as_bytes(),
            REALM.as_bytes(),
            b"pw",
        )),
        username: name,
        ..UserSpec::default()
    }
}

pub(crate) fn core() -> Core {
    let spec = AuthSpec {
        settings: AuthSettings {
            realm: REALM.into(),
            register: AuthMode::Digest,
            invite: AuthMode::Digest,
            // Both, SHA-256 first (the default offers MD5 alone).
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            ..AuthSettings::default()
        },
        users: (0..USERS).map(user).collect(),
        ..AuthSpec::default()
    };
    let mut cfg = CoreConfig {
        domains: vec![REALM.into()],
        ..CoreConfig::default()
    };
    cfg.auth.db = AuthDb::build(&spec).expect("spec").into_handle();
    cfg.auth.nonce_secret = SECRET.to_vec();
    cfg.auth.instance = 7;
    Core::new(cfg)
}

pub(crate) fn creds(
    alg: Algorithm,
    name: &str,
    nonce: &str,
    nc: u32,
    method: &str,
    uri: &str,
) -> String {
    let h = ha1(alg, name.as_bytes(), REALM.as_bytes(), b"pw");
    let ncs = format!("{nc:08x}");
    let input = DigestInput {
        method: method.as_bytes(),
        uri: uri.as_bytes(),
        nonce: nonce.as_bytes(),
        qop_auth: Some((ncs.as_bytes(), b"6b8b4567")),
    };
    let r = expected_response(alg, &h[..alg.hex_len()], &input);
    let r = std::str::from_utf8(&r[..alg.hex_len()]).expect("hex");
    let a = std::str::from_utf8(alg.token()).expect("token");
    format!("Digest username=\"{name}\",realm=\"{REALM}\",nonce=\"{nonce}\",uri=\"{uri}\",response=\"{r}\",algorithm={a},cnonce=\"6b8b4567\",qop=auth,nc={ncs}")
}

pub(crate) fn invite(name: &str, auth: &str) -> Vec<u8> {
    format!("INVITE sip:+15551234@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK776asdhds;rport\r\nMax-Forwards: 70\r\nFrom: <sip:{name}@{REALM}>;tag=1928301774\r\nTo: <sip:+15551234@{REALM}>\r\nCall-ID: a84b4c76e66710@10.1.2.3\r\nCSeq: 2 INVITE\r\nContact: <sip:{name}@10.1.2.3:5060>\r\nProxy-Authorization: {auth}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

pub(crate) fn register(name: &str, cseq: u32, auth: Option<&str>) -> Vec<u8> {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!("REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK{cseq:x};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{name}@{REALM}>;tag=98asjd8\r\nTo: <sip:{name}@{REALM}>\r\nCall-ID: 843817637684230@10.1.2.3\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{name}@10.1.2.3:5060>\r\nExpires: 3600\r\n{auth}User-Agent: Yealink SIP-T46S 66.86.0.15\r\nContent-Length: 0\r\n\r\n").into_bytes()
}
