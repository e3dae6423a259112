//! A reload of the per-user NAT overrides (`nat`, `nat_ping` of `[[users]]`), sans-IO: the
//! shell builds the next generation with `NatUsers::next` and hands it to the core between
//! turns (`handle_config`), which applies it to bindings that already exist — keepalives start and stop, a forced user is reached
//! at its source and a disabled one at its Contact — without dropping a binding.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;

use common::DOMAIN;
use sipedge_core::{
    Core, CoreConfig, LocalId, Millis, NatConfig, NatMode, NatUser, NatUserMap, NatUsers, PingMode,
    ReloadTables,
};

/// The shell's reload: the generations after the running one, holding `maps` in turn,
/// handed to the core at once (only the last one, as when several reloads happen between
/// two turns). Returns how many AoRs the last generation changed.
fn reload(c: &mut Core, maps: Vec<NatUserMap>) -> usize {
    let t = c.tables();
    let mut users = t.nat_users.clone();
    for m in maps {
        users = users.next(m);
    }
    let n = users.changed();
    c.handle_config(&ReloadTables {
        nat_users: users,
        ..t
    });
    n
}

fn register(user: &str, via: &str, contact: &str, cseq: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK-{user}-{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{DOMAIN}>;tag=f\r\nTo: <sip:{user}@{DOMAIN}>\r\nCall-ID: {user}-call\r\nCSeq: {cseq} REGISTER\r\nContact: <{contact}>\r\nExpires: 7200\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn aor(user: &str) -> String {
    format!("sip:{user}@{DOMAIN}")
}

fn core(nat: NatConfig) -> Core {
    Core::new(CoreConfig {
        nat: NatConfig {
            advertise: vec!["203.0.113.1:5060".into()],
            ..nat
        },
        ..common::config()
    })
}

/// Registers `user` from `src` (Via = source) with `contact`; checks the 200 OK.
fn registered(c: &mut Core, now: u64, user: &str, src: &str, contact: &str) {
    c.handle_datagram(
        Millis(now),
        LocalId(0),
        src.parse().unwrap(),
        &register(user, src, contact, 1),
    );
    let reply = c.poll_transmit().unwrap().data.to_vec();
    assert!(
        reply.starts_with(b"SIP/2.0 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    while c.poll_transmit().is_some() {}
}

/// Runs the timers from `from` up to `until` (a due time in the past — a reload asks for
/// an immediate call — runs at the current time); the destinations of the OPTIONS sent.
fn pings_until(c: &mut Core, from: u64, until: u64) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    let mut now = from;
    while let Some(due) = c.poll_timeout() {
        if due.0 > until {
            break;
        }
        now = now.max(due.0);
        c.handle_timeout(Millis(now));
        while let Some(t) = c.poll_transmit() {
            if t.data.starts_with(b"OPTIONS ") {
                out.push(t.remote);
            }
        }
    }
    out
}

fn over(nat: Option<NatMode>, ping: Option<PingMode>) -> NatUser {
    NatUser { nat, ping }
}

fn map(entries: &[(&str, NatUser)]) -> HashMap<Vec<u8>, NatUser> {
    entries
        .iter()
        .map(|(u, o)| (aor(u).into_bytes(), *o))
        .collect()
}

/// Global keepalives off; `nat_ping = "enabled"` for pat, reloaded while pat is
/// registered, starts its pings (60 s interval); reloaded away, they stop. Nothing is
/// dropped and the other user is never pinged.
#[test]
fn reload_starts_and_stops_the_pings_of_a_registered_user() {
    let users = NatUsers::default();
    let mut c = core(NatConfig {
        ping: PingMode::Disabled,
        users,
        ..NatConfig::default()
    });
    let pat = "198.51.100.20:40000";
    registered(&mut c, 0, "pat", pat, "sip:pat@10.0.0.20:5060");
    registered(
        &mut c,
        0,
        "quinn",
        "198.51.100.21:40000",
        "sip:quinn@10.0.0.21:5060",
    );
    assert!(
        pings_until(&mut c, 0, 300_000).is_empty(),
        "keepalives are off"
    );

    assert_eq!(
        reload(
            &mut c,
            vec![map(&[("pat", over(None, Some(PingMode::Enabled)))])]
        ),
        1
    );
    let pings = pings_until(&mut c, 300_000, 600_000);
    assert!(
        (4..=6).contains(&pings.len()),
        "about one ping a minute for 5 minutes: {pings:?}"
    );
    assert!(
        pings.iter().all(|d| *d == pat.parse().unwrap()),
        "{pings:?}"
    );

    assert_eq!(reload(&mut c, vec![HashMap::new()]), 1);
    assert!(
        pings_until(&mut c, 600_000, 900_000).is_empty(),
        "off again after the reload"
    );
    assert_eq!(c.binding_count(), 2, "no binding dropped");
}

/// `nat = "force"` reloaded onto a registered user: it is reached at its source from then
/// on; `"disabled"`: at its Contact; back to `auto`: worked out again from the binding.
#[test]
fn reload_moves_the_destination_of_a_registered_user() {
    let users = NatUsers::new(map(&[("lan", over(Some(NatMode::Disabled), None))]));
    let mut c = core(NatConfig {
        users,
        ..NatConfig::default()
    });
    let received =
        |c: &Core, user: &str| c.lookup(Millis(1000), aor(user).as_bytes()).unwrap()[0].received;
    // Contact = source: not NATed under auto.
    let pub_src = "198.51.100.30:5060";
    registered(&mut c, 0, "pub", pub_src, "sip:pub@198.51.100.30:5060");
    // A private contact, but NAT disabled for lan.
    let lan_src = "198.51.100.31:40000";
    registered(&mut c, 0, "lan", lan_src, "sip:lan@10.0.0.31:5060");
    assert_eq!((received(&c, "pub"), received(&c, "lan")), (None, None));

    reload(
        &mut c,
        vec![map(&[("pub", over(Some(NatMode::Force), None))])],
    );
    pings_until(&mut c, 100, 100);
    assert_eq!(
        received(&c, "pub"),
        Some(pub_src.parse().unwrap()),
        "forced"
    );
    assert_eq!(
        received(&c, "lan"),
        Some(lan_src.parse().unwrap()),
        "auto again: the private contact behind a public source is NATed"
    );

    // Two reloads before the shard's next turn: the last one counts.
    reload(
        &mut c,
        vec![
            map(&[("pub", over(Some(NatMode::Disabled), None))]),
            map(&[
                ("pub", over(Some(NatMode::Force), None)),
                ("lan", over(Some(NatMode::Disabled), None)),
            ]),
        ],
    );
    pings_until(&mut c, 200, 200);
    assert_eq!(received(&c, "pub"), Some(pub_src.parse().unwrap()));
    assert_eq!(received(&c, "lan"), None, "disabled: at its Contact");
    assert_eq!(c.binding_count(), 2);
    // A REGISTER after the reload gets the new settings too.
    registered(&mut c, 300, "pub", pub_src, "sip:pub@198.51.100.30:5060");
    assert_eq!(received(&c, "pub"), Some(pub_src.parse().unwrap()));
}
