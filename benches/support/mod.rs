//! Request builders shared by the end-to-end benchmarks.

pub(crate) mod call;

/// The digest core and requests of `crates/sipedge-core/benches/digest.rs` (one copy).
#[path = "../../crates/sipedge-core/benches/support/digest.rs"]
pub(crate) mod digest;
