//! Tests of `[server]` and the sections parsed in `config.rs`.

use super::*;

#[test]
fn embedded_default_matches_code_defaults() {
    let from_file = Config::embedded().unwrap_or_else(|e| panic!("{e}"));
    let from_code = Config::parse("", "empty").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        from_file, from_code,
        "config/sipedge.toml and the code defaults differ"
    );
    assert_eq!(
        from_file.listen[0].addr,
        "127.0.0.1:5060".parse().unwrap_or_else(|_| unreachable!())
    );
    assert!(from_file.domains.contains(&"127.0.0.1".to_string()));
    assert_eq!(from_file.registrar, RegistrarConfig::default());
}

#[test]
fn every_table_is_optional() {
    // Merge regression: a table without `#[serde(default)]` made a file naming only
    // [server] fail with "missing field `dialogs`".
    let c = Config::parse("[server]\nlisten = [\"udp:127.0.0.9:5060\"]\n", "t");
    assert!(c.is_ok(), "{c:?}");
}

#[test]
fn registrar_keys() {
    let c = Config::parse(
        "[registrar]\ncase_sensitive = true\ndefault_expires = 1800\nmin_expires = 30\nmax_expires = 3600\nmax_contacts = 3\noverflow = \"replace_oldest\"\n",
        "t",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.registrar,
        RegistrarConfig {
            case_sensitive: true,
            default_expires_secs: 1800,
            min_expires_secs: 30,
            max_expires_secs: 3600,
            max_contacts: 3,
            overflow: Overflow::ReplaceOldest,
            max_bindings: sipedge_core::DEFAULT_MAX_BINDINGS,
            accept_path: sipedge_core::AcceptPath::Trusted,
        }
    );
    let c = Config::parse("[registrar]\naccept_path = \"never\"\n", "t")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.registrar.accept_path, sipedge_core::AcceptPath::Never);
    let e = error_of("[registrar]\naccept_path = \"yes\"\n");
    assert!(e.to_string().contains("registrar.accept_path"), "{e}");
    let e = error_of("[registrar]\nmax_binding = 3\n");
    assert!(e.to_string().contains("max_binding"), "{e}");
    let c = Config::parse("[registrar]\nmax_bindings = 3\n", "t").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.registrar.max_bindings, 3);
    let e = error_of("[registrar]\nmax_bindings = 0\n");
    assert!(e.to_string().contains("registrar.max_bindings"), "{e}");
    let c = Config::parse("[registrar]\nexpected_bindings = 4000000\n", "t")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.expected_bindings, 4_000_000);
    let e = error_of("[registrar]\nexpected_bindings = 2000000000\n");
    assert!(e.to_string().contains("expected_bindings"), "{e}");
    let c = Config::parse(
        "[registrar]\nexpected_bindings = 1000\nprefault = true\n",
        "t",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.prefault);
    let e = error_of("[registrar]\nprefault = true\n");
    assert!(e.to_string().contains("registrar.prefault"), "{e}");
    let e =
        error_of("[registrar]\nmax_bindings = 1000\nexpected_bindings = 5000\nprefault = true\n");
    assert!(e.to_string().contains("above max_bindings"), "{e}");
}

#[test]
fn every_shipped_config_file_parses() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    let mut stack = vec![
        root.join("config"),
        root.join("loadtest"),
        root.join("tests"),
    ];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml")
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("sipedge"))
            {
                Config::load(&p).unwrap_or_else(|e| panic!("{e}"));
                seen += 1;
            }
        }
    }
    assert!(seen >= 1);
}

fn error_of(text: &str) -> ConfigError {
    match Config::parse(text, "test.toml") {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn errors_name_the_key() {
    let e = error_of("[server]\nlisten = [\"udp:127.0.0.1:5060\", \"udp:nonsense\"]\n");
    assert_eq!(e.key, "server.listen[1]");
    assert!(
        e.to_string()
            .starts_with("config test.toml: key `server.listen[1]`"),
        "{e}"
    );
    assert_eq!(error_of("[server]\nio = \"epoll\"\n").key, "server.io");
    assert_eq!(
        error_of("[server]\nio = \"xdp\"\n").key,
        "server.xdp_interface"
    );
    assert_eq!(
        error_of("[server]\nxdp_ring_size = 1000\n").key,
        "server.xdp_ring_size"
    );
    assert_eq!(
        error_of("[server]\nxdp_attach = \"hw\"\n").key,
        "server.xdp_attach"
    );
    assert_eq!(
        error_of("[server]\nxdp_busy_poll_us = 20000\n").key,
        "server.xdp_busy_poll_us"
    );
    assert_eq!(
        error_of("[server]\nmax_message_bytes = 100\n").key,
        "server.max_message_bytes"
    );
    assert_eq!(
        error_of("[admin]\nlisten = \"nowhere\"\n").key,
        "admin.listen"
    );
    assert_eq!(
        error_of("[server]\nlisten = [\"sctp:127.0.0.1:5060\"]\n").key,
        "server.listen[0]"
    );
    assert_eq!(
        error_of("[registrar]\noverflow = \"drop\"\n").key,
        "registrar.overflow"
    );
    assert_eq!(
        error_of("[registrar]\nmin_expires = 600\ndefault_expires = 300\n").key,
        "registrar.default_expires"
    );
    assert_eq!(
        error_of("[registrar]\nmax_expires = 30\n").key,
        "registrar.min_expires"
    );
    assert_eq!(
        error_of("[registrar]\nmin_expires = 4000\ndefault_expires = 5000\n").key,
        "registrar.min_expires"
    );
    assert_eq!(
        error_of("[registrar]\nmax_contacts = 0\n").key,
        "registrar.max_contacts"
    );
    let e = error_of("[server]\nlisten_on = []\n");
    assert!(e.to_string().contains("listen_on"), "{e}");
    assert!(e.to_string().contains("test.toml"), "{e}");
}

#[test]
fn ipv6_listen() {
    let c = Config::parse("[server]\nlisten = [\"udp:[::1]:5070\"]\n", "t")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(c.listen[0].addr.is_ipv6());
    assert!(c.domains.contains(&"::1".to_string()));
}
