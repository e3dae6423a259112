//! Prints the step trace of one simulation input (a fuzz artifact or a regression file):
//! `SIM_INPUT=path cargo test -p sipedge-core --test sim_trace -- --nocapture`.
//! Without `SIM_INPUT` it does nothing.
#![allow(clippy::unwrap_used)]

mod sim;

#[test]
fn trace_one_input() {
    let Ok(p) = std::env::var("SIM_INPUT") else {
        return;
    };
    let data = std::fs::read(p).unwrap();
    match sim::Sim::run(&data, usize::MAX, true) {
        Ok(s) => println!("{}\nclean", s.trace.join("\n")),
        Err((s, f)) => println!("{}\nFINDING {f}", s.trace.join("\n")),
    }
}
