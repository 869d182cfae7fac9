//! The step executor seam: where a resolved step runs.
//!
//! The engine ([`crate::engine`]) decides whether a step runs, substitutes
//! every text, reads `Script:` files and step templates from the checkout,
//! and then hands a self-contained [`ResolvedStep`] to the [`StepExecutor`]
//! that [`Executors::for_step`] chose for it. The executor runs it and
//! returns a [`StepRun`]: the step's state, the output variables it set and
//! the artifacts it registered. The engine keeps everything else: the
//! variables, failure rules, `Tako.Deployment.Error`, the report.
//!
//! An executor writes the step's lines only through the [`TaskLog`] it is
//! given (so they are masked) and registers secrets there (`mask` messages,
//! sensitive outputs). [`LocalExecutor`] runs steps on this machine: scripts
//! as processes ([`crate::process`], their events turned into lines by
//! [`crate::script_events`]), built-in kinds in process ([`crate::steps`]).
//! An agent executor (running steps on another machine) implements the same
//! trait.

use std::path::PathBuf;
use std::time::Duration;

use tako_core::log::LogLevel;
use tako_core::step::StepState;
use tako_core::system::DeploymentFacts;
use tako_takofile::{Shell, Step, StepTargets, UsesKind, WithValue};
use tokio_util::sync::CancellationToken;

use crate::confine::confine;
use crate::engine::{Artifact, RunSettings};
use crate::process::{ScriptEnd, ScriptRequest, run_script, shell_available};
use crate::script_events::EventHandler;
use crate::sink::TaskLog;
use crate::steps::{self, StepError};

/// A step with everything substituted and nothing left to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedStep {
    /// Its position in the process (from 0).
    pub index: usize,
    /// Its name.
    pub name: String,
    /// What it does.
    pub action: ResolvedAction,
    /// Its working directory, relative to the checkout, substituted and
    /// already confined by the engine (`None`: the checkout itself).
    pub working_directory: Option<String>,
    /// The script's extra environment (`TAKO_*` facts, the step's `Env`,
    /// substituted); the executor adds `TAKO_WORKDIR` unless the step set it.
    pub env: Vec<(String, String)>,
    /// How long it may run.
    pub timeout: Duration,
    /// The timeout as written (`10m`), for *timed out after 10m*.
    pub timeout_text: String,
    /// The agents it runs on (`Roles:`); `None`: where the executor is.
    pub targets: Option<StepTargets>,
}

/// What a resolved step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedAction {
    /// A script: `Run:`, `Script:` (read from the checkout) or a step
    /// template's body.
    Script {
        /// Its interpreter.
        shell: Shell,
        /// The substituted body.
        body: String,
        /// Every variable, evaluated, for `get_octopusvariable`.
        variables: Vec<(String, String)>,
        /// The step template it comes from, if any.
        template: Option<TemplateOrigin>,
    },
    /// A built-in step kind with its substituted `With:` parameters.
    Builtin {
        /// The kind (never `Template`: templates are scripts).
        kind: UsesKind,
        /// The parameters, substituted.
        parameters: Vec<(String, WithValue)>,
    },
}

/// Where a template script came from (for its messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateOrigin {
    /// The template's path in the checkout, as substituted.
    pub path: String,
    /// The template's name.
    pub name: String,
}

/// One step handed to an executor, with what the deployment knows so far.
#[derive(Debug, Clone, Copy)]
pub struct StepJob<'a> {
    /// The step. One with `Roles` is resolved with the values scoped to any
    /// of its roles (what `tako run` runs); an agent's job is resolved for
    /// that agent's roles through [`StepJob::for_agents`].
    pub step: &'a ResolvedStep,
    /// Facts about the deployment.
    pub facts: &'a DeploymentFacts,
    /// The first failure so far (masked), if any.
    pub first_error: Option<&'a str>,
    /// Every step so far with its status name.
    pub steps_so_far: &'a [(String, String)],
    /// Which attempt of the step this is (1 for the first), of
    /// [`StepJob::attempts`] (`Retries` + 1).
    pub attempt: u32,
    /// How many attempts the step may take.
    pub attempts: u32,
    /// For a step with `Roles` run by the engine: the step resolved for
    /// each agent's roles. `None` for a step without `Roles`, and for one
    /// an agent runs from its job (already resolved for it).
    pub for_agents: Option<&'a dyn ForAgents>,
}

/// A step with `Roles` as one agent's job holds it: resolved with the
/// values scoped to the roles that agent shares with the step, and the
/// sensitive values the job may hold or print, to mask. A sensitive value
/// scoped only to roles the agent lacks is in neither.
#[derive(Clone, PartialEq, Eq)]
pub struct AgentStep {
    /// The step, substituted for the agent's roles.
    pub step: ResolvedStep,
    /// The values to mask: the environment's sensitive values the agent's
    /// roles see, the deployment's sensitive outputs and masked values so
    /// far, and the step template's sensitive parameters as resolved here.
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for AgentStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secrets themselves are never printed.
        f.debug_struct("AgentStep")
            .field("step", &self.step.name)
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// Resolves a step with `Roles` for each agent that runs it (the engine
/// does, as it resolves every step: [`crate::engine`]). The executor of
/// agents asks once per agent; agents whose roles resolve alike share one
/// resolution.
pub trait ForAgents: Send + Sync {
    /// The step as the job of an agent with `roles` holds it: substituted
    /// with the values scoped to the roles it shares with the step (a value
    /// scoped to a role the step does not target never applies). Its
    /// substitution warnings and template secrets go to `log`. An error is
    /// the step's failure reason.
    fn resolve_for(
        &self,
        roles: &[String],
        log: &mut TaskLog<'_>,
    ) -> Result<std::sync::Arc<AgentStep>, String>;
}

impl std::fmt::Debug for dyn ForAgents + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForAgents")
    }
}

/// An output variable a step set (its value unmasked: the engine makes it
/// readable by later steps and masks it in the report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutput {
    /// Its name (`Octopus.Action[Step].Output.<name>`).
    pub name: String,
    /// Its value.
    pub value: String,
    /// Whether it was set as sensitive.
    pub sensitive: bool,
    /// The agent that set it, when the step ran on agents (it is then also
    /// readable as `Octopus.Action[Step].Output[agent].Name`).
    pub machine: Option<String>,
}

/// What running a step produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRun {
    /// How it ended (a failure's reason unmasked: the engine masks it).
    pub state: StepState,
    /// The output variables it set, in order.
    pub outputs: Vec<StepOutput>,
    /// The artifacts it registered.
    pub artifacts: Vec<Artifact>,
}

impl StepRun {
    /// A run that failed before anything happened.
    pub fn failed(reason: impl Into<String>) -> StepRun {
        StepRun {
            state: StepState::Failed {
                reason: reason.into(),
            },
            outputs: Vec::new(),
            artifacts: Vec::new(),
        }
    }
}

/// Runs resolved steps somewhere.
#[async_trait::async_trait]
pub trait StepExecutor: Send + Sync {
    /// Runs `job`, writing its lines to `log`. Cancelling `cancel` stops it
    /// promptly ([`StepState::Cancelled`]). Never fails: a failure is the
    /// step's state.
    async fn run(
        &self,
        job: StepJob<'_>,
        log: &mut TaskLog<'_>,
        cancel: &CancellationToken,
    ) -> StepRun;
}

/// Chooses the executor of each step.
pub trait Executors: Send + Sync {
    /// The executor that runs `step`.
    fn for_step(&self, step: &Step) -> &dyn StepExecutor;
}

/// Runs steps on this machine, in the deployment's checkout.
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    settings: RunSettings,
}

impl LocalExecutor {
    /// An executor running steps in `settings.working_dir`.
    pub fn new(settings: RunSettings) -> LocalExecutor {
        LocalExecutor { settings }
    }

    fn scratch_dir(&self, step: &ResolvedStep) -> PathBuf {
        self.settings
            .scratch_dir
            .join(format!("step-{}", sanitize(&step.name)))
    }

    fn working_dir(&self, step: &ResolvedStep) -> Result<PathBuf, StepError> {
        match &step.working_directory {
            Some(dir) => {
                confine(&self.settings.working_dir, dir).map_err(|source| StepError::Confine {
                    shown: format!("WorkingDirectory {dir:?}:"),
                    source,
                })
            }
            None => Ok(self.settings.working_dir.clone()),
        }
    }

    async fn script(
        &self,
        step: &ResolvedStep,
        (shell, body, variables): (&Shell, &str, &[(String, String)]),
        template: Option<&TemplateOrigin>,
        log: &mut TaskLog<'_>,
        cancel: &CancellationToken,
    ) -> StepRun {
        if let Some(template) = template {
            if *shell == Shell::Pwsh && !shell_available(&Shell::Pwsh) {
                return StepRun::failed(format!(
                    "{}: step template {:?} is a PowerShell template: this template needs pwsh, which is not installed on this machine",
                    template.path, template.name
                ));
            }
            log.tako(
                LogLevel::Info,
                &format!("Running step template {:?} ({shell})", template.name),
            );
        }
        let working_dir = match self.working_dir(step) {
            Ok(dir) => dir,
            Err(error) => return StepRun::failed(error.to_string()),
        };
        let scratch_dir = self.scratch_dir(step);
        let mut env = step.env.clone();
        if !env.iter().any(|(name, _)| name == "TAKO_WORKDIR") {
            let workdir = self.settings.working_dir.display().to_string();
            let at = env.len().min(6);
            env.insert(at, ("TAKO_WORKDIR".to_owned(), workdir));
        }
        let request = ScriptRequest {
            shell: shell.clone(),
            body: body.to_owned(),
            working_dir,
            scratch_dir: scratch_dir.clone(),
            env,
            variables: variables.to_vec(),
            timeout: step.timeout,
            kill_grace: self.settings.kill_grace,
        };
        let mut events = EventHandler::new(&step.name, log);
        let result = run_script(request, cancel, &mut |event| events.handle(event)).await;
        let (failure_message, failed_by_helper, outputs, artifacts) = events.finish();
        // Bootstrap files may hold sensitive values: remove them now.
        let _ = std::fs::remove_dir_all(&scratch_dir);
        let state = match result {
            Err(error) => StepState::Failed {
                reason: error.to_string(),
            },
            Ok(ScriptEnd::Exited(0)) if failed_by_helper => StepState::Failed {
                reason: failure_message.unwrap_or_else(|| "the script called fail_step".to_owned()),
            },
            Ok(ScriptEnd::Exited(0)) => StepState::Success,
            Ok(ScriptEnd::Exited(code)) => StepState::Failed {
                reason: failure_message
                    .unwrap_or_else(|| format!("the script exited with code {code}")),
            },
            Ok(ScriptEnd::Signalled(signal)) => StepState::Failed {
                reason: failure_message
                    .unwrap_or_else(|| format!("the script was killed by signal {signal}")),
            },
            Ok(ScriptEnd::TimedOut) => StepState::Failed {
                reason: format!("timed out after {}", step.timeout_text),
            },
            Ok(ScriptEnd::Cancelled) => StepState::Cancelled,
        };
        StepRun {
            state,
            outputs,
            artifacts,
        }
    }

    async fn builtin(
        &self,
        job: StepJob<'_>,
        kind: &UsesKind,
        parameters: &[(String, WithValue)],
        log: &TaskLog<'_>,
        cancel: &CancellationToken,
    ) -> StepRun {
        let step = job.step;
        let working_dir = match self.working_dir(step) {
            Ok(dir) => dir,
            Err(error) => return StepRun::failed(error.to_string()),
        };
        let scratch_dir = self.scratch_dir(step);
        if let Err(e) = std::fs::create_dir_all(&scratch_dir) {
            return StepRun::failed(format!(
                "cannot create a scratch directory for the step: {e}"
            ));
        }
        let context = steps::StepContext {
            step: &step.name,
            root: &self.settings.working_dir,
            working_dir: &working_dir,
            scratch_dir: &scratch_dir,
            parameters,
            facts: job.facts,
            error: job.first_error,
            steps_so_far: job.steps_so_far,
            log,
            cancel,
        };
        let result = match kind {
            UsesKind::WriteFile => steps::write_file::step(&context),
            UsesKind::GitCheckout => steps::git_checkout::step(&context).await,
            UsesKind::GitTag => steps::git_tag::step(&context).await,
            UsesKind::PublishPsModule => steps::publish_psmodule::step(&context).await,
            UsesKind::Slack => steps::slack::step(&context).await,
            UsesKind::Http => steps::http::step(&context).await,
            UsesKind::Template(path) => Err(StepError::Failed(format!(
                "step template {path} is run as a script, not here"
            ))),
            UsesKind::ManualIntervention => Err(StepError::Failed(
                "a manual-intervention step waits for a person: the engine pauses the deployment, no executor runs it"
                    .to_owned(),
            )),
        };
        let _ = std::fs::remove_dir_all(&scratch_dir);
        let outputs = match result {
            // A step that gave up because the deployment was cancelled was
            // cancelled, not failed.
            Err(StepError::Cancelled) => {
                return StepRun {
                    state: StepState::Cancelled,
                    outputs: Vec::new(),
                    artifacts: Vec::new(),
                };
            }
            Err(_) if cancel.is_cancelled() => {
                return StepRun {
                    state: StepState::Cancelled,
                    outputs: Vec::new(),
                    artifacts: Vec::new(),
                };
            }
            Err(error) => return StepRun::failed(error.to_string()),
            Ok(outputs) => outputs,
        };
        for (name, value) in &outputs {
            log.tako(
                LogLevel::Verbose,
                &format!(
                    "Output variable Octopus.Action[{}].Output.{name} = {value}",
                    step.name
                ),
            );
        }
        StepRun {
            state: StepState::Success,
            outputs: outputs
                .into_iter()
                .map(|(name, value)| StepOutput {
                    name,
                    value,
                    sensitive: false,
                    machine: None,
                })
                .collect(),
            artifacts: Vec::new(),
        }
    }
}

#[async_trait::async_trait]
impl StepExecutor for LocalExecutor {
    async fn run(
        &self,
        job: StepJob<'_>,
        log: &mut TaskLog<'_>,
        cancel: &CancellationToken,
    ) -> StepRun {
        if let Some(targets) = &job.step.targets {
            log.tako(
                LogLevel::Info,
                &format!(
                    "Step '{}' runs on agents with the roles {} on a server; here it runs on this machine, with the values scoped to any of those roles",
                    job.step.name,
                    targets.roles.join(", ")
                ),
            );
        }
        match &job.step.action {
            ResolvedAction::Script {
                shell,
                body,
                variables,
                template,
            } => {
                self.script(
                    job.step,
                    (shell, body, variables),
                    template.as_ref(),
                    log,
                    cancel,
                )
                .await
            }
            ResolvedAction::Builtin { kind, parameters } => {
                self.builtin(job, kind, parameters, log, cancel).await
            }
        }
    }
}

/// The local executor runs every step.
impl Executors for LocalExecutor {
    fn for_step(&self, _step: &Step) -> &dyn StepExecutor {
        self
    }
}

/// A file-name-safe version of a step name.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
