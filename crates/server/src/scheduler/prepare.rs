//! Preparing a deployment to run, on the server: everything between a
//! claimed row and the engine. It loads the release and the project, checks
//! the environment policy once more, reads the frozen process and
//! variables (opening only the sensitive values in scope), makes the
//! working directory with a checkout of the release commit (for a retry from
//! the failed step, the failed deployment's directory when still kept; for
//! a deployment answered after a pause, its own directory when still kept),
//! gathers the
//! deployment's facts and records its steps as pending. How the steps then
//! run (and where) is the engine's and its executors' business.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tako_core::system::DeploymentFacts;
use tako_core::variables::{VariableSource, VariableValue};
use tako_exec::engine::{DeploymentPlan, RunSettings};
use tako_git::Mirrors;
use tako_store::{Deployment, Keyring, StepRecord, StepRunState, Store, StoreError};

use crate::policy::PolicyError;
use tako_store::FrozenVariables;

/// A deployment ready to run.
pub(super) struct Prepared {
    /// For a retry from the failed step: whether the failed deployment's
    /// working directory was reused or is gone (a fresh checkout), for the log.
    pub(super) workspace_note: Option<String>,
    /// What to run.
    pub(super) plan: DeploymentPlan,
    /// Where.
    pub(super) settings: RunSettings,
}

/// Why a deployment could not start; its text is the deployment's error
/// and goes in its log, so it never holds a driver's words or a secret.
#[derive(Debug, thiserror::Error)]
pub(super) enum PrepareError {
    /// The store could not be read or written (logged with its cause).
    #[error("the server's database was unavailable while preparing it")]
    Store(#[source] StoreError),
    /// The environment's policy refuses the release.
    #[error("refused by the environment policy: {0}")]
    Refused(String),
    /// What was frozen into the release cannot be used.
    #[error("{0}")]
    Release(String),
    /// The working directory could not be made.
    #[error("cannot prepare the working directory {path}: {source}")]
    WorkingDirectory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The release commit could not be fetched or checked out.
    #[error("{0}")]
    Checkout(String),
    /// The takofile's `Manifest` cannot be read.
    #[error("{0}")]
    Manifest(String),
}

impl From<StoreError> for PrepareError {
    fn from(error: StoreError) -> Self {
        PrepareError::Store(error)
    }
}

impl From<PolicyError> for PrepareError {
    fn from(error: PolicyError) -> Self {
        match error {
            PolicyError::Refused(reason) => PrepareError::Refused(reason),
            PolicyError::Store(error) => PrepareError::Store(error),
        }
    }
}

/// What preparing needs of the server.
pub(super) struct Preparer<'a> {
    pub(super) store: &'a dyn Store,
    pub(super) mirrors: &'a Mirrors,
    pub(super) keyring: &'a Keyring,
    pub(super) work_root: &'a Path,
    pub(super) public_url: &'a str,
}

impl Preparer<'_> {
    /// Prepares `deployment` (claimed, running) to run.
    pub(super) async fn prepare(&self, deployment: &Deployment) -> Result<Prepared, PrepareError> {
        let store = self.store;
        let release = store.get_release(deployment.release).await?;
        let project = store.get_project(deployment.project).await?;
        crate::policy::check(
            store,
            deployment.project,
            &deployment.environment,
            release.branch.as_deref(),
        )
        .await?;
        let takofile = tako_takofile::parse("takofile", &release.takofile).map_err(|d| {
            PrepareError::Release(format!("the release's takofile is invalid: {d}"))
        })?;
        let steps = takofile.steps.clone().unwrap_or_default();
        let frozen = FrozenVariables::from_json(&release.variables).map_err(|e| {
            PrepareError::Release(format!("the release's variables are unreadable: {e}"))
        })?;

        let dir = self.work_root.join(deployment.id.to_string());
        let working_dir = dir.join("checkout");
        let scratch_dir = dir.join("scratch");
        let workspace = |path: &Path| {
            let path = path.to_owned();
            move |source| PrepareError::WorkingDirectory { path, source }
        };
        let resumed = !store.list_steps(deployment.id).await?.is_empty();
        let carried_from = deployment
            .retry_of
            .filter(|retry| retry.from_failed_step && !resumed)
            .map(|retry| retry.deployment);
        let mut note = None;
        let mut reused = false;
        if let Some(source) = carried_from {
            let kept = self.work_root.join(source.to_string());
            if kept.join("checkout").is_dir() {
                if dir.exists() {
                    tokio::fs::remove_dir_all(&dir)
                        .await
                        .map_err(workspace(&dir))?;
                }
                tokio::fs::rename(&kept, &dir)
                    .await
                    .map_err(workspace(&kept))?;
                reused = true;
                note = Some(format!(
                    "Reusing the working directory of deployment #{source}, still kept"
                ));
            } else {
                note = Some(format!(
                    "The working directory of deployment #{source} is no longer kept: checking out {} afresh",
                    release.commit
                ));
            }
        }
        // Answered after a pause: it goes on in the directory it stopped in.
        if resumed && !store.list_interventions(deployment.id).await?.is_empty() {
            if working_dir.is_dir() {
                reused = true;
                tokio::fs::create_dir_all(&scratch_dir)
                    .await
                    .map_err(workspace(&scratch_dir))?;
                note =
                    Some("Going on in the working directory kept while it was paused".to_owned());
            } else {
                note = Some(format!(
                    "The working directory kept while it was paused is gone: checking out {} afresh",
                    release.commit
                ));
            }
        }
        if !reused {
            if dir.exists() {
                tokio::fs::remove_dir_all(&dir)
                    .await
                    .map_err(workspace(&dir))?;
            }
            tokio::fs::create_dir_all(&scratch_dir)
                .await
                .map_err(workspace(&scratch_dir))?;
            let credentials = crate::repository::credentials_of(&project);
            let mirror = self
                .mirrors
                .fetch(
                    &project.repository_url,
                    credentials.as_ref(),
                    Some(&release.commit),
                )
                .await
                .map_err(|e| {
                    PrepareError::Checkout(format!("cannot fetch {}: {e}", project.repository_url))
                })?;
            mirror
                .checkout(&release.commit, &working_dir)
                .await
                .map_err(|e| {
                    PrepareError::Checkout(format!("cannot check out {}: {e}", release.commit))
                })?;
        } else {
            tokio::fs::create_dir_all(&scratch_dir)
                .await
                .map_err(workspace(&scratch_dir))?;
        }

        let mut variables = tako_core::variables::from_takofile(&takofile);
        variables.extend(
            frozen
                .values_for(&deployment.environment, self.keyring)
                .map_err(|e| {
                    PrepareError::Release(format!(
                        "cannot open the release's sensitive variables: {e}"
                    ))
                })?,
        );
        variables.extend(approval_variables(
            &store.list_approvals(deployment.id).await?,
        ));
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
            web_base_url: self.public_url.to_owned(),
            manifest: match &takofile.manifest {
                Some(path) => Some(
                    tako_exec::prepare::read_manifest(&working_dir, path)
                        .map_err(|e| PrepareError::Manifest(e.to_string()))?,
                ),
                None => None,
            },
        };
        // A deployment resumed after a restart keeps the steps it recorded.
        for (index, step) in steps.iter().enumerate().filter(|_| !resumed) {
            let record = StepRecord {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                name: step.name.clone(),
                state: StepRunState::Pending,
                reason: None,
                started_at: None,
                duration: None,
            };
            store.update_step(deployment.id, record).await?;
        }
        Ok(Prepared {
            workspace_note: note,
            plan: DeploymentPlan {
                steps,
                facts,
                variables,
            },
            settings: RunSettings {
                working_dir,
                scratch_dir,
                kill_grace: Duration::from_secs(5),
            },
        })
    }
}

/// `Tako.Approval.By` (who approved, comma-separated in order),
/// `Tako.Approval.Note` (their notes, one a line) and `Tako.Approval.At`
/// (when the last approval came, RFC 3339); empty without an approval.
/// Notes are people's text, so `#{` in them is escaped, never evaluated.
fn approval_variables(approvals: &[tako_store::Approval]) -> Vec<VariableValue> {
    let given: Vec<&tako_store::Approval> = approvals.iter().filter(|a| a.approve).collect();
    let by: Vec<&str> = given.iter().map(|a| a.by.as_str()).collect();
    let notes: Vec<String> = given
        .iter()
        .filter(|a| !a.note.is_empty())
        .map(|a| a.note.replace("#{", "##{"))
        .collect();
    let at = given
        .last()
        .map(|a| a.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    [
        ("Tako.Approval.By", by.join(", ")),
        ("Tako.Approval.Note", notes.join("\n")),
        ("Tako.Approval.At", at),
    ]
    .into_iter()
    .map(|(name, value)| VariableValue::new(VariableSource::System, name, value))
    .collect()
}
