//! The scheduler: claims queued deployments and runs them through the step
//! engine.
//!
//! The store's claim enforces the rules: deployments of one project to one
//! environment run strictly one at a time in arrival order, others
//! concurrently up to `max_concurrent_deployments`. Each deployment runs in
//! its own working directory holding a checkout of the release commit, made
//! from the cached mirror; the directory is kept for `workdir_retention`
//! after the end, then removed. While a deployment runs, its lease is renewed
//! and its cancel flag watched; its task log is stored in batches.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tako_core::log::LogLine;
use tako_core::step::{StepReport, StepState};
use tako_core::system::DeploymentFacts;
use tako_exec::engine::{DeploymentOutcome, DeploymentPlan, RunSettings, run_deployment};
use tako_exec::sink::LogSink;
use tako_git::Mirrors;
use tako_store::{
    Deployment, DeploymentState, LogLineRecord, NodeId, StepRecord, StepRunState, Store,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::frozen::FrozenVariables;

/// How long a running deployment is ours without renewal.
const DEPLOYMENT_LEASE: Duration = Duration::from_secs(60);
/// How often the lease is renewed and the cancel flag read.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How often buffered log lines are written.
const LOG_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// At most this many lines per stored batch.
const LOG_BATCH: usize = 2_000;

/// What the scheduler needs.
#[derive(Clone)]
pub struct Scheduler {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The git mirrors.
    pub mirrors: Mirrors,
    /// This node's name.
    pub node: NodeId,
    /// Where working directories go (`<data_dir>/work`).
    pub work_root: PathBuf,
    /// The most deployments running at once.
    pub max_running: u32,
    /// How long a finished deployment's directory is kept.
    pub retention: Duration,
    /// The public base URL for links.
    pub public_url: String,
    /// Woken when a deployment is queued (or one ends, freeing a slot).
    pub wake: Arc<Notify>,
    /// Opens the release's sensitive values (only those in scope).
    pub keyring: Arc<tako_store::Keyring>,
}

impl Scheduler {
    /// Claims and runs deployments until the task is dropped.
    ///
    /// First it tidies up after this node's previous life: scripts still
    /// running from deployments it was running when it died are killed, and
    /// working directories older than the retention are removed.
    pub async fn run(self) {
        let root = self.work_root.clone();
        let retention = self.retention;
        let tidied = tokio::task::spawn_blocking(move || tidy_work_root(&root, retention)).await;
        if let Ok((killed, removed)) = tidied
            && (killed > 0 || removed > 0)
        {
            tracing::warn!(killed, removed, "cleaned up after the previous run");
        }
        loop {
            match self
                .store
                .claim_next_deployment(&self.node, DEPLOYMENT_LEASE, self.max_running)
                .await
            {
                Ok(Some(deployment)) => {
                    let this = self.clone();
                    tokio::spawn(async move {
                        let id = deployment.id;
                        this.run_one(deployment).await;
                        tracing::info!(deployment = %id, "deployment ended");
                        this.wake.notify_one();
                    });
                }
                Ok(None) => {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), self.wake.notified()).await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot claim deployments");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn run_one(&self, deployment: Deployment) {
        let sink = Arc::new(StoreSink::default());
        let outcome = self.execute(&deployment, &sink).await;
        let (state, error) = match outcome {
            Ok((state, error)) => (state, error),
            Err(error) => {
                sink.system_line(&format!("Deployment could not start: {error}"));
                (DeploymentState::Failed, Some(error))
            }
        };
        store_progress(&*self.store, deployment.id, &sink).await;
        if let Err(error) = self
            .store
            .finish_deployment(deployment.id, state, error)
            .await
        {
            tracing::error!(deployment = %deployment.id, %error, "cannot record the end of a deployment");
        }
        let dir = self.work_root.join(deployment.id.to_string());
        let retention = self.retention;
        tokio::spawn(async move {
            tokio::time::sleep(retention).await;
            let _ = tokio::fs::remove_dir_all(&dir).await;
        });
    }

    /// Prepares and runs one deployment; `Err` means it could not start.
    async fn execute(
        &self,
        deployment: &Deployment,
        sink: &Arc<StoreSink>,
    ) -> Result<(DeploymentState, Option<String>), String> {
        let store = &*self.store;
        let release = store
            .get_release(deployment.release)
            .await
            .map_err(|e| e.to_string())?;
        let project = store
            .get_project(deployment.project)
            .await
            .map_err(|e| e.to_string())?;
        crate::policy::check(
            store,
            deployment.project,
            &deployment.environment,
            release.branch.as_deref(),
        )
        .await
        .map_err(|reason| format!("refused by the environment policy: {reason}"))?;
        let takofile = tako_takofile::parse("takofile", &release.takofile)
            .map_err(|d| format!("the release's takofile is invalid: {d}"))?;
        let steps = takofile.steps.clone().unwrap_or_default();
        let frozen = FrozenVariables::from_json(&release.variables)
            .map_err(|e| format!("the release's variables are unreadable: {e}"))?;

        let dir = self.work_root.join(deployment.id.to_string());
        let working_dir = dir.join("checkout");
        let scratch_dir = dir.join("scratch");
        if dir.exists() {
            tokio::fs::remove_dir_all(&dir)
                .await
                .map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
        }
        tokio::fs::create_dir_all(&scratch_dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", scratch_dir.display()))?;
        let credentials = crate::router::credentials_of(&project);
        let mirror = self
            .mirrors
            .fetch(
                &project.repository_url,
                credentials.as_ref(),
                Some(&release.commit),
            )
            .await
            .map_err(|e| format!("cannot fetch {}: {e}", project.repository_url))?;
        mirror
            .checkout(&release.commit, &working_dir)
            .await
            .map_err(|e| format!("cannot check out {}: {e}", release.commit))?;

        let mut variables = tako_core::variables::from_takofile(&takofile);
        variables.extend(
            frozen
                .values_for(&deployment.environment, &self.keyring)
                .map_err(|e| format!("cannot open the release's sensitive variables: {e}"))?,
        );
        let facts = DeploymentFacts {
            project: project.name.clone(),
            environment: deployment.environment.clone(),
            release_number: release.number.clone(),
            release_notes: release.notes.clone(),
            release_id: format!("releases-{}", release.id),
            deployment_id: format!("deployments-{}", deployment.id),
            build: release
                .build_number
                .and_then(|b| u64::try_from(b).ok())
                .unwrap_or_default(),
            git_repository: project.repository_url.clone(),
            git_branch: release.branch.clone().unwrap_or_default(),
            git_commit: release.commit.clone(),
            git_pusher: release.pusher.clone().unwrap_or_default(),
            web_base_url: self.public_url.clone(),
            manifest: match &takofile.manifest {
                Some(path) => Some(read_manifest(&working_dir, path)?),
                None => None,
            },
        };
        for (index, step) in steps.iter().enumerate() {
            let record = StepRecord {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                name: step.name.clone(),
                state: StepRunState::Pending,
                reason: None,
                started_at: None,
                duration: None,
            };
            store
                .update_step(deployment.id, record)
                .await
                .map_err(|e| e.to_string())?;
        }
        let plan = DeploymentPlan {
            steps,
            facts,
            variables,
        };
        let settings = RunSettings {
            working_dir,
            scratch_dir,
            kill_grace: Duration::from_secs(5),
        };

        let cancel = CancellationToken::new();
        let done = CancellationToken::new();
        let watcher = tokio::spawn(watch(
            self.store.clone(),
            self.node.clone(),
            deployment.id,
            sink.clone(),
            cancel.clone(),
            done.clone(),
        ));
        let log_sink: Arc<dyn LogSink> = sink.clone();
        let report = run_deployment(&plan, &settings, &*log_sink, &cancel).await;
        done.cancel();
        let _ = watcher.await;

        Ok(match report.outcome {
            DeploymentOutcome::Succeeded => (DeploymentState::Success, None),
            DeploymentOutcome::Failed { error } => (DeploymentState::Failed, Some(error)),
            DeploymentOutcome::Cancelled => {
                (DeploymentState::Cancelled, Some("cancelled".to_owned()))
            }
        })
    }
}

/// The manifest's facts, read from the release's checkout.
fn read_manifest(
    checkout: &std::path::Path,
    path: &str,
) -> Result<tako_core::system::ManifestFacts, String> {
    let file = tako_exec::confine::confine(checkout, path)
        .map_err(|e| format!("Manifest {path:?} {e}"))?;
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read the manifest {path}: {e}"))?;
    tako_core::system::ManifestFacts::from_manifest(path, &text)
        .map_err(|e| format!("manifest {path} is invalid: {e}"))
}

/// Kills scripts left running under `root` by a previous process and
/// removes working directories last touched longer than `retention` ago.
/// Returns (process groups killed, directories removed).
pub fn tidy_work_root(root: &std::path::Path, retention: Duration) -> (usize, usize) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return (0, 0);
    };
    let mut killed = 0;
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        killed += tako_exec::process::kill_leftover_groups(&path);
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| modified.elapsed().ok());
        if age.is_some_and(|age| age > retention) && std::fs::remove_dir_all(&path).is_ok() {
            removed += 1;
        }
    }
    (killed, removed)
}

/// Renews the lease, follows the cancel flag and writes buffered log lines
/// until `done`.
async fn watch(
    store: Arc<dyn Store>,
    node: NodeId,
    id: tako_store::DeploymentId,
    sink: Arc<StoreSink>,
    cancel: CancellationToken,
    done: CancellationToken,
) {
    let mut flush = tokio::time::interval(LOG_FLUSH_INTERVAL);
    let mut renew = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tokio::select! {
            () = done.cancelled() => return,
            _ = flush.tick() => store_progress(&*store, id, &sink).await,
            _ = renew.tick() => {
                if let Err(error) = store.renew_deployment_lease(id, &node, DEPLOYMENT_LEASE).await {
                    tracing::warn!(deployment = %id, %error, "cannot renew the lease");
                }
                if let Ok(deployment) = store.get_deployment(id).await
                    && deployment.cancel_requested
                    && !cancel.is_cancelled()
                {
                    sink.system_line("Cancel requested: stopping the running step; only Always steps run from here");
                    cancel.cancel();
                }
            }
        }
    }
}

/// Stores every buffered line (in batches) and step update, so the buffer
/// never holds more than one flush interval of output.
async fn store_progress(store: &dyn Store, id: tako_store::DeploymentId, sink: &StoreSink) {
    loop {
        let lines = sink.take(LOG_BATCH);
        if lines.is_empty() {
            break;
        }
        if let Err(error) = store.append_log(id, &lines).await {
            tracing::error!(deployment = %id, %error, "cannot store log lines");
            break;
        }
    }
    for record in sink.take_steps() {
        if let Err(error) = store.update_step(id, record).await {
            tracing::error!(deployment = %id, %error, "cannot record a step");
        }
    }
}

/// Buffers masked lines and step progress until the watcher stores them.
#[derive(Default)]
struct StoreSink {
    buffer: Mutex<Vec<LogLineRecord>>,
    steps: Mutex<Vec<StepRecord>>,
}

impl StoreSink {
    fn take_steps(&self) -> Vec<StepRecord> {
        self.steps
            .lock()
            .map(|mut steps| std::mem::take(&mut *steps))
            .unwrap_or_default()
    }

    fn push_step(&self, record: StepRecord) {
        if let Ok(mut steps) = self.steps.lock() {
            steps.push(record);
        }
    }

    fn take(&self, at_most: usize) -> Vec<LogLineRecord> {
        let Ok(mut buffer) = self.buffer.lock() else {
            return Vec::new();
        };
        let n = buffer.len().min(at_most);
        buffer.drain(..n).collect()
    }

    /// One of the scheduler's own lines (no sensitive values in it).
    fn system_line(&self, text: &str) {
        if let Ok(mut buffer) = self.buffer.lock() {
            buffer.push(LogLineRecord {
                timestamp: Utc::now(),
                step: None,
                stream: tako_store::LogStream::Tako,
                level: tako_store::LogLevel::Warning,
                text: text.to_owned(),
            });
        }
    }
}

impl LogSink for StoreSink {
    fn append(&self, line: LogLine) {
        if let Ok(mut buffer) = self.buffer.lock() {
            buffer.push(LogLineRecord::from(&line));
        }
    }

    fn step_started(&self, index: usize, name: &str) {
        self.push_step(StepRecord {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            name: name.to_owned(),
            state: StepRunState::Running,
            reason: None,
            started_at: Some(Utc::now()),
            duration: None,
        });
    }

    fn step_finished(&self, index: usize, report: &StepReport) {
        let (state, reason) = match &report.state {
            StepState::Success => (StepRunState::Success, None),
            StepState::Failed { reason } => (StepRunState::Failed, Some(reason.clone())),
            StepState::Skipped(reason) => (StepRunState::Skipped, Some(reason.to_string())),
            StepState::Cancelled => (StepRunState::Failed, Some("cancelled".to_owned())),
        };
        let started_at = (state != StepRunState::Skipped)
            .then(|| {
                chrono::Duration::from_std(report.duration)
                    .ok()
                    .map(|d| Utc::now() - d)
            })
            .flatten();
        self.push_step(StepRecord {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            name: report.name.clone(),
            state,
            reason,
            started_at,
            duration: Some(report.duration),
        });
    }
}
