//! The authentication tables and digest mechanics (Kamailio's `auth_db` beside `auth`):
//! accounts, users and IP/CLI entries ([`db::AuthDb`]), digest computation (`digest`,
//! `sha256`), stateless nonces (`nonce`) and what each user is offered (`offer`). A leaf:
//! it names no subsystem, so the configuration ([`crate::config::AuthConfig`]) can hold the
//! tables without a module cycle. The rules that use them are `auth`'s; the public paths
//! are `auth`'s re-exports.

pub(crate) mod db;
pub(crate) mod digest;
pub(crate) mod foreign;
pub(crate) mod nonce;
pub(crate) mod offer;
mod sha256;

/// Writes `bytes` as lowercase hex into `out`; returns the length.
pub(crate) fn digest_hex(bytes: &[u8], out: &mut [u8; 64]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    2 * bytes.len()
}
