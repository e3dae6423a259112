//! Findings of `core_seq` that are reported and being fixed elsewhere: inputs that reach
//! them stop there (no crash), so a run looks for new ones. `--features strict` turns every
//! skip off (that is how a fix is checked). Each entry names the finding in README.md.

use crate::sim::Finding;

pub fn skip(f: &Finding) -> bool {
    if cfg!(feature = "strict") {
        return false;
    }
    f.kind.starts_with("known-") || KNOWN.contains(&f.kind)
}

/// Finding kinds skipped (see README.md, "core_seq findings").
const KNOWN: &[&str] = &[];
