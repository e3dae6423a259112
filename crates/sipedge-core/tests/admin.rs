//! Admin queries (issue 18) answered by the owner shard's core: one AoR, a listing in
//! bounded slices, a removal that is journalled.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use sipedge_core::admin::{AdminQuery, AdminReply, MAX_PAGE, MAX_SCAN_SLOTS, MAX_SLICE_BINDINGS};
use sipedge_core::{Core, CoreConfig, Millis};

fn ask(core: &mut Core, now: u64, q: AdminQuery) -> AdminReply {
    core.handle_admin(Millis(now), 7, q);
    let (token, reply) = core.poll_admin_reply().unwrap();
    assert_eq!(token, 7);
    assert!(core.poll_admin_reply().is_none());
    reply
}

fn register(core: &mut Core, user: &str, contact: &str) {
    let r = reg()
        .to(&format!("<sip:{user}@{DOMAIN}>"))
        .call_id(&format!("{user}-{contact}"))
        .contact(&format!("<{contact}>"));
    assert_eq!(answer_at(core, 1_000, &r).status(), 200);
}

#[test]
fn one_aor_shows_its_contacts_and_a_removal_is_journalled() {
    let mut core = Core::new(CoreConfig {
        journal: true,
        ..config()
    });
    register(&mut core, "alice", "sip:alice@192.0.2.50:5060");
    register(&mut core, "alice", "sip:alice@192.0.2.51:5060");
    while core.poll_journal().is_some() {}
    let aor = format!("sip:alice@{DOMAIN}").into_bytes();
    match ask(&mut core, 2_000, AdminQuery::Aor { aor: aor.clone() }) {
        AdminReply::Contacts { contacts, .. } => assert_eq!(contacts.len(), 2),
        other => panic!("{other:?}"),
    }
    // One contact only.
    let one = AdminQuery::Remove {
        aor: aor.clone(),
        contact: Some(b"sip:alice@192.0.2.51:5060".to_vec()),
    };
    assert!(matches!(
        ask(&mut core, 2_000, one),
        AdminReply::Removed { removed: 1, .. }
    ));
    assert!(core.poll_journal().is_some(), "the removal is journalled");
    assert_eq!(
        bindings(&core, 2_000, &format!("sip:alice@{DOMAIN}")),
        ["sip:alice@192.0.2.50:5060"]
    );
    // All.
    let all = AdminQuery::Remove { aor, contact: None };
    assert!(matches!(
        ask(&mut core, 2_000, all),
        AdminReply::Removed { removed: 1, .. }
    ));
    assert!(bindings(&core, 2_000, &format!("sip:alice@{DOMAIN}")).is_empty());
    // Not an AoR: an answer, not a panic.
    let bad = AdminQuery::Aor {
        aor: b"\xff not a uri".to_vec(),
    };
    assert_eq!(ask(&mut core, 2_000, bad), AdminReply::NotAnAor);
}

#[test]
fn a_listing_comes_in_bounded_slices_and_filters_by_prefix() {
    let mut core = Core::new(config());
    for i in 0..50 {
        register(
            &mut core,
            &format!("u{i:03}"),
            &format!("sip:u{i}@192.0.2.60:{}", 5000 + i),
        );
    }
    register(&mut core, "bob", "sip:bob@192.0.2.61:5060");
    let mut seen = Vec::new();
    let mut slot = Some(0);
    let mut queries = 0;
    while let Some(from_slot) = slot {
        let q = AdminQuery::List {
            prefix: b"u0".to_vec(),
            from_slot,
            limit: 7,
        };
        match ask(&mut core, 2_000, q) {
            AdminReply::Page {
                bindings,
                next_slot,
            } => {
                assert!(bindings.len() <= 7);
                assert!(next_slot.is_none_or(|n| n > from_slot && n - from_slot <= MAX_SCAN_SLOTS));
                seen.extend(
                    bindings
                        .into_iter()
                        .map(|b| String::from_utf8(b.aor).unwrap()),
                );
                slot = next_slot;
            }
            other => panic!("{other:?}"),
        }
        queries += 1;
        assert!(queries < 1000);
    }
    assert_eq!(seen.len(), 50);
    assert!(seen.iter().all(|a| a.starts_with("sip:u0")));
    assert!(seen.contains(&format!("sip:u007@{DOMAIN}")));
}

/// Issue 18: one slice is one shard turn's admin share, so it is small whatever the page
/// asks for — at most 256 bindings copied out and 1024 slots looked at (well under 1 ms).
const _: () = assert!(MAX_SLICE_BINDINGS <= 256 && MAX_SCAN_SLOTS <= 1024);

#[test]
fn one_slice_is_small_whatever_the_page_limit() {
    let mut core = Core::new(config());
    for i in 0..1100 {
        register(
            &mut core,
            &format!("u{i:04}"),
            &format!("sip:u{i}@192.0.2.60:{}", 5000 + i),
        );
    }
    let everything = AdminQuery::List {
        prefix: Vec::new(),
        from_slot: 0,
        limit: MAX_PAGE,
    };
    match ask(&mut core, 2_000, everything) {
        AdminReply::Page {
            bindings,
            next_slot,
        } => {
            assert_eq!(bindings.len(), MAX_SLICE_BINDINGS as usize);
            assert!(next_slot.is_some_and(|n| n <= MAX_SCAN_SLOTS));
        }
        other => panic!("{other:?}"),
    }
    // A prefix nothing matches: the slice ends after MAX_SCAN_SLOTS slots, not the table.
    let nothing = AdminQuery::List {
        prefix: b"nobody".to_vec(),
        from_slot: 0,
        limit: MAX_PAGE,
    };
    match ask(&mut core, 2_000, nothing) {
        AdminReply::Page {
            bindings,
            next_slot,
        } => {
            assert!(bindings.is_empty());
            assert_eq!(next_slot, Some(MAX_SCAN_SLOTS));
        }
        other => panic!("{other:?}"),
    }
}
