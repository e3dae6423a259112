//! The rtnetlink mirror on crafted messages: no socket, no kernel.

use super::*;

const IF: u32 = 7;
const MAC_GW: [u8; 6] = [2, 0, 0, 0, 0, 0x91];
const MAC_PEER: [u8; 6] = [2, 0, 0, 0, 0, 0x22];

impl KernelTable {
    fn next_hop_now(&mut self, dst: IpAddr) -> Hop {
        self.next_hop(dst, Instant::now())
    }
}

fn table(cap: usize) -> KernelTable {
    let f = std::fs::File::open("/dev/null").unwrap();
    KernelTable::empty(OwnedFd::from(f), IF, cap)
}

fn attr(out: &mut Vec<u8>, ty: u16, v: &[u8]) {
    out.extend_from_slice(&((4 + v.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(v);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn octets(ip: &str) -> Vec<u8> {
    match ip.parse::<IpAddr>().unwrap() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn family(ip: &str) -> u8 {
    if ip.contains(':') {
        libc::AF_INET6 as u8
    } else {
        libc::AF_INET as u8
    }
}

fn route(dst: &str, plen: u8, oif: u32, gw: Option<&str>, metric: u32) -> Vec<u8> {
    let mut b = vec![
        family(dst),
        plen,
        0,
        0,
        RT_TABLE_MAIN as u8,
        3,
        0,
        RTN_UNICAST,
    ];
    b.extend_from_slice(&0u32.to_ne_bytes());
    attr(&mut b, RTA_DST, &octets(dst));
    attr(&mut b, RTA_OIF, &oif.to_ne_bytes());
    attr(&mut b, RTA_PRIORITY, &metric.to_ne_bytes());
    if let Some(gw) = gw {
        attr(&mut b, RTA_GATEWAY, &octets(gw));
    }
    b
}

fn neigh(ip: &str, ifindex: u32, state: u16, mac: Option<[u8; 6]>) -> Vec<u8> {
    let mut b = vec![family(ip), 0, 0, 0];
    b.extend_from_slice(&ifindex.to_ne_bytes());
    b.extend_from_slice(&state.to_ne_bytes());
    b.extend_from_slice(&[0, 1]);
    attr(&mut b, NDA_DST, &octets(ip));
    if let Some(m) = mac {
        attr(&mut b, NDA_LLADDR, &m);
    }
    b
}

const REACHABLE: u16 = 0x02;

fn lan() -> KernelTable {
    let mut t = table(16);
    t.apply(RTM_NEWROUTE, &route("198.18.21.0", 24, IF, None, 0));
    t.apply(
        RTM_NEWROUTE,
        &route("0.0.0.0", 0, IF, Some("198.18.21.254"), 0),
    );
    t.apply(RTM_NEWROUTE, &route("10.21.0.0", 16, IF + 1, None, 0));
    t.apply(
        RTM_NEWNEIGH,
        &neigh("198.18.21.254", IF, REACHABLE, Some(MAC_GW)),
    );
    t.apply(
        RTM_NEWNEIGH,
        &neigh("198.18.21.2", IF, REACHABLE, Some(MAC_PEER)),
    );
    t
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn on_link_peers_resolve_to_their_own_mac_others_to_the_gateways() {
    let mut t = lan();
    assert!(matches!(t.next_hop_now(ip("198.18.21.2")), Hop::Mac { mac, .. } if mac == MAC_PEER));
    assert!(matches!(t.next_hop_now(ip("203.0.113.9")), Hop::Mac { mac, .. } if mac == MAC_GW));
    // On-link but never resolved by the kernel: the socket, so the kernel resolves it.
    assert_eq!(t.next_hop_now(ip("198.18.21.3")), Hop::Unresolved);
    // A more specific route out of another interface wins over our default route.
    assert_eq!(t.next_hop_now(ip("10.21.0.5")), Hop::NotOurs);
    // No IPv6 route at all.
    assert_eq!(t.next_hop_now(ip("2001:db8::1")), Hop::NotOurs);
}

#[test]
fn neighbour_updates_and_deletes_follow_the_kernel() {
    let mut t = lan();
    t.apply(
        RTM_NEWNEIGH,
        &neigh("198.18.21.3", IF, REACHABLE, Some(MAC_PEER)),
    );
    assert!(matches!(t.next_hop_now(ip("198.18.21.3")), Hop::Mac { .. }));
    t.apply(RTM_NEWNEIGH, &neigh("198.18.21.3", IF, NUD_FAILED, None));
    assert_eq!(t.next_hop_now(ip("198.18.21.3")), Hop::Unresolved);
    t.apply(
        RTM_NEWNEIGH,
        &neigh("198.18.21.3", IF, REACHABLE, Some(MAC_GW)),
    );
    t.apply(RTM_DELNEIGH, &neigh("198.18.21.3", IF, 0, None));
    assert_eq!(t.next_hop_now(ip("198.18.21.3")), Hop::Unresolved);
    // Another interface's neighbours are not ours.
    t.apply(
        RTM_NEWNEIGH,
        &neigh("198.18.21.4", IF + 1, REACHABLE, Some(MAC_PEER)),
    );
    assert_eq!(t.next_hop_now(ip("198.18.21.4")), Hop::Unresolved);
    // The default route goes: off-link destinations are no longer ours.
    t.apply(
        RTM_DELROUTE,
        &route("0.0.0.0", 0, IF, Some("198.18.21.254"), 0),
    );
    assert_eq!(t.next_hop_now(ip("203.0.113.9")), Hop::NotOurs);
}

#[test]
fn a_stale_neighbour_sends_one_datagram_a_second_through_the_kernel() {
    let mut t = lan();
    t.apply(
        RTM_NEWNEIGH,
        &neigh("198.18.21.2", IF, NUD_STALE, Some(MAC_PEER)),
    );
    let t0 = Instant::now();
    let peer = ip("198.18.21.2");
    assert_eq!(t.next_hop(peer, t0), Hop::Revalidate);
    for ms in [0, 10, 999] {
        let at = t0 + Duration::from_millis(ms);
        assert!(matches!(t.next_hop(peer, at), Hop::Mac { .. }));
    }
    assert_eq!(
        t.next_hop(peer, t0 + Duration::from_secs(1)),
        Hop::Revalidate
    );
    assert!(matches!(
        t.next_hop(peer, t0 + Duration::from_secs(1)),
        Hop::Mac { .. }
    ));
    t.apply(
        RTM_NEWNEIGH,
        &neigh("198.18.21.2", IF, REACHABLE, Some(MAC_PEER)),
    );
    assert!(matches!(t.next_hop_now(ip("198.18.21.2")), Hop::Mac { .. }));
}

#[test]
fn the_neighbour_table_has_a_cap() {
    let mut t = table(2);
    t.apply(RTM_NEWROUTE, &route("198.18.21.0", 24, IF, None, 0));
    for k in 1..=3 {
        t.apply(
            RTM_NEWNEIGH,
            &neigh(&format!("198.18.21.{k}"), IF, REACHABLE, Some(MAC_PEER)),
        );
    }
    assert_eq!(t.neigh.len(), 2);
    assert_eq!(t.full, 1);
    assert_eq!(t.next_hop_now(ip("198.18.21.3")), Hop::Unresolved);
}

#[test]
fn the_source_address_comes_from_the_route_or_the_interface() {
    let mut t = lan();
    let mut a = vec![libc::AF_INET as u8, 24, 0, 0];
    a.extend_from_slice(&IF.to_ne_bytes());
    attr(&mut a, IFA_LOCAL, &octets("198.18.21.1"));
    t.apply(RTM_NEWADDR, &a);
    assert_eq!(
        t.next_hop_now(ip("198.18.21.2")),
        Hop::Mac {
            mac: MAC_PEER,
            src: Some(ip("198.18.21.1"))
        }
    );
    t.apply(RTM_DELADDR, &a);
    assert!(matches!(
        t.next_hop_now(ip("198.18.21.2")),
        Hop::Mac { src: None, .. }
    ));
}

#[test]
fn truncated_and_lying_messages_are_ignored_without_panic() {
    let mut t = lan();
    let good = route("192.0.2.0", 24, IF, None, 0);
    for cut in 0..good.len() {
        t.apply(RTM_NEWROUTE, &good[..cut]);
    }
    let n = neigh("198.18.21.9", IF, REACHABLE, Some(MAC_PEER));
    // (The last 2 bytes are the MAC attribute's padding, optional at the end.)
    for cut in 0..n.len() - 2 {
        t.apply(RTM_NEWNEIGH, &n[..cut]);
    }
    let mut lie = n.clone();
    lie[12..14].copy_from_slice(&500u16.to_ne_bytes()); // attribute longer than the message
    t.apply(RTM_NEWNEIGH, &lie);
    assert_eq!(t.next_hop_now(ip("198.18.21.9")), Hop::Unresolved);
    // Whole datagrams: a header claiming more than there is stops the walk.
    let mut dgram = vec![0u8; 16];
    dgram[0..4].copy_from_slice(&1000u32.to_ne_bytes());
    assert_eq!(messages(&dgram).count(), 0);
    dgram[0..4].copy_from_slice(&3u32.to_ne_bytes());
    assert_eq!(messages(&dgram).count(), 0);
}

#[test]
fn a_large_table_is_cached_and_an_overflowing_one_is_not_trusted() {
    let mut t = lan();
    for k in 0..40u32 {
        t.apply(
            RTM_NEWROUTE,
            &route(&format!("10.{}.0.0", 100 + k), 16, IF + 1, None, 0),
        );
    }
    // Above SCAN_ROUTES: the same answers, through the cache.
    assert!(matches!(t.next_hop_now(ip("198.18.21.2")), Hop::Mac { mac, .. } if mac == MAC_PEER));
    assert!(matches!(t.next_hop_now(ip("198.18.21.2")), Hop::Mac { mac, .. } if mac == MAC_PEER));
    assert_eq!(t.next_hop_now(ip("10.105.3.4")), Hop::NotOurs);
    // A route change empties the cache: a more specific route elsewhere wins at once.
    t.apply(RTM_NEWROUTE, &route("198.18.21.2", 32, IF + 1, None, 0));
    assert_eq!(t.next_hop_now(ip("198.18.21.2")), Hop::NotOurs);
    // More routes than the mirror holds: nothing is trusted, everything takes the socket.
    let mut t = lan();
    for k in 0..MAX_ROUTES as u32 {
        let dst = std::net::Ipv4Addr::from(0x0a00_0000 + (k << 8)).to_string();
        t.apply(RTM_NEWROUTE, &route(&dst, 24, IF + 1, None, 0));
    }
    assert_eq!(t.next_hop_now(ip("198.18.21.2")), Hop::NotOurs);
}
