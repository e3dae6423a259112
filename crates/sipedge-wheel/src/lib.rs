//! `sipedge-wheel`: the per-shard hierarchical timer wheel (ticks in, expired keys out).
//!
//! It never reads a clock: callers advance it with the current tick.
