//! Which digest algorithms a user is challenged with and checked under ([`Offer`]):
//! RFC 8760 §2.4 lets a server offer several, preferred first; which ones is policy —
//! MD5 alone by default, SHA-256 where `[auth]`, an account or a user asks for it.

use super::db::UserSpec;
use super::digest::Algorithm;

/// Default `[auth] algorithms`: MD5 alone. Stock clients answer only the first challenge
/// (SIPp before 3.7.3, sipsak 0.9.8) or fail as soon as any offered challenge is not MD5
/// (baresip 1.0), and Kamailio, OpenSIPS and Asterisk offer MD5 alone by default. SHA-256
/// (RFC 8760) is offered where it is asked for: globally, per account or per user.
pub const DEFAULT_ALGORITHMS: &[Algorithm] = &[Algorithm::Md5];

/// The digest algorithms one user is challenged with, in challenge order (RFC 8760 §2.4:
/// the preferred first), and the only ones its credentials are checked under.
///
/// Which list: the user's own `algorithms`, else its account's, else `[auth]
/// algorithms` — restricted to the algorithms the user has an HA1 for; when that leaves
/// nothing (a user with only a SHA-256 HA1 under the MD5 default), the algorithms it has
/// an HA1 for (so a SHA-256-only user is offered SHA-256 alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offer {
    algs: [Algorithm; 2],
    len: u8,
}

impl Offer {
    /// The algorithms of `list` in order, each once.
    pub fn new(list: &[Algorithm]) -> Offer {
        let mut o = Offer {
            algs: [Algorithm::Md5; 2],
            len: 0,
        };
        for &a in list {
            if !o.contains(a) && usize::from(o.len) < o.algs.len() {
                o.algs[usize::from(o.len)] = a;
                o.len += 1;
            }
        }
        o
    }

    /// In challenge order.
    pub fn as_slice(&self) -> &[Algorithm] {
        &self.algs[..usize::from(self.len)]
    }

    /// True when `alg` is offered.
    pub fn contains(&self, alg: Algorithm) -> bool {
        self.as_slice().contains(&alg)
    }

    /// The [`super::nonce::algorithm_bit`]s of the offered algorithms (bound into the nonce).
    pub fn mask(&self) -> u8 {
        self.as_slice()
            .iter()
            .fold(0, |m, &a| m | super::nonce::algorithm_bit(a))
    }

    /// True when nothing is offered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// [`Offer`]'s rule for one user: `wanted` restricted to the algorithms `u` has an HA1
/// for, else those (a SHA-256-only user gets SHA-256); a user with no HA1 at all (it can
/// never authenticate) is challenged like an unknown one.
pub(crate) fn user_offer(u: &UserSpec, wanted: &[Algorithm], default: Offer) -> Offer {
    let has = |a: &Algorithm| match a {
        Algorithm::Md5 => u.ha1_md5.is_some(),
        Algorithm::Sha256 => u.ha1_sha256.is_some(),
    };
    let usable: Vec<Algorithm> = wanted.iter().copied().filter(has).collect();
    if !usable.is_empty() {
        return Offer::new(&usable);
    }
    let own: Vec<Algorithm> = [Algorithm::Sha256, Algorithm::Md5]
        .into_iter()
        .filter(has)
        .collect();
    if own.is_empty() {
        default
    } else {
        Offer::new(&own)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth_db::db::{AccountSpec, AuthDb, AuthSpec};

    fn db_spec() -> AuthSpec {
        AuthSpec {
            accounts: ["a", "b"]
                .iter()
                .map(|n| AccountSpec {
                    name: (*n).into(),
                    ..AccountSpec::default()
                })
                .collect(),
            ..AuthSpec::default()
        }
    }

    #[test]
    fn offers_follow_user_then_account_then_auth_and_the_ha1s() {
        let md5 = Some([b'a'; 32]);
        let sha = Some([b'b'; 64]);
        let mut s = db_spec();
        s.accounts[1].algorithms = vec![Algorithm::Sha256, Algorithm::Md5];
        s.users = vec![
            // [auth] default: MD5.
            UserSpec {
                username: "plain".into(),
                ha1_md5: md5,
                ha1_sha256: sha,
                ..UserSpec::default()
            },
            // Only a SHA-256 HA1: SHA-256 alone.
            UserSpec {
                username: "shaonly".into(),
                ha1_sha256: sha,
                ..UserSpec::default()
            },
            // Its account asks for both.
            UserSpec {
                username: "acct".into(),
                account: Some("b".into()),
                ha1_md5: md5,
                ha1_sha256: sha,
                ..UserSpec::default()
            },
            // Its own list wins over the account's.
            UserSpec {
                username: "own".into(),
                account: Some("b".into()),
                ha1_md5: md5,
                ha1_sha256: sha,
                algorithms: vec![Algorithm::Md5],
                ..UserSpec::default()
            },
        ];
        let db = AuthDb::build(&s).expect("builds");
        let offer = |n: &[u8]| db.offer_for(b"", n).as_slice().to_vec();
        assert_eq!(offer(b"plain"), [Algorithm::Md5]);
        assert_eq!(offer(b"shaonly"), [Algorithm::Sha256]);
        assert_eq!(offer(b"acct"), [Algorithm::Sha256, Algorithm::Md5]);
        assert_eq!(offer(b"own"), [Algorithm::Md5]);
        assert_eq!(offer(b"nobody"), [Algorithm::Md5]);
        assert!(db.per_user_offers());
        s.users.truncate(1);
        assert!(!AuthDb::build(&s).expect("builds").per_user_offers());
    }
}
