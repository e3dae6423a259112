//! Every input the `core_seq` fuzz target found a fault with (`fuzz/regressions/core_seq/`),
//! replayed through the same simulation (`tests/sim/`): each must now run clean. Inputs
//! whose fix has not landed yet are listed in [`NEEDS_FIX`] and replayed by the ignored
//! test (`cargo test --test sim_regressions -- --ignored`).
#![allow(clippy::unwrap_used)]

mod sim;

use std::path::PathBuf;

use sim::Sim;

/// Regression files whose fix is still in another branch: (file name, what it needs).
const NEEDS_FIX: &[(&str, &str)] = &[];

fn files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/core_seq");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    v.sort();
    v
}

fn pending(p: &std::path::Path) -> bool {
    let name = p.file_name().unwrap().to_string_lossy();
    NEEDS_FIX.iter().any(|(f, _)| *f == name)
}

fn replay(p: &std::path::Path) -> Result<(), String> {
    let data = std::fs::read(p).unwrap();
    let run = || match Sim::run(&data, usize::MAX, true) {
        Ok(_) => Ok(()),
        Err((sim, f)) => {
            let tail: Vec<String> = sim.trace.iter().rev().take(4).rev().cloned().collect();
            Err(format!(
                "{}: {f}\nlast steps:\n{}",
                p.display(),
                tail.join("\n")
            ))
        }
    };
    // A panic in the core is a failure of this file; the other files still run.
    std::panic::catch_unwind(run).unwrap_or_else(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(format!("{}: panicked: {why}", p.display()))
    })
}

#[test]
fn fixed_regressions_run_clean() {
    let failures: Vec<String> = files()
        .iter()
        .filter(|p| !pending(p))
        .filter_map(|p| replay(p).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
#[ignore = "needs the fixes named in NEEDS_FIX"]
fn pending_regressions_run_clean() {
    let failures: Vec<String> = files()
        .iter()
        .filter(|p| pending(p))
        .filter_map(|p| replay(p).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
