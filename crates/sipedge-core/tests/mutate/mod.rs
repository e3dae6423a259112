//! Seeded byte-level mutation of SIP messages for the robustness tests (no panics, still
//! serving): replace a byte, insert or overwrite with an "interesting" token, delete a run.
#![allow(dead_code, unreachable_pub)]

/// xorshift64: deterministic, so a failure replays from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `base` with 1 to `max_edits` random edits, tokens drawn from `interesting`.
pub fn mutate(rng: &mut Rng, base: &[u8], interesting: &[&[u8]], max_edits: usize) -> Vec<u8> {
    let mut m = base.to_vec();
    for _ in 0..1 + rng.below(max_edits) {
        let at = rng.below(m.len() + 1);
        match rng.below(4) {
            0 if !m.is_empty() => {
                let at = at.min(m.len() - 1);
                m[at] = rng.next() as u8;
            }
            1 => {
                let ins = interesting[rng.below(interesting.len())];
                m.splice(at..at, ins.iter().copied());
            }
            2 if at < m.len() => {
                let end = (at + 1 + rng.below(8)).min(m.len());
                m.drain(at..end);
            }
            _ => {
                let ins = interesting[rng.below(interesting.len())];
                m.splice(at..(at + ins.len()).min(m.len()), ins.iter().copied());
            }
        }
    }
    m
}
