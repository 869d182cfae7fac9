//! First start and every start: the data directory, the master key and the
//! first admin token.
//!
//! The master key (`secret.key`, 32 random bytes, mode 0600) is created on
//! first start and never leaves the data directory. API tokens are random,
//! shown once, and only their SHA-256 hash is ever stored.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What went wrong preparing the data directory.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The data directory cannot be created or written.
    #[error(
        "data directory {path} is not usable: {source}; choose another with --data-dir or fix its permissions"
    )]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The master key file is unreadable or malformed.
    #[error("master key {path}: {message}")]
    MasterKey {
        /// The key file.
        path: PathBuf,
        /// Why it cannot be used.
        message: String,
    },
    /// The system's random source failed.
    #[error("cannot get random bytes from the system: {0}")]
    Random(String),
}

/// Creates the data directory (and its `mirrors/` and `work/` parts) and
/// proves it writable. A data directory created here is private to the
/// server's user (mode 0700): it holds the database, the key and working
/// directories. An existing one keeps the mode its owner gave it.
pub fn prepare_data_dir(data_dir: &Path) -> Result<(), StartupError> {
    let fail = |source| StartupError::DataDir {
        path: data_dir.to_owned(),
        source,
    };
    if !data_dir.exists() {
        fs::create_dir_all(data_dir).map_err(fail)?;
        fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    for part in ["mirrors", "work"] {
        fs::create_dir_all(data_dir.join(part)).map_err(fail)?;
    }
    let probe = data_dir.join(".write-test");
    fs::write(&probe, b"ok").map_err(fail)?;
    fs::remove_file(&probe).map_err(fail)?;
    Ok(())
}

/// Fills `buffer` from the operating system's random source.
pub fn random_bytes(buffer: &mut [u8]) -> Result<(), StartupError> {
    getrandom::fill(buffer).map_err(|e| StartupError::Random(e.to_string()))
}

/// The master key: read from `path`, or created there (mode 0600) when absent.
/// Returns the key and whether it was created now.
pub fn load_or_create_master_key(path: &Path) -> Result<([u8; 32], bool), StartupError> {
    let fail = |message: String| StartupError::MasterKey {
        path: path.to_owned(),
        message,
    };
    match fs::File::open(path) {
        Ok(mut file) => {
            let mode = file
                .metadata()
                .map_err(|e| fail(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(fail(format!(
                    "is readable by other users (mode {:o}); run chmod 600 on it",
                    mode & 0o777
                )));
            }
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .map_err(|e| fail(e.to_string()))?;
            let key: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
                fail(format!("must hold exactly 32 bytes, holds {}", b.len()))
            })?;
            Ok((key, false))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            random_bytes(&mut key)?;
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| fail(e.to_string()))?;
            file.write_all(&key).map_err(|e| fail(e.to_string()))?;
            file.sync_all().map_err(|e| fail(e.to_string()))?;
            Ok((key, true))
        }
        Err(error) => Err(fail(error.to_string())),
    }
}

/// A new API token: `tako_` and 40 hexadecimal characters (160 random bits).
pub fn new_token() -> Result<String, StartupError> {
    let mut bytes = [0u8; 20];
    random_bytes(&mut bytes)?;
    Ok(format!("tako_{}", hex::encode(bytes)))
}

/// The hash under which a token is stored (SHA-256).
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// This node's name, kept in `<data_dir>/node-id` so that a restarted node
/// recognises the work it held before (created on first start).
pub fn load_or_create_node_id(data_dir: &Path) -> Result<String, StartupError> {
    let path = data_dir.join("node-id");
    match fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        _ => {
            let mut bytes = [0u8; 8];
            random_bytes(&mut bytes)?;
            let id = format!("node-{}", hex::encode(bytes));
            fs::write(&path, &id).map_err(|source| StartupError::DataDir {
                path: data_dir.to_owned(),
                source,
            })?;
            Ok(id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let (first, created) = load_or_create_master_key(&path).unwrap();
        assert!(created);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let (again, created) = load_or_create_master_key(&path).unwrap();
        assert!(!created);
        assert_eq!(first, again);
    }

    #[test]
    fn a_world_readable_or_truncated_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        fs::write(&path, [1u8; 32]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            load_or_create_master_key(&path)
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, [1u8; 5]).unwrap();
        assert!(
            load_or_create_master_key(&path)
                .unwrap_err()
                .to_string()
                .contains("exactly 32 bytes")
        );
    }

    #[test]
    fn tokens_are_random_and_stored_hashed() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("tako_") && a.len() == 45);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash(&a), token_hash(&a.clone()));
    }

    #[test]
    fn a_new_data_dir_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        prepare_data_dir(&data).unwrap();
        assert_eq!(
            fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    #[test]
    fn an_unwritable_data_dir_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"x").unwrap();
        let error = prepare_data_dir(&file.join("data"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("is not usable"), "{error}");
    }
}
