//! Nonces across edges (issue 20 item 6; `auth_db::nonce`, "Across edges"): with one
//! nonce secret and the cluster on, a challenge issued by edge A is answered at edge B;
//! each edge refuses a (nonce, nc) it has seen; an edge outside the cluster refuses
//! another instance's nonce as before.

use crate::auth_support::*;
use sipedge_core::auth::Algorithm;
use sipedge_core::cluster::ClusterCoreConfig;
use sipedge_core::{Core, Millis};

const SECRET: &[u8] = b"shared nonce secret";
/// Wall clock at A's monotonic 0; B's process started 1000 s before A's, so B's
/// monotonic clock reads 1 000 000 ms more at the same instant.
const T0: u64 = 1_750_000_000_000;
const B_AHEAD_MS: u64 = 1_000_000;

fn edge(node: &str, instance: u32, clustered: bool) -> Core {
    let mut cfg = auth_config(SECRET, instance);
    if clustered {
        cfg.cluster = ClusterCoreConfig {
            enabled: true,
            node: node.into(),
            ..ClusterCoreConfig::default()
        };
    }
    let mut c = Core::new(cfg);
    let ahead = if node == "edge-b" { B_AHEAD_MS } else { 0 };
    c.set_wall_clock(Millis(ahead), T0);
    c
}

/// A challenge from A, answered (nc = 1) for a REGISTER of alice.
fn answer_to_a_challenge(a: &mut Core) -> Reg {
    let r = register_as("alice");
    let n = nonce_of(&answer_at(a, 10, &r));
    let cr = creds(
        Algorithm::Sha256,
        "alice",
        PASSWORD,
        &n,
        Some(1),
        "REGISTER",
        &ruri(),
    );
    with_auth(&r, &cr, 2)
}

#[test]
fn a_nonce_from_edge_a_is_accepted_once_at_edge_b() {
    let mut a = edge("edge-a", 0x1111_2222, true);
    let mut b = edge("edge-b", 0x3333_4444, true);
    let ok = answer_to_a_challenge(&mut a);
    // The same instant on B's own clock.
    let at_b = answer_at(&mut b, B_AHEAD_MS + 20, &ok);
    assert_eq!(at_b.status(), 200, "B accepts A's nonce");
    assert_eq!(
        bindings(&b, B_AHEAD_MS + 20, &format!("sip:alice@{DOMAIN}")).len(),
        1
    );
    // Replayed at B: refused (stale challenge), nothing reflected.
    let again = answer_at(&mut b, B_AHEAD_MS + 30, &ok);
    assert_eq!(again.status(), 401, "B refuses the replay");
    assert!(again.contacts().is_empty());
    assert_eq!(b.auth_stats().replays, 1);
    // nc is per edge (documented): A has not seen it yet, and sees it only once.
    assert_eq!(answer_at(&mut a, 40, &ok).status(), 200);
    assert_eq!(answer_at(&mut a, 50, &ok).status(), 401);
    // Past the nonce's lifetime on the shared clock, B calls it stale.
    let late = answer_to_a_challenge(&mut a);
    let ttl_ms = 30_000;
    let stale = answer_at(&mut b, B_AHEAD_MS + 10 + ttl_ms + 1_000, &late);
    assert_eq!(stale.status(), 401);
    assert_eq!(b.auth_stats().digest_ok, 1);
}

#[test]
fn a_restarted_edge_refuses_its_own_old_nonces() {
    let mut a = edge("edge-a", 0x1111_2222, true);
    let ok = answer_to_a_challenge(&mut a);
    // Same node name, new start (new epoch): the old nonce is not its own any more.
    let mut a2 = edge("edge-a", 0x5555_6666, true);
    assert_eq!(answer_at(&mut a2, 20, &ok).status(), 401);
    assert_eq!(a2.auth_stats().digest_ok, 0);
}

#[test]
fn without_the_cluster_another_instance_is_refused_as_before() {
    let mut a = edge("edge-a", 0x1111_2222, false);
    let mut b = edge("edge-b", 0x3333_4444, false);
    let ok = answer_to_a_challenge(&mut a);
    assert_eq!(answer_at(&mut b, B_AHEAD_MS + 20, &ok).status(), 401);
    assert_eq!(b.auth_stats().bad_nonce, 1);
}
