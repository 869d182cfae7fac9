//! The step engine: runs a validated process for one environment.
//!
//! Steps run in order. Before each step the engine decides whether it runs
//! (`Environments`, `ExcludeEnvironments`, `Condition`); a skipped step is
//! recorded with its reason. A running step's texts are substituted with the
//! deployment's variables (`Script:` files and step templates are read from
//! the checkout and substituted here too), giving a self-contained
//! [`ResolvedStep`] (one with `Roles` is resolved with the values scoped
//! to any of its roles, and again for each agent's roles when its executor
//! asks, [`StepJob::for_agents`]: each agent's job holds the values of the
//! roles that agent shares with the step, and no secret scoped only to
//! others); the [`StepExecutor`] chosen for the step
//! ([`Executors`]) runs it and returns its state, outputs and artifacts
//! ([`crate::executor`]). The engine makes outputs readable by later steps,
//! applies the failure rules and sets `Tako.Deployment.Error`. Every line
//! goes through the [`TaskLog`], which masks every sensitive value.
//!
//! A step with `Retries` runs again after a failed attempt (after its
//! `RetryDelay`), each attempt announced in the log (`attempt 2 of 3`);
//! only the last attempt's state, outputs and artifacts count.
//!
//! A `Uses: manual-intervention` step, and a failed step with `OnFailure:
//! ask`, end the run with [`DeploymentOutcome::Paused`]: the engine logs
//! the instructions (or the failure) and stops; whoever runs it (the
//! server's scheduler, `tako run`) asks a person and resumes the
//! deployment with [`resume_deployment_with`], the answered step recorded.
//!
//! A failed step is data ([`StepState::Failed`]); the engine itself does not
//! fail: whatever goes wrong with one step is reported as that step's failure.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tako_core::Masker;
use tako_core::log::LogLevel;
use tako_core::state::InterventionKind;
use tako_core::step::{RunDecision, SkipReason, StepReport, StepState, condition_is_true, decide};
use tako_core::system::{
    DeploymentFacts, machine_output_variable_names, output_variable_names, push_aliased,
    step_variables, system_variables,
};
use tako_core::variables::{
    VariableSource, VariableValue, relevant_roles, resolve, resolve_for_roles, role_overrides,
};
use tako_octostache::VariableDictionary;
use tako_takofile::{Step, StepAction, UsesKind, WithValue};
use tokio_util::sync::CancellationToken;

use crate::clock::eval_context;
use crate::confine::confine;
use crate::executor::{
    AgentStep, Executors, ForAgents, LocalExecutor, ResolvedAction, ResolvedStep, StepExecutor,
    StepJob, StepOutput, StepRun, TemplateOrigin,
};
use crate::sink::{LogSink, TaskLog};
use crate::steps::{self, StepError};

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
    /// A step waits for a person; nothing after it ran.
    Paused(Pause),
}

/// Where and why a deployment paused.
#[derive(Clone, PartialEq, Eq)]
pub struct Pause {
    /// The step's index in the process.
    pub index: usize,
    /// The step's name.
    pub step: String,
    /// A manual intervention, or a failure to decide on.
    pub kind: InterventionKind,
    /// What the person reads: the step's `Instructions` substituted, or
    /// the failure (masked).
    pub instructions: String,
    /// The token roles that may answer (empty: admins and deployers).
    pub roles: Vec<String>,
    /// The steps before it as they ended, with their outputs in the clear:
    /// what to resume with (plus the answered step).
    pub done: Vec<RecordedStep>,
}

impl std::fmt::Debug for Pause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Outputs may be sensitive: only the steps' names are shown.
        let done: Vec<&str> = self.done.iter().map(|d| d.report.name.as_str()).collect();
        f.debug_struct("Pause")
            .field("index", &self.index)
            .field("step", &self.step)
            .field("kind", &self.kind)
            .field("instructions", &self.instructions)
            .field("roles", &self.roles)
            .field("done", &done)
            .finish()
    }
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
/// Every step runs on this machine ([`LocalExecutor`]). Cancelling `cancel`
/// stops the running step (its process group is killed) and skips every
/// later step except `Always` ones, which still run.
pub async fn run_deployment(
    plan: &DeploymentPlan,
    settings: &RunSettings,
    sink: &dyn LogSink,
    cancel: &CancellationToken,
) -> DeploymentReport {
    let local = LocalExecutor::new(settings.clone());
    run_deployment_with(plan, settings, sink, cancel, &local).await
}

/// Runs `plan` like [`run_deployment`], handing each step to the executor
/// `executors` chooses for it. `settings.working_dir` is the checkout the
/// engine reads `Script:` files and step templates from.
pub async fn run_deployment_with(
    plan: &DeploymentPlan,
    settings: &RunSettings,
    sink: &dyn LogSink,
    cancel: &CancellationToken,
    executors: &dyn Executors,
) -> DeploymentReport {
    resume_deployment_with(plan, settings, sink, cancel, executors, Vec::new()).await
}

/// A step that ended before the deployment was interrupted, as recorded:
/// how it ended and the output variables it set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedStep {
    /// How it ended (its reasons already masked).
    pub report: StepReport,
    /// The output variables it set (values in the clear).
    pub outputs: Vec<StepOutput>,
}

/// Runs `plan` like [`run_deployment_with`], taking the first steps as
/// already done (`done`, in order: their states and outputs count as if
/// they had just run, without running or logging them again). The server
/// resumes a deployment this way after a restart; the step after `done`
/// is then the one that was running (an agent's step, whose executor
/// finds the jobs it had started).
pub async fn resume_deployment_with(
    plan: &DeploymentPlan,
    settings: &RunSettings,
    sink: &dyn LogSink,
    cancel: &CancellationToken,
    executors: &dyn Executors,
    done: Vec<RecordedStep>,
) -> DeploymentReport {
    run_from(plan, settings, sink, cancel, executors, Start::Resume(done)).await
}

/// Runs `plan` like [`run_deployment_with`], carrying over the first steps
/// of an earlier deployment of the same release (`tako deploy retry
/// --from-failed-step`): `carried`, in order, are the steps that ended
/// before its failed step. Each is shown and reported as *skipped:
/// succeeded in `from`* (a skipped one keeps its reason), its outputs
/// readable by later steps and handed to the sink like a step's own; the
/// first step after them runs.
pub async fn retry_deployment_with(
    plan: &DeploymentPlan,
    settings: &RunSettings,
    sink: &dyn LogSink,
    cancel: &CancellationToken,
    executors: &dyn Executors,
    carried: Vec<RecordedStep>,
    from: &str,
) -> DeploymentReport {
    let start = Start::Carry {
        steps: carried,
        from: from.to_owned(),
    };
    run_from(plan, settings, sink, cancel, executors, start).await
}

/// Where a run starts.
enum Start {
    /// After the steps that ended before a restart (none: from the start).
    Resume(Vec<RecordedStep>),
    /// After the steps carried over from an earlier deployment.
    Carry {
        steps: Vec<RecordedStep>,
        from: String,
    },
}

async fn run_from(
    plan: &DeploymentPlan,
    settings: &RunSettings,
    sink: &dyn LogSink,
    cancel: &CancellationToken,
    executors: &dyn Executors,
    start: Start,
) -> DeploymentReport {
    let (mut run, mut log, _) = begin(plan, settings, sink);
    let mut reports = Vec::with_capacity(plan.steps.len());
    let (done, from) = match start {
        Start::Resume(done) => (done, None),
        Start::Carry { steps, from } => (steps, Some(from)),
    };
    if let Some(from) = &from {
        log.tako(
            LogLevel::Info,
            &format!(
                "Retrying {from} from its failed step: deploying {} release {} to {}, {} step(s) carried over",
                plan.facts.project,
                plan.facts.release_number,
                run.environment,
                done.len()
            ),
        );
    } else if done.is_empty() {
        log.tako(
            LogLevel::Info,
            &format!(
                "Deploying {} release {} to {}",
                plan.facts.project, plan.facts.release_number, run.environment
            ),
        );
    } else {
        log.tako(
            LogLevel::Warning,
            &format!(
                "Resuming where it stopped (a restart or a person's answer): {} step(s) had ended",
                done.len()
            ),
        );
    }
    let mut done = done.into_iter();
    let mut paused = None;
    for (index, step) in plan.steps.iter().enumerate() {
        if let Some(recorded) = done.next() {
            let report = match &from {
                None => {
                    run.kept.push((index, recorded.outputs.clone()));
                    run.restore(step, recorded, &mut log)
                }
                Some(from) => {
                    run.kept.push((index, recorded.outputs.clone()));
                    let report = run.carry(index, step, recorded, from, &mut log);
                    log.step_finished(index, &report);
                    report
                }
            };
            reports.push(report);
            continue;
        }
        let executor = executors.for_step(step);
        let report = match run.step(index, step, executor, &mut log, cancel).await {
            Ended::Report(report) => report,
            Ended::Pause(pause) => {
                paused = Some(run.pause(pause, &reports));
                break;
            }
        };
        log.step_finished(index, &report);
        reports.push(report);
        log.flush();
    }
    log.set_step(None);
    let outcome = if let Some(pause) = paused {
        DeploymentOutcome::Paused(pause)
    } else if cancel.is_cancelled() {
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
        DeploymentOutcome::Paused(pause) => log.tako(
            LogLevel::Highlight,
            &format!(
                "Deployment paused at step '{}': waiting for a person to {}",
                pause.step,
                pause
                    .kind
                    .actions()
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
    log.flush();
    DeploymentReport {
        steps: reports,
        outcome,
        outputs: run.outputs,
        artifacts: run.artifacts,
    }
}

/// The deployment's starting state: its variables (system, takofile,
/// project, deploy-time; resolved for its environment), its task log
/// masking every sensitive value, and those values. [`run_from`] and
/// [`crate::forecast::forecast`] both start here.
pub(crate) fn begin<'p, 's>(
    plan: &'p DeploymentPlan,
    settings: &'p RunSettings,
    sink: &'s dyn LogSink,
) -> (Deployment<'p>, TaskLog<'s>, Vec<String>) {
    let environment = plan.facts.environment.clone();
    let mut candidates: Vec<VariableValue> = system_variables(&plan.facts)
        .into_iter()
        .map(|(name, value)| VariableValue::new(VariableSource::System, name, value))
        .collect();
    candidates.extend(plan.variables.iter().cloned());
    let resolved = resolve(&candidates, &environment);
    let log = TaskLog::new(
        sink,
        Masker::with_values(resolved.sensitive_values.iter().map(String::as_str)),
    );
    let mut variables = VariableDictionary::new();
    for (name, value) in &resolved.values {
        variables.set(name.clone(), value.clone());
    }
    let run = Deployment {
        settings,
        environment,
        variables,
        candidates,
        facts: &plan.facts,
        outputs: Vec::new(),
        artifacts: Vec::new(),
        first_error: None,
        statuses: Vec::new(),
        kept: Vec::new(),
    };
    (run, log, resolved.sensitive_values)
}

/// The state of a deployment in progress.
pub(crate) struct Deployment<'p> {
    settings: &'p RunSettings,
    environment: String,
    /// What steps on the server see (no role-scoped value).
    variables: VariableDictionary,
    /// Every candidate value, for the steps with `Roles` (whose role-scoped
    /// values are resolved for them).
    candidates: Vec<VariableValue>,
    facts: &'p DeploymentFacts,
    outputs: Vec<OutputVariable>,
    artifacts: Vec<Artifact>,
    first_error: Option<String>,
    statuses: Vec<(String, String)>,
    /// Each ended step's outputs in the clear, by index: what a pause
    /// hands back to resume with.
    kept: Vec<(usize, Vec<StepOutput>)>,
}

/// How running one step ended.
enum Ended {
    /// It ran (or was skipped).
    Report(StepReport),
    /// It waits for a person.
    Pause(Pause),
}

impl Deployment<'_> {
    /// The variables a step sees for `roles` (the relevant roles it shares
    /// with its agent, [`Deployment::role_key`]): the server's, with the
    /// values scoped to one of them.
    fn variables_for(&self, roles: &[String]) -> Cow<'_, VariableDictionary> {
        let overrides = role_overrides(&self.candidates, &self.environment, roles);
        if overrides.is_empty() {
            return Cow::Borrowed(&self.variables);
        }
        let mut variables = self.variables.clone();
        for (name, value) in overrides {
            variables.set(name, value);
        }
        Cow::Owned(variables)
    }

    /// Of a step's roles, those some value is scoped to and `agent` has
    /// (all of them for `None`: the step as `tako run` runs it). Agents
    /// with the same key see the same values.
    fn role_key(&self, step_roles: &[String], agent: Option<&[String]>) -> Vec<String> {
        let mut key = relevant_roles(&self.candidates, &self.environment, step_roles);
        if let Some(agent) = agent {
            key.retain(|role| agent.iter().any(|r| r.eq_ignore_ascii_case(role)));
        }
        key
    }

    /// The variables the job of an agent with `agent_roles` would see for
    /// a step targeting `step_roles`, evaluated (what a plan shows).
    pub(crate) fn job_variables(
        &self,
        step_roles: &[String],
        agent_roles: &[String],
    ) -> Vec<(String, String)> {
        let key = self.role_key(step_roles, Some(agent_roles));
        script_variables(&self.variables_for(&key))
    }

    /// Substitutes `template`, logging warnings; an error fails the step.
    fn substitute(&self, template: &str, log: &TaskLog<'_>) -> Result<String, StepError> {
        let mut warnings = Vec::new();
        let substituted = substitute_in(&self.variables, template, &mut warnings);
        for warning in &warnings {
            log.tako(LogLevel::Warning, warning);
        }
        substituted
    }
}

/// Substitutes `template` with `variables`, keeping the warnings.
fn substitute_in(
    variables: &VariableDictionary,
    template: &str,
    warnings: &mut Vec<String>,
) -> Result<String, StepError> {
    match variables.evaluate(template, &eval_context()) {
        Ok(rendered) => {
            warnings.extend(rendered.warnings.iter().map(ToString::to_string));
            Ok(rendered.text)
        }
        Err(error) => Err(StepError::Failed(format!(
            "variable substitution failed: {error}"
        ))),
    }
}

/// A step with `Roles` resolved for the roles its agents share with it:
/// the step as `tako run` runs it (all of its roles) first, then, as the
/// executor asks, each agent's ([`ForAgents`]). Agents whose relevant roles
/// are the same share one resolution; a warning is logged once.
struct RoleScope<'d, 'p> {
    run: &'d Deployment<'p>,
    index: usize,
    step: &'d Step,
    /// The step's roles some value is scoped to.
    relevant: Vec<String>,
    /// The resolutions made so far, by their roles.
    made: Mutex<Vec<(Vec<String>, Arc<AgentStep>)>>,
    /// The warnings logged so far.
    warned: Mutex<Vec<String>>,
}

impl<'d, 'p> RoleScope<'d, 'p> {
    fn new(run: &'d Deployment<'p>, index: usize, step: &'d Step, roles: &[String]) -> Self {
        RoleScope {
            run,
            index,
            step,
            relevant: run.role_key(roles, None),
            made: Mutex::new(Vec::new()),
            warned: Mutex::new(Vec::new()),
        }
    }

    /// The step resolved for `key` (of [`RoleScope::relevant`]).
    fn resolve_key(
        &self,
        key: Vec<String>,
        log: &mut TaskLog<'_>,
    ) -> Result<Arc<AgentStep>, String> {
        let made = self.made.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, step)) = made.iter().find(|(k, _)| *k == key) {
            return Ok(step.clone());
        }
        drop(made);
        let variables = self.run.variables_for(&key);
        let mut warnings = Vec::new();
        let resolved = self
            .run
            .resolve_with(&variables, self.index, self.step, &mut warnings);
        if let Ok((_, derived)) = &resolved {
            for secret in derived {
                log.mask_also(secret);
            }
        }
        let mut warned = self.warned.lock().unwrap_or_else(PoisonError::into_inner);
        for warning in warnings {
            if !warned.contains(&warning) {
                log.tako(LogLevel::Warning, &warning);
                warned.push(warning);
            }
        }
        drop(warned);
        let (step, derived) = resolved.map_err(|error| error.to_string())?;
        let mut secrets =
            resolve_for_roles(&self.run.candidates, &self.run.environment, &key).sensitive_values;
        for secret in log.added_secrets().iter().chain(&derived) {
            if !secrets.contains(secret) {
                secrets.push(secret.clone());
            }
        }
        let step = Arc::new(AgentStep { step, secrets });
        self.made
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((key, step.clone()));
        Ok(step)
    }
}

impl ForAgents for RoleScope<'_, '_> {
    fn resolve_for(
        &self,
        roles: &[String],
        log: &mut TaskLog<'_>,
    ) -> Result<Arc<AgentStep>, String> {
        let key = self
            .relevant
            .iter()
            .filter(|role| roles.iter().any(|r| r.eq_ignore_ascii_case(role)))
            .cloned()
            .collect();
        self.resolve_key(key, log)
    }
}

impl Deployment<'_> {
    async fn step(
        &mut self,
        index: usize,
        step: &Step,
        executor: &dyn StepExecutor,
        log: &mut TaskLog<'_>,
        cancel: &CancellationToken,
    ) -> Ended {
        let cancelled = cancel.is_cancelled();
        let decision = match self.decision(step, log, cancelled) {
            Ok(decision) => decision,
            Err(state) => return Ended::Report(self.finish(step, log, state, Duration::ZERO)),
        };
        if let RunDecision::Skip(reason) = decision {
            let state = StepState::Skipped(reason);
            log.tako(LogLevel::Info, &format!("Step '{}' {state}", step.name));
            return Ended::Report(self.finish(step, log, state, Duration::ZERO));
        }
        if let Some((instructions, roles)) = step.manual_intervention() {
            return match self.substitute(instructions, log) {
                Ok(text) if !cancelled => {
                    let text = log.masker().mask(&text).into_owned();
                    log.tako(
                        LogLevel::Highlight,
                        &format!("Step '{}' waits for a person: {text}", step.name),
                    );
                    Ended::Pause(Pause {
                        index,
                        step: step.name.clone(),
                        kind: InterventionKind::Manual,
                        instructions: text,
                        roles,
                        done: Vec::new(),
                    })
                }
                Ok(_) => {
                    Ended::Report(self.finish(step, log, StepState::Cancelled, Duration::ZERO))
                }
                Err(error) => Ended::Report(self.finish(
                    step,
                    log,
                    StepState::Failed {
                        reason: format!("Instructions: {error}"),
                    },
                    Duration::ZERO,
                )),
            };
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
        // A step with `Roles` is substituted with the values scoped to any
        // of its roles, and for each agent's roles as its executor asks.
        let ran = {
            let scope = step
                .targets
                .as_ref()
                .map(|targets| RoleScope::new(self, index, step, &targets.roles));
            let resolved = match &scope {
                Some(scope) => scope.resolve_key(scope.relevant.clone(), log),
                None => self.resolve_here(index, step, log).map(|step| {
                    Arc::new(AgentStep {
                        step,
                        secrets: Vec::new(),
                    })
                }),
            };
            match resolved {
                Ok(resolved) => {
                    let first_error = self
                        .first_error
                        .as_deref()
                        .map(|e| log.masker().mask(e).into_owned());
                    let attempts = step.retry.attempts();
                    let mut attempt = 1;
                    loop {
                        if attempts > 1 {
                            log.tako(
                                LogLevel::Info,
                                &format!("Step '{}': attempt {attempt} of {attempts}", step.name),
                            );
                        }
                        let job = StepJob {
                            step: &resolved.step,
                            facts: self.facts,
                            first_error: first_error.as_deref(),
                            steps_so_far: &self.statuses,
                            attempt,
                            attempts,
                            for_agents: scope.as_ref().map(|s| s as &dyn ForAgents),
                        };
                        let run = executor.run(job, log, &step_cancel).await;
                        if let StepState::Failed { reason } = &run.state
                            && attempt < attempts
                            && !step_cancel.is_cancelled()
                        {
                            // A failed attempt's outputs and artifacts are
                            // dropped: only the attempt that counts leaves any.
                            log.tako(
                                LogLevel::Warning,
                                &format!(
                                    "Step '{}': attempt {attempt} of {attempts} failed: {reason}; \
                                     trying again in {}",
                                    step.name, step.retry.delay_text
                                ),
                            );
                            log.flush();
                            tokio::select! {
                                () = tokio::time::sleep(step.retry.delay) => {}
                                () = step_cancel.cancelled() => {
                                    break Err(StepState::Cancelled);
                                }
                            }
                            attempt += 1;
                            continue;
                        }
                        break Ok(run);
                    }
                }
                Err(reason) => Err(StepState::Failed { reason }),
            }
        };
        let state = match ran {
            Ok(run) => {
                log.step_outputs(index, &run.outputs);
                self.kept.push((index, run.outputs.clone()));
                self.absorb(&step.name, run, log)
            }
            Err(state) => state,
        };
        if let StepState::Failed { reason } = &state
            && step.on_failure == tako_takofile::OnFailure::Ask
            && !cancel.is_cancelled()
        {
            let failure = format!("Step '{}' failed: {}", step.name, log.masker().mask(reason));
            log.tako(
                LogLevel::Error,
                &format!(
                    "{failure}; waiting for a person to retry, ignore or abort (OnFailure: ask)"
                ),
            );
            return Ended::Pause(Pause {
                index,
                step: step.name.clone(),
                kind: InterventionKind::Failure,
                instructions: failure,
                roles: Vec::new(),
                done: Vec::new(),
            });
        }
        Ended::Report(self.finish(step, log, state, started.elapsed()))
    }

    /// Completes a pause with the steps before it as they ended (their
    /// outputs in the clear), to resume with.
    fn pause(&mut self, mut pause: Pause, reports: &[StepReport]) -> Pause {
        pause.done = reports
            .iter()
            .enumerate()
            .map(|(index, report)| RecordedStep {
                report: report.clone(),
                outputs: self
                    .kept
                    .iter()
                    .filter(|(i, _)| *i == index)
                    .flat_map(|(_, outputs)| outputs.iter().cloned())
                    .collect(),
            })
            .collect();
        pause
    }

    /// Whether `step` runs, as the step's turn comes: its own variables
    /// set (`Tako.Step.Name`), then scoping and the condition
    /// ([`decide`]), an expression evaluated with the variables as they are
    /// now. [`RunDecision::Run`] or [`RunDecision::Skip`]; a condition that
    /// cannot be evaluated fails the step (`Err`, its state).
    pub(crate) fn decision(
        &mut self,
        step: &Step,
        log: &mut TaskLog<'_>,
        cancelled: bool,
    ) -> Result<RunDecision, StepState> {
        log.set_step(Some(&step.name));
        for (name, value) in step_variables(&step.name) {
            self.variables.set(name, value);
        }
        Ok(
            match decide(
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
                        return Err(StepState::Failed {
                            reason: format!("condition: {error}"),
                        });
                    }
                },
                decision => decision,
            },
        )
    }

    /// The variables as a step would see them now: each name with its
    /// value evaluated (as the script API gives it).
    pub(crate) fn variables(&self) -> Vec<(String, String)> {
        script_variables(&self.variables)
    }

    /// Takes what an executor returned: outputs become readable by later
    /// steps, artifacts are kept.
    fn absorb(&mut self, step: &str, run: StepRun, log: &mut TaskLog<'_>) -> StepState {
        for output in run.outputs {
            if output.sensitive {
                log.add_secret(&output.value);
            }
            self.record_output(step, output, log);
        }
        self.artifacts.extend(run.artifacts);
        run.state
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
            StepState::Failed { reason } => log.tako(
                LogLevel::Error,
                &format!("Step '{}' failed: {reason}", step.name),
            ),
            StepState::Cancelled => log.tako(
                LogLevel::Warning,
                &format!("Step '{}' cancelled", step.name),
            ),
            StepState::Skipped(_) => {}
        }
        self.settle(step, &state);
        StepReport {
            name: step.name.clone(),
            state,
            duration,
        }
    }

    /// Takes a step that ended before a restart as done: its outputs and
    /// state count for the later steps; nothing runs and nothing is logged.
    fn restore(
        &mut self,
        step: &Step,
        recorded: RecordedStep,
        log: &mut TaskLog<'_>,
    ) -> StepReport {
        for (name, value) in step_variables(&step.name) {
            self.variables.set(name, value);
        }
        for output in recorded.outputs {
            if output.sensitive {
                log.add_secret(&output.value);
            }
            self.record_output(&step.name, output, log);
        }
        self.settle(step, &recorded.report.state);
        recorded.report
    }

    /// Takes a step of an earlier deployment as done here: its outputs
    /// count (and go to the sink, as this deployment's), it is shown as
    /// skipped, *succeeded in `from`*; the later steps see its real state.
    fn carry(
        &mut self,
        index: usize,
        step: &Step,
        recorded: RecordedStep,
        from: &str,
        log: &mut TaskLog<'_>,
    ) -> StepReport {
        log.set_step(Some(&step.name));
        for (name, value) in step_variables(&step.name) {
            self.variables.set(name, value);
        }
        log.step_outputs(index, &recorded.outputs);
        for output in recorded.outputs {
            if output.sensitive {
                log.add_secret(&output.value);
            }
            self.record_output(&step.name, output, log);
        }
        self.settle(step, &recorded.report.state);
        let reason = match recorded.report.state {
            StepState::Skipped(reason) => reason,
            _ => SkipReason::Recorded {
                reason: format!("succeeded in {from}"),
            },
        };
        let state = StepState::Skipped(reason);
        log.tako(LogLevel::Info, &format!("Step '{}' {state}", step.name));
        StepReport {
            name: step.name.clone(),
            state,
            duration: Duration::ZERO,
        }
    }

    /// What a step's end means for the steps after it: the first failure
    /// (`Tako.Deployment.Error`) and the step's status variables.
    pub(crate) fn settle(&mut self, step: &Step, state: &StepState) {
        match state {
            StepState::Failed { reason } => {
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
            StepState::Success | StepState::Cancelled | StepState::Skipped(_) => {}
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
    }

    /// [`Deployment::resolve_with`] the server's variables, its warnings
    /// logged and its template secrets masked.
    fn resolve_here(
        &self,
        index: usize,
        step: &Step,
        log: &mut TaskLog<'_>,
    ) -> Result<ResolvedStep, String> {
        let mut warnings = Vec::new();
        let resolved = self.resolve_with(&self.variables, index, step, &mut warnings);
        if let Ok((_, secrets)) = &resolved {
            for secret in secrets {
                log.mask_also(secret);
            }
        }
        for warning in &warnings {
            log.tako(LogLevel::Warning, warning);
        }
        resolved
            .map(|(resolved, _)| resolved)
            .map_err(|error| error.to_string())
    }

    /// Turns `step` into a self-contained description with `variables`:
    /// every text substituted, `Script:` files and step templates read
    /// from the checkout, the working directory confined. Also gives the
    /// sensitive values it derived (a step template's sensitive
    /// parameters, to mask); substitution warnings go to `warnings`.
    fn resolve_with(
        &self,
        variables: &VariableDictionary,
        index: usize,
        step: &Step,
        warnings: &mut Vec<String>,
    ) -> Result<(ResolvedStep, Vec<String>), StepError> {
        let mut secrets = Vec::new();
        let working_directory = match &step.working_directory {
            Some(dir) => {
                let dir = substitute_in(variables, dir, warnings)?;
                let path = confine(&self.settings.working_dir, &dir).map_err(|source| {
                    StepError::Confine {
                        shown: format!("WorkingDirectory {dir:?}:"),
                        source,
                    }
                })?;
                if !path.is_dir() {
                    return Err(StepError::Failed(format!(
                        "WorkingDirectory {dir:?} does not exist in the checkout"
                    )));
                }
                Some(dir)
            }
            None => None,
        };
        let action = match &step.action {
            StepAction::Run(body) => {
                let body = substitute_in(variables, body, warnings)?;
                ResolvedAction::Script {
                    shell: step.shell.clone(),
                    body,
                    variables: script_variables(variables),
                    template: None,
                }
            }
            StepAction::Script(path) => {
                let path = substitute_in(variables, path, warnings)?;
                let file = confine(&self.settings.working_dir, &path).map_err(|source| {
                    StepError::Confine {
                        shown: format!("Script {path:?}:"),
                        source,
                    }
                })?;
                let body = std::fs::read_to_string(&file).map_err(|e| {
                    StepError::Failed(format!("cannot read script file {path:?}: {e}"))
                })?;
                let body = substitute_in(variables, &body, warnings)?;
                ResolvedAction::Script {
                    shell: step.shell.clone(),
                    body,
                    variables: script_variables(variables),
                    template: None,
                }
            }
            StepAction::Uses {
                kind: UsesKind::Template(path),
                with,
            } => {
                let path = substitute_in(variables, path, warnings)?;
                let file = confine(&self.settings.working_dir, &path).map_err(|source| {
                    StepError::Confine {
                        shown: format!("Uses {path:?}:"),
                        source,
                    }
                })?;
                let json = std::fs::read_to_string(&file).map_err(|e| {
                    StepError::Failed(format!("cannot read step template {path:?}: {e}"))
                })?;
                let template = steps::step_template::load(&json, with)
                    .map_err(|e| StepError::Failed(format!("{path}: {e}")))?;
                let mut variables = variables.clone();
                for parameter in &template.parameters {
                    variables.set(parameter.name.clone(), parameter.value.clone());
                }
                for parameter in template.parameters.iter().filter(|p| p.sensitive) {
                    let evaluated = variables
                        .get(&parameter.name, &eval_context())
                        .ok()
                        .flatten()
                        .unwrap_or_else(|| parameter.value.clone());
                    secrets.push(evaluated);
                    secrets.push(parameter.value.clone());
                }
                let body = substitute_in(&variables, &template.body, warnings)?;
                let origin = TemplateOrigin {
                    path,
                    name: template.name,
                };
                ResolvedAction::Script {
                    shell: template.shell,
                    body,
                    variables: script_variables(&variables),
                    template: Some(origin),
                }
            }
            StepAction::Uses { kind, with } => {
                let mut parameters = Vec::with_capacity(with.len());
                for (name, value) in with {
                    parameters.push((name.clone(), substitute_value(variables, value, warnings)?));
                }
                ResolvedAction::Builtin {
                    kind: kind.clone(),
                    parameters,
                }
            }
        };
        // Built-in steps take no environment (as before the seam).
        let env = match action {
            ResolvedAction::Script { .. } => self.script_environment(variables, step, warnings)?,
            ResolvedAction::Builtin { .. } => Vec::new(),
        };
        let resolved = ResolvedStep {
            index,
            name: step.name.clone(),
            action,
            working_directory,
            env,
            timeout: step.timeout.duration,
            timeout_text: step.timeout.text.clone(),
            targets: step.targets.clone(),
        };
        Ok((resolved, secrets))
    }

    /// Makes an output readable by later steps and records it (masked).
    fn record_output(&mut self, step: &str, output: StepOutput, log: &TaskLog<'_>) {
        for name in output_variable_names(step, &output.name) {
            self.variables.set(name, output.value.clone());
        }
        if let Some(machine) = &output.machine {
            for name in machine_output_variable_names(step, machine, &output.name) {
                self.variables.set(name, output.value.clone());
            }
        }
        self.outputs.push(OutputVariable {
            step: step.to_owned(),
            name: output.name,
            value: log.masker().mask(&output.value).into_owned(),
            sensitive: output.sensitive,
        });
    }

    /// The script's extra environment: the `TAKO_*` facts and the step's
    /// `Env` (substituted). `TAKO_WORKDIR` is the executor's to add.
    fn script_environment(
        &self,
        variables: &VariableDictionary,
        step: &Step,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<(String, String)>, StepError> {
        let facts = self.facts;
        let mut env = vec![
            ("TAKO_PROJECT".to_owned(), facts.project.clone()),
            ("TAKO_ENVIRONMENT".to_owned(), self.environment.clone()),
            ("TAKO_RELEASE".to_owned(), facts.release_number.clone()),
            ("TAKO_DEPLOYMENT_ID".to_owned(), facts.deployment_id.clone()),
            ("TAKO_GIT_BRANCH".to_owned(), facts.git_branch.clone()),
            ("TAKO_GIT_COMMIT".to_owned(), facts.git_commit.clone()),
        ];
        for (name, value) in &step.env {
            let value = substitute_in(variables, value, warnings)?;
            env.retain(|(existing, _)| existing != name);
            env.push((name.clone(), value));
        }
        Ok(env)
    }
}

/// `value` substituted with `variables`, its warnings kept.
fn substitute_value(
    variables: &VariableDictionary,
    value: &WithValue,
    warnings: &mut Vec<String>,
) -> Result<WithValue, StepError> {
    Ok(match value {
        WithValue::Text(text) => WithValue::Text(substitute_in(variables, text, warnings)?),
        WithValue::List(items) => WithValue::List(
            items
                .iter()
                .map(|item| substitute_value(variables, item, warnings))
                .collect::<Result<_, _>>()?,
        ),
        WithValue::Map(entries) => WithValue::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), substitute_value(variables, v, warnings)?)))
                .collect::<Result<_, StepError>>()?,
        ),
    })
}

/// Every variable, evaluated, for the script API's `get_octopusvariable`.
fn script_variables(variables: &VariableDictionary) -> Vec<(String, String)> {
    let context = eval_context();
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
