//! Shard identities and the messages shards hand each other over the mesh.

use std::net::SocketAddr;

use crate::lookup::LookupReply;
use crate::output::LocalId;
use crate::time::Millis;

/// Index of a shard (0..shards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ShardId(pub u16);

/// A message from one shard's core to another's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardMsg {
    /// A datagram that arrived on the sender's socket but belongs to the receiver (the AoR's
    /// owner, or the transaction's owner). The receiver processes it as if it had arrived on
    /// its own socket `local` — every shard's socket shares the same address, so the peer
    /// cannot tell which one answers.
    Datagram {
        /// Socket index the datagram arrived on (the same index on every shard).
        local: LocalId,
        /// The sender.
        remote: SocketAddr,
        /// When it arrived.
        arrived: Millis,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// "Which contacts does this AoR have?", sent to the AoR's owner
    /// (`Core::request_lookup`). Answered with [`ShardMsg::LookupReply`].
    Lookup {
        /// The AoR as a URI (canonicalised by the owner).
        aor: Vec<u8>,
        /// Echoed in the reply.
        token: u64,
    },
    /// The owner's answer to [`ShardMsg::Lookup`]; comes out of `Core::poll_lookup`.
    LookupReply(LookupReply),
}
