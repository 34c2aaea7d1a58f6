//! `token-broker demo --store memory|sqlite:PATH|redis:URL`: where the demo keeps its
//! state. A durable store gets a sealing key and signing keys kept beside it (created
//! on first use, mode 0600), so the demo can be stopped and started again and its
//! clients, grants and tokens still work.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

/// Where the demo keeps its state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DemoStore {
    /// In memory: lost when the demo stops.
    #[default]
    Memory,
    /// One sqlite file (and its keys beside it).
    Sqlite(PathBuf),
    /// A Redis server (keys in the current directory).
    Redis(String),
}

impl FromStr for DemoStore {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "memory" {
            return Ok(Self::Memory);
        }
        if let Some(path) = text.strip_prefix("sqlite:").filter(|p| !p.is_empty()) {
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("redis://") {
            return Ok(Self::Redis(text.to_owned()));
        }
        if let Some(url) = text.strip_prefix("redis:").filter(|u| u.starts_with("//")) {
            return Ok(Self::Redis(format!("redis:{url}")));
        }
        Err(format!(
            "`{text}` is not memory, sqlite:PATH or redis://HOST:PORT"
        ))
    }
}

impl DemoStore {
    /// The configuration sections for this store, creating its key files when new.
    pub fn config_sections(&self) -> Result<String, String> {
        let (backend, base) = match self {
            Self::Memory => return Ok(String::new()),
            Self::Sqlite(path) => (
                format!("backend = \"sqlite\"\npath = {}", quoted(path)),
                path.clone(),
            ),
            Self::Redis(url) => (
                format!("backend = \"redis\"\nurl = {}", toml_string(url)),
                PathBuf::from("token-broker-demo"),
            ),
        };
        let store_key = with_suffix(&base, ".store-key");
        ensure_key(&store_key)?;
        let signing = with_suffix(&base, ".signing-keys.json");
        Ok(format!(
            "[store]\n{backend}\n\n[store.encryption]\nkey_id = \"demo\"\nkeys = {{ demo = {} }}\n\n[tokens]\nkey_file = {}\n",
            toml_string(&format!("file:{}", store_key.display())),
            quoted(&signing),
        ))
    }
}

fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A random 32-byte key, base64, in a new 0600 file; an existing file is kept.
fn ensure_key(path: &Path) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut file, STANDARD.encode(key).as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn quoted(path: &Path) -> String {
    toml_string(&path.display().to_string())
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_are_named_the_way_the_help_says() {
        assert_eq!("memory".parse(), Ok(DemoStore::Memory));
        assert_eq!(
            "sqlite:/tmp/x.db".parse(),
            Ok(DemoStore::Sqlite(PathBuf::from("/tmp/x.db")))
        );
        assert_eq!(
            "redis://127.0.0.1:6379".parse(),
            Ok(DemoStore::Redis("redis://127.0.0.1:6379".to_owned()))
        );
        for bad in ["", "sqlite:", "postgres://x", "redis:"] {
            assert!(bad.parse::<DemoStore>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_sqlite_store_gets_keys_beside_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("demo.db");
        let store = DemoStore::Sqlite(db.clone());
        let first = store.config_sections().unwrap();
        let key = std::fs::read_to_string(dir.path().join("demo.db.store-key")).unwrap();
        assert_eq!(STANDARD.decode(&key).unwrap().len(), 32);
        let second = store.config_sections().unwrap();
        assert_eq!(first, second);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("demo.db.store-key")).unwrap(),
            key,
            "kept, so the file opens again"
        );
        assert!(first.contains("backend = \"sqlite\""), "{first}");
        assert!(first.contains("signing-keys.json"), "{first}");
        assert_eq!(DemoStore::Memory.config_sections().unwrap(), "");
    }
}
