//! SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) on the block function of `sha2`
//! (`compress256`, which uses SHA-NI where the CPU has it), for the two places where the
//! generic wrappers cost more than the hashing: a state can start after precomputed blocks
//! — the HMAC key's ipad/opad block (RFC 2104 §2: the same for every nonce) and a user's
//! SHA-256 HA1, which is exactly one block (64 hex digits) at the head of every digest
//! `response` (RFC 7616 §3.4.1) — and nothing is copied but the 32-byte state.

use sha2::digest::generic_array::GenericArray;

/// FIPS 180-4 §5.3.3: the initial hash value.
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

fn compress(state: &mut [u32; 8], block: &[u8]) {
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

/// The state after hashing exactly one 64-byte block.
pub(crate) fn midstate(block: &[u8; 64]) -> [u32; 8] {
    let mut s = IV;
    compress(&mut s, block);
    s
}

/// A SHA-256 computation in progress.
pub(crate) struct Sha256Stream {
    state: [u32; 8],
    buf: [u8; 64],
    len: usize,
    /// Bytes hashed so far, the precomputed blocks included.
    total: u64,
}

impl Sha256Stream {
    /// A fresh hash.
    pub(crate) fn new() -> Sha256Stream {
        Sha256Stream {
            state: IV,
            buf: [0; 64],
            len: 0,
            total: 0,
        }
    }

    /// Continues after one precomputed block ([`midstate`]).
    pub(crate) fn after_block(mid: &[u32; 8]) -> Sha256Stream {
        Sha256Stream {
            state: *mid,
            buf: [0; 64],
            len: 0,
            total: 64,
        }
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.len > 0 {
            let take = (64 - self.len).min(data.len());
            self.buf[self.len..self.len + take].copy_from_slice(&data[..take]);
            self.len += take;
            data = &data[take..];
            if self.len < 64 {
                return;
            }
            compress(&mut self.state, &self.buf);
            self.len = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            compress(&mut self.state, block);
        }
        let rest = blocks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.len = rest.len();
    }

    /// FIPS 180-4 §5.1.1 padding, then the digest.
    pub(crate) fn finish(mut self) -> [u8; 32] {
        let bits = self.total * 8;
        self.buf[self.len] = 0x80;
        self.buf[self.len + 1..].fill(0);
        if self.len >= 56 {
            compress(&mut self.state, &self.buf);
            self.buf = [0; 64];
        }
        self.buf[56..].copy_from_slice(&bits.to_be_bytes());
        compress(&mut self.state, &self.buf);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}

/// RFC 2104 HMAC-SHA256 with the key's two padded blocks hashed once.
#[derive(Clone)]
pub(crate) struct HmacSha256 {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl HmacSha256 {
    /// RFC 2104 §2: a key longer than the block is hashed first; then it is padded to 64
    /// bytes and XORed with ipad (0x36) and opad (0x5c).
    pub(crate) fn new(key: &[u8]) -> HmacSha256 {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            let mut h = Sha256Stream::new();
            h.update(key);
            k[..32].copy_from_slice(&h.finish());
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let pad = |x: u8| {
            let mut b = k;
            b.iter_mut().for_each(|v| *v ^= x);
            midstate(&b)
        };
        HmacSha256 {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    /// `H(K ⊕ opad ‖ H(K ⊕ ipad ‖ msg))`.
    pub(crate) fn mac(&self, msg: &[u8]) -> [u8; 32] {
        let mut i = Sha256Stream::after_block(&self.inner);
        i.update(msg);
        let inner = i.finish();
        let mut o = Sha256Stream::after_block(&self.outer);
        o.update(&inner);
        o.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn same_as_sha2_for_every_length_and_split() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..data.len() {
            let want = Sha256::digest(&data[..n]);
            for split in [0, 1, n / 3, n / 2, n.saturating_sub(1), n] {
                let split = split.min(n);
                let mut s = Sha256Stream::new();
                s.update(&data[..split]);
                s.update(&data[split..n]);
                assert_eq!(s.finish()[..], want[..], "n={n} split={split}");
            }
            if n >= 64 {
                let mut block = [0u8; 64];
                block.copy_from_slice(&data[..64]);
                let mut s = Sha256Stream::after_block(&midstate(&block));
                s.update(&data[64..n]);
                assert_eq!(s.finish()[..], want[..], "after a block, n={n}");
            }
        }
    }

    #[test]
    fn same_as_the_hmac_crate() {
        use hmac::{Hmac, Mac};
        let data: Vec<u8> = (0..200u32).map(|i| (i * 13 + 1) as u8).collect();
        for klen in [0, 1, 16, 32, 63, 64, 65, 100, 200] {
            for mlen in [0, 16, 55, 56, 64, 100] {
                let (key, msg) = (&data[..klen], &data[..mlen]);
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any length");
                m.update(msg);
                let want = m.finalize().into_bytes();
                assert_eq!(HmacSha256::new(key).mac(msg)[..], want[..], "{klen}/{mlen}");
            }
        }
    }

    /// RFC 4231 §4.2, §4.3 and §4.7 (a key longer than the block).
    #[test]
    fn rfc4231_vectors() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, msg, want) in cases {
            assert_eq!(hex(&HmacSha256::new(key).mac(msg)), want);
        }
    }
}
