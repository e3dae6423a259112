//! Issue 13: one REGISTER must not take a shard down. RFC 3261 §19.1.4 equality is not
//! transitive (`sip:a@h;x=1` and `sip:a@h;x=2` both equal a stored `sip:a@h`, not each
//! other), so each stored binding is claimed by at most one Contact of a request; counts are
//! checked; the table stays consistent afterwards (no slot shared by two bindings, no loop).
//! Also `[registrar] max_bindings`: 503 with Retry-After at the cap, refreshes and removals
//! still pass, room comes back as bindings go. Sans-IO, on a virtual clock.
#![allow(clippy::unwrap_used)]

mod common;

use common::{answer_at, bindings, config, reg, Reg, DOMAIN};
use sipedge_core::{Core, CoreConfig, Millis, Overflow};

const C1: &str = "sip:alice@192.0.2.50:40123";

fn aor(user: &str) -> String {
    format!("sip:{user}@{DOMAIN}")
}

fn core_with(f: impl Fn(&mut CoreConfig)) -> Core {
    let mut cfg = config();
    f(&mut cfg);
    Core::new(cfg)
}

/// Registers `contact` for `user` with its own Call-ID.
fn bind(c: &mut Core, now: u64, user: &str, contact: &str) -> u16 {
    let r = reg()
        .to(&format!("<{}>", aor(user)))
        .call_id(&format!("{user}-{contact}"))
        .contact(&format!("<{contact}>"));
    answer_at(c, now, &r).status()
}

/// The table is still sound: other AoRs get bindings of their own (a slot freed twice would
/// hand one slot to two of them), a wildcard removal empties alice, and the bindings counted
/// by the core match the ones a lookup finds.
fn assert_sound(c: &mut Core, now: u64) {
    for (u, contact) in [
        ("bob", "sip:bob@198.51.100.1:5060"),
        ("carol", "sip:carol@198.51.100.2:5060"),
        ("dave", "sip:dave@198.51.100.3:5060"),
    ] {
        assert_eq!(bind(c, now, u, contact), 200, "{u}");
    }
    for (u, contact) in [
        ("bob", "sip:bob@198.51.100.1:5060"),
        ("carol", "sip:carol@198.51.100.2:5060"),
        ("dave", "sip:dave@198.51.100.3:5060"),
    ] {
        assert_eq!(bindings(c, now, &aor(u)), [contact], "{u}");
    }
    let star = reg()
        .contact("*")
        .expires("0")
        .call_id("wildcard")
        .cseq(1000);
    let a = answer_at(c, now, &star);
    assert_eq!(a.status(), 200, "{}", a.reason());
    assert!(a.contacts().is_empty(), "{:?}", a.contacts());
    assert!(bindings(c, now, &aor("alice")).is_empty());
    let s = c.stats();
    let live = s.bindings_created - s.bindings_removed - s.bindings_expired;
    assert_eq!(live, 3, "only bob, carol and dave are left: {s:?}");
}

/// Bind `<sip:alice@h>`, then one REGISTER with two removals that both equal it and two new
/// contacts: the stored binding goes once, the two new ones are added, the 200 OK lists
/// exactly them — in both overflow modes, also at `max_contacts` = the request's 4 Contacts.
#[test]
fn two_removals_matching_one_binding_remove_it_once() {
    for (overflow, max) in [
        (Overflow::Reject, 10),
        (Overflow::ReplaceOldest, 10),
        (Overflow::Reject, 4),
        (Overflow::ReplaceOldest, 4),
    ] {
        let mut c = core_with(|cfg| {
            cfg.registrar.overflow = overflow;
            cfg.registrar.max_contacts = max;
        });
        assert_eq!(
            answer_at(&mut c, 0, &reg().contact(&format!("<{C1}>"))).status(),
            200
        );
        let r = reg()
            .cseq(2)
            .contact(&format!("<{C1};x=1>;expires=0"))
            .contact(&format!("<{C1};x=2>;expires=0"))
            .contact("<sip:b@203.0.113.2>")
            .contact("<sip:c@203.0.113.3>");
        let a = answer_at(&mut c, 1000, &r);
        assert_eq!(a.status(), 200, "{overflow:?}/{max}: {}", a.reason());
        assert_eq!(
            a.contacts(),
            [
                "<sip:b@203.0.113.2>;expires=3600",
                "<sip:c@203.0.113.3>;expires=3600"
            ],
            "{overflow:?}/{max}"
        );
        assert_eq!(
            bindings(&c, 1000, &aor("alice")),
            ["sip:b@203.0.113.2", "sip:c@203.0.113.3"]
        );
        assert_eq!(c.stats().bindings_removed, 1, "removed once");
        assert_sound(&mut c, 2000);
    }
}

struct Variant {
    what: &'static str,
    request: Reg,
    code: u16,
    after: Vec<String>,
}

/// The variants: one contact listed twice, a removal and an update of one stored binding
/// (both orders), a `*` mixed in. Each leaves the table sound.
#[test]
fn variants_touch_a_stored_binding_at_most_once() {
    let x = |p: &str| format!("{C1};{p}");
    let variants = vec![
        Variant {
            what: "same contact twice: the last one wins (removal)",
            request: reg()
                .cseq(2)
                .contact(&format!("<{C1}>;expires=120"))
                .contact(&format!("<{C1}>;expires=0")),
            code: 200,
            after: vec![],
        },
        Variant {
            what: "same contact twice: the last one wins (refresh)",
            request: reg()
                .cseq(2)
                .contact(&format!("<{C1}>;expires=0"))
                .contact(&format!("<{C1}>;expires=120")),
            code: 200,
            after: vec![C1.into()],
        },
        Variant {
            what: "removal then update of one stored binding: removed, the update adds",
            request: reg()
                .cseq(2)
                .contact(&format!("<{}>;expires=0", x("x=1")))
                .contact(&format!("<{}>;expires=120", x("x=2"))),
            code: 200,
            after: vec![x("x=2")],
        },
        Variant {
            what: "update then removal of one stored binding: updated, the removal finds nothing",
            request: reg()
                .cseq(2)
                .contact(&format!("<{}>;expires=120", x("x=1")))
                .contact(&format!("<{}>;expires=0", x("x=2"))),
            code: 200,
            after: vec![x("x=1")],
        },
        Variant {
            what: "two updates of one stored binding: one updates, one adds",
            request: reg()
                .cseq(2)
                .contact(&format!("<{}>;expires=120", x("x=1")))
                .contact(&format!("<{}>;expires=120", x("x=2"))),
            code: 200,
            after: vec![x("x=1"), x("x=2")],
        },
        Variant {
            what: "a `*` mixed in: 400, nothing changes",
            request: reg()
                .cseq(2)
                .expires("0")
                .contact("*")
                .contact(&format!("<{}>;expires=0", x("x=1")))
                .contact(&format!("<{}>;expires=0", x("x=2"))),
            code: 400,
            after: vec![C1.into()],
        },
    ];
    for overflow in [Overflow::Reject, Overflow::ReplaceOldest] {
        for v in &variants {
            let mut c = core_with(|cfg| {
                cfg.registrar.overflow = overflow;
                cfg.registrar.max_contacts = 2;
            });
            assert_eq!(
                answer_at(&mut c, 0, &reg().contact(&format!("<{C1}>"))).status(),
                200
            );
            let a = answer_at(&mut c, 1000, &v.request);
            assert_eq!(
                a.status(),
                v.code,
                "{overflow:?}: {}: {}",
                v.what,
                a.reason()
            );
            assert_eq!(
                bindings(&c, 1000, &aor("alice")),
                v.after,
                "{overflow:?}: {}",
                v.what
            );
            assert_sound(&mut c, 2000);
        }
    }
}

/// `[registrar] max_bindings`: at the cap a REGISTER that adds gets 503 with Retry-After and
/// is counted; a refresh and a removal still pass; room comes back by removal and by expiry.
#[test]
fn max_bindings_caps_the_table() {
    let mut c = core_with(|cfg| cfg.registrar.max_bindings = 2);
    assert_eq!(bind(&mut c, 0, "alice", C1), 200);
    assert_eq!(bind(&mut c, 0, "bob", "sip:bob@198.51.100.1"), 200);
    let full = reg()
        .to(&format!("<{}>", aor("carol")))
        .call_id("carol-1")
        .contact("<sip:carol@198.51.100.2>");
    let a = answer_at(&mut c, 10, &full);
    assert_eq!(
        (a.status(), a.reason().as_str()),
        (503, "Service Unavailable")
    );
    assert_eq!(a.header("Retry-After").as_deref(), Some("300"));
    assert!(bindings(&c, 10, &aor("carol")).is_empty());
    assert_eq!(c.stats().registers_table_full, 1);
    // A second contact for alice grows the table too.
    let more = reg()
        .call_id(&format!("alice-{C1}"))
        .cseq(2)
        .contact(&format!("<{C1}>"))
        .contact("<sip:alice@203.0.113.7>");
    assert_eq!(answer_at(&mut c, 20, &more).status(), 503);
    // A refresh passes at the cap, and so does a removal (which makes room).
    let refresh = reg()
        .call_id(&format!("alice-{C1}"))
        .cseq(3)
        .contact(&format!("<{C1}>"));
    assert_eq!(answer_at(&mut c, 30, &refresh).status(), 200);
    let bye = reg()
        .to(&format!("<{}>", aor("bob")))
        .call_id("bob-sip:bob@198.51.100.1")
        .cseq(2)
        .contact("<sip:bob@198.51.100.1>;expires=0");
    assert_eq!(answer_at(&mut c, 40, &bye).status(), 200);
    assert_eq!(answer_at(&mut c, 50, &full.clone().cseq(2)).status(), 200);
    assert_eq!(bindings(&c, 50, &aor("carol")), ["sip:carol@198.51.100.2"]);
    // Full again; once the bindings expire, new ones are taken.
    let dave = reg()
        .to(&format!("<{}>", aor("dave")))
        .call_id("dave-1")
        .contact("<sip:dave@198.51.100.3>");
    assert_eq!(answer_at(&mut c, 60, &dave).status(), 503);
    let later = 3_700_000;
    c.handle_timeout(Millis(later));
    assert_eq!(
        answer_at(&mut c, later, &dave.clone().cseq(2)).status(),
        200
    );
    assert_eq!(c.stats().registers_table_full, 3);
}

/// The cap is the whole edge's: each of N shards holds `max_bindings / N` (rounded up).
#[test]
fn max_bindings_is_split_across_shards() {
    // Two shards: each takes ceil(3 / 2) = 2. Only AoRs this shard owns are stored here.
    let mut c = core_with(|cfg| {
        cfg.registrar.max_bindings = 3;
        cfg.shards = 2;
    });
    let mut stored = 0;
    let mut refused = 0;
    for n in 0..40 {
        let user = format!("u{n}");
        let r = reg()
            .to(&format!("<{}>", aor(&user)))
            .call_id(&user)
            .contact(&format!("<sip:{user}@198.51.100.9>"));
        c.handle_datagram(
            Millis(0),
            sipedge_core::LocalId(0),
            common::PHONE.parse().unwrap(),
            &r.bytes(),
        );
        for a in common::drain(&mut c) {
            match a.status() {
                200 => stored += 1,
                503 => refused += 1,
                s => panic!("{s}"),
            }
        }
        while c.poll_shard_msg().is_some() {}
    }
    assert_eq!(stored, 2);
    assert!(refused > 0);
}
