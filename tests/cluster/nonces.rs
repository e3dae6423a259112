//! Nonces across edges (issue 20 item 6), on one standalone Redis (the single-URL path of
//! the cluster thread): with `[auth] register = "digest"` and one `[auth] nonce_secret` on
//! A and B, a 401 challenge from A answered at B → 200; the same answer again at B → 401.

use crate::common::{challenge, digest_answer, register, Client, DOMAIN, WAIT};
use crate::edges::*;
use crate::redis::{self, RedisServer};

const SECRET: &str = "6a1f0c9e2b7d4a58c3e1f09b8d7c6a5e4f3b2a1908f7e6d5c4b3a29180f7e6d5";

/// A REGISTER of alice from `phone` with `auth` as its Authorization header.
fn register_with(phone: &Client, auth: &str, cseq: u32) -> Vec<u8> {
    let contact = format!("<sip:alice@{}>", phone.addr());
    let r = register(phone, "alice", Some(&contact), Some(600), "nonce-reg", cseq);
    let text = String::from_utf8(r).unwrap();
    text.replacen(
        "Content-Length:",
        &format!("Authorization: {auth}\r\nContent-Length:"),
        1,
    )
    .into_bytes()
}

#[test]
fn a_challenge_from_a_is_answered_at_b_once() {
    if !redis::available() {
        return;
    }
    let store = RedisServer::start(REDIS_IPS[0], 7061, false);
    let auth = format!(
        "\n[auth]\nregister = \"digest\"\ninvite = \"none\"\nnonce_secret = \"{SECRET}\"\n\n[[users]]\nusername = \"alice\"\npassword = \"wonderland\"\n"
    );
    let edges: Vec<_> = (0..2)
        .map(|i| {
            let cfg = format!("{auth}{}", cluster_toml(i, "cluster", &[store.url()], ""));
            start_edge(&format!("cl-nonce-{i}"), i, 5160, &cfg)
        })
        .collect();
    let (a, b) = (&edges[0], &edges[1]);
    let phone = Client::new(PHONE_IP);
    let contact = format!("<sip:alice@{}>", phone.addr());
    phone.send(
        a.sip,
        &register(&phone, "alice", Some(&contact), Some(600), "nonce-reg", 1),
    );
    let (_, r401) = recv_where(&phone, WAIT, |m| m.is_response()).expect("A's challenge");
    assert_eq!(status(&r401), 401);
    let creds = digest_answer(
        &challenge(&r401),
        "alice",
        "wonderland",
        "REGISTER",
        &format!("sip:{DOMAIN}"),
        1,
    );
    let answered = register_with(&phone, &creds, 2);
    phone.send(b.sip, &answered);
    let (_, ok) = recv_where(&phone, WAIT, |m| m.is_response()).expect("B's answer");
    assert_eq!(status(&ok), 200, "B accepts A's nonce");
    assert_eq!(b.metric("sipedge_bindings{", None), 1);
    await_in_redis_single(&store, "alice", "edge-b");
    // The very same (nonce, nc) again at B: a replay, refused with a fresh challenge.
    phone.send(b.sip, &answered);
    let (_, again) = recv_where(&phone, WAIT, |m| m.is_response()).expect("B's answer");
    assert_eq!(status(&again), 401, "B refuses the replay");
    assert!(
        crate::common::listed_contacts(&again).is_empty(),
        "the replay learns nothing"
    );
    assert_eq!(b.metric("sipedge_auth_replays_total", None), 1);
}

/// Waits until the standalone Redis holds `user`'s binding from `node`.
fn await_in_redis_single(store: &RedisServer, user: &str, node: &str) {
    let key = aor_key(user);
    assert!(
        wait_for(std::time::Duration::from_secs(10), || {
            let v = store.cli(&["HGETALL", &key]);
            v.contains(node) && v.contains(":u\n")
        }),
        "{user}'s binding from {node} reached Redis"
    );
}
