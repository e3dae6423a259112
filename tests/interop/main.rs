//! The edge against stock SIP clients (baresip, SIPp, sipsak) and over AF_XDP in a network
//! namespace rig: tests that need tools or privileges from outside the repository and skip
//! (with a message) when they are missing. Shared harness in `tests/common/`.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod netns;
mod netns_nat;
mod netns_wildcard;
mod stock_clients;
mod xdp;
