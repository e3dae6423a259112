//! Unit tests that need crate internals (crash points inside a commit).
