//! The admin queries over one shard's [`Location`], as functions of explicit arguments.

use sipedge_msg::Uri;

use crate::aor::{owner_of, same_contact};
use crate::location::Location;
use crate::lookup::{canonical, contact_of, LookupContact};
use crate::shard::ShardId;
use crate::time::Millis;

/// One binding of a listing, with its AoR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBinding {
    /// The canonical AoR (`sip:user@host`).
    pub aor: Vec<u8>,
    /// The binding.
    pub contact: LookupContact,
}

/// The shard that owns `aor_uri` among `shards` (`None`: not an AoR). The admin API sends
/// its query there (ARCHITECTURE.md §1: a binding lives on `hash(canonical AoR) % N`).
pub fn aor_owner(aor_uri: &[u8], case_sensitive: bool, shards: u16) -> Option<ShardId> {
    canonical(aor_uri, case_sensitive).map(|aor| owner_of(&aor, shards))
}

/// Does the canonical `aor` start with `prefix`, with or without its scheme?
fn has_prefix(aor: &[u8], prefix: &[u8]) -> bool {
    if aor.starts_with(prefix) {
        return true;
    }
    let colon = aor.iter().position(|&c| c == b':').map_or(0, |c| c + 1);
    aor[colon..].starts_with(prefix)
}

/// One slice of a listing: the live bindings in slots `from_slot..from_slot + max_slots`
/// whose AoR starts with `prefix`, at most `limit` of them. Returns them and the slot to
/// continue from (`None`: the table's end was reached). Bounded work: at most `max_slots`
/// slots are looked at, whatever they hold.
pub(crate) fn list_slice(
    loc: &Location,
    now: Millis,
    prefix: &[u8],
    from_slot: u32,
    max_slots: u32,
    limit: u32,
) -> (Vec<ListedBinding>, Option<u32>) {
    let cap = u32::try_from(loc.capacity()).unwrap_or(u32::MAX);
    let end = from_slot.saturating_add(max_slots).min(cap);
    let mut out = Vec::new();
    let mut aor = Vec::with_capacity(64);
    let mut slot = from_slot;
    while slot < end && (out.len() as u32) < limit {
        if let Some(b) = loc.slot(slot).filter(|b| b.expires_at > now) {
            loc.aor_of(b, &mut aor);
            if has_prefix(&aor, prefix) {
                out.push(ListedBinding {
                    aor: aor.clone(),
                    contact: contact_of(loc, b),
                });
            }
        }
        slot += 1;
    }
    (out, (slot < cap).then_some(slot))
}

/// The slots of the bindings of the canonical `aor` whose contact is `contact` (every one
/// when `None`). `Err`: `contact` is not a URI.
pub(crate) fn matching(loc: &Location, aor: &[u8], contact: Option<&[u8]>) -> Result<Vec<u32>, ()> {
    let wanted = match contact {
        Some(c) => Some(Uri::parse(c).map_err(|_| ())?),
        None => None,
    };
    let (domain, user) = crate::aor::split_aor(aor);
    let head = loc.head(loc.domain_id(domain), user);
    Ok(loc
        .chain(head)
        .filter(|&i| {
            let b = loc.get(i);
            match &wanted {
                None => true,
                Some(w) => {
                    b.contact() == w.raw()
                        || Uri::parse(b.contact()).is_ok_and(|u| same_contact(&u, w))
                }
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_matches_with_or_without_the_scheme() {
        assert!(has_prefix(b"sip:alice@example.com", b"ali"));
        assert!(has_prefix(b"sip:alice@example.com", b"sip:alice@"));
        assert!(!has_prefix(b"sip:alice@example.com", b"bob"));
        assert!(has_prefix(b"sip:alice@example.com", b""));
    }
}
