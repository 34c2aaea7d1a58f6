use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::config::{ConfigError, Environment, load_str};

use super::*;

/// The sections every test configuration needs besides `[store]`.
pub(super) const BASE: &str = r#"
[server]
public_url = "https://broker.example.com"

[upstream]
issuer = "https://idp.example.com/realms/mcp"
client_id = "token-broker"
client_secret = "inline-secret"
"#;

fn b64(byte: u8) -> String {
    STANDARD.encode([byte; 32])
}

fn env(pairs: &[(&str, &str)]) -> Environment {
    Environment::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

fn load(store: &str, env: &Environment) -> Result<StoreConfig, Vec<String>> {
    load_str(&format!("{BASE}\n{store}"), env)
        .map(|c| c.store)
        .map_err(|e: ConfigError| e.problems())
}

fn has(found: &[String], key: &str) -> bool {
    found.iter().any(|p| p.starts_with(&format!("{key}:")))
}

#[test]
fn configuration_text_without_a_file_defaults_to_memory() {
    let store = load("", &Environment::default()).unwrap();
    assert_eq!(store.backend, StoreBackend::Memory);
    assert!(store.encryption.is_none());
    assert!(store.key_file.is_none());
}

/// Writes `BASE` plus `extra` to `broker.toml` in a new directory and loads it.
fn load_beside(extra: &str) -> (tempfile::TempDir, crate::config::Config) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.toml");
    std::fs::write(&path, format!("{BASE}\n{extra}")).unwrap();
    let config = crate::config::load_file(&path, &Environment::default()).unwrap();
    (dir, config)
}

#[test]
fn a_file_without_a_store_section_keeps_state_in_sqlite_beside_it() {
    let (dir, config) = load_beside("");
    assert_eq!(
        config.store.backend,
        StoreBackend::Sqlite {
            path: dir.path().join("token-broker.db")
        }
    );
    assert!(config.store.encryption.is_none());
    assert_eq!(
        config.store.key_file,
        Some(dir.path().join("token-broker.db.store-key"))
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() == 1,
        "loading creates nothing"
    );
    let lines = crate::config::where_state_lives(&config);
    assert!(lines[0].contains("token-broker.db"), "{lines:?}");
    assert!(lines[1].contains("created on first start"), "{lines:?}");
    assert!(lines[2].contains("in the store"), "{lines:?}");
}

#[test]
fn relative_paths_are_taken_from_the_configuration_files_directory() {
    let (dir, config) = load_beside(
        "[tokens]\nkey_file = \"keys/signing.json\"\n\n\
         [store]\npath = \"state/broker.db\"\nkey_file = \"secrets/store.key\"\n",
    );
    assert_eq!(
        config.store.backend,
        StoreBackend::Sqlite {
            path: dir.path().join("state/broker.db")
        }
    );
    assert_eq!(
        config.store.key_file,
        Some(dir.path().join("secrets/store.key"))
    );
    assert_eq!(
        config.tokens.key_file,
        Some(dir.path().join("keys/signing.json"))
    );
    let (_, absolute) = load_beside("[store]\npath = \"/var/lib/tb/s.db\"\n");
    assert_eq!(
        absolute.store.key_file,
        Some(std::path::PathBuf::from("/var/lib/tb/s.db.store-key"))
    );
    let (_, memory) = load_beside("[store]\nbackend = \"memory\"\n");
    assert_eq!(memory.store.backend, StoreBackend::Memory);
    assert!(memory.store.key_file.is_none());
}

#[test]
fn a_redis_store_needs_configured_keys_and_no_key_file() {
    let found = load(
        "[store]\nbackend = \"redis\"\nurl = \"redis://h\"\nkey_file = \"k\"\n",
        &Environment::default(),
    )
    .unwrap_err();
    assert!(has(&found, "store.key_file"), "{found:?}");
    let encryption = found
        .iter()
        .find(|p| p.starts_with("store.encryption.key_id:"))
        .unwrap();
    assert!(encryption.contains("every replica"), "{encryption}");
}

#[test]
fn a_sqlite_store_reads_its_path_and_keys() {
    let text = format!(
        "[store]\nbackend = \"sqlite\"\npath = \"/var/lib/tb/store.db\"\n\
         [store.encryption]\nkey_id = \"2026-11\"\nkeys = {{ \"2026-05\" = \"{}\", \"2026-11\" = \"env:NEW_KEY\" }}\n",
        b64(1)
    );
    let store = load(&text, &env(&[("NEW_KEY", &b64(2))])).unwrap();
    assert_eq!(
        store.backend,
        StoreBackend::Sqlite {
            path: "/var/lib/tb/store.db".into()
        }
    );
    let encryption = store.encryption.unwrap();
    assert_eq!(encryption.key_id, "2026-11");
    assert_eq!(encryption.keys["2026-05"].expose(), &[1; 32]);
    assert_eq!(encryption.keys["2026-11"].expose(), &[2; 32]);
}

#[test]
fn the_current_key_may_come_from_its_own_variable() {
    let text =
        "[store]\nbackend = \"sqlite\"\npath = \"s.db\"\n[store.encryption]\nkey_id = \"k1\"\n";
    let store = load(text, &env(&[(STORE_KEY_ENV, &b64(7))])).unwrap();
    assert_eq!(store.encryption.unwrap().keys["k1"].expose(), &[7; 32]);
    let found = load(text, &Environment::default()).unwrap_err();
    assert!(has(&found, "store.encryption.key_id"), "{found:?}");
    assert!(found[0].contains(STORE_KEY_ENV), "{found:?}");
}

#[test]
fn environment_overrides_configure_the_store() {
    let store = load(
        "",
        &env(&[
            ("TOKEN_BROKER__STORE__BACKEND", "sqlite"),
            ("TOKEN_BROKER__STORE__PATH", "/data/store.db"),
            ("TOKEN_BROKER__STORE__ENCRYPTION__KEY_ID", "k1"),
            (STORE_KEY_ENV, &b64(3)),
        ]),
    )
    .unwrap();
    assert_eq!(
        store.backend,
        StoreBackend::Sqlite {
            path: "/data/store.db".into()
        }
    );
    assert_eq!(store.encryption.unwrap().keys["k1"].expose(), &[3; 32]);
}

#[test]
fn every_store_problem_is_reported_with_its_key() {
    let text = format!(
        "[store]\nbackend = \"sqlite\"\n[store.encryption]\nkey_id = \"k 1\"\n\
         keys = {{ short = \"{}\", bad = \"%%%\", missing = \"env:NOPE\", \"x/y\" = \"{}\" }}\n",
        STANDARD.encode([1u8; 16]),
        b64(1)
    );
    let found = load(&text, &Environment::default()).unwrap_err();
    for key in [
        "store.path",
        "store.encryption.key_id",
        "store.encryption.keys.short",
        "store.encryption.keys.bad",
        "store.encryption.keys.missing",
        "store.encryption.keys.x/y",
    ] {
        assert!(has(&found, key), "{key} not reported in {found:?}");
    }
    assert!(
        found.iter().any(|p| p.contains("16 bytes, not 32")),
        "{found:?}"
    );
    let found = load("[store]\nbackend = \"mongodb\"\n", &Environment::default()).unwrap_err();
    assert!(has(&found, "store.backend"), "{found:?}");
    let found = load(
        "[store]\nbackend = \"sqlite\"\npath = \"s.db\"\nkey_file = \"k\"\n\
         [store.encryption]\nkey_id = \"k1\"\n",
        &env(&[(STORE_KEY_ENV, &b64(1))]),
    )
    .unwrap_err();
    assert!(has(&found, "store.key_file"), "{found:?}");
    let found = load("[store]\nbackned = \"sqlite\"\n", &Environment::default()).unwrap_err();
    assert!(has(&found, "store.backned"), "{found:?}");
}

#[test]
fn the_current_key_given_twice_must_agree() {
    let text = format!(
        "[store]\nbackend = \"sqlite\"\npath = \"s.db\"\n[store.encryption]\nkey_id = \"k1\"\nkeys = {{ k1 = \"{}\" }}\n",
        b64(1)
    );
    assert!(load(&text, &env(&[(STORE_KEY_ENV, &b64(1))])).is_ok());
    let found = load(&text, &env(&[(STORE_KEY_ENV, &b64(2))])).unwrap_err();
    assert!(has(&found, "store.encryption.keys.k1"), "{found:?}");
    let found = load(&text, &env(&[(STORE_KEY_ENV, "not base64!")])).unwrap_err();
    assert!(found.iter().any(|p| p.contains(STORE_KEY_ENV)), "{found:?}");
}

#[test]
fn debug_output_never_shows_a_key() {
    let text =
        "[store]\nbackend = \"sqlite\"\npath = \"s.db\"\n[store.encryption]\nkey_id = \"k1\"\n";
    let config = load_str(
        &format!("{BASE}\n{text}"),
        &env(&[(STORE_KEY_ENV, &b64(0xAB))]),
    )
    .unwrap();
    let debug = format!("{config:?}");
    assert!(debug.contains("StoreKey(<redacted>)"), "{debug}");
    assert!(!debug.contains("171"), "{debug}");
}

#[test]
fn a_redis_store_reads_its_url_and_prefix() {
    let text = format!(
        "[store]\nbackend = \"redis\"\nurl = \"env:REDIS_URL\"\nkey_prefix = \"tb-eu:\"\n\
         [store.encryption]\nkey_id = \"k1\"\nkeys = {{ k1 = \"{}\" }}\n",
        b64(1)
    );
    let store = load(
        &text,
        &env(&[(
            "REDIS_URL",
            "redis://broker:s3cret-pw@redis.internal:6380/2",
        )]),
    )
    .unwrap();
    let StoreBackend::Redis {
        url,
        key_prefix,
        password: None,
        tls: None,
    } = &store.backend
    else {
        panic!("{:?}", store.backend);
    };
    assert_eq!(
        url.expose(),
        "redis://broker:s3cret-pw@redis.internal:6380/2"
    );
    assert_eq!(key_prefix, "tb-eu:");
    let debug = format!("{store:?}");
    assert!(debug.contains("redis.internal:6380/2"), "{debug}");
    assert!(
        !debug.contains("s3cret-pw") && !debug.contains("broker@"),
        "{debug}"
    );

    let defaults = format!(
        "[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1\"\n\
         [store.encryption]\nkey_id = \"k1\"\nkeys = {{ k1 = \"{}\" }}\n",
        b64(1)
    );
    let store = load(&defaults, &Environment::default()).unwrap();
    assert!(matches!(
        store.backend,
        StoreBackend::Redis { ref key_prefix, .. } if key_prefix == DEFAULT_KEY_PREFIX
    ));
}

#[test]
fn every_redis_problem_is_reported_with_its_key() {
    let found = load("[store]\nbackend = \"redis\"\n", &Environment::default()).unwrap_err();
    assert!(has(&found, "store.url"), "{found:?}");
    assert!(has(&found, "store.encryption.key_id"), "{found:?}");
    for (url, why) in [
        ("http://redis.internal", "not redis://"),
        ("rediss://redis.internal/#insecure", "certificate checks"),
        ("redis://", "no host"),
        ("not a url", "not a URL"),
        ("env:UNSET_REDIS_URL", "UNSET_REDIS_URL"),
    ] {
        let text = format!("[store]\nbackend = \"redis\"\nurl = \"{url}\"\n");
        let found = load(&text, &Environment::default()).unwrap_err();
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("store.url:") && p.contains(why)),
            "{url}: {found:?}"
        );
    }
    let found = load(
        "[store]\nbackend = \"redis\"\nkey_prefix = \"a b*\"\n",
        &Environment::default(),
    )
    .unwrap_err();
    assert!(has(&found, "store.key_prefix"), "{found:?}");
    assert!(has(&found, "store.url"), "{found:?}");
    // A URL without the backend would quietly leave every replica on its own memory.
    let found = load("[store]\nurl = \"redis://h\"\n", &Environment::default()).unwrap_err();
    assert!(has(&found, "store.url"), "{found:?}");
}

#[test]
fn a_password_in_the_redis_url_never_reaches_a_problem() {
    let found = load(
        "[store]\nbackend = \"redis\"\nurl = \"http://u:hunter2-pw@h\"\n",
        &Environment::default(),
    )
    .unwrap_err();
    assert!(found.iter().all(|p| !p.contains("hunter2-pw")), "{found:?}");
}
