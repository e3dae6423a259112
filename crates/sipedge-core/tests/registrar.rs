//! RFC 3261 §10.3, rule by rule: each row is a history of REGISTERs that succeeded, one
//! more request, and what the UA notices — the reply code and reason, the Contact list of
//! the 200 OK — plus the bindings left behind. Sans-IO, on a virtual clock.
#![allow(clippy::unwrap_used)]

mod common;

use common::{answer_at, bindings, config, reg, Reg, DOMAIN};
use sipedge_core::{Core, CoreConfig, Overflow};

const C1: &str = "sip:alice@192.0.2.50:40123";
const C2: &str = "sip:alice@198.51.100.7:5060";
const C3: &str = "sip:alice@203.0.113.9:5062;transport=udp";

struct Case {
    rule: &'static str,
    cfg: fn(&mut CoreConfig),
    history: Vec<Reg>,
    request: Reg,
    code: u16,
    reason: &'static str,
    /// The 200 OK's Contact values, exactly (empty for a failure).
    contacts: Vec<String>,
    /// alice's contact URIs afterwards.
    after: Vec<&'static str>,
}

fn same(_: &mut CoreConfig) {}

fn listed(uri: &str, params: &str) -> String {
    format!("<{uri}>;expires={params}")
}

fn cases() -> Vec<Case> {
    let c1 = || reg().contact(&format!("<{C1}>"));
    vec![
        Case {
            rule: "new binding, no interval asked: default_expires (3600)",
            cfg: same,
            history: vec![],
            request: c1(),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C1, "3600")],
            after: vec![C1],
        },
        Case {
            rule: "step 7: the contact's expires parameter wins over Expires",
            cfg: same,
            history: vec![],
            request: reg().contact(&format!("<{C1}>;expires=120")).expires("300"),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C1, "120")],
            after: vec![C1],
        },
        Case {
            rule: "step 7: else the Expires header",
            cfg: same,
            history: vec![],
            request: c1().expires("300"),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C1, "300")],
            after: vec![C1],
        },
        Case {
            rule: "step 7: below min_expires → 423, nothing stored",
            cfg: same,
            history: vec![],
            request: c1().expires("30"),
            code: 423,
            reason: "Interval Too Brief",
            contacts: vec![],
            after: vec![],
        },
        Case {
            rule: "step 7: one contact too brief fails the whole request",
            cfg: same,
            history: vec![],
            request: c1().contact(&format!("<{C2}>;expires=10")),
            code: 423,
            reason: "Interval Too Brief",
            contacts: vec![],
            after: vec![],
        },
        Case {
            rule: "step 7: above max_expires → clamped to 7200",
            cfg: same,
            history: vec![],
            request: c1().expires("100000"),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C1, "7200")],
            after: vec![C1],
        },
        Case {
            rule: "step 7: refresh with a higher CSeq",
            cfg: same,
            history: vec![c1()],
            request: c1().cseq(2).expires("600"),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C1, "600")],
            after: vec![C1],
        },
        Case {
            rule: "step 7: expires=0 removes the binding",
            cfg: same,
            history: vec![c1().contact(&format!("<{C2}>"))],
            request: reg().contact(&format!("<{C1}>;expires=0")).cseq(2),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C2, "3600")],
            after: vec![C2],
        },
        Case {
            rule: "step 7: expires=0 for an unknown contact changes nothing",
            cfg: same,
            history: vec![],
            request: c1().expires("0"),
            code: 200,
            reason: "OK",
            contacts: vec![],
            after: vec![],
        },
        Case {
            rule: "step 7: same Call-ID, lower CSeq → fails, nothing changes",
            cfg: same,
            history: vec![c1().cseq(5)],
            request: c1().cseq(4).expires("0"),
            code: 500,
            reason: "Out of Order CSeq",
            contacts: vec![],
            after: vec![C1],
        },
        Case {
            rule: "step 7: same Call-ID, equal CSeq, another request → fails",
            cfg: same,
            history: vec![c1().cseq(5)],
            request: c1().cseq(5).branch("z9hG4bK-other").expires("0"),
            code: 500,
            reason: "Out of Order CSeq",
            contacts: vec![],
            after: vec![C1],
        },
        Case {
            rule: "step 7: a retransmission gets its 200 again, nothing changes",
            cfg: same,
            history: vec![c1().cseq(5).expires("600")],
            request: c1().cseq(5).expires("600"),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C1, "600")],
            after: vec![C1],
        },
        Case {
            rule: "step 7: another Call-ID updates whatever its CSeq",
            cfg: same,
            history: vec![c1().cseq(5)],
            request: c1().call_id("other@192.0.2.50").cseq(1).expires("900"),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C1, "900")],
            after: vec![C1],
        },
        Case {
            rule: "step 6: Contact * with Expires: 0 removes every binding",
            cfg: same,
            history: vec![c1().contact(&format!("<{C2}>"))],
            request: reg().contact("*").expires("0").cseq(2),
            code: 200,
            reason: "OK",
            contacts: vec![],
            after: vec![],
        },
        Case {
            rule: "step 6: Contact * without Expires: 0 → 400",
            cfg: same,
            history: vec![c1()],
            request: reg().contact("*").expires("60").cseq(2),
            code: 400,
            reason: "Invalid Wildcard Contact",
            contacts: vec![],
            after: vec![C1],
        },
        Case {
            rule: "step 6: Contact * with another contact → 400",
            cfg: same,
            history: vec![c1()],
            request: reg().contact("*").contact(&format!("<{C2}>")).expires("0").cseq(2),
            code: 400,
            reason: "Invalid Wildcard Contact",
            contacts: vec![],
            after: vec![C1],
        },
        Case {
            rule: "step 6: Contact * obeys the CSeq rule too",
            cfg: same,
            history: vec![c1().cseq(7)],
            request: reg().contact("*").expires("0").cseq(3),
            code: 500,
            reason: "Out of Order CSeq",
            contacts: vec![],
            after: vec![C1],
        },
        Case {
            rule: "several contacts in one request, q kept and listed",
            cfg: same,
            history: vec![],
            request: reg()
                .contact(&format!("<{C1}>;q=0.7, <{C2}>;expires=200"))
                .contact(&format!("<{C3}>;q=1")),
            code: 200,
            reason: "OK",
            contacts: vec![
                listed(C1, "3600;q=0.7"),
                listed(C2, "200"),
                listed(C3, "3600;q=1"),
            ],
            after: vec![C2, C3, C1],
        },
        Case {
            rule: "step 8: a REGISTER without Contact is a query",
            cfg: same,
            history: vec![c1().expires("1200")],
            request: reg().cseq(2),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C1, "1200")],
            after: vec![C1],
        },
        Case {
            rule: "step 5: the AoR is case-insensitive by default",
            cfg: same,
            history: vec![c1()],
            request: reg().to(&format!("<sip:ALICE@{DOMAIN}:5060;user=phone>")).cseq(2),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C1, "3600")],
            after: vec![C1],
        },
        Case {
            rule: "step 5: case_sensitive = true keeps ALICE apart",
            cfg: |c| c.registrar.case_sensitive = true,
            history: vec![c1()],
            request: reg().to(&format!("<sip:ALICE@{DOMAIN}>")).cseq(2),
            code: 200,
            reason: "OK",
            contacts: vec![],
            after: vec![C1],
        },
        Case {
            rule: "§19.1.4: the same contact written differently is one binding",
            cfg: same,
            history: vec![reg().contact("<sip:alice@HOST.example;transport=UDP>")],
            request: reg().contact("<sip:alice@host.example;transport=udp>").cseq(2),
            code: 200,
            reason: "OK",
            contacts: vec![listed("sip:alice@host.example;transport=udp", "3600")],
            after: vec!["sip:alice@host.example;transport=udp"],
        },
        Case {
            rule: "step 1: a Request-URI of another domain → 403",
            cfg: same,
            history: vec![],
            request: c1().ruri("sip:elsewhere.example.net"),
            code: 403,
            reason: "Domain Not Served",
            contacts: vec![],
            after: vec![],
        },
        Case {
            rule: "step 5: an AoR of another domain → 404",
            cfg: same,
            history: vec![],
            request: c1().to("<sip:alice@elsewhere.example.net>"),
            code: 404,
            reason: "Not Found",
            contacts: vec![],
            after: vec![],
        },
        Case {
            rule: "step 5: a tel: AoR → 404",
            cfg: same,
            history: vec![],
            request: c1().to("<tel:+15551234567>"),
            code: 404,
            reason: "Not Found",
            contacts: vec![],
            after: vec![],
        },
        Case {
            rule: "max_contacts with overflow = reject → 403, nothing changes",
            cfg: |c| c.registrar.max_contacts = 2,
            history: vec![c1().contact(&format!("<{C2}>"))],
            request: reg().contact(&format!("<{C3}>")).cseq(2),
            code: 403,
            reason: "Too Many Contacts",
            contacts: vec![],
            after: vec![C1, C2],
        },
        Case {
            rule: "max_contacts: more contacts in one request than an AoR holds → 403",
            cfg: |c| {
                c.registrar.max_contacts = 2;
                c.registrar.overflow = Overflow::ReplaceOldest;
            },
            history: vec![],
            request: c1().contact(&format!("<{C2}>, <{C3}>")),
            code: 403,
            reason: "Too Many Contacts",
            contacts: vec![],
            after: vec![],
        },
        Case {
            rule: "max_contacts: a refresh at the limit is fine",
            cfg: |c| c.registrar.max_contacts = 2,
            history: vec![c1().contact(&format!("<{C2}>"))],
            request: c1().cseq(2).expires("100"),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C1, "100"), listed(C2, "3600")],
            after: vec![C1, C2],
        },
        Case {
            rule: "max_contacts with overflow = replace_oldest drops the oldest",
            cfg: |c| {
                c.registrar.max_contacts = 2;
                c.registrar.overflow = Overflow::ReplaceOldest;
            },
            history: vec![c1(), reg().contact(&format!("<{C2}>")).cseq(2)],
            request: reg().contact(&format!("<{C3}>")).cseq(3),
            code: 200,
            reason: "OK",
            contacts: vec![listed(C2, "3600"), listed(C3, "3600")],
            after: vec![C2, C3],
        },
        Case {
            rule: "RFC 5626: the same instance and reg-id from a new port replaces the flow",
            cfg: same,
            history: vec![reg().contact(&format!(
                "<{C1}>;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1"
            ))],
            request: reg()
                .contact(&format!(
                    "<{C2}>;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1"
                ))
                .cseq(2),
            code: 200,
            reason: "OK",
            contacts: vec![listed(
                C2,
                "3600;+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1",
            )],
            after: vec![C2],
        },
        Case {
            rule: "RFC 5626: another reg-id of the same instance is another flow",
            cfg: same,
            history: vec![reg().contact(&format!("<{C1}>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"))],
            request: reg()
                .contact(&format!("<{C1}>;+sip.instance=\"<urn:uuid:1>\";reg-id=2"))
                .cseq(2),
            code: 200,
            reason: "OK",
            contacts: vec![
                listed(C1, "3600;+sip.instance=\"<urn:uuid:1>\";reg-id=1"),
                listed(C1, "3600;+sip.instance=\"<urn:uuid:1>\";reg-id=2"),
            ],
            after: vec![C1, C1],
        },
    ]
}

#[test]
fn every_rule_of_10_3() {
    let mut failures = Vec::new();
    for case in cases() {
        let mut cfg = config();
        (case.cfg)(&mut cfg);
        let mut core = Core::new(cfg);
        for (n, h) in case.history.iter().enumerate() {
            let a = answer_at(&mut core, 1000, h);
            assert_eq!(a.status(), 200, "{}: history step {n} failed", case.rule);
        }
        // Everything at one instant: the listed expiries are the granted intervals.
        let now = 1000;
        let a = answer_at(&mut core, now, &case.request);
        let got = (
            a.status(),
            a.reason(),
            if a.status() == 200 {
                a.contacts()
            } else {
                vec![]
            },
        );
        let after = bindings(&core, now, &format!("sip:alice@{DOMAIN}"));
        let want = (case.code, case.reason.to_string(), case.contacts.clone());
        if got != want || after != case.after {
            failures.push(format!(
                "{}:\n   got  {got:?} after {after:?}\n   want {want:?} after {:?}",
                case.rule, case.after
            ));
        }
        if case.code == 423 {
            assert_eq!(
                a.header("Min-Expires").as_deref(),
                Some("60"),
                "{}",
                case.rule
            );
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_200_carries_date_path_and_outbound() {
    // The REGISTER comes straight from PHONE: its Path is kept only with `always` (the
    // default, "trusted", keeps only an `[[ip_auth]]` source's; tests/relay/path.rs).
    let config = || {
        let mut c = config();
        c.registrar.accept_path = sipedge_core::AcceptPath::Always;
        c
    };
    let mut core = Core::new(config());
    // Sun, 06 Nov 1994 08:49:37 GMT at monotonic 5 s.
    core.set_wall_clock(sipedge_core::Millis(5000), 784_111_777_000);
    let path = "<sip:p1.example.net;lr>";
    let with_path = reg()
        .contact(&format!("<{C1}>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"))
        .extra(&format!("Path: {path}"))
        .extra("Supported: path, outbound");
    let a = answer_at(&mut core, 5000, &with_path);
    assert_eq!(a.status(), 200);
    assert_eq!(
        a.header("Date").as_deref(),
        Some("Sun, 06 Nov 1994 08:49:37 GMT")
    );
    assert_eq!(a.header("Path").as_deref(), Some(path));
    assert_eq!(a.header("Require").as_deref(), Some("outbound"));
    let b = core
        .lookup(
            sipedge_core::Millis(5000),
            format!("sip:alice@{DOMAIN}").as_bytes(),
        )
        .unwrap();
    assert_eq!(b[0].path, path.as_bytes());
    assert_eq!(b[0].source, common::PHONE.parse().unwrap());
    assert_eq!(b[0].user_agent, b"TestPhone/1.0");
    assert_eq!(b[0].cseq, 1);
    assert_eq!(b[0].reg_id, Some(1));

    // Without Supported: path the Path is stored but not echoed.
    let mut core = Core::new(config());
    let a = answer_at(
        &mut core,
        5000,
        &reg()
            .contact(&format!("<{C1}>"))
            .extra(&format!("Path: {path}")),
    );
    assert_eq!(a.status(), 200);
    assert_eq!(a.header("Path"), None);
    assert_eq!(a.header("Require"), None);
    assert_eq!(a.header("Date"), None, "no wall clock given, no Date");
    let b = core
        .lookup(
            sipedge_core::Millis(5000),
            format!("sip:alice@{DOMAIN}").as_bytes(),
        )
        .unwrap();
    assert_eq!(b[0].path, path.as_bytes());
}

#[test]
fn remaining_expiry_counts_down() {
    let mut core = Core::new(config());
    answer_at(
        &mut core,
        0,
        &reg().contact(&format!("<{C1}>")).expires("600"),
    );
    let a = answer_at(&mut core, 100_000, &reg().cseq(2));
    assert_eq!(a.contacts(), vec![listed(C1, "500")]);
}
