//! The store key a broker generates for itself: a sqlite store configured without
//! `[store.encryption]` seals with the key in a file beside the database, created on
//! the first start and read on every later one.
//!
//! The file holds the base64 of 32 random bytes and nothing else — exactly what
//! `openssl rand -base64 32` prints — so it can later be named in
//! `[store.encryption] keys = { <id> = "file:<path>" }` unchanged. Its key id is
//! derived from the key ([`key_id`]), so values sealed under it name it, and a
//! replaced file is reported as the wrong key rather than as tampering.
//!
//! The file is created readable by its owner only, atomically (written under a
//! temporary name, then hard-linked into place, which fails when the name exists), and
//! never overwritten. Like ssh with a private key, the broker refuses a key file that
//! others may read or write.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// A key read from (or just written to) its file.
pub struct LoadedKey {
    /// Derived from the key: see [`key_id`].
    pub key_id: String,
    pub key: Zeroizing<[u8; 32]>,
    /// Whether this start created the file.
    pub created: bool,
}

/// Why the key file could not be used. Every message names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error(
        "cannot create the store key file {path}: {source}; the broker keeps its state in {dir}: make it writable by the broker's user, or set store.path"
    )]
    Create {
        path: PathBuf,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the store key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the store key file {path} may be read or written by other users (mode {mode:o}): run `chmod 600 {path}`"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error(
        "the store key file {path} does not hold the base64 of 32 bytes; restore it from a backup (a new key cannot open what the old one sealed)"
    )]
    Malformed { path: PathBuf },
}

/// The id of a generated key: `file-` and 8 hex digits of a hash of the key, so it
/// changes with the key and reveals nothing usable about it.
pub fn key_id(key: &[u8; 32]) -> String {
    let digest = Sha256::new()
        .chain_update(b"token-broker store key id\0")
        .chain_update(key)
        .finalize();
    let mut id = String::from("file-");
    for byte in &digest[..4] {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

/// Reads the key at `path`, creating the file with a new random key when absent.
pub fn load_or_create(path: &Path) -> Result<LoadedKey, KeyFileError> {
    let created = match create(path) {
        Ok(()) => true,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(source) => {
            return Err(KeyFileError::Create {
                path: path.to_owned(),
                dir: directory(path),
                source,
            });
        }
    };
    let key = read(path)?;
    Ok(LoadedKey {
        key_id: key_id(&key),
        key,
        created,
    })
}

/// Reads an existing key file, refusing one that other users may read or write.
pub fn read(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let read_error = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(read_error)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyFileError::Permissions {
                path: path.to_owned(),
                mode: mode & 0o777,
            });
        }
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(read_error)?);
    let bytes =
        Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| KeyFileError::Malformed {
                    path: path.to_owned(),
                })?,
        );
    let key = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyFileError::Malformed {
        path: path.to_owned(),
    })?;
    Ok(Zeroizing::new(key))
}

/// Creates the file with a new key; `AlreadyExists` when it is there already (also
/// when another process created it first: the link is the one atomic step).
fn create(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Err(std::io::ErrorKind::AlreadyExists.into());
    }
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(key.as_mut());
    let text = Zeroizing::new(format!("{}\n", STANDARD.encode(key.as_ref())));
    let mut suffix = [0u8; 8];
    rand::rng().fill_bytes(&mut suffix);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".tmp-{}", u64::from_le_bytes(suffix)));
    let tmp = PathBuf::from(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    linked
}

/// The directory a path lives in, for messages.
fn directory(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db.store-key");
        let first = load_or_create(&path).unwrap();
        assert!(first.created);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(STANDARD.decode(text.trim()).unwrap().len(), 32);
        let again = load_or_create(&path).unwrap();
        assert!(!again.created);
        assert_eq!(*again.key, *first.key);
        assert_eq!(again.key_id, first.key_id);
        assert!(first.key_id.starts_with("file-"), "{}", first.key_id);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            text,
            "never rewritten"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused_naming_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        load_or_create(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = load_or_create(&path).err().unwrap().to_string();
        assert!(error.contains("chmod 600"), "{error}");
        assert!(error.contains("644"), "{error}");
    }

    #[test]
    fn a_damaged_key_file_is_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&path).unwrap().write_all(b"c2hvcnQ=").unwrap();
        let error = load_or_create(&path).err().unwrap().to_string();
        assert!(error.contains("32 bytes"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "c2hvcnQ=");
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("k");
        let error = load_or_create(&path).err().unwrap().to_string();
        assert!(
            error.contains("cannot create the store key file"),
            "{error}"
        );
        assert!(error.contains("absent"), "{error}");
    }

    #[test]
    fn key_ids_follow_the_key() {
        assert_eq!(key_id(&[1; 32]), key_id(&[1; 32]));
        assert_ne!(key_id(&[1; 32]), key_id(&[2; 32]));
        assert_eq!(key_id(&[1; 32]).len(), "file-".len() + 8);
    }
}
