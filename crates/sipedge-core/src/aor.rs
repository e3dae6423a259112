//! Addresses of record: canonical form (RFC 3261 §10.3 step 5), the stable routing hash that
//! picks a binding's owner shard, the seeded table hash, and contact URI comparison
//! (RFC 3261 §19.1.4).

use sipedge_msg::{unescape, Scheme, Uri};

use crate::output::ShardId;

/// Why a To URI is not an address of record we can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AorError {
    /// Not a `sip:` or `sips:` URI.
    Scheme,
    /// Longer than [`MAX_AOR_BYTES`].
    TooLong,
}

/// Longest canonical AoR accepted (bytes). Longer ones are refused with 400.
pub(crate) const MAX_AOR_BYTES: usize = 255;

/// Writes the canonical AoR of `uri` into `out` (cleared first): `scheme ":" [user "@"] host`.
///
/// RFC 3261 §10.3 step 5: every URI parameter is removed (`user=phone` included), escaped
/// characters are unescaped. The host is lowercased (§19.1.4: hosts compare
/// case-insensitively); the user is lowercased too unless `case_sensitive` (operators'
/// phones disagree about user case far more often than two users differ only by it — the
/// `[registrar] case_sensitive` key). The port is dropped: an AoR names a user, not a
/// socket, and phones that write `:5060` must land on the same binding as those that do
/// not. The password is dropped as well.
pub(crate) fn canonical_aor(
    uri: &Uri<'_>,
    case_sensitive: bool,
    out: &mut Vec<u8>,
) -> Result<(), AorError> {
    out.clear();
    match uri.scheme() {
        Scheme::Sip => out.extend_from_slice(b"sip:"),
        Scheme::Sips => out.extend_from_slice(b"sips:"),
        _ => return Err(AorError::Scheme),
    }
    if let Some(user) = uri.user().filter(|u| !u.is_empty()) {
        let at = out.len();
        if user.contains(&b'%') {
            out.extend(unescape(user));
        } else {
            // Nothing to unescape (the usual user): copied as a block.
            out.extend_from_slice(user);
        }
        if !case_sensitive {
            out[at..].make_ascii_lowercase();
        }
        out.push(b'@');
    }
    let at = out.len();
    out.extend_from_slice(uri.host());
    out[at..].make_ascii_lowercase();
    if out.len() > MAX_AOR_BYTES {
        return Err(AorError::TooLong);
    }
    Ok(())
}

/// Splits a canonical AoR into its domain part (`scheme ":" host`, interned by the table)
/// and its user part. Written as `(domain, user)` because that is how the table stores it.
pub(crate) fn split_aor(aor: &[u8]) -> (DomainKey<'_>, &[u8]) {
    let colon = aor.iter().position(|&b| b == b':').unwrap_or(0);
    let rest = &aor[(colon + 1).min(aor.len())..];
    match rest.iter().rposition(|&b| b == b'@') {
        Some(at) => (
            DomainKey {
                scheme: &aor[..colon],
                host: &rest[at + 1..],
            },
            &rest[..at],
        ),
        None => (
            DomainKey {
                scheme: &aor[..colon],
                host: rest,
            },
            &[],
        ),
    }
}

/// The two parts of an AoR's domain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DomainKey<'a> {
    pub(crate) scheme: &'a [u8],
    pub(crate) host: &'a [u8],
}

/// The owner shard of a canonical AoR: `route_hash(aor) % shards` (ARCHITECTURE.md §1).
pub(crate) fn owner_of(aor: &[u8], shards: u16) -> ShardId {
    if shards <= 1 {
        // Every AoR is shard 0's: no need to hash it.
        return ShardId(0);
    }
    ShardId((route_hash(aor) % u64::from(shards)) as u16)
}

/// A stable hash of a canonical AoR: FNV-1a 64 with a final avalanche (murmur3 `fmix64`).
///
/// Stable across processes, versions and seeds, because it decides where a binding lives
/// and journal records are re-routed with it after the shard count changes. It is not
/// keyed: an attacker can pile AoRs onto one shard, but not onto one hash bucket (the table
/// uses [`TableHasher`]).
pub(crate) fn route_hash(aor: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in aor {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The seeded hash of the location table and the string interner: a folded 64×64→128
/// multiply per 8 bytes (the construction of `foldhash`), keyed by the core's seed so that
/// colliding keys cannot be precomputed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableHasher {
    k0: u64,
    k1: u64,
}

const PI0: u64 = 0x243f_6a88_85a3_08d3;
const PI1: u64 = 0x1319_8a2e_0370_7344;

#[inline]
fn fold_mul(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

/// The 1–7 bytes of `s` as a `u64` without a copy loop (the reads of `foldhash`: two
/// overlapping halves, or first, middle and last byte). Together with the length mixed in
/// before, different tails give different words.
#[inline]
fn read_small(s: &[u8]) -> u64 {
    let n = s.len();
    if n >= 4 {
        let lo = u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
        let hi = u32::from_le_bytes([s[n - 4], s[n - 3], s[n - 2], s[n - 1]]);
        u64::from(lo) | u64::from(hi) << 32
    } else {
        u64::from(s[0]) | u64::from(s[n / 2]) << 8 | u64::from(s[n - 1]) << 16
    }
}

impl TableHasher {
    pub(crate) fn new(seed: u64) -> TableHasher {
        TableHasher {
            k0: fold_mul(seed ^ PI0, PI1) | 1,
            k1: fold_mul(seed.rotate_left(29) ^ PI1, PI0) | 1,
        }
    }

    /// Hash of the concatenation of `parts` (each prefixed by its length, so part
    /// boundaries count).
    pub(crate) fn hash(&self, parts: &[&[u8]]) -> u64 {
        let mut h = self.k0;
        for part in parts {
            h = fold_mul(h ^ part.len() as u64, self.k1);
            let mut chunks = part.chunks_exact(8);
            for c in &mut chunks {
                let w = u64::from_le_bytes(c.try_into().expect("chunks_exact gives 8 bytes"));
                h = fold_mul(h ^ w, self.k1 ^ PI0);
            }
            let rest = chunks.remainder();
            if !rest.is_empty() {
                h = fold_mul(h ^ read_small(rest), self.k1 ^ PI1);
            }
        }
        fold_mul(h, self.k0).rotate_left(23)
    }
}

/// RFC 3261 §19.1.4: do two contact URIs name the same contact?
///
/// Scheme equal; user and password equal after unescaping, case-sensitively; host
/// case-insensitively; port equal (an absent port is not 5060); the `user`, `ttl`,
/// `method`, `maddr` and `transport` parameters must appear in both or neither and be
/// equal; any other parameter present in both must be equal (case-insensitively), and one
/// present in only one URI is ignored. `?headers` are ignored (a contact does not use them).
pub(crate) fn same_contact(a: &Uri<'_>, b: &Uri<'_>) -> bool {
    if a.scheme() != b.scheme()
        || !a.host().eq_ignore_ascii_case(b.host())
        || a.port() != b.port()
        || !opt_unescaped_eq(a.user(), b.user())
        || !opt_unescaped_eq(a.password(), b.password())
    {
        return false;
    }
    for name in [
        &b"user"[..],
        &b"ttl"[..],
        &b"method"[..],
        &b"maddr"[..],
        &b"transport"[..],
    ] {
        match (a.params().get(name), b.params().get(name)) {
            (None, None) => {}
            (Some(x), Some(y)) if opt_ci_eq(x, y) => {}
            _ => return false,
        }
    }
    a.params()
        .iter()
        .all(|(name, v)| match b.params().get(name) {
            None => true,
            Some(w) => opt_ci_eq(v, w),
        })
}

fn opt_unescaped_eq(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    sipedge_msg::eq_unescaped(a.unwrap_or_default(), b.unwrap_or_default())
}

fn opt_ci_eq(a: Option<&[u8]>, b: Option<&[u8]>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => sipedge_msg::eq_unescaped_ignore_case(x, y),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(uri: &str, cs: bool) -> Result<String, AorError> {
        let u = Uri::parse(uri.as_bytes()).expect("test URI parses");
        let mut out = Vec::new();
        canonical_aor(&u, cs, &mut out)?;
        Ok(String::from_utf8(out).expect("ascii"))
    }

    #[test]
    fn canonical_form_drops_params_port_and_escapes() {
        assert_eq!(
            canon(
                "sip:Alice%41@Example.COM:5060;user=phone;transport=udp",
                false
            ),
            Ok("sip:alicea@example.com".into())
        );
        assert_eq!(
            canon("sip:Alice@example.com", true),
            Ok("sip:Alice@example.com".into())
        );
        assert_eq!(
            canon("sips:bob:secret@[2001:DB8::1]", false),
            Ok("sips:bob@[2001:db8::1]".into())
        );
        assert_eq!(
            canon("sip:example.com", false),
            Ok("sip:example.com".into())
        );
        assert_eq!(canon("tel:+15551234", false), Err(AorError::Scheme));
        let long = format!("sip:{}@example.com", "a".repeat(300));
        assert_eq!(canon(&long, false), Err(AorError::TooLong));
    }

    #[test]
    fn split_gives_domain_and_user() {
        let (d, u) = split_aor(b"sip:alice@example.com");
        assert_eq!(
            (d.scheme, d.host, u),
            (&b"sip"[..], &b"example.com"[..], &b"alice"[..])
        );
        let (d, u) = split_aor(b"sips:example.com");
        assert_eq!(
            (d.scheme, d.host, u),
            (&b"sips"[..], &b"example.com"[..], &b""[..])
        );
    }

    #[test]
    fn routing_is_stable_and_spreads() {
        // Pinned: journals written by one version are re-routed by the next.
        assert_eq!(route_hash(b"sip:alice@example.com"), 0x89f4e91402285b36);
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[owner_of(format!("sip:u{i}@example.com").as_bytes(), 4).0 as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }

    #[test]
    fn table_hash_depends_on_seed_and_boundaries() {
        let a = TableHasher::new(1);
        let b = TableHasher::new(2);
        assert_ne!(a.hash(&[b"alice"]), b.hash(&[b"alice"]));
        assert_ne!(a.hash(&[b"ab", b"c"]), a.hash(&[b"a", b"bc"]));
        assert_eq!(a.hash(&[b"alice"]), a.hash(&[b"alice"]));
    }

    #[test]
    fn contact_comparison_follows_19_1_4() {
        let same = |x: &str, y: &str| {
            same_contact(
                &Uri::parse(x.as_bytes()).expect("uri"),
                &Uri::parse(y.as_bytes()).expect("uri"),
            )
        };
        assert!(same("sip:a@10.0.0.1:5060", "sip:a@10.0.0.1:5060"));
        assert!(same(
            "sip:a@HOST.example;transport=UDP",
            "sip:a@host.example;transport=udp"
        ));
        assert!(same("sip:%61@h", "sip:a@h"));
        assert!(!same("sip:A@h", "sip:a@h"));
        assert!(!same("sip:a@h", "sip:a@h:5060"));
        assert!(!same("sip:a@h;transport=tcp", "sip:a@h"));
        assert!(same("sip:a@h;line=1", "sip:a@h"));
        assert!(!same("sip:a@h;line=1", "sip:a@h;line=2"));
        assert!(!same("sip:a@h", "sips:a@h"));
    }
}
