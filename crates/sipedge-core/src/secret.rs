//! The node secret and the MAC that every token we send out and take back is checked with
//! (issue 13): the dialog token of our Record-Route (`proxy::token`), the branch of our
//! Vias (`txn::branch`), the branch of our NAT pings (`nat::ping`), the branch of the
//! 2xx ACKs we forward statelessly and the To tags of the responses the relay makes.
//!
//! **Key.** The node secret is 32 bytes the shell gives (`[server] secret`, else drawn at
//! start and kept in the state directory when persistence is on), the same on every shard
//! so a token made on one shard verifies on any other. It is *not* the seed of any table
//! hasher: the seeds' outputs go on the wire in places (To tags of stateless replies), and
//! a token must never be derivable from them. The MAC key is derived from it once:
//! `HMAC-SHA256(secret, "sipedge mac v1")[..16]` (RFC 2104), so the secret itself never
//! keys a fast PRF directly and other uses can derive their own keys.
//!
//! **MAC.** SipHash-2-4 (Aumasson and Bernstein, 2012) with that 128-bit key, 64-bit output
//! — a PRF built for short inputs: a 14-byte ping token costs two compression rounds and
//! the finalization (~130 instructions), a Record-Route token over a Call-ID, two tags and
//! two addresses (~100 bytes) about 500; HMAC-SHA256 with precomputed midstates costs at
//! least two SHA-256 blocks (~2 × 1,800 instructions without SHA-NI, ~2 × 200 with it).
//! 64 bits against an online forger who gets one try per datagram is enough (RFC 5626
//! §5.2 flow tokens use a truncated HMAC-SHA1 of 80 bits for the same purpose; a 2⁻⁶⁴
//! chance per forged packet means ~10¹¹ years at a million packets a second). Every input
//! starts with a one-byte purpose label and every variable-length part is length-prefixed,
//! so no two purposes or splits collide.

use sha2::{Digest, Sha256};

/// Length of the node secret, bytes.
pub const NODE_SECRET_LEN: usize = 32;

/// The node secret: keys every MAC this edge puts in a token (never a table seed).
#[derive(Clone, PartialEq, Eq)]
pub struct NodeSecret(pub [u8; NODE_SECRET_LEN]);

impl std::fmt::Debug for NodeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSecret(..)")
    }
}

impl Default for NodeSecret {
    /// All zeros: for tests only — the shell always sets a real one.
    fn default() -> Self {
        NodeSecret([0; NODE_SECRET_LEN])
    }
}

/// Why a configured secret was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not exactly 64 hexadecimal digits.
    #[error("must be exactly 64 hexadecimal digits (32 bytes)")]
    Malformed,
}

impl NodeSecret {
    /// Parses 64 hex digits (upper or lower case; surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<NodeSecret, SecretError> {
        let s = s.trim().as_bytes();
        if s.len() != 2 * NODE_SECRET_LEN {
            return Err(SecretError::Malformed);
        }
        let mut out = [0u8; NODE_SECRET_LEN];
        for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            let d = |c: u8| (c as char).to_digit(16).ok_or(SecretError::Malformed);
            *o = (d(pair[0])? << 4 | d(pair[1])?) as u8;
        }
        Ok(NodeSecret(out))
    }

    /// The secret as 64 lower-case hex digits (for the state file).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Purpose labels: the first byte of every MAC input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Purpose {
    /// Record-Route dialog token (`proxy::token`).
    RecordRoute = 1,
    /// Via branch of a client transaction (`txn::branch`).
    Branch = 2,
    /// NAT keepalive branch (`nat::ping`).
    Ping = 3,
    /// Via branch of a 2xx ACK forwarded statelessly.
    AckBranch = 4,
    /// To tag of a response the relay makes itself.
    ToTag = 5,
    /// Call-ID, From tag and index key of a request the edge originates
    /// (`proxy::originate`).
    Originate = 6,
    /// Dialog key of a tracked call (`dialog`, issue 16).
    Dialog = 7,
    /// Via branch of an in-dialog OPTIONS or BYE the edge sends itself (`dialog::keepalive`).
    DialogPing = 8,
}

/// SipHash-2-4 keyed from the node secret.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Mac {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mac(..)")
    }
}

impl Mac {
    pub(crate) fn new(secret: &NodeSecret) -> Mac {
        // RFC 2104 §2 with a 32-byte key (shorter than the block: zero-padded).
        let pad = |x: u8| {
            let mut b = [x; 64];
            b.iter_mut().zip(secret.0).for_each(|(o, k)| *o ^= k);
            b
        };
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(b"sipedge mac v1")
            .finalize();
        let k = Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize();
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&k[i..i + 8]);
            u64::from_le_bytes(b)
        };
        Mac {
            k0: word(0),
            k1: word(8),
        }
    }

    /// The MAC of `parts` for `purpose`: the label byte, then each part after its 16-bit
    /// length. Assembled on the stack and hashed in one pass when it fits (every token
    /// we make), else streamed — the same bytes either way.
    pub(crate) fn digest(&self, purpose: Purpose, parts: &[&[u8]]) -> u64 {
        let mut buf = [0u8; 192];
        let total = parts
            .iter()
            .fold(1usize, |n, p| n.saturating_add(2 + p.len()));
        if total <= buf.len() {
            buf[0] = purpose as u8;
            let mut n = 1;
            for p in parts {
                buf[n..n + 2].copy_from_slice(&part_len(p).to_le_bytes());
                buf[n + 2..n + 2 + p.len()].copy_from_slice(p);
                n += 2 + p.len();
            }
            let mut s = MacStream::new(self.k0, self.k1);
            s.write(&buf[..n]);
            return s.finish();
        }
        let mut s = MacStream::new(self.k0, self.k1);
        s.write(&[purpose as u8]);
        for p in parts {
            s.write(&part_len(p).to_le_bytes());
            s.write(p);
        }
        s.finish()
    }
}

/// The length prefix of a part: 16 bits (no part of a SIP datagram is longer; a longer
/// one would be cut at 65,535, never silently merged with the next).
fn part_len(p: &[u8]) -> u16 {
    u16::try_from(p.len()).unwrap_or(u16::MAX)
}

/// SipHash-2-4 in progress (streaming over the parts of one input).
pub(crate) struct MacStream {
    v: [u64; 4],
    tail: [u8; 8],
    ntail: usize,
    len: usize,
}

#[inline(always)]
fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

impl MacStream {
    fn new(k0: u64, k1: u64) -> MacStream {
        MacStream {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: [0; 8],
            ntail: 0,
            len: 0,
        }
    }

    #[inline]
    fn block(&mut self, m: u64) {
        self.v[3] ^= m;
        sip_round(&mut self.v);
        sip_round(&mut self.v);
        self.v[0] ^= m;
    }

    #[inline]
    fn write(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len());
        if self.ntail > 0 {
            let take = (8 - self.ntail).min(data.len());
            self.tail[self.ntail..self.ntail + take].copy_from_slice(&data[..take]);
            self.ntail += take;
            data = &data[take..];
            if self.ntail < 8 {
                return;
            }
            let m = u64::from_le_bytes(self.tail);
            self.block(m);
            self.ntail = 0;
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.block(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.ntail = rest.len();
    }

    /// The 64-bit tag.
    fn finish(&mut self) -> u64 {
        self.tail[self.ntail..].fill(0);
        let m = u64::from_le_bytes(self.tail) | ((self.len as u64 & 0xff) << 56);
        self.block(m);
        self.v[2] ^= 0xff;
        for _ in 0..4 {
            sip_round(&mut self.v);
        }
        self.v[0] ^ self.v[1] ^ self.v[2] ^ self.v[3]
    }
}

/// Constant-time comparison of two tags (no early exit on the first differing bit).
pub(crate) fn tags_equal(a: u64, b: u64) -> bool {
    std::hint::black_box(a ^ b) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vectors of the SipHash paper (Appendix A; key 00..0f, message
    /// 00..(n−1)), for the first lengths, every split.
    #[test]
    fn siphash24_reference_vectors() {
        let want: [u64; 9] = [
            0x726f_db47_dd0e_0e31,
            0x74f8_39c5_93dc_67fd,
            0x0d6c_8009_d9a9_4f5a,
            0x8567_6696_d7fb_7e2d,
            0xcf27_94e0_2771_87b7,
            0x1876_5564_cd99_a68d,
            0xcbc9_466e_58fe_e3ce,
            0xab02_00f5_8b01_d137,
            0x93f5_f579_9a93_2462,
        ];
        let key: Vec<u8> = (0u8..16).collect();
        let k0 = u64::from_le_bytes(key[..8].try_into().unwrap_or_default());
        let k1 = u64::from_le_bytes(key[8..].try_into().unwrap_or_default());
        let msg: Vec<u8> = (0u8..64).collect();
        for (n, &w) in want.iter().enumerate() {
            for split in 0..=n {
                let mut s = MacStream::new(k0, k1);
                s.write(&msg[..split]);
                s.write(&msg[split..n]);
                assert_eq!(s.finish(), w, "n={n} split={split}");
            }
        }
        // The paper's worked example: 15 bytes.
        let mut s = MacStream::new(k0, k1);
        s.write(&msg[..15]);
        assert_eq!(s.finish(), 0xa129_ca61_49be_45e5);
    }

    #[test]
    fn purposes_parts_and_keys_separate() {
        let m = Mac::new(&NodeSecret([7; 32]));
        let t = |p, a: &[u8], b: &[u8]| m.digest(p, &[a, b]);
        assert_ne!(
            t(Purpose::Branch, b"ab", b"c"),
            t(Purpose::Branch, b"a", b"bc")
        );
        assert_ne!(t(Purpose::Branch, b"a", b"b"), t(Purpose::Ping, b"a", b"b"));
        let other = Mac::new(&NodeSecret([8; 32]));
        assert_ne!(
            m.digest(Purpose::Ping, &[b"x"]),
            other.digest(Purpose::Ping, &[b"x"])
        );
        // The one-pass and the streamed form agree.
        let long = vec![b'x'; 300];
        let mut s = MacStream::new(m.k0, m.k1);
        for chunk in [&[Purpose::ToTag as u8][..], &[44, 1], &long, &[1, 0], b"y"] {
            s.write(chunk);
        }
        assert_eq!(m.digest(Purpose::ToTag, &[&long, b"y"]), s.finish());
        let mut s = MacStream::new(m.k0, m.k1);
        for chunk in [&[Purpose::ToTag as u8][..], &[3, 0], b"abc", &[1, 0], b"y"] {
            s.write(chunk);
        }
        assert_eq!(m.digest(Purpose::ToTag, &[b"abc", b"y"]), s.finish());
    }

    /// The key derivation is RFC 2104 HMAC-SHA256 (checked against the `hmac` crate).
    #[test]
    fn key_is_hmac_sha256_of_the_label() {
        use hmac::Mac as _;
        let secret = NodeSecret([0x5a; 32]);
        let mut h = hmac::Hmac::<Sha256>::new_from_slice(&secret.0).unwrap_or_else(|_| panic!());
        h.update(b"sipedge mac v1");
        let k = h.finalize().into_bytes();
        let m = Mac::new(&secret);
        assert_eq!(m.k0.to_le_bytes()[..], k[..8]);
        assert_eq!(m.k1.to_le_bytes()[..], k[8..16]);
    }

    #[test]
    fn hex_secret() {
        let s = NodeSecret::from_hex(&"0a".repeat(32)).unwrap_or_default();
        assert_eq!(s.0, [10; 32]);
        assert_eq!(NodeSecret::from_hex(&s.to_hex()), Ok(s));
        assert_eq!(
            NodeSecret::from_hex("abc"),
            Err(SecretError::Malformed),
            "too short"
        );
        assert_eq!(
            NodeSecret::from_hex(&"zz".repeat(32)),
            Err(SecretError::Malformed)
        );
    }
}
