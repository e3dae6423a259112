//! Issue 13: a shard that dies takes the process down — non-zero exit, the shard and the
//! cause in the log — instead of leaving 1/N of the AoRs unanswered behind a live
//! process. The fault is injected with `SIPEDGE_TEST_SHARD_FAULT`, honoured only by debug
//! builds (hence `cfg(debug_assertions)`).
#![cfg(debug_assertions)]
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs a two-shard edge whose shard 1 fails as `how`; returns (exit code, stderr).
fn run_with_fault(tag: &str, ip: &str, port: u16, how: &str) -> (Option<i32>, String) {
    let dir = crate::common::temp_dir(tag);
    let cfg = crate::common::write_config(dir.path(), ip, port, port + 1, "auto");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sipedge"))
        .arg("--config")
        .arg(&cfg)
        .arg("--shards")
        .arg("2")
        .env("SIPEDGE_TEST_SHARD_FAULT", format!("1:{how}"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let status =
        status.unwrap_or_else(|| panic!("the edge kept running with a dead shard:\n{err}"));
    (status.code(), err)
}

#[test]
fn a_shard_whose_engine_fails_stops_the_process_with_an_error() {
    let (code, err) = run_with_fault("death-error", "127.0.133.1", 25100, "error");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("shard 1 died"), "{err}");
    assert!(err.contains("injected engine failure"), "{err}");
}

#[test]
fn a_shard_that_panics_stops_the_process_with_an_error() {
    let (code, err) = run_with_fault("death-panic", "127.0.133.2", 25110, "panic");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("shard 1 died"), "{err}");
    assert!(err.contains("panicked: injected fault"), "{err}");
}
