//! `sipedge-core`: the sans-IO protocol logic of the edge — transactions, registrar, location
//! store, authentication, NAT handling, proxy and limits.
//!
//! It does no I/O, reads no clock, starts no thread and owns no RNG: inputs come in through
//! `handle_*` calls (with `now` as an argument), outputs are drained with `poll_*` calls.
