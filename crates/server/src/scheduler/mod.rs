//! The scheduler: claims queued deployments and runs them through the step
//! engine.
//!
//! The store's claim enforces the rules: deployments of one project to one
//! environment run strictly one at a time in arrival order, others
//! concurrently up to `max_concurrent_deployments`. Each deployment runs in
//! its own working directory holding a checkout of the release commit, made
//! from the cached mirror; the directory is kept for `workdir_retention`
//! after the end, then removed by [`crate::retention`] (at start-up, this
//! node's leftovers past it are removed here). While a deployment runs, its
//! lease is renewed
//! and its cancel flag watched; its task log is stored in batches.
//!
//! The parts: [`prepare`] (a claimed row → a plan and a working directory),
//! the engine of `tako-exec` (decides, substitutes and hands each step to
//! an executor: steps with `Roles` to [`agents`], the others to the local
//! executor), [`watch`] (the lease watcher, a value stopped when dropped)
//! and [`sink`] (the buffered task log). Each deployment's start and end go
//! to its forge as commit statuses through [`crate::statuses`].
//!
//! A run the engine ends with a pause (a step waits for a person) is
//! recorded as `Paused` ([`Store::pause_deployment`]): its slot, lease and
//! agents are freed and its working directory kept; once answered it is
//! queued again and resumed like a deployment requeued at start-up, the
//! answered step recorded ([`recorded_steps`]).

pub(crate) mod agents;
mod prepare;
mod sink;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tako_core::step::{SkipReason, StepReport, StepState};
use tako_exec::engine::{
    DeploymentOutcome, Pause, RecordedStep, resume_deployment_with, retry_deployment_with,
};
use tako_exec::executor::{Executors, LocalExecutor, StepExecutor};
use tako_exec::sink::LogSink;
use tako_forges::status::Phase;
use tako_git::Mirrors;
use tako_store::{Deployment, DeploymentId, DeploymentState, NodeId, StepRunState, Store};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use agents::AgentExecutor;
pub use agents::AgentSettings;
use prepare::{PrepareError, Preparer};
pub(crate) use sink::outputs_to_json;
use sink::{StoreSink, outputs_from_json, store_progress};
use watch::LeaseWatch;

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
    /// The most deployments running at once on this node.
    pub max_running: u32,
    /// How long a claimed deployment stays ours without renewal
    /// (`deployment_lease`).
    pub lease: Duration,
    /// How long a finished deployment's directory is kept.
    pub retention: Duration,
    /// The public base URL for links.
    pub public_url: String,
    /// Woken when a deployment is queued (or one ends, freeing a slot).
    pub wake: Arc<Notify>,
    /// Opens the release's sensitive values (only those in scope).
    pub keyring: Arc<tako_store::Keyring>,
    /// How steps run on agents.
    pub agents: AgentSettings,
    /// Reports each deployment's start and end to its forge.
    pub statuses: crate::statuses::StatusReporter,
    /// Notified when a job is created for an agent (wakes their long polls).
    pub jobs_created: Arc<Notify>,
    /// The Octopus servers forwarded deployments (kind `octopus`) go to.
    pub forwarders: crate::octopus::Forwarders,
}

/// Where the server runs a deployment's steps: those with `Roles` on
/// agents, the rest here.
struct ServerExecutors {
    local: LocalExecutor,
    agents: AgentExecutor,
}

impl Executors for ServerExecutors {
    fn for_step(&self, step: &tako_takofile::Step) -> &dyn StepExecutor {
        if step.targets.is_some() {
            &self.agents
        } else {
            &self.local
        }
    }
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
                .claim_next_deployment(&self.node, self.lease, self.max_running)
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
                    // Woken by a queued deployment (here or, through the
                    // store's wake-ups, on another node); polled as well.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
                }
                Err(error) => {
                    tracing::error!(%error, "cannot claim deployments");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn run_one(&self, deployment: Deployment) {
        let statuses = self.statuses.start(&deployment);
        statuses.report(Phase::Started);
        let sink = Arc::new(StoreSink::default());
        let ran = if deployment.kind == tako_store::DeploymentKind::Octopus {
            Ok(Ran::Ended(self.forward(&deployment, &sink).await))
        } else {
            self.execute(&deployment, &sink).await
        };
        let (state, error) = match ran {
            Ok(Ran::Ended(ended)) => ended,
            Ok(Ran::Paused(pause)) => {
                store_progress(&*self.store, deployment.id, &sink).await;
                // The forge shows `pending`, waiting for a person at the step;
                // the resumed run reports again from `Started`.
                statuses.report(self.pause(&deployment, pause).await);
                return;
            }
            Err(error) => {
                if let PrepareError::Store(source) = &error {
                    tracing::error!(deployment = %deployment.id, error = %source,
                        "the store failed while preparing a deployment");
                }
                let error = error.to_string();
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
        if state == DeploymentState::Success {
            self.promote(&deployment).await;
        }
        statuses.report(match state {
            DeploymentState::Success => Phase::Succeeded,
            DeploymentState::Cancelled => Phase::Cancelled,
            _ => Phase::Failed,
        });
        // The working directory stays for `workdir_retention` (or the
        // project's `Retention: WorkingDirectories`): `crate::retention`
        // removes it.
    }

    /// Records that `deployment` waits for a person: paused, its slot
    /// freed, its working directory kept (removed after the retention once
    /// it ends). A store failure is logged, and the deployment then ends
    /// as failed rather than holding its slot. Returns the commit status to
    /// report: paused at the step, or failed.
    async fn pause(&self, deployment: &Deployment, pause: Pause) -> Phase {
        let id = deployment.id;
        let paused = self
            .store
            .pause_deployment(
                id,
                tako_store::NewIntervention {
                    step_index: u32::try_from(pause.index).unwrap_or(u32::MAX),
                    step_name: pause.step.clone(),
                    kind: pause.kind,
                    instructions: pause.instructions.clone(),
                    roles: pause.roles.clone(),
                },
            )
            .await;
        match paused {
            Ok(_) => {
                tracing::info!(deployment = %id, step = %pause.step, kind = %pause.kind,
                    "deployment paused: waiting for a person");
                let actions: Vec<&str> = pause.kind.actions().iter().map(|a| a.as_str()).collect();
                let line = tako_store::LogLineRecord {
                    timestamp: chrono::Utc::now(),
                    step: Some(pause.step.clone()),
                    stream: tako_store::LogStream::Tako,
                    level: tako_store::LogLevel::Info,
                    text: format!(
                        "Answer with `tako intervention {} {id} --note …` or on the deployment page{}",
                        actions.join("|"),
                        if self.public_url.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ", {}/ui/deployments/{id}",
                                self.public_url.trim_end_matches('/')
                            )
                        }
                    ),
                };
                if let Err(error) = self.store.append_log(id, &[line]).await {
                    tracing::warn!(deployment = %id, %error, "cannot log how to answer a pause");
                }
                Phase::Paused { step: pause.step }
            }
            Err(error) => {
                tracing::error!(deployment = %id, %error, "cannot record a pause");
                let reason = format!(
                    "Step '{}' waits for a person, but the pause could not be recorded",
                    pause.step
                );
                if let Err(error) = self
                    .store
                    .finish_deployment(id, DeploymentState::Failed, Some(reason))
                    .await
                {
                    tracing::error!(deployment = %id, %error, "cannot record the end of a deployment");
                }
                Phase::Failed
            }
        }
    }

    /// Runs (or resumes) a forwarded deployment: Octopus runs the process,
    /// Tako follows its task ([`crate::octopus::forward`]) while the lease
    /// is renewed and the cancel flag watched.
    async fn forward(
        &self,
        deployment: &Deployment,
        sink: &Arc<StoreSink>,
    ) -> (DeploymentState, Option<String>) {
        let cancel = CancellationToken::new();
        let watch = LeaseWatch::start(
            self.store.clone(),
            self.node.clone(),
            self.lease,
            deployment.id,
            sink.clone(),
            cancel.clone(),
        );
        let ended = crate::octopus::forward::run(
            self.store.as_ref(),
            &self.forwarders,
            deployment,
            &cancel,
        )
        .await;
        watch.stop().await;
        ended
    }

    /// After a success: deploys the release to the next phase of its
    /// project's lifecycle (read from the default branch) when that phase
    /// has `AutoDeploy` and its `Requires` are met, awaiting approval when
    /// it asks for one. The new deployment's creator is this one's. What
    /// cannot be done is logged; it never changes this deployment.
    async fn promote(&self, deployment: &Deployment) {
        let id = deployment.id;
        let promoted = async {
            let release = self.store.get_release(deployment.release).await?;
            let project = self.store.get_project(deployment.project).await?;
            let Some(lifecycle) = crate::lifecycle::of_project(&self.mirrors, &project).await?
            else {
                return Ok(None);
            };
            let succeeded = crate::lifecycle::succeeded_in(self.store.as_ref(), &release).await?;
            let Some(next) = lifecycle.promotes_to(&deployment.environment, &succeeded) else {
                return Ok(None);
            };
            if let Err(refused) = crate::policy::check(
                self.store.as_ref(),
                project.id,
                &next.environment,
                release.branch.as_deref(),
            )
            .await
            {
                return Err(PromoteError::Policy(refused.to_string()));
            }
            let admitted = crate::lifecycle::gate(
                Some(&lifecycle),
                &next.environment,
                &succeeded,
                chrono::Utc::now(),
            )
            .map_err(|refusal| PromoteError::Policy(refusal.to_string()))?;
            // A frozen environment holds the promotion until the freeze ends.
            let hold = crate::freezes::active(
                self.store.as_ref(),
                project.id,
                &admitted.environment,
                chrono::Utc::now(),
            )
            .await?
            .is_some();
            let created = self
                .store
                .create_deployment(tako_store::NewDeployment {
                    release: release.id,
                    environment: admitted.environment,
                    approval: admitted.approval,
                    created_by: deployment.created_by.clone(),
                    retry_of: None,
                    hold,
                })
                .await?;
            Ok::<_, PromoteError>(Some(created))
        };
        match promoted.await {
            Ok(Some(created)) => {
                tracing::info!(deployment = %id, promoted = %created.id,
                    environment = %created.environment, state = %created.state,
                    "release promoted to the next phase (AutoDeploy)");
                self.wake.notify_one();
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(deployment = %id, %error, "the release was not promoted to the next phase");
            }
        }
    }

    /// Prepares and runs one deployment; `Err` means it could not start.
    async fn execute(
        &self,
        deployment: &Deployment,
        sink: &Arc<StoreSink>,
    ) -> Result<Ran, PrepareError> {
        let prepared = Preparer {
            store: self.store.as_ref(),
            mirrors: &self.mirrors,
            keyring: &self.keyring,
            work_root: &self.work_root,
            public_url: &self.public_url,
        }
        .prepare(deployment)
        .await?;

        if let Some(note) = &prepared.workspace_note {
            sink.system_line(note);
        }
        let done = recorded_steps(self.store.as_ref(), deployment.id).await?;
        let carried = match deployment.retry_of {
            Some(retry) if retry.from_failed_step && done.is_empty() => Some((
                carried_steps(self.store.as_ref(), retry.deployment).await?,
                retry.deployment,
            )),
            _ => None,
        };
        let cancel = CancellationToken::new();
        let watch = LeaseWatch::start(
            self.store.clone(),
            self.node.clone(),
            self.lease,
            deployment.id,
            sink.clone(),
            cancel.clone(),
        );
        let log_sink: Arc<dyn LogSink> = sink.clone();
        let executors = ServerExecutors {
            local: LocalExecutor::new(prepared.settings.clone()),
            agents: AgentExecutor {
                store: self.store.clone(),
                deployment: deployment.id,
                sink: sink.clone(),
                settings: self.agents,
                jobs_created: self.jobs_created.clone(),
            },
        };
        let report = match carried {
            Some((carried, from)) => {
                retry_deployment_with(
                    &prepared.plan,
                    &prepared.settings,
                    &*log_sink,
                    &cancel,
                    &executors,
                    carried,
                    &format!("deployment #{from}"),
                )
                .await
            }
            None => {
                resume_deployment_with(
                    &prepared.plan,
                    &prepared.settings,
                    &*log_sink,
                    &cancel,
                    &executors,
                    done,
                )
                .await
            }
        };
        watch.stop().await;

        Ok(Ran::Ended(match report.outcome {
            DeploymentOutcome::Succeeded => (DeploymentState::Success, None),
            DeploymentOutcome::Failed { error } => (DeploymentState::Failed, Some(error)),
            DeploymentOutcome::Cancelled => {
                (DeploymentState::Cancelled, Some("cancelled".to_owned()))
            }
            DeploymentOutcome::Paused(pause) => return Ok(Ran::Paused(pause)),
        }))
    }
}

/// How a run stopped.
enum Ran {
    /// It ended in this state (with its error).
    Ended((DeploymentState, Option<String>)),
    /// A step waits for a person.
    Paused(Pause),
}

/// Why a release was not promoted after a success.
#[derive(Debug, thiserror::Error)]
enum PromoteError {
    #[error("{0}")]
    Policy(String),
    #[error(transparent)]
    Lifecycle(#[from] crate::lifecycle::LifecycleError),
    #[error("store: {0}")]
    Store(#[from] tako_store::StoreError),
}

/// The steps of `deployment` that ended before it was resumed after a
/// restart (empty for a deployment starting afresh): the ended steps from
/// the first, with their kept outputs, up to the one that was running.
async fn recorded_steps(
    store: &dyn Store,
    deployment: DeploymentId,
) -> Result<Vec<RecordedStep>, PrepareError> {
    let steps = store.list_steps(deployment).await?;
    if steps.is_empty() {
        return Ok(Vec::new());
    }
    let mut outputs: std::collections::HashMap<u32, String> =
        store.step_outputs(deployment).await?.into_iter().collect();
    let mut done = Vec::new();
    for (expected, step) in steps.into_iter().enumerate() {
        let state = match step.state {
            _ if usize::try_from(step.index).ok() != Some(expected) => break,
            StepRunState::Success => StepState::Success,
            StepRunState::Failed => StepState::Failed {
                reason: step.reason.unwrap_or_default(),
            },
            StepRunState::Skipped => StepState::Skipped(SkipReason::Recorded {
                reason: step.reason.unwrap_or_default(),
            }),
            StepRunState::Pending | StepRunState::Running => break,
        };
        let kept = match outputs.remove(&step.index) {
            Some(json) => outputs_from_json(&json).ok_or_else(|| {
                PrepareError::Release(format!(
                    "cannot resume: the outputs kept for step '{}' cannot be read",
                    step.name
                ))
            })?,
            None => Vec::new(),
        };
        done.push(RecordedStep {
            report: StepReport {
                name: step.name,
                state,
                duration: step.duration.unwrap_or_default(),
            },
            outputs: kept,
        });
    }
    Ok(done)
}

/// The steps a retry from the failed step carries over from `failed`:
/// those that ended before its first failed step, with their kept outputs.
async fn carried_steps(
    store: &dyn Store,
    failed: DeploymentId,
) -> Result<Vec<RecordedStep>, PrepareError> {
    Ok(recorded_steps(store, failed)
        .await?
        .into_iter()
        .take_while(|step| !matches!(step.report.state, StepState::Failed { .. }))
        .collect())
}

/// Kills the scripts still running under `root`: a stopping server's own,
/// so that none outlives it (its deployments are marked Interrupted at the
/// next start, as after a crash). Returns how many process groups it killed.
pub fn kill_running_scripts(root: &std::path::Path) -> usize {
    tidy_work_root(root, Duration::MAX).0
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
