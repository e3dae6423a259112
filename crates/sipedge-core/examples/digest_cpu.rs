//! CPU time per digest verification and per authenticated registration, measured as the
//! thread's on-CPU time (`/proc/thread-self/schedstat`), so time spent preempted on a busy
//! shared VM is not counted (cache effects of neighbours still are). Same requests as
//! `benches/digest.rs`.
//!
//! Run: `nice -n 19 cargo run --release -p sipedge-core --example digest_cpu`

use std::net::SocketAddr;

use sipedge_core::auth::{
    expected_response, ha1, Algorithm, AuthDb, AuthMode, AuthOutcome, AuthSettings, AuthSpec,
    DigestInput, NonceKey, UserSpec,
};
use sipedge_core::{Core, CoreConfig, LocalId, Millis};
use sipedge_msg::Message;

const REALM: &str = "sip.example.com";
const USERS: u32 = 10_000;
const SECRET: &[u8] = b"bench-secret-0123456789";

fn user(u: u32) -> UserSpec {
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

fn core() -> Core {
    let spec = AuthSpec {
        settings: AuthSettings {
            realm: REALM.into(),
            register: AuthMode::Digest,
            invite: AuthMode::Digest,
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

fn creds(alg: Algorithm, name: &str, nonce: &str, nc: u32, method: &str, uri: &str) -> String {
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

fn invite(name: &str, auth: &str) -> Vec<u8> {
    format!("INVITE sip:+15551234@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK776asdhds;rport\r\nMax-Forwards: 70\r\nFrom: <sip:{name}@{REALM}>;tag=1928301774\r\nTo: <sip:+15551234@{REALM}>\r\nCall-ID: a84b4c76e66710@10.1.2.3\r\nCSeq: 2 INVITE\r\nContact: <sip:{name}@10.1.2.3:5060>\r\nProxy-Authorization: {auth}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

fn register(name: &str, cseq: u32, auth: Option<&str>) -> Vec<u8> {
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    format!("REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK{cseq:x};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{name}@{REALM}>;tag=98asjd8\r\nTo: <sip:{name}@{REALM}>\r\nCall-ID: 843817637684230@10.1.2.3\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{name}@10.1.2.3:5060>\r\nExpires: 3600\r\n{auth}User-Agent: Yealink SIP-T46S 66.86.0.15\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

/// Operations per sample: long enough (tens of ms) that the scheduler's accounting
/// granularity (a tick) is a small error.
const BIG: usize = 32 * 1024;
const BATCHES: usize = 9;

/// Nanoseconds this thread has run on a CPU.
fn on_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .expect("schedstat")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn verify(alg: Algorithm, known: bool) -> f64 {
    let mut c = core();
    let remote: SocketAddr = "10.1.2.3:5060".parse().expect("addr");
    let probe = Message::parse(b"INVITE sip:x@sip.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3;branch=z9hG4bKx\r\nFrom: <sip:a@sip.example.com>;tag=1\r\nTo: <sip:x@sip.example.com>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n").expect("probe");
    if let AuthOutcome::Rejected(r) = c.authenticate_request(Millis(1), remote, &probe) {
        c.send_auth_rejection(Millis(1), LocalId(0), remote, &probe, r);
    }
    while c.poll_transmit().is_some() {}
    let nonce = String::from_utf8(NonceKey::new(SECRET, 7).issue(0, 1, 1).to_vec()).expect("hex");
    let mut nc = 0u32;
    let mut samples = Vec::new();
    for _ in 0..BATCHES {
        let bytes: Vec<Vec<u8>> = (0..BIG)
            .map(|i| {
                nc += 1;
                let u = (nc as usize + i) as u32 % USERS;
                let name = if known {
                    format!("user{u:07}")
                } else {
                    format!("nobody{u:05}")
                };
                let uri = format!("sip:+15551234@{REALM}");
                invite(&name, &creds(alg, &name, &nonce, nc, "INVITE", &uri))
            })
            .collect();
        let msgs: Vec<Message<'_>> = bytes
            .iter()
            .map(|b| Message::parse(b).expect("parse"))
            .collect();
        let t = on_cpu_ns();
        for m in &msgs {
            let o = c.authenticate_request(Millis(2), remote, std::hint::black_box(m));
            assert_eq!(known, matches!(o, AuthOutcome::Authenticated(_)));
        }
        samples.push((on_cpu_ns() - t) as f64 / BIG as f64);
    }
    median(samples)
}

fn round_trip() -> f64 {
    let mut core = core();
    let remote: SocketAddr = "10.1.2.3:5060".parse().expect("addr");
    let key = NonceKey::new(SECRET, 7);
    let uri = format!("sip:{REALM}");
    let mut counter = 0u32;
    let mut samples = Vec::new();
    for _ in 0..BATCHES {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..BIG)
            .map(|_| {
                counter += 1;
                let name = format!("user{:07}", counter % USERS);
                let nonce = String::from_utf8(key.issue(0, counter, 1).to_vec()).expect("hex");
                let cseq = 2 * counter;
                let a = creds(Algorithm::Sha256, &name, &nonce, 1, "REGISTER", &uri);
                (
                    register(&name, cseq, None),
                    register(&name, cseq + 1, Some(&a)),
                )
            })
            .collect();
        let t = on_cpu_ns();
        for (first, second) in &pairs {
            core.handle_datagram(Millis(1), LocalId(0), remote, first);
            while core.poll_transmit().is_some() {}
            core.handle_datagram(Millis(1), LocalId(0), remote, second);
            while core.poll_transmit().is_some() {}
        }
        samples.push((on_cpu_ns() - t) as f64 / BIG as f64);
    }
    assert_eq!(core.auth_stats().digest_ok, u64::from(counter));
    median(samples)
}

fn main() {
    println!("on-CPU ns per operation (median of {BATCHES} batches of {BIG}):");
    println!(
        "verify/sha256               {:8.0}",
        verify(Algorithm::Sha256, true)
    );
    println!(
        "verify/md5                  {:8.0}",
        verify(Algorithm::Md5, true)
    );
    println!(
        "verify/sha256_unknown_user  {:8.0}",
        verify(Algorithm::Sha256, false)
    );
    println!(
        "verify/md5_unknown_user     {:8.0}",
        verify(Algorithm::Md5, false)
    );
    println!("register_auth/round_trip    {:8.0}", round_trip());
}
