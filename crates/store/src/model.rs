//! What the store holds: plain Rust types, independent of any database.
//!
//! Ids are newtypes so a release id cannot be passed where a deployment id is
//! expected. Times are `DateTime<Utc>`; the SQLite implementation keeps them
//! as integer unix milliseconds, so values read back are truncated to the
//! millisecond. Takofile sources and variable values are opaque strings
//! here; a release's frozen variables are JSON whose one owner is
//! [`crate::frozen::FrozenVariables`].

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
pub use tako_core::log::{LogLevel, LogStream};
pub use tako_core::state::{
    DeploymentEvent, DeploymentState, InterventionAction, InterventionKind, InvalidTransition,
    JobEvent, JobState, StepRunState,
};

macro_rules! int_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

int_id!(
    /// A project's id.
    ProjectId
);
int_id!(
    /// A release's id (not its number).
    ReleaseId
);
int_id!(
    /// A deployment's id.
    DeploymentId
);
int_id!(
    /// An API token's id.
    TokenId
);
int_id!(
    /// A project variable's id.
    VariableId
);
int_id!(
    /// An audit log entry's id (increasing).
    AuditId
);

/// A delivery's id: GitHub's `X-GitHub-Delivery` header.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryId(pub String);

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server node that claims work (its name in `claimed_by`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeId(pub String);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A webhook secret as the store keeps it.
///
/// Seam for the security milestone: today the value is stored as given. The
/// SQLite implementation passes it through `seal_secret`/`open_secret`
/// (identity functions) so encryption at rest slots in there without changing
/// this type or the trait.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(pub String);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// A token for a private repository, as the store keeps it (the same
/// encryption-at-rest seam as [`WebhookSecret`]).
#[derive(Clone, PartialEq, Eq)]
pub struct RepositoryToken(pub String);

impl fmt::Debug for RepositoryToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RepositoryToken(***)")
    }
}

/// The token Tako reports deployments to the forge with (commit statuses),
/// as the store keeps it (sealed like [`RepositoryToken`]).
#[derive(Clone, PartialEq, Eq)]
pub struct StatusToken(pub String);

impl fmt::Debug for StatusToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatusToken(***)")
    }
}

/// How a project's deployments are reported back to its forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgeStatus {
    /// The token (write-only through the API).
    pub token: StatusToken,
    /// The forge (`github`, `gitea`, `gitlab`) when the repository URL's
    /// host does not say.
    pub forge: Option<String>,
    /// The forge's API base URL when not the public one's (GitHub
    /// Enterprise `https://HOST/api/v3`).
    pub api_url: Option<String>,
    /// On GitHub, also a Deployment and its statuses per deployment.
    pub deployments: bool,
}

/// A project to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProject {
    /// Its name, unique without regard to case.
    pub name: String,
    /// Its repository URL, unique after [`normalize_repository_url`].
    pub repository_url: String,
    /// Its own webhook secret, if it has one.
    pub webhook_secret: Option<WebhookSecret>,
    /// The HTTPS token for fetching a private repository, if it needs one.
    pub repository_token: Option<RepositoryToken>,
}

/// A registered project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Its id.
    pub id: ProjectId,
    /// Its name as registered.
    pub name: String,
    /// Its repository URL as registered.
    pub repository_url: String,
    /// Its own webhook secret, if it has one.
    pub webhook_secret: Option<WebhookSecret>,
    /// The HTTPS token for fetching a private repository, if it needs one.
    pub repository_token: Option<RepositoryToken>,
    /// Reporting its deployments to the forge, if set up.
    pub forge_status: Option<ForgeStatus>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// The key under which a repository URL is matched: scheme, credentials,
/// `git@host:` form, trailing `/` and `.git` removed, lowercased (GitHub's
/// owner and repository names are case-insensitive).
///
/// `https://github.com/O/R.git`, `http://github.com/o/r/`,
/// `git@github.com:o/r.git` and `ssh://git@github.com/o/r` all give
/// `github.com/o/r`.
pub fn normalize_repository_url(url: &str) -> String {
    let mut rest = url.trim();
    if let Some(index) = rest.find("://") {
        rest = &rest[index + 3..];
    }
    let owned;
    if let Some(at) = rest.find('@') {
        let slash = rest.find('/').unwrap_or(rest.len());
        if at < slash {
            rest = &rest[at + 1..];
        }
    }
    // scp-like `host:owner/repo`: the first `:` before any `/`.
    if let Some(colon) = rest.find(':') {
        let slash = rest.find('/').unwrap_or(rest.len());
        let after = &rest[colon + 1..];
        let is_port = after.chars().take_while(char::is_ascii_digit).count() > 0
            && after
                .chars()
                .nth(after.chars().take_while(char::is_ascii_digit).count())
                .is_none_or(|c| c == '/');
        if colon < slash && !is_port {
            owned = format!("{}/{}", &rest[..colon], after);
            rest = &owned;
        }
    }
    let mut key = rest.trim_end_matches('/');
    if let Some(stripped) = key.strip_suffix(".git") {
        key = stripped;
    }
    key.trim_end_matches('/').to_lowercase()
}

/// A webhook delivery to store, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// GitHub's delivery id.
    pub id: DeliveryId,
    /// The `X-GitHub-Event` header.
    pub event: String,
    /// When the request arrived.
    pub received_at: DateTime<Utc>,
    /// The raw body, kept to process the delivery after a restart.
    pub body: Vec<u8>,
    /// The pushed repository's URL, when the payload names one.
    pub repository_url: Option<String>,
    /// The pushed ref (`refs/heads/main`), when there is one.
    pub git_ref: Option<String>,
    /// The commit the push moved the ref to (`after`), when there is one.
    pub after: Option<String>,
    /// Made by the missed-push sweep from the remote's heads (a push Tako
    /// never received), not received from a forge.
    pub recovered: bool,
}

/// What became of one delivery of an insert batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored now.
    Inserted,
    /// A delivery with this id was already stored (earlier or in the same
    /// batch); nothing was created.
    Duplicate,
}

/// Whether a delivery still has to be processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Stored, not yet processed.
    Pending,
    /// Processed; its outcome is recorded.
    Done,
}

/// What processing a delivery produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// A release was created and a deployment queued.
    Queued {
        /// The release created.
        release: ReleaseId,
        /// The deployment queued.
        deployment: DeploymentId,
    },
    /// Nothing to do (`no mapping for branch feature/x`, `project not
    /// registered`, ...).
    Ignored {
        /// Why.
        reason: String,
    },
    /// Processing failed (`takofile invalid: line 4 ...`, fetch failed, ...).
    Failed {
        /// Why.
        reason: String,
    },
    /// The same push was already processed through another delivery.
    Duplicate,
}

/// How the router completes a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryCompletion {
    /// Create this release and queue a deployment of it to `environment`,
    /// atomically with marking the delivery done.
    Queue {
        /// The release to create (its project is the delivery's project).
        release: NewRelease,
        /// The environment to deploy to.
        environment: String,
        /// The approvals the deployment waits for (its pusher creates it).
        approval: Option<ApprovalRule>,
        /// Its environment is frozen: the deployment is created `Held`.
        hold: bool,
    },
    /// Queue a deployment of an existing release (`CreateRelease: false`:
    /// the project's newest release goes to the mapped environment),
    /// atomically with marking the delivery done.
    Deploy {
        /// The project the delivery belongs to (the release's project).
        project: ProjectId,
        /// The release to deploy.
        release: ReleaseId,
        /// The environment to deploy to.
        environment: String,
        /// The approvals the deployment waits for.
        approval: Option<ApprovalRule>,
        /// Who the push was from.
        created_by: Option<String>,
        /// Its environment is frozen: the deployment is created `Held`.
        hold: bool,
    },
    /// Record that there was nothing to do.
    Ignored {
        /// The project the delivery belongs to, when known.
        project: Option<ProjectId>,
        /// Why.
        reason: String,
    },
    /// Record a failure.
    Failed {
        /// The project the delivery belongs to, when known.
        project: Option<ProjectId>,
        /// Why.
        reason: String,
    },
    /// Create this release and queue a deployment of it to `environment`
    /// that an Octopus Deploy server runs (kind [`DeploymentKind::Octopus`],
    /// its progress starting as `forward`), atomically with marking the
    /// delivery done.
    Forward {
        /// The release to create (its project is the delivery's project).
        release: NewRelease,
        /// The environment to deploy to.
        environment: String,
        /// The forward's first record (JSON, opaque to the store).
        forward: String,
    },
    /// Record that this push was already processed.
    Duplicate {
        /// The project the delivery belongs to, when known.
        project: Option<ProjectId>,
    },
}

impl DeliveryCompletion {
    /// Whether recording it queues a deployment (and, but for
    /// [`DeliveryCompletion::Deploy`], creates its release) rather than only
    /// marking the delivery done. Such a completion is written before the
    /// next delivery is routed (that one's duplicate check and release
    /// numbers read it), and wakes the scheduler.
    pub fn queues_a_deployment(&self) -> bool {
        matches!(
            self,
            Self::Queue { .. } | Self::Forward { .. } | Self::Deploy { .. }
        )
    }
}

/// A stored delivery, without its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// GitHub's delivery id.
    pub id: DeliveryId,
    /// The `X-GitHub-Event` header.
    pub event: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// The pushed repository's URL, if any.
    pub repository_url: Option<String>,
    /// The pushed ref, if any.
    pub git_ref: Option<String>,
    /// The commit the push moved the ref to (`after`), if any.
    pub after: Option<String>,
    /// Recovered by the missed-push sweep (not received from a forge).
    pub recovered: bool,
    /// Warnings recorded while routing it (a takofile `Server` that is not
    /// allow-listed, takofile keys ignored when forwarding).
    pub warnings: Vec<String>,
    /// The project it was matched to, once processed.
    pub project: Option<ProjectId>,
    /// Pending or done.
    pub state: DeliveryState,
    /// What it produced, once done.
    pub outcome: Option<DeliveryOutcome>,
    /// The node holding (or last holding) its claim.
    pub claimed_by: Option<NodeId>,
    /// Until when that claim holds.
    pub lease_until: Option<DateTime<Utc>>,
    /// When it was processed.
    pub completed_at: Option<DateTime<Utc>>,
}

/// A stored delivery body that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored body ({codec}) cannot be decoded: {reason}")]
pub struct UnreadableBody {
    /// The row's codec (`lz4`, ...).
    pub codec: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A delivery claimed for processing, with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub delivery: Delivery,
    /// Its body as it came, or why the stored bytes cannot be decoded (a
    /// corrupt row fails its own delivery, not the claim).
    pub body: Result<Vec<u8>, UnreadableBody>,
    /// The node whose claim on it ran out before it was routed (a node
    /// that died or was cut off), when this claim took it over; `None` for
    /// a first claim, or one its node released at its restart.
    pub previous_claim: Option<NodeId>,
}

/// A release to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRelease {
    /// Its project.
    pub project: ProjectId,
    /// Its number (`1.4.0`), unique within the project.
    pub number: String,
    /// Release notes.
    pub notes: String,
    /// The commit SHA it was built from.
    pub commit: String,
    /// The branch, when known.
    pub branch: Option<String>,
    /// Who pushed, when known.
    pub pusher: Option<String>,
    /// The frozen takofile source text.
    pub takofile: String,
    /// The frozen variables (opaque to the store).
    pub variables: String,
    /// The build counter value used for the number, if any.
    pub build_number: Option<i64>,
}

/// A stored release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Its id.
    pub id: ReleaseId,
    /// Its project.
    pub project: ProjectId,
    /// Its number.
    pub number: String,
    /// Release notes.
    pub notes: String,
    /// The commit SHA.
    pub commit: String,
    /// The branch, when known.
    pub branch: Option<String>,
    /// Who pushed, when known.
    pub pusher: Option<String>,
    /// The frozen takofile source text.
    pub takofile: String,
    /// The frozen variables.
    pub variables: String,
    /// The build counter value, if any.
    pub build_number: Option<i64>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A deployment to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeployment {
    /// The release to deploy (its project is the deployment's project).
    pub release: ReleaseId,
    /// The environment to deploy to (compared exactly: callers pass the
    /// takofile's spelling).
    pub environment: String,
    /// The approvals it waits for: with one, it is created
    /// `AwaitingApproval` instead of `Queued`.
    pub approval: Option<ApprovalRule>,
    /// Who made it: the token's name (by hand) or the pusher (a push, an
    /// automatic promotion).
    pub created_by: Option<String>,
    /// The deployment it retries (`tako deploy retry`), if any.
    pub retry_of: Option<RetryOf>,
    /// Made automatically while its environment is frozen: created `Held`
    /// (before any approval it waits for), released when the freeze ends.
    pub hold: bool,
}

/// The deployment a deployment retries, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryOf {
    /// The deployment retried.
    pub deployment: DeploymentId,
    /// It starts at that deployment's failed step: the steps before it are
    /// carried over (shown as skipped, their outputs kept), in its kept
    /// working directory when there is one.
    pub from_failed_step: bool,
}

/// Where a release made by hand is deployed at once, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentTarget {
    /// The environment.
    pub environment: String,
    /// The approvals the deployment waits for, if any.
    pub approval: Option<ApprovalRule>,
    /// Who made it.
    pub created_by: Option<String>,
}

/// The approvals a deployment waits for (its environment's `Approval` in
/// the lifecycle, frozen when the deployment is created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// The roles that may approve (`admin`, `deployer`, `viewer`).
    pub roles: Vec<String>,
    /// How many different people must approve.
    pub count: u32,
    /// `pusher` or `creator`: who may not approve their own deployment.
    pub not_by: Option<String>,
    /// When it is cancelled if not approved by then.
    pub deadline: DateTime<Utc>,
}

/// An approval or a rejection to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    /// Who decides (their token's name).
    pub by: String,
    /// Their role, as stored.
    pub role: String,
    /// Approve (`true`) or reject.
    pub approve: bool,
    /// Their note (may be empty).
    pub note: String,
}

/// A recorded approval or rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Who decided.
    pub by: String,
    /// Their role then.
    pub role: String,
    /// Approved (`true`) or rejected.
    pub approve: bool,
    /// Their note.
    pub note: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A deployment pausing at a step for a person ([`crate::Store::pause_deployment`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIntervention {
    /// The step's index in the process.
    pub step_index: u32,
    /// The step's name.
    pub step_name: String,
    /// A manual intervention or a failure to decide on.
    pub kind: InterventionKind,
    /// What the person reads (already masked).
    pub instructions: String,
    /// The token roles that may answer (empty: the caller's default).
    pub roles: Vec<String>,
}

/// A person's answer to a paused deployment
/// ([`crate::Store::answer_intervention`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterventionAnswer {
    /// Who answered.
    pub by: String,
    /// Their role then.
    pub role: String,
    /// What they chose.
    pub action: InterventionAction,
    /// Their note.
    pub note: String,
    /// The paused step's reason once answered (`ignored by …`, `aborted by
    /// …`); `None` keeps its reason.
    pub step_reason: Option<String>,
    /// The paused step's output variables (JSON in the clear, sealed by the
    /// store), replacing any it had; `None` keeps them.
    pub outputs: Option<String>,
    /// The deployment's error when the answer fails it (abort).
    pub error: Option<String>,
}

/// A pause and its answer, if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervention {
    /// The deployment.
    pub deployment: DeploymentId,
    /// The step's index in the process.
    pub step_index: u32,
    /// The step's name.
    pub step_name: String,
    /// A manual intervention or a failure to decide on.
    pub kind: InterventionKind,
    /// What the person reads.
    pub instructions: String,
    /// The token roles that may answer (empty: the caller's default).
    pub roles: Vec<String>,
    /// When it paused.
    pub paused_at: DateTime<Utc>,
    /// The answer, once given.
    pub answer: Option<InterventionAnswered>,
}

/// How a pause was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterventionAnswered {
    /// Who answered.
    pub by: String,
    /// Their role then.
    pub role: String,
    /// What they chose.
    pub action: InterventionAction,
    /// Their note.
    pub note: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A stored deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Its id.
    pub id: DeploymentId,
    /// The release deployed.
    pub release: ReleaseId,
    /// The release's project.
    pub project: ProjectId,
    /// The environment.
    pub environment: String,
    /// Its state.
    pub state: DeploymentState,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When a node started it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// The error that ended it, if any.
    pub error: Option<String>,
    /// Whether a cancel was requested while it ran.
    pub cancel_requested: bool,
    /// The node holding (or last holding) it.
    pub claimed_by: Option<NodeId>,
    /// Until when that claim holds.
    pub lease_until: Option<DateTime<Utc>>,
    /// How many task log lines it has.
    pub log_lines: u64,
    /// Who made it (see [`NewDeployment::created_by`]).
    pub created_by: Option<String>,
    /// The approvals it waits or waited for.
    pub approval: Option<ApprovalRule>,
    /// Who runs it: Tako, or an Octopus Deploy server Tako follows.
    pub kind: DeploymentKind,
    /// A forwarded deployment's progress and outcome (JSON, opaque to the
    /// store); `None` for Tako's own.
    pub forward: Option<String>,
    /// The deployment it retries (see [`NewDeployment::retry_of`]).
    pub retry_of: Option<RetryOf>,
}

/// Who runs a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeploymentKind {
    /// Tako runs the release's process.
    #[default]
    Tako,
    /// An Octopus Deploy server runs it; Tako follows its task.
    Octopus,
}

impl DeploymentKind {
    /// Its stored and wire name (`tako`, `octopus`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentKind::Tako => "tako",
            DeploymentKind::Octopus => "octopus",
        }
    }

    /// The kind named `text`.
    pub fn parse(text: &str) -> Option<DeploymentKind> {
        match text {
            "tako" => Some(DeploymentKind::Tako),
            "octopus" => Some(DeploymentKind::Octopus),
            _ => None,
        }
    }
}

/// One step of a deployment, as recorded (written whole by
/// [`crate::Store::update_step`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// Its position in the process, from 0.
    pub index: u32,
    /// Its name.
    pub name: String,
    /// Its state.
    pub state: StepRunState,
    /// Why it was skipped or failed, if it was.
    pub reason: Option<String>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// How long it ran (millisecond precision).
    pub duration: Option<Duration>,
}

/// One task log line as stored (already masked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLineRecord {
    /// When it was read or written.
    pub timestamp: DateTime<Utc>,
    /// Its step, `None` for deployment-level lines.
    pub step: Option<String>,
    /// Where it came from.
    pub stream: LogStream,
    /// How important it is.
    pub level: LogLevel,
    /// The masked text.
    pub text: String,
}

impl From<&tako_core::log::LogLine> for LogLineRecord {
    fn from(line: &tako_core::log::LogLine) -> Self {
        LogLineRecord {
            timestamp: line.timestamp(),
            step: line.step().map(str::to_owned),
            stream: line.stream(),
            level: line.level(),
            text: line.text().to_owned(),
        }
    }
}

/// A position in a task log: the number of lines before it.
/// `LogCursor::START` reads from the first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LogCursor(pub u64);

impl LogCursor {
    /// The beginning of the log.
    pub const START: LogCursor = LogCursor(0);
}

/// Some lines of a task log and where to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPage {
    /// The lines, in order.
    pub lines: Vec<LogLineRecord>,
    /// Where the next read starts (equal to the request's cursor when there
    /// were no new lines).
    pub next: LogCursor,
}

/// A position in a newest-first listing: an opaque token for the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageCursor(pub(crate) i64);

impl PageCursor {
    /// The token to hand to clients.
    pub fn to_token(self) -> String {
        self.0.to_string()
    }

    /// Parses a client's token; `None` when it is not one of ours.
    pub fn from_token(token: &str) -> Option<Self> {
        token.parse::<i64>().ok().filter(|v| *v > 0).map(PageCursor)
    }
}

/// Which page of a newest-first listing to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many items (at least 1 is read).
    pub limit: u32,
    /// Continue after this cursor; `None` for the newest items.
    pub after: Option<PageCursor>,
}

impl PageRequest {
    /// The first page, of `limit` items.
    pub fn first(limit: u32) -> Self {
        PageRequest { limit, after: None }
    }
}

/// One page of a newest-first listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items, newest first.
    pub items: Vec<T>,
    /// The cursor for the next page; `None` when this was the last.
    pub next: Option<PageCursor>,
}

/// Which deployments to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentFilter {
    /// Only this project's.
    pub project: Option<ProjectId>,
    /// Only to this environment.
    pub environment: Option<String>,
    /// Only in this state.
    pub state: Option<DeploymentState>,
}

/// Which running deployments [`crate::Store::interrupt_running`] ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterruptScope {
    /// Those claimed by this node (its own start-up recovery).
    Node(NodeId),
    /// Those whose lease has expired, whichever node held them (the sweep
    /// every node runs). Each is marked with the node that held it and
    /// when it was last heard of: its lease's end minus `lease`, the
    /// lease every node renews with.
    ExpiredLeases {
        /// The lease nodes renew with (`deployment_lease`).
        lease: std::time::Duration,
    },
}

/// The error recorded on a deployment whose lease ran out: names the node
/// that held it and when it was last heard of (UTC, to the second).
pub fn lease_expired_error(
    node: Option<&str>,
    lease_until: chrono::DateTime<chrono::Utc>,
    lease: std::time::Duration,
) -> String {
    let heard =
        lease_until - chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::zero());
    format!(
        "interrupted: node {} stopped renewing its lease; last heard of at {} (the lease ran out at {})",
        node.unwrap_or("(unknown)"),
        heard.format("%Y-%m-%d %H:%M:%S UTC"),
        lease_until.format("%Y-%m-%d %H:%M:%S UTC"),
    )
}

/// A project variable to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVariable {
    /// Its project.
    pub project: ProjectId,
    /// Its name.
    pub name: String,
    /// Its value (opaque).
    pub value: String,
    /// The environments it is scoped to; empty for all.
    pub environments: Vec<String>,
    /// The target roles it is scoped to; empty for every step.
    pub roles: Vec<String>,
    /// Whether the value is sensitive (write-only in the API, masked).
    pub sensitive: bool,
}

/// A stored project variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// Its id.
    pub id: VariableId,
    /// Its project.
    pub project: ProjectId,
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// The environments it is scoped to, sorted; empty for all.
    pub environments: Vec<String>,
    /// The target roles it is scoped to, sorted; empty for every step.
    pub roles: Vec<String>,
    /// Whether the value is sensitive.
    pub sensitive: bool,
}

/// Which branches may deploy into one environment of a project (checked by
/// the server whatever the takofile says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentPolicy {
    /// Its project.
    pub project: ProjectId,
    /// The environment, as last written (matched without regard to case).
    pub environment: String,
    /// Branch globs (`main`, `release/*`); empty: no branch may deploy.
    pub allowed_branches: Vec<String>,
    /// When it was last set.
    pub updated_at: DateTime<Utc>,
}

/// An audit log entry to append. Never a secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// Who: `token 3 (ci)`, or `cli` for local commands.
    pub actor: String,
    /// What: `variable.set`, `token.revoke`, `deployment.create`, ...
    pub action: String,
    /// On what: `project web variable ApiKey`.
    pub target: String,
    /// From where: the client's address, if known.
    pub source: Option<String>,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    /// More (the status code, the reason), never a secret.
    pub detail: Option<String>,
}

/// A stored audit log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its id.
    pub id: AuditId,
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// On what.
    pub target: String,
    /// From where.
    pub source: Option<String>,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    /// More.
    pub detail: Option<String>,
}

/// The SHA-256 hash of an API token (the token itself is never stored).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash(")?;
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…)")
    }
}

/// An API token to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// A name for people.
    pub name: String,
    /// The token's hash.
    pub hash: TokenHash,
    /// Its role (`admin`, ...).
    pub role: String,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A stored API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Its id.
    pub id: TokenId,
    /// A name for people.
    pub name: String,
    /// The token's hash.
    pub hash: TokenHash,
    /// Its role.
    pub role: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used, if ever.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether it was revoked.
    pub revoked: bool,
}

#[cfg(test)]
mod tests {
    use super::normalize_repository_url;

    #[test]
    fn repository_urls_normalise_to_one_key() {
        for url in [
            "https://github.com/Owner/Repo.git",
            "https://github.com/owner/repo",
            "http://github.com/owner/repo/",
            "git@github.com:owner/repo.git",
            "ssh://git@github.com/owner/repo",
            "https://token@github.com/owner/repo.git",
            " https://github.com/owner/repo.git/ ",
        ] {
            assert_eq!(
                normalize_repository_url(url),
                "github.com/owner/repo",
                "{url}"
            );
        }
        assert_eq!(
            normalize_repository_url("https://git.example.com:8443/o/r.git"),
            "git.example.com:8443/o/r"
        );
    }
}

/// Totals for monitoring, kept as rows change (reading them does not scan
/// the history).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Deliveries by outcome: `pending`, `queued`, `ignored`, `failed`,
    /// `duplicate`.
    pub deliveries: std::collections::BTreeMap<String, u64>,
    /// Deployments by state.
    pub deployments: std::collections::BTreeMap<String, u64>,
    /// Finished steps by state: how many, and their summed duration in
    /// milliseconds.
    pub steps: std::collections::BTreeMap<String, (u64, u64)>,
}

/// A deployment freeze to create (journey.md §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFreeze {
    /// The environment it freezes (matched without regard to case).
    pub environment: String,
    /// Only this project's deployments; `None`: every project's.
    pub project: Option<ProjectId>,
    /// When it holds.
    pub window: tako_core::freeze::FreezeWindow,
    /// Why (`Black Friday`).
    pub reason: String,
    /// Who created it.
    pub created_by: String,
}

/// A stored deployment freeze.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    /// Its id.
    pub id: i64,
    /// The environment it freezes, as written.
    pub environment: String,
    /// Only this project's deployments; `None`: every project's.
    pub project: Option<ProjectId>,
    /// When it holds.
    pub window: tako_core::freeze::FreezeWindow,
    /// Why.
    pub reason: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// What one retention batch removes ([`crate::Store::prune`]). Never
/// removed, whatever the rule: the release and deployment of a dashboard
/// cell (the latest deployment of a project and environment), a release
/// with a deployment that has not finished (awaiting approval, queued,
/// running, or any state a later version adds before it finishes), and a
/// delivery not yet routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prune {
    /// A project's releases beyond the newest `keep` (of the project, and of
    /// each environment it deployed to: a release among the newest `keep`
    /// deployed to any environment stays), with their deployments, steps,
    /// jobs, approvals, task logs and the deliveries that made or deployed
    /// them. A release the newest push of a ref queued stays (the sweep's
    /// last processed head).
    Releases {
        /// The project.
        project: ProjectId,
        /// How many to keep (at least 1).
        keep: u32,
    },
    /// The task logs of a project's deployments that finished before
    /// `finished_before` (the deployments and their steps stay, marked as
    /// having lost their log).
    TaskLogs {
        /// The project.
        project: ProjectId,
        /// The end before which a log goes.
        finished_before: DateTime<Utc>,
    },
    /// Routed deliveries received before `received_before`, of one project
    /// or (`None`) of none. The newest delivery of each ref, and its newest
    /// one that queued something, stay: the missed-push sweep and the
    /// duplicate check compare branch heads with them.
    Deliveries {
        /// The project, or `None` for deliveries no project claimed.
        project: Option<ProjectId>,
        /// The time before which a delivery goes.
        received_before: DateTime<Utc>,
    },
    /// Audit entries made before `before`.
    AuditLog {
        /// The time before which an entry goes.
        before: DateTime<Utc>,
    },
}
