//! Zero heap allocations for authenticated registrations in steady state: REGISTER → 401
//! challenge → REGISTER with digest credentials → 200 OK (refreshing a binding) through the
//! core allocates nothing once its buffers have grown.
#![allow(unsafe_code, clippy::unwrap_used)]

use std::net::SocketAddr;

use sipedge_core::auth::{
    expected_response, ha1, Algorithm, AuthDb, AuthMode, AuthSettings, AuthSpec, DigestInput,
    NonceKey, UserSpec,
};
use sipedge_core::{Core, CoreConfig, LocalId, Millis};

mod counting;
use counting::allocs;

#[global_allocator]
static GLOBAL: counting::Counting = counting::Counting;

const REALM: &str = "127.0.0.1";
const SECRET: &[u8] = b"alloc-test-secret";

fn register(user: u32, cseq: u32, auth: &str) -> Vec<u8> {
    format!(
        "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK{user}x{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:u{user}@127.0.0.1>;tag=t{user}\r\nTo: <sip:u{user}@127.0.0.1>\r\nCall-ID: reg-{user}@10.1.2.3\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:u{user}@10.1.2.3:5060;transport=udp>;expires=600\r\n{auth}User-Agent: load/1\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn credentials(alg: Algorithm, user: u32, nonce: &[u8]) -> String {
    let name = format!("u{user}");
    let h = ha1(alg, name.as_bytes(), REALM.as_bytes(), b"pw");
    let uri = "sip:127.0.0.1";
    let input = DigestInput {
        method: b"REGISTER",
        uri: uri.as_bytes(),
        nonce,
        qop_auth: Some((b"00000001", b"abcdef01")),
    };
    let r = expected_response(alg, &h[..alg.hex_len()], &input);
    format!(
        "Authorization: Digest username=\"{name}\", realm=\"{REALM}\", nonce=\"{}\", uri=\"{uri}\", response=\"{}\", algorithm={}, qop=auth, nc=00000001, cnonce=\"abcdef01\"\r\n",
        std::str::from_utf8(nonce).unwrap(),
        std::str::from_utf8(&r[..alg.hex_len()]).unwrap(),
        std::str::from_utf8(alg.token()).unwrap(),
    )
}

#[test]
fn an_authenticated_register_allocates_nothing() {
    let users = 64u32;
    let spec = AuthSpec {
        settings: AuthSettings {
            realm: REALM.into(),
            register: AuthMode::Digest,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            ..AuthSettings::default()
        },
        users: (0..users)
            .map(|u| {
                let name = format!("u{u}");
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
            })
            .collect(),
        ..AuthSpec::default()
    };
    let mut cfg = CoreConfig {
        domains: vec![REALM.into()],
        journal: true,
        ..CoreConfig::default()
    };
    cfg.auth.db = AuthDb::build(&spec).unwrap().into_handle();
    cfg.auth.nonce_secret = SECRET.to_vec();
    cfg.auth.instance = 3;
    cfg.auth.nc_window = 4096;
    let mut core = Core::new(cfg);
    let key = NonceKey::new(SECRET, 3);
    let remote: SocketAddr = "10.1.2.3:5060".parse().unwrap();
    // Every request of every round, built before counting: the core issues nonces with
    // counters 1, 2, … at time 1, so the client side is predictable.
    let mut counter = 0u32;
    let rounds: Vec<Vec<(Vec<u8>, Vec<u8>)>> = (1..=5u32)
        .map(|round| {
            (0..users)
                .map(|u| {
                    counter += 1;
                    let nonce = key.issue(0, counter, 1);
                    let alg = if u % 2 == 0 {
                        Algorithm::Sha256
                    } else {
                        Algorithm::Md5
                    };
                    let cseq = 2 * round;
                    (
                        register(u, cseq - 1, ""),
                        register(u, cseq, &credentials(alg, u, &nonce)),
                    )
                })
                .collect()
        })
        .collect();
    let run = |core: &mut Core, round: &[(Vec<u8>, Vec<u8>)]| {
        let (mut challenged, mut ok) = (0, 0);
        for (first, second) in round {
            core.handle_datagram(Millis(1), LocalId(0), remote, first);
            while let Some(t) = core.poll_transmit() {
                challenged += usize::from(t.data.starts_with(b"SIP/2.0 401 "));
            }
            core.handle_datagram(Millis(1), LocalId(0), remote, second);
            while let Some(t) = core.poll_transmit() {
                ok += usize::from(t.data.starts_with(b"SIP/2.0 200 OK"));
            }
        }
        while core.poll_journal().is_some() {}
        (challenged, ok)
    };
    let n = users as usize;
    assert_eq!(run(&mut core, &rounds[0]), (n, n), "new bindings");
    assert_eq!(run(&mut core, &rounds[1]), (n, n), "warm-up refresh");
    let before = allocs();
    let mut total = (0, 0);
    for round in &rounds[2..] {
        let (c, o) = run(&mut core, round);
        total = (total.0 + c, total.1 + o);
    }
    let after = allocs();
    assert_eq!(
        total,
        (3 * n, 3 * n),
        "every REGISTER challenged, every retry 200 OK"
    );
    assert_eq!(core.auth_stats().digest_ok, 5 * users as u64);
    assert_eq!(
        after - before,
        0,
        "allocations over {} authenticated registrations",
        3 * n
    );
    // The counter does count.
    let before = allocs();
    let fresh = Core::new(CoreConfig::default());
    assert!(allocs() > before, "the counting allocator saw nothing");
    drop(fresh);
}
