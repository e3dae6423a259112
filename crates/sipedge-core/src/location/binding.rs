//! One binding slot of the location table and its borrowed view ([`BindingRef`]): the
//! fixed 72-byte part, the strings in its arena block, the transport.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::blobs::EMPTY;
use crate::output::LocalId;
use crate::output::ShardId;
use crate::time::Millis;

/// "No binding" in chains and "no string" in interned ids.
pub(crate) const NONE: u32 = u32::MAX;
/// Bindings per slab chunk.
pub(crate) const CHUNK: usize = 1024;
/// Longest chain [`Location::chain`] walks: above any `max_contacts` (at most 1000), a
/// bound on the work one AoR can cost even if its links were damaged.
pub(crate) const MAX_CHAIN: usize = 1024;

/// Transport a binding was registered over (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Transport {
    /// UDP.
    #[default]
    Udp = 0,
    /// TCP.
    Tcp = 1,
    /// TLS over TCP.
    Tls = 2,
    /// WebSocket (RFC 7118).
    Ws = 3,
    /// Secure WebSocket.
    Wss = 4,
}

impl Transport {
    /// The start of a Via we write for a message leaving by this transport, up to the
    /// sent-by: `SIP/2.0/UDP ` (RFC 3261 §18.1.1, §20.42; `WS`/`WSS` from RFC 7118 §5.2).
    #[inline]
    pub fn via_prefix(self) -> &'static str {
        match self {
            Transport::Udp => "SIP/2.0/UDP ",
            Transport::Tcp => "SIP/2.0/TCP ",
            Transport::Tls => "SIP/2.0/TLS ",
            Transport::Ws => "SIP/2.0/WS ",
            Transport::Wss => "SIP/2.0/WSS ",
        }
    }

    /// The `;transport=` parameter of a URI of ours on this transport (RFC 3261 §19.1.1,
    /// RFC 7118 §5.3); `None` for UDP, the default, which is left unwritten.
    #[inline]
    pub fn uri_param(self) -> Option<&'static str> {
        match self {
            Transport::Udp => None,
            Transport::Tcp => Some("tcp"),
            Transport::Tls => Some("tls"),
            Transport::Ws => Some("ws"),
            Transport::Wss => Some("wss"),
        }
    }

    /// A connection-oriented transport (a stream the runtime keeps open): responses go
    /// back down the connection (RFC 3261 §18.2.2), and the client keeps it alive
    /// (RFC 5626 §4.4.1) — no NAT pings from us.
    #[inline]
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }

    /// The transport a URI asks for: its `transport` parameter (case-insensitive,
    /// RFC 3261 §19.1.1), else TLS for `sips:` (§26.2.2), else UDP. An unknown value
    /// (`sctp`, garbage) is `None`: no socket of ours serves it.
    pub fn of_uri(uri: &sipedge_msg::Uri<'_>) -> Option<Transport> {
        let sips = matches!(uri.scheme(), sipedge_msg::Scheme::Sips);
        let Some(v) = uri.params().value(b"transport") else {
            return Some(if sips { Transport::Tls } else { Transport::Udp });
        };
        let t = [
            (b"udp".as_slice(), Transport::Udp),
            (b"tcp", Transport::Tcp),
            (b"tls", Transport::Tls),
            (b"ws", Transport::Ws),
            (b"wss", Transport::Wss),
        ]
        .into_iter()
        .find(|(name, _)| v.eq_ignore_ascii_case(name))
        .map(|(_, t)| t)?;
        // §26.2.2: sips over TCP means TLS; sips never goes over UDP.
        Some(match (sips, t) {
            (true, Transport::Udp | Transport::Tcp) => Transport::Tls,
            (true, Transport::Ws) => Transport::Wss,
            _ => t,
        })
    }

    pub(crate) fn from_u8(v: u8) -> Option<Transport> {
        Some(match v {
            0 => Transport::Udp,
            1 => Transport::Tcp,
            2 => Transport::Tls,
            3 => Transport::Ws,
            4 => Transport::Wss,
            _ => return None,
        })
    }
}

pub(super) const FLAG_LIVE: u8 = 1;
pub(super) const FLAG_V6: u8 = 2;
/// The AoR user is not stored apart: it is the user part of the contact URI (the usual
/// `sip:alice@ip:port` contact of AoR `sip:alice@domain`).
pub(super) const FLAG_USER_IN_CONTACT: u8 = 4;
pub(super) const TRANSPORT_SHIFT: u8 = 4;

/// One contact binding. 72 bytes; its strings are in the arena block `blob`.
#[derive(Debug)]
pub(crate) struct Binding {
    /// Arena handle of: user | contact | call_id | instance | path | [ipv6 address]
    pub(super) blob: u32,
    /// Monotonic expiry.
    pub(crate) expires_at: Millis,
    pub(super) ip4: u32,
    /// Next binding of the same AoR, or [`NONE`].
    pub(crate) next: u32,
    pub(crate) domain: u32,
    pub(crate) ua: u32,
    pub(crate) gen: u32,
    pub(crate) cseq: u32,
    /// `reg-id` (RFC 5626 §4.2); 0 = none (reg-id is 1..2³¹).
    pub(crate) reg_id: u32,
    /// Seconds granted at the last registration: registered at `expires_at - granted`.
    pub(crate) granted_secs: u32,
    /// Hash of the top Via branch of the last REGISTER (recognises a retransmission).
    pub(crate) branch: u32,
    pub(super) port: u16,
    pub(crate) local: u16,
    /// q in thousandths, `u16::MAX` = none given.
    pub(crate) q: u16,
    pub(crate) arrival: u16,
    pub(super) contact_len: u16,
    pub(super) call_id_len: u16,
    pub(super) instance_len: u16,
    pub(super) path_len: u16,
    pub(super) user_len: u8,
    pub(super) flags: u8,
    /// NAT flag, ping mode, miss counter and RTTs (5 bytes in what was padding).
    pub(crate) nat: super::nat_bits::NatState,
}

/// Everything a REGISTER (or a restored record) says about one binding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BindingData<'a> {
    pub(crate) contact: &'a [u8],
    pub(crate) call_id: &'a [u8],
    pub(crate) instance: &'a [u8],
    pub(crate) path: &'a [u8],
    pub(crate) user_agent: &'a [u8],
    pub(crate) cseq: u32,
    pub(crate) reg_id: u32,
    pub(crate) q: Option<u16>,
    pub(crate) expires_at: Millis,
    pub(crate) granted_secs: u32,
    pub(crate) source: SocketAddr,
    pub(crate) local: LocalId,
    pub(crate) transport: Transport,
    pub(crate) arrival: ShardId,
    pub(crate) branch: u32,
}

/// Longest User-Agent kept (bytes); longer ones are cut.
pub(crate) const MAX_USER_AGENT_BYTES: usize = 128;

impl Binding {
    pub(super) fn vacant() -> Binding {
        Binding {
            blob: EMPTY,
            expires_at: Millis(0),
            ip4: 0,
            next: NONE,
            domain: NONE,
            ua: NONE,
            gen: 0,
            cseq: 0,
            reg_id: 0,
            granted_secs: 0,
            branch: 0,
            port: 0,
            local: 0,
            q: u16::MAX,
            arrival: 0,
            contact_len: 0,
            call_id_len: 0,
            instance_len: 0,
            path_len: 0,
            user_len: 0,
            flags: 0,
            nat: super::nat_bits::NatState::default(),
        }
    }

    pub(crate) fn is_live(&self) -> bool {
        self.flags & FLAG_LIVE != 0
    }

    /// Bytes the user takes in the blob (0 when it is shared with the contact).
    pub(super) fn own_user_len(&self) -> usize {
        if self.flags & FLAG_USER_IN_CONTACT != 0 {
            0
        } else {
            usize::from(self.user_len)
        }
    }

    pub(super) fn blob_len(&self) -> usize {
        self.own_user_len()
            + usize::from(self.contact_len)
            + usize::from(self.call_id_len)
            + usize::from(self.instance_len)
            + usize::from(self.path_len)
            + if self.flags & FLAG_V6 != 0 { 16 } else { 0 }
    }

    pub(crate) fn transport(&self) -> Transport {
        Transport::from_u8(self.flags >> TRANSPORT_SHIFT).unwrap_or_default()
    }
    pub(crate) fn q(&self) -> Option<u16> {
        (self.q != u16::MAX).then_some(self.q)
    }
    pub(crate) fn registered_at(&self) -> Millis {
        Millis(
            self.expires_at
                .0
                .saturating_sub(u64::from(self.granted_secs) * 1000),
        )
    }

    pub(super) fn set_scalars(&mut self, d: &BindingData<'_>) {
        self.expires_at = d.expires_at;
        self.cseq = d.cseq;
        self.reg_id = d.reg_id;
        self.granted_secs = d.granted_secs;
        self.branch = d.branch;
        self.port = d.source.port();
        self.local = d.local.0;
        self.q = d.q.unwrap_or(u16::MAX);
        self.arrival = d.arrival.0;
        let layout = self.flags & (FLAG_V6 | FLAG_USER_IN_CONTACT);
        self.flags = FLAG_LIVE | layout | ((d.transport as u8) << TRANSPORT_SHIFT);
        self.ip4 = match d.source.ip() {
            IpAddr::V4(v4) => u32::from(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(0, u32::from),
        };
    }
}

/// A binding with its strings: what [`Location::get`] hands out. Derefs to [`Binding`]
/// for the fixed fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BindingRef<'a> {
    pub(super) b: &'a Binding,
    pub(super) blob: &'a [u8],
}

impl std::ops::Deref for BindingRef<'_> {
    type Target = Binding;
    fn deref(&self) -> &Binding {
        self.b
    }
}

impl<'a> BindingRef<'a> {
    pub(super) fn field(&self, field: usize) -> &'a [u8] {
        let b = self.b;
        let lens = [
            b.own_user_len(),
            usize::from(b.contact_len),
            usize::from(b.call_id_len),
            usize::from(b.instance_len),
            usize::from(b.path_len),
        ];
        let start: usize = lens[..field].iter().sum();
        &self.blob[start..start + lens[field]]
    }

    /// The AoR's user part (canonical).
    pub(crate) fn user(&self) -> &'a [u8] {
        user_of(self.b, self.blob)
    }
    /// The contact URI, as registered.
    pub(crate) fn contact(&self) -> &'a [u8] {
        self.field(1)
    }
    pub(crate) fn call_id(&self) -> &'a [u8] {
        self.field(2)
    }
    /// `+sip.instance` without quotes (RFC 5626 §4.1), empty when none.
    pub(crate) fn instance(&self) -> &'a [u8] {
        self.field(3)
    }
    /// The Path header values, comma-separated as received (RFC 3327 §5.3), empty when none.
    pub(crate) fn path(&self) -> &'a [u8] {
        self.field(4)
    }
    /// Where the REGISTER came from (the received ip:port, RFC 3581 §4).
    pub(crate) fn source(&self) -> SocketAddr {
        let ip = if self.b.flags & FLAG_V6 != 0 {
            let tail = &self.blob[self.blob.len() - 16..];
            let octets: [u8; 16] = tail.try_into().expect("v6 tail is 16 bytes");
            IpAddr::V6(Ipv6Addr::from(octets))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.b.ip4))
        };
        SocketAddr::new(ip, self.b.port)
    }

    /// True when the strings of `d` (other than the user and the UA) are what is stored.
    pub(super) fn same_strings(&self, d: &BindingData<'_>) -> bool {
        let stored_v6 = self.b.flags & FLAG_V6 != 0;
        let same_ip_part = match v6_octets(d.source) {
            Some(o) => stored_v6 && self.blob[self.blob.len() - 16..] == o,
            None => !stored_v6,
        };
        same_ip_part
            && self.contact() == d.contact
            && self.call_id() == d.call_id
            && self.instance() == d.instance
            && self.path() == d.path
    }
}

/// The AoR user of `b` whose blob is `blob` (at least the user's and the contact's bytes).
pub(super) fn user_of<'a>(b: &Binding, blob: &'a [u8]) -> &'a [u8] {
    let len = usize::from(b.user_len);
    if b.flags & FLAG_USER_IN_CONTACT != 0 {
        let at = user_at(blob).unwrap_or(0);
        &blob[at..at + len]
    } else {
        &blob[..len]
    }
}

/// Where the user part of a `sip:`/`sips:` contact starts.
pub(super) fn user_at(contact: &[u8]) -> Option<usize> {
    memchr_colon(contact).map(|c| c + 1)
}

pub(super) fn memchr_colon(s: &[u8]) -> Option<usize> {
    s.iter().take(6).position(|&b| b == b':')
}

/// True when `contact` is `scheme ":" user "@" …`: the user need not be stored apart.
pub(super) fn user_in_contact(contact: &[u8], user: &[u8]) -> bool {
    !user.is_empty()
        && user_at(contact).is_some_and(|at| {
            contact[at..].starts_with(user) && contact.get(at + user.len()) == Some(&b'@')
        })
}

/// The 16 bytes a non-IPv4 source adds to the blob.
pub(super) fn v6_octets(a: SocketAddr) -> Option<[u8; 16]> {
    match a.ip() {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => Some(v6.octets()),
        _ => None,
    }
}
