//! Registrations shared across edges (issue 20), sans-IO on a virtual clock: two edges A
//! and B (different nodes, one domain, one nonce secret). A call to a user registered on A
//! that reaches B is relayed to A, which delivers it on the phone's flow; what the
//! cluster thread answers (found, not found, unavailable, nothing in time, too late) and
//! what peers may do; nonces accepted across edges (`nonce`).
#![allow(clippy::unwrap_used)]

#[path = "../auth_support/mod.rs"]
mod auth_support;
#[path = "../common/mod.rs"]
mod common;
#[path = "../relay/harness.rs"]
mod harness;
mod nonce;

use harness::*;
use sipedge_core::cluster::{ClusterCoreConfig, RemoteAnswer, RemoteBinding, RemoteLookup};
use sipedge_core::{Core, CoreConfig, Millis, ProxyConfig};
use sipedge_msg::HeaderName;

/// Edge A is the harness's edge (`EDGE`); B is its peer.
const EDGE_B: &str = "192.0.2.2:5060";
/// Carol's phone, registered on A (behind A's NAT pinhole).
const CAROL: &str = "203.0.113.77:5080";
const LOOKUP_TIMEOUT_MS: u64 = 300;

fn cluster(node: &str, peer: &str) -> ClusterCoreConfig {
    ClusterCoreConfig {
        enabled: true,
        node: node.into(),
        peers: vec![addr(peer).ip()],
        lookup_timeout: Millis(LOOKUP_TIMEOUT_MS),
        ..ClusterCoreConfig::default()
    }
}

fn edge(me: &str, node: &str, peer: &str, on: bool) -> Core {
    let ip = addr(me).ip().to_string();
    Core::new(CoreConfig {
        domains: vec![DOMAIN.into(), ip],
        proxy: ProxyConfig {
            advertise: vec![addr(me)],
            ..ProxyConfig::default()
        },
        seed: node.len() as u64,
        cluster: if on {
            cluster(node, peer)
        } else {
            ClusterCoreConfig::default()
        },
        ..CoreConfig::default()
    })
}

/// A (carol registered) and B, both clustered.
fn edges() -> (Core, Core) {
    let mut a = edge(EDGE, "edge-a", EDGE_B, true);
    register(&mut a, 0, "carol", &format!("sip:carol@{CAROL}"), CAROL);
    (a, edge(EDGE_B, "edge-b", EDGE, true))
}

fn labels(out: &[Out]) -> Vec<String> {
    out.iter().map(Out::label).collect()
}

fn invite_carol(call: &str) -> Vec<u8> {
    request(
        "INVITE",
        &format!("sip:carol@{DOMAIN}"),
        &format!("z9hG4bK-{call}"),
        call,
        "",
    )
}

fn found_on_a() -> RemoteAnswer {
    RemoteAnswer::Found(vec![RemoteBinding {
        node: "edge-a".into(),
        home: addr(EDGE),
        contact: format!("sip:carol@{CAROL}").into(),
        expires_at_unix_ms: u64::MAX,
        q: 1000,
    }])
}

/// alice's INVITE for carol reaches B: 100 at once, one lookup for carol's AoR.
fn invite_at_b(b: &mut Core, now: u64, call: &str) -> RemoteLookup {
    let out = send(b, now, ALICE, &invite_carol(call));
    assert_eq!(
        labels(&out),
        ["100"],
        "100 Trying at once, nothing forwarded yet"
    );
    assert_eq!(out[0].to, addr(ALICE));
    let l = b.poll_remote_lookup().expect("B asks the cluster");
    assert_eq!(&*l.aor, format!("sip:carol@{DOMAIN}"));
    assert!(b.poll_remote_lookup().is_none());
    assert_eq!(b.remote_lookups_pending(), 1);
    l
}

fn settle(cores: &mut [&mut Core]) {
    for c in cores.iter_mut() {
        advance(c, 600_000);
        assert_eq!(c.transaction_count(), 0, "every transaction ended");
        assert_eq!(c.remote_lookups_pending(), 0, "no pending lookup leaked");
        c.check_invariants().unwrap();
    }
}

#[test]
fn call_through_b_reaches_the_phone_via_its_home_edge_a() {
    let (mut a, mut b) = edges();
    let l = invite_at_b(&mut b, 10, "x1");
    b.check_invariants().unwrap();
    b.handle_remote_answer(Millis(12), l.token, found_on_a());
    let out = drain(&mut b);
    assert_eq!(labels(&out), ["INVITE"], "no second 100");
    let to_a = &out[0];
    assert_eq!(to_a.to, addr(EDGE), "to the home edge, never to the phone");
    // Request-URI unchanged: the home edge does its own lookup.
    assert_eq!(to_a.ruri(), format!("sip:carol@{DOMAIN}"));
    assert_eq!(to_a.via_count(), 2);
    assert!(to_a
        .header(HeaderName::Via)
        .unwrap()
        .starts_with("SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bK"));
    let rr = to_a.header(HeaderName::RecordRoute).unwrap();
    assert!(rr.starts_with("<sip:192.0.2.2:5060;lr;sed="), "{rr}");
    assert_eq!(to_a.header(HeaderName::MaxForwards).as_deref(), Some("69"));
    // A takes it from its peer: its own lookup, delivered on carol's flow.
    let out = send(&mut a, 13, EDGE_B, &to_a.bytes);
    assert_eq!(labels(&out), ["100", "INVITE"]);
    assert_eq!(out[0].to, addr(EDGE_B));
    let to_carol = out[1].clone();
    assert_eq!(to_carol.to, addr(CAROL));
    assert_eq!(to_carol.ruri(), format!("sip:carol@{CAROL}"));
    assert_eq!(to_carol.via_count(), 3);
    assert_eq!(
        to_carol.header(HeaderName::MaxForwards).as_deref(),
        Some("68")
    );
    assert_eq!(a.proxy_stats().peer_requests, 1);
    assert_eq!(a.remote_lookups_pending(), 0);
    assert!(a.poll_remote_lookup().is_none(), "A found carol itself");
    // 180 and 200 travel back through A and B to alice.
    for (t, code, reason) in [(20, 180, "Ringing"), (30, 200, "OK")] {
        let extra = format!("Contact: <sip:carol@{CAROL}>\r\n");
        let r = respond(&to_carol, code, reason, "c1", &extra);
        let up = send(&mut a, t, CAROL, &r);
        assert_eq!(labels(&up), [code.to_string()]);
        assert_eq!(up[0].to, addr(EDGE_B));
        let up = send(&mut b, t + 1, EDGE, &up[0].bytes);
        assert_eq!(labels(&up), [code.to_string()]);
        assert_eq!(up[0].to, addr(ALICE));
        assert_eq!(up[0].via_count(), 1, "alice's Via alone");
    }
    // The binding was for this transaction only: B holds none, so never pings carol.
    assert_eq!(b.binding_count(), 0);
    assert_eq!(b.proxy_stats().remote_found, 1);
    settle(&mut [&mut a, &mut b]);
}

#[test]
fn not_found_and_unavailable_end_with_480() {
    for (answer, nf, un) in [
        (RemoteAnswer::NotFound, 1, 0),
        (RemoteAnswer::Unavailable, 0, 1),
        (RemoteAnswer::Found(Vec::new()), 1, 0),
    ] {
        let (_, mut b) = edges();
        let l = invite_at_b(&mut b, 10, "x2");
        b.handle_remote_answer(Millis(15), l.token, answer);
        let out = drain(&mut b);
        assert_eq!(labels(&out), ["480"]);
        assert_eq!(out[0].to, addr(ALICE));
        assert_eq!(b.proxy_stats().remote_not_found, nf);
        assert_eq!(b.proxy_stats().remote_unavailable, un);
        settle(&mut [&mut b]);
    }
}

#[test]
fn no_answer_in_time_is_480_and_a_late_answer_is_ignored() {
    let (_, mut b) = edges();
    let l = invite_at_b(&mut b, 10, "x3");
    assert!(advance(&mut b, 10 + LOOKUP_TIMEOUT_MS - 20).is_empty());
    let out = advance(&mut b, 10 + LOOKUP_TIMEOUT_MS + 20);
    assert_eq!(labels(&out), ["480"]);
    assert_eq!(b.proxy_stats().remote_timeouts, 1);
    assert_eq!(b.remote_lookups_pending(), 0, "the pending entry is gone");
    // The answer comes after all: nothing is sent, nothing is held.
    b.handle_remote_answer(Millis(1_000), l.token, found_on_a());
    assert!(drain(&mut b).is_empty(), "nothing sent for a late answer");
    assert_eq!(b.proxy_stats().remote_late, 1);
    assert_eq!(b.proxy_stats().branches, 0, "nothing went to A");
    settle(&mut [&mut b]);
    // Even after the cell is gone and its slot reused.
    let l2 = invite_at_b(&mut b, 700_000, "x4");
    b.handle_remote_answer(Millis(700_001), l.token, found_on_a());
    assert!(drain(&mut b).is_empty());
    assert_eq!(b.proxy_stats().remote_late, 2);
    b.handle_remote_answer(Millis(700_002), l2.token, RemoteAnswer::NotFound);
    assert_eq!(labels(&drain(&mut b)), ["480"]);
}

#[test]
fn cancel_while_waiting_ends_with_487_and_frees_the_entry() {
    let (_, mut b) = edges();
    let l = invite_at_b(&mut b, 10, "x5");
    let cancel = request(
        "CANCEL",
        &format!("sip:carol@{DOMAIN}"),
        "z9hG4bK-x5",
        "x5",
        "",
    );
    let out = send(&mut b, 20, ALICE, &cancel);
    assert_eq!(labels(&out), ["200", "487"]);
    assert_eq!(b.remote_lookups_pending(), 0);
    b.handle_remote_answer(Millis(30), l.token, found_on_a());
    assert!(
        drain(&mut b).is_empty(),
        "nothing forwarded after the CANCEL"
    );
    settle(&mut [&mut b]);
}

#[test]
fn a_peer_relayed_request_with_no_binding_gets_480_and_no_lookup() {
    let (mut a, _) = edges();
    // carol's binding is gone from A by the time B's relay arrives: never asked again.
    let out = send(
        &mut a,
        10,
        EDGE_B,
        &request(
            "INVITE",
            &format!("sip:dave@{DOMAIN}"),
            "z9hG4bK-p1",
            "p1",
            "",
        ),
    );
    assert_eq!(labels(&out), ["480"]);
    assert!(a.poll_remote_lookup().is_none(), "loop guard");
    assert_eq!(a.proxy_stats().peer_not_found, 1);
    settle(&mut [&mut a]);
}

#[test]
fn cluster_off_never_asks_and_answers_404_as_before() {
    let mut b = edge(EDGE_B, "edge-b", EDGE, false);
    let out = send(&mut b, 10, ALICE, &invite_carol("x6"));
    assert_eq!(labels(&out), ["404"]);
    assert!(b.poll_remote_lookup().is_none());
    // A "peer" means nothing with the cluster off.
    let out = send(&mut b, 20, EDGE, &invite_carol("x7"));
    assert_eq!(labels(&out), ["404"]);
    assert!(b.poll_remote_lookup().is_none());
    assert_eq!(b.proxy_stats().peer_requests, 0);
}

#[test]
fn the_pending_table_is_capped_with_503() {
    let mut b = Core::new(CoreConfig {
        cluster: ClusterCoreConfig {
            max_pending_lookups: 2,
            ..cluster("edge-b", EDGE)
        },
        ..config()
    });
    for i in 0..2 {
        let out = send(&mut b, 10, ALICE, &invite_carol(&format!("cap{i}")));
        assert_eq!(labels(&out), ["100"]);
    }
    let out = send(&mut b, 10, ALICE, &invite_carol("cap2"));
    assert_eq!(labels(&out), ["503"]);
    assert_eq!(b.proxy_stats().remote_pending_full, 1);
    assert_eq!(b.remote_lookups_pending(), 2);
    // The shell could not queue them: Unavailable at once frees both.
    while let Some(l) = b.poll_remote_lookup() {
        b.handle_remote_answer(Millis(11), l.token, RemoteAnswer::Unavailable);
    }
    assert_eq!(labels(&drain(&mut b)), ["480", "480"]);
    assert_eq!(b.remote_lookups_pending(), 0);
    settle(&mut [&mut b]);
}

/// Two shards on B: the INVITE lands on the shard that does not own carol's AoR; the
/// owner's mesh answer is empty, and the cell's shard asks the cluster.
#[test]
fn a_lookup_over_the_mesh_that_finds_nothing_asks_the_cluster() {
    let mk = |i| {
        Core::new(CoreConfig {
            shard: sipedge_core::ShardId(i),
            shards: 2,
            seed: 7,
            cluster: cluster("edge-b", EDGE),
            domains: vec![DOMAIN.into(), addr(EDGE_B).ip().to_string()],
            proxy: ProxyConfig {
                advertise: vec![addr(EDGE_B)],
                ..ProxyConfig::default()
            },
            ..CoreConfig::default()
        })
    };
    let (mut s0, mut s1) = (mk(0), mk(1));
    // Find a call whose AoR is not owned by the shard it lands on (s0): carol's AoR is
    // fixed, so try s0 and s1.
    let owner_is_s0 = s0
        .lookup(Millis(0), format!("sip:carol@{DOMAIN}").as_bytes())
        .is_ok();
    let landing_is_s0 = !owner_is_s0;
    let out = {
        let landing = if landing_is_s0 { &mut s0 } else { &mut s1 };
        send(landing, 10, ALICE, &invite_carol("m1"))
    };
    assert!(out.is_empty(), "the 100 waits for the owner's answer");
    let (o0, o1) = pump(&mut s0, &mut s1, 11);
    let (landing, other) = if landing_is_s0 {
        (&mut s0, &mut s1)
    } else {
        (&mut s1, &mut s0)
    };
    let l = landing
        .poll_remote_lookup()
        .expect("the cell's shard asks the cluster");
    assert!(other.poll_remote_lookup().is_none());
    let mut all: Vec<String> = labels(&o0);
    all.extend(labels(&o1));
    assert_eq!(all, ["100"], "100 once, when the remote lookup starts");
    landing.handle_remote_answer(Millis(12), l.token, found_on_a());
    let out = drain(landing);
    assert_eq!(labels(&out), ["INVITE"]);
    assert_eq!(out[0].to, addr(EDGE));
    assert_eq!(out[0].ruri(), format!("sip:carol@{DOMAIN}"));
}

#[test]
fn peers_are_never_banned_and_relay_without_a_challenge() {
    // A with digest required for every INVITE: B's relay is not challenged.
    let mut cfg = auth_support::auth_config(b"k", 1);
    cfg.domains = vec![DOMAIN.into(), "192.0.2.1".into()];
    cfg.proxy.advertise = vec![addr(EDGE)];
    cfg.cluster = cluster("edge-a", EDGE_B);
    let mut a = Core::new(cfg.clone());
    register_with_digest(&mut a, "alice");
    let inv = |call: &str| {
        let r = format!("sip:alice@{DOMAIN}");
        request("INVITE", &r, &format!("z9hG4bK-{call}"), call, "")
    };
    let out = send(&mut a, 10, EDGE_B, &inv("t1"));
    assert_eq!(labels(&out), ["100", "INVITE"], "no 407 for the peer");
    // The same INVITE from a stranger is challenged.
    let out = send(&mut a, 20, STRANGER, &inv("t2"));
    assert_eq!(labels(&out), ["407"]);
    // Peers are in protect's trusted set.
    cfg.protect.max_requests_per_sec = 1;
    let mut a = Core::new(cfg);
    for i in 0..20 {
        let _ = send(&mut a, 30 + i, EDGE_B, &inv(&format!("f{i}")));
    }
    let p = a.protect_stats();
    assert_eq!(p.bans_density, 0, "a peer is never banned");
    assert!(p.exempt > 0);
}

const STRANGER: &str = "192.0.2.99:5060";

/// Registers `user` on a digest-protected core with credentials.
fn register_with_digest(edge: &mut Core, name: &str) {
    use auth_support::{creds, nonce_of, ruri, with_auth, PASSWORD};
    let (core, user) = (edge, name);
    let r = common::reg()
        .to(&format!("<sip:{user}@{DOMAIN}>"))
        .contact(&format!("<sip:{user}@{CAROL}>"));
    let n = nonce_of(&common::answer_at(core, 0, &r));
    let cr = creds(
        sipedge_core::auth::Algorithm::Sha256,
        user,
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    let ok = with_auth(&r, &cr, 2);
    assert_eq!(common::answer_at(core, 1, &ok).status(), 200);
}
