//! Sequences of datagrams from several peers, with time advancing, through a 2–3 shard
//! edge (registrar, digest auth, NAT pings, relay), checking every shard's invariants and
//! the outputs after each step. The grammar and the checks are the simulation of
//! `crates/sipedge-core/tests/sim/` (shared with the proptest and the regression replay).
#![no_main]

mod known_core;
#[path = "../../crates/sipedge-core/tests/sim/mod.rs"]
mod sim;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match sim::Sim::run_with(data, 256, false, !cfg!(feature = "strict")) {
        Ok(_) => {}
        Err((_, f)) if known_core::skip(&f) => {}
        Err((_, f)) => {
            // Replay with the trace, so the crash report shows the last steps.
            let trace = sim::Sim::run_with(data, 256, true, !cfg!(feature = "strict"))
                .err()
                .map(|(s, _)| s.trace)
                .unwrap_or_default();
            let tail: Vec<String> = trace.iter().rev().take(4).rev().cloned().collect();
            panic!("{f}\nlast steps:\n{}", tail.join("\n"));
        }
    }
});
