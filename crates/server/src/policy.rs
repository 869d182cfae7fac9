//! Environment policy: which branches may deploy into an environment of a
//! project, set on the server (API, CLI) and checked whatever the takofile
//! says: when a push is routed, when a deployment is asked for through the
//! API, and again just before a deployment runs.
//!
//! A policy's globs match the release's branch (for a release made from a
//! tag push, the tag's name) with `tako-takofile`'s globs: `*` within a
//! segment, `**` across. An environment without a policy is open; a policy
//! with no globs closes it.

use tako_store::{EnvironmentPolicy, ProjectId, Store, StoreError};
use tako_takofile::Glob;

/// Checks each glob, naming the first invalid one.
pub fn validate(globs: &[String]) -> Result<(), String> {
    for pattern in globs {
        Glob::new(pattern).map_err(|e| format!("allowed branch {pattern:?}: {e}"))?;
    }
    Ok(())
}

/// Whether `policy` lets a release of `branch` deploy; the reason when not.
pub fn allows(policy: &EnvironmentPolicy, branch: Option<&str>) -> Result<(), String> {
    let Some(branch) = branch.filter(|b| !b.is_empty()) else {
        return Err(format!(
            "environment {} only accepts releases built from an allowed branch, and this release names no branch",
            policy.environment
        ));
    };
    let allowed = policy
        .allowed_branches
        .iter()
        .filter_map(|p| Glob::new(p).ok())
        .any(|glob| glob.matches(branch));
    if allowed {
        return Ok(());
    }
    if policy.allowed_branches.is_empty() {
        Err(format!(
            "environment {} accepts no deployments: its policy allows no branch",
            policy.environment
        ))
    } else {
        Err(format!(
            "environment {} only accepts releases from branches {}; branch {branch} is not allowed",
            policy.environment,
            policy.allowed_branches.join(", ")
        ))
    }
}

/// Why a policy check did not let a release through.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy refuses the release: the reason, for people.
    #[error("refused by the environment policy: {0}")]
    Refused(String),
    /// The policy could not be read: nothing was decided; try again later.
    #[error("cannot read the environment policy: {0}")]
    Store(#[from] StoreError),
}

/// Checks the stored policy of `environment` (if any) for `branch`. A store
/// that cannot be read is [`PolicyError::Store`], which callers treat as an
/// outage (try again), never as a refusal.
pub async fn check(
    store: &dyn Store,
    project: ProjectId,
    environment: &str,
    branch: Option<&str>,
) -> Result<(), PolicyError> {
    match store.find_environment_policy(project, environment).await? {
        Some(policy) => allows(&policy, branch).map_err(PolicyError::Refused),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(globs: &[&str]) -> EnvironmentPolicy {
        EnvironmentPolicy {
            project: ProjectId(1),
            environment: "Production".to_owned(),
            allowed_branches: globs.iter().map(|g| (*g).to_owned()).collect(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn branches_match_globs_and_refusals_say_why() {
        let p = policy(&["main", "release/*"]);
        assert_eq!(allows(&p, Some("main")), Ok(()));
        assert_eq!(allows(&p, Some("release/1.2")), Ok(()));
        let refused = allows(&p, Some("feature/evil")).unwrap_err();
        assert!(
            refused.contains("branch feature/evil is not allowed"),
            "{refused}"
        );
        assert!(refused.contains("main, release/*"), "{refused}");
        assert!(allows(&p, None).is_err());
        assert!(
            allows(&policy(&[]), Some("main"))
                .unwrap_err()
                .contains("allows no branch")
        );
        assert!(validate(&["main".to_owned(), "release/**".to_owned()]).is_ok());
    }
}
