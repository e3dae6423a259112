//! Location lookups: what the relay and the NAT pinger ask the location table, on the
//! owner shard directly or through the mesh ([`ShardMsg::Lookup`] → [`ShardMsg::LookupReply`]).

use std::net::SocketAddr;

use crate::location::Transport;
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
