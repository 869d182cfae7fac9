//! A project's lifecycle, read from the takofile at the head of its
//! repository's default branch (as routing is: a branch cannot loosen its
//! own rules), and the gate every new deployment passes: may this release
//! enter this environment (`Requires`), and does it wait for approvals
//! (`Approval`, frozen into the deployment with its deadline).
//!
//! Without a `Lifecycle` every environment is independent and nothing
//! waits. Pushes (the router), deployments and promotions by hand (the
//! services), releases made by hand with `deploy_to`, and automatic
//! promotion after a success (the scheduler) all go through [`gate`].

use chrono::{DateTime, Utc};
use tako_git::{Mirror, Mirrors};
use tako_store::{ApprovalRule, DeploymentState, Project, Release, Store, StoreError};
use tako_takofile::{Lifecycle, Refusal};

use crate::releases::{self, ReleaseError};

/// Why the lifecycle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The repository could not be fetched or its mirror read.
    #[error("cannot read the lifecycle from {repository}: {message}")]
    Unreadable {
        /// The repository.
        repository: String,
        /// Why (git's message).
        message: String,
    },
    /// The default branch's takofile does not validate.
    #[error(
        "the takofile on the default branch is invalid, so its lifecycle cannot be applied: {0}"
    )]
    Invalid(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The lifecycle of the takofile at the head of `mirror`'s default branch;
/// `None` when it has none (or there is no takofile there).
pub async fn from_mirror(mirror: &Mirror) -> Result<Option<Lifecycle>, LifecycleError> {
    let unreadable = |message: String| LifecycleError::Unreadable {
        repository: mirror.url().to_string(),
        message,
    };
    let Some(branch) = mirror
        .default_branch()
        .await
        .map_err(|e| unreadable(e.to_string()))?
    else {
        return Ok(None);
    };
    let found = releases::read_takofile(mirror, &format!("refs/heads/{branch}"))
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    let Some((file_name, source)) = found else {
        return Ok(None);
    };
    match releases::parse_takofile(&file_name, &source) {
        Ok(takofile) => Ok(takofile.lifecycle),
        Err(ReleaseError::Invalid { diagnostics }) => {
            Err(LifecycleError::Invalid(diagnostics.join("; ")))
        }
        Err(other) => Err(LifecycleError::Invalid(other.to_string())),
    }
}

/// The lifecycle of `project`, from its mirror as last fetched (a push
/// fetches it; a project never fetched is fetched now).
pub async fn of_project(
    mirrors: &Mirrors,
    project: &Project,
) -> Result<Option<Lifecycle>, LifecycleError> {
    let unreadable = |message: String| LifecycleError::Unreadable {
        repository: project.repository_url.clone(),
        message,
    };
    let opened = mirrors
        .open(&project.repository_url)
        .map_err(|e| unreadable(e.to_string()))?;
    let mirror = match opened {
        Some(mirror) => mirror,
        None => {
            let credentials = crate::repository::credentials_of(project);
            mirrors
                .fetch(&project.repository_url, credentials.as_ref(), None)
                .await
                .map_err(|e| unreadable(e.to_string()))?
        }
    };
    from_mirror(&mirror).await
}

/// The lifecycle of `project` for display (the web UI's column order and
/// *Deploy to…* choices): from its mirror as last fetched, never fetching;
/// `None` when there is no mirror yet or it cannot be read (logged). The
/// server still enforces the lifecycle on every deployment.
pub async fn for_display(mirrors: &Mirrors, project: &Project) -> Option<Lifecycle> {
    let mirror = match mirrors.open(&project.repository_url) {
        Ok(Some(mirror)) => mirror,
        Ok(None) => return None,
        Err(error) => {
            tracing::warn!(project = %project.name, %error, "cannot open the mirror to show the lifecycle");
            return None;
        }
    };
    match from_mirror(&mirror).await {
        Ok(lifecycle) => lifecycle,
        Err(error) => {
            tracing::warn!(project = %project.name, %error, "cannot read the lifecycle to show it");
            None
        }
    }
}

/// Orders `environments` by the lifecycles given: each by its earliest
/// position in any of them, then the others by name.
pub fn order_environments(environments: &mut [String], lifecycles: &[&Lifecycle]) {
    let rank = |environment: &String| {
        lifecycles
            .iter()
            .filter_map(|lifecycle| lifecycle.position(environment))
            .min()
            .unwrap_or(usize::MAX)
    };
    environments.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
}

/// The environments `release` has succeeded in: those whose latest
/// deployment of it succeeded.
pub async fn succeeded_in(store: &dyn Store, release: &Release) -> Result<Vec<String>, StoreError> {
    Ok(store
        .release_deployments(&[release.id])
        .await?
        .into_iter()
        .filter(|d| d.state == DeploymentState::Success)
        .map(|d| d.environment)
        .collect())
}

/// What a new deployment is, once through the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The environment, in the lifecycle's spelling (as asked without one).
    pub environment: String,
    /// The approvals it waits for.
    pub approval: Option<ApprovalRule>,
}

/// Whether a release that succeeded in `succeeded` may deploy to
/// `environment` under `lifecycle`, and what it waits for; `now` starts an
/// approval's timeout.
pub fn gate(
    lifecycle: Option<&Lifecycle>,
    environment: &str,
    succeeded: &[String],
    now: DateTime<Utc>,
) -> Result<Admitted, Refusal> {
    let Some(lifecycle) = lifecycle else {
        return Ok(Admitted {
            environment: environment.to_owned(),
            approval: None,
        });
    };
    let phase = lifecycle.admits(environment, succeeded)?;
    Ok(Admitted {
        environment: phase.environment.clone(),
        approval: phase.approval.as_ref().map(|approval| ApprovalRule {
            roles: approval.roles.clone(),
            count: approval.count,
            not_by: approval.not_by.map(|n| n.as_str().to_owned()),
            deadline: now
                + chrono::Duration::from_std(approval.timeout)
                    .unwrap_or(chrono::Duration::days(3650)),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_follow_the_lifecycle_then_their_names() {
        let text = "Project: P\nMappings:\n  - Branch: main\n    Environment: DevTest\nLifecycle:\n  - Environment: DevTest\n  - Environment: Staging\n  - Environment: Production\n";
        let lifecycle = tako_takofile::parse("takofile", text)
            .unwrap()
            .lifecycle
            .unwrap();
        let mut environments: Vec<String> = ["Production", "Alpha", "DevTest", "Staging", "QA"]
            .map(str::to_owned)
            .to_vec();
        order_environments(&mut environments, &[&lifecycle]);
        assert_eq!(
            environments,
            ["DevTest", "Staging", "Production", "Alpha", "QA"]
        );
    }

    #[test]
    fn without_a_lifecycle_everything_is_admitted_at_once() {
        let admitted = gate(None, "production", &[], Utc::now()).unwrap();
        assert_eq!(admitted.environment, "production");
        assert_eq!(admitted.approval, None);
    }

    #[test]
    fn a_phase_with_an_approval_freezes_its_rule_and_deadline() {
        let text = "Project: P\nMappings:\n  - Branch: main\n    Environment: DevTest\nLifecycle:\n  - Environment: DevTest\n  - Environment: Production\n    Requires: DevTest\n    Approval: { Roles: [admin, deployer], Count: 2, NotBy: creator, Timeout: 1h }\n";
        let lifecycle = tako_takofile::parse("takofile", text)
            .unwrap()
            .lifecycle
            .unwrap();
        let now = Utc::now();
        let refused = gate(Some(&lifecycle), "production", &[], now).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("requires a successful deployment to DevTest")
        );
        let admitted = gate(Some(&lifecycle), "production", &["devtest".into()], now).unwrap();
        assert_eq!(admitted.environment, "Production");
        let rule = admitted.approval.unwrap();
        assert_eq!(rule.roles, ["admin", "deployer"]);
        assert_eq!((rule.count, rule.not_by.as_deref()), (2, Some("creator")));
        assert_eq!(rule.deadline, now + chrono::Duration::hours(1));
    }
}
