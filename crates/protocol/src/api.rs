//! The JSON API's wire types (`/api/v1`), written by hand at the boundary:
//! each type says exactly what crosses it. Sensitive variable values, webhook
//! secrets, token hashes and frozen release variables never do; the server
//! converts its stored values into these, and the `tako` client reads them.
//!
//! Times are RFC 3339 strings in UTC with milliseconds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::MASKED_VALUE;

/// A registered project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProjectDto {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its repository URL.
    pub repository: String,
    /// Whether it has its own webhook secret (the secret is never shown).
    pub has_webhook_secret: bool,
    /// Whether it has a token for its private repository (never shown).
    pub has_repository_token: bool,
    /// Whether its deployments are reported to its forge as commit statuses
    /// (the token is never shown).
    pub has_status_token: bool,
    /// The forge its statuses go to when set (`github`, `gitea`, `gitlab`).
    pub status_forge: Option<String>,
    /// The forge's API base URL when set.
    pub status_api_url: Option<String>,
    /// Whether a GitHub Deployment is reported too.
    pub status_deployments: bool,
    /// When it was registered.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A project to register.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// Its name (letters, digits, `.`, `_`, `-` and spaces; unique without
    /// regard to case).
    pub name: String,
    /// Its repository URL (unique).
    pub repository: String,
    /// Its own webhook secret; the server's applies when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// An HTTPS token to fetch a private repository (write-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_token: Option<String>,
}

impl std::fmt::Debug for CreateProject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateProject")
            .field("name", &self.name)
            .field("repository", &self.repository)
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| MASKED_VALUE),
            )
            .finish()
    }
}

/// A project variable. A sensitive variable's value reads `********`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VariableDto {
    /// Its id (for `DELETE`).
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its value, or `********` when sensitive.
    pub value: String,
    /// The environments it is scoped to; empty for all.
    pub environments: Vec<String>,
    /// The target roles it is scoped to (only steps with one of them in
    /// their `Roles` see it); empty for every step.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Whether the value is sensitive (write-only).
    pub sensitive: bool,
}

/// A variable's new value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetVariable {
    /// The value.
    pub value: String,
    /// The environments it is scoped to; absent or empty for all.
    #[serde(default)]
    pub environments: Option<Vec<String>>,
    /// The target roles it is scoped to; absent or empty for every step.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// Whether the value is sensitive (never shown again).
    #[serde(default)]
    pub sensitive: Option<bool>,
}

impl std::fmt::Debug for SetVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value may be sensitive: never print it.
        f.debug_struct("SetVariable")
            .field("value", &MASKED_VALUE)
            .field("environments", &self.environments)
            .field("roles", &self.roles)
            .field("sensitive", &self.sensitive)
            .finish()
    }
}

/// A release: the frozen process of one commit (its frozen variables are
/// never shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReleaseDto {
    /// Its id.
    pub id: i64,
    /// Its project's id.
    pub project: i64,
    /// Its number (`1.4.0`).
    pub number: String,
    /// Release notes.
    pub notes: String,
    /// The commit SHA.
    pub commit: String,
    /// The branch, when known.
    pub branch: Option<String>,
    /// Who pushed, when known.
    pub pusher: Option<String>,
    /// The build counter value, if any.
    pub build_number: Option<i64>,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A page of releases, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReleasePage {
    /// The releases.
    pub items: Vec<ReleaseDto>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// A release to create by hand (Octopus's "Create release"), from the head
/// of a branch or from a commit of the project's repository. Every field is
/// optional: `{}` makes the next release from the default branch's head.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRelease {
    /// The release number; default: the next one by the takofile's rules
    /// (its `Version` template, else the previous number incremented). A
    /// number that exists is a 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Build from this branch's head; default: the repository's default
    /// branch. With `commit`, the commit must be in this branch's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Build from this commit (full or at least 7 hex digits). Without
    /// `branch`, the release is recorded with the default branch when the
    /// commit is in its history, else with no branch (environment policies
    /// then refuse it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Release notes; default: who created it, and from which branch or
    /// commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Environments to deploy the new release to, each checked against its
    /// environment policy first (a refusal is a 422, and nothing is created).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deploy_to: Vec<String>,
}

/// A release created by hand, and the deployments queued with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedRelease {
    /// The release.
    pub release: ReleaseDto,
    /// Its deployments, in the order of `deploy_to`.
    pub deployments: Vec<DeploymentDto>,
}

/// A deployment to queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeployment {
    /// The environment to deploy to, spelled as in the takofile.
    pub environment: String,
    /// Deploy although the environment is frozen (admins): why. Audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_freeze: Option<String>,
}

/// How to retry a deployment (`POST /api/v1/deployments/{id}/retry`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryDeployment {
    /// Start at the failed step: the steps that succeeded before it are
    /// carried over (shown as skipped, their outputs kept), in the failed
    /// deployment's working directory when it is still kept.
    #[serde(default)]
    pub from_failed_step: bool,
}

/// A step of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StepDto {
    /// Its position, from 0.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// `pending`, `running`, `success`, `failed` or `skipped`.
    pub state: String,
    /// Why it was skipped or failed.
    pub reason: Option<String>,
    /// When it started.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// How long it ran, in milliseconds.
    pub duration_ms: Option<u64>,
}

/// A deployment of a release to an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentDto {
    /// Its id.
    pub id: i64,
    /// The release deployed.
    pub release: i64,
    /// The release's project.
    pub project: i64,
    /// The environment.
    pub environment: String,
    /// `awaiting_approval`, `queued`, `running`, `paused`, `success`,
    /// `failed`, `cancelled` or `interrupted`.
    pub state: String,
    /// When it was queued.
    #[schema(format = DateTime)]
    pub queued_at: String,
    /// When it started.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// When it ended.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// The error that ended it.
    pub error: Option<String>,
    /// Whether a cancel was requested while it ran.
    pub cancel_requested: bool,
    /// How many task log lines it has.
    pub log_lines: u64,
    /// Its steps (only when one deployment is asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepDto>>,
    /// Who created it: a token's name, or the pusher for a push and the
    /// promotions that follow it.
    #[serde(default)]
    pub created_by: Option<String>,
    /// The approvals it waits (or waited) for, from its lifecycle phase.
    #[serde(default)]
    pub approval: Option<ApprovalRuleDto>,
    /// The deployment this one retries (`tako deploy retry`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<RetryOfDto>,
    /// `tako` (Tako runs the process) or `octopus` (forwarded to an
    /// Octopus Deploy server, whose task Tako follows).
    #[serde(default = "tako_kind")]
    pub kind: String,
    /// A forwarded deployment's record (octopus-forward.md §6): the server,
    /// the Octopus project, environment, release, deployment and task, web
    /// links, and the error with Octopus's own sentences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub forward: Option<serde_json::Value>,
    /// What a paused deployment waits for (only when one deployment is
    /// asked for, and it is paused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intervention: Option<InterventionDto>,
}

/// A pause: a step that waits for a person (`Uses: manual-intervention`),
/// or a failed step with `OnFailure: ask`, and its answer once given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InterventionDto {
    /// The step's index in the process.
    pub step_index: u32,
    /// The step's name.
    pub step: String,
    /// `manual` (a manual-intervention step) or `failure` (guided failure).
    pub kind: String,
    /// What the person reads: the step's `Instructions` substituted, or
    /// the failure.
    pub instructions: String,
    /// The token roles that may answer (empty: admin and deployer).
    pub roles: Vec<String>,
    /// The answers it takes: `proceed`, `abort` (manual); `retry`,
    /// `ignore`, `abort` (failure).
    pub actions: Vec<String>,
    /// When it paused.
    #[schema(format = DateTime)]
    pub paused_at: String,
    /// The answer, once given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<InterventionAnswerDto>,
}

/// How a pause was answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InterventionAnswerDto {
    /// Who (their token's name).
    pub by: String,
    /// Their role.
    pub role: String,
    /// `proceed`, `retry`, `ignore` or `abort`.
    pub action: String,
    /// Their note.
    pub note: String,
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
}

/// A paused deployment's open pause, in the list of what waits for a
/// person (`GET /api/v1/interventions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OpenInterventionDto {
    /// The deployment's id.
    pub deployment: i64,
    /// Its project's name.
    pub project: String,
    /// Its environment.
    pub environment: String,
    /// Its release's number.
    pub release: String,
    /// The pause (not answered yet).
    pub intervention: InterventionDto,
    /// Whether the caller's role may answer it.
    pub may_answer: bool,
}

/// Answer a paused deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerIntervention {
    /// A note kept with the answer (at most 2000 characters): after
    /// *Proceed* it is the step's `Manual.Notes` output, after *Abort* part
    /// of the deployment's error.
    #[serde(default)]
    pub note: Option<String>,
}

fn tako_kind() -> String {
    "tako".to_owned()
}

/// The deployment a retry repeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetryOfDto {
    /// The retried deployment's id.
    pub deployment: i64,
    /// Whether the retry started at its failed step (the steps before it
    /// carried over).
    pub from_failed_step: bool,
}

/// The approvals a deployment waits for (its lifecycle phase's `Approval`,
/// frozen when it was created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalRuleDto {
    /// The roles that may approve.
    pub roles: Vec<String>,
    /// How many different people must approve.
    pub count: u32,
    /// `pusher` or `creator`: who may not approve it, if anyone.
    pub not_by: Option<String>,
    /// When it is cancelled if not approved by then.
    #[schema(format = DateTime)]
    pub deadline: String,
}

/// An approval or rejection given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalDto {
    /// Who (their token's name).
    pub by: String,
    /// Their role.
    pub role: String,
    /// `approved` or `rejected`.
    pub decision: String,
    /// Their note.
    pub note: String,
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
}

/// Approve or reject a deployment awaiting approval.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideApproval {
    /// A note kept with the decision (at most 2000 characters); a
    /// rejection's note becomes the deployment's error.
    #[serde(default)]
    pub note: Option<String>,
}

/// One agent's run of a step of a deployment (a job): which agent ran
/// what, how it ended and how long it took. Its specification and output
/// values never leave the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobDto {
    /// Its id.
    pub id: String,
    /// The step's position, from 0.
    pub step_index: u32,
    /// The step's name.
    pub step: String,
    /// Which attempt of the step it ran (1 for the first; a step with
    /// `Retries` gives each agent a new job per attempt).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// The agent's name.
    pub agent: String,
    /// The label of its lines in the task log: `Step@agent`.
    pub log_label: String,
    /// `pending`, `running`, `success`, `failed`, `cancelled` or
    /// `interrupted`.
    pub state: String,
    /// Why it failed or was interrupted (masked).
    pub reason: Option<String>,
    /// When it was created (queued for its agent).
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When its agent took it.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
    /// When it ended.
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// How long the step ran on the agent, in milliseconds.
    pub duration_ms: Option<u64>,
}

fn first_attempt() -> u32 {
    1
}

/// A page of deployments, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentPage {
    /// The deployments.
    pub items: Vec<DeploymentDto>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// What became of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OutcomeDto {
    /// `queued`, `ignored`, `failed` or `duplicate`.
    pub kind: String,
    /// Why it was ignored or failed.
    pub reason: Option<String>,
    /// The release created, when queued.
    pub release: Option<i64>,
    /// The deployment queued, when queued.
    pub deployment: Option<i64>,
}

/// A received webhook and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryDto {
    /// GitHub's delivery id.
    pub id: String,
    /// The GitHub event (`push`, `ping`).
    pub event: String,
    /// When it arrived.
    #[schema(format = DateTime)]
    pub received_at: String,
    /// The pushed repository's URL.
    pub repository: Option<String>,
    /// The pushed ref.
    pub git_ref: Option<String>,
    /// The commit the push moved the ref to (`after`).
    #[serde(default)]
    pub after: Option<String>,
    /// Made by the missed-push sweep (a push Tako never received, found
    /// on the remote), not received from a forge.
    #[serde(default)]
    pub recovered: bool,
    /// The project it was matched to.
    pub project: Option<i64>,
    /// `pending` or `done`.
    pub state: String,
    /// What it produced, once done.
    pub outcome: Option<OutcomeDto>,
    /// When it was processed.
    #[schema(format = DateTime)]
    pub completed_at: Option<String>,
    /// Warnings recorded while routing it (a takofile `Server` that is not
    /// allow-listed, takofile keys ignored when forwarding).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The node holding its claim, or, once done, the node that routed it
    /// (with several nodes, a dead node's delivery names the node that
    /// took it over when the claim's lease ran out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// When it was forwarded to Octopus, the forward record of its
    /// deployment (octopus-forward.md §6, the same object as the
    /// deployment's `forward`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub forward: Option<serde_json::Value>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPage {
    /// The deliveries.
    pub items: Vec<DeliveryDto>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// An API token (never the token itself, except once at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenDto {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: String,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it was last used (recorded at most once a minute).
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    /// When it stops working.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A token to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// A name for people.
    pub name: String,
    /// `admin` (the default), `deployer` or `viewer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// It stops working after this many days (1 to 3650); never without.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

/// What a master key rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRotation {
    /// The retired key's id (gone from disk and memory).
    pub old_key: String,
    /// The new master key's id.
    pub new_key: String,
    /// How many stored values were re-sealed under it.
    pub resealed: u64,
}

/// What a retention pass removed (`POST /api/v1/admin/retention`), or
/// with `dry_run` would remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionRun {
    /// The pass ended and these are its counts; `false`: it outlasted the
    /// request and goes on in the background (202; the server logs its
    /// counts when it ends), the counts are zero.
    pub finished: bool,
    /// Nothing was removed: the counts are what a pass would remove now.
    pub dry_run: bool,
    /// Releases, with their deployments, steps, task logs and the
    /// deliveries that made them.
    pub releases: u64,
    /// Task logs of finished deployments (the deployments stay).
    pub task_logs: u64,
    /// Routed webhook deliveries.
    pub deliveries: u64,
    /// Audit log entries.
    pub audit_entries: u64,
    /// Working directories of finished deployments.
    pub working_directories: u64,
    /// Database pages given back to the file system (SQLite; 0 on
    /// PostgreSQL, whose autovacuum does it).
    pub pages_freed: u64,
    /// Projects left alone (their default branch's takofile is invalid or
    /// unreadable), each with why.
    pub skipped: Vec<String>,
}

/// A token just created: the only time its secret is shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token to send as `Authorization: Bearer <token>`.
    pub token: String,
    /// What is kept of it.
    #[serde(flatten)]
    pub info: TokenDto,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("token", &"***")
            .field("info", &self.info)
            .finish()
    }
}

/// A structured task log line (the `data` of a `line` server-sent event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLineDto {
    /// When it was written.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Its step; `null` for deployment-level lines. An agent's lines are
    /// labelled `Step@agent` (`Test@win-01`).
    pub step: Option<String>,
    /// The agent that wrote it, when `step` is an agent's label
    /// (`win-01`: the step is `step` without the `@win-01`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// `stdout`, `stderr` or `tako`.
    pub stream: String,
    /// `verbose`, `info`, `highlight`, `wait`, `warning` or `error`.
    pub level: String,
    /// The masked text.
    pub text: String,
}

/// The `data` of the final `end` server-sent event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogEnd {
    /// The deployment's final state.
    pub state: String,
    /// The error that ended it, if any.
    pub error: Option<String>,
}

/// Which branches may deploy into an environment of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentPolicyDto {
    /// The environment.
    pub environment: String,
    /// Branch globs (`main`, `release/*`); empty: no branch may deploy.
    pub allowed_branches: Vec<String>,
    /// When it was last set.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// An environment policy to set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEnvironmentPolicy {
    /// Branch globs allowed to deploy; empty closes the environment.
    pub allowed_branches: Vec<String>,
}

/// One audit log entry (never a secret value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryDto {
    /// Its id (increasing).
    pub id: i64,
    /// When.
    #[schema(format = DateTime)]
    pub at: String,
    /// Who: the token's id, name and role.
    pub actor: String,
    /// What: the method and route (`PUT /api/v1/projects/{name}/variables/{var}`).
    pub action: String,
    /// On what: the request's path.
    pub target: String,
    /// From where: the client's address.
    pub source: Option<String>,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    /// The status code answered.
    pub detail: Option<String>,
}

/// A page of audit entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// The entries.
    pub items: Vec<AuditEntryDto>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// How a project's deployments are reported to its forge as commit
/// statuses. The token is write-only.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetForgeStatus {
    /// A token allowed to write commit statuses (GitHub: *Commit statuses:
    /// write*; Gitea: `write:repository`; GitLab: `api`).
    pub token: String,
    /// `github`, `gitea` (Forgejo too) or `gitlab`; needed when the
    /// repository URL's host is not github.com, gitlab.com or codeberg.org.
    pub forge: Option<String>,
    /// The forge's API base URL (GitHub Enterprise `https://HOST/api/v3`,
    /// Gitea `https://HOST/api/v1`, GitLab `https://HOST/api/v4`).
    pub api_url: Option<String>,
    /// On GitHub, also report a Deployment and its statuses (the
    /// repository's *Environments* panel); default false.
    pub deployments: Option<bool>,
}

impl std::fmt::Debug for SetForgeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetForgeStatus")
            .field("token", &"***")
            .field("forge", &self.forge)
            .field("api_url", &self.api_url)
            .field("deployments", &self.deployments)
            .finish()
    }
}

/// A project's new webhook secret (write-only); `null` removes it, so the
/// server's applies again.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhookSecret {
    /// The secret GitHub signs this project's pushes with.
    pub webhook_secret: Option<String>,
}

impl std::fmt::Debug for SetWebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetWebhookSecret")
            .field(
                "webhook_secret",
                &self.webhook_secret.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// An agent, for people (`tako agent list`, the web UI's Agents page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentDto {
    /// Its name.
    pub name: String,
    /// `online` (active, called in the last 90 s), `offline`, `pending`
    /// (waits for approval) or `disabled`.
    pub state: String,
    /// The environments it serves.
    pub environments: Vec<String>,
    /// Its roles.
    pub roles: Vec<String>,
    /// The `tako` version it last reported.
    pub version: Option<String>,
    /// When it enrolled.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it last called the server.
    #[schema(format = DateTime)]
    pub last_seen_at: Option<String>,
    /// The job it runs now (in the agents list; absent when idle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_job: Option<AgentCurrentJob>,
}

/// The job an agent runs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentCurrentJob {
    /// The job's id.
    pub id: String,
    /// Its deployment.
    pub deployment: i64,
    /// The step it runs.
    pub step: String,
    /// When the agent took it.
    #[schema(format = DateTime)]
    pub started_at: Option<String>,
}

/// An enrollment token to create (admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnrollmentToken {
    /// The agent's name; absent: the agent proposes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The environments the agent will serve (at least one).
    pub environments: Vec<String>,
    /// The agent's roles (at least one).
    pub roles: Vec<String>,
    /// Minutes until the token stops working (1 to 43,200; default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_minutes: Option<u32>,
    /// The agent is active at once instead of waiting for an approval.
    #[serde(default)]
    pub auto_approve: bool,
}

/// An enrollment token just created: the only time it is shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreatedEnrollmentToken {
    /// The token, for `tako agent run --enroll`.
    pub token: String,
    /// The agent's name, if fixed.
    pub name: Option<String>,
    /// The environments the agent will serve.
    pub environments: Vec<String>,
    /// Its roles.
    pub roles: Vec<String>,
    /// When the token stops working.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// Whether the agent is active at once.
    pub auto_approve: bool,
}

impl std::fmt::Debug for CreatedEnrollmentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedEnrollmentToken")
            .field("token", &MASKED_VALUE)
            .field("name", &self.name)
            .field("environments", &self.environments)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// An agent's new credential (after a rotation): the only time it is shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RotatedAgentCredential {
    /// The agent.
    pub agent: AgentDto,
    /// Its new credential: put it in the agent's data directory
    /// (`credential` in `agent.json`); the old one stops working now.
    pub credential: String,
}

impl std::fmt::Debug for RotatedAgentCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedAgentCredential")
            .field("agent", &self.agent)
            .field("credential", &MASKED_VALUE)
            .finish()
    }
}

/// A request for a plan: what a release of a branch or commit would do in
/// one environment (`POST /projects/{name}/plans`). Nothing is created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    /// The environment it would deploy to.
    pub environment: String,
    /// The branch; default: the repository's default branch. With
    /// `commit`, the commit must be in this branch's history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit (full or at least 7 hex digits); default: the branch's head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// A variable as a plan shows it: sensitive values read `********`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanVariableDto {
    /// Its name.
    pub name: String,
    /// Its value, evaluated; `********` when it holds a sensitive value.
    pub value: String,
    /// Whether it holds a sensitive value.
    pub sensitive: bool,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanStepDto {
    /// Its position in the process, from 0.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// `run`, `skip`, or `fail` (it would fail before running).
    pub outcome: String,
    /// Why it would be skipped or fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why the prediction may not hold (a condition on values known only
    /// while the deployment runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Its `Roles`; empty: it runs on the server.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The agents it would run on now (active, in the environment, with a
    /// role; online ones only with `SkipOfflineAgents`).
    #[serde(default)]
    pub agents: Vec<String>,
    /// The variables this step sees besides the plan's `variables` (on
    /// agents: what every job of it sees).
    #[serde(default)]
    pub variables: Vec<PlanVariableDto>,
    /// For a step with `Roles` on a server: one per agent in `agents`,
    /// with the variables its job would hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jobs: Vec<PlanJobDto>,
}

/// One agent's job of a plan's step: the variables it would hold besides
/// the plan's and the step's (the values scoped to the roles the agent
/// shares with the step, its `Tako.Agent.*` values); sensitive values read
/// `********`, and a value scoped only to roles it lacks is not there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanJobDto {
    /// The agent.
    pub agent: String,
    /// The agent's roles.
    pub roles: Vec<String>,
    /// The variables its job would hold besides the plan's and the step's.
    #[serde(default)]
    pub variables: Vec<PlanVariableDto>,
}

/// What a deployment would do now. Nothing was created or run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanDto {
    /// The project.
    pub project: String,
    /// The environment (as the lifecycle spells it).
    pub environment: String,
    /// The release number that would be made.
    pub release_number: String,
    /// Its notes.
    pub notes: String,
    /// The commit.
    pub commit: String,
    /// The branch, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Why the deployment would be refused (the lifecycle's `Requires`, an
    /// environment policy); `null` when it would be admitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// The approval it would wait for first, e.g. `1 approval by admin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// The variables every step sees.
    pub variables: Vec<PlanVariableDto>,
    /// Every step, in order.
    pub steps: Vec<PlanStepDto>,
}

/// What a stored push delivery would do now: a plan per environment its
/// branch maps to (none when it maps to none, with the reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPlanDto {
    /// The delivery.
    pub delivery: String,
    /// Why nothing would be deployed, when so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nothing: Option<String>,
    /// One plan per environment.
    pub plans: Vec<PlanDto>,
}

/// A deployment freeze to create (`POST /freezes`, admins): one window
/// (`from`/`to` as RFC 3339 instants) or, with `every`, a weekly one
/// (`from`/`to` as `HH:MM` UTC, `24:00` for the end of the day).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFreeze {
    /// The environment frozen.
    pub environment: String,
    /// Only this project; default: every project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Its start: `2026-11-27T00:00:00Z`, or with `every` `00:00`.
    pub from: String,
    /// Its end: `2026-11-30T00:00:00Z`, or with `every` `24:00`.
    pub to: String,
    /// Days of the week (`sat,sun`): a weekly freeze.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// Why (`Black Friday`).
    pub reason: String,
}

/// A deployment freeze.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FreezeDto {
    /// Its id.
    pub id: i64,
    /// The environment frozen.
    pub environment: String,
    /// Only this project; `null`: every project.
    pub project: Option<String>,
    /// A window's start (RFC 3339); `null` for a weekly freeze.
    pub from: Option<String>,
    /// A window's end (RFC 3339); `null` for a weekly freeze.
    pub to: Option<String>,
    /// A weekly freeze's rule, `sat,sun 00:00-24:00` (UTC).
    pub weekly: Option<String>,
    /// Why.
    pub reason: String,
    /// Who created it.
    pub created_by: String,
    /// When it ends, if it holds now.
    pub active_until: Option<String>,
}

/// Why an admin releases a held deployment before its freeze ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideFreeze {
    /// Why (audited).
    pub reason: String,
}
