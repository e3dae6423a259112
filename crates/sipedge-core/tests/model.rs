//! Model test: random sequences of REGISTERs (new, refresh, remove, too brief, stale CSeq,
//! wildcard, queries, IPv4 and IPv6 sources, contacts with and without the AoR's user) and
//! time jumps, against a plain `Vec` model of RFC 3261 §10.3 with `max_contacts = 3`.
//!
//! After every request: the reply code and the 200 OK's Contact list (URIs and remaining
//! expiries) match the model. After every time jump (timers run as the shard loop runs
//! them): each AoR's bindings match, and the number of bindings held is exactly what the
//! wheel must have left (a binding goes at the first tick at or after its expiry).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{reg, Answer, DOMAIN};
use proptest::prelude::*;
use sipedge_core::{Core, LocalId, Millis};

const MAX_CONTACTS: usize = 3;
const TICK: u64 = 10;

#[derive(Clone, Debug)]
enum Op {
    /// User, contacts (index, expires param), Expires header, Call-ID choice, CSeq step
    /// (0 = stale: reuse the last CSeq minus one), IPv6 source.
    Register {
        user: usize,
        contacts: Vec<(usize, Option<u32>)>,
        header: Option<u32>,
        call: usize,
        fresh_cseq: bool,
        v6: bool,
    },
    Star {
        user: usize,
        call: usize,
        valid: bool,
    },
    Query(usize),
    Advance(u64),
}

fn expires() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![
        Just(None),
        Just(Some(0)),
        Just(Some(30)),
        Just(Some(60)),
        Just(Some(61)),
        Just(Some(600)),
        Just(Some(100_000)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (
            0..3usize,
            proptest::sample::subsequence((0..5usize).collect::<Vec<_>>(), 0..=4)
                .prop_flat_map(|idx| {
                    let n = idx.len();
                    (Just(idx), proptest::collection::vec(expires(), n))
                })
                .prop_map(|(idx, exp)| idx.into_iter().zip(exp).collect::<Vec<_>>()),
            expires(),
            0..2usize,
            proptest::bool::weighted(0.9),
            any::<bool>(),
        )
            .prop_map(|(user, contacts, header, call, fresh_cseq, v6)| Op::Register {
                user,
                contacts,
                header,
                call,
                fresh_cseq,
                v6
            }),
        1 => (0..3usize, 0..2usize, proptest::bool::weighted(0.8))
            .prop_map(|(user, call, valid)| Op::Star { user, call, valid }),
        1 => (0..3usize).prop_map(Op::Query),
        2 => prop_oneof![1u64..100, 1_000u64..70_000, 500_000u64..8_000_000].prop_map(Op::Advance),
    ]
}

/// Contact `i` of `user`: even ones carry the AoR's user, odd ones do not.
fn contact(user: usize, i: usize) -> String {
    if i.is_multiple_of(2) {
        format!("sip:u{user}@10.0.{user}.{i}:5060")
    } else {
        format!("sip:10.0.{user}.{i}:{}", 5070 + i)
    }
}

#[derive(Clone, Debug)]
struct Binding {
    contact: String,
    call: usize,
    cseq: u32,
    expires_at: u64,
}

#[derive(Default)]
struct Model {
    aors: HashMap<usize, Vec<Binding>>,
    /// Last CSeq sent per (user, call).
    cseq: HashMap<(usize, usize), u32>,
}

impl Model {
    /// The reply the registrar must give, applying the request when it succeeds.
    fn register(
        &mut self,
        now: u64,
        user: usize,
        contacts: &[(usize, Option<u32>)],
        header: Option<u32>,
        call: usize,
        cseq: u32,
    ) -> u16 {
        if contacts.len() > MAX_CONTACTS {
            return 403;
        }
        let items: Vec<(String, u32)> = contacts
            .iter()
            .map(|&(i, e)| (contact(user, i), e.or(header).unwrap_or(3600).min(7200)))
            .collect();
        if items.iter().any(|&(_, e)| e != 0 && e < 60) {
            return 423;
        }
        let list = self.aors.entry(user).or_default();
        for (c, _) in &items {
            if let Some(b) = list.iter().find(|b| &b.contact == c) {
                if b.call == call && cseq <= b.cseq {
                    return 500;
                }
            }
        }
        let existing = |c: &String| list.iter().any(|b| &b.contact == c);
        let removed = items.iter().filter(|(c, e)| *e == 0 && existing(c)).count();
        let added = items
            .iter()
            .filter(|(c, e)| *e != 0 && !existing(c))
            .count();
        if list.len() - removed + added > MAX_CONTACTS {
            return 403;
        }
        for (c, e) in items {
            let pos = list.iter().position(|b| b.contact == c);
            match (pos, e) {
                (Some(p), 0) => {
                    list.remove(p);
                }
                (None, 0) => {}
                (Some(p), e) => {
                    list[p] = Binding {
                        contact: c,
                        call,
                        cseq,
                        expires_at: now + u64::from(e) * 1000,
                    }
                }
                (None, e) => list.push(Binding {
                    contact: c,
                    call,
                    cseq,
                    expires_at: now + u64::from(e) * 1000,
                }),
            }
        }
        200
    }

    fn star(&mut self, user: usize, call: usize, cseq: u32) -> u16 {
        let list = self.aors.entry(user).or_default();
        if list.iter().any(|b| b.call == call && cseq <= b.cseq) {
            return 500;
        }
        list.clear();
        200
    }

    /// The 200 OK's Contact values for `user` at `now`.
    fn listed(&self, now: u64, user: usize) -> Vec<String> {
        self.aors
            .get(&user)
            .map(|l| {
                l.iter()
                    .filter(|b| b.expires_at > now)
                    .map(|b| {
                        format!(
                            "<{}>;expires={}",
                            b.contact,
                            (b.expires_at - now).div_ceil(1000)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What the wheel has removed by `now`: everything whose expiry tick has come.
    fn expire(&mut self, now: u64) {
        for list in self.aors.values_mut() {
            list.retain(|b| b.expires_at.div_ceil(TICK) * TICK > now);
        }
    }

    fn held(&self) -> usize {
        self.aors.values().map(Vec::len).sum()
    }

    fn next_cseq(&mut self, user: usize, call: usize, fresh: bool) -> u32 {
        let c = self.cseq.entry((user, call)).or_insert(0);
        if fresh || *c < 2 {
            *c += 1;
            *c
        } else {
            *c - 1
        }
    }
}

fn send(core: &mut Core, now: u64, bytes: &[u8], v6: bool) -> Answer {
    let src = if v6 {
        "[2001:db8::50]:40123"
    } else {
        common::PHONE
    };
    core.handle_datagram(Millis(now), LocalId(0), src.parse().unwrap(), bytes);
    let mut r = common::drain(core);
    assert_eq!(r.len(), 1);
    r.remove(0)
}

fn run(ops: Vec<Op>) {
    let mut core = Core::new(sipedge_core::CoreConfig {
        registrar: sipedge_core::RegistrarConfig {
            max_contacts: MAX_CONTACTS as u16,
            ..Default::default()
        },
        // The model has no keepalives (the IPv6 source makes bindings NATed).
        nat: sipedge_core::NatConfig {
            ping: sipedge_core::PingMode::Disabled,
            ..Default::default()
        },
        ..common::config()
    });
    let mut model = Model::default();
    let mut now = 1_000u64;
    for (n, op) in ops.into_iter().enumerate() {
        let branch = format!("z9hG4bK-op{n}");
        match op {
            Op::Register {
                user,
                contacts,
                header,
                call,
                fresh_cseq,
                v6,
            } => {
                let cseq = model.next_cseq(user, call, fresh_cseq);
                let mut r = reg()
                    .to(&format!("<sip:u{user}@{DOMAIN}>"))
                    .call_id(&format!("call{call}"))
                    .cseq(cseq)
                    .branch(&branch);
                for &(i, e) in &contacts {
                    r = r.contact(&match e {
                        Some(e) => format!("<{}>;expires={e}", contact(user, i)),
                        None => format!("<{}>", contact(user, i)),
                    });
                }
                if let Some(h) = header {
                    r = r.expires(&h.to_string());
                }
                let a = send(&mut core, now, &r.bytes(), v6);
                let want = model.register(now, user, &contacts, header, call, cseq);
                assert_eq!(
                    a.status(),
                    want,
                    "op {n}: {contacts:?} header {header:?} cseq {cseq}"
                );
                if want == 200 {
                    assert_eq!(a.contacts(), model.listed(now, user), "op {n}");
                }
            }
            Op::Star { user, call, valid } => {
                let cseq = model.next_cseq(user, call, true);
                let r = reg()
                    .to(&format!("<sip:u{user}@{DOMAIN}>"))
                    .call_id(&format!("call{call}"))
                    .cseq(cseq)
                    .branch(&branch)
                    .contact("*")
                    .expires(if valid { "0" } else { "60" });
                let a = send(&mut core, now, &r.bytes(), false);
                let want = if valid {
                    model.star(user, call, cseq)
                } else {
                    400
                };
                assert_eq!(a.status(), want, "op {n}: star");
                if want == 200 {
                    assert!(a.contacts().is_empty());
                }
            }
            Op::Query(user) => {
                let r = reg()
                    .to(&format!("<sip:u{user}@{DOMAIN}>"))
                    .call_id("query")
                    .branch(&branch);
                let a = send(&mut core, now, &r.bytes(), false);
                assert_eq!(a.status(), 200);
                assert_eq!(a.contacts(), model.listed(now, user), "op {n}: query");
            }
            Op::Advance(ms) => {
                now += ms;
                while core.poll_timeout().is_some_and(|t| t.0 <= now) {
                    core.handle_timeout(Millis(now));
                }
                model.expire(now);
                assert_eq!(
                    core.binding_count(),
                    model.held(),
                    "op {n}: held after {ms} ms"
                );
                for user in 0..3 {
                    let got: Vec<String> = core
                        .lookup(Millis(now), format!("sip:u{user}@{DOMAIN}").as_bytes())
                        .unwrap_or_default()
                        .into_iter()
                        .map(|c| String::from_utf8(c.uri).unwrap())
                        .collect();
                    let want: Vec<String> = model
                        .aors
                        .get(&user)
                        .map(|l| {
                            l.iter()
                                .filter(|b| b.expires_at > now)
                                .map(|b| b.contact.clone())
                                .collect()
                        })
                        .unwrap_or_default();
                    assert_eq!(got, want, "op {n}: u{user}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn registrar_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops);
    }
}
