//! The master key on disk, its rotation, and following the cluster's key.
//!
//! A node loads the master key file (`<data_dir>/secret.key`, or
//! `master_key_file`) and every key file under `<data_dir>/keys/`. It seals
//! under the cluster's key: the one the database's check value names
//! (cluster.md §1), which must be among the keys it holds.
//!
//! Two rotations:
//!
//! - **To an added key** (several nodes, all running): the operator puts
//!   the same new key under `keys/` on every node and restarts them one at
//!   a time; a rotation on any node re-seals every secret under it and
//!   records it as the cluster's key; every other node follows within a
//!   poll ([`MasterKeys::follow`]: it seals under the new key from then on
//!   and re-seals what it sealed under the old one meanwhile). The operator
//!   then replaces each node's master key file with the new key.
//! - **To a fresh key** (one node): the new key is written to
//!   `keys/<id>.key` first, every secret is re-sealed under it in one store
//!   transaction (writes keep flowing: they are serialised with the
//!   re-seal), then the master key file is replaced atomically and every
//!   other key file deleted. A crash at any point leaves a state the next
//!   start completes: it adopts the key the check value names when it holds
//!   it, and re-seals what is not under its current key.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

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
    /// A fresh key was asked for on a database other nodes may share: they
    /// would not hold it.
    #[error(
        "this node's database (PostgreSQL) may be shared with other nodes, and a fresh key would \
         be held by this node only: put the new key under {dir} on every node, restart them one \
         at a time, then rotate again (manual: Several nodes, Rotating the master key)"
    )]
    NoAddedKey {
        /// The directory.
        dir: String,
    },
    /// More than one key was added under `keys/`: which one to rotate to
    /// is not guessed.
    #[error(
        "several keys were added under {dir} (ids {ids}): leave only the new key there on \
         every node, restart the nodes one at a time, then rotate again"
    )]
    SeveralAdded {
        /// The directory.
        dir: String,
        /// The added keys' ids.
        ids: String,
    },
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
    /// Held by a rotation, and by each look at the cluster's key: a node
    /// never follows a check value its own rotation is about to replace.
    rotating: tokio::sync::Mutex<()>,
    /// The keys added under `keys/` that are not (yet) the cluster's: a
    /// rotation goes to the one there is.
    added: Mutex<Vec<String>>,
    /// The cluster key this node was last told it does not hold (logged
    /// once, not at every poll).
    missing: Mutex<Option<String>>,
    /// The database may be shared with other nodes (PostgreSQL): a
    /// rotation needs a key added under `keys/` (on every node).
    shared: bool,
}

/// How often a node looks at the cluster's key (a rotation through another
/// node is followed within this).
pub const FOLLOW_POLL: Duration = Duration::from_millis(500);

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
    /// Loads (creating on first start) the master key, and every key file
    /// under `<data_dir>/keys/` (added for a rotation, or left by one).
    pub fn load(data_dir: &Path, key_file: &Path) -> Result<MasterKeys, StartupError> {
        let (key, _) = startup::load_or_create_master_key(key_file)?;
        let keyring = Keyring::new(&key);
        let current = keyring.current_id();
        let keys_dir = data_dir.join("keys");
        let mut added = Vec::new();
        if let Ok(entries) = fs::read_dir(&keys_dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "key") {
                    let id = keyring.add(&read_key(&path)?);
                    if id != current && !added.contains(&id) {
                        added.push(id);
                    }
                }
            }
        }
        added.sort();
        Ok(MasterKeys {
            keyring: Arc::new(keyring),
            session_key: cookie::Key::derive_from(&key),
            key_file: key_file.to_owned(),
            keys_dir,
            rotating: tokio::sync::Mutex::new(()),
            added: Mutex::new(added),
            missing: Mutex::new(None),
            shared: false,
        })
    }

    /// Marks the database as one other nodes may share (PostgreSQL): a
    /// rotation then goes only to a key added under `keys/`, never to a
    /// fresh key the other nodes would not hold.
    #[must_use]
    pub fn shared_by_nodes(mut self, shared: bool) -> MasterKeys {
        self.shared = shared;
        self
    }

    /// The keys added under `keys/` that are not the cluster's key.
    pub fn added_keys(&self) -> Vec<String> {
        self.added
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn no_longer_added(&self, id: &str) {
        self.added
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|added| added != id);
    }

    /// Brings the store in line with the current key (the cluster's, after
    /// [`Self::check_cluster`]): re-seals whatever is not under it (values
    /// in the clear from an older Tako, values under a key an interrupted
    /// rotation left). The other keys stay held: an added key is waiting
    /// for a rotation, an old one may still open what another node sealed.
    pub async fn settle(&self, store: &dyn Store) -> Result<u64, RotateError> {
        let current = self.keyring.current_id();
        Ok(store.reseal_secrets(&current).await?)
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
            // The cluster rotated to a key this node holds under `keys/`
            // (the two-step rotation, or this node's own rotation
            // interrupted before it replaced the key file): it becomes
            // current here too, and `settle` re-seals under it.
            return match self.keyring.open(&stored) {
                Ok(text) if text == CHECK_TEXT => {
                    let cluster = cluster.to_owned();
                    self.keyring.set_current(&cluster);
                    self.no_longer_added(&cluster);
                    tracing::info!(key = %cluster, "sealing under the cluster's master key, held under keys/");
                    Ok(())
                }
                _ => Err(KeyCheckError::Corrupt { node }),
            };
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

    /// A new master key, every secret re-sealed under it; one rotation at
    /// a time, the server keeps serving. With a key added under `keys/`
    /// (on every node, for a cluster), that key; otherwise a fresh one
    /// (one node only: the others would not hold it), and the old key is
    /// deleted.
    pub async fn rotate(&self, store: &dyn Store) -> Result<Rotation, RotateError> {
        let _one_at_a_time = self.rotating.lock().await;
        match self.added_keys().as_slice() {
            [] if self.shared => Err(RotateError::NoAddedKey {
                dir: self.keys_dir.display().to_string(),
            }),
            [] => self.rotate_fresh(store).await,
            [added] => self.rotate_to_added(store, added).await,
            several => Err(RotateError::SeveralAdded {
                dir: self.keys_dir.display().to_string(),
                ids: several.join(", "),
            }),
        }
    }

    /// The two-step rotation's second step: every secret re-sealed under
    /// the added key, which the check value then names, so every node
    /// follows. The key files stay as they are: the operator replaces each
    /// node's master key file with the new key afterwards.
    async fn rotate_to_added(
        &self,
        store: &dyn Store,
        added: &str,
    ) -> Result<Rotation, RotateError> {
        let old_key = self.keyring.current_id();
        let resealed = store.reseal_secrets(added).await?;
        self.keyring.set_current(added);
        // Until this is written the other nodes go on sealing under the old
        // key; a retry finds nothing to re-seal and writes it.
        self.record_check(store).await?;
        self.no_longer_added(added);
        tracing::info!(old_key = %old_key, new_key = %added, resealed,
            "master key rotated to the key added under keys/; every node follows");
        Ok(Rotation {
            old_key,
            new_key: added.to_owned(),
            resealed,
        })
    }

    async fn rotate_fresh(&self, store: &dyn Store) -> Result<Rotation, RotateError> {
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

impl MasterKeys {
    /// Follows the cluster's key: when the check value names a key this
    /// node holds but does not seal under (a rotation through another
    /// node), it becomes current here and what this node sealed under the
    /// old key meanwhile is re-sealed. A key this node does not hold is
    /// logged (once): its secrets sealed since cannot be opened here.
    /// Returns the key followed, if any.
    pub async fn follow_cluster(&self, store: &dyn Store) -> Result<Option<String>, RotateError> {
        let _not_during_a_rotation = self.rotating.lock().await;
        let Some(stored) = store.get_setting(SETTING).await? else {
            return Ok(None);
        };
        // An altered value is reported at the next start, not followed.
        let Some(cluster) = tako_store::seal::sealed_key_id(&stored).map(str::to_owned) else {
            return Ok(None);
        };
        let current = self.keyring.current_id();
        if cluster == current {
            return Ok(None);
        }
        let held = self.keyring.key_ids().contains(&cluster);
        if held && !matches!(self.keyring.open(&stored), Ok(text) if text == CHECK_TEXT) {
            tracing::warn!(cluster_key = %cluster,
                "the database's master key check value does not verify: not followed");
            return Ok(None);
        }
        if !held {
            let mut missing = self.missing.lock().unwrap_or_else(PoisonError::into_inner);
            if missing.as_deref() != Some(cluster.as_str()) {
                tracing::error!(node_key = %current, cluster_key = %cluster,
                    "the cluster's master key is not on this node: secrets sealed under it cannot \
                     be opened here; put the key under keys/ (or copy secret.key from another node) \
                     and restart this node");
                *missing = Some(cluster);
            }
            return Ok(None);
        }
        let resealed = store.reseal_secrets(&cluster).await?;
        // The store's keyring is this one; said again, not assumed.
        self.keyring.set_current(&cluster);
        self.no_longer_added(&cluster);
        tracing::info!(old_key = %current, new_key = %cluster, resealed,
            "the cluster's master key changed (rotated through another node): sealing under it now");
        Ok(Some(cluster))
    }

    /// [`Self::follow_cluster`] every [`FOLLOW_POLL`], until the task is
    /// dropped.
    pub async fn follow(self: Arc<Self>, store: Arc<dyn Store>) {
        loop {
            tokio::time::sleep(FOLLOW_POLL).await;
            if let Err(error) = self.follow_cluster(store.as_ref()).await {
                tracing::warn!(%error, "cannot read the cluster's master key; looking again soon");
            }
        }
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
    async fn a_key_added_on_every_node_is_rotated_to_and_followed_by_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let (node_a, node_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let keys_a = MasterKeys::load(node_a.path(), &node_a.path().join("secret.key")).unwrap();
        fs::copy(
            node_a.path().join("secret.key"),
            node_b.path().join("secret.key"),
        )
        .unwrap();
        // The new key, added under keys/ on both nodes before they (re)start.
        let new = [7u8; 32];
        let new_id = tako_store::seal::key_id(&new);
        for node in [&node_a, &node_b] {
            fs::create_dir_all(node.path().join("keys")).unwrap();
            write_key(&node.path().join("keys/next.key"), &new).unwrap();
        }
        let keys_a_again =
            MasterKeys::load(node_a.path(), &node_a.path().join("secret.key")).unwrap();
        let keys_b = MasterKeys::load(node_b.path(), &node_b.path().join("secret.key")).unwrap();
        let old_id = keys_a.keyring.current_id();
        drop(keys_a);
        let keys_a = keys_a_again;
        assert_eq!(keys_a.added_keys(), vec![new_id.clone()]);
        let store = SqliteStore::open(dir.path().join("tako.db"))
            .unwrap()
            .with_keyring(Arc::clone(&keys_a.keyring));
        keys_a.check_cluster(&store).await.unwrap();
        keys_a.settle(&store).await.unwrap();
        let store_b = SqliteStore::open(dir.path().join("tako.db"))
            .unwrap()
            .with_keyring(Arc::clone(&keys_b.keyring));
        keys_b.check_cluster(&store_b).await.unwrap();
        // A start keeps the added key (it is waiting for the rotation).
        assert!(node_a.path().join("keys/next.key").exists());
        assert_eq!(keys_a.keyring.current_id(), old_id);

        let rotation = keys_a.rotate(&store).await.unwrap();
        assert_eq!(
            (rotation.old_key.as_str(), rotation.new_key.as_str()),
            (old_id.as_str(), new_id.as_str())
        );
        assert_eq!(keys_a.keyring.current_id(), new_id);
        assert!(keys_a.added_keys().is_empty());
        // B follows (and a second look changes nothing).
        assert_eq!(
            keys_b.follow_cluster(&store_b).await.unwrap(),
            Some(new_id.clone())
        );
        assert_eq!(keys_b.keyring.current_id(), new_id);
        assert_eq!(keys_b.follow_cluster(&store_b).await.unwrap(), None);
        assert!(keys_b.keyring.seal("x").unwrap().contains(&new_id));

        // The old key removed: a node with the new key only starts; one
        // with the old key only is refused, naming both.
        let node_c = tempfile::tempdir().unwrap();
        write_key(&node_c.path().join("secret.key"), &new).unwrap();
        let keys_c = MasterKeys::load(node_c.path(), &node_c.path().join("secret.key")).unwrap();
        keys_c.check_cluster(&store).await.unwrap();
        let node_d = tempfile::tempdir().unwrap();
        fs::copy(
            node_b.path().join("secret.key"),
            node_d.path().join("secret.key"),
        )
        .unwrap();
        let keys_d = MasterKeys::load(node_d.path(), &node_d.path().join("secret.key")).unwrap();
        assert!(matches!(
            keys_d.check_cluster(&store).await.unwrap_err(),
            KeyCheckError::Mismatch { node, cluster } if node == old_id && cluster == new_id
        ));

        // On a shared database, no fresh key: only an added one.
        let node_f = tempfile::tempdir().unwrap();
        let keys_f = MasterKeys::load(node_f.path(), &node_f.path().join("secret.key"))
            .unwrap()
            .shared_by_nodes(true);
        let refused = keys_f.rotate(&store).await.unwrap_err();
        assert!(
            matches!(refused, RotateError::NoAddedKey { .. })
                && refused.to_string().contains("put the new key under"),
            "{refused}"
        );
        assert!(!node_f.path().join("keys").exists(), "nothing written");

        // Two added keys: which one is not guessed.
        let node_e = tempfile::tempdir().unwrap();
        fs::create_dir_all(node_e.path().join("keys")).unwrap();
        write_key(&node_e.path().join("keys/one.key"), &[1u8; 32]).unwrap();
        write_key(&node_e.path().join("keys/two.key"), &[2u8; 32]).unwrap();
        let keys_e = MasterKeys::load(node_e.path(), &node_e.path().join("secret.key")).unwrap();
        assert!(matches!(
            keys_e.rotate(&store).await.unwrap_err(),
            RotateError::SeveralAdded { .. }
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
