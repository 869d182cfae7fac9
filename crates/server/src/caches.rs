//! What this node caches in memory, kept in step with the database
//! (cluster §3): the webhook secret index (the intake checks signatures
//! against it without asking the store). Projects, policies and tokens are
//! otherwise read from the store on each use. The cache carries the
//! generation it was loaded at; the store's generation moves with every
//! change to projects, policies and tokens, through any node. It is read
//! when a wake-up says it moved and every [`POLL`] besides, so a change
//! made through another node is seen here within a second even when the
//! wake-up is lost.

use std::sync::Arc;
use std::time::Duration;

use tako_store::{Store, StoreError};
use tokio::sync::Notify;

use crate::intake::WebhookSecrets;

/// How often the generation is read without a wake-up.
pub const POLL: Duration = Duration::from_millis(500);

/// The caches of one node.
pub struct Caches {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The intake's secret index.
    pub secrets: WebhookSecrets,
    /// Woken when the generation may have moved.
    pub wake: Arc<Notify>,
    /// The generation the caches were loaded at.
    pub loaded: i64,
}

impl Caches {
    /// Keeps the caches in step until the task is dropped.
    pub async fn run(mut self) {
        loop {
            let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
            if let Err(error) = self.refresh().await {
                tracing::warn!(%error, "cannot read the cache generation; the caches are kept until the store answers");
            }
        }
    }

    /// Reloads the caches when the store's generation moved; whether it did.
    pub async fn refresh(&mut self) -> Result<bool, StoreError> {
        let generation = self.store.cache_generation().await?;
        if generation == self.loaded {
            return Ok(false);
        }
        let projects = self.store.list_projects().await?;
        self.secrets.replace(
            projects
                .into_iter()
                .filter_map(|p| Some((p.repository_url, p.webhook_secret?.0))),
        );
        tracing::debug!(from = self.loaded, to = generation, "caches reloaded");
        self.loaded = generation;
        Ok(true)
    }
}
