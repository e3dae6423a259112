//! The edge over its binary, by feature: one test binary (one link, one shared harness in
//! `tests/common/`), each module on its own loopback addresses so the tests run in parallel.
//!
//! `cargo test --test edge` runs them all; `cargo test --test edge registrar::` one theme.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod admin;
mod admin_msg;
mod advertise;
mod auth;
mod cli;
mod dialog_keepalive;
mod engine;
mod fd_tables;
mod kernel_shed;
mod limits;
mod nat;
mod persistence;
mod protect;
mod registrar;
mod relay;
mod relay_secret;
mod shard_death;
mod stale_drop;
mod stream_backlog;
mod stream_close;
mod tcp;
mod tls_sipp;
mod tls_ws;
mod ws_phone;
