//! Known findings: reported but not yet fixed in `sipedge-msg`. A predicate here recognises
//! the inputs that show one finding, and the targets skip them, so that a run goes on looking
//! for NEW findings instead of stopping at the same crash again. Build with
//! `--features strict` to turn every skip off (that is how to check a fix), and delete the
//! predicate when its fix lands.
//!
//! Open findings: none. F1–F4 (fuzz/README.md) had predicates here until they were fixed in
//! 314cf77, F5 until a9346e1; the regression inputs are in `tests/vectors/regress/`.
//!
//! Template:
//!
//! ```ignore
//! /// FN (`regress/<name>.sip`): what goes wrong, and the RFC rule.
//! pub fn fn_short_name(msg: &Message<'_>) -> bool {
//!     !STRICT && /* recognise the input */ false
//! }
//! ```
//! and at the check it would fail: `if known::fn_short_name(&msg) { return; }`.

#![allow(dead_code)]

pub const STRICT: bool = cfg!(feature = "strict");
