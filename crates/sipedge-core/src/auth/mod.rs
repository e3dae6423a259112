//! Authentication: digest (RFC 3261 §22, RFC 7616, RFC 8760), IP/CIDR authentication with
//! CLI selection, per-user source whitelists.
//!
//! | rule | reply when it fails |
//! | --- | --- |
//! | a source in an `[[ip_auth]]` prefix (longest match, IPv4 and IPv6) is that account; no digest is asked or checked for it — IP auth and digest never combine for one request (hosted switches work the same way) | — |
//! | REGISTER from such a source: IP auth only for an AoR the entry's `register` list names (a trunk's own registration), or for a query (no Contact: it changes nothing); any other AoR is challenged like any source — registering a user needs that user's credentials | 401 as below |
//! | a prefix shared by several `cli_auth` accounts: the caller number (P-Asserted-Identity user, else From user) picks the first account whose `cli` pattern matches | 403 "CLI Not Authorized" |
//! | `register = "digest"`: a REGISTER without credentials for our realm (RFC 3261 §22.4, §10.3 step 3) | 401, one WWW-Authenticate per algorithm the claimed user (To) is offered ([`Offer`]: its own `algorithms`, its account's, else `[auth] algorithms` — default MD5 alone — within the HA1s it has) |
//! | `invite = "digest"`: any other request from a user — From in one of our domains (RFC 3261 §22.3); a From elsewhere is not challenged and comes out as [`AuthMethod::Foreign`] for the relay to restrict | 407 with Proxy-Authenticate, likewise |
//! | malformed credentials (header syntax, missing `username`/`nonce`/`uri`/`response`, `qop=auth` without `nc`/`cnonce`, bad `nc`) | 400 naming it |
//! | the `uri` directive does not name the Request-URI (RFC 7616 §3.4.6, RFC 2617 §3.2.2.5; byte-equal, or equal by RFC 3261 §19.1.4 for `sip:`/`sips:`) — except, for REGISTER, a `sip:`/`sips:` URI without user part naming this edge itself (one of our domains or addresses, on one of our ports or none: what SIPp sends without `-auth_uri`) | 400 "Digest URI Mismatch" |
//! | REGISTER: digest username ≠ AoR user (`username_must_match`, §10.3 step 4) | 403 "Authentication Username Mismatch" |
//! | unknown user, wrong password, unknown algorithm or qop | 401/407 with a fresh nonce — the same reply and the same work for an unknown user as for a wrong password (a decoy HA1 — another user's record, read the same way — is hashed) |
//! | right password from outside the user's `ip_whitelist` | 403 "Source Address Not Allowed" |
//! | a nonce that is not ours (bad form or MAC, another edge instance) — checked **before** the response, which is then never evaluated | 401/407 with a fresh nonce, never `stale` |
//! | the credentials' algorithm (absent: MD5) not offered by the challenge that issued the nonce (the offered set is bound into it), or not in the user's [`Offer`] (not configured for it, or no HA1 for it) | 401/407 with a fresh nonce, like a wrong password |
//! | digest username lookup: exact with `[registrar] case_sensitive = true`, else ignoring ASCII case like the AoRs ([`AuthSettings::case_sensitive`]) | — |
//! | right password, an authentic nonce that is expired (`nonce_ttl_secs`), from another shard, or forgotten | 401/407 with `stale=true` (RFC 7616 §3.3) and a fresh nonce |
//! | right password, (nonce, nc) already used — a replay (RFC 7616 §3.4), or a nonce without qop used twice | 401/407 `stale=true` with a fresh nonce — also for a REGISTER that repeats the request which made the binding: only the first use gets the 200 OK (a replay from a forged source must not reflect the contact list) |
//!
//! **Nonces** (`auth_db::nonce`): stateless, HMAC-SHA256 over instance id, issuing shard, counter
//! and issue time. MAC and age are checked wherever the request lands; the nonce-count is
//! tracked by the issuer only. **Where the issuer is**: a REGISTER is challenged and
//! verified on the AoR's owner shard (the registrar hands every REGISTER to the owner
//! anyway), so the nonce's issuer is the shard that checks its count and no extra round
//! trip exists. Other requests are challenged on the shard they arrive on; their retry comes
//! from the same 4-tuple and lands there again. A nonce that reaches a shard other than its
//! issuer gets a `stale=true` challenge with a local nonce: one more round trip in a rare
//! case instead of a mesh message on every request.
//!
//! **The relay's hook.** [`crate::Core::authenticate_request`] gives an [`AuthOutcome`] for a
//! non-REGISTER request; on [`AuthOutcome::Rejected`] call
//! [`crate::Core::send_auth_rejection`], which builds the 407/403/400. REGISTER is
//! authenticated inside the registrar.
//!
//! Passwords become HA1 in the shell at load and are never kept; HA1s and the secret are
//! never logged ([`UserSpec`] and [`AuthConfig`] hide them in `Debug`).

mod check;

/// A CIDR prefix (re-exported from `ipnet`, for the shell).
pub use ipnet::IpNet;

pub use self::check::{AuthMethod, AuthOk, AuthOutcome, AuthReject, AuthStats};
pub(crate) use self::check::{AuthState, Authenticator};
pub use crate::auth_db::db::{
    split_register_aor, Account, AccountSpec, AuthDb, AuthDbError, AuthHandle, AuthMode,
    AuthSettings, AuthSpec, IpAuthSpec, NatMode, NatPing, User, UserSpec, MAX_USERNAME_BYTES,
};
pub use crate::auth_db::digest::{
    expected_response, ha1, ha2, response_matches, response_with_ha2, Algorithm, DigestInput, Hex,
};
pub use crate::auth_db::nonce::{
    algorithm_bit, nonce_age_ms, parse_nc, NcVerdict, NcWindow, NonceInfo, NonceKey,
    ALL_ALGORITHMS, DEFAULT_NC_WINDOW, DEFAULT_NONCE_TTL_SECS, NONCE_LEN,
};
pub use crate::auth_db::offer::{Offer, DEFAULT_ALGORITHMS};

pub use crate::config::AuthConfig;

/// A hex HA1 from config text (`ha1` = 32, `ha1_sha256` = 64 hex digits), lowercased.
pub fn parse_hex_ha1<const N: usize>(text: &str) -> Option<[u8; N]> {
    let t = text.trim().as_bytes();
    if t.len() != N || !t.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; N];
    for (o, c) in out.iter_mut().zip(t) {
        *o = c.to_ascii_lowercase();
    }
    Some(out)
}
