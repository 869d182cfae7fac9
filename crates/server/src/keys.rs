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

/// Why a node may not use the database: its master key is not the one the
/// database's secrets are sealed under (cluster.md §1).
#[derive(Debug, thiserror::Error)]
pub enum KeyCheckError {
    /// Another key sealed the database's check value.
    #[error(
        "this node's master key (id {node}) does not match the cluster's (id {cluster}): \
         copy secret.key from another node (the same master key must be on every node)"
    )]
    Mismatch {
        /// This node's current key id.
        node: String,
        /// The key id the database's check value is sealed under.
        cluster: String,
    },
    /// The check value is not a sealed value or does not open to its text.
    #[error(
        "the database's master key check value ({SETTING}) does not verify under this node's key \
         (id {node}): it was altered; restore the database from a backup or ask for help"
    )]
    Corrupt {
        /// This node's current key id.
        node: String,
    },
    /// The store could not be read or written.
    #[error("cannot check the master key against the database: {0}")]
    Store(#[from] StoreError),
}

/// The setting that holds the key check value: a fixed text sealed under
/// the cluster's master key (the AEAD tag is its MAC).
const SETTING: &str = "master_key_check";
/// The text sealed as the check value.
const CHECK_TEXT: &str = "tako master key check v1";

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

    /// Checks this node's master key against the database's key check value
    /// (recording it on the first start): a node holding another key must
    /// not start, or it would seal new secrets, and re-seal old ones, under
    /// a key the other nodes do not have. Call it before [`Self::settle`].
    pub async fn check_cluster(&self, store: &dyn Store) -> Result<(), KeyCheckError> {
        let node = self.keyring.current_id();
        let mine = self
            .keyring
            .seal(CHECK_TEXT)
            .map_err(|e| StoreError::unavailable("seal the master key check value", e))?;
        if store.set_setting_if_absent(SETTING, &mine).await? {
            return Ok(());
        }
        let stored = store.get_setting(SETTING).await?.unwrap_or_default();
        let Some(cluster) = tako_store::seal::sealed_key_id(&stored) else {
            return Err(KeyCheckError::Corrupt { node });
        };
        if cluster != node && self.keyring.key_ids().iter().any(|id| id == cluster) {
            // A rotation of this node's was interrupted between re-sealing
            // and replacing the key file: `settle` completes it, then
            // [`Self::record_check`] names the current key.
            return Ok(());
        }
        if cluster != node {
            return Err(KeyCheckError::Mismatch {
                node,
                cluster: cluster.to_owned(),
            });
        }
        match self.keyring.open(&stored) {
            Ok(text) if text == CHECK_TEXT => Ok(()),
            _ => Err(KeyCheckError::Corrupt { node }),
        }
    }

    /// Records the check value under the current key (after `settle` at
    /// start, and after a rotation).
    pub async fn record_check(&self, store: &dyn Store) -> Result<(), StoreError> {
        let value = self
            .keyring
            .seal(CHECK_TEXT)
            .map_err(|e| StoreError::unavailable("seal the master key check value", e))?;
        store.set_setting(SETTING, &value).await
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
        // The database now names the new key; a node still holding the old
        // one is refused at its next start rather than sealing under it.
        if let Err(error) = self.record_check(store).await {
            tracing::warn!(%error, "the master key check value was not updated; the next start records it");
        }
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
    async fn only_a_node_holding_the_clusters_key_passes_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let node_a = tempfile::tempdir().unwrap();
        let node_b = tempfile::tempdir().unwrap();
        let keys_a = MasterKeys::load(node_a.path(), &node_a.path().join("secret.key")).unwrap();
        let keys_b = MasterKeys::load(node_b.path(), &node_b.path().join("secret.key")).unwrap();
        let store = SqliteStore::open(dir.path().join("tako.db"))
            .unwrap()
            .with_keyring(Arc::clone(&keys_a.keyring));
        // The first node records the check value; it passes again.
        keys_a.check_cluster(&store).await.unwrap();
        keys_a.check_cluster(&store).await.unwrap();
        // Another key is refused, naming both ids and what to do.
        let refused = keys_b.check_cluster(&store).await.unwrap_err();
        let (a, b) = (keys_a.keyring.current_id(), keys_b.keyring.current_id());
        assert_eq!(
            refused.to_string(),
            format!(
                "this node's master key (id {b}) does not match the cluster's (id {a}): copy \
                 secret.key from another node (the same master key must be on every node)"
            )
        );
        // The same key copied to another node passes.
        let node_c = tempfile::tempdir().unwrap();
        fs::copy(
            node_a.path().join("secret.key"),
            node_c.path().join("secret.key"),
        )
        .unwrap();
        let keys_c = MasterKeys::load(node_c.path(), &node_c.path().join("secret.key")).unwrap();
        keys_c.check_cluster(&store).await.unwrap();
        // After a rotation on A, C (still on the old key) is refused.
        let rotation = keys_a.rotate(&store).await.unwrap();
        let refused = keys_c.check_cluster(&store).await.unwrap_err();
        assert!(
            matches!(&refused, KeyCheckError::Mismatch { node, cluster }
                if *node == rotation.old_key && *cluster == rotation.new_key),
            "{refused}"
        );
        keys_a.check_cluster(&store).await.unwrap();
        // An altered check value is reported, not trusted.
        store
            .set_setting(SETTING, &format!("v1:{}:AAAA", rotation.new_key))
            .await
            .unwrap();
        assert!(matches!(
            keys_a.check_cluster(&store).await.unwrap_err(),
            KeyCheckError::Corrupt { .. }
        ));
    }

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
