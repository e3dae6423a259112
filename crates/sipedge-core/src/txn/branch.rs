//! The branch parameter of the Via we add (RFC 3261 §8.1.1.7, §16.6 step 8).
//!
//! `z9hG4bK` + `sE` + shard (4 hex) + cell slot (8 hex) + generation (5 hex) + branch
//! number (1 hex) + loop hash (8 hex) + MAC (16 hex). The shard lets any shard pass a
//! response (or a CANCEL's answer) to the owner of the client transaction in one hop
//! (ARCHITECTURE.md §1); slot and generation find the cell without an index; the loop hash
//! is the §16.6 step 8 value that §16.3 step 4 compares to detect a loop. The MAC
//! (SipHash-2-4 under the node secret, [`crate::secret`]) covers every field: a response
//! whose branch merely has our shape — a guessed slot and generation — is not ours and
//! never reaches a transaction (issue 13); it is checked before any hand-off, on the
//! shard it arrived at, since every shard holds the same secret.

use sipedge_msg::branch::BranchLayout;

use crate::output::ShardId;
use crate::secret::{tags_equal, Mac, Purpose};
use crate::txn::GEN_MASK;

/// Our relay branches (the codec is `sipedge-msg`'s): mark `sE`, then shard, cell slot,
/// generation, branch number, loop hash and the MAC, in hex digits.
const LAYOUT: BranchLayout<6> = BranchLayout::new(*b"sE", [4, 8, 5, 1, 8, 16]);
/// [`LAYOUT`] without the MAC: a branch of our shape whose MAC is not even hex is forged
/// too (not somebody else's).
const FIELDS_ONLY: BranchLayout<5> = BranchLayout::new(*b"sE", [4, 8, 5, 1, 8]);
/// Length of a branch we write.
pub(crate) const LEN: usize = LAYOUT.branch_len();

/// What a branch with our prefix turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Not our shape at all (somebody else's branch).
    Foreign,
    /// Our shape, but the MAC does not verify: forged or from before a secret change.
    Forged,
    /// One of ours.
    Ours(OurBranch),
}

/// The fields a branch of ours carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OurBranch {
    pub shard: ShardId,
    pub idx: u32,
    pub gen: u32,
    pub b: u8,
    pub loop_hash: u32,
}

impl OurBranch {
    /// The MAC over the fields (binary: two SipHash blocks instead of four for the text).
    fn mac(&self, mac: &Mac) -> u64 {
        let mut f = [0u8; 15];
        f[..2].copy_from_slice(&self.shard.0.to_le_bytes());
        f[2..6].copy_from_slice(&self.idx.to_le_bytes());
        f[6..10].copy_from_slice(&(self.gen & GEN_MASK).to_le_bytes());
        f[10] = self.b & 0xf;
        f[11..].copy_from_slice(&self.loop_hash.to_le_bytes());
        mac.digest(Purpose::Branch, &[&f])
    }

    /// The branch text.
    pub(crate) fn encode(&self, mac: &Mac) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        let fields = [
            u64::from(self.shard.0),
            u64::from(self.idx),
            u64::from(self.gen & GEN_MASK),
            u64::from(self.b & 0xf),
            u64::from(self.loop_hash),
            self.mac(mac),
        ];
        let written = LAYOUT.encode(&fields, &mut out);
        debug_assert!(written);
        out
    }

    /// Reads a branch we wrote and checks its MAC.
    pub(crate) fn check(s: &[u8], mac: &Mac) -> Decoded {
        match LAYOUT.decode(s) {
            Some([shard, idx, gen, b, loop_hash, tag]) => {
                let b = OurBranch {
                    shard: ShardId(shard as u16),
                    idx: idx as u32,
                    gen: gen as u32,
                    b: b as u8,
                    loop_hash: loop_hash as u32,
                };
                if tags_equal(tag, b.mac(mac)) {
                    Decoded::Ours(b)
                } else {
                    Decoded::Forged
                }
            }
            None if s.len() == LEN && FIELDS_ONLY.decode(&s[..LEN - 16]).is_some() => {
                Decoded::Forged
            }
            None => Decoded::Foreign,
        }
    }

    /// A branch we wrote whose MAC verifies; `None` for anybody else's (or a forged one).
    pub(crate) fn decode(s: &[u8], mac: &Mac) -> Option<OurBranch> {
        match Self::check(s, mac) {
            Decoded::Ours(b) => Some(b),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cookie and our mark.
    const PREFIX: &[u8] = b"z9hG4bKsE";

    #[test]
    fn round_trip_and_foreign() {
        let mac = Mac::new(&crate::secret::NodeSecret([1; 32]));
        let b = OurBranch {
            shard: ShardId(3),
            idx: 0xdead_beef,
            gen: 0x1_2345,
            b: 9,
            loop_hash: 0x0102_0304,
        };
        let text = b.encode(&mac);
        assert!(text.starts_with(b"z9hG4bK"));
        assert_eq!(OurBranch::decode(&text, &mac), Some(b));
        assert_eq!(
            OurBranch::check(b"z9hG4bK776asdhds", &mac),
            Decoded::Foreign
        );
        let mut bad = text;
        bad[12] = b'X';
        assert_eq!(OurBranch::check(&bad, &mac), Decoded::Foreign);
        // Another slot with the MAC of this one: our shape, not ours.
        let mut guessed = text;
        guessed[PREFIX.len() + 11] = if text[PREFIX.len() + 11] == b'0' {
            b'1'
        } else {
            b'0'
        };
        assert_eq!(OurBranch::check(&guessed, &mac), Decoded::Forged);
        // Our shape with a MAC that is not even hex: forged, not somebody else's.
        let mut not_hex = text;
        not_hex[LEN - 1] = b'G';
        assert_eq!(OurBranch::check(&not_hex, &mac), Decoded::Forged);
        assert!(text.starts_with(PREFIX) && PREFIX == LAYOUT.prefix());
        let other = Mac::new(&crate::secret::NodeSecret([2; 32]));
        assert_eq!(OurBranch::check(&text, &other), Decoded::Forged);
    }
}
