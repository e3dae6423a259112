//! `sipedge-rt`: the per-core runtime — io_uring (or recvmmsg/sendmmsg) UDP sockets with
//! SO_REUSEPORT, provided-buffer rings, the lock-free mesh between shards, and CPU pinning.
//!
//! It knows nothing about SIP. This is the only crate allowed to contain `unsafe`.
