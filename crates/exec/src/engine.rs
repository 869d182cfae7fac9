//! The step engine: runs a validated process for one environment.
//!
//! Steps run in order. Before each step the engine decides whether it runs
//! (`Environments`, `ExcludeEnvironments`, `Condition`); a skipped step is
//! recorded with its reason. A running step's texts are substituted with the
//! deployment's variables, then the step runs (a script through
//! [`crate::process`], or a built-in kind). Its output goes through the
//! [`TaskLog`], which masks every sensitive value; service messages set
//! output variables, fail the step, register artifacts or add secrets.
//!
//! A failed step is data ([`StepState::Failed`]); the engine itself does not
//! fail: whatever goes wrong with one step is reported as that step's failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{Offset, Utc};
use tako_core::log::{LogLevel, LogStream};
use tako_core::step::{RunDecision, SkipReason, StepReport, StepState, condition_is_true, decide};
use tako_core::system::{
    DeploymentFacts, output_variable_names, push_aliased, step_variables, system_variables,
};
use tako_core::variables::{VariableSource, VariableValue, resolve};
use tako_core::{MASK, Masker};
use tako_octostache::{EvalContext, VariableDictionary};
use tako_takofile::{Shell, Step, StepAction, UsesKind, WithValue};
use tokio_util::sync::CancellationToken;

use crate::confine::confine;
use crate::process::{ScriptEnd, ScriptEvent, ScriptRequest, run_script};
use crate::service_message::{FailureKind, ServiceMessage};
use crate::sink::{LogSink, TaskLog};
use crate::steps;

/// Everything a deployment needs to know about what to run.
#[derive(Debug, Clone)]
pub struct DeploymentPlan {
    /// The process, in order.
    pub steps: Vec<Step>,
    /// Facts about the deployment (project, environment, release, git).
    pub facts: DeploymentFacts,
    /// Takofile, project and deploy-time variables (system variables are
    /// added by the engine).
    pub variables: Vec<VariableValue>,
}

/// Where and how a deployment runs.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// The checkout steps run in.
    pub working_dir: PathBuf,
    /// A private directory (outside the checkout) for bootstrap files.
    pub scratch_dir: PathBuf,
    /// Time between SIGTERM and SIGKILL when a step is stopped.
    pub kill_grace: Duration,
}

/// How a deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentOutcome {
    /// Every step that ran succeeded.
    Succeeded,
    /// A step failed; the masked error.
    Failed {
        /// `Step 'Run tests' failed: the script exited with code 1`.
        error: String,
    },
    /// The deployment was cancelled.
    Cancelled,
}

/// An output variable set by a step (its value masked when sensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputVariable {
    /// The step that set it.
    pub step: String,
    /// Its name.
    pub name: String,
    /// Its value, masked.
    pub value: String,
    /// Whether it was set as sensitive.
    pub sensitive: bool,
}

/// A file a step asked to keep (`new_octopusartifact`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The step that created it.
    pub step: String,
    /// The file's path as the script gave it.
    pub path: String,
    /// The artifact's name.
    pub name: String,
}

/// What happened in a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentReport {
    /// One entry per step of the process, in order.
    pub steps: Vec<StepReport>,
    /// The overall outcome.
    pub outcome: DeploymentOutcome,
    /// Output variables set during the deployment.
    pub outputs: Vec<OutputVariable>,
    /// Artifacts registered during the deployment.
    pub artifacts: Vec<Artifact>,
}

impl DeploymentReport {
    /// True when the deployment succeeded.
    pub fn succeeded(&self) -> bool {
        self.outcome == DeploymentOutcome::Succeeded
    }
}

/// Runs `plan` and reports what happened. Lines go to `sink`, masked.
///
/// Cancelling `cancel` stops the running step (its process group is killed)
/// and skips every later step except `Always` ones, which still run.
pub async fn run_deployment(
    plan: &DeploymentPlan,
    settings: &RunSettings,
    sink: &dyn LogSink,
    cancel: &CancellationToken,
) -> DeploymentReport {
    let environment = plan.facts.environment.clone();
    let mut candidates: Vec<VariableValue> = system_variables(&plan.facts)
        .into_iter()
        .map(|(name, value)| VariableValue::new(VariableSource::System, name, value))
        .collect();
    candidates.extend(plan.variables.iter().cloned());
    let resolved = resolve(&candidates, &environment);
    let mut log = TaskLog::new(
        sink,
        Masker::with_values(resolved.sensitive_values.iter().map(String::as_str)),
    );
    let mut variables = VariableDictionary::new();
    for (name, value) in &resolved.values {
        variables.set(name.clone(), value.clone());
    }

    let mut run = Deployment {
        settings,
        environment,
        variables,
        facts: &plan.facts,
        outputs: Vec::new(),
        artifacts: Vec::new(),
        first_error: None,
        statuses: Vec::new(),
    };
    let mut reports = Vec::with_capacity(plan.steps.len());
    log.tako(
        LogLevel::Info,
        &format!(
            "Deploying {} release {} to {}",
            plan.facts.project, plan.facts.release_number, run.environment
        ),
    );
    for (index, step) in plan.steps.iter().enumerate() {
        let report = run.step(index, step, &mut log, cancel).await;
        log.step_finished(index, &report);
        reports.push(report);
        log.flush();
    }
    log.set_step(None);
    let outcome = if cancel.is_cancelled() {
        DeploymentOutcome::Cancelled
    } else if let Some(error) = &run.first_error {
        DeploymentOutcome::Failed {
            error: log.masker().mask(error).into_owned(),
        }
    } else {
        DeploymentOutcome::Succeeded
    };
    match &outcome {
        DeploymentOutcome::Succeeded => log.tako(LogLevel::Highlight, "Deployment succeeded"),
        DeploymentOutcome::Failed { error } => {
            log.tako(LogLevel::Error, &format!("Deployment failed: {error}"))
        }
        DeploymentOutcome::Cancelled => log.tako(LogLevel::Warning, "Deployment cancelled"),
    }
    log.flush();
    DeploymentReport {
        steps: reports,
        outcome,
        outputs: run.outputs,
        artifacts: run.artifacts,
    }
}

/// The state of a deployment in progress.
struct Deployment<'p> {
    settings: &'p RunSettings,
    environment: String,
    variables: VariableDictionary,
    facts: &'p DeploymentFacts,
    outputs: Vec<OutputVariable>,
    artifacts: Vec<Artifact>,
    first_error: Option<String>,
    statuses: Vec<(String, String)>,
}

impl Deployment<'_> {
    fn eval_context() -> EvalContext {
        let now = Utc::now();
        EvalContext {
            now_utc: now,
            local_offset: chrono::Local::now().offset().fix(),
        }
    }

    /// Substitutes `template`, logging warnings; an error fails the step.
    fn substitute(&self, template: &str, log: &TaskLog<'_>) -> Result<String, String> {
        substitute_in(&self.variables, template, log)
    }
}

/// Substitutes `template` with `variables`, logging warnings.
fn substitute_in(
    variables: &VariableDictionary,
    template: &str,
    log: &TaskLog<'_>,
) -> Result<String, String> {
    match variables.evaluate(template, &Deployment::eval_context()) {
        Ok(rendered) => {
            for warning in &rendered.warnings {
                log.tako(LogLevel::Warning, &warning.to_string());
            }
            Ok(rendered.text)
        }
        Err(error) => Err(format!("variable substitution failed: {error}")),
    }
}

impl Deployment<'_> {
    async fn step(
        &mut self,
        index: usize,
        step: &Step,
        log: &mut TaskLog<'_>,
        cancel: &CancellationToken,
    ) -> StepReport {
        log.set_step(Some(&step.name));
        for (name, value) in step_variables(&step.name) {
            self.variables.set(name, value);
        }
        let cancelled = cancel.is_cancelled();
        let decision = match decide(
            step,
            &self.environment,
            self.first_error.is_some(),
            cancelled,
        ) {
            RunDecision::Evaluate(expression) => match self.substitute(&expression, log) {
                Ok(value) if condition_is_true(&value) => RunDecision::Run,
                Ok(value) => RunDecision::Skip(SkipReason::ConditionFalse {
                    expression,
                    value: log.masker().mask(&value).into_owned(),
                }),
                Err(error) => {
                    return self.finish(
                        step,
                        log,
                        StepState::Failed {
                            reason: format!("condition: {error}"),
                        },
                        Duration::ZERO,
                    );
                }
            },
            decision => decision,
        };
        if let RunDecision::Skip(reason) = decision {
            let state = StepState::Skipped(reason);
            log.tako(LogLevel::Info, &format!("Step '{}' {state}", step.name));
            return self.finish(step, log, state, Duration::ZERO);
        }

        log.tako(
            LogLevel::Highlight,
            &format!("Step '{}' started", step.name),
        );
        log.step_started(index, &step.name);
        let started = Instant::now();
        // After a cancel, `Always` steps still run to completion (bounded by
        // their timeout): give them a token of their own.
        let step_cancel = if cancelled {
            CancellationToken::new()
        } else {
            cancel.clone()
        };
        let state = match self.execute(step, log, &step_cancel).await {
            Ok(state) => state,
            Err(reason) => StepState::Failed { reason },
        };
        self.finish(step, log, state, started.elapsed())
    }

    fn finish(
        &mut self,
        step: &Step,
        log: &TaskLog<'_>,
        state: StepState,
        duration: Duration,
    ) -> StepReport {
        let state = match state {
            StepState::Failed { reason } => StepState::Failed {
                reason: log.masker().mask(&reason).into_owned(),
            },
            other => other,
        };
        match &state {
            StepState::Success => log.tako(
                LogLevel::Info,
                &format!("Step '{}' succeeded in {}", step.name, human(duration)),
            ),
            StepState::Failed { reason } => {
                log.tako(
                    LogLevel::Error,
                    &format!("Step '{}' failed: {reason}", step.name),
                );
                if self.first_error.is_none() {
                    let error = format!("Step '{}' failed: {reason}", step.name);
                    let detail = format!(
                        "{error} (project {}, release {}, environment {})",
                        self.facts.project, self.facts.release_number, self.environment
                    );
                    let mut pairs = Vec::new();
                    push_aliased(&mut pairs, "Deployment.Error", error.clone());
                    push_aliased(&mut pairs, "Deployment.ErrorDetail", detail);
                    for (name, value) in pairs {
                        self.variables.set(name, value);
                    }
                    self.first_error = Some(error);
                }
            }
            StepState::Cancelled => log.tako(
                LogLevel::Warning,
                &format!("Step '{}' cancelled", step.name),
            ),
            StepState::Skipped(_) => {}
        }
        self.statuses
            .push((step.name.clone(), state.status_name().to_owned()));
        let mut status = Vec::new();
        push_aliased(
            &mut status,
            &format!("Action[{}].Status", step.name),
            state.status_name(),
        );
        for (name, value) in status {
            self.variables.set(name, value);
        }
        StepReport {
            name: step.name.clone(),
            state,
            duration,
        }
    }

    async fn execute(
        &mut self,
        step: &Step,
        log: &mut TaskLog<'_>,
        cancel: &CancellationToken,
    ) -> Result<StepState, String> {
        let working_dir = match &step.working_directory {
            Some(dir) => {
                let dir = self.substitute(dir, log)?;
                let path = confine(&self.settings.working_dir, &dir)
                    .map_err(|e| format!("WorkingDirectory {dir:?}: {e}"))?;
                if !path.is_dir() {
                    return Err(format!(
                        "WorkingDirectory {dir:?} does not exist in the checkout"
                    ));
                }
                path
            }
            None => self.settings.working_dir.clone(),
        };
        match &step.action {
            StepAction::Run(body) => {
                let body = self.substitute(body, log)?;
                self.script(step, &step.shell, body, working_dir, None, log, cancel)
                    .await
            }
            StepAction::Script(path) => {
                let path = self.substitute(path, log)?;
                let file = confine(&self.settings.working_dir, &path)
                    .map_err(|e| format!("Script {path:?}: {e}"))?;
                let body = std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read script file {path:?}: {e}"))?;
                let body = self.substitute(&body, log)?;
                self.script(step, &step.shell, body, working_dir, None, log, cancel)
                    .await
            }
            StepAction::Uses {
                kind: UsesKind::Template(path),
                with,
            } => {
                let path = self.substitute(path, log)?;
                let file = confine(&self.settings.working_dir, &path)
                    .map_err(|e| format!("Uses {path:?}: {e}"))?;
                let json = std::fs::read_to_string(&file)
                    .map_err(|e| format!("cannot read step template {path:?}: {e}"))?;
                let template =
                    steps::step_template::load(&json, with).map_err(|e| format!("{path}: {e}"))?;
                if template.shell == Shell::Pwsh && !crate::process::shell_available(&Shell::Pwsh) {
                    return Err(format!(
                        "{path}: step template {:?} is a PowerShell template: this template needs pwsh, which is not installed on this machine",
                        template.name
                    ));
                }
                log.tako(
                    LogLevel::Info,
                    &format!(
                        "Running step template {:?} ({})",
                        template.name, template.shell
                    ),
                );
                let mut variables = self.variables.clone();
                for parameter in &template.parameters {
                    variables.set(parameter.name.clone(), parameter.value.clone());
                }
                for parameter in template.parameters.iter().filter(|p| p.sensitive) {
                    let evaluated = variables
                        .get(&parameter.name, &Self::eval_context())
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| parameter.value.clone());
                    log.add_secret(&evaluated);
                    log.add_secret(&parameter.value);
                }
                let body = substitute_in(&variables, &template.body, log)?;
                self.script(
                    step,
                    &template.shell,
                    body,
                    working_dir,
                    Some(variables),
                    log,
                    cancel,
                )
                .await
            }
            StepAction::Uses { kind, with } => {
                let mut parameters = Vec::with_capacity(with.len());
                for (name, value) in with {
                    parameters.push((name.clone(), self.substitute_value(value, log)?));
                }
                self.builtin(step, kind, &parameters, &working_dir, log, cancel)
                    .await
            }
        }
    }

    /// Makes an output readable by later steps and records it (masked).
    fn record_output(&mut self, step: &str, output: RawOutput, log: &TaskLog<'_>) {
        for name in output_variable_names(step, &output.name) {
            self.variables.set(name, output.value.clone());
        }
        self.outputs.push(OutputVariable {
            step: step.to_owned(),
            name: output.name,
            value: log.masker().mask(&output.value).into_owned(),
            sensitive: output.sensitive,
        });
    }

    fn substitute_value(&self, value: &WithValue, log: &TaskLog<'_>) -> Result<WithValue, String> {
        Ok(match value {
            WithValue::Text(text) => WithValue::Text(self.substitute(text, log)?),
            WithValue::List(items) => WithValue::List(
                items
                    .iter()
                    .map(|item| self.substitute_value(item, log))
                    .collect::<Result<_, _>>()?,
            ),
            WithValue::Map(entries) => WithValue::Map(
                entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), self.substitute_value(v, log)?)))
                    .collect::<Result<_, String>>()?,
            ),
        })
    }

    async fn builtin(
        &mut self,
        step: &Step,
        kind: &UsesKind,
        parameters: &[(String, WithValue)],
        working_dir: &Path,
        log: &TaskLog<'_>,
        cancel: &CancellationToken,
    ) -> Result<StepState, String> {
        let scratch_dir = self
            .settings
            .scratch_dir
            .join(format!("step-{}", sanitize(&step.name)));
        std::fs::create_dir_all(&scratch_dir)
            .map_err(|e| format!("cannot create a scratch directory for the step: {e}"))?;
        let error = self
            .first_error
            .as_deref()
            .map(|e| log.masker().mask(e).into_owned());
        let context = steps::StepContext {
            step: &step.name,
            root: &self.settings.working_dir,
            working_dir,
            scratch_dir: &scratch_dir,
            parameters,
            facts: self.facts,
            error: error.as_deref(),
            steps_so_far: &self.statuses,
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
            UsesKind::Template(path) => {
                Err(format!("step template {path} is run as a script, not here"))
            }
        };
        let _ = std::fs::remove_dir_all(&scratch_dir);
        // A step that gave up because the deployment was cancelled was
        // cancelled, not failed.
        let outputs = match result {
            Err(_) if cancel.is_cancelled() => return Ok(StepState::Cancelled),
            other => other?,
        };
        for (name, value) in outputs {
            log.tako(
                LogLevel::Verbose,
                &format!(
                    "Output variable Octopus.Action[{}].Output.{name} = {value}",
                    step.name
                ),
            );
            self.record_output(
                &step.name,
                RawOutput {
                    name,
                    value,
                    sensitive: false,
                },
                log,
            );
        }
        Ok(StepState::Success)
    }

    fn script_environment(
        &self,
        step: &Step,
        log: &TaskLog<'_>,
    ) -> Result<Vec<(String, String)>, String> {
        let facts = self.facts;
        let mut env = vec![
            ("TAKO_PROJECT".to_owned(), facts.project.clone()),
            ("TAKO_ENVIRONMENT".to_owned(), self.environment.clone()),
            ("TAKO_RELEASE".to_owned(), facts.release_number.clone()),
            ("TAKO_DEPLOYMENT_ID".to_owned(), facts.deployment_id.clone()),
            ("TAKO_GIT_BRANCH".to_owned(), facts.git_branch.clone()),
            ("TAKO_GIT_COMMIT".to_owned(), facts.git_commit.clone()),
            (
                "TAKO_WORKDIR".to_owned(),
                self.settings.working_dir.display().to_string(),
            ),
        ];
        for (name, value) in &step.env {
            let value = self.substitute(value, log)?;
            env.retain(|(existing, _)| existing != name);
            env.push((name.clone(), value));
        }
        Ok(env)
    }

    #[allow(clippy::too_many_arguments)]
    async fn script(
        &mut self,
        step: &Step,
        shell: &Shell,
        body: String,
        working_dir: PathBuf,
        step_variables: Option<VariableDictionary>,
        log: &mut TaskLog<'_>,
        cancel: &CancellationToken,
    ) -> Result<StepState, String> {
        let scratch_dir = self
            .settings
            .scratch_dir
            .join(format!("step-{}", sanitize(&step.name)));
        let request = ScriptRequest {
            shell: shell.clone(),
            body,
            working_dir,
            scratch_dir: scratch_dir.clone(),
            env: self.script_environment(step, log)?,
            variables: script_variables(step_variables.as_ref().unwrap_or(&self.variables)),
            timeout: step.timeout.duration,
            kill_grace: self.settings.kill_grace,
        };
        let mut events = EventHandler {
            step: &step.name,
            log,
            stdout_level: Some(LogLevel::Info),
            stderr_level: Some(LogLevel::Error),
            failure_message: None,
            failed_by_helper: false,
            outputs: Vec::new(),
            artifacts: Vec::new(),
        };
        let result = run_script(request, cancel, &mut |event| events.handle(event)).await;
        let EventHandler {
            failure_message,
            failed_by_helper,
            outputs,
            artifacts,
            ..
        } = events;
        // Bootstrap files may hold sensitive values: remove them now.
        let _ = std::fs::remove_dir_all(&scratch_dir);
        for output in outputs {
            self.record_output(&step.name, output, log);
        }
        self.artifacts.extend(artifacts);
        let end = result.map_err(|error| error.to_string())?;
        Ok(match end {
            ScriptEnd::Exited(0) if failed_by_helper => StepState::Failed {
                reason: failure_message.unwrap_or_else(|| "the script called fail_step".to_owned()),
            },
            ScriptEnd::Exited(0) => StepState::Success,
            ScriptEnd::Exited(code) => StepState::Failed {
                reason: failure_message
                    .unwrap_or_else(|| format!("the script exited with code {code}")),
            },
            ScriptEnd::Signalled(signal) => StepState::Failed {
                reason: failure_message
                    .unwrap_or_else(|| format!("the script was killed by signal {signal}")),
            },
            ScriptEnd::TimedOut => StepState::Failed {
                reason: format!("timed out after {}", step.timeout.text),
            },
            ScriptEnd::Cancelled => StepState::Cancelled,
        })
    }
}

/// Every variable, evaluated, for the script API's `get_octopusvariable`.
fn script_variables(variables: &VariableDictionary) -> Vec<(String, String)> {
    let context = Deployment::eval_context();
    variables
        .names()
        .map(|name| {
            let value = match variables.get(name, &context) {
                Ok(Some(value)) => value,
                _ => variables.get_raw(name).unwrap_or_default().to_owned(),
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// An output variable as the script set it (unmasked, kept for substitution).
struct RawOutput {
    name: String,
    value: String,
    sensitive: bool,
}

/// Turns a running script's events into log lines and recorded effects.
struct EventHandler<'a, 'l, 's> {
    step: &'a str,
    log: &'l mut TaskLog<'s>,
    stdout_level: Option<LogLevel>,
    stderr_level: Option<LogLevel>,
    failure_message: Option<String>,
    failed_by_helper: bool,
    outputs: Vec<RawOutput>,
    artifacts: Vec<Artifact>,
}

impl EventHandler<'_, '_, '_> {
    fn handle(&mut self, event: ScriptEvent) {
        match event {
            ScriptEvent::Line { stream, text } => {
                let level = match stream {
                    LogStream::Stdout => self.stdout_level,
                    LogStream::Stderr => self.stderr_level,
                    LogStream::Tako => Some(LogLevel::Info),
                };
                if let Some(level) = level {
                    self.log.write(stream, level, &text);
                }
            }
            ScriptEvent::Message(message) => self.message(message),
        }
    }

    fn message(&mut self, message: ServiceMessage) {
        match message {
            ServiceMessage::SetVariable {
                name,
                value,
                sensitive,
            } => {
                if sensitive {
                    self.log.add_secret(&value);
                }
                let shown = if sensitive {
                    MASK.to_owned()
                } else {
                    value.clone()
                };
                self.log.tako(
                    LogLevel::Verbose,
                    &format!(
                        "Output variable Octopus.Action[{}].Output.{name} = {shown}",
                        self.step
                    ),
                );
                self.outputs.retain(|o| o.name != name);
                self.outputs.push(RawOutput {
                    name,
                    value,
                    sensitive,
                });
            }
            ServiceMessage::StepFailed { message, kind } => {
                // Tako's `stepFailed` fails the step whatever the exit code;
                // Octopus's `resultMessage` only words the failure that the
                // exit code decides, as in Calamari.
                self.failed_by_helper |= kind == FailureKind::StepFailed;
                if !message.is_empty() {
                    self.failure_message = Some(message);
                } else if kind == FailureKind::StepFailed {
                    self.failure_message = Some("the script called fail_step".to_owned());
                }
            }
            ServiceMessage::Mask { value } => self.log.add_secret(&value),
            ServiceMessage::CreateArtifact { path, name, .. } => {
                self.log.tako(
                    LogLevel::Info,
                    &format!("Artifact {name} will be collected from {path}"),
                );
                self.artifacts.push(Artifact {
                    step: self.step.to_owned(),
                    path,
                    name,
                });
            }
            ServiceMessage::Progress {
                percentage,
                message,
            } => {
                self.log.tako(
                    LogLevel::Verbose,
                    &format!("Progress {percentage}%: {message}"),
                );
            }
            ServiceMessage::LogLevel { stream, level } => {
                let level = level_named(&level, stream);
                match stream {
                    LogStream::Stdout => self.stdout_level = level,
                    LogStream::Stderr => self.stderr_level = level,
                    LogStream::Tako => {}
                }
            }
            ServiceMessage::Other { .. } => {}
        }
    }
}

/// Octopus's `stdout-*` / `stderr-*` directives; `None` drops the lines.
fn level_named(level: &str, stream: LogStream) -> Option<LogLevel> {
    match (level.to_ascii_lowercase().as_str(), stream) {
        ("ignore", _) => None,
        ("verbose", _) | ("progress", LogStream::Stderr) => Some(LogLevel::Verbose),
        ("highlight", _) => Some(LogLevel::Highlight),
        ("wait", _) => Some(LogLevel::Wait),
        ("warning", _) => Some(LogLevel::Warning),
        ("error", _) | ("default", LogStream::Stderr) => Some(LogLevel::Error),
        _ => Some(LogLevel::Info),
    }
}

/// A file-name-safe version of a step name.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// `1.2s`, `3m04s`.
pub fn human(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = duration.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}
