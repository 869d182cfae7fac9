//! The master key on disk and its rotation.
//!
//! The current key is the master key file (`<data_dir>/secret.key`, or
//! `master_key_file`). A rotation writes the new key to
//! `<data_dir>/keys/<id>.key` first, re-seals every secret under it in one
//! store transaction (writes keep flowing: they are serialised with the
//! re-seal on the store's writer), then replaces the master key file
//! atomically and deletes every other key file. A crash at any point leaves
//! a state the next start completes: it loads the master key and every file
//! under `keys/`, re-seals what is not under the master key, and deletes the
//! other files.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tako_store::{Keyring, Store, StoreError};

use crate::startup::{self, StartupError};

/// Why a rotation failed (nothing was lost: the old key still opens every
/// value until the new one holds them all).
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// A key file could not be written or removed.
    #[error("key file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Random bytes for the key.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The store could not re-seal.
    #[error("cannot re-seal the secrets: {0}")]
    Store(#[from] StoreError),
}

/// The keys of a running server: the keyring the store and the server seal
/// with, and where the key files live.
#[derive(Debug)]
pub struct MasterKeys {
    /// The keys.
    pub keyring: Arc<Keyring>,
    /// The web UI's session key, derived (HKDF) from the master key loaded
    /// at start: it encrypts session cookies and keys their CSRF tokens. A
    /// new master key signs every browser out at the next start.
    pub session_key: cookie::Key,
    key_file: PathBuf,
    keys_dir: PathBuf,
    rotating: tokio::sync::Mutex<()>,
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The retired key's id.
    pub old_key: String,
    /// The new current key's id.
    pub new_key: String,
    /// How many values were re-sealed.
    pub resealed: u64,
}

fn write_key(path: &Path, key: &[u8; 32]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(key)?;
    file.sync_all()
}

fn read_key(path: &Path) -> Result<[u8; 32], StartupError> {
    let fail = |message: String| StartupError::MasterKey {
        path: path.to_owned(),
        message,
    };
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| fail(e.to_string()))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| fail(format!("must hold exactly 32 bytes, holds {}", b.len())))
}

fn sync_dir(dir: &Path) {
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}

impl MasterKeys {
    /// Loads (creating on first start) the master key, and any key files a
    /// rotation left under `<data_dir>/keys/`.
    pub fn load(data_dir: &Path, key_file: &Path) -> Result<MasterKeys, StartupError> {
        let (key, _) = startup::load_or_create_master_key(key_file)?;
        let keyring = Keyring::new(&key);
        let keys_dir = data_dir.join("keys");
        if let Ok(entries) = fs::read_dir(&keys_dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "key") {
                    keyring.add(&read_key(&path)?);
                }
            }
        }
        Ok(MasterKeys {
            keyring: Arc::new(keyring),
            session_key: cookie::Key::derive_from(&key),
            key_file: key_file.to_owned(),
            keys_dir,
            rotating: tokio::sync::Mutex::new(()),
        })
    }

    /// Brings the store in line with the master key: re-seals whatever is
    /// not under it (values in the clear from an older Tako, values under a
    /// key an interrupted rotation left), then forgets every other key.
    pub async fn settle(&self, store: &dyn Store) -> Result<u64, RotateError> {
        let current = self.keyring.current_id();
        let resealed = store.reseal_secrets(&current).await?;
        self.forget_others(&current)?;
        Ok(resealed)
    }

    fn forget_others(&self, current: &str) -> Result<(), RotateError> {
        for id in self.keyring.key_ids() {
            if id != current {
                self.keyring.retire(&id);
            }
        }
        if let Ok(entries) = fs::read_dir(&self.keys_dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                fs::remove_file(&path).map_err(|source| RotateError::File { path, source })?;
            }
        }
        sync_dir(&self.keys_dir);
        Ok(())
    }

    /// A new master key: every secret re-sealed under it, the old key
    /// deleted. One rotation at a time; the server keeps serving.
    pub async fn rotate(&self, store: &dyn Store) -> Result<Rotation, RotateError> {
        let _one_at_a_time = self.rotating.lock().await;
        let old_key = self.keyring.current_id();
        let mut key = [0u8; 32];
        startup::random_bytes(&mut key)?;
        let new_key = tako_store::seal::key_id(&key);
        let file_error = |path: &Path| {
            let path = path.to_owned();
            move |source| RotateError::File { path, source }
        };
        fs::create_dir_all(&self.keys_dir).map_err(file_error(&self.keys_dir))?;
        let staged = self.keys_dir.join(format!("{new_key}.key"));
        write_key(&staged, &key).map_err(file_error(&staged))?;
        sync_dir(&self.keys_dir);
        self.keyring.add(&key);
        let resealed = match store.reseal_secrets(&new_key).await {
            Ok(count) => count,
            Err(error) => {
                self.keyring.retire(&new_key);
                let _ = fs::remove_file(&staged);
                return Err(error.into());
            }
        };
        let temporary = self.key_file.with_extension("key.new");
        write_key(&temporary, &key).map_err(file_error(&temporary))?;
        fs::rename(&temporary, &self.key_file).map_err(file_error(&self.key_file))?;
        if let Some(parent) = self.key_file.parent() {
            sync_dir(parent);
        }
        self.forget_others(&new_key)?;
        tracing::info!(old_key = %old_key, new_key = %new_key, resealed, "master key rotated");
        Ok(Rotation {
            old_key,
            new_key,
            resealed,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tako_store::{NewProject, SqliteStore, WebhookSecret};

    #[tokio::test]
    async fn rotation_replaces_the_key_file_and_keeps_secrets_usable() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("secret.key");
        let keys = MasterKeys::load(dir.path(), &key_file).unwrap();
        let old = fs::read(&key_file).unwrap();
        let store = SqliteStore::open(dir.path().join("tako.db"))
            .unwrap()
            .with_keyring(Arc::clone(&keys.keyring));
        store
            .create_project(NewProject {
                name: "web".into(),
                repository_url: "https://github.com/acme/web".into(),
                webhook_secret: Some(WebhookSecret("hook secret".into())),
                repository_token: None,
            })
            .await
            .unwrap();
        let rotation = keys.rotate(&store).await.unwrap();
        assert_ne!(rotation.old_key, rotation.new_key);
        assert_eq!(rotation.resealed, 1);
        assert_ne!(fs::read(&key_file).unwrap(), old);
        assert_eq!(keys.keyring.key_ids(), vec![rotation.new_key.clone()]);
        assert_eq!(fs::read_dir(dir.path().join("keys")).unwrap().count(), 0);
        drop(store);

        // A restart with the new file opens everything.
        let again = MasterKeys::load(dir.path(), &key_file).unwrap();
        assert_eq!(again.keyring.current_id(), rotation.new_key);
        let store = SqliteStore::open(dir.path().join("tako.db"))
            .unwrap()
            .with_keyring(Arc::clone(&again.keyring));
        assert_eq!(again.settle(&store).await.unwrap(), 0);
        let project = store.find_project_by_name("web").await.unwrap().unwrap();
        assert_eq!(project.webhook_secret.unwrap().0, "hook secret");
    }
}
