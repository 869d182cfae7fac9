//! The missed-push sweep: nothing missed when Tako was down.
//!
//! GitHub does not retry a failed delivery, so a push made while Tako was
//! down or unreachable is lost. At start-up and every `missed_push_sweep`,
//! for each project that has received a push before, the sweep lists the
//! remote's branches (`git ls-remote`, with the project's credentials as a
//! fetch) and compares each head with the last push Tako processed for
//! that branch (the newest delivery that queued a release or deployment:
//! `Store::last_processed_head`). A branch without one is left alone (Tako
//! never deployed it: older than the webhook, or created while Tako was
//! down). For each head that differs and that no delivery of the project
//! ever moved the branch to (`Store::find_push_delivery`: pending, failed
//! or ignored ones count as seen), whose branch the takofile's `Mappings`
//! map (read as the router reads routing: the default branch's takofile,
//! at the remote's `HEAD`), it stores a push delivery *recovered by sweep*
//! through the intake ([`Intake::receive_recovered`]): the normalized path
//! of any forge's push, routed by the router exactly as a push. Its `before` is the last
//! processed push of that ref (so the release notes cover the missed
//! commits), its id `sweep-<project>-<branch>-<commit>` (a second sweep
//! stores nothing more). A late real delivery of the same push, under its
//! own id, finds the ref's last processed push already at its commit and
//! is recorded as a duplicate by the router.
//!
//! Deleted branches (absent from `ls-remote`), unmapped branches and tags
//! produce nothing. A project that fails (its remote unreachable, its
//! takofile invalid) is logged and tried again at the next sweep; one
//! project's failure never stops the others or the server.

use std::sync::Arc;
use std::time::Duration;

use tako_git::{GitError, Mirrors, RemoteRef};
use tako_github::{Push, Repository};
use tako_store::{PageRequest, Project, Store, StoreError};

use crate::intake::{Intake, IntakeError, IntakeReply};
use crate::releases::{self, ReleaseError};

/// How long one project's sweep may take (a remote that hangs is given up
/// on until the next sweep).
const PROJECT_BUDGET: Duration = Duration::from_secs(120);

/// Why one project could not be swept.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The remote could not be listed or fetched.
    #[error("{0}")]
    Git(#[from] GitError),
    /// The default branch's takofile could not be read or is invalid.
    #[error("{0}")]
    Takofile(#[from] ReleaseError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The recovered push could not be stored.
    #[error("{0}")]
    Intake(#[from] IntakeError),
    /// The project took longer than its budget.
    #[error("the remote did not answer within {}s", PROJECT_BUDGET.as_secs())]
    TimedOut,
}

/// What the sweep needs.
#[derive(Clone)]
pub struct Sweep {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The git mirrors.
    pub mirrors: Mirrors,
    /// Where recovered pushes are stored.
    pub intake: Intake,
    /// The time between two sweeps (`missed_push_sweep`; not zero).
    pub period: Duration,
}

impl Sweep {
    /// Sweeps now, then every period, until the task is dropped.
    pub async fn run(self) {
        loop {
            let recovered = self.sweep_all().await;
            if recovered > 0 {
                tracing::info!(recovered, "missed-push sweep: pushes recovered");
            }
            tokio::time::sleep(self.period).await;
        }
    }

    /// Sweeps every project once; returns how many pushes were recovered.
    pub async fn sweep_all(&self) -> usize {
        let projects = match self.store.list_projects().await {
            Ok(projects) => projects,
            Err(error) => {
                tracing::warn!(%error, "missed-push sweep: cannot list the projects; tried again next sweep");
                return 0;
            }
        };
        let mut recovered = 0;
        for project in projects {
            let swept = tokio::time::timeout(PROJECT_BUDGET, self.sweep_project(&project))
                .await
                .unwrap_or(Err(SweepError::TimedOut));
            match swept {
                Ok(count) => recovered += count,
                Err(error) => tracing::warn!(
                    project = %project.name,
                    repository = %project.repository_url,
                    %error,
                    "missed-push sweep: cannot check the project's branches; tried again next sweep"
                ),
            }
        }
        recovered
    }

    /// Stores a recovered push for each mapped branch head of `project`
    /// that no delivery brought; returns how many were stored.
    pub async fn sweep_project(&self, project: &Project) -> Result<usize, SweepError> {
        // A project that never received a push has no webhook yet: nothing
        // was missed, and its branches are not deployed behind its back.
        let any = self
            .store
            .list_deliveries(Some(project.id), PageRequest::first(1))
            .await?;
        if any.items.is_empty() {
            return Ok(0);
        }
        let credentials = crate::repository::credentials_of(project);
        let refs = self
            .mirrors
            .ls_remote(&project.repository_url, credentials.as_ref())
            .await?;
        // (branch, its head, the last processed push of it)
        let mut unseen: Vec<(&str, &RemoteRef, String)> = Vec::new();
        for head in &refs {
            let Some(branch) = head.name.strip_prefix("refs/heads/") else {
                continue;
            };
            // Only a branch Tako has processed a push of is compared: one
            // it never deployed (older than the webhook, or created while
            // Tako was down) is not deployed behind anyone's back.
            let Some(last) = self
                .store
                .last_processed_head(project.id, &head.name)
                .await?
            else {
                continue;
            };
            if last != head.id
                && self
                    .store
                    .find_push_delivery(project.id, &head.name, &head.id)
                    .await?
                    .is_none()
            {
                unseen.push((branch, head, last));
            }
        }
        if unseen.is_empty() {
            return Ok(0);
        }

        // Routing as the router reads it: the default branch's takofile.
        let remote_head = refs.iter().find(|r| r.name == "HEAD").map(|r| r.id.clone());
        let mirror = self
            .mirrors
            .fetch(
                &project.repository_url,
                credentials.as_ref(),
                remote_head.as_deref(),
            )
            .await?;
        let default_branch = mirror
            .default_branch()
            .await?
            .unwrap_or_else(|| "master".to_owned());
        let routing_rev = remote_head.unwrap_or_else(|| format!("refs/heads/{default_branch}"));
        let Some((file, source)) = releases::read_takofile(&mirror, &routing_rev).await? else {
            tracing::debug!(project = %project.name, "missed-push sweep: no takofile on the default branch");
            return Ok(0);
        };
        let routing = releases::parse_takofile(&file, &source)?;

        let mut stored = 0;
        for (branch, head, last) in unseen {
            if routing.environment_for_branch(branch).is_none() {
                continue;
            }
            let push = recovered_push(project, head, last, &default_branch);
            let id = format!("sweep-{}-{}-{}", project.name, branch, head.id);
            if let IntakeReply::Queued { delivery } =
                self.intake.receive_recovered(id, &push).await?
            {
                tracing::info!(
                    project = %project.name,
                    %branch,
                    commit = %head.id,
                    %delivery,
                    "missed-push sweep: a push Tako never received is recovered"
                );
                stored += 1;
            }
        }
        Ok(stored)
    }
}

/// The push that moved `head`'s branch from `before` (its last processed
/// push) to its head, as a forge's push is normalized: no commit list
/// (`truncated`: the router reads the notes between the two from the
/// mirror).
fn recovered_push(
    project: &Project,
    head: &RemoteRef,
    before: String,
    default_branch: &str,
) -> Push {
    Push {
        git_ref: head.name.clone(),
        created: false,
        before,
        after: head.id.clone(),
        deleted: false,
        forced: false,
        base_ref: None,
        compare: None,
        commits: Vec::new(),
        truncated: true,
        head_commit: None,
        repository: Repository {
            id: 0,
            name: project.name.clone(),
            full_name: project.name.clone(),
            clone_url: project.repository_url.clone(),
            ssh_url: None,
            html_url: project.repository_url.clone(),
            private: false,
            default_branch: default_branch.to_owned(),
            owner: None,
        },
        pusher: None,
        sender: None,
    }
}
