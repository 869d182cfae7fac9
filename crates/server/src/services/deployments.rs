//! Deployments: queue one (deploy a release to an environment, checked
//! against the environment's policy), cancel one, and read which agents ran
//! its steps (its jobs).

use tako_store::{Deployment, DeploymentId, Job, NewDeployment, ReleaseId};

use super::{Principal, ServiceResult, Services, check_name};

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
        let deployment = self
            .store
            .create_deployment(NewDeployment {
                release: release.id,
                environment: environment.to_owned(),
            })
            .await?;
        self.deployments_queued.notify_one();
        tracing::info!(deployment = %deployment.id, release = %release.number,
            environment = %deployment.environment, by = %who.name, "deployment queued");
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
