//! `token-broker demo --store memory|sqlite:PATH|redis:URL`: where the demo keeps its
//! state. A durable store keeps the signing keys itself; its sealing key is a file
//! created on first use (mode 0600; `store::key_file`) — beside a sqlite file, as
//! `serve` does, or in the current directory for Redis — so the demo can be stopped
//! and started again and its clients, grants and tokens still work.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::store::key_file;

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
        // `redis:URL`, the URL written whole (`redis:redis://host:6379`).
        if let Some(url) = text
            .strip_prefix("redis:")
            .filter(|u| u.starts_with("redis://"))
        {
            return Ok(Self::Redis(url.to_owned()));
        }
        Err(format!(
            "`{text}` is not memory, sqlite:PATH or redis:URL (redis://HOST:PORT)"
        ))
    }
}

impl DemoStore {
    /// The configuration sections for this store, creating the Redis key file when new.
    pub fn config_sections(&self) -> Result<String, String> {
        match self {
            Self::Memory => Ok(String::new()),
            // The broker seals with a key it creates beside the file.
            Self::Sqlite(path) => Ok(format!(
                "[store]\nbackend = \"sqlite\"\npath = {}\n",
                quoted(path)
            )),
            Self::Redis(url) => {
                let key_file = PathBuf::from(REDIS_KEY_FILE);
                let key = key_file::load_or_create(&key_file).map_err(|e| e.to_string())?;
                Ok(format!(
                    "[store]\nbackend = \"redis\"\nurl = {}\n\n[store.encryption]\nkey_id = {}\nkeys = {{ {} = {} }}\n",
                    toml_string(url),
                    toml_string(&key.key_id),
                    toml_string(&key.key_id),
                    toml_string(&format!("file:{}", key_file.display())),
                ))
            }
        }
    }
}

/// The Redis demo's sealing key, in the current directory.
const REDIS_KEY_FILE: &str = "token-broker-demo.store-key";

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
        assert_eq!(
            "redis:redis://127.0.0.1:6379/2".parse(),
            Ok(DemoStore::Redis("redis://127.0.0.1:6379/2".to_owned()))
        );
        for bad in ["", "sqlite:", "postgres://x", "redis:", "redis:localhost"] {
            assert!(bad.parse::<DemoStore>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_sqlite_store_is_the_plain_sqlite_section() {
        let store = DemoStore::Sqlite(PathBuf::from("/tmp/x/demo.db"));
        let sections = store.config_sections().unwrap();
        assert_eq!(
            sections,
            "[store]\nbackend = \"sqlite\"\npath = \"/tmp/x/demo.db\"\n"
        );
        let config = crate::config::load_str(
            &format!(
                "[server]\npublic_url = \"https://b.example\"\n[upstream]\nissuer = \"https://i.example\"\n\
                 client_id = \"b\"\nclient_secret = \"s\"\n{sections}"
            ),
            &crate::config::Environment::default(),
        )
        .unwrap();
        assert_eq!(
            config.store.key_file,
            Some(PathBuf::from("/tmp/x/demo.db.store-key")),
            "the broker keeps the key beside the file"
        );
        assert_eq!(DemoStore::Memory.config_sections().unwrap(), "");
    }
}
