//! Location lookups on [`Core`]: on the owner shard, and over the mesh (types in `lookup`).

use crate::core::Core;
use crate::lookup::{LookupContact, LookupError, LookupReply, Owner};
use crate::shard::{ShardId, ShardMsg};
use crate::time::Millis;

impl Core {
    /// The current bindings of `aor_uri` (any SIP URI; canonicalised like a To), if this
    /// shard owns it.
    pub fn lookup(&self, now: Millis, aor_uri: &[u8]) -> Result<Vec<LookupContact>, LookupError> {
        crate::lookup::lookup_local(&self.loc, self.owner(), now, aor_uri)
    }

    /// The ownership rule this shard looks AoRs up by.
    pub(super) fn owner(&self) -> Owner {
        Owner {
            case_sensitive: self.io.cfg.registrar.case_sensitive,
            shards: self.io.cfg.shards,
            shard: self.io.cfg.shard,
        }
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

    /// Live bindings on this shard.
    pub fn binding_count(&self) -> usize {
        self.loc.len()
    }

    /// AoRs with at least one binding on this shard.
    pub fn aor_count(&self) -> usize {
        self.loc.aors()
    }
}
