//! Stateless nonces (RFC 7616 §3.3 leaves the construction to the server; §5.4–§5.5 on
//! replay) and the issuing shard's nonce-count window (§3.4: `nc` must grow).
//!
//! A nonce is 64 lowercase hex digits: 16 bytes of payload — instance id (4, from the
//! shell's randomness at start), issuing shard (2), counter (4), the algorithms the
//! challenge offered (1, a bit per [`Algorithm::index`]: a response is only checked under
//! one of them, so a client cannot answer a SHA-256 challenge with an MD5 response), issue
//! time in the core's monotonic milliseconds (5: 34 years) — and the first 16 bytes of
//! HMAC-SHA256 over the payload with the nonce secret. Any shard checks MAC and age without state. Only the issuing shard
//! remembers which nonce-counts were used: a ring indexed by the counter holds, per recent
//! nonce, its counter and the highest `nc` seen. A nonce whose slot was reused by a newer
//! one (more than `window` nonces issued since) reads as stale; a client just answers the
//! new challenge.
//!
//! **Across edges** (issue 20 item 6; [`NonceKey::clustered`]): with `[cluster]` on and
//! one `[auth] nonce_secret` on every edge, the 4 bytes of instance id become the issuing
//! node's id (2, a hash of `[cluster] node`) and its start epoch (2, random per start),
//! and the issue time is wall-clock Unix ms (every edge reads the same clock, NTP
//! assumed), so any edge verifies another's nonce: MAC, age, and the algorithms bound in.
//! Replay protection stays sound: the issuing edge checks its own nonces exactly as
//! before (its node id and epoch must match — a restarted edge refuses its old nonces,
//! and its counters start at a random point, so a reused epoch does not reuse them); an
//! edge receiving another edge's nonce tracks its `nc` itself, in [`ForeignNc`], on one
//! shard (the nonce's issuing-shard number modulo its own shard count: a REGISTER is
//! checked on its AoR's owner shard, the same number on edges with the same shard count;
//! on any other shard the nonce is `stale`). `nc` is **not** shared between edges, so a
//! captured (nonce, nc) can be replayed at most once on each other edge within the nonce
//! lifetime (`nonce_ttl_secs`, 30 s by default), and never on the issuer or twice on one
//! edge. Kamailio is in the same place: its `auth` module's `nonce_count` (the nc array)
//! and `one_time_nonce` (the nonce-id bitmap) live in each instance's shared memory and
//! are not replicated between nodes — with a shared `secret`, a nonce from one node
//! verifies on another, whose arrays have never seen it.

use super::digest::Algorithm;
use super::sha256::HmacSha256;

/// Every algorithm: the offered-algorithm mask of [`NonceKey::issue`].
pub const ALL_ALGORITHMS: u8 = 0b11;

/// The offered-algorithm bit of `alg`.
pub fn algorithm_bit(alg: Algorithm) -> u8 {
    1 << alg.index()
}

/// Length of a nonce, characters.
pub const NONCE_LEN: usize = 64;
/// Default `[auth] nonce_ttl_secs`.
pub const DEFAULT_NONCE_TTL_SECS: u32 = 30;
/// Default size of a shard's nonce-count window (nonces remembered), a power of two:
/// 8 MiB per shard, touched lazily (a 1M window at 100k challenges/s covers 10 s).
pub const DEFAULT_NC_WINDOW: usize = 1 << 20;

/// What a verified nonce says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceInfo {
    /// The edge instance that issued it.
    pub instance: u32,
    /// The issuing shard.
    pub shard: u16,
    /// The issuer's counter.
    pub counter: u32,
    /// When it was issued (issuer's monotonic ms, 40 bits).
    pub issued_ms: u64,
    /// The algorithms its challenge offered ([`algorithm_bit`]s).
    pub algorithms: u8,
    /// Issued by another edge of the cluster (its `nc` is tracked in [`ForeignNc`]).
    pub foreign: bool,
}

/// The nonce secret and this edge's instance id.
#[derive(Clone)]
pub struct NonceKey {
    mac: HmacSha256,
    instance: u32,
    /// Cluster mode: `instance` is `node << 16 | epoch`, and nonces of other nodes verify.
    clustered: bool,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("NonceKey")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// The value of each lowercase hex digit (the only digits a nonce of ours has); 0xff for
/// any other byte.
const HEX_VAL: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 16 {
        t[b"0123456789abcdef"[i] as usize] = i as u8;
        i += 1;
    }
    t
};

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl NonceKey {
    /// A key from `secret` (any length; HMAC accepts every length) and the instance id.
    pub fn new(secret: &[u8], instance: u32) -> NonceKey {
        NonceKey {
            mac: HmacSha256::new(secret),
            instance,
            clustered: false,
        }
    }

    /// A key shared by the edges of a cluster (module docs, "Across edges"): this edge's
    /// nonces carry `node` and `epoch` (random per start); other nodes' nonces under the
    /// same secret verify as [`NonceInfo::foreign`].
    pub fn clustered(secret: &[u8], node: u16, epoch: u16) -> NonceKey {
        NonceKey {
            mac: HmacSha256::new(secret),
            instance: u32::from(node) << 16 | u32::from(epoch),
            clustered: true,
        }
    }

    fn tag(&self, payload: &[u8; 16]) -> [u8; 16] {
        let full = self.mac.mac(payload);
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A nonce for `shard`, `counter`, issued at `now_ms`, good for every algorithm.
    pub fn issue(&self, shard: u16, counter: u32, now_ms: u64) -> [u8; NONCE_LEN] {
        self.issue_for(shard, counter, now_ms, ALL_ALGORITHMS)
    }

    /// A nonce for `shard`, `counter`, issued at `now_ms`, for a challenge offering the
    /// `algorithms` ([`algorithm_bit`]s).
    pub fn issue_for(
        &self,
        shard: u16,
        counter: u32,
        now_ms: u64,
        algorithms: u8,
    ) -> [u8; NONCE_LEN] {
        let mut payload = [0u8; 16];
        payload[..4].copy_from_slice(&self.instance.to_be_bytes());
        payload[4..6].copy_from_slice(&shard.to_be_bytes());
        payload[6..10].copy_from_slice(&counter.to_be_bytes());
        payload[10] = algorithms;
        payload[11..16].copy_from_slice(&now_ms.to_be_bytes()[3..]);
        let tag = self.tag(&payload);
        let mut out = [0u8; NONCE_LEN];
        let mut hex = [0u8; 64];
        let n = super::digest_hex(&payload, &mut hex);
        out[..n].copy_from_slice(&hex[..n]);
        super::digest_hex(&tag, &mut hex);
        out[n..].copy_from_slice(&hex[..32]);
        out
    }

    /// Checks a nonce's form and MAC. `None`: not one of ours (malformed, another secret, or
    /// another instance of the edge with the same secret — a restarted edge's nonces are
    /// refused, since its nonce-count window is gone).
    pub fn verify(&self, nonce: &[u8]) -> Option<NonceInfo> {
        if nonce.len() != NONCE_LEN {
            return None;
        }
        let mut raw = [0u8; 32];
        let mut bad = 0u8;
        for (r, pair) in raw.iter_mut().zip(nonce.chunks_exact(2)) {
            let (h, l) = (HEX_VAL[usize::from(pair[0])], HEX_VAL[usize::from(pair[1])]);
            bad |= h | l;
            *r = h << 4 | l;
        }
        if bad > 0xf {
            return None;
        }
        let mut payload = [0u8; 16];
        payload.copy_from_slice(&raw[..16]);
        let tag = self.tag(&payload);
        // Constant-time enough: the MAC is compared without an early exit.
        let diff = tag
            .iter()
            .zip(&raw[16..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return None;
        }
        let instance = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
        // Another node's nonce (cluster): any epoch; ours: this very start only.
        let foreign = self.clustered && instance >> 16 != self.instance >> 16;
        if instance != self.instance && !foreign {
            return None;
        }
        let mut t = [0u8; 8];
        t[3..].copy_from_slice(&payload[11..16]);
        Some(NonceInfo {
            instance,
            shard: u16::from_be_bytes([payload[4], payload[5]]),
            counter: u32::from_be_bytes([payload[6], payload[7], payload[8], payload[9]]),
            issued_ms: u64::from_be_bytes(t),
            algorithms: payload[10],
            foreign,
        })
    }
}

/// Milliseconds from a nonce's `issued_ms` to `now_ms`, modulo the 40 bits a nonce keeps
/// (a time from the future reads as very old).
pub fn nonce_age_ms(issued_ms: u64, now_ms: u64) -> u64 {
    now_ms.wrapping_sub(issued_ms) & ((1 << 40) - 1)
}

/// The issuing shard's memory of nonce-counts (RFC 7616 §3.4: the server must check that
/// `nc` grows to detect replays).
#[derive(Debug)]
pub struct NcWindow {
    /// Per slot: `counter << 32 | highest nc seen` (0 = never issued).
    slots: Vec<u64>,
    next: u32,
}

/// What the window says about a (nonce, nc) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NcVerdict {
    /// A new, higher nonce-count: accepted and remembered.
    Fresh,
    /// This nonce-count (or a higher one) was already used: a replay.
    Replayed,
    /// The nonce is no longer remembered (more than `window` nonces issued since).
    Forgotten,
}

impl NcWindow {
    /// A window remembering `size` nonces (rounded up to a power of two, at least 1024).
    /// The memory (8 bytes a nonce) is zeroed lazily by the OS.
    pub fn new(size: usize) -> NcWindow {
        NcWindow::starting_at(size, 1)
    }

    /// [`NcWindow::new`] whose first counter is `first` (never 0): a clustered edge starts
    /// at a random point, so a restart that draws its old epoch does not reuse counters.
    pub fn starting_at(size: usize, first: u32) -> NcWindow {
        let size = size.max(1024).next_power_of_two();
        NcWindow {
            slots: vec![0; size],
            next: first.max(1),
        }
    }

    /// The counter for a new nonce, with its slot reserved.
    pub fn issue(&mut self) -> u32 {
        let c = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        let mask = self.slots.len() - 1;
        self.slots[c as usize & mask] = u64::from(c) << 32;
        c
    }

    /// Records nonce-count `nc` for the nonce with `counter`.
    pub fn check(&mut self, counter: u32, nc: u32) -> NcVerdict {
        let mask = self.slots.len() - 1;
        let slot = &mut self.slots[counter as usize & mask];
        if counter == 0 || (*slot >> 32) as u32 != counter {
            return NcVerdict::Forgotten;
        }
        if nc <= *slot as u32 {
            return NcVerdict::Replayed;
        }
        *slot = u64::from(counter) << 32 | u64::from(nc);
        NcVerdict::Fresh
    }
}

/// `nc`: exactly 8 hex digits (RFC 7616 §3.4), case-insensitive.
pub fn parse_nc(nc: &[u8]) -> Option<u32> {
    if nc.len() != 8 {
        return None;
    }
    let mut v = 0u32;
    for &c in nc {
        v = v << 4 | u32::from(hex_val(c.to_ascii_lowercase())?);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_round_trip_and_refuse_forgeries() {
        let k = NonceKey::new(b"secret", 7);
        let n = k.issue(3, 42, 123_456_789);
        let info = k.verify(&n).expect("ours");
        assert_eq!(
            info,
            NonceInfo {
                instance: 7,
                shard: 3,
                counter: 42,
                issued_ms: 123_456_789,
                algorithms: ALL_ALGORITHMS,
                foreign: false,
            }
        );
        let md5 = k.issue_for(3, 43, 5, algorithm_bit(Algorithm::Md5));
        assert_eq!(k.verify(&md5).map(|i| i.algorithms), Some(1));
        let mut bad = n;
        bad[10] = if bad[10] == b'0' { b'1' } else { b'0' };
        assert_eq!(k.verify(&bad), None, "payload changed");
        let mut bad = n;
        bad[63] = if bad[63] == b'0' { b'1' } else { b'0' };
        assert_eq!(k.verify(&bad), None, "tag changed");
        assert_eq!(k.verify(&n[..63]), None);
        assert_eq!(k.verify(&n.to_ascii_uppercase()), None);
        // Another secret (a restarted edge) or another instance with the same secret.
        assert_eq!(NonceKey::new(b"other", 7).verify(&n), None);
        assert_eq!(NonceKey::new(b"secret", 8).verify(&n), None);
    }

    #[test]
    fn clustered_keys_accept_other_nodes_and_only_their_own_epoch() {
        let a = NonceKey::clustered(b"shared", 0xA, 1);
        let b = NonceKey::clustered(b"shared", 0xB, 2);
        let n = a.issue(3, 42, 1_000);
        assert_eq!(a.verify(&n).map(|i| i.foreign), Some(false));
        let at_b = b.verify(&n).expect("another node's nonce verifies");
        assert!(at_b.foreign);
        assert_eq!((at_b.instance, at_b.shard, at_b.counter), (0xA_0001, 3, 42));
        // A restart of A (new epoch) refuses the old nonce; another secret refuses it.
        assert_eq!(NonceKey::clustered(b"shared", 0xA, 9).verify(&n), None);
        assert_eq!(NonceKey::clustered(b"other", 0xB, 2).verify(&n), None);
        // A key outside a cluster accepts no other instance.
        assert_eq!(NonceKey::new(b"shared", 0xB_0002).verify(&n), None);
    }

    #[test]
    fn window_counts_and_forgets() {
        let mut w = NcWindow::new(1024);
        let a = w.issue();
        let b = w.issue();
        assert_eq!(w.check(a, 1), NcVerdict::Fresh);
        assert_eq!(w.check(a, 1), NcVerdict::Replayed);
        assert_eq!(w.check(a, 2), NcVerdict::Fresh);
        assert_eq!(w.check(a, 1), NcVerdict::Replayed);
        assert_eq!(w.check(b, 1), NcVerdict::Fresh);
        assert_eq!(w.check(999_999, 1), NcVerdict::Forgotten);
        for _ in 0..1024 {
            w.issue();
        }
        assert_eq!(w.check(b, 2), NcVerdict::Forgotten, "slot reused");
        assert_eq!(parse_nc(b"0000000A"), Some(10));
        assert_eq!(parse_nc(b"1"), None);
        assert_eq!(parse_nc(b"0000000g"), None);
    }
}
