//! Frames ⇄ datagrams: Ethernet (with one optional 802.1Q/802.1ad tag), IPv4 (RFC 791) or
//! IPv6 (RFC 8200), UDP (RFC 768). Pure functions over byte slices, no I/O.
//!
//! Checksums. Incoming: the IPv4 header checksum is always verified (RFC 791 §3.1). The UDP
//! checksum is verified where the frame carries a complete one. A frame sent by a local
//! socket over veth (or any device offering TX checksum offload) carries only the partial
//! sum the NIC would have completed: its checksum field holds the folded pseudo-header sum
//! (Linux `CHECKSUM_PARTIAL`), and AF_XDP in copy mode delivers it that way. Such a field is
//! accepted as "not yet computed" — it would be rejected by the full check — since on a real
//! wire it can only come from the same host. A zero UDP checksum means "none" over IPv4 (RFC
//! 768) and is invalid over IPv6 (RFC 8200 §8.1). Outgoing frames always carry complete
//! checksums: nothing after us will complete them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Ethernet addresses and VLAN tag of a frame, as needed to answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct L2 {
    /// Our MAC (the destination of the frame received).
    pub(crate) local_mac: [u8; 6],
    /// The next hop's MAC (the source of the frame received).
    pub(crate) peer_mac: [u8; 6],
    /// The 802.1Q tag (TPID, TCI) of the frame received, if any.
    pub(crate) vlan: Option<(u16, u16)>,
}

/// A received UDP datagram inside a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Udp<'a> {
    pub(crate) l2: L2,
    pub(crate) src: SocketAddr,
    pub(crate) dst: SocketAddr,
    pub(crate) payload: &'a [u8],
}

/// Why a frame was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Truncated or inconsistent lengths.
    Malformed,
    /// Not UDP over IPv4/IPv6 without options or extension headers, or a fragment.
    NotHandled,
    /// An IPv4 header or UDP checksum that does not verify.
    BadChecksum,
}

const ETH: usize = 14;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// One's-complement sum of `data` (RFC 1071), not folded.
///
/// Adds big-endian 64-bit words with end-around carry: since 2^16 ≡ 1 (mod 2^16 − 1), a
/// word contributes what its four 16-bit halves would, and a carry out of bit 63 is worth 1
/// (RFC 1071 §2(B), "parallel summation"; §2(C) on the end-around carry) — a quarter of the
/// loop turns of 16-bit adds. The caller's `acc` may be any value (a pseudo-header sum).
fn sum(mut acc: u64, data: &[u8]) -> u64 {
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let (s, carry) = acc.overflowing_add(v);
        acc = s + u64::from(carry);
    }
    // At most 7 bytes left: their 16-bit values cannot overflow even a full accumulator
    // once folded to 32 bits first.
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    let rest = words.remainder();
    let mut pairs = rest.chunks_exact(2);
    for c in &mut pairs {
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

fn fold(mut acc: u64) -> u16 {
    // (`acc` < 2^64: at most four rounds.)
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

fn pseudo(src: &IpAddr, dst: &IpAddr, udp_len: usize) -> u64 {
    let acc = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum(sum(0, &s.octets()), &d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => sum(sum(0, &s.octets()), &d.octets()),
        _ => 0,
    };
    acc + udp_len as u64 + 17
}

/// Parses a frame; `Ok` only for a well-formed, checksum-valid UDP datagram.
pub(crate) fn parse(f: &[u8]) -> Result<Udp<'_>, Reject> {
    if f.len() < ETH {
        return Err(Reject::Malformed);
    }
    let mut l2 = L2 {
        local_mac: [0; 6],
        peer_mac: [0; 6],
        vlan: None,
    };
    l2.local_mac.copy_from_slice(&f[0..6]);
    l2.peer_mac.copy_from_slice(&f[6..12]);
    let mut off = 12;
    let mut ethertype = be16(f, off);
    if ethertype == 0x8100 || ethertype == 0x88a8 {
        if f.len() < ETH + 4 {
            return Err(Reject::Malformed);
        }
        l2.vlan = Some((ethertype, be16(f, 14)));
        off += 4;
        ethertype = be16(f, off);
    }
    let ip = &f[off + 2..];
    let (src, dst, udp) = match ethertype {
        0x0800 => {
            if ip.len() < 20 || ip[0] >> 4 != 4 {
                return Err(Reject::Malformed);
            }
            let ihl = usize::from(ip[0] & 0xf) * 4;
            let total = usize::from(be16(ip, 2));
            if ihl < 20 || total < ihl || total > ip.len() {
                return Err(Reject::Malformed);
            }
            if ip[9] != 17 || be16(ip, 6) & 0x3fff != 0 {
                return Err(Reject::NotHandled);
            }
            if fold(sum(0, &ip[..ihl])) != 0xffff {
                return Err(Reject::BadChecksum);
            }
            let s = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let d = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            (IpAddr::V4(s), IpAddr::V4(d), &ip[ihl..total])
        }
        0x86dd => {
            if ip.len() < 40 || ip[0] >> 4 != 6 {
                return Err(Reject::Malformed);
            }
            if ip[6] != 17 {
                return Err(Reject::NotHandled);
            }
            let plen = usize::from(be16(ip, 4));
            if 40 + plen > ip.len() {
                return Err(Reject::Malformed);
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            d.copy_from_slice(&ip[24..40]);
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                &ip[40..40 + plen],
            )
        }
        _ => return Err(Reject::NotHandled),
    };
    if udp.len() < 8 {
        return Err(Reject::Malformed);
    }
    let ulen = usize::from(be16(udp, 4));
    if ulen < 8 || ulen > udp.len() {
        return Err(Reject::Malformed);
    }
    let udp = &udp[..ulen];
    let check = be16(udp, 6);
    if check == 0 {
        if src.is_ipv6() {
            return Err(Reject::BadChecksum);
        }
    } else {
        let p = pseudo(&src, &dst, ulen);
        // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum (see module docs).
        // Compared first: it costs nothing, and such a frame needs no pass over the payload.
        let partial = check == fold(p);
        if !partial && fold(sum(p, udp)) != 0xffff {
            return Err(Reject::BadChecksum);
        }
    }
    Ok(Udp {
        l2,
        src: SocketAddr::new(src, be16(udp, 0)),
        dst: SocketAddr::new(dst, be16(udp, 2)),
        payload: &udp[8..],
    })
}

/// Bytes of headers [`build`] writes before the payload.
pub(crate) fn header_len(l2: &L2, ipv6: bool) -> usize {
    ETH + if l2.vlan.is_some() { 4 } else { 0 } + if ipv6 { 40 } else { 20 } + 8
}

/// Writes a complete frame from `src` to `dst` (same family) carrying `payload` into `out`
/// and returns its length, or `None` when it does not fit `out` or the families differ.
/// `ip_id` is the IPv4 identification (DF is set: the frame is never fragmented).
pub(crate) fn build(
    out: &mut [u8],
    l2: &L2,
    src: SocketAddr,
    dst: SocketAddr,
    payload: &[u8],
    ip_id: u16,
) -> Option<usize> {
    let v6 = match (src.ip(), dst.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => false,
        (IpAddr::V6(_), IpAddr::V6(_)) => true,
        _ => return None,
    };
    let hl = header_len(l2, v6);
    let total = hl.checked_add(payload.len())?;
    let ulen = u16::try_from(8 + payload.len()).ok()?;
    if total > out.len() {
        return None;
    }
    let f = &mut out[..total];
    f[0..6].copy_from_slice(&l2.peer_mac);
    f[6..12].copy_from_slice(&l2.local_mac);
    let mut off = 12;
    if let Some((tpid, tci)) = l2.vlan {
        f[12..14].copy_from_slice(&tpid.to_be_bytes());
        f[14..16].copy_from_slice(&tci.to_be_bytes());
        off += 4;
    }
    f[off..off + 2].copy_from_slice(&(if v6 { 0x86ddu16 } else { 0x0800 }).to_be_bytes());
    let ip_at = off + 2;
    let udp_at;
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let ip = &mut f[ip_at..ip_at + 20];
            ip[0] = 0x45;
            ip[1] = 0;
            ip[2..4].copy_from_slice(&(20 + ulen).to_be_bytes());
            ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
            ip[6..8].copy_from_slice(&0x4000u16.to_be_bytes());
            ip[8] = 64;
            ip[9] = 17;
            ip[10..12].copy_from_slice(&[0, 0]);
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let c = !fold(sum(0, ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            udp_at = ip_at + 20;
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let ip = &mut f[ip_at..ip_at + 40];
            ip[0..4].copy_from_slice(&0x6000_0000u32.to_be_bytes());
            ip[4..6].copy_from_slice(&ulen.to_be_bytes());
            ip[6] = 17;
            ip[7] = 64;
            ip[8..24].copy_from_slice(&s.octets());
            ip[24..40].copy_from_slice(&d.octets());
            udp_at = ip_at + 40;
        }
        _ => return None,
    }
    let udp = &mut f[udp_at..];
    udp[0..2].copy_from_slice(&src.port().to_be_bytes());
    udp[2..4].copy_from_slice(&dst.port().to_be_bytes());
    udp[4..6].copy_from_slice(&ulen.to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);
    udp[8..].copy_from_slice(payload);
    let mut c = !fold(sum(pseudo(&src.ip(), &dst.ip(), usize::from(ulen)), udp));
    if c == 0 {
        c = 0xffff; // RFC 768: a computed zero is sent as all ones
    }
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l2(vlan: Option<(u16, u16)>) -> L2 {
        L2 {
            local_mac: [2, 0, 0, 0, 0, 1],
            peer_mac: [2, 0, 0, 0, 0, 2],
            vlan,
        }
    }

    fn round_trip(src: &str, dst: &str, vlan: Option<(u16, u16)>) {
        let (src, dst): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let mut buf = [0u8; 256];
        let n = build(
            &mut buf,
            &l2(vlan),
            src,
            dst,
            b"OPTIONS sip:x SIP/2.0\r\n\r\n",
            7,
        )
        .unwrap();
        let u = parse(&buf[..n]).unwrap();
        assert_eq!((u.src, u.dst), (src, dst));
        assert_eq!(u.payload, b"OPTIONS sip:x SIP/2.0\r\n\r\n");
        // What we received from peer_mac we answer to peer_mac.
        assert_eq!(u.l2.peer_mac, l2(vlan).local_mac);
        assert_eq!(u.l2.vlan, vlan);
    }

    #[test]
    fn built_frames_parse_back_v4_v6_and_tagged() {
        round_trip("198.18.21.1:5060", "198.18.21.2:40000", None);
        round_trip("[2001:db8::1]:5060", "[2001:db8::2]:5062", None);
        round_trip("198.18.21.1:5060", "198.18.21.2:5060", Some((0x8100, 42)));
    }

    /// The word-wise sum equals the plain 16-bit sum of RFC 1071 for every length/offset.
    #[test]
    fn wide_sum_matches_the_16_bit_reference() {
        fn reference(data: &[u8]) -> u16 {
            let mut acc = 0u64;
            for c in data.chunks(2) {
                acc += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
            fold(acc)
        }
        let data: Vec<u8> = (0..600u32).map(|i| (i * 151 + 7) as u8 | 0x80).collect();
        for start in [0, 2] {
            for len in 0..data.len() - start {
                let d = &data[start..start + len];
                assert_eq!(fold(sum(0, d)), reference(d), "len {len}");
            }
        }
    }

    #[test]
    fn a_flipped_payload_bit_fails_the_udp_checksum() {
        let (s, d) = (
            "198.18.21.2:1".parse().unwrap(),
            "198.18.21.1:5060".parse().unwrap(),
        );
        let mut buf = [0u8; 128];
        let n = build(&mut buf, &l2(None), s, d, b"hello", 1).unwrap();
        buf[n - 1] ^= 1;
        assert_eq!(parse(&buf[..n]), Err(Reject::BadChecksum));
    }

    #[test]
    fn a_partial_offload_checksum_is_accepted() {
        let (s, d): (SocketAddr, SocketAddr) = (
            "198.18.21.2:1".parse().unwrap(),
            "198.18.21.1:5060".parse().unwrap(),
        );
        let mut buf = [0u8; 128];
        let n = build(&mut buf, &l2(None), s, d, b"hello", 1).unwrap();
        let p = fold(pseudo(&s.ip(), &d.ip(), 8 + 5));
        buf[14 + 20 + 6..14 + 20 + 8].copy_from_slice(&p.to_be_bytes());
        assert!(parse(&buf[..n]).is_ok());
    }

    #[test]
    fn fragments_short_and_lying_frames_are_refused_without_panic() {
        let (s, d) = (
            "198.18.21.2:1".parse().unwrap(),
            "198.18.21.1:5060".parse().unwrap(),
        );
        let mut buf = [0u8; 128];
        let n = build(&mut buf, &l2(None), s, d, b"hello", 1).unwrap();
        for cut in 0..n {
            let _ = parse(&buf[..cut]);
        }
        let mut frag = buf;
        frag[14 + 6] |= 0x20; // MF
        assert_eq!(parse(&frag[..n]), Err(Reject::NotHandled));
        let mut lie = buf;
        lie[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&500u16.to_be_bytes());
        assert_eq!(parse(&lie[..n]), Err(Reject::Malformed));
        assert_eq!(build(&mut [0u8; 40], &l2(None), s, d, b"hello", 1), None);
    }
}
