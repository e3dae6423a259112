//! Location lookups: what the relay, the NAT pinger and the admin API ask the location
//! table, on the owner shard directly or through the mesh ([`ShardMsg::Lookup`] →
//! [`ShardMsg::LookupReply`]). The types, and the local lookup as a function of the table it
//! reads ([`lookup_local`]), shared by `Core::lookup` and the admin queries.

use std::net::SocketAddr;

use sipedge_msg::Uri;

use crate::aor::{canonical_aor, owner_of, split_aor};
use crate::location::{BindingRef, Location, Transport};
use crate::output::LocalId;
use crate::output::ShardId;
use crate::time::Millis;

/// One current binding of an AoR, owned so it can cross the mesh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupContact {
    /// The contact URI as registered.
    pub uri: Vec<u8>,
    /// The Path the REGISTER carried (RFC 3327), comma-separated; empty when none.
    pub path: Vec<u8>,
    /// `+sip.instance` without quotes (RFC 5626); empty when none.
    pub instance: Vec<u8>,
    /// `reg-id` (RFC 5626), when the contact is an outbound flow.
    pub reg_id: Option<u32>,
    /// q in thousandths, when given.
    pub q: Option<u16>,
    /// Where the REGISTER came from (received ip:port).
    pub source: SocketAddr,
    /// The socket it arrived on.
    pub local: LocalId,
    /// Its transport.
    pub transport: Transport,
    /// The shard whose socket received it.
    pub arrival: ShardId,
    /// User-Agent (cut at 128 bytes); empty when none.
    pub user_agent: Vec<u8>,
    /// Call-ID and CSeq of the last REGISTER.
    pub call_id: Vec<u8>,
    /// CSeq number of the last REGISTER.
    pub cseq: u32,
    /// When it was last registered (monotonic, shared by every shard).
    pub registered_at: Millis,
    /// When it expires.
    pub expires_at: Millis,
    /// Where to reach it when it is NATed: the source of its REGISTER (Kamailio's
    /// `received`). `None`: not NATed, reach the contact URI itself.
    pub received: Option<SocketAddr>,
    /// The last keepalive RTT and the smoothed RTT, milliseconds (`None`: none measured).
    pub rtt_ms: Option<u16>,
    /// The smoothed keepalive RTT (RFC 6298 α = 1/8), milliseconds.
    pub srtt_ms: Option<u16>,
}

/// The answer to a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupReply {
    /// The requester's token.
    pub token: u64,
    /// The shard that answered (the AoR's owner).
    pub owner: ShardId,
    /// Current bindings, highest q first (no q counts as 1.0), then in registration order.
    /// Empty when the AoR has none or the URI is not an AoR.
    pub contacts: Vec<LookupContact>,
}

/// Why a local lookup could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The URI is not a `sip:`/`sips:` AoR.
    #[error("not an address of record")]
    NotAnAor,
    /// The AoR lives on another shard (ask it with `Core::request_lookup`).
    #[error("AoR owned by shard {0:?}")]
    NotOwner(ShardId),
}

/// The canonical form of `aor_uri`, any SIP URI canonicalised like a To (`None`: not a
/// `sip:`/`sips:` AoR).
pub(crate) fn canonical(aor_uri: &[u8], case_sensitive: bool) -> Option<Vec<u8>> {
    let uri = Uri::parse(aor_uri).ok()?;
    let mut aor = Vec::new();
    canonical_aor(&uri, case_sensitive, &mut aor).ok()?;
    Some(aor)
}

/// Where a lookup runs: the table and the ownership rule (ARCHITECTURE.md §1: a binding
/// lives on `hash(canonical AoR) % shards`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Owner {
    /// Compare AoR users case-sensitively (`[registrar] case_sensitive`).
    pub(crate) case_sensitive: bool,
    /// Shards in all.
    pub(crate) shards: u16,
    /// This shard.
    pub(crate) shard: ShardId,
}

/// The current bindings of `aor_uri` in `loc` at `now`, highest q first (no q counts as
/// 1.0), if `at` owns the AoR.
pub(crate) fn lookup_local(
    loc: &Location,
    at: Owner,
    now: Millis,
    aor_uri: &[u8],
) -> Result<Vec<LookupContact>, LookupError> {
    let aor = canonical(aor_uri, at.case_sensitive).ok_or(LookupError::NotAnAor)?;
    let owner = owner_of(&aor, at.shards);
    if owner != at.shard {
        return Err(LookupError::NotOwner(owner));
    }
    let (domain, user) = split_aor(&aor);
    let head = loc.head(loc.domain_id(domain), user);
    let mut out: Vec<LookupContact> = loc
        .chain(head)
        .map(|i| loc.get(i))
        .filter(|b| b.expires_at > now)
        .map(|b| contact_of(loc, b))
        .collect();
    out.sort_by_key(|c| std::cmp::Reverse(c.q.unwrap_or(1000)));
    Ok(out)
}

/// What a lookup (and the admin API) shows of binding `b`.
pub(crate) fn contact_of(loc: &Location, b: BindingRef<'_>) -> LookupContact {
    LookupContact {
        uri: b.contact().to_vec(),
        path: b.path().to_vec(),
        instance: b.instance().to_vec(),
        reg_id: (b.reg_id != 0).then_some(b.reg_id),
        q: b.q(),
        source: b.source(),
        local: LocalId(b.local),
        transport: b.transport(),
        arrival: ShardId(b.arrival),
        user_agent: loc.strings.get(b.ua).to_vec(),
        call_id: b.call_id().to_vec(),
        cseq: b.cseq,
        registered_at: b.registered_at(),
        expires_at: b.expires_at,
        received: b.nat.nated().then(|| b.source()),
        rtt_ms: b.nat.rtt_ms(),
        srtt_ms: b.nat.srtt_ms(),
    }
}
