//! Shard identities and the messages shards hand each other over the mesh.

use std::net::SocketAddr;

use crate::limits::Charge;
use crate::lookup::LookupReply;
use crate::output::LocalId;
use crate::time::Millis;

pub use crate::output::ShardId;

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
        /// What the sending shard already parsed and validated of `bytes`, as offsets
        /// (`None`: the receiver parses them): the owner does not parse again.
        parsed: Option<Box<sipedge_msg::Parsed>>,
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
    /// A tracked call changing owner, or its BYE (issue 16, [`crate::dialog`]).
    Dialog(DialogMsg),
    /// A flow failed (`failed`) or registered again: every shard keeps the same table of
    /// failed flows, so a request to one gets 430 wherever it lands (RFC 5626 §5.3;
    /// `flows`). Sent by the shard that saw it; never forwarded further.
    FlowFailed {
        /// Our socket of the flow.
        local: LocalId,
        /// The peer's address of the flow.
        remote: SocketAddr,
        /// true: failed; false: alive again.
        failed: bool,
    },
    /// The AoR's shard accepted an Outbound REGISTER (`ob`, or `reg-id`) that arrived over
    /// stream flow `(local, remote)`; sent to the shard that owns that connection, which
    /// fails the flow when the connection closes (RFC 5626 §5.3; `stream_flows`).
    OutboundFlow {
        /// Our stream listener of the flow.
        local: LocalId,
        /// The peer's address of the flow.
        remote: SocketAddr,
    },
}

impl ShardMsg {
    /// Bytes this message holds, in place and on the heap: what it weighs in a mesh
    /// queue's byte budget (`[limits] mesh_queue_bytes`).
    pub fn weight(&self) -> usize {
        let heap = match self {
            ShardMsg::Datagram { bytes, parsed, .. } => {
                bytes.capacity()
                    + parsed
                        .as_ref()
                        .map_or(0, |_| std::mem::size_of::<sipedge_msg::Parsed>())
            }
            ShardMsg::Lookup { aor, .. } => aor.capacity(),
            ShardMsg::Dialog(DialogMsg::Open { ends, .. }) => ends.as_ref().map_or(0, |e| e.len()),
            ShardMsg::Dialog(_) => 0,
            ShardMsg::FlowFailed { .. } | ShardMsg::OutboundFlow { .. } => 0,
            ShardMsg::LookupReply(r) => {
                r.contacts.capacity() * std::mem::size_of::<crate::lookup::LookupContact>()
                    + r.contacts
                        .iter()
                        .map(|c| {
                            c.uri.capacity()
                                + c.path.capacity()
                                + c.instance.capacity()
                                + c.user_agent.capacity()
                                + c.call_id.capacity()
                        })
                        .sum::<usize>()
            }
        };
        std::mem::size_of::<ShardMsg>() + heap
    }
}

/// Between shards: a dialog changing owner, or its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogMsg {
    /// The first 2xx of a call whose dialog `key` belongs to the receiver.
    Open {
        /// The dialog key.
        key: u64,
        /// What the call holds (released when the receiver drops it).
        charge: Charge,
        /// What in-dialog requests to its ends need (`dialog::ends`), when kept.
        ends: Option<Box<[u8]>>,
    },
    /// A final answer to one of our in-dialog OPTIONS (`dialog::keepalive`), MAC checked.
    Alive {
        /// The dialog key.
        key: u64,
        /// From the callee's side (B), else the caller's (A).
        b_side: bool,
        /// The round it answers (ms mod 2³²).
        sent: u32,
        /// Its status code.
        code: u16,
    },
    /// A BYE for dialog `key` arrived on the sender.
    End {
        /// The dialog key.
        key: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_weighs_what_it_carries() {
        let small = ShardMsg::Lookup {
            aor: b"sip:a@b".to_vec(),
            token: 1,
        };
        let big = ShardMsg::Datagram {
            local: LocalId(0),
            remote: std::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
            arrived: Millis(0),
            bytes: vec![0; 60_000],
            parsed: None,
        };
        assert!(small.weight() < 200);
        assert!(big.weight() >= 60_000);
    }
}
