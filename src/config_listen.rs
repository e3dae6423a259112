//! `[server] listen` entries: `transport:ip:port [advertise host[:port]]` (Kamailio's
//! `listen=… advertise …`), parsed once into [`Listen`].

use std::net::SocketAddr;

/// Transport of a listen entry: the core's binding transport (`udp`, `tcp`, `tls`, `ws`,
/// `wss`; RFC 3261 §18, RFC 7118).
pub use sipedge_core::Transport;

/// One `[server] listen` entry: `transport:ip:port [advertise host[:port]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// Transport.
    pub transport: Transport,
    /// Address.
    pub addr: SocketAddr,
    /// What we put in Via, Record-Route, Path and our pings for this socket (Kamailio's
    /// `listen=… advertise …`): `host:port` text, the host lowercase and IPv6 bracketed, the
    /// port the listen port when none was given. `None`: the listen address itself.
    pub advertise: Option<Advertise>,
}

/// An advertised `host:port` (RFC 3261 §25.1 `hostport`: a host name, IPv4 or `[IPv6]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertise {
    /// The host as written in a Via sent-by or a URI (IPv6 in brackets), lowercase.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Listen {
    /// Both entries would bind the same socket: the same address and port, both UDP or
    /// both over TCP (UDP and the stream transports may share an address:port).
    pub fn clashes(&self, other: &Listen) -> bool {
        let udp = |x: &Listen| x.transport == Transport::Udp;
        self.addr == other.addr && udp(self) == udp(other)
    }

    /// The `host:port` we advertise on this socket: the `advertise` part, else the listen
    /// address (IPv6 bracketed).
    pub fn advertised(&self) -> String {
        match &self.advertise {
            Some(a) => format!("{}:{}", a.host, a.port),
            None => self.addr.to_string(),
        }
    }
}

/// `transport:ip:port [advertise host[:port]]`, IPv6 as `udp:[::1]:5060`.
/// Every `[server] listen` entry, none listed twice (same socket, [`Listen::clashes`]).
pub(crate) fn parse_listen_all(entries: &[String]) -> Result<Vec<Listen>, (String, String)> {
    let mut listen: Vec<Listen> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = || format!("server.listen[{i}]");
        let l = parse_listen(entry).map_err(|m| (key(), m))?;
        if listen.iter().any(|x| x.clashes(&l)) {
            return Err((key(), format!("`{entry}` is listed twice")));
        }
        listen.push(l);
    }
    Ok(listen)
}

pub(crate) fn parse_listen(entry: &str) -> Result<Listen, String> {
    let mut words = entry.split_whitespace();
    let first = words.next().unwrap_or_default();
    let advertise_text = match (words.next(), words.next(), words.next()) {
        (None, _, _) => None,
        (Some(kw), Some(a), None) if kw.eq_ignore_ascii_case("advertise") => Some(a),
        _ => {
            return Err(format!(
                "`{entry}` is not `transport:ip:port` or `transport:ip:port advertise host[:port]`"
            ))
        }
    };
    let mut l = parse_listen_addr(first)?;
    if let Some(a) = advertise_text {
        l.advertise = Some(parse_advertise(a, l.addr.port())?);
    }
    Ok(l)
}

/// `host[:port]` after `advertise`: a host name (RFC 3261 §25.1 `hostname`), an IPv4
/// address or a bracketed IPv6 address; no port = `listen_port`.
fn parse_advertise(text: &str, listen_port: u16) -> Result<Advertise, String> {
    let bad = || {
        format!(
            "`advertise {text}` is not host[:port] (a host name, an IPv4 address or [IPv6], \
             port 1-65535)"
        )
    };
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
        let ip: std::net::Ipv6Addr = v6.parse().map_err(|_| bad())?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad)?),
        };
        (format!("[{ip}]"), port)
    } else {
        let (h, p) = match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        let ok = !h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !ok {
            return Err(bad());
        }
        if h.parse::<std::net::Ipv4Addr>().is_err()
            && h.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        {
            return Err(bad());
        }
        if h.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_unspecified())
        {
            return Err(format!("`advertise {text}`: 0.0.0.0 cannot be advertised"));
        }
        (h.to_ascii_lowercase(), p)
    };
    if host == "[::]" {
        return Err(format!("`advertise {text}`: [::] cannot be advertised"));
    }
    let port = match port {
        None => listen_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(bad()),
        },
    };
    Ok(Advertise { host, port })
}

/// `transport:ip:port`.
fn parse_listen_addr(entry: &str) -> Result<Listen, String> {
    let (transport, addr) = entry
        .split_once(':')
        .ok_or_else(|| format!("`{entry}` is not transport:ip:port"))?;
    let transport = match transport.to_ascii_lowercase().as_str() {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        "ws" => Transport::Ws,
        "wss" => Transport::Wss,
        _ => {
            return Err(format!(
                "`{transport}` is not a transport (udp, tcp, tls, ws, wss)"
            ))
        }
    };
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("`{addr}` is not an ip:port address (IPv6 as [::1]:5060)"))?;
    if addr.port() == 0 {
        return Err(format!("`{entry}`: port 0 is not allowed"));
    }
    Ok(Listen {
        transport,
        addr,
        advertise: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn adv(entry: &str) -> Result<Listen, String> {
        parse_listen(entry)
    }

    #[test]
    fn advertise_takes_a_name_an_ip_or_ipv6_and_defaults_the_port() {
        let l = adv("udp:0.0.0.0:5060 advertise SIP.Example.com:5070").expect("valid");
        assert_eq!(l.advertised(), "sip.example.com:5070");
        let l = adv("udp:10.0.0.5:5080 advertise 203.0.113.7").expect("valid");
        assert_eq!(l.advertised(), "203.0.113.7:5080");
        let l = adv("udp:[::]:5060  advertise  [2001:DB8::1]").expect("valid");
        assert_eq!(l.advertised(), "[2001:db8::1]:5060");
        let l = adv("udp:127.0.0.1:5060").expect("valid");
        assert_eq!(l.advertised(), "127.0.0.1:5060");
        assert!(l.advertise.is_none());
    }

    #[test]
    fn bad_advertise_is_refused() {
        for bad in [
            "udp:0.0.0.0:5060 advertise",
            "udp:0.0.0.0:5060 advertise a b",
            "udp:0.0.0.0:5060 advertize x.example",
            "udp:0.0.0.0:5060 advertise x.example:0",
            "udp:0.0.0.0:5060 advertise x.example:99999",
            "udp:0.0.0.0:5060 advertise -x.example",
            "udp:0.0.0.0:5060 advertise x..example",
            "udp:0.0.0.0:5060 advertise x_y.example",
            "udp:0.0.0.0:5060 advertise 0.0.0.0",
            "udp:0.0.0.0:5060 advertise 1.2.3",
            "udp:0.0.0.0:5060 advertise [::]",
            "udp:0.0.0.0:5060 advertise [::1",
            "udp:0.0.0.0:5060 advertise [::1]5060",
            "udp:0.0.0.0:5060 advertise x;lr",
        ] {
            assert!(adv(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn wildcard_without_advertise_is_refused_naming_the_entry_and_the_fix() {
        let e = Config::parse(
            "[server]\nlisten = [\"udp:127.0.0.1:5060\", \"udp:0.0.0.0:5070\"]\n",
            "t.toml",
        )
        .expect_err("wildcard without advertise");
        assert_eq!(e.key, "server.listen[1]");
        let text = e.to_string();
        assert!(text.contains("advertise"), "{text}");
        assert!(text.contains("udp:0.0.0.0:5070"), "{text}");
        assert!(Config::parse("[server]\nlisten = [\"udp:[::]:5070\"]\n", "t").is_err());
    }

    #[test]
    fn advertised_hosts_are_our_domains_and_wildcards_are_not() {
        let c = Config::parse(
            "[server]\nlisten = [\"udp:0.0.0.0:5060 advertise sip.example.com\", \
             \"udp:10.0.0.5:5080 advertise [2001:db8::7]:5080\"]\n",
            "t",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for d in ["sip.example.com", "2001:db8::7", "10.0.0.5"] {
            assert!(
                c.domains.iter().any(|x| x == d),
                "{d} missing: {:?}",
                c.domains
            );
        }
        assert!(!c.domains.iter().any(|x| x == "0.0.0.0"), "{:?}", c.domains);
        assert_eq!(c.listen[0].advertised(), "sip.example.com:5060");
    }

    #[test]
    fn the_same_address_twice_is_refused_even_with_different_advertise() {
        let e = Config::parse(
            "[server]\nlisten = [\"udp:0.0.0.0:5060 advertise a.example\", \
             \"udp:0.0.0.0:5060 advertise b.example\"]\n",
            "t",
        )
        .expect_err("twice");
        assert_eq!(e.key, "server.listen[1]");
    }
}
