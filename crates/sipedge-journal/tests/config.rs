//! `[registrar.persistence]` as an operator writes it.

use std::num::NonZeroU32;
use std::path::PathBuf;

use serde::Deserialize;
use sipedge_journal::config::{PersistenceConfig, RawPersistence, DEFAULT_PATH};
use sipedge_journal::{JournalOptions, SyncPolicy, DEFAULT_SNAPSHOT_MIN_BYTES};

/// The shape the binary's config gives it: a field of `[registrar]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    registrar: Registrar,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Registrar {
    #[serde(default)]
    persistence: RawPersistence,
}

fn parse(text: &str) -> Result<Option<PersistenceConfig>, String> {
    let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
    f.registrar
        .persistence
        .validate()
        .map_err(|e| e.to_string())
}

fn ok(text: &str) -> Option<PersistenceConfig> {
    parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn durable_by_default_memory_only_when_switched_off() {
    assert_eq!(
        ok("").expect("durable by default").path,
        PathBuf::from(DEFAULT_PATH)
    );
    let every = ok("[registrar.persistence]\nsync = \"every\"\n").expect("durable");
    assert_eq!(every.path, PathBuf::from(DEFAULT_PATH));
    assert_eq!(every.options.policy, SyncPolicy::Every);
    assert_eq!(ok("[registrar]\npersistence = false\n"), None);
    assert_eq!(ok("[registrar.persistence]\npath = \"\"\n"), None);
}

#[test]
fn defaults_are_batch_1000_changes_100_ms() {
    let c = ok("[registrar.persistence]\npath = \"/var/lib/sipedge\"\n").expect("persistent");
    assert_eq!(c.path, PathBuf::from("/var/lib/sipedge"));
    assert_eq!(
        c.options,
        JournalOptions::new(SyncPolicy::Batch {
            changes: NonZeroU32::new(1000).expect("non-zero"),
            ms: 100
        })
    );
    assert_eq!(c.options.snapshot_min_bytes, DEFAULT_SNAPSHOT_MIN_BYTES);
    let t = ok("[registrar]\npersistence = true\n").expect("persistent");
    assert_eq!(t.path, PathBuf::from(DEFAULT_PATH));
}

#[test]
fn every_key_is_read() {
    let c = ok(
        "[registrar.persistence]\npath = \"d\"\nsync = \"batch\"\nbatch_changes = 7\n\
                batch_ms = 25\nsnapshot_min_bytes = 2097152\n",
    )
    .expect("persistent");
    assert_eq!(
        c.options.policy,
        SyncPolicy::Batch {
            changes: NonZeroU32::new(7).expect("non-zero"),
            ms: 25
        }
    );
    assert_eq!(c.options.snapshot_min_bytes, 2 << 20);
    let e = ok("[registrar.persistence]\npath = \"d\"\nsync = \"every\"\n").expect("persistent");
    assert_eq!(e.options.policy, SyncPolicy::Every);
}

#[test]
fn errors_name_the_key() {
    for (text, key) in [
        ("sync = \"sometimes\"", "`sync`"),
        ("batch_changes = 0", "`batch_changes`"),
        ("batch_ms = 0", "`batch_ms`"),
        ("batch_ms = 600000", "`batch_ms`"),
        ("snapshot_min_bytes = 10", "`snapshot_min_bytes`"),
        ("paht = \"x\"", "paht"),
        ("batch_changes = -1", "batch_changes"),
    ] {
        let e = parse(
            &format!("[registrar.persistence]\npath = \"d\"\n{text}\n")
                .replace("path = \"d\"\npath", "path"),
        )
        .expect_err(text);
        assert!(e.contains(key), "{text}: {e}");
    }
    let e = parse("[registrar]\npersistence = \"yes\"\n").expect_err("string");
    assert!(e.contains("persistence"), "{e}");
}
