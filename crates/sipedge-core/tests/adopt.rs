//! `Core::adopt_binding` (issue 20 item 5, `[cluster] takeover`): a surviving edge stores a
//! dead edge's binding on its own socket, pings it at the phone's NAT address and journals
//! it (so the cluster write-behind rewrites it as its own), sans-IO on a virtual clock.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::DOMAIN;
use sipedge_core::{
    decode_change, AdoptedBinding, BindingChange, Core, CoreConfig, LocalId, Millis, NatConfig,
};

const WALL: u64 = 1_800_000_000_000;

fn adopted<'a>(aor: &'a str, source: SocketAddr, expires: u64) -> AdoptedBinding<'a> {
    AdoptedBinding {
        aor: aor.as_bytes(),
        contact: b"sip:alice@10.0.0.5:5060",
        call_id: b"reg-alice",
        instance: b"",
        reg_id: 0,
        path: b"",
        cseq: 4,
        q: Some(1000),
        expires_unix_ms: expires,
        registered_unix_ms: WALL,
        source,
        local: LocalId(1),
    }
}

#[test]
fn an_adopted_binding_is_stored_pinged_on_our_socket_and_journalled() {
    let mut core = Core::new(CoreConfig {
        journal: true,
        nat: NatConfig {
            advertise: vec!["203.0.113.1:5060".into()],
            ..NatConfig::default()
        },
        ..common::config()
    });
    core.set_wall_clock(Millis(0), WALL);
    let aor = format!("sip:alice@{DOMAIN}");
    let src: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    // Already expired: not stored.
    assert!(!core
        .adopt_binding(Millis(0), &adopted(&aor, src, WALL - 1))
        .unwrap());
    assert_eq!(core.binding_count(), 0);
    assert!(core.poll_journal().is_none());
    assert!(core
        .adopt_binding(Millis(0), &adopted(&aor, src, WALL + 600_000))
        .unwrap());
    assert_eq!(core.binding_count(), 1);
    let c = &core.lookup(Millis(0), aor.as_bytes()).unwrap()[0];
    assert_eq!(
        c.received,
        Some(src),
        "delivered at the phone's NAT address"
    );
    // Journalled as an upsert carrying the source (the write-behind's input).
    let rec = core.poll_journal().expect("journalled").to_vec();
    let BindingChange::Upsert {
        source,
        cseq,
        registered_unix_ms,
        ..
    } = decode_change(&rec).unwrap()
    else {
        panic!("an upsert");
    };
    assert_eq!((source, cseq, registered_unix_ms), (src, 4, WALL));
    // The NAT pinger pings it from the adopting socket.
    let mut pings = Vec::new();
    while let Some(due) = core.poll_timeout() {
        if due.0 > 61_000 {
            break;
        }
        core.handle_timeout(due);
        while let Some(t) = core.poll_transmit() {
            pings.push((t.local, t.remote, t.data.starts_with(b"OPTIONS ")));
        }
    }
    assert_eq!(
        pings,
        [(LocalId(1), src, true)],
        "one ping in the first minute"
    );
}
