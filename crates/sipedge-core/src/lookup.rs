//! Location lookups: what the relay and the NAT pinger ask the location table, on the
//! owner shard directly or through the mesh ([`ShardMsg::Lookup`] → [`ShardMsg::LookupReply`]).

use std::net::SocketAddr;

use sipedge_msg::Uri;

use crate::aor::{canonical_aor, owner_of, split_aor};
use crate::core::Core;
use crate::location::{BindingRef, Transport};
use crate::output::LocalId;
use crate::shard::{ShardId, ShardMsg};
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

impl Core {
    /// The current bindings of `aor_uri` (any SIP URI; canonicalised like a To), if this
    /// shard owns it.
    pub fn lookup(&self, now: Millis, aor_uri: &[u8]) -> Result<Vec<LookupContact>, LookupError> {
        let uri = Uri::parse(aor_uri).map_err(|_| LookupError::NotAnAor)?;
        let mut aor = Vec::new();
        canonical_aor(&uri, self.io.cfg.registrar.case_sensitive, &mut aor)
            .map_err(|_| LookupError::NotAnAor)?;
        let owner = owner_of(&aor, self.io.cfg.shards);
        if owner != self.io.cfg.shard {
            return Err(LookupError::NotOwner(owner));
        }
        let (domain, user) = split_aor(&aor);
        let head = self.loc.head(self.loc.domain_id(domain), user);
        let mut out: Vec<LookupContact> = self
            .loc
            .chain(head)
            .map(|i| self.loc.get(i))
            .filter(|b| b.expires_at > now)
            .map(|b| self.contact_of(b))
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.q.unwrap_or(1000)));
        Ok(out)
    }

    /// Looks `aor_uri` up wherever it lives: answered here when this shard owns it, else
    /// asked of the owner over the mesh. The answer comes out of [`Core::poll_lookup`]
    /// with `token`.
    pub fn request_lookup(&mut self, now: Millis, aor_uri: &[u8], token: u64) {
        match self.lookup(now, aor_uri) {
            Err(LookupError::NotOwner(owner)) => self.io.shard_out.push_back((
                owner,
                ShardMsg::Lookup {
                    aor: aor_uri.to_vec(),
                    token,
                },
            )),
            result => self.lookups.push_back(LookupReply {
                token,
                owner: self.io.cfg.shard,
                contacts: result.unwrap_or_default(),
            }),
        }
    }

    /// The next answer to [`Core::request_lookup`].
    pub fn poll_lookup(&mut self) -> Option<LookupReply> {
        self.lookups.pop_front()
    }

    /// Answers a lookup another shard sent us.
    pub(crate) fn answer_lookup(&mut self, now: Millis, from: ShardId, aor: &[u8], token: u64) {
        self.io.stats.lookups_answered += 1;
        let contacts = self.lookup(now, aor).unwrap_or_default();
        self.io.shard_out.push_back((
            from,
            ShardMsg::LookupReply(LookupReply {
                token,
                owner: self.io.cfg.shard,
                contacts,
            }),
        ));
    }

    fn contact_of(&self, b: BindingRef<'_>) -> LookupContact {
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
            user_agent: self.loc.strings.get(b.ua).to_vec(),
            call_id: b.call_id().to_vec(),
            cseq: b.cseq,
            registered_at: b.registered_at(),
            expires_at: b.expires_at,
            received: b.nat.nated().then(|| b.source()),
            rtt_ms: b.nat.rtt_ms(),
            srtt_ms: b.nat.srtt_ms(),
        }
    }

    /// Live bindings on this shard.
    pub fn binding_count(&self) -> usize {
        self.loc.len()
    }

    /// AoRs with at least one binding on this shard.
    pub fn aor_count(&self) -> usize {
        self.loc.aors()
    }
}
