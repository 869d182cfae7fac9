//! The lease sweep every node runs: every `lease_sweep`, running
//! deployments whose lease ran out (their node died, hung or lost the
//! database for longer than `deployment_lease`) are marked `interrupted`,
//! with the node that held them and when it was last heard of, and the
//! scheduler is woken so their environments' queues move on. The forge
//! hears of each as of any deployment that ended: its commit status
//! becomes a failure, sent by the sweeping node.
//!
//! Only expired leases are swept: a node renews each of its running
//! deployments twice a second, so its live work is never taken from it
//! while it can reach the database (the store skips rows being renewed).

use std::sync::Arc;
use std::time::Duration;

use tako_store::{InterruptScope, LogLevel, LogLineRecord, LogStream, Store};
use tokio::sync::Notify;

/// What the sweep needs.
pub struct LeaseSweep {
    /// The store.
    pub store: Arc<dyn Store>,
    /// How long a lease lasts (`deployment_lease`).
    pub lease: Duration,
    /// How often to sweep (`lease_sweep`).
    pub period: Duration,
    /// Woken when something was swept (the scheduler's wake-up).
    pub wake: Arc<Notify>,
    /// Reports a swept deployment's end to its forge.
    pub statuses: crate::statuses::StatusReporter,
}

impl LeaseSweep {
    /// Sweeps every `period` until the task is dropped.
    pub async fn run(self) {
        let mut every = tokio::time::interval(self.period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(error) = self.sweep_once().await {
                tracing::warn!(%error, "cannot sweep expired deployment leases");
            }
        }
    }

    /// One sweep: how many deployments it interrupted.
    pub async fn sweep_once(&self) -> Result<usize, tako_store::StoreError> {
        let swept = self
            .store
            .interrupt_running(InterruptScope::ExpiredLeases { lease: self.lease })
            .await?;
        for id in &swept {
            let deployment = self.store.get_deployment(*id).await.ok();
            if let Some(deployment) = &deployment {
                // The dead node reported `pending`; its end is ours to report.
                self.statuses
                    .start(deployment)
                    .report(tako_forges::status::Phase::Failed);
            }
            let reason = deployment
                .and_then(|d| d.error)
                .unwrap_or_else(|| "its node stopped renewing its lease".to_owned());
            tracing::warn!(deployment = %id, %reason, "interrupted a deployment whose lease ran out");
            let line = LogLineRecord {
                timestamp: chrono::Utc::now(),
                step: None,
                stream: LogStream::Tako,
                level: LogLevel::Error,
                text: format!("Interrupted by another node's sweep: {reason}"),
            };
            if let Err(error) = self.store.append_log(*id, &[line]).await {
                tracing::warn!(deployment = %id, %error, "cannot log the interruption");
            }
        }
        if !swept.is_empty() {
            self.wake.notify_one();
        }
        Ok(swept.len())
    }
}
