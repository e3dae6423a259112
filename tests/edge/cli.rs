//! The command line: --check, bad configuration, ports already in use.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn sipedge(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sipedge"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn check_accepts_the_shipped_config() {
    let root = env!("CARGO_MANIFEST_DIR");
    let (ok, text) = sipedge(&[
        "--check",
        "--config",
        &format!("{root}/config/sipedge.toml"),
    ]);
    assert!(ok, "{text}");
    let (ok, text) = sipedge(&["--check"]);
    assert!(ok, "{text}");
}

#[test]
fn check_names_the_file_and_the_key() {
    let dir = crate::common::temp_dir("cli-check");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[server]\nlisten = [\"udp:300.1.2.3:5060\"]\n").unwrap();
    let (ok, text) = sipedge(&["--check", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        text.contains("bad.toml") && text.contains("server.listen[0]"),
        "{text}"
    );
    std::fs::write(&path, "[server]\nworkerz = 2\n").unwrap();
    let (ok, text) = sipedge(&["--check", "--config", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        text.contains("bad.toml") && text.contains("workerz"),
        "{text}"
    );
    let (ok, text) = sipedge(&["--check", "--config", "/nonexistent/sipedge.toml"]);
    assert!(!ok && text.contains("/nonexistent/sipedge.toml"), "{text}");
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let _holder = std::net::UdpSocket::bind("127.0.10.3:25070").unwrap();
    let dir = crate::common::temp_dir("cli-port");
    let cfg = crate::common::write_config(dir.path(), "127.0.10.3", 25070, 25071, "auto");
    let (ok, text) = sipedge(&["--config", cfg.to_str().unwrap(), "--shards", "1"]);
    assert!(!ok);
    assert!(
        text.contains("server.listen[0]") && text.contains("127.0.10.3:25070"),
        "{text}"
    );
}
