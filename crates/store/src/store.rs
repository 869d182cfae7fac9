//! The [`Store`] trait: every operation the server needs, grouped by who uses
//! it (intake, router, scheduler, engine, API).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::agents::{Agent, AgentId, AgentState, EnrollmentToken, NewAgent, NewEnrollmentToken};
use crate::error::{StoreError, StoreResult};
use crate::jobs::{ChunkOutcome, Job, JobEnd, JobId, JobLease, NewJob};
use crate::model::WebhookSecret;
use crate::model::{
    ApiToken, Approval, AuditEntry, ClaimedDelivery, Delivery, DeliveryCompletion, DeliveryId,
    DeliveryOutcome, Deployment, DeploymentFilter, DeploymentId, DeploymentState, DeploymentTarget,
    EnvironmentPolicy, Freeze, InsertOutcome, InterruptScope, Intervention, InterventionAnswer,
    LogCursor, LogLineRecord, LogPage, NewApiToken, NewApproval, NewAuditEntry, NewDelivery,
    NewDeployment, NewFreeze, NewIntervention, NewProject, NewRelease, NewVariable, NodeId, Page,
    PageRequest, Project, ProjectId, Prune, Release, ReleaseId, StepRecord, TokenHash, TokenId,
    Variable, VariableId,
};
use crate::wakeups::Wakeups;

/// Everything Tako keeps. Usable as `Arc<dyn Store>`.
///
/// Claims (`claim_*`) hand a row to one node for `lease`; a claim whose lease
/// has expired can be taken by any node. Each method is one transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ----- projects -----

    /// Registers a project. `Conflict` when its name (without regard to case)
    /// or its repository (normalised) is taken.
    async fn create_project(&self, project: NewProject) -> StoreResult<Project>;
    /// A project by id; `NotFound` when there is none.
    async fn get_project(&self, id: ProjectId) -> StoreResult<Project>;
    /// A project by name, without regard to case.
    async fn find_project_by_name(&self, name: &str) -> StoreResult<Option<Project>>;
    /// The project whose repository matches `url` after
    /// [`crate::normalize_repository_url`].
    async fn find_project_by_repository(&self, url: &str) -> StoreResult<Option<Project>>;
    /// Every project, by name.
    async fn list_projects(&self) -> StoreResult<Vec<Project>>;
    /// Replaces (or, with `None`, removes) a project's own webhook secret.
    async fn set_webhook_secret(
        &self,
        project: ProjectId,
        secret: Option<WebhookSecret>,
    ) -> StoreResult<Project>;
    /// Replaces (or, with `None`, removes) how the project's deployments are
    /// reported back to its forge (the token is sealed).
    async fn set_forge_status(
        &self,
        project: ProjectId,
        status: Option<crate::model::ForgeStatus>,
    ) -> StoreResult<Project>;
    /// Takes the project's next build counter value (1, 2, ...) atomically.
    async fn next_build_number(&self, project: ProjectId) -> StoreResult<i64>;
    /// The value [`Store::next_build_number`] would take now, without
    /// taking it (a plan's release number).
    async fn peek_build_number(&self, project: ProjectId) -> StoreResult<i64>;

    // ----- freezes (journey.md §5) -----
    /// Stores a freeze (its project must exist).
    async fn create_freeze(&self, freeze: NewFreeze) -> StoreResult<Freeze>;
    /// Every freeze, oldest first.
    async fn list_freezes(&self) -> StoreResult<Vec<Freeze>>;
    /// Deletes a freeze; `NotFound` when there is none.
    async fn delete_freeze(&self, id: i64) -> StoreResult<()>;
    /// Releases a `Held` deployment (its freeze ended, or an admin
    /// overrode it): `Queued`, or `AwaitingApproval` when it waits for
    /// approvals; `InvalidTransition` when it is not held.
    async fn release_held(&self, id: DeploymentId) -> StoreResult<Deployment>;

    // ----- intake -----

    /// Stores a batch of deliveries in one transaction, one outcome per
    /// input in order; a duplicate id (stored before or earlier in the batch)
    /// creates nothing.
    async fn insert_deliveries(
        &self,
        deliveries: &[NewDelivery],
    ) -> StoreResult<Vec<InsertOutcome>>;
    /// How many [`Store::insert_deliveries`] batches are worth writing at
    /// once: 1 for a store with one writer (SQLite), more for one that
    /// commits on several connections in parallel (PostgreSQL).
    fn intake_parallelism(&self) -> usize {
        1
    }

    // ----- router -----

    /// Claims up to `limit` (at least one) of the oldest pending deliveries
    /// that have no unexpired claim, oldest first, in one transaction: a
    /// router takes a burst a batch at a time rather than a commit per
    /// delivery.
    async fn claim_pending_deliveries(
        &self,
        node: &NodeId,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Claims the oldest pending delivery that has no unexpired claim.
    async fn claim_pending_delivery(
        &self,
        node: &NodeId,
        lease: Duration,
    ) -> StoreResult<Option<ClaimedDelivery>> {
        Ok(self
            .claim_pending_deliveries(node, lease, 1)
            .await?
            .into_iter()
            .next())
    }
    /// Releases every pending delivery claimed by `node` (its start-up
    /// recovery: what it held when it stopped is taken again at once rather
    /// than after the lease). Returns how many.
    async fn release_delivery_claims(&self, node: &NodeId) -> StoreResult<u64>;
    /// Marks a delivery done with its outcome; a `Queue` completion creates
    /// the release and the deployment in the same transaction. Completing a
    /// delivery that is already done changes nothing and returns its
    /// recorded outcome.
    async fn complete_delivery(
        &self,
        id: &DeliveryId,
        completion: DeliveryCompletion,
    ) -> StoreResult<DeliveryOutcome> {
        self.complete_deliveries(vec![(id.clone(), completion)])
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::not_found(format!("delivery {id}"))))
    }
    /// Completes several deliveries (as [`Store::complete_delivery`]) in one
    /// transaction, one answer per input in order. Each is completed on its
    /// own: one that cannot be (`NotFound`, `Conflict`) is rolled back alone
    /// and answered with its error while the others are committed. `Err` is
    /// the store's: nothing was recorded.
    async fn complete_deliveries(
        &self,
        completions: Vec<(DeliveryId, DeliveryCompletion)>,
    ) -> StoreResult<Vec<StoreResult<DeliveryOutcome>>>;
    /// A delivery by id (without its body).
    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Delivery>;
    /// Deliveries, newest first, optionally only those of a project (matched
    /// by repository, or recorded at completion).
    async fn list_deliveries(
        &self,
        project: Option<ProjectId>,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>>;
    /// Makes a processed delivery pending again (its outcome is cleared), so
    /// the router processes its stored body once more. Releases and
    /// deployments it created stay. `InvalidTransition` when it is still
    /// pending.
    async fn replay_delivery(&self, id: &DeliveryId) -> StoreResult<Delivery>;
    /// The commit (`after`) of the newest push delivery of `project`'s
    /// repository to `git_ref` that queued a release or deployment: the
    /// last push Tako processed for that ref. `None` when there is none.
    /// `NotFound` when the project does not exist.
    async fn last_processed_head(
        &self,
        project: ProjectId,
        git_ref: &str,
    ) -> StoreResult<Option<String>>;
    /// The newest delivery (any state or outcome) of `project`'s repository
    /// that moved `git_ref` to `after`: whether Tako has seen that push.
    /// `NotFound` when the project does not exist.
    async fn find_push_delivery(
        &self,
        project: ProjectId,
        git_ref: &str,
        after: &str,
    ) -> StoreResult<Option<Delivery>>;

    /// Adds `warnings` to a delivery's (each once, in order). `NotFound`
    /// when there is no such delivery.
    async fn add_delivery_warnings(&self, id: &DeliveryId, warnings: &[String]) -> StoreResult<()>;

    // ----- releases -----

    /// Creates a release. `Conflict` when its number is taken in its project.
    async fn create_release(&self, release: NewRelease) -> StoreResult<Release>;
    /// Creates a release and queues a deployment of it to each of
    /// `targets` (awaiting approval when the target has a rule), in order, in one transaction: when anything fails
    /// nothing is kept. `Conflict` when its number is taken in its project.
    async fn create_release_with_deployments(
        &self,
        release: NewRelease,
        targets: &[DeploymentTarget],
    ) -> StoreResult<(Release, Vec<Deployment>)>;
    /// A release by id.
    async fn get_release(&self, id: ReleaseId) -> StoreResult<Release>;
    /// A release by project and number.
    async fn find_release_by_number(
        &self,
        project: ProjectId,
        number: &str,
    ) -> StoreResult<Option<Release>>;
    /// The project's most recently created release.
    async fn latest_release(&self, project: ProjectId) -> StoreResult<Option<Release>>;
    /// A project's releases, newest first.
    async fn list_releases(
        &self,
        project: ProjectId,
        page: PageRequest,
    ) -> StoreResult<Page<Release>>;

    // ----- deployments -----

    /// Queues a deployment of a release (deploy again, promote); with an
    /// approval rule it is created `AwaitingApproval` instead.
    async fn create_deployment(&self, deployment: NewDeployment) -> StoreResult<Deployment>;
    /// A deployment by id.
    async fn get_deployment(&self, id: DeploymentId) -> StoreResult<Deployment>;
    /// Deployments, newest first, filtered.
    async fn list_deployments(
        &self,
        filter: &DeploymentFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Deployment>>;
    /// The latest deployment of each project and environment (optionally of
    /// one project), by project then environment: the dashboard. Its cost
    /// does not grow with the history.
    async fn latest_deployments(&self, project: Option<ProjectId>) -> StoreResult<Vec<Deployment>>;
    /// The latest deployment of each of `releases` in each environment, by
    /// release then environment.
    async fn release_deployments(&self, releases: &[ReleaseId]) -> StoreResult<Vec<Deployment>>;
    /// Claims the oldest queued deployment whose project and environment have
    /// none running (on any node), when fewer than `max_running` run on
    /// `node` (`max_concurrent_deployments` is per node), and marks it
    /// `Running`, held by `node`.
    async fn claim_next_deployment(
        &self,
        node: &NodeId,
        lease: Duration,
        max_running: u32,
    ) -> StoreResult<Option<Deployment>>;
    /// Extends a running deployment's lease; `Conflict` when `node` no
    /// longer holds it.
    async fn renew_deployment_lease(
        &self,
        id: DeploymentId,
        node: &NodeId,
        lease: Duration,
    ) -> StoreResult<DateTime<Utc>>;
    /// Ends a running deployment in `state` (a final state).
    /// `InvalidTransition` when it is not running or `state` is not final.
    async fn finish_deployment(
        &self,
        id: DeploymentId,
        state: DeploymentState,
        error: Option<String>,
    ) -> StoreResult<Deployment>;
    /// Asks for a deployment to stop: a queued one is cancelled at once, a
    /// running one gets its `cancel_requested` flag. `InvalidTransition` when
    /// it has already ended.
    async fn request_cancel(&self, id: DeploymentId) -> StoreResult<Deployment>;
    /// Records `decision` on a deployment awaiting approval, in one
    /// transaction: a rejection cancels it (its error: *rejected by X:
    /// note*), the approval that makes the rule's count (approvals by
    /// different people) queues it. `InvalidTransition` when it awaits no
    /// approval; `Conflict` when this person (name without regard to case)
    /// has already decided on it. Who may decide is the caller's rule.
    async fn record_approval(
        &self,
        id: DeploymentId,
        decision: NewApproval,
    ) -> StoreResult<Deployment>;
    /// A deployment's approvals and rejections, oldest first.
    async fn list_approvals(&self, id: DeploymentId) -> StoreResult<Vec<Approval>>;
    /// Pauses a running deployment at a step that waits for a person, in
    /// one transaction: it becomes `Paused` (no lease, no node, so its
    /// environment's slot and the scheduler's are free) and the pause is
    /// recorded. `InvalidTransition` when it is not running.
    async fn pause_deployment(
        &self,
        id: DeploymentId,
        pause: NewIntervention,
    ) -> StoreResult<Deployment>;
    /// Answers a paused deployment's open pause, in one transaction: the
    /// answer is recorded, the paused step takes the state the answer
    /// gives it ([`InterventionAction::effect`]: success, pending again for
    /// a retry, failed) with `step_reason` and `outputs` when given, and the
    /// deployment is queued again or, on abort, failed with `error`.
    /// `InvalidTransition` when it is not paused or the answer does not fit
    /// the pause's kind. Who may answer is the caller's rule.
    async fn answer_intervention(
        &self,
        id: DeploymentId,
        answer: InterventionAnswer,
    ) -> StoreResult<Deployment>;
    /// A deployment's pauses and their answers, oldest first.
    async fn list_interventions(&self, id: DeploymentId) -> StoreResult<Vec<Intervention>>;
    /// Cancels every deployment awaiting approval whose deadline is at or
    /// before `now` (its error: *approval timed out: not approved by
    /// <deadline>*), returning them.
    async fn expire_approvals(&self, now: DateTime<Utc>) -> StoreResult<Vec<Deployment>>;
    /// Ends the running deployments in `scope` as `Interrupted`, returning
    /// their ids (start-up recovery, dead nodes).
    async fn interrupt_running(&self, scope: InterruptScope) -> StoreResult<Vec<DeploymentId>>;
    /// Records a step's state (inserted or replaced by index).
    async fn update_step(&self, deployment: DeploymentId, step: StepRecord) -> StoreResult<()>;
    /// A deployment's steps, by index.
    async fn list_steps(&self, deployment: DeploymentId) -> StoreResult<Vec<StepRecord>>;
    /// Keeps step `index`'s output variables (`outputs`, JSON; sealed at
    /// rest), so a deployment resumed after a restart can read them;
    /// `NotFound` when the step has no row yet.
    async fn set_step_outputs(
        &self,
        deployment: DeploymentId,
        index: u32,
        outputs: String,
    ) -> StoreResult<()>;
    /// Replaces a forwarded deployment's progress record (JSON); durable
    /// when this returns. `NotFound` when there is no such deployment of
    /// kind `octopus`.
    async fn set_deployment_forward(&self, id: DeploymentId, forward: &str) -> StoreResult<()>;
    /// The output variables kept for a deployment's steps, by step index.
    async fn step_outputs(&self, deployment: DeploymentId) -> StoreResult<Vec<(u32, String)>>;
    /// Puts `node`'s running deployments that wait on agents, and its
    /// running forwarded ones (kind `octopus`: the work runs in Octopus),
    /// back in the queue, to be resumed where they were rather than
    /// interrupted; returns them. Waiting on agents: a live job (pending or
    /// running), or a running step that has jobs (all ended: a
    /// `MaxParallelism` step between one job's end and the next one's
    /// creation). Call it at start-up, before [`Store::interrupt_running`].
    async fn requeue_waiting_on_agents(&self, node: &NodeId) -> StoreResult<Vec<DeploymentId>>;

    // ----- task log -----

    /// Appends a batch of lines to a deployment's task log.
    async fn append_log(
        &self,
        deployment: DeploymentId,
        lines: &[LogLineRecord],
    ) -> StoreResult<()>;
    /// Up to `limit` lines after `after`, in order, and the cursor to read on.
    async fn read_log(
        &self,
        deployment: DeploymentId,
        after: LogCursor,
        limit: u32,
    ) -> StoreResult<LogPage>;

    // ----- project variables -----

    /// Sets a variable, replacing the one with the same name and scope.
    async fn set_variable(&self, variable: NewVariable) -> StoreResult<Variable>;
    /// A project's variables, by name then scope.
    async fn list_variables(&self, project: ProjectId) -> StoreResult<Vec<Variable>>;
    /// Deletes a variable; `NotFound` when there is none.
    async fn delete_variable(&self, id: VariableId) -> StoreResult<()>;

    // ----- API tokens -----

    /// Stores a new token's hash. `Conflict` when the hash exists.
    async fn create_token(&self, token: NewApiToken) -> StoreResult<ApiToken>;
    /// The token with this hash, revoked or not.
    async fn find_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<ApiToken>>;
    /// Every token, oldest first.
    async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>>;
    /// Records a use of a token.
    async fn touch_token(&self, id: TokenId, at: DateTime<Utc>) -> StoreResult<()>;
    /// Revokes a token.
    async fn revoke_token(&self, id: TokenId) -> StoreResult<()>;

    // ----- environment policies -----

    /// Sets which branches may deploy into `environment` of `project`
    /// (replacing its policy; environments match without regard to case).
    async fn set_environment_policy(
        &self,
        project: ProjectId,
        environment: &str,
        allowed_branches: &[String],
    ) -> StoreResult<EnvironmentPolicy>;
    /// The policy of `environment` in `project`, if it has one.
    async fn find_environment_policy(
        &self,
        project: ProjectId,
        environment: &str,
    ) -> StoreResult<Option<EnvironmentPolicy>>;
    /// A project's environment policies, by environment.
    async fn list_environment_policies(
        &self,
        project: ProjectId,
    ) -> StoreResult<Vec<EnvironmentPolicy>>;
    /// Removes a policy; `NotFound` when there is none.
    async fn delete_environment_policy(
        &self,
        project: ProjectId,
        environment: &str,
    ) -> StoreResult<()>;

    // ----- audit log -----

    /// Appends an entry (the log is append-only: nothing updates or deletes
    /// one).
    async fn append_audit(&self, entry: NewAuditEntry) -> StoreResult<AuditEntry>;
    /// Entries, newest first.
    async fn list_audit(&self, page: PageRequest) -> StoreResult<Page<AuditEntry>>;

    // ----- encryption at rest -----

    /// Makes the key `current` (already in the store's keyring) the one new
    /// secrets are sealed under, and re-seals every stored secret under it
    /// in one transaction (secrets stored in the clear by an older Tako are
    /// sealed too). On failure nothing changes. Returns how many values were
    /// re-sealed. `NotFound` when the keyring does not hold `current`.
    async fn reseal_secrets(&self, current: &str) -> StoreResult<u64>;

    // ----- monitoring -----

    /// Deliveries by outcome, deployments by state and finished steps by
    /// state, as they are now.
    async fn totals(&self) -> StoreResult<crate::model::Totals>;

    // ----- agents -----

    /// Stores a single-use enrollment token. `Conflict` when the hash exists.
    async fn create_enrollment_token(
        &self,
        token: NewEnrollmentToken,
    ) -> StoreResult<EnrollmentToken>;
    /// Exchanges an enrollment token for an enrolled agent, in one
    /// transaction: the agent gets the token's name (if it fixes one, else
    /// the agent's), environments and roles, and is `Active` when the token
    /// auto-approves, else `Pending`; the token is used up. `NotFound` for
    /// an unknown token, `InvalidTransition` for a used or expired one,
    /// `Conflict` for a name taken (the token stays usable).
    async fn redeem_enrollment_token(
        &self,
        token: &TokenHash,
        agent: NewAgent,
        now: DateTime<Utc>,
    ) -> StoreResult<Agent>;
    /// The agent with this credential.
    async fn find_agent_by_credential(&self, credential: &TokenHash) -> StoreResult<Option<Agent>>;
    /// The agent with this name (without regard to case).
    async fn find_agent_by_name(&self, name: &str) -> StoreResult<Option<Agent>>;
    /// Every agent, by name.
    async fn list_agents(&self) -> StoreResult<Vec<Agent>>;
    /// Sets an agent's state; `NotFound` when there is none.
    async fn set_agent_state(&self, id: AgentId, state: AgentState) -> StoreResult<Agent>;
    /// Replaces an agent's credential (its old one stops working).
    async fn set_agent_credential(&self, id: AgentId, credential: TokenHash) -> StoreResult<Agent>;
    /// Removes an agent; `NotFound` when there is none.
    async fn delete_agent(&self, id: AgentId) -> StoreResult<()>;
    /// Records an agent's call and the version it reported.
    async fn touch_agent(&self, id: AgentId, version: &str, at: DateTime<Utc>) -> StoreResult<()>;

    // ----- jobs (a step run by an agent) -----

    /// Creates a pending job (its specification sealed). `Conflict` when the
    /// id exists.
    async fn create_job(&self, job: NewJob) -> StoreResult<Job>;
    /// A job by id.
    async fn get_job(&self, id: &JobId) -> StoreResult<Job>;
    /// A deployment's jobs, by step then agent.
    async fn list_jobs(&self, deployment: DeploymentId) -> StoreResult<Vec<Job>>;
    /// Hands `agent` its oldest pending job, running with `lease`, with the
    /// job's specification opened.
    async fn claim_job(
        &self,
        agent: AgentId,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Job, String)>>;
    /// Extends a running job's lease and tells whether to stop. `NotFound`
    /// when the job is not `agent`'s; `InvalidTransition` when it has ended.
    async fn renew_job(
        &self,
        id: &JobId,
        agent: AgentId,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<JobLease>;
    /// Stores log chunk `seq` of a job into its deployment's task log: the
    /// next chunk is stored (in the same transaction as the new contiguous
    /// number), an earlier one is a duplicate, a later one a gap; nothing is
    /// stored twice or out of order. `NotFound` when the job is not
    /// `agent`'s.
    async fn append_job_log(
        &self,
        id: &JobId,
        agent: AgentId,
        seq: u64,
        lines: &[LogLineRecord],
    ) -> StoreResult<ChunkOutcome>;
    /// Ends a running job (outputs sealed); the same report again returns
    /// the job unchanged. `InvalidTransition` when it ended otherwise (an
    /// interrupted job stays interrupted); `NotFound` when not `agent`'s.
    async fn finish_job(
        &self,
        id: &JobId,
        agent: AgentId,
        end: JobEnd,
        now: DateTime<Utc>,
    ) -> StoreResult<Job>;
    /// A job's specification (opened), for its agent's calls.
    async fn job_spec(&self, id: &JobId) -> StoreResult<String>;
    /// A finished job's output variables (opened), if it reported any.
    async fn job_outputs(&self, id: &JobId) -> StoreResult<Option<String>>;
    /// Asks for a job to stop: a pending one is cancelled at once, a running
    /// one flagged (its agent learns at its next heartbeat).
    async fn request_job_cancel(&self, id: &JobId, now: DateTime<Utc>) -> StoreResult<Job>;
    /// Fails a job its agent never took (`reason` says so); `InvalidTransition`
    /// when the agent took it in the meantime.
    async fn fail_unclaimed_job(
        &self,
        id: &JobId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Job>;
    /// How many jobs are running on agents now (for `/metrics`; served by
    /// the index of running jobs, so it costs the same at any history size).
    async fn count_running_jobs(&self) -> StoreResult<u64>;
    /// The jobs running on agents now, oldest first (each agent's current
    /// job, for the agents list).
    async fn running_jobs(&self) -> StoreResult<Vec<Job>>;
    /// Marks every running job whose lease has run out `Interrupted`,
    /// returning them (they are never run again).
    async fn interrupt_expired_jobs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Job>>;

    // ----- settings -----

    /// A setting's value.
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Sets a setting.
    async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Sets a setting only if it has no value; `true` when this call set it
    /// (the first-start marker).
    async fn set_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool>;

    // ----- wake-ups and caches (cluster §3) -----

    /// From now on, what this store's users may be waiting for (see
    /// [`crate::wakeups`]): in-process on SQLite, every node's changes
    /// on PostgreSQL.
    fn wakeups(&self) -> Wakeups;
    /// The cache generation: raised by every change to projects, environment
    /// policies and tokens, so what a node caches of them is reloaded when
    /// it moves.
    async fn cache_generation(&self) -> StoreResult<i64>;

    // ----- retention -----

    /// Removes at most `limit` of what `what` selects (oldest first), in one
    /// short transaction, and returns how many it removed (releases, task
    /// logs, deliveries or audit entries); fewer than `limit`: nothing more
    /// to remove now. With `dry_run`, removes nothing and returns how many
    /// it would remove in all (`limit` ignored).
    async fn prune(&self, what: Prune, limit: u32, dry_run: bool) -> StoreResult<u64>;
    /// Gives at most `max_pages` free pages of the database back to the
    /// file system and returns how many it gave (SQLite's incremental
    /// vacuum, one short step); 0 where the database does it by itself
    /// (PostgreSQL's autovacuum).
    async fn reclaim_space(&self, max_pages: u32) -> StoreResult<u64>;
}
