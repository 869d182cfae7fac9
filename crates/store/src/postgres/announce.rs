//! Telling every node that deliveries were stored: a `NOTIFY` on
//! `tako_wakeup` sent *after* the intake's batch has committed, in a
//! transaction of its own that does not wait for its WAL flush.
//!
//! It used to be a trigger inside the batch's own transaction. PostgreSQL
//! serialises the commits of notifying transactions under one lock, held
//! from the commit's start to its end, WAL flush included, so the intake's
//! batches in flight on several connections committed one after another
//! instead of sharing a flush (waits of 30 ms and more, seen with
//! `log_lock_waits`). Here the batch commits without it, and the
//! announcement takes the lock only for a commit that flushes nothing.
//!
//! Announcements coalesce: while one is being sent, any number of batches
//! ask for one more, not one each. A lost one (the database is down, the
//! connection fails) costs latency only: every node also polls.

use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{Notify, watch};

/// The announcement: its own transaction, committed without waiting for
/// the flush (it wrote nothing worth keeping; the deliveries it announces
/// are already committed and flushed).
const ANNOUNCE: &str = "BEGIN; SET LOCAL synchronous_commit = off; \
     SELECT pg_notify('tako_wakeup', 'deliveries'); COMMIT";

/// Asks for announcements; the task sending them starts with the first.
pub(super) struct Announcer {
    wanted: Arc<Notify>,
    /// What the task needs, taken when it starts.
    task: std::sync::Mutex<Option<AnnounceTask>>,
    runtime: tokio::runtime::Handle,
}

struct AnnounceTask {
    pool: Pool,
    wanted: Arc<Notify>,
    /// Ends the task when the store is dropped.
    stop: watch::Receiver<()>,
}

impl Announcer {
    /// An announcer for the store with this pool, on `runtime`, until
    /// `stop`'s sender is dropped.
    pub(super) fn new(
        pool: Pool,
        stop: watch::Receiver<()>,
        runtime: tokio::runtime::Handle,
    ) -> Announcer {
        let wanted = Arc::new(Notify::new());
        Announcer {
            task: std::sync::Mutex::new(Some(AnnounceTask {
                pool,
                wanted: Arc::clone(&wanted),
                stop,
            })),
            wanted,
            runtime,
        }
    }

    /// Announces that deliveries were stored (soon, not before returning).
    pub(super) fn deliveries_stored(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            self.runtime.spawn(task.run());
        }
        self.wanted.notify_one();
    }
}

impl AnnounceTask {
    async fn run(mut self) {
        loop {
            tokio::select! {
                _ = self.stop.changed() => return,
                () = self.wanted.notified() => {}
            }
            let sent = match self.pool.get().await {
                Ok(client) => client
                    .batch_execute(ANNOUNCE)
                    .await
                    .map_err(|e| super::ops::describe(&e)),
                Err(e) => Err(e.to_string()),
            };
            if let Err(reason) = sent {
                tracing::debug!(%reason,
                    "could not announce stored deliveries to the other nodes; they poll");
            }
        }
    }
}
