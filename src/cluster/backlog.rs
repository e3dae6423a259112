//! The write-behind's backlog: the pending changes, one entry per AoR (coalesced: each
//! field's latest value), oldest AoR first, at most `backlog_max` AoRs.
//!
//! Built for a stream of new bindings (issue 20: a new binding's cost in cluster mode): an
//! AoR's changes live in one buffer ([`Pending`]: the AoR, then each field and its value),
//! encoded there directly from the journal record, written from there into the pipeline,
//! then kept for the next change ([`Backlog::recycle`]) — no allocation per change or per
//! AoR in steady state, where a map of boxed AoRs to vectors of (field, value) vectors cost
//! five allocations and frees per new binding (and the allocator's page faults). The index
//! is keyed by a keyed hash of the AoR (SipHash with this backlog's random key, so a peer
//! cannot aim at its buckets); two AoRs with the same hash are told apart by their bytes
//! (the newer one is then not coalesced with the older one: harmless, writes are
//! versioned).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault};

use super::thin::Prehashed;

/// Buffers kept for reuse at most, and the largest capacity kept.
const SPARE_MAX: usize = 4096;
const SPARE_CAP_MAX: usize = 4096;

/// One AoR's pending changes in one buffer: the AoR's bytes, then for each field its length
/// (`u32` little-endian) and bytes, and its latest value's length and bytes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pending {
    buf: Vec<u8>,
    aor_len: usize,
    fields: usize,
    hash: u64,
}

impl Pending {
    /// An entry for `aor` in `buf` (cleared), without fields yet.
    pub fn new(mut buf: Vec<u8>, aor: &[u8]) -> Self {
        buf.clear();
        buf.extend_from_slice(aor);
        Self {
            buf,
            aor_len: aor.len(),
            fields: 0,
            hash: 0,
        }
    }

    #[cfg(test)]
    /// An entry encoded by `value::encode_into` in `buf`: the AoR (`aor_len` bytes), then
    /// one field and its value.
    pub fn encoded(buf: Vec<u8>, aor_len: usize) -> Self {
        Self {
            buf,
            aor_len,
            fields: 1,
            hash: 0,
        }
    }

    /// An entry from a teed record (`super::encode_teed`: the AoR's length, `u32`
    /// little-endian, then an entry's bytes), copied into `buf`. `None` for bytes that are
    /// not such a record.
    pub fn from_teed(mut buf: Vec<u8>, rec: &[u8]) -> Option<Self> {
        let (len, bytes) = rec.split_first_chunk::<4>()?;
        let aor_len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        let mut rest = bytes.get(aor_len..)?;
        let mut fields = 0;
        while !rest.is_empty() {
            let (_, r) = take_part(rest)?;
            let (_, r) = take_part(r)?;
            rest = r;
            fields += 1;
        }
        buf.clear();
        buf.extend_from_slice(bytes);
        Some(Self {
            buf,
            aor_len,
            fields,
            hash: 0,
        })
    }

    /// The AoR.
    pub fn aor(&self) -> &[u8] {
        &self.buf[..self.aor_len]
    }

    /// Fields pending.
    pub fn field_count(&self) -> usize {
        self.fields
    }

    /// The fields and their values, in the order they were first changed.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut rest = &self.buf[self.aor_len..];
        std::iter::from_fn(move || {
            let (f, r) = take_part(rest)?;
            let (v, r) = take_part(r)?;
            rest = r;
            Some((f, v))
        })
    }

    /// Starts a part (a field or a value): its length is written by [`Pending::end_part`]
    /// once its bytes were appended to [`Pending::buf_mut`].
    pub fn begin_part(&mut self) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        at
    }

    /// Ends the part begun at `at`; `second` when it is a field's value (the field is then
    /// counted). False (the entry is unusable) for a part over 4 GiB.
    pub fn end_part(&mut self, at: usize, second: bool) -> bool {
        let Some(len) = self.buf.len().checked_sub(at + 4) else {
            return false;
        };
        let Ok(len) = u32::try_from(len) else {
            return false;
        };
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
        if second {
            self.fields += 1;
        }
        true
    }

    /// The buffer, to append a part's bytes to.
    #[cfg(test)]
    pub fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Appends `field` = `value` (a field not pending yet).
    fn append(&mut self, field: &[u8], value: &[u8]) {
        for (part, second) in [(field, false), (value, true)] {
            let at = self.begin_part();
            self.buf.extend_from_slice(part);
            // Parts come from another entry, each under 4 GiB.
            let _ = self.end_part(at, second);
        }
    }

    fn has(&self, field: &[u8]) -> bool {
        self.fields().any(|(f, _)| f == field)
    }
}

fn take_part(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = b.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The pending changes, one [`Pending`] per AoR, oldest first.
#[derive(Debug, Default)]
pub struct Backlog {
    queue: VecDeque<Pending>,
    /// AoR hash → the sequence number of its entry (`queue[seq - head]`).
    index: HashMap<u64, u64, BuildHasherDefault<Prehashed>>,
    /// Sequence number of `queue[0]` (starts mid-range: `put_back` counts down).
    head: u64,
    hasher: RandomState,
    spare: Vec<Vec<u8>>,
}

impl Backlog {
    /// An empty backlog.
    pub fn new() -> Self {
        Self {
            head: u64::MAX / 2,
            ..Self::default()
        }
    }

    /// AoRs waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// A buffer for a new entry (a recycled one when there is one).
    pub fn buffer(&mut self) -> Vec<u8> {
        self.spare.pop().unwrap_or_else(|| Vec::with_capacity(256))
    }

    /// Keeps an entry's buffer for a later one.
    pub fn recycle(&mut self, p: Pending) {
        if self.spare.len() < SPARE_MAX && p.buf.capacity() <= SPARE_CAP_MAX {
            self.spare.push(p.buf);
        }
    }

    fn entry(&mut self, hash: u64, aor: &[u8]) -> Option<&mut Pending> {
        let seq = *self.index.get(&hash)?;
        let i = usize::try_from(seq.wrapping_sub(self.head)).ok()?;
        self.queue.get_mut(i).filter(|e| e.aor() == aor)
    }

    /// Adds an AoR's changes (one field, as encoded), replacing an older value of the same
    /// field. False (dropped) when the AoR is not waiting yet and `max` AoRs already wait.
    pub fn push(&mut self, mut p: Pending, max: usize) -> bool {
        let hash = self.hasher.hash_one(p.aor());
        if let Some(e) = self.entry(hash, p.aor()) {
            let mut rebuilt = None;
            for (f, v) in p.fields() {
                if e.has(f) {
                    // The same binding changed again before it was written (rare: a
                    // refresh storm is thinned on the shard): the entry is rebuilt with the
                    // newer value.
                    let mut n = Pending::new(Vec::with_capacity(e.buf.len()), e.aor());
                    for (ef, ev) in e.fields() {
                        n.append(ef, if ef == f { v } else { ev });
                    }
                    n.hash = e.hash;
                    rebuilt = Some(std::mem::replace(e, n));
                } else {
                    e.append(f, v);
                }
            }
            if let Some(old) = rebuilt {
                self.recycle(old);
            }
            self.recycle(p);
            return true;
        }
        if self.queue.len() >= max {
            self.recycle(p);
            return false;
        }
        p.hash = hash;
        let seq = self.head.wrapping_add(self.queue.len() as u64);
        self.index.insert(hash, seq);
        self.queue.push_back(p);
        true
    }

    /// Moves up to `n` AoRs into `out`, oldest first.
    pub fn take(&mut self, n: usize, out: &mut Vec<Pending>) {
        while out.len() < n {
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            if self.index.get(&p.hash) == Some(&self.head) {
                self.index.remove(&p.hash);
            }
            self.head = self.head.wrapping_add(1);
            out.push(p);
        }
    }

    /// Puts a batch that could not be written back in front (its changes are older than
    /// anything that arrived since, which the single writer thread could not have taken):
    /// a field changed since keeps its newer value.
    pub fn put_back(&mut self, batch: &mut Vec<Pending>) {
        while let Some(p) = batch.pop() {
            if let Some(newer) = self.entry(p.hash, p.aor()) {
                for (f, v) in p.fields() {
                    if !newer.has(f) {
                        newer.append(f, v);
                    }
                }
                self.recycle(p);
            } else {
                self.head = self.head.wrapping_sub(1);
                self.index.entry(p.hash).or_insert(self.head);
                self.queue.push_front(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(b: &mut Backlog, aor: &str, field: &str, v: &str) -> Pending {
        let mut p = Pending::new(b.buffer(), aor.as_bytes());
        p.append(field.as_bytes(), v.as_bytes());
        p
    }

    fn fields(p: &Pending) -> Vec<(&[u8], &[u8])> {
        p.fields().collect()
    }

    #[test]
    fn backlog_coalesces_per_aor_and_field_and_is_capped() {
        let mut b = Backlog::new();
        for (aor, f, v, ok) in [
            ("a", "f1", "1", true),
            ("a", "f1", "2", true),
            ("a", "f2", "3", true),
            ("b", "f1", "4", true),
            ("c", "f1", "5", false), // a third AoR is refused
            ("b", "f1", "6", true),  // a known AoR still coalesces
        ] {
            let p = enc(&mut b, aor, f, v);
            assert_eq!(b.push(p, 2), ok, "{aor} {f} {v}");
        }
        assert_eq!(b.len(), 2);
        let mut batch = Vec::new();
        b.take(10, &mut batch);
        assert_eq!(batch.len(), 2);
        assert_eq!(
            fields(&batch[0]),
            vec![(&b"f1"[..], &b"2"[..]), (&b"f2"[..], &b"3"[..])]
        );
        assert_eq!(fields(&batch[1]), vec![(&b"f1"[..], &b"6"[..])]);
        assert_eq!(b.len(), 0);
        // A failed batch goes back; a newer change for its field since wins.
        let p = enc(&mut b, "a", "f1", "9");
        assert!(b.push(p, 2));
        b.put_back(&mut batch);
        let mut again = Vec::new();
        b.take(10, &mut again);
        assert_eq!(again[0].aor(), b"b");
        let a = again.iter().find(|p| p.aor() == b"a").expect("a");
        assert!(fields(a).contains(&(&b"f1"[..], &b"9"[..])));
        assert!(fields(a).contains(&(&b"f2"[..], &b"3"[..])));
        assert_eq!(a.field_count(), 2);
        // Every entry taken is written once; recycled buffers serve the next ones.
        for p in again {
            b.recycle(p);
        }
        let p = enc(&mut b, "d", "f", "v");
        assert!(b.push(p, 2));
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn a_backlog_in_steady_use_keeps_order_and_its_index() {
        let mut b = Backlog::new();
        let mut batch = Vec::new();
        for round in 0..50u32 {
            for i in 0..100u32 {
                let p = enc(&mut b, &format!("sip:{round}-{i}@x"), "f", "v");
                assert!(b.push(p, 1000));
            }
            // The same AoRs again: coalesced, not queued twice.
            for i in 0..100u32 {
                let p = enc(&mut b, &format!("sip:{round}-{i}@x"), "f", "w");
                assert!(b.push(p, 1000));
            }
            assert_eq!(b.len(), 100);
            b.take(60, &mut batch);
            assert_eq!(batch[0].aor(), format!("sip:{round}-0@x").as_bytes());
            assert_eq!(fields(&batch[59]), vec![(&b"f"[..], &b"w"[..])]);
            b.put_back(&mut batch);
            b.take(1000, &mut batch);
            assert_eq!(batch.len(), 100);
            assert_eq!(batch[99].aor(), format!("sip:{round}-99@x").as_bytes());
            for p in batch.drain(..) {
                b.recycle(p);
            }
            assert!(b.index.is_empty());
        }
    }
}
