//! Environment policies (which branches may deploy into an environment of
//! a project): set and remove, admin only.

use tako_store::EnvironmentPolicy;

use super::{Principal, ServiceError, ServiceResult, Services, check_name};

/// The most globs one policy holds.
const MAX_GLOBS: usize = 100;
/// What the admin role is needed for here.
const POLICIES: &str = "change environment policies: it needs the admin role";

impl Services {
    /// Sets which branches may deploy into `environment` of `project`
    /// (whatever the takofile maps there); an empty list closes it.
    pub async fn set_policy(
        &self,
        who: &Principal,
        project: &str,
        environment: &str,
        allowed_branches: &[String],
    ) -> ServiceResult<EnvironmentPolicy> {
        who.require_admin(POLICIES)?;
        check_name("environment", environment)?;
        if allowed_branches.len() > MAX_GLOBS {
            return Err(ServiceError::invalid(format!(
                "allowed_branches holds more than {MAX_GLOBS} globs"
            )));
        }
        for pattern in allowed_branches {
            check_name("allowed branch", &pattern.replace('/', "-"))?;
        }
        crate::policy::validate(allowed_branches).map_err(ServiceError::invalid)?;
        let project = self.project_named(project).await?;
        let policy = self
            .store
            .set_environment_policy(project.id, environment.trim(), allowed_branches)
            .await?;
        tracing::info!(project = %project.name, environment = %policy.environment,
            allowed = %policy.allowed_branches.join(","), by = %who.name, "environment policy set");
        Ok(policy)
    }

    /// Removes an environment's policy: any branch the takofile maps there
    /// may deploy again.
    pub async fn delete_policy(
        &self,
        who: &Principal,
        project: &str,
        environment: &str,
    ) -> ServiceResult<()> {
        who.require_admin(POLICIES)?;
        let project = self.project_named(project).await?;
        self.store
            .delete_environment_policy(project.id, environment)
            .await?;
        tracing::info!(project = %project.name, %environment, by = %who.name, "environment policy removed");
        Ok(())
    }
}
