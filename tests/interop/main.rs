//! The edge against stock SIP clients (baresip, SIPp, sipsak, Linphone, PJSIP) and over
//! AF_XDP in a network namespace rig: tests that need tools or privileges from outside the
//! repository and skip (with a message) when they are missing. Shared harness in
//! `tests/common/`; the PJSIP user agent script in `tests/interop/clients/`.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod linphone;
mod netns;
mod netns_nat;
mod netns_wildcard;
mod pjsua;
mod stock_clients;
mod xdp;
