//! [`LeaseWatch`]: while a deployment runs, renews its lease, follows its
//! cancel flag and stores its buffered log, on a task of its own. The watch
//! is a value: dropping it (at the end, or when the deployment's task
//! unwinds from a panic) stops the task, so a lease is never renewed for a
//! deployment nobody runs.

use std::sync::Arc;
use std::time::Duration;

use tako_store::{DeploymentId, NodeId, Store, StoreError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::sink::{StoreSink, store_progress};

/// How often the lease is renewed and the cancel flag read (the shortest
/// `deployment_lease` allowed, 2 s, leaves four renewals per lease).
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How often buffered log lines are written.
const LOG_FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// The running watcher of one deployment; stopped when dropped.
pub(super) struct LeaseWatch {
    done: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl LeaseWatch {
    /// Starts watching deployment `id`, held by `node` for `lease` at a
    /// time: `cancel` is cancelled when someone asks for the deployment to
    /// stop, or when another node has swept it after its lease ran out.
    pub(super) fn start(
        store: Arc<dyn Store>,
        node: NodeId,
        lease: Duration,
        id: DeploymentId,
        sink: Arc<StoreSink>,
        cancel: CancellationToken,
    ) -> LeaseWatch {
        let done = CancellationToken::new();
        let task = tokio::spawn(watch(store, node, lease, id, sink, cancel, done.clone()));
        LeaseWatch {
            done,
            task: Some(task),
        }
    }

    /// Stops the watcher and waits for it to finish what it was doing.
    pub(super) async fn stop(mut self) {
        self.done.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Whether its task is still running (for tests).
    #[cfg(test)]
    fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|task| !task.is_finished())
    }
}

impl Drop for LeaseWatch {
    fn drop(&mut self) {
        self.done.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Renews the lease, follows the cancel flag and writes buffered log lines
/// until `done`.
async fn watch(
    store: Arc<dyn Store>,
    node: NodeId,
    lease: Duration,
    id: DeploymentId,
    sink: Arc<StoreSink>,
    cancel: CancellationToken,
    done: CancellationToken,
) {
    let mut flush = tokio::time::interval(LOG_FLUSH_INTERVAL);
    let mut renew = tokio::time::interval(WATCH_INTERVAL);
    // A cancel requested through any node wakes this at once; the flag is
    // also read with every renewal.
    let mut wakeups = store.wakeups();
    loop {
        tokio::select! {
            () = done.cancelled() => return,
            _ = flush.tick() => store_progress(&*store, id, &sink).await,
            () = wakeups.cancel_of(id) => follow_cancel(&*store, id, &sink, &cancel).await,
            _ = renew.tick() => {
                match store.renew_deployment_lease(id, &node, lease).await {
                    Ok(_) => {}
                    // Another node swept it (our lease ran out while we
                    // could not renew it): it is no longer ours to run.
                    Err(StoreError::Conflict { .. }) if !cancel.is_cancelled() => {
                        tracing::warn!(deployment = %id, "the lease ran out and another node interrupted the deployment: stopping it here");
                        sink.system_line("This node lost the deployment's lease and it was interrupted: stopping the running step here");
                        cancel.cancel();
                    }
                    Err(error) => {
                        tracing::warn!(deployment = %id, %error, "cannot renew the lease");
                    }
                }
                follow_cancel(&*store, id, &sink, &cancel).await;
            }
        }
    }
}

/// Cancels the run when a cancel was requested for deployment `id`.
async fn follow_cancel(
    store: &dyn Store,
    id: DeploymentId,
    sink: &StoreSink,
    cancel: &CancellationToken,
) {
    if let Ok(deployment) = store.get_deployment(id).await
        && deployment.cancel_requested
        && !cancel.is_cancelled()
    {
        sink.system_line(
            "Cancel requested: stopping the running step; only Always steps run from here",
        );
        cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic in the deployment's task drops the watch: its renewals stop.
    #[tokio::test]
    async fn a_panicking_deployment_stops_its_watcher() {
        let store: Arc<dyn Store> = Arc::new(tako_store::SqliteStore::in_memory().unwrap());
        let watch = LeaseWatch::start(
            store,
            NodeId("node".to_owned()),
            Duration::from_secs(30),
            DeploymentId(1),
            Arc::new(StoreSink::default()),
            CancellationToken::new(),
        );
        assert!(watch.is_running());
        let done = watch.done.clone();
        let panicked = tokio::spawn(async move {
            let _held = watch;
            panic!("the engine broke");
        })
        .await;
        assert!(panicked.is_err_and(|e| e.is_panic()));
        assert!(done.is_cancelled(), "the watcher was told to stop");
    }
}
