//! Deployments: queue one (deploy a release to an environment, checked
//! against the environment's policy and the project's lifecycle, awaiting
//! approval when its phase asks for one), promote a release to its next
//! phase, retry one (a new deployment of the same release to the same
//! environment, from its failed step when asked), cancel one, and read which agents ran its steps (its jobs).

use tako_store::{
    Deployment, DeploymentId, DeploymentKind, DeploymentState, Job, NewDeployment, Release,
    ReleaseId, RetryOf, StepRunState,
};

use super::{Principal, ServiceError, ServiceResult, Services, check_name};
use crate::lifecycle::LifecycleError;

impl Services {
    /// Queues a deployment of `release` to `environment`, if the caller may
    /// deploy and the environment's branch policy allows the release's
    /// branch. A store that cannot be read is
    /// [`ServiceError::Unavailable`](super::ServiceError::Unavailable), never
    /// a refusal.
    pub async fn deploy_release(
        &self,
        who: &Principal,
        release: ReleaseId,
        environment: &str,
        override_freeze: Option<&str>,
    ) -> ServiceResult<Deployment> {
        who.require_deployer("deploy: it needs the admin or deployer role")?;
        check_name("environment", environment)?;
        let environment = environment.trim();
        let release = self.store.get_release(release).await?;
        crate::policy::check(
            self.store.as_ref(),
            release.project,
            environment,
            release.branch.as_deref(),
        )
        .await?;
        let project = self.store.get_project(release.project).await?;
        let lifecycle = crate::lifecycle::of_project(&self.mirrors, &project)
            .await
            .map_err(lifecycle_error)?;
        self.deploy_admitted(
            who,
            &release,
            lifecycle.as_ref(),
            environment,
            None,
            override_freeze,
        )
        .await
    }

    /// Retries deployment `id` (`tako deploy retry`): a new deployment of
    /// the same release to the same environment, through the policy and the
    /// lifecycle's gate like any deployment. With `from_failed_step`, the
    /// steps before the failed one are carried over by the scheduler.
    /// [`ServiceError::Conflict`] when the deployment has not failed or been
    /// cancelled, is Octopus's, or (from the failed step) has no failed step.
    pub async fn retry_deployment(
        &self,
        who: &Principal,
        id: DeploymentId,
        from_failed_step: bool,
    ) -> ServiceResult<Deployment> {
        who.require_deployer("retry: it needs the admin or deployer role")?;
        let failed = self.store.get_deployment(id).await?;
        if !matches!(
            failed.state,
            DeploymentState::Failed | DeploymentState::Cancelled
        ) {
            return Err(ServiceError::Conflict(format!(
                "deployment #{id} is {}: only a failed or cancelled deployment can be retried (deploy the release again instead)",
                failed.state
            )));
        }
        if failed.kind == DeploymentKind::Octopus {
            return Err(ServiceError::Conflict(format!(
                "deployment #{id} was forwarded to Octopus: retry it in Octopus"
            )));
        }
        if from_failed_step {
            let steps = self.store.list_steps(id).await?;
            if !steps.iter().any(|s| s.state == StepRunState::Failed) {
                return Err(ServiceError::Conflict(format!(
                    "deployment #{id} has no failed step to start from: retry it without --from-failed-step"
                )));
            }
        }
        let release = self.store.get_release(failed.release).await?;
        crate::policy::check(
            self.store.as_ref(),
            release.project,
            &failed.environment,
            release.branch.as_deref(),
        )
        .await?;
        let project = self.store.get_project(release.project).await?;
        let lifecycle = crate::lifecycle::of_project(&self.mirrors, &project)
            .await
            .map_err(lifecycle_error)?;
        let retry = RetryOf {
            deployment: id,
            from_failed_step,
        };
        let created = self
            .deploy_admitted(
                who,
                &release,
                lifecycle.as_ref(),
                &failed.environment,
                Some(retry),
                None,
            )
            .await?;
        let entry = tako_store::NewAuditEntry {
            actor: format!("token {} ({}, {})", who.token, who.name, who.role),
            action: "deployment.retry".to_owned(),
            target: format!("/api/v1/deployments/{id}"),
            source: None,
            outcome: "ok".to_owned(),
            detail: Some(format!(
                "retried as deployment #{}{}",
                created.id,
                if from_failed_step {
                    " from its failed step"
                } else {
                    ""
                }
            )),
        };
        if let Err(error) = self.store.append_audit(entry).await {
            tracing::error!(deployment = %id, %error, "cannot append to the audit log");
        }
        Ok(created)
    }

    /// Deploys `release` to the next phase of its project's lifecycle
    /// (`tako release promote`): the one after the furthest phase it
    /// succeeded in, or the first. [`ServiceError::Conflict`] without a
    /// lifecycle, after the last phase, or when the next phase's `Requires`
    /// are not met (naming them).
    pub async fn promote_release(
        &self,
        who: &Principal,
        project: &str,
        number: &str,
    ) -> ServiceResult<Deployment> {
        who.require_deployer("promote: it needs the admin or deployer role")?;
        check_name("project", project)?;
        let project = self.project_named(project.trim()).await?;
        let release = self
            .store
            .find_release_by_number(project.id, number)
            .await?
            .ok_or_else(|| {
                ServiceError::NotFound(format!(
                    "release {number} not found in project {}",
                    project.name
                ))
            })?;
        let lifecycle = crate::lifecycle::of_project(&self.mirrors, &project)
            .await
            .map_err(lifecycle_error)?
            .ok_or_else(|| {
                ServiceError::Conflict(format!(
                    "project {} has no Lifecycle on its default branch, so there is no next phase: deploy to an environment by name",
                    project.name
                ))
            })?;
        let succeeded = crate::lifecycle::succeeded_in(self.store.as_ref(), &release).await?;
        let next = lifecycle.next_phase(&succeeded).ok_or_else(|| {
            ServiceError::Conflict(format!(
                "release {} has succeeded in the last phase ({}): there is nothing to promote it to",
                release.number,
                lifecycle.environments().last().copied().unwrap_or_default()
            ))
        })?;
        let environment = next.environment.clone();
        crate::policy::check(
            self.store.as_ref(),
            release.project,
            &environment,
            release.branch.as_deref(),
        )
        .await?;
        self.deploy_admitted(who, &release, Some(&lifecycle), &environment, None, None)
            .await
    }

    /// Creates the deployment once through the lifecycle's gate: refused
    /// (409 naming what is missing), queued, or awaiting approval.
    async fn deploy_admitted(
        &self,
        who: &Principal,
        release: &Release,
        lifecycle: Option<&tako_takofile::Lifecycle>,
        environment: &str,
        retry_of: Option<RetryOf>,
        override_freeze: Option<&str>,
    ) -> ServiceResult<Deployment> {
        let succeeded = crate::lifecycle::succeeded_in(self.store.as_ref(), release).await?;
        let admitted =
            crate::lifecycle::gate(lifecycle, environment, &succeeded, chrono::Utc::now())
                .map_err(|refusal| ServiceError::Conflict(refusal.to_string()))?;
        // A frozen environment refuses it, unless an admin overrides.
        let overridden = self
            .check_freeze(who, release.project, &admitted.environment, override_freeze)
            .await?;
        let deployment = self
            .store
            .create_deployment(NewDeployment {
                release: release.id,
                environment: admitted.environment,
                approval: admitted.approval,
                created_by: Some(who.name.clone()),
                retry_of,
                hold: false,
            })
            .await?;
        self.deployments_queued.notify_one();
        if let (Some(active), Some(reason)) = (&overridden, override_freeze) {
            self.audit_override(who, deployment.id, active, reason)
                .await;
        }
        tracing::info!(deployment = %deployment.id, release = %release.number,
            environment = %deployment.environment, state = %deployment.state, by = %who.name,
            retry_of = ?retry_of.map(|r| r.deployment.0), "deployment created");
        Ok(deployment)
    }

    /// Cancels a deployment: a queued one at once, a running one at its next
    /// check. [`ServiceError::Conflict`](super::ServiceError::Conflict) when
    /// it has already ended.
    pub async fn cancel_deployment(
        &self,
        who: &Principal,
        id: DeploymentId,
    ) -> ServiceResult<Deployment> {
        who.require_deployer("cancel: it needs the admin or deployer role")?;
        let deployment = self.store.request_cancel(id).await?;
        // A cancelled queued deployment may free the scheduler's next pick.
        self.deployments_queued.notify_one();
        // Ended at once after it had started (paused, or queued again after
        // an answer): the forge still shows `pending`; nobody else reports
        // its end.
        if deployment.state == DeploymentState::Cancelled && deployment.started_at.is_some() {
            self.statuses
                .start(&deployment)
                .report(tako_forges::status::Phase::Cancelled);
        }
        tracing::info!(deployment = %id, by = %who.name, role = %who.role, token = %who.token,
            "cancel requested");
        Ok(deployment)
    }

    /// The jobs of deployment `id` (one per agent that ran, runs or was to
    /// run one of its `Roles` steps), by step then agent; empty when every
    /// step ran on the server. Any role may read them.
    /// [`ServiceError::NotFound`](super::ServiceError::NotFound) when there
    /// is no such deployment.
    pub async fn deployment_jobs(&self, id: DeploymentId) -> ServiceResult<Vec<Job>> {
        let deployment = self.store.get_deployment(id).await?;
        Ok(self.store.list_jobs(deployment.id).await?)
    }
}

/// What to tell the caller when the lifecycle cannot be read.
pub(super) fn lifecycle_error(error: LifecycleError) -> ServiceError {
    match error {
        LifecycleError::Store(error) => ServiceError::from(error),
        error @ LifecycleError::Invalid(_) => ServiceError::invalid(error.to_string()),
        error @ LifecycleError::Unreadable { .. } => {
            tracing::warn!(%error, "the lifecycle cannot be read");
            ServiceError::Upstream {
                retry: true,
                message:
                    "the project's lifecycle cannot be read from its repository now; retry shortly"
                        .to_owned(),
            }
        }
    }
}
