//! What we write as our own address (issue 15 item 2): the advertised `host:port` of the
//! socket a message leaves by, in Via (RFC 3261 §18.1.1 sent-by), Record-Route (§16.6 step
//! 4) and Path (RFC 3327 §5.1), and the double Record-Route of RFC 5658 §4 when a request
//! enters on one socket and leaves by another.

use crate::output::LocalId;
use crate::proxy::{write_hostport, ProxyConfig};

/// Writes our `host:port` on socket `local`: its advertised name
/// ([`ProxyConfig::advertise_names`]) when one is set, else its address
/// ([`ProxyConfig::advertise`]), else the first socket's.
pub(crate) fn write_advertised(out: &mut String, cfg: &ProxyConfig, local: LocalId) {
    let i = usize::from(local.0);
    if let Some(name) = cfg.advertise_names.get(i).filter(|n| !n.is_empty()) {
        out.push_str(name);
        return;
    }
    let addr = cfg
        .advertise
        .get(i)
        .or(cfg.advertise.first())
        .copied()
        .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 5060)));
    write_hostport(out, addr);
}

/// Writes `;transport=tcp|tls|ws|wss` for socket `local` (nothing for UDP, the default):
/// a URI of ours in Record-Route or Path names the transport it is reached by (RFC 3261
/// §19.1.1, §16.6 step 4; RFC 7118 §5.3), so the next in-dialog request comes back over it.
pub(crate) fn write_transport_param(out: &mut String, cfg: &ProxyConfig, local: LocalId) {
    if let Some(t) = cfg.transport_of(local).uri_param() {
        out.push_str(";transport=");
        out.push_str(t);
    }
}

/// Do sockets `a` and `b` advertise the same `host:port` over the same transport? (Then
/// one Record-Route serves both sides of a dialog.) Compared without formatting, so a
/// forwarded request allocates nothing; a name against an address counts as different
/// (two entries are never wrong). Two transports are always two entries (RFC 5658 §4: a
/// request that changes transport is double-recorded, each side's entry naming its own).
pub(crate) fn same_advertised(cfg: &ProxyConfig, a: LocalId, b: LocalId) -> bool {
    if a == b {
        return true;
    }
    if cfg.transport_of(a) != cfg.transport_of(b) {
        return false;
    }
    let name = |l: LocalId| {
        cfg.advertise_names
            .get(usize::from(l.0))
            .filter(|n| !n.is_empty())
    };
    let addr = |l: LocalId| {
        cfg.advertise
            .get(usize::from(l.0))
            .or(cfg.advertise.first())
    };
    match (name(a), name(b)) {
        (Some(x), Some(y)) => x == y,
        (None, None) => addr(a) == addr(b),
        _ => false,
    }
}

/// Is `port` one of the ports we listen on or advertise? ([`ProxyConfig::port_is_ours`].)
pub(crate) fn port_is_ours(cfg: &ProxyConfig, port: u16) -> bool {
    cfg.port_is_ours(port)
}

/// Our Record-Route for a request that entered on `inbound` and leaves by `outbound`:
/// `<sip:OUT;lr;sed=TOKEN>` and, when the two sockets advertise different addresses or
/// differ in transport, a second entry `<sip:IN;lr>` below it (RFC 5658 §4, "double
/// Record-Route"; RFC 3261 §16.6 step 4), each with the `;transport=` of its socket
/// when that is not UDP ([`write_transport_param`]): the topmost
/// entry faces the callee, whose route set keeps the order, and the second faces the
/// caller, whose route set is reversed (RFC 3261 §12.1.2). Only the first carries the
/// dialog token, so the response path rewrites exactly one ([`crate::proxy::token`]).
pub(crate) fn write_record_route(
    rr: &mut String,
    cfg: &ProxyConfig,
    (inbound, outbound): (LocalId, LocalId),
    token: &[u8],
) {
    rr.clear();
    rr.push_str("<sip:");
    write_advertised(rr, cfg, outbound);
    write_transport_param(rr, cfg, outbound);
    rr.push_str(";lr;sed=");
    rr.push_str(std::str::from_utf8(token).unwrap_or_default());
    rr.push('>');
    if !same_advertised(cfg, inbound, outbound) {
        rr.push_str(", <sip:");
        write_advertised(rr, cfg, inbound);
        write_transport_param(rr, cfg, inbound);
        rr.push_str(";lr>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> ProxyConfig {
        ProxyConfig {
            advertise: vec![
                "0.0.0.0:5060".parse().expect("literal"),
                "10.0.0.5:5080".parse().expect("literal"),
            ],
            advertise_names: vec!["sip.example.com:5060".into(), String::new()],
            ..ProxyConfig::default()
        }
    }

    #[test]
    fn names_win_over_addresses() {
        let mut s = String::new();
        write_advertised(&mut s, &cfg(), LocalId(0));
        assert_eq!(s, "sip.example.com:5060");
        s.clear();
        write_advertised(&mut s, &cfg(), LocalId(1));
        assert_eq!(s, "10.0.0.5:5080");
    }

    #[test]
    fn two_sockets_two_record_routes_outbound_first() {
        let mut rr = String::new();
        write_record_route(&mut rr, &cfg(), (LocalId(0), LocalId(1)), b"ab12");
        assert_eq!(
            rr,
            "<sip:10.0.0.5:5080;lr;sed=ab12>, <sip:sip.example.com:5060;lr>"
        );
        write_record_route(&mut rr, &cfg(), (LocalId(1), LocalId(1)), b"ab12");
        assert_eq!(rr, "<sip:10.0.0.5:5080;lr;sed=ab12>");
    }

    #[test]
    fn a_change_of_transport_is_double_recorded_each_side_naming_its_own() {
        let c = ProxyConfig {
            advertise: vec!["192.0.2.1:5060".parse().expect("literal"); 2],
            transports: vec![crate::Transport::Udp, crate::Transport::Tcp],
            ..ProxyConfig::default()
        };
        let mut rr = String::new();
        write_record_route(&mut rr, &c, (LocalId(0), LocalId(1)), b"ab12");
        assert_eq!(
            rr,
            "<sip:192.0.2.1:5060;transport=tcp;lr;sed=ab12>, <sip:192.0.2.1:5060;lr>"
        );
        write_record_route(&mut rr, &c, (LocalId(1), LocalId(0)), b"ab12");
        assert_eq!(
            rr,
            "<sip:192.0.2.1:5060;lr;sed=ab12>, <sip:192.0.2.1:5060;transport=tcp;lr>"
        );
        write_record_route(&mut rr, &c, (LocalId(1), LocalId(1)), b"ab12");
        assert_eq!(rr, "<sip:192.0.2.1:5060;transport=tcp;lr;sed=ab12>");
    }

    #[test]
    fn advertised_ports_are_ours() {
        let c = ProxyConfig {
            advertise_names: vec!["sip.example.com:15060".into()],
            ..cfg()
        };
        assert!(port_is_ours(&c, 15060));
        assert!(port_is_ours(&c, 5080));
        assert!(!port_is_ours(&c, 5061));
    }
}
