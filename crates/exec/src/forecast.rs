//! What a deployment would do, without running anything: the engine's own
//! decisions (scoping, `ExcludeEnvironments`, run conditions evaluated with
//! the deployment's variables) taken step by step, each step that would run
//! assumed to succeed, as `tako plan` and the server's plans show them.
//!
//! [`forecast`] starts where a deployment starts ([`crate::engine::begin`]:
//! the same variables, resolved for the environment, the same masker) and
//! asks the engine's own [`crate::engine::Deployment::decision`] for each
//! step, so the prediction cannot drift from what a deployment does. Nothing
//! is substituted into scripts, no file is read, no process started. Every
//! value shown has passed the masker; a value that holds a sensitive value
//! is shown as `********` whole.
//!
//! A step with `Roles` is shown as it would run: [`forecast`] as `tako run`
//! runs it here (its variables with the values scoped to any of its roles);
//! [`forecast_on_agents`] on the agents a chooser gives, each with the
//! variables its job would hold (the values of the roles it shares with
//! the step, as [`crate::engine`] resolves an agent's job), masked.
//!
//! A condition that refers to something known only while the deployment
//! runs (an output variable of an earlier step) evaluates as the engine
//! would evaluate it now, with a warning: the step's [`ForecastStep::note`]
//! says so.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tako_core::log::{LogLevel, LogLine};
use tako_core::mask::MASK;
use tako_core::step::{RunDecision, SkipReason, StepState};
use tako_core::system::agent_variables;
use tako_takofile::StepTargets;

use crate::engine::{DeploymentPlan, RunSettings, begin};
use crate::sink::LogSink;

/// A variable as a plan shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ForecastVariable {
    /// Its name.
    pub name: String,
    /// Its value, evaluated; `********` when it holds a sensitive value.
    pub value: String,
    /// Whether it holds a sensitive value.
    pub sensitive: bool,
}

impl std::fmt::Debug for ForecastVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value is masked by construction.
        write!(f, "{}={:?}", self.name, self.value)
    }
}

/// What a step would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepForecast {
    /// It would run.
    Run,
    /// It would be skipped, and why.
    Skip(SkipReason),
    /// It would fail before running (its condition cannot be evaluated, or
    /// no agent has its roles and `WhenNoAgents` is `fail`); the reason,
    /// masked.
    Fail(String),
}

impl StepForecast {
    /// `run`, `skip` or `fail`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StepForecast::Run => "run",
            StepForecast::Skip(_) => "skip",
            StepForecast::Fail(_) => "fail",
        }
    }

    /// The reason of a skip or failure.
    pub fn reason(&self) -> Option<String> {
        match self {
            StepForecast::Run => None,
            StepForecast::Skip(reason) => Some(reason.to_string()),
            StepForecast::Fail(reason) => Some(reason.clone()),
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastStep {
    /// Its position in the process, from 0.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Whether it would run.
    pub outcome: StepForecast,
    /// Why the prediction may not hold (the condition refers to values
    /// known only while the deployment runs), masked.
    pub note: Option<String>,
    /// Where it would run: `None` on the server (or locally), else its
    /// `Roles` and how agents are chosen.
    pub targets: Option<StepTargets>,
    /// The variables this step sees besides the deployment's
    /// ([`Forecast::variables`]): its own name, earlier steps' statuses
    /// (for a step with `Roles` here, the values scoped to its roles too;
    /// on agents, what every job of it sees).
    pub variables: Vec<ForecastVariable>,
    /// On agents: one per agent it would run on, in the chooser's order.
    pub jobs: Vec<ForecastJob>,
}

/// An agent a step with `Roles` would run on, as a chooser gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastAgent {
    /// Its name.
    pub name: String,
    /// Its roles.
    pub roles: Vec<String>,
}

/// One agent's job of a step, as a plan shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastJob {
    /// The agent's name.
    pub agent: String,
    /// The agent's roles.
    pub roles: Vec<String>,
    /// The variables its job would hold besides the deployment's and the
    /// step's ([`ForecastStep::variables`]): the values scoped to the roles
    /// it shares with the step, its `Tako.Agent.*` values.
    pub variables: Vec<ForecastVariable>,
}

/// Chooses the agents of a step with `Roles`, or says what the step
/// would do without any (its `WhenNoAgents`: skipped, or failed).
pub type ChooseAgents<'a> = dyn Fn(&StepTargets) -> Result<Vec<ForecastAgent>, StepState> + 'a;

/// What a deployment would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forecast {
    /// The variables every step sees, by name.
    pub variables: Vec<ForecastVariable>,
    /// Every step of the process, in order.
    pub steps: Vec<ForecastStep>,
}

/// What `plan` would do here (`tako run`): each step's decision as the
/// engine takes it, every step that runs assumed to succeed. Runs nothing,
/// reads no file.
pub fn forecast(plan: &DeploymentPlan) -> Forecast {
    forecast_where(plan, None)
}

/// What `plan` would do on a server: as [`forecast`], a step with `Roles`
/// on the agents `choose` gives (or skipped or failed as it says), with
/// each agent's job's variables.
pub fn forecast_on_agents(plan: &DeploymentPlan, choose: &ChooseAgents<'_>) -> Forecast {
    forecast_where(plan, Some(choose))
}

fn forecast_where(plan: &DeploymentPlan, choose: Option<&ChooseAgents<'_>>) -> Forecast {
    // Never read: nothing is resolved or run.
    let settings = RunSettings {
        working_dir: PathBuf::new(),
        scratch_dir: PathBuf::new(),
        kill_grace: Duration::ZERO,
    };
    let sink = Warnings::default();
    let (mut run, mut log, _) = begin(plan, &settings, &sink);
    let show = |pairs: Vec<(String, String)>, masker: &tako_core::Masker| {
        let mut shown: Vec<ForecastVariable> = pairs
            .into_iter()
            .map(|(name, value)| {
                let masked = masker.mask(&value);
                let sensitive = masked != value.as_str();
                ForecastVariable {
                    name,
                    value: if sensitive { MASK.to_owned() } else { value },
                    sensitive,
                }
            })
            .collect();
        shown.sort_by_key(|v| v.name.to_lowercase());
        shown
    };
    let common_raw = run.variables();
    let common = show(common_raw.clone(), log.masker());
    // The pairs of `pairs` that are not among `seen` (by name and value).
    let besides = |pairs: Vec<(String, String)>, seen: &[(String, String)]| {
        pairs
            .into_iter()
            .filter(|(name, value)| {
                !seen
                    .iter()
                    .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value)
            })
            .collect::<Vec<_>>()
    };
    let mut steps = Vec::with_capacity(plan.steps.len());
    for (index, step) in plan.steps.iter().enumerate() {
        let warned = sink.count();
        let mut agents = Vec::new();
        let (outcome, state) = match run.decision(step, &mut log, false) {
            Ok(RunDecision::Skip(reason)) => (
                StepForecast::Skip(reason.clone()),
                StepState::Skipped(reason),
            ),
            Ok(_) => match (&step.targets, choose) {
                (Some(targets), Some(choose)) => match choose(targets) {
                    Ok(chosen) => {
                        agents = chosen;
                        (StepForecast::Run, StepState::Success)
                    }
                    Err(StepState::Skipped(reason)) => (
                        StepForecast::Skip(reason.clone()),
                        StepState::Skipped(reason),
                    ),
                    Err(state) => {
                        let reason = match &state {
                            StepState::Failed { reason } => log.masker().mask(reason).into_owned(),
                            other => other.to_string(),
                        };
                        (StepForecast::Fail(reason), state)
                    }
                },
                _ => (StepForecast::Run, StepState::Success),
            },
            Err(state) => {
                let reason = match &state {
                    StepState::Failed { reason } => log.masker().mask(reason).into_owned(),
                    other => other.to_string(),
                };
                (StepForecast::Fail(reason), state)
            }
        };
        let note = sink.since(warned).map(|warnings| {
            format!("the condition refers to values known only while the deployment runs ({warnings}); predicted with them unset")
        });
        let seen = match (&step.targets, choose) {
            // Here, a step with `Roles` sees the values of all its roles.
            (Some(targets), None) => run.job_variables(&targets.roles, &targets.roles),
            _ => run.variables(),
        };
        let own = besides(seen, &common_raw);
        let jobs = match &step.targets {
            Some(targets) => agents
                .into_iter()
                .map(|agent| {
                    let mut job = run.job_variables(&targets.roles, &agent.roles);
                    job.extend(agent_variables(&agent.name, &agent.roles));
                    let job = besides(besides(job, &common_raw), &own);
                    ForecastJob {
                        variables: show(job, log.masker()),
                        agent: agent.name,
                        roles: agent.roles,
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        steps.push(ForecastStep {
            index,
            name: step.name.clone(),
            outcome,
            note,
            targets: step.targets.clone(),
            variables: show(own, log.masker()),
            jobs,
        });
        run.settle(step, &state);
    }
    Forecast {
        variables: common,
        steps,
    }
}

/// Keeps the warnings the engine writes while deciding (masked lines).
#[derive(Default)]
struct Warnings {
    lines: Mutex<Vec<String>>,
}

impl Warnings {
    fn count(&self) -> usize {
        self.lines.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// The warnings written after the first `from`, joined; `None` when none.
    fn since(&self, from: usize) -> Option<String> {
        let lines = self.lines.lock().ok()?;
        let new = lines.get(from..).unwrap_or_default();
        (!new.is_empty()).then(|| new.join("; "))
    }
}

impl LogSink for Warnings {
    fn append(&self, line: LogLine) {
        if line.level() == LogLevel::Warning
            && let Ok(mut lines) = self.lines.lock()
        {
            lines.push(line.text().to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tako_core::system::DeploymentFacts;
    use tako_core::variables::{VariableSource, VariableValue};

    use super::*;

    fn plan(text: &str, environment: &str, variables: Vec<VariableValue>) -> DeploymentPlan {
        let takofile = tako_takofile::parse("takofile.yml", text).unwrap();
        let mut all = tako_core::variables::from_takofile(&takofile);
        all.extend(variables);
        DeploymentPlan {
            steps: takofile.steps.unwrap(),
            facts: DeploymentFacts {
                project: "Demo".into(),
                environment: environment.into(),
                release_number: "1.0.0".into(),
                ..DeploymentFacts::default()
            },
            variables: all,
        }
    }

    const TAKOFILE: &str = "Project: Demo\nVariables:\n  - Name: Colour\n    Value: blue\nSteps:\n  - Name: Build\n    Run: echo build\n  - Name: Publish\n    Run: echo publish\n    ExcludeEnvironments: [DevTest]\n  - Name: Only prod\n    Run: echo prod\n    Environments: [Production]\n  - Name: Blue\n    Run: echo blue\n    Condition: '#{if Colour == \"blue\"}true#{/if}'\n  - Name: Red\n    Run: echo red\n    Condition: '#{if Colour == \"red\"}true#{/if}'\n  - Name: On failure\n    Run: echo failed\n    Condition: Failure\n  - Name: Later\n    Run: echo later\n    Condition: '#{Octopus.Action[Build].Output.Go}'\n";

    #[test]
    fn each_step_is_decided_as_the_engine_decides_it() {
        let forecast = forecast(&plan(TAKOFILE, "DevTest", Vec::new()));
        let got: Vec<(&str, &str, Option<String>)> = forecast
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.outcome.as_str(), s.outcome.reason()))
            .collect();
        assert_eq!(got[0], ("Build", "run", None));
        assert_eq!(
            got[1],
            ("Publish", "skip", Some("excluded from DevTest".into()))
        );
        assert_eq!(
            got[2],
            ("Only prod", "skip", Some("not scoped to DevTest".into()))
        );
        assert_eq!(got[3], ("Blue", "run", None));
        assert_eq!(got[4].1, "skip");
        assert_eq!(got[5].1, "skip");
        assert!(forecast.steps[3].note.is_none());
        let later = &forecast.steps[6];
        assert!(
            later.note.as_deref().unwrap().contains("known only while"),
            "{later:?}"
        );
        // Each step sees its own name and the statuses of the steps before.
        let publish = &forecast.steps[1];
        assert!(
            publish
                .variables
                .iter()
                .any(|v| v.name == "Tako.Step.Name" && v.value == "Publish")
        );
        assert!(
            publish
                .variables
                .iter()
                .any(|v| v.name == "Tako.Action[Build].Status" && v.value == "Success")
        );
    }

    #[test]
    fn sensitive_values_are_shown_masked_everywhere() {
        let secret = "canary-s3cr3t-value";
        let variables = vec![
            VariableValue::new(VariableSource::Project, "ApiKey", secret).sensitive(),
            VariableValue::new(
                VariableSource::Project,
                "Url",
                format!("https://x/?k={secret}"),
            ),
        ];
        let text = "Project: Demo\nSteps:\n  - Name: Check\n    Run: echo\n    Condition: '#{ApiKey}-no'\n";
        let forecast = forecast(&plan(text, "Production", variables));
        let shown = format!("{forecast:?}");
        assert!(!shown.contains(secret), "{shown}");
        let key = forecast
            .variables
            .iter()
            .find(|v| v.name == "ApiKey")
            .unwrap();
        assert_eq!((key.value.as_str(), key.sensitive), ("********", true));
        let url = forecast.variables.iter().find(|v| v.name == "Url").unwrap();
        assert_eq!((url.value.as_str(), url.sensitive), ("********", true));
        assert_eq!(forecast.steps[0].outcome.as_str(), "run");
    }

    #[test]
    fn on_agents_each_job_shows_the_values_of_the_roles_its_agent_shares_with_the_step() {
        let canary = "db-only-canary-Wp3";
        let variables = vec![
            VariableValue::new(VariableSource::Project, "DbKey", canary)
                .for_roles(["db"])
                .sensitive(),
            VariableValue::new(VariableSource::Project, "Greeting", "hello all"),
            VariableValue::new(VariableSource::Project, "Greeting", "hello web").for_roles(["web"]),
        ];
        let text = "Project: Demo\nSteps:\n  - Name: Both\n    Roles: [web, db]\n    Run: echo\n  - Name: None\n    Roles: [gpu]\n    Run: echo\n";
        let plan = plan(text, "Production", variables);
        let choose = |targets: &StepTargets| {
            if targets.roles.iter().any(|r| r == "gpu") {
                return Err(StepState::Failed {
                    reason: "no agent in Production has any of the roles gpu".into(),
                });
            }
            Ok(vec![
                ForecastAgent {
                    name: "web-01".into(),
                    roles: vec!["web".into()],
                },
                ForecastAgent {
                    name: "db-01".into(),
                    roles: vec!["db".into(), "other".into()],
                },
            ])
        };
        let planned = forecast_on_agents(&plan, &choose);
        let shown = format!("{planned:?}");
        assert!(!shown.contains(canary), "{shown}");
        let value = |list: &[ForecastVariable], name: &str| {
            list.iter()
                .find(|v| v.name == name)
                .map(|v| v.value.clone())
        };
        let both = &planned.steps[0];
        assert_eq!(value(&planned.variables, "Greeting").unwrap(), "hello all");
        assert_eq!(value(&planned.variables, "DbKey"), None);
        assert_eq!(both.jobs.len(), 2);
        let (web, db) = (&both.jobs[0], &both.jobs[1]);
        assert_eq!(web.agent, "web-01");
        assert_eq!(value(&web.variables, "Greeting").unwrap(), "hello web");
        assert_eq!(value(&web.variables, "DbKey"), None);
        assert_eq!(value(&web.variables, "Tako.Agent.Name").unwrap(), "web-01");
        assert_eq!(value(&db.variables, "Greeting"), None);
        assert_eq!(value(&db.variables, "DbKey").unwrap(), "********");
        assert_eq!(
            value(&db.variables, "Tako.Agent.Roles").unwrap(),
            "db,other"
        );
        // Without agents the step fails, and the next steps know it.
        assert_eq!(planned.steps[1].outcome.as_str(), "fail");
        assert!(planned.steps[1].jobs.is_empty());

        // Here (`tako run`), the step sees the values of all its roles.
        let here = forecast(&plan);
        assert!(here.steps[0].jobs.is_empty());
        assert_eq!(
            value(&here.steps[0].variables, "DbKey").unwrap(),
            "********"
        );
        assert!(!format!("{here:?}").contains(canary));
    }
}
