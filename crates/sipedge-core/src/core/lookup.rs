//! Location lookups on [`Core`]: on the owner shard, and over the mesh (types in `lookup`).

use sipedge_msg::Uri;

use crate::aor::{canonical_aor, owner_of, split_aor};
use crate::core::Core;
use crate::location::BindingRef;
use crate::lookup::{LookupContact, LookupError, LookupReply};
use crate::output::LocalId;
use crate::shard::{ShardId, ShardMsg};
use crate::time::Millis;

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
