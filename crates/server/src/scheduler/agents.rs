//! Steps with `Roles` run on agents (`../shared/spec/agents.md` §1, §4):
//! [`AgentExecutor`] picks the approved, enabled agents of the deployment's
//! environment with one of the step's roles, creates a job for each (at
//! most `MaxParallelism` at once), and waits for them in the store: the
//! agents take them, send their log (stored straight into the deployment's
//! task log, labelled `Step@agent`) and report how they ended. The step's
//! state combines the jobs' (failed if any failed); each job's outputs are
//! readable per agent, and under the step's plain name with the value of
//! the last job to finish.
//!
//! A job its agent does not take within [`AgentSettings::connect_timeout`]
//! fails ("agent win-01 did not take the job"); a job whose agent stops
//! sending heartbeats is interrupted when its lease runs out and never run
//! again. A cancel of the deployment is passed to every job (a running one
//! learns it at its next heartbeat) and the step waits for them to stop.
//!
//! Each agent's job holds the step as the engine resolved it for that
//! agent's roles ([`tako_exec::executor::ForAgents`]): the values scoped
//! to the roles it shares with the step, and, to mask, only the sensitive
//! values it may see; a secret scoped only to roles it lacks never leaves
//! the server for it. Agents are resolved for before any job is created,
//! so a step that cannot be resolved for one of them gives none.
//!
//! Each attempt of a step with `Retries` is a new job per agent, numbered by
//! the attempt and labelled `attempt 2 of 3` in the log, as the engine
//! labels a local step's attempts.
//!
//! A step resumed after a server restart adopts the jobs it had given (they
//! are never given again) and gives the agents still without a job theirs:
//! the agents are chosen again by the same rule (the choice is not stored),
//! so a `MaxParallelism` step goes on with the agents it had not reached.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tako_core::log::LogLevel;
use tako_core::step::{SkipReason, StepState};
use tako_core::system::agent_variables;
use tako_core::{MASK, Masker};
use tako_exec::executor::{AgentStep, ResolvedAction, StepExecutor, StepJob, StepOutput, StepRun};
use tako_exec::sink::TaskLog;
use tako_exec::wire;
use tako_protocol::agent::{
    CheckoutSource, Job as JobSpec, JobAgent, JobOutput, JobVariable, Secret,
};
use tako_store::{Agent, AgentState, DeploymentId, Job, JobId, JobState, NewJob, Store};
use tako_takofile::{StepTargets, WhenNoAgents};
use tokio_util::sync::CancellationToken;

use super::sink::{StoreSink, store_progress};
use crate::services::agent_jobs::{HEARTBEAT_EVERY, JOB_LEASE};
use crate::services::agents::is_online;

/// How often the executor looks at its jobs.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// How often it asks the store to interrupt jobs whose lease ran out (a
/// write: not at every look; leases last a minute).
const EXPIRY_EVERY: Duration = Duration::from_secs(1);

/// What running steps on agents needs of the server.
#[derive(Debug, Clone, Copy)]
pub struct AgentSettings {
    /// How long a job waits for its agent to take it.
    pub connect_timeout: Duration,
}

impl Default for AgentSettings {
    fn default() -> AgentSettings {
        AgentSettings {
            connect_timeout: Duration::from_secs(300),
        }
    }
}

/// The agents that run a step with `targets` in `environment` at `now`
/// (active, serving the environment, with one of the roles; with
/// `SkipOfflineAgents` only online ones), and the offline ones left out;
/// or, when there are none, the step's state by its `WhenNoAgents`. A
/// deployment's run and a plan (`crate::plans`) both choose this way.
pub(crate) fn choose(
    agents: Vec<Agent>,
    targets: &StepTargets,
    environment: &str,
    now: DateTime<Utc>,
) -> Result<(Vec<Agent>, Vec<Agent>), StepState> {
    let mut chosen = Vec::new();
    let mut offline = Vec::new();
    for agent in agents {
        let serves = agent
            .environments
            .iter()
            .any(|e| e.eq_ignore_ascii_case(environment));
        let has_role = agent
            .roles
            .iter()
            .any(|r| targets.roles.iter().any(|t| t.eq_ignore_ascii_case(r)));
        if agent.state != AgentState::Active || !serves || !has_role {
            continue;
        }
        if targets.skip_offline_agents && !is_online(&agent, now) {
            offline.push(agent);
            continue;
        }
        chosen.push(agent);
    }
    if chosen.is_empty() {
        let message = format!(
            "no agent in {environment} has any of the roles {}",
            targets.roles.join(", ")
        );
        return Err(match targets.when_no_agents {
            WhenNoAgents::Fail => StepState::Failed { reason: message },
            WhenNoAgents::Skip => StepState::Skipped(SkipReason::NoAgents { message }),
        });
    }
    Ok((chosen, offline))
}

/// Runs one deployment's `Roles` steps on agents.
pub(super) struct AgentExecutor {
    pub(super) store: Arc<dyn Store>,
    pub(super) deployment: DeploymentId,
    pub(super) sink: Arc<StoreSink>,
    pub(super) settings: AgentSettings,
    /// Notified when a job is created: wakes the agents' long polls.
    pub(super) jobs_created: Arc<tokio::sync::Notify>,
}

/// One agent's part of the step, as far as the executor has got.
struct Part {
    agent: Agent,
    /// The step resolved for this agent (`None` for a job adopted after a
    /// restart: it was made before).
    step: Option<Arc<AgentStep>>,
    job: Option<JobId>,
    ended: Option<Job>,
}

impl AgentExecutor {
    /// The agents that must run a step with `targets` in `environment`,
    /// or why there are none.
    async fn agents_for(
        &self,
        targets: &StepTargets,
        environment: &str,
        log: &TaskLog<'_>,
    ) -> Result<Vec<Agent>, StepState> {
        let agents = self.store.list_agents().await.map_err(|error| {
            tracing::error!(deployment = %self.deployment, %error, "cannot read the agents");
            StepState::Failed {
                reason: "the server's database was unavailable while choosing the agents"
                    .to_owned(),
            }
        })?;
        let (chosen, offline) = choose(agents, targets, environment, Utc::now())?;
        for agent in offline {
            log.tako(
                LogLevel::Warning,
                &format!(
                    "Agent {} is offline ({}): left out (SkipOfflineAgents)",
                    agent.name,
                    last_seen(agent.last_seen_at)
                ),
            );
        }
        Ok(chosen)
    }

    /// After a server restart: the jobs this attempt of the step had given
    /// its agents before (never given again: a step runs at most once per agent),
    /// as parts to wait for. Empty for a step starting afresh.
    async fn jobs_already_given(
        &self,
        step_index: usize,
        attempt: u32,
        log: &TaskLog<'_>,
    ) -> Result<Vec<Part>, String> {
        let unavailable = |error: tako_store::StoreError| {
            tracing::error!(deployment = %self.deployment, %error, "cannot read the jobs");
            "the server's database was unavailable while looking for the step's jobs".to_owned()
        };
        let jobs: Vec<Job> = self
            .store
            .list_jobs(self.deployment)
            .await
            .map_err(unavailable)?
            .into_iter()
            .filter(|j| {
                usize::try_from(j.step_index).ok() == Some(step_index) && j.attempt == attempt
            })
            .collect();
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let agents = self.store.list_agents().await.map_err(unavailable)?;
        let mut parts = Vec::new();
        for job in jobs {
            let Some(agent) = agents.iter().find(|a| a.id == job.agent) else {
                return Err(format!(
                    "agent {} (of job {}) was removed while the server was down",
                    job.agent_name, job.id
                ));
            };
            parts.push(Part {
                agent: agent.clone(),
                step: None,
                job: Some(job.id.clone()),
                ended: None,
            });
        }
        let names: Vec<&str> = parts.iter().map(|p| p.agent.name.as_str()).collect();
        log.tako(
            LogLevel::Info,
            &format!(
                "Waiting for the job(s) given before the restart to {} (never given again)",
                names.join(", ")
            ),
        );
        Ok(parts)
    }

    /// The job `agent` gets for `job`: `scoped`, the step resolved for its
    /// roles, with the values to mask that go with it (no other secret).
    fn spec(&self, id: &JobId, agent: &Agent, job: &StepJob<'_>, scoped: &AgentStep) -> JobSpec {
        let step = &scoped.step;
        let masker = Masker::with_values(scoped.secrets.iter().map(String::as_str));
        let agent_vars = agent_variables(&agent.name, &agent.roles);
        let machine = |text: &str| machine_substitute(text, &agent_vars);
        let mut wire_step = wire::job_step(step);
        if let tako_protocol::agent::JobAction::Script { body, .. } = &mut wire_step.action {
            *body = machine(body);
        }
        wire_step
            .env
            .push(("TAKO_AGENT_NAME".to_owned(), agent.name.clone()));
        wire_step
            .env
            .push(("TAKO_AGENT_ROLES".to_owned(), agent.roles.join(",")));
        let mut variables: Vec<JobVariable> = match &step.action {
            ResolvedAction::Script { variables, .. } => variables
                .iter()
                .map(|(name, value)| JobVariable {
                    name: name.clone(),
                    sensitive: masker.mask(value).contains(MASK),
                    value: value.clone(),
                })
                .collect(),
            ResolvedAction::Builtin { .. } => Vec::new(),
        };
        variables.extend(agent_vars.iter().map(|(name, value)| JobVariable {
            name: name.clone(),
            value: value.clone(),
            sensitive: false,
        }));
        JobSpec {
            id: id.0.clone(),
            deployment: self.deployment.0,
            agent: JobAgent {
                name: agent.name.clone(),
                roles: agent.roles.clone(),
            },
            step: wire_step,
            facts: wire::job_facts(job.facts),
            variables,
            mask: masker.patterns().map(|p| Secret(p.to_owned())).collect(),
            source: CheckoutSource {
                commit: job.facts.git_commit.clone(),
                path: tako_protocol::agent::source_path(&id.0),
            },
            error: job.first_error.map(str::to_owned),
            steps_so_far: job.steps_so_far.to_vec(),
            lease_seconds: u32::try_from(JOB_LEASE.as_secs()).unwrap_or(60),
            heartbeat_seconds: u32::try_from(HEARTBEAT_EVERY.as_secs()).unwrap_or(10),
        }
    }

    /// Creates `agent`'s job for the step.
    async fn start(
        &self,
        part: &mut Part,
        job: &StepJob<'_>,
        log: &TaskLog<'_>,
    ) -> Result<(), String> {
        let Some(scoped) = &part.step else {
            return Err(format!(
                "the step was not resolved for agent {}",
                part.agent.name
            ));
        };
        let id = JobId(new_job_id(self.deployment, job.step.index));
        let spec = self.spec(&id, &part.agent, job, scoped);
        let spec = serde_json::to_string(&spec).map_err(|e| e.to_string())?;
        // The step's own lines so far go first in the task log.
        store_progress(&*self.store, self.deployment, &self.sink).await;
        self.store
            .create_job(NewJob {
                id: id.clone(),
                deployment: self.deployment,
                step_index: u32::try_from(job.step.index).unwrap_or(u32::MAX),
                step_name: job.step.name.clone(),
                agent: part.agent.id,
                agent_name: part.agent.name.clone(),
                spec,
                attempt: job.attempt,
            })
            .await
            .map_err(|error| {
                tracing::error!(deployment = %self.deployment, %error, "cannot create a job");
                "the server's database was unavailable while creating the job".to_owned()
            })?;
        self.jobs_created.notify_waiters();
        log.tako(
            LogLevel::Info,
            &format!(
                "Waiting for agent {} (job {id}{})",
                part.agent.name,
                attempt_note(job.attempt, job.attempts)
                    .map(|a| format!(", {a}"))
                    .unwrap_or_default()
            ),
        );
        part.job = Some(id);
        Ok(())
    }

    /// Looks at the started jobs once; returns those that ended now.
    async fn poll(
        &self,
        parts: &mut [Part],
        order: &mut Vec<usize>,
        expired_checked: &mut Option<std::time::Instant>,
    ) {
        let now = Utc::now();
        if expired_checked.is_none_or(|at| at.elapsed() >= EXPIRY_EVERY) {
            *expired_checked = Some(std::time::Instant::now());
            if let Err(error) = self.store.interrupt_expired_jobs(now).await {
                tracing::warn!(%error, "cannot interrupt lost jobs");
            }
        }
        let jobs = match self.store.list_jobs(self.deployment).await {
            Ok(jobs) => jobs,
            Err(error) => {
                tracing::warn!(deployment = %self.deployment, %error, "cannot read jobs");
                return;
            }
        };
        for (index, part) in parts.iter_mut().enumerate() {
            let Some(id) = &part.job else { continue };
            if part.ended.is_some() {
                continue;
            }
            let Some(job) = jobs.iter().find(|j| &j.id == id) else {
                continue;
            };
            let mut job = job.clone();
            if job.state == JobState::Pending {
                let waited = (now - job.created_at).to_std().unwrap_or_default();
                if waited >= self.settings.connect_timeout {
                    let reason = format!("agent {} did not take the job", part.agent.name);
                    match self.store.fail_unclaimed_job(id, &reason, now).await {
                        Ok(failed) => job = failed,
                        // Taken in the meantime: look again next time.
                        Err(_) => continue,
                    }
                }
            }
            if job.state.is_final() {
                part.ended = Some(job);
                order.push(index);
            }
        }
    }

    /// Asks every open job to stop.
    async fn cancel_all(&self, parts: &[Part]) {
        for part in parts {
            if let (Some(id), None) = (&part.job, &part.ended)
                && let Err(error) = self.store.request_job_cancel(id, Utc::now()).await
            {
                tracing::debug!(job = %id, %error, "cannot cancel a job");
            }
        }
    }

    /// The outputs of an ended job, named for its agent.
    async fn outputs(&self, job: &Job) -> Vec<StepOutput> {
        let Ok(Some(text)) = self.store.job_outputs(&job.id).await else {
            return Vec::new();
        };
        let outputs: Vec<JobOutput> = serde_json::from_str(&text).unwrap_or_default();
        outputs
            .into_iter()
            .map(|o| StepOutput {
                name: o.name,
                value: o.value,
                sensitive: o.sensitive,
                machine: Some(job.agent_name.clone()),
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl StepExecutor for AgentExecutor {
    async fn run(
        &self,
        job: StepJob<'_>,
        log: &mut TaskLog<'_>,
        cancel: &CancellationToken,
    ) -> StepRun {
        let Some(targets) = job.step.targets.clone() else {
            return StepRun::failed("the step has no Roles: it runs on the server");
        };
        let adopted = match self
            .jobs_already_given(job.step.index, job.attempt, log)
            .await
        {
            Ok(parts) => parts,
            Err(reason) => return StepRun::failed(reason),
        };
        // Chosen afresh after a restart too (the choice is not stored): the
        // agents that serve the step now and have no job of it yet get
        // theirs, so a `MaxParallelism` step goes on where it stopped.
        let agents = match self.agents_for(&targets, &job.facts.environment, log).await {
            Ok(agents) => Ok(agents
                .into_iter()
                .filter(|agent| !adopted.iter().any(|p| p.agent.id == agent.id))
                .collect::<Vec<_>>()),
            Err(_) if !adopted.is_empty() => Ok(Vec::new()),
            Err(state) => Err(state),
        };
        let agents = match agents {
            Ok(agents) => agents,
            Err(state) => {
                if let StepState::Skipped(reason) = &state {
                    log.tako(
                        LogLevel::Info,
                        &format!("Step '{}' skipped: {reason}", job.step.name),
                    );
                }
                return StepRun {
                    state,
                    outputs: Vec::new(),
                    artifacts: Vec::new(),
                };
            }
        };
        let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
        let at_once = targets
            .max_parallelism
            .map_or(agents.len() + adopted.len(), |n| n as usize)
            .max(1);
        if !adopted.is_empty() && !agents.is_empty() {
            log.tako(
                LogLevel::Info,
                &format!(
                    "Still to run on {} agent{} ({}){}",
                    agents.len(),
                    if agents.len() == 1 { "" } else { "s" },
                    names.join(", "),
                    if at_once < agents.len() + adopted.len() {
                        format!(", {at_once} at a time")
                    } else {
                        String::new()
                    }
                ),
            );
        }
        if adopted.is_empty() {
            log.tako(
                LogLevel::Info,
                &format!(
                    "Running on {} agent{} ({}){}",
                    agents.len(),
                    if agents.len() == 1 { "" } else { "s" },
                    names.join(", "),
                    if at_once < agents.len() {
                        format!(", {at_once} at a time")
                    } else {
                        String::new()
                    }
                ),
            );
        }
        // Each agent's step, resolved for its roles before any job is made.
        let Some(for_agents) = job.for_agents else {
            return StepRun::failed("the engine did not resolve the step for its agents");
        };
        let mut parts: Vec<Part> = Vec::with_capacity(agents.len() + adopted.len());
        for agent in agents {
            let step = match for_agents.resolve_for(&agent.roles, log) {
                Ok(step) => step,
                Err(reason) => {
                    return StepRun::failed(format!("for agent {}: {reason}", agent.name));
                }
            };
            parts.push(Part {
                agent,
                step: Some(step),
                job: None,
                ended: None,
            });
        }
        parts.extend(adopted);
        let mut order = Vec::new();
        let mut cancelled = false;
        let mut expired_checked = None;
        loop {
            let running = parts
                .iter()
                .filter(|p| p.job.is_some() && p.ended.is_none())
                .count();
            let mut free = at_once.saturating_sub(running);
            if !cancelled && !cancel.is_cancelled() {
                for part in parts.iter_mut().filter(|p| p.job.is_none()) {
                    if free == 0 {
                        break;
                    }
                    if let Err(reason) = self.start(part, &job, log).await {
                        return StepRun::failed(reason);
                    }
                    free -= 1;
                }
            }
            if cancel.is_cancelled() && !cancelled {
                cancelled = true;
                self.cancel_all(&parts).await;
            }
            let open = parts
                .iter()
                .any(|p| p.ended.is_none() && (p.job.is_some() || !cancelled));
            if !open {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL_EVERY) => {}
                () = cancel.cancelled(), if !cancelled => {}
            }
            self.poll(&mut parts, &mut order, &mut expired_checked)
                .await;
        }

        let mut outputs = Vec::new();
        let mut failures = Vec::new();
        let mut any_cancelled = false;
        let note = attempt_note(job.attempt, job.attempts)
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        for index in order {
            let Some(job) = &parts[index].ended else {
                continue;
            };
            let took = job
                .duration_ms
                .map(|ms| {
                    format!(
                        " in {}",
                        tako_exec::engine::human(Duration::from_millis(ms))
                    )
                })
                .unwrap_or_default();
            match job.state {
                JobState::Success => {
                    log.tako(
                        LogLevel::Info,
                        &format!("Agent {} succeeded{took}{note}", job.agent_name),
                    );
                    outputs.extend(self.outputs(job).await);
                }
                JobState::Cancelled => {
                    any_cancelled = true;
                    log.tako(
                        LogLevel::Warning,
                        &format!("Agent {} cancelled{note}", job.agent_name),
                    );
                }
                JobState::Interrupted => {
                    let at = job
                        .finished_at
                        .map(|t| t.format("%H:%M:%S UTC").to_string())
                        .unwrap_or_default();
                    let reason = format!(
                        "agent {} stopped answering (its job was interrupted at {at}; it is not run again)",
                        job.agent_name
                    );
                    log.tako(
                        LogLevel::Error,
                        &format!("Agent {}{note}: {reason}", job.agent_name),
                    );
                    failures.push(reason);
                }
                _ => {
                    let reason = job.reason.clone().unwrap_or_else(|| "it failed".to_owned());
                    log.tako(
                        LogLevel::Error,
                        &format!("Agent {} failed{took}{note}: {reason}", job.agent_name),
                    );
                    failures.push(format!("on agent {}: {reason}", job.agent_name));
                    outputs.extend(self.outputs(job).await);
                }
            }
        }
        let state = if !failures.is_empty() {
            StepState::Failed {
                reason: failures.join("; "),
            }
        } else if any_cancelled || cancelled {
            StepState::Cancelled
        } else {
            StepState::Success
        };
        StepRun {
            state,
            outputs,
            artifacts: Vec::new(),
        }
    }
}

/// `#{Tako.Agent.Name}`, `#{Octopus.Machine.Name}` and the roles replaced in
/// a text the engine substituted before the agent was known (it leaves
/// unknown variables as written).
fn machine_substitute(text: &str, agent_vars: &[(String, String)]) -> String {
    let mut text = text.to_owned();
    for (name, value) in agent_vars {
        let token = format!("#{{{name}}}");
        if text.contains(&token) {
            text = text.replace(&token, value);
        }
    }
    text
}

/// `attempt 2 of 3` (none for a step without `Retries`), as the engine
/// labels a local step's attempts: each attempt is a new job per agent.
fn attempt_note(attempt: u32, attempts: u32) -> Option<String> {
    (attempts > 1).then(|| format!("attempt {attempt} of {attempts}"))
}

fn last_seen(at: Option<DateTime<Utc>>) -> String {
    match at {
        Some(at) => format!("last seen {}", at.format("%Y-%m-%d %H:%M:%S UTC")),
        None => "never seen".to_owned(),
    }
}

/// A new job id: the deployment, the step and 64 random bits.
fn new_job_id(deployment: DeploymentId, step: usize) -> String {
    let mut bytes = [0u8; 8];
    let random = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        // No randomness: the clock still tells jobs apart.
        Err(_) => Utc::now()
            .timestamp_nanos_opt()
            .unwrap_or_default()
            .unsigned_abs(),
    };
    format!("job-{}-{step}-{random:016x}", deployment.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_variables_are_filled_in_after_the_engine() {
        let vars = agent_variables("win-01", &["ps".to_owned(), "web".to_owned()]);
        assert_eq!(
            machine_substitute(
                "on #{Octopus.Machine.Name} (#{Tako.Agent.Roles}) #{Other}",
                &vars
            ),
            "on win-01 (ps,web) #{Other}"
        );
    }

    #[test]
    fn job_ids_differ() {
        let a = new_job_id(DeploymentId(3), 1);
        let b = new_job_id(DeploymentId(3), 1);
        assert!(a.starts_with("job-3-1-"), "{a}");
        assert_ne!(a, b);
    }
}
