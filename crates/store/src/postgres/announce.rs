//! Telling every node that deliveries were stored or log lines appended: a
//! `NOTIFY` on `tako_wakeup` sent *after* the write has committed, in a
//! transaction of its own that does not wait for its WAL flush.
//!
//! Both used to be triggers inside the write's own transaction. PostgreSQL
//! serialises the commits of notifying transactions under one lock, held
//! from the commit's start to its end, WAL flush included, so the intake's
//! batches in flight on several connections, and every running
//! deployment's log appends, committed one after another instead of
//! sharing a flush (waits of 30 ms and more, seen with `log_lock_waits`).
//! Here the write commits without it, and the announcement takes the lock
//! only for a commit that flushes nothing.
//!
//! Announcements coalesce: what is asked for while one is being sent goes
//! out together in the next, each payload once. A lost one (the database
//! is down, the connection fails) costs latency only: every node also
//! polls.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use deadpool_postgres::Pool;
use tokio::sync::{Notify, watch};

use crate::model::DeploymentId;

/// What is to be announced, and the task's wake-up.
#[derive(Default)]
struct Wanted {
    payloads: Mutex<BTreeSet<String>>,
    asked: Notify,
}

/// Asks for announcements; the task sending them starts with the first.
pub(super) struct Announcer {
    wanted: Arc<Wanted>,
    /// What the task needs, taken when it starts.
    task: Mutex<Option<AnnounceTask>>,
    runtime: tokio::runtime::Handle,
}

struct AnnounceTask {
    pool: Pool,
    wanted: Arc<Wanted>,
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
        let wanted = Arc::new(Wanted::default());
        Announcer {
            task: Mutex::new(Some(AnnounceTask {
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
        self.announce("deliveries".to_owned());
    }

    /// Announces that log lines of `deployment` were stored.
    pub(super) fn log_appended(&self, deployment: DeploymentId) {
        self.announce(format!("log:{}", deployment.0));
    }

    fn announce(&self, payload: String) {
        self.wanted
            .payloads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(payload);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            self.runtime.spawn(task.run());
        }
        self.wanted.asked.notify_one();
    }
}

impl AnnounceTask {
    async fn run(mut self) {
        loop {
            tokio::select! {
                _ = self.stop.changed() => return,
                () = self.wanted.asked.notified() => {}
            }
            let payloads = std::mem::take(
                &mut *self
                    .wanted
                    .payloads
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            if payloads.is_empty() {
                continue;
            }
            let sent = match self.pool.get().await {
                Ok(client) => client
                    .batch_execute(&announcement(&payloads))
                    .await
                    .map_err(|e| super::ops::describe(&e)),
                Err(e) => Err(e.to_string()),
            };
            if let Err(reason) = sent {
                tracing::debug!(%reason,
                    "could not announce wake-ups to the other nodes; they poll");
            }
        }
    }
}

/// One transaction that notifies each payload, committed without waiting
/// for the flush: it wrote nothing worth keeping (what it announces is
/// already committed and flushed).
fn announcement(payloads: &BTreeSet<String>) -> String {
    let literals: Vec<String> = payloads
        .iter()
        .map(|payload| format!("'{}'", payload.replace('\'', "''")))
        .collect();
    format!(
        "BEGIN; SET LOCAL synchronous_commit = off; \
         SELECT pg_notify('tako_wakeup', payload) FROM unnest(ARRAY[{}]::TEXT[]) AS payload; \
         COMMIT",
        literals.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announcement_notifies_each_payload_once_quoted() {
        let payloads: BTreeSet<String> = ["log:7", "deliveries", "it's"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let sql = announcement(&payloads);
        assert!(
            sql.starts_with("BEGIN; SET LOCAL synchronous_commit = off;"),
            "{sql}"
        );
        assert!(
            sql.contains("unnest(ARRAY['deliveries', 'it''s', 'log:7']::TEXT[])"),
            "{sql}"
        );
        assert!(sql.ends_with("COMMIT"), "{sql}");
    }
}
