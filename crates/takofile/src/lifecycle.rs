//! A release's journey through environments (`Lifecycle:`): the phases in
//! order, what each requires, whether it is entered by itself after the
//! previous phase succeeded (`AutoDeploy`), and who must approve a
//! deployment into it (`Approval`). Pure questions only: the server brings
//! the facts (where a release succeeded) and acts on the answers.

use std::time::Duration;

/// The order environments are deployed in, and the rules of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// The phases, in order (at least one; environments unique without
    /// regard to case; `Requires` names earlier phases only).
    pub phases: Vec<Phase>,
}

/// One environment of a lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phase {
    /// The environment, as written.
    pub environment: String,
    /// A release that succeeded in the previous phase deploys here by
    /// itself.
    pub auto_deploy: bool,
    /// The environments (earlier phases) a release must have succeeded in
    /// before it may deploy here, as the lifecycle spells them.
    pub requires: Vec<String>,
    /// Who must approve a deployment here before it runs.
    pub approval: Option<Approval>,
    /// The line of the phase in the takofile.
    pub line: usize,
}

/// `Approval: { Roles: [...], Count: N, NotBy: pusher|creator, Timeout: 7d }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The roles that may approve (`admin`, `deployer`, `viewer`),
    /// lowercase, without duplicates.
    pub roles: Vec<String>,
    /// How many different people must approve (at least 1).
    pub count: u32,
    /// Who may not approve their own deployment.
    pub not_by: Option<NotBy>,
    /// How long the deployment waits before it is cancelled.
    pub timeout: Duration,
    /// The timeout as written (`7d`), for messages.
    pub timeout_text: String,
}

/// The roles an approval may name: the server's token roles.
pub const APPROVAL_ROLES: [&str; 3] = ["admin", "deployer", "viewer"];

/// How long an approval waits when `Timeout` is not given.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Who may not approve a deployment they caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotBy {
    /// The person whose push made the release.
    Pusher,
    /// The person who created the deployment (by hand, or by the push).
    Creator,
}

impl NotBy {
    /// The name as written in the takofile.
    pub fn as_str(self) -> &'static str {
        match self {
            NotBy::Pusher => "pusher",
            NotBy::Creator => "creator",
        }
    }

    /// Parses [`NotBy::as_str`]'s output, without regard to case.
    pub fn parse(text: &str) -> Option<NotBy> {
        [NotBy::Pusher, NotBy::Creator]
            .into_iter()
            .find(|not_by| not_by.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// Why a release may not enter an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The lifecycle does not name the environment.
    NotInLifecycle {
        /// The environment asked for.
        environment: String,
        /// The lifecycle's environments, in order.
        phases: Vec<String>,
    },
    /// The release has not succeeded in these environments yet.
    Missing {
        /// The environment asked for (the lifecycle's spelling).
        environment: String,
        /// What it requires and the release lacks, in the lifecycle's order.
        missing: Vec<String>,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotInLifecycle {
                environment,
                phases,
            } => write!(
                f,
                "environment {environment} is not in the project's lifecycle ({}): add it to Lifecycle on the default branch",
                phases.join(" → ")
            ),
            Refusal::Missing {
                environment,
                missing,
            } => write!(
                f,
                "{environment} requires a successful deployment to {} first: this release has not succeeded in {}",
                missing.join(" and "),
                missing.join(" or ")
            ),
        }
    }
}

impl Lifecycle {
    /// The phase of `environment` (without regard to case).
    pub fn phase(&self, environment: &str) -> Option<&Phase> {
        self.phases
            .iter()
            .find(|phase| phase.environment.eq_ignore_ascii_case(environment))
    }

    /// The position of `environment`'s phase.
    pub fn position(&self, environment: &str) -> Option<usize> {
        self.phases
            .iter()
            .position(|phase| phase.environment.eq_ignore_ascii_case(environment))
    }

    /// The environments in order.
    pub fn environments(&self) -> Vec<&str> {
        self.phases
            .iter()
            .map(|phase| phase.environment.as_str())
            .collect()
    }

    /// Whether a release that succeeded in `succeeded` (environment names,
    /// any case) may deploy to `environment`: `Ok` with its phase, or why
    /// not.
    pub fn admits(&self, environment: &str, succeeded: &[String]) -> Result<&Phase, Refusal> {
        let Some(phase) = self.phase(environment) else {
            return Err(Refusal::NotInLifecycle {
                environment: environment.to_owned(),
                phases: self
                    .environments()
                    .iter()
                    .map(|e| (*e).to_owned())
                    .collect(),
            });
        };
        let missing: Vec<String> = phase
            .requires
            .iter()
            .filter(|required| !succeeded.iter().any(|s| s.eq_ignore_ascii_case(required)))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(phase)
        } else {
            Err(Refusal::Missing {
                environment: phase.environment.clone(),
                missing,
            })
        }
    }

    /// The phase after `environment`'s, if it deploys by itself
    /// (`AutoDeploy`) and the release (which succeeded in `succeeded`,
    /// `environment` included) meets its `Requires`.
    pub fn promotes_to(&self, environment: &str, succeeded: &[String]) -> Option<&Phase> {
        let next = self.phases.get(self.position(environment)? + 1)?;
        (next.auto_deploy && self.admits(&next.environment, succeeded).is_ok()).then_some(next)
    }

    /// The phase a release that succeeded in `succeeded` goes to next (`tako
    /// release promote`): the one after the furthest phase it succeeded in,
    /// or the first. `None` when it has succeeded in the last phase.
    pub fn next_phase(&self, succeeded: &[String]) -> Option<&Phase> {
        let furthest = self.phases.iter().rposition(|phase| {
            succeeded
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&phase.environment))
        });
        match furthest {
            Some(index) => self.phases.get(index + 1),
            None => self.phases.first(),
        }
    }
}

/// `Production (requires Staging; 1 approval by admin, not by the pusher,
/// within 7d)`: a phase as `tako validate` and the UI show it.
impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.environment)?;
        let mut rules = Vec::new();
        if self.auto_deploy {
            rules.push("AutoDeploy".to_owned());
        }
        if !self.requires.is_empty() {
            rules.push(format!("requires {}", self.requires.join(", ")));
        }
        if let Some(approval) = &self.approval {
            let not_by = approval
                .not_by
                .map(|n| format!(", not by the {}", n.as_str()))
                .unwrap_or_default();
            rules.push(format!(
                "{} approval{} by {}{not_by}, within {}",
                approval.count,
                if approval.count == 1 { "" } else { "s" },
                approval.roles.join(" or "),
                approval.timeout_text
            ));
        }
        if !rules.is_empty() {
            write!(f, " ({})", rules.join("; "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(environment: &str, auto_deploy: bool, requires: &[&str]) -> Phase {
        Phase {
            environment: environment.to_owned(),
            auto_deploy,
            requires: requires.iter().map(|r| (*r).to_owned()).collect(),
            approval: None,
            line: 1,
        }
    }

    fn lifecycle() -> Lifecycle {
        Lifecycle {
            phases: vec![
                phase("DevTest", true, &[]),
                phase("Staging", true, &[]),
                phase("Production", false, &["Staging"]),
            ],
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn requires_are_met_by_successes_in_any_case() {
        let lifecycle = lifecycle();
        assert!(lifecycle.admits("devtest", &[]).is_ok());
        let refused = lifecycle
            .admits("Production", &names(&["DevTest"]))
            .unwrap_err();
        assert_eq!(
            refused,
            Refusal::Missing {
                environment: "Production".into(),
                missing: names(&["Staging"])
            }
        );
        assert!(refused.to_string().contains("Staging"));
        assert!(lifecycle.admits("Production", &names(&["staging"])).is_ok());
        let unknown = lifecycle.admits("QA", &[]).unwrap_err();
        assert!(
            unknown
                .to_string()
                .contains("QA is not in the project's lifecycle (DevTest → Staging → Production)")
        );
    }

    #[test]
    fn promotion_goes_one_phase_on_when_it_deploys_by_itself() {
        let lifecycle = lifecycle();
        let after_devtest = lifecycle.promotes_to("DevTest", &names(&["DevTest"]));
        assert_eq!(
            after_devtest.map(|p| p.environment.as_str()),
            Some("Staging")
        );
        // Production does not deploy by itself.
        assert!(
            lifecycle
                .promotes_to("Staging", &names(&["DevTest", "Staging"]))
                .is_none()
        );
        assert!(
            lifecycle
                .promotes_to("Production", &names(&["Production"]))
                .is_none()
        );
        assert!(lifecycle.promotes_to("QA", &[]).is_none());
    }

    #[test]
    fn the_next_phase_follows_the_furthest_success() {
        let lifecycle = lifecycle();
        let next = |succeeded: &[&str]| {
            lifecycle
                .next_phase(&names(succeeded))
                .map(|p| p.environment.clone())
        };
        assert_eq!(next(&[]), Some("DevTest".into()));
        assert_eq!(next(&["DevTest"]), Some("Staging".into()));
        assert_eq!(next(&["Staging", "DevTest"]), Some("Production".into()));
        assert_eq!(next(&["Production"]), None);
        assert_eq!(NotBy::parse(" Pusher "), Some(NotBy::Pusher));
        assert_eq!(NotBy::parse("creator"), Some(NotBy::Creator));
        assert_eq!(NotBy::parse("owner"), None);
    }

    #[test]
    fn a_phase_shows_its_rules() {
        let mut production = phase("Production", false, &["Staging"]);
        production.approval = Some(Approval {
            roles: vec!["admin".into()],
            count: 1,
            not_by: Some(NotBy::Pusher),
            timeout: DEFAULT_APPROVAL_TIMEOUT,
            timeout_text: "7d".into(),
        });
        assert_eq!(
            production.to_string(),
            "Production (requires Staging; 1 approval by admin, not by the pusher, within 7d)"
        );
        assert_eq!(
            phase("DevTest", true, &[]).to_string(),
            "DevTest (AutoDeploy)"
        );
    }
}
