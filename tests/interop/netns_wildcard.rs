//! Issue 15 item 6: the edge bound to the wildcard address with an advertised address, in
//! the NAT rig (namespaces `n15-w*`, private 10.115.0.0/24, public 198.18.115.0/24). The
//! edge listens on `udp:0.0.0.0:5060 advertise 198.18.115.2:5060`; a phone behind the NAT
//! registers and calls a public UA and is called by it (re-INVITE, in-dialog request, BYE).
//!
//! What a user would notice, asserted: the calls complete on both ends (the NAT lets the
//! edge's answers in only because they come from the address the phone sent to, IP_PKTINFO),
//! the Via and Record-Route the UAs see name the advertised address — never 0.0.0.0 — and
//! the edge sends nothing to a private address.
//!
//! Needs root, `ip`, `iptables` and `sipp`; skipped with a message otherwise.

use super::netns::{self, Host, Net, Rig, EDGE_PORT};
use super::netns_nat::calls_traced;

const NET: Net = Net {
    prefix: "n15-",
    lan: "10.115.0",
    wan: "198.18.115",
};
const ADVERTISED: &str = "198.18.115.2";

fn edge_config() -> String {
    format!(
        "[server]\nlisten = [\"udp:0.0.0.0:{EDGE_PORT} advertise {ADVERTISED}:{EDGE_PORT}\"]\ndomains = [\"edge.test\"]\n\n[admin]\nlisten = \"{}\"\n\n[log]\nlevel = \"warn\"\n\n[registrar]\npersistence = false\n\n# SIPp answers no out-of-call OPTIONS: keepalives would fail its calls.\n[nat]\nping = \"disabled\"\n",
        netns::ADMIN
    )
}

#[test]
fn a_wildcard_listen_with_advertise_carries_nated_calls_both_ways() {
    if let Some(why) = netns::unavailable() {
        eprintln!("\n*** SKIPPED: {why} ***\n");
        return;
    }
    let rig = Rig::up_in(NET, "w");
    assert_eq!(rig.ip(Host::Edge), ADVERTISED);
    let dir = crate::common::temp_dir("netns-wildcard");
    let _edge = rig.start_edge(dir.path(), &edge_config());
    // The leak counter counts.
    rig.send_from_edge(&rig.ip(Host::Phone));
    let baseline = rig.leaks();
    assert_eq!(
        baseline, 1,
        "the rig counts a datagram to a private address"
    );

    let trace = dir.path();
    calls_traced(
        &rig,
        (Host::Phone, Host::Public),
        "caller",
        "wa",
        5070,
        Some(trace),
    );
    calls_traced(
        &rig,
        (Host::Public, Host::Phone),
        "callee",
        "wb",
        5080,
        Some(trace),
    );

    assert_eq!(
        rig.leaks() - baseline,
        0,
        "the edge sent datagrams to a private address"
    );
    assert!(rig.to_nat() > 0, "the phone was reached at its public flow");
    for user in ["wa", "wb"] {
        for side in ["uac", "uas"] {
            let f = trace.join(format!("{user}-{side}.msg"));
            let text =
                std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert!(
                !text.contains("0.0.0.0"),
                "{user} {side}: the wildcard address leaked into a message"
            );
            assert!(
                text.contains(&format!("Record-Route: <sip:{ADVERTISED}:{EDGE_PORT}")),
                "{user} {side}: Record-Route names the advertised address"
            );
        }
        // The callee's INVITEs came with our Via on top, naming the advertised address.
        let uas = std::fs::read_to_string(trace.join(format!("{user}-uas.msg"))).unwrap();
        assert!(
            uas.contains(&format!(
                "Via: SIP/2.0/UDP {ADVERTISED}:{EDGE_PORT};branch="
            )),
            "{user}: our Via names the advertised address"
        );
    }
}
