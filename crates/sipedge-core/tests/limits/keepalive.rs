//! Issue 16 item 1, sans-IO: in-dialog OPTIONS keepalives to both ends of a confirmed call,
//! the call ended with a BYE to both sides when an end goes silent or answers 481, BYEs at
//! the maximum duration — what each end receives, and the channel coming back.

use super::*;

/// T1 = 500 ms by default: a silent end is resent the OPTIONS at 32·T1, gone at 64·T1.
const HALF: u64 = 16_000;
const FULL: u64 = 32_000;

fn ka(keepalive_secs: u32, max_duration_secs: u32) -> DialogConfig {
    DialogConfig {
        keepalive_secs,
        max_duration_secs,
        ..DialogConfig::default()
    }
}

/// One shard, one channel for the whole server, bob registered.
fn one_channel(d: DialogConfig) -> Vec<Core> {
    edge(
        1,
        &spec_with(Vec::new(), Vec::new()),
        LimitsSpec {
            server: Limit {
                channels: 1,
                cps: 0,
            },
            ..LimitsSpec::default()
        },
        d,
    )
}

/// Runs every core's timers up to `to`, delivering the mesh; what they sent.
fn tick(c: &mut [Core], to: u64) -> Vec<Out> {
    let mut out = Vec::new();
    for core in c.iter_mut() {
        out.extend(advance(core, to));
    }
    out.extend(pump_all(c, to));
    out
}

fn sent<'a>(out: &'a [Out], method: &str) -> Vec<&'a Out> {
    out.iter()
        .filter(|o| o.method().as_deref() == Some(method))
        .collect()
}

fn to_alice(o: &Out) -> bool {
    o.to == addr(ALICE)
}

/// The Reason header (RFC 3326) of what the edge sent.
fn reason(o: &Out) -> String {
    let text = String::from_utf8_lossy(&o.bytes);
    text.lines()
        .find_map(|l| l.strip_prefix("Reason: "))
        .expect("a Reason header")
        .to_owned()
}

/// The end at `o.to` answers our request `o` with `code`, into shard `k`.
fn reply(c: &mut [Core], k: usize, now: u64, o: &Out, code: u16) -> Vec<Out> {
    let r = respond(o, code, "X", "", "");
    c[k].handle_datagram(Millis(now), sipedge_core::LocalId(0), o.to, &r);
    pump_all(c, now)
}

/// A call c1 up at t = 100 ms.
fn call_up(c: &mut [Core]) -> Out {
    let a = dial(c, 0, 0, "c1").unwrap();
    answer(c, 0, 100, &a, 200);
    a
}

#[test]
fn keepalives_go_to_both_ends_inside_the_dialog_at_the_period() {
    let mut c = one_channel(ka(30, 0));
    call_up(&mut c);
    assert!(
        sent(&tick(&mut c, 30_099), "OPTIONS").is_empty(),
        "not before"
    );
    let out = tick(&mut c, 30_100);
    let opts = sent(&out, "OPTIONS");
    assert_eq!(opts.len(), 2, "{out:?}");
    let to_a = opts.iter().find(|o| to_alice(o)).expect("one to alice");
    let to_b = opts.iter().find(|o| o.to == addr(BOB)).expect("one to bob");
    // RFC 3261 §12.2.1.1: remote target, local/remote tags, the dialog's Call-ID.
    assert_eq!(to_a.ruri(), format!("sip:alice@{ALICE}"));
    assert_eq!(to_b.ruri(), format!("sip:bob@{BOB}"));
    let tags = |o: &Out| {
        let m = o.msg();
        let v = m.validated().unwrap();
        (
            String::from_utf8_lossy(v.from.tag().unwrap()).into_owned(),
            String::from_utf8_lossy(v.to.tag().unwrap()).into_owned(),
            String::from_utf8_lossy(v.call_id).into_owned(),
        )
    };
    assert_eq!(tags(to_a), ("b1".into(), "alice1".into(), "c1".into()));
    assert_eq!(tags(to_b), ("alice1".into(), "b1".into(), "c1".into()));
    assert!(to_b.header(HeaderName::CSeq).unwrap().starts_with("1 "));
    assert_eq!(c[0].dialog_stats().keepalives_sent, 2);
}

#[test]
fn a_200_to_the_keepalive_keeps_the_call() {
    let mut c = one_channel(ka(30, 0));
    call_up(&mut c);
    let out = tick(&mut c, 30_100);
    for o in sent(&out, "OPTIONS") {
        let relayed = reply(&mut c, 0, 30_200, o, 200);
        assert!(
            relayed.is_empty(),
            "our ping's answer is not relayed: {relayed:?}"
        );
    }
    let resend = tick(&mut c, 30_100 + HALF + 1);
    assert!(
        sent(&resend, "OPTIONS").is_empty(),
        "no resend to answered ends"
    );
    let later = tick(&mut c, 60_099);
    assert!(sent(&later, "BYE").is_empty(), "{later:?}");
    assert!(
        dial(&mut c, 0, 60_099, "c2").is_err(),
        "the call still holds its channel"
    );
    let next = tick(&mut c, 60_100);
    assert_eq!(sent(&next, "OPTIONS").len(), 2, "next round");
    for o in sent(&next, "OPTIONS") {
        reply(&mut c, 0, 60_200, o, 200);
    }
    assert!(sent(&tick(&mut c, 60_100 + FULL), "BYE").is_empty());
    assert_eq!(c[0].dialog_stats().keepalives_answered, 4);
    assert_eq!(c[0].dialog_stats().ended_by_edge, 0);
}

#[test]
fn a_silent_end_ends_the_call_with_byes_to_both_and_frees_the_channel() {
    let mut c = one_channel(ka(30, 0));
    call_up(&mut c);
    let out = tick(&mut c, 30_100);
    let opts = sent(&out, "OPTIONS");
    // Alice answers; bob is gone.
    reply(
        &mut c,
        0,
        30_150,
        opts.iter().find(|o| to_alice(o)).unwrap(),
        200,
    );
    let resend = tick(&mut c, 30_100 + HALF);
    let again = sent(&resend, "OPTIONS");
    assert_eq!(again.len(), 1, "once more to the silent end only");
    assert_eq!(again[0].to, addr(BOB));
    assert!(sent(&tick(&mut c, 30_100 + FULL - 1), "BYE").is_empty());
    assert!(dial(&mut c, 0, 62_000, "c2").is_err(), "held until 64·T1");
    let end = tick(&mut c, 30_100 + FULL);
    let byes = sent(&end, "BYE");
    assert_eq!(byes.len(), 2, "{end:?}");
    assert!(byes.iter().any(|o| to_alice(o)) && byes.iter().any(|o| o.to == addr(BOB)));
    for b in &byes {
        let r = reason(b);
        assert!(r.contains("cause=408"), "{r}");
    }
    // The BYEs' answers are absorbed, and the channel is free for a new call.
    for b in &byes {
        assert!(reply(&mut c, 0, 62_200, b, 200).is_empty());
    }
    assert!(dial(&mut c, 0, 62_300, "c3").is_ok(), "channel released");
    let s = c[0].dialog_stats();
    assert_eq!(
        (s.keepalive_timeouts, s.ended_by_edge, s.byes_sent),
        (1, 1, 2)
    );
    assert_eq!(c[0].dialog_count().1, 0);
}

#[test]
fn a_481_to_the_keepalive_ends_the_call_at_once() {
    let mut c = one_channel(ka(30, 0));
    let a = call_up(&mut c);
    let out = tick(&mut c, 30_100);
    let to_b = sent(&out, "OPTIONS")
        .into_iter()
        .find(|o| o.to == addr(BOB))
        .unwrap()
        .clone();
    let end = reply(&mut c, 0, 30_200, &to_b, 481);
    let byes = sent(&end, "BYE");
    assert_eq!(byes.len(), 2, "{end:?}");
    assert!(reason(byes[0]).contains("cause=481"));
    assert!(dial(&mut c, 0, 30_300, "c2").is_ok());
    // Bob's own BYE afterwards finds nothing; the channel is not given back twice.
    bye(&mut c, 0, 30_400, &a, "c1");
    assert!(
        dial(&mut c, 0, 30_500, "c3").is_err(),
        "c2 holds the only channel"
    );
}

#[test]
fn no_keepalive_after_the_bye() {
    let mut c = one_channel(ka(30, 0));
    let a = call_up(&mut c);
    bye(&mut c, 0, 1_000, &a, "c1");
    let out = tick(&mut c, 200_000);
    assert!(sent(&out, "OPTIONS").is_empty(), "{out:?}");
    // (The relay still retransmits bob's BYE to alice, who never answers: timer E; none
    // of those is a BYE of the edge's own, which carries a Reason.)
    let own = |o: &&Out| String::from_utf8_lossy(&o.bytes).contains("\r\nReason: ");
    assert!(!sent(&out, "BYE").iter().any(own));
    let s = c[0].dialog_stats();
    assert_eq!((s.keepalives_sent, s.byes_sent), (0, 0));
}

#[test]
fn keepalive_off_sends_nothing() {
    let mut c = one_channel(ka(0, 0));
    call_up(&mut c);
    assert!(tick(&mut c, 300_000).is_empty());
    assert!(dial(&mut c, 0, 300_000, "c2").is_err(), "still up");
}

#[test]
fn max_duration_ends_the_call_with_byes_to_both() {
    let mut c = one_channel(ka(0, 60));
    call_up(&mut c);
    assert!(sent(&tick(&mut c, 60_099), "BYE").is_empty());
    let out = tick(&mut c, 60_100);
    let byes = sent(&out, "BYE");
    assert_eq!(byes.len(), 2, "{out:?}");
    assert!(byes.iter().any(|o| to_alice(o)) && byes.iter().any(|o| o.to == addr(BOB)));
    assert!(reason(byes[0]).contains("maximum call duration"));
    assert!(dial(&mut c, 0, 60_200, "c2").is_ok());
}

#[test]
fn a_forged_keepalive_answer_keeps_nothing_alive() {
    let mut c = one_channel(ka(30, 0));
    call_up(&mut c);
    let out = tick(&mut c, 30_100);
    for o in sent(&out, "OPTIONS") {
        // Our branch shape with a wrong MAC (last hex digit changed).
        let mut forged = o.clone();
        let text = String::from_utf8(forged.bytes.clone()).unwrap();
        let branch = o.top_branch();
        let last = branch.chars().last().unwrap();
        let bad = format!(
            "{}{}",
            &branch[..branch.len() - 1],
            if last == '0' { '1' } else { '0' }
        );
        forged.bytes = text.replace(&branch, &bad).into_bytes();
        reply(&mut c, 0, 30_200, &forged, 200);
    }
    assert_eq!(c[0].dialog_stats().keepalive_answers_stale, 2);
    assert_eq!(sent(&tick(&mut c, 30_100 + FULL), "BYE").len(), 2);
}

#[test]
fn keepalive_answers_on_another_shard_reach_the_owner() {
    let mut c = edge(
        4,
        &spec_with(Vec::new(), Vec::new()),
        LimitsSpec {
            server: Limit {
                channels: 1,
                cps: 0,
            },
            ..LimitsSpec::default()
        },
        ka(30, 0),
    );
    call_up(&mut c);
    let mut owner = None;
    let mut opts = Vec::new();
    for (i, core) in c.iter_mut().enumerate() {
        let o: Vec<Out> = advance(core, 30_100)
            .into_iter()
            .filter(|o| o.method().as_deref() == Some("OPTIONS"))
            .collect();
        if !o.is_empty() {
            owner = Some(i);
            opts = o;
        }
    }
    let owner = owner.expect("the owner pinged");
    assert_eq!(opts.len(), 2);
    for o in &opts {
        reply(&mut c, (owner + 1) % 4, 30_200, o, 200);
    }
    assert_eq!(c[owner].dialog_stats().keepalives_answered, 2);
    assert!(sent(&tick(&mut c, 30_100 + FULL), "BYE").is_empty());
    assert!(dial(&mut c, 0, 62_200, "c2").is_err(), "the call goes on");
}
