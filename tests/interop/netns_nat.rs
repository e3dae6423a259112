//! Whole calls through a real NAT (issue 15), in network namespaces: a phone on a private
//! subnet (10.15.0.2) behind an iptables MASQUERADE box, the edge and a public UA on
//! 198.18.15.0/24 (see `loadtest/nat-rig.sh` for the picture). Driven by SIPp: the callee
//! registers (from behind the NAT with its private Contact, or from the public side), then
//! calls in both directions, each with a re-INVITE, an in-dialog UPDATE or MESSAGE and the
//! BYE — from the caller in one scenario pair, from the callee in the other.
//!
//! What a user would notice, asserted: every call completes on both ends (SIPp exits 0 only
//! then), every in-dialog request — BYE included — is answered, and the edge never sends a
//! datagram to a private address (the edge namespace's OUTPUT chain counts and drops them;
//! the NAT forwards nothing unsolicited inward, as a real one).
//!
//! Needs root, `ip`, `iptables` and `sipp`; skipped with a message otherwise (CI installs
//! them and runs as root). Namespaces `snt*`, removed on drop.
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::netns::{self, Host, Proc, Rig, EDGE, EDGE_PORT, NAT_WAN, PHONE};

pub(crate) const CALLS: usize = 20;

fn scenario(name: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/sipp/{name}"))
}

fn edge_config() -> String {
    format!(
        "[server]\nlisten = [\"udp:{EDGE}:{EDGE_PORT}\"]\ndomains = [\"edge.test\"]\n\n[admin]\nlisten = \"{}\"\n\n[log]\nlevel = \"warn\"\n\n[registrar]\npersistence = false\n\n# SIPp answers no out-of-call OPTIONS: keepalives would fail its calls.\n[nat]\nping = \"disabled\"\n",
        netns::ADMIN
    )
}

/// `sipp -sf NAME -s USER -i <host ip> -p PORT ARGS…` in `host`'s namespace.
/// Scenario `name` for `rig`: the file itself in the default rig; in another, a copy (in
/// the temp dir) whose checks expect that rig's edge address instead of 198.18.15.2.
fn scenario_for(rig: &Rig, name: &str) -> PathBuf {
    let edge = rig.ip(Host::Edge);
    if edge == EDGE {
        return scenario(name);
    }
    let text = std::fs::read_to_string(scenario(name)).unwrap();
    let path = std::env::temp_dir().join(format!("sipedge-{}-{name}", rig.ns(Host::Edge)));
    std::fs::write(&path, text.replace(EDGE, &edge)).unwrap();
    path
}

pub(crate) fn sipp(
    rig: &Rig,
    host: Host,
    name: &str,
    user: &str,
    port: u16,
    args: &[&str],
) -> Command {
    let mut c = rig.cmd(host, "sipp");
    c.arg("-sf")
        .arg(scenario_for(rig, name))
        .args(["-s", user, "-i", &rig.ip(host), "-p", &port.to_string()])
        .args(["-nostdin", "-timeout_error", "-trace_err"])
        .args(args)
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

pub(crate) fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("call") || l.contains("Call") || l.contains("rror"))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One scenario pair: `callee` registers `user` from `ip:port` (its Contact is that
/// address: private when it is the phone), then serves `CALLS` calls from `caller`.
/// `ends` is "caller" or "callee": who re-INVITEs, sends the in-dialog request and hangs up.
fn calls(rig: &Rig, caller: Host, callee: Host, ends: &str, user: &str, port: u16) {
    calls_traced(rig, (caller, callee), ends, user, port, None);
}

/// [`calls`], with every message both SIPps saw written to `trace/<user>-{uac,uas}.msg`
/// when `trace` is given (SIPp's `-trace_msg`).
pub(crate) fn calls_traced(
    rig: &Rig,
    (caller, callee): (Host, Host),
    ends: &str,
    user: &str,
    port: u16,
    trace: Option<&std::path::Path>,
) {
    let edge = format!("{}:{EDGE_PORT}", rig.ip(Host::Edge));
    let msg_file = |side: &str| {
        trace.map(|d| {
            let f = d.join(format!("{user}-{side}.msg"));
            [
                "-trace_msg".to_string(),
                "-message_file".into(),
                f.display().to_string(),
            ]
        })
    };
    let (uas_trace, uac_trace) = (msg_file("uas"), msg_file("uac"));
    let uas_trace: Vec<&str> = uas_trace.iter().flatten().map(String::as_str).collect();
    let uac_trace: Vec<&str> = uac_trace.iter().flatten().map(String::as_str).collect();
    let reg = sipp(
        rig,
        callee,
        "relay_register.xml",
        user,
        port + 1,
        &["-m", "1", "-timeout", "15s", &edge],
    )
    .output()
    .unwrap();
    check(&format!("register {user} from {callee:?}"), &reg);
    let n = CALLS.to_string();
    let uas = Proc(Some(
        sipp(
            rig,
            callee,
            &format!("nat_{ends}_ends_uas.xml"),
            user,
            port + 1,
            &[&["-m", &n, "-timeout", "60s"][..], &uas_trace].concat(),
        )
        .spawn()
        .unwrap(),
    ));
    std::thread::sleep(Duration::from_millis(300));
    let uac = sipp(
        rig,
        caller,
        &format!("nat_{ends}_ends_uac.xml"),
        user,
        port,
        &[
            &["-m", &n, "-r", "20", "-timeout", "60s"][..],
            &uac_trace,
            &[&edge],
        ]
        .concat(),
    )
    .output()
    .unwrap();
    let what = format!("{caller:?} → {callee:?}, {ends} ends");
    check(&format!("{what}: caller"), &uac);
    let uas = uas
        .wait_timeout(Duration::from_secs(70))
        .unwrap_or_else(|| panic!("{what}: the callee did not finish"));
    check(&format!("{what}: callee"), &uas);
}

#[test]
fn calls_through_a_nat_complete_both_ways_and_nothing_goes_to_a_private_address() {
    if let Some(why) = netns::unavailable() {
        eprintln!("\n*** SKIPPED: {why} ***\n");
        return;
    }
    let rig = Rig::up("t");
    let dir = crate::common::temp_dir("netns-nat");
    let _edge = rig.start_edge(dir.path(), &edge_config());

    // The leak counter counts (a test that cannot fail is a defect): one datagram from the
    // edge namespace to the phone's private address is counted — and never arrives.
    rig.send_from_edge(PHONE);
    let baseline = rig.leaks();
    assert_eq!(
        baseline, 1,
        "the rig counts a datagram to a private address"
    );

    calls(&rig, Host::Phone, Host::Public, "caller", "pa", 5070);
    calls(&rig, Host::Phone, Host::Public, "callee", "pb", 5080);
    calls(&rig, Host::Public, Host::Phone, "caller", "pc", 5090);
    calls(&rig, Host::Public, Host::Phone, "callee", "pd", 5100);

    assert_eq!(
        rig.leaks() - baseline,
        0,
        "the edge sent datagrams to a private address"
    );
    // The phone was reached at its public flow (the NAT's address) — requests to it as a
    // callee and in-dialog requests and responses to it as a caller.
    assert!(
        rig.to_nat() >= (4 * CALLS * 4) as u64,
        "traffic to the NAT's public address {NAT_WAN}: {}",
        rig.to_nat()
    );
    // Per call: INVITE, re-INVITE, UPDATE or MESSAGE, BYE — each one relayed transaction,
    // answered; both ACKs for 2xx relayed end to end.
    assert_eq!(
        rig.metric("sipedge_relay_transactions_total"),
        (4 * 4 * CALLS) as u64
    );
    assert!(rig.metric("sipedge_relay_acks_forwarded_total") >= (4 * 2 * CALLS) as u64);
    assert_eq!(rig.metric("sipedge_relay_tokens_refused_total"), 0);
    assert_eq!(rig.metric("sipedge_relay_timeouts_total"), 0);
}
