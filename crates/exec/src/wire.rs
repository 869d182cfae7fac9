//! The executor seam on the wire: a [`ResolvedStep`] and the facts it runs
//! with, as the agent protocol carries them ([`tako_protocol::agent`]), and
//! back. The server's agent executor sends what its engine resolved;
//! `tako agent` turns it back into the same [`ResolvedStep`] and runs it
//! with the [`crate::executor::LocalExecutor`], so a step runs the same on
//! both. One module does both directions, so they cannot drift apart (the
//! tests below send every kind of step there and back).

use std::time::Duration;

use tako_core::system::{DeploymentFacts, ManifestFacts};
use tako_protocol::agent::{
    JobAction, JobFacts, JobManifest, JobStep, JobTemplate, JobVariable, Parameter,
};
use tako_takofile::{Shell, UsesKind, WithValue};

use crate::executor::{ResolvedAction, ResolvedStep, TemplateOrigin};

/// Why a job's step cannot be run here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A shell this `tako` does not know.
    #[error(
        "the job's step {step:?} runs with shell {shell:?}, which this agent does not know: install the server's tako version here"
    )]
    Shell {
        /// The step.
        step: String,
        /// The shell named.
        shell: String,
    },
    /// A built-in step kind this `tako` does not know.
    #[error(
        "the job's step {step:?} uses {uses:?}, which this agent does not know: install the server's tako version here"
    )]
    Uses {
        /// The step.
        step: String,
        /// The kind named.
        uses: String,
    },
}

/// The wire form of `step` (its variables travel beside it, in the job).
pub fn job_step(step: &ResolvedStep) -> JobStep {
    let action = match &step.action {
        ResolvedAction::Script {
            shell,
            body,
            template,
            variables: _,
        } => JobAction::Script {
            shell: shell.to_string(),
            body: body.clone(),
            template: template.as_ref().map(|t| JobTemplate {
                path: t.path.clone(),
                name: t.name.clone(),
            }),
        },
        ResolvedAction::Builtin { kind, parameters } => JobAction::Builtin {
            uses: kind.name().to_owned(),
            parameters: parameters
                .iter()
                .map(|(name, value)| (name.clone(), parameter(value)))
                .collect(),
        },
    };
    JobStep {
        index: u32::try_from(step.index).unwrap_or(u32::MAX),
        name: step.name.clone(),
        action,
        working_directory: step.working_directory.clone(),
        env: step.env.clone(),
        timeout_seconds: Some(step.timeout.as_secs()),
        timeout_text: step.timeout_text.clone(),
    }
}

/// The step a job describes, with the job's `variables` readable by its
/// script (`get_octopusvariable`).
pub fn resolved_step(step: &JobStep, variables: &[JobVariable]) -> Result<ResolvedStep, WireError> {
    let action = match &step.action {
        JobAction::Script {
            shell,
            body,
            template,
        } => ResolvedAction::Script {
            shell: Shell::parse(shell).ok_or_else(|| WireError::Shell {
                step: step.name.clone(),
                shell: shell.clone(),
            })?,
            body: body.clone(),
            variables: variables
                .iter()
                .map(|v| (v.name.clone(), v.value.clone()))
                .collect(),
            template: template.as_ref().map(|t| TemplateOrigin {
                path: t.path.clone(),
                name: t.name.clone(),
            }),
        },
        JobAction::Builtin { uses, parameters } => {
            let kind = UsesKind::parse(uses)
                .filter(|kind| !matches!(kind, UsesKind::Template(_)))
                .ok_or_else(|| WireError::Uses {
                    step: step.name.clone(),
                    uses: uses.clone(),
                })?;
            ResolvedAction::Builtin {
                kind,
                parameters: parameters
                    .iter()
                    .map(|(name, value)| (name.clone(), with_value(value)))
                    .collect(),
            }
        }
    };
    Ok(ResolvedStep {
        index: step.index as usize,
        name: step.name.clone(),
        action,
        working_directory: step.working_directory.clone(),
        env: step.env.clone(),
        // A job without a limit still ends: a day is longer than any step.
        timeout: Duration::from_secs(step.timeout_seconds.unwrap_or(24 * 3600)),
        timeout_text: step.timeout_text.clone(),
        targets: None,
    })
}

/// The wire form of a deployment's facts.
pub fn job_facts(facts: &DeploymentFacts) -> JobFacts {
    JobFacts {
        project: facts.project.clone(),
        environment: facts.environment.clone(),
        release_number: facts.release_number.clone(),
        release_notes: facts.release_notes.clone(),
        release_id: facts.release_id.clone(),
        deployment_id: facts.deployment_id.clone(),
        build: facts.build,
        git_repository: facts.git_repository.clone(),
        git_branch: facts.git_branch.clone(),
        git_commit: facts.git_commit.clone(),
        git_pusher: facts.git_pusher.clone(),
        web_base_url: facts.web_base_url.clone(),
        manifest: facts.manifest.as_ref().map(|m| JobManifest {
            version: m.version.clone(),
            name: m.name.clone(),
            author: m.author.clone(),
            description: m.description.clone(),
        }),
    }
}

/// A deployment's facts from their wire form.
pub fn deployment_facts(facts: &JobFacts) -> DeploymentFacts {
    DeploymentFacts {
        project: facts.project.clone(),
        environment: facts.environment.clone(),
        release_number: facts.release_number.clone(),
        release_notes: facts.release_notes.clone(),
        release_id: facts.release_id.clone(),
        deployment_id: facts.deployment_id.clone(),
        build: facts.build,
        git_repository: facts.git_repository.clone(),
        git_branch: facts.git_branch.clone(),
        git_commit: facts.git_commit.clone(),
        git_pusher: facts.git_pusher.clone(),
        web_base_url: facts.web_base_url.clone(),
        manifest: facts.manifest.as_ref().map(|m| ManifestFacts {
            version: m.version.clone(),
            name: m.name.clone(),
            author: m.author.clone(),
            description: m.description.clone(),
        }),
    }
}

fn parameter(value: &WithValue) -> Parameter {
    match value {
        WithValue::Text(text) => Parameter::Text(text.clone()),
        WithValue::List(items) => Parameter::List(items.iter().map(parameter).collect()),
        WithValue::Map(pairs) => Parameter::Map(
            pairs
                .iter()
                .map(|(name, value)| (name.clone(), parameter(value)))
                .collect(),
        ),
    }
}

fn with_value(value: &Parameter) -> WithValue {
    match value {
        Parameter::Text(text) => WithValue::Text(text.clone()),
        Parameter::List(items) => WithValue::List(items.iter().map(with_value).collect()),
        Parameter::Map(pairs) => WithValue::Map(
            pairs
                .iter()
                .map(|(name, value)| (name.clone(), with_value(value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(action: ResolvedAction) -> ResolvedStep {
        ResolvedStep {
            index: 2,
            name: "Test".to_owned(),
            action,
            working_directory: Some("src".to_owned()),
            env: vec![("TAKO_PROJECT".to_owned(), "Demo".to_owned())],
            timeout: Duration::from_secs(600),
            timeout_text: "10m".to_owned(),
            targets: None,
        }
    }

    #[test]
    fn every_kind_of_step_survives_the_wire() {
        let variables = vec![("Greeting".to_owned(), "hello".to_owned())];
        let wire_variables = vec![JobVariable {
            name: "Greeting".to_owned(),
            value: "hello".to_owned(),
            sensitive: false,
        }];
        let steps = [
            step(ResolvedAction::Script {
                shell: Shell::Bash,
                body: "echo hi".to_owned(),
                variables: variables.clone(),
                template: None,
            }),
            step(ResolvedAction::Script {
                shell: Shell::Command("node {0}".to_owned()),
                body: "console.log(1)".to_owned(),
                variables: variables.clone(),
                template: Some(TemplateOrigin {
                    path: "templates/x.json".to_owned(),
                    name: "X".to_owned(),
                }),
            }),
            step(ResolvedAction::Builtin {
                kind: UsesKind::Http,
                parameters: vec![
                    ("Url".to_owned(), WithValue::Text("http://x".to_owned())),
                    (
                        "Headers".to_owned(),
                        WithValue::Map(vec![(
                            "A".to_owned(),
                            WithValue::List(vec![WithValue::Text("b".to_owned())]),
                        )]),
                    ),
                ],
            }),
        ];
        for original in steps {
            let wire = job_step(&original);
            let json = serde_json::to_string(&wire).unwrap();
            let back: JobStep = serde_json::from_str(&json).unwrap();
            let resolved = resolved_step(&back, &wire_variables).unwrap();
            assert_eq!(resolved, original);
        }
    }

    #[test]
    fn unknown_shells_and_kinds_are_refused_by_name() {
        let mut wire = job_step(&step(ResolvedAction::Script {
            shell: Shell::Bash,
            body: String::new(),
            variables: Vec::new(),
            template: None,
        }));
        wire.action = JobAction::Script {
            shell: "fish".to_owned(),
            body: String::new(),
            template: None,
        };
        let error = resolved_step(&wire, &[]).unwrap_err();
        assert!(error.to_string().contains("\"fish\""), "{error}");
        wire.action = JobAction::Builtin {
            uses: "teleport".to_owned(),
            parameters: Vec::new(),
        };
        let error = resolved_step(&wire, &[]).unwrap_err();
        assert!(error.to_string().contains("\"teleport\""), "{error}");
    }

    #[test]
    fn facts_survive_the_wire() {
        let facts = DeploymentFacts {
            project: "Demo".to_owned(),
            environment: "Production".to_owned(),
            build: 7,
            manifest: Some(ManifestFacts {
                version: "1.2.3".to_owned(),
                ..ManifestFacts::default()
            }),
            ..DeploymentFacts::default()
        };
        assert_eq!(deployment_facts(&job_facts(&facts)), facts);
    }
}
