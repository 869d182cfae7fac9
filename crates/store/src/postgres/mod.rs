//! The PostgreSQL implementation of [`Store`]: several server nodes on one
//! database.
//!
//! # Driver choice: tokio-postgres with a deadpool pool
//!
//! `tokio-postgres` is the asynchronous PostgreSQL driver most of the Rust
//! ecosystem builds on (sqlx's and diesel-async's own PostgreSQL support are
//! built the same way; it is maintained alongside the sync `postgres`
//! crate): prepared statements (cached per connection by
//! `deadpool-postgres`), pipelining, `LISTEN/NOTIFY` through its connection
//! stream, TLS through any `MakeTlsConnect` (rustls here), and no ORM or
//! compile-time database. `deadpool-postgres` is the pool: small, async,
//! with a statement cache per connection and a recycling check. sqlx was
//! the alternative; its macros want a database at build time (or an
//! offline cache), its pool and its statement cache are its own, and the
//! store's SQL is hand-written already. Details in `docs/decisions.md`.
//!
//! # Concurrency
//!
//! Every method is one transaction (or one statement) on a pooled
//! connection, under PostgreSQL's default `READ COMMITTED`. Claims take
//! rows with `FOR UPDATE SKIP LOCKED`, so nodes claiming at once never wait
//! for each other's rows nor take the same one; deployment claims are also
//! serialised by an advisory lock (the running count and the
//! one-per-environment rule are read after the previous claim committed),
//! and the unique partial index on running deployments is the database's
//! last word. Compare-and-set updates lock the row they read first.
//!
//! # Migrations
//!
//! Numbered SQL files under `migrations/postgres/NNNN_name.sql`, the same
//! numbers and names as SQLite's, applied by whichever node starts first
//! under an advisory lock (`migrate.rs`). A database whose version is newer
//! than this build is refused with [`StoreError::SchemaTooNew`].

mod agents;
mod announce;
mod connect;
mod jobs;
mod listen;
mod migrate;
mod ops;
mod sealing;
mod tls;
mod transfer;
use crate::sealing as layer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

use crate::agents::{Agent, AgentId, AgentState, EnrollmentToken, NewAgent, NewEnrollmentToken};
use crate::error::{StoreError, StoreResult};
use crate::jobs::{ChunkOutcome, Job, JobEnd, JobId, JobLease, NewJob};
use crate::model::WebhookSecret;
use crate::model::{
    ApiToken, AuditEntry, ClaimedDelivery, Delivery, DeliveryCompletion, DeliveryId,
    DeliveryOutcome, Deployment, DeploymentFilter, DeploymentId, DeploymentState,
    EnvironmentPolicy, InsertOutcome, InterruptScope, LogCursor, LogLineRecord, LogPage,
    NewApiToken, NewAuditEntry, NewDelivery, NewDeployment, NewProject, NewRelease, NewVariable,
    NodeId, Page, PageRequest, Project, ProjectId, Prune, Release, ReleaseId, StepRecord,
    TokenHash, TokenId, Variable, VariableId,
};
use crate::model::{
    Approval, DeploymentTarget, Intervention, InterventionAnswer, NewApproval, NewIntervention,
};
use crate::seal::Keyring;
use crate::store::Store;
use crate::wakeups::{Hub, Wakeups};

pub use migrate::latest_version as latest_postgres_version;

/// How a [`PostgresStore`] connects.
#[derive(Clone)]
pub struct PostgresOptions {
    /// `postgres://user[:password]@host[:port]/database[?sslmode=…]`.
    pub url: String,
    /// The password, when it is not in the URL (read from a file).
    pub password: Option<String>,
    /// The most connections the pool opens.
    pub max_connections: usize,
    /// How long a caller waits for a connection (and a connection attempt
    /// for the server) before the store is `Unavailable`.
    pub connect_timeout: Duration,
    /// CA certificates (PEM) to trust for the server's TLS certificate,
    /// besides the system's.
    pub ca_file: Option<std::path::PathBuf>,
}

impl PostgresOptions {
    /// Options for `url` with the defaults: 16 connections, 5 s to connect.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            password: None,
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            ca_file: None,
        }
    }
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// `url` with its password (if any) replaced by `********`, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:********@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Tako's store in a PostgreSQL database, shared by every node.
pub struct PostgresStore {
    pool: Pool,
    /// The URL without its password, for messages.
    target: String,
    /// Seals secrets on their way in and opens them on their way out;
    /// without one they are kept as given (tests, tools).
    keyring: Option<Arc<Keyring>>,
    /// The wake-ups heard from the database, and how to start listening.
    wakeups: WakeupSource,
    /// Tells every node that deliveries were stored or log lines appended.
    announcer: announce::Announcer,
}

/// Where a store's wake-ups come from: its hub, the listener's connection
/// settings (taken by the first `wakeups` call that starts it) and the
/// listener's stop (dropped with the store).
struct WakeupSource {
    hub: Arc<Hub>,
    listener: std::sync::Mutex<Option<listen::Listener>>,
    /// Where the listener runs: the runtime that opened the store.
    runtime: tokio::runtime::Handle,
    stop: tokio::sync::watch::Sender<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The most delivery batches the intake writes at once on PostgreSQL.
const INTAKE_BATCHES_IN_FLIGHT: usize = 4;

impl PostgresStore {
    /// Connects to the database, applies pending migrations (under the
    /// migration lock) and keeps a pool of connections.
    pub async fn connect(options: PostgresOptions) -> StoreResult<Self> {
        let target = redact_url(&options.url);
        let mut config: tokio_postgres::Config = options.url.parse().map_err(|e| {
            StoreError::unavailable(
                format!("cannot read the database URL {target}"),
                ops::describe(&e),
            )
        })?;
        if let Some(password) = &options.password {
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("tako");
        }
        let tls = tls::RustlsTls::new(options.ca_file.as_deref())?;
        let hub = Arc::new(Hub::default());
        let (stop, stopped) = tokio::sync::watch::channel(());
        let wakeups = WakeupSource {
            hub: Arc::clone(&hub),
            listener: std::sync::Mutex::new(Some(listen::Listener {
                config: config.clone(),
                tls: tls.clone(),
                hub,
                stop: stopped,
                target: target.clone(),
            })),
            runtime: tokio::runtime::Handle::current(),
            stop,
        };
        // Connections are opened, and driven, on the runtime opening the
        // store (`connect.rs`).
        let connect = connect::OnRuntime {
            runtime: tokio::runtime::Handle::current(),
            tls,
        };
        let manager = Manager::from_connect(
            config,
            connect,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| {
                StoreError::unavailable(format!("cannot create a pool for {target}"), e)
            })?;
        let announcer = announce::Announcer::new(
            pool.clone(),
            wakeups.stop.subscribe(),
            tokio::runtime::Handle::current(),
        );
        let store = PostgresStore {
            pool,
            target,
            keyring: None,
            wakeups,
            announcer,
        };
        let mut client = store.client().await?;
        migrate::migrate(&mut client).await.map_err(|e| match e {
            StoreError::Unavailable { context, source } => StoreError::Unavailable {
                context: format!("{context} in {}", store.target),
                source,
            },
            other => other,
        })?;
        drop(client);
        Ok(store)
    }

    /// Seals every secret it writes with `keyring` (and opens what it reads).
    #[must_use]
    pub fn with_keyring(mut self, keyring: Arc<Keyring>) -> Self {
        self.keyring = Some(keyring);
        self
    }

    /// The database, without its password.
    pub fn target(&self) -> &str {
        &self.target
    }

    fn keys(&self) -> Option<&Keyring> {
        self.keyring.as_deref()
    }

    /// A pooled connection; `Unavailable` when none can be had in time
    /// (the database is down or every connection is busy).
    async fn client(&self) -> StoreResult<ops::Client> {
        self.pool.get().await.map_err(|e| {
            let reason = match &e {
                deadpool_postgres::PoolError::Backend(e) => ops::describe(e),
                other => other.to_string(),
            };
            StoreError::unavailable(format!("cannot reach the database {}", self.target), reason)
        })
    }
}

/// What an operation on `c` answered, once `c` has run everything it
/// queued. An operation that fails inside a transaction drops it, and the
/// drop only queues the `ROLLBACK`: until that runs, the rows it locked stay
/// locked, and a claim on another connection (`SKIP LOCKED`) passes them by.
/// An empty query on the same connection returns after the `ROLLBACK`, so a
/// failed operation answers with nothing of it left locked.
async fn settled<T>(answer: StoreResult<T>, c: &ops::Client) -> StoreResult<T> {
    if answer.is_err() && !c.is_closed() {
        // Its own failure changes nothing: the answer is the operation's.
        let _ = c.batch_execute("").await;
    }
    answer
}

fn encode_chunks(lines: &[LogLineRecord]) -> Vec<(usize, Vec<u8>)> {
    lines
        .chunks(crate::log_codec::CHUNK_MAX_LINES)
        .map(|chunk| (chunk.len(), crate::log_codec::encode(chunk)))
        .collect()
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_project(&self, project: NewProject) -> StoreResult<Project> {
        let sealed = layer::seal_project(self.keys(), &project)?;
        let mut c = self.client().await?;
        layer::open_project(
            self.keys(),
            settled(ops::create_project(&mut c, &sealed).await, &c).await?,
        )
    }

    async fn get_project(&self, id: ProjectId) -> StoreResult<Project> {
        let c = self.client().await?;
        layer::open_project(self.keys(), ops::get_project(&c, id).await?)
    }

    async fn find_project_by_name(&self, name: &str) -> StoreResult<Option<Project>> {
        let c = self.client().await?;
        ops::find_project_by(&c, "name_key", &name.to_lowercase())
            .await?
            .map(|p| layer::open_project(self.keys(), p))
            .transpose()
    }

    async fn find_project_by_repository(&self, url: &str) -> StoreResult<Option<Project>> {
        let key = crate::model::normalize_repository_url(url);
        let c = self.client().await?;
        ops::find_project_by(&c, "repository_key", &key)
            .await?
            .map(|p| layer::open_project(self.keys(), p))
            .transpose()
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        let c = self.client().await?;
        ops::list_projects(&c)
            .await?
            .into_iter()
            .map(|p| layer::open_project(self.keys(), p))
            .collect()
    }

    async fn set_webhook_secret(
        &self,
        project: ProjectId,
        secret: Option<WebhookSecret>,
    ) -> StoreResult<Project> {
        let sealed = secret
            .map(|s| layer::seal_secret(self.keys(), &s.0))
            .transpose()?;
        let c = self.client().await?;
        layer::open_project(
            self.keys(),
            ops::set_webhook_secret(&c, project, sealed.as_deref()).await?,
        )
    }

    async fn set_forge_status(
        &self,
        project: ProjectId,
        status: Option<crate::model::ForgeStatus>,
    ) -> StoreResult<Project> {
        let sealed = status
            .map(|s| layer::seal_forge_status(self.keys(), s))
            .transpose()?;
        let c = self.client().await?;
        layer::open_project(
            self.keys(),
            ops::set_forge_status(&c, project, sealed.as_ref()).await?,
        )
    }

    async fn next_build_number(&self, project: ProjectId) -> StoreResult<i64> {
        let c = self.client().await?;
        ops::next_build_number(&c, project).await
    }

    async fn peek_build_number(&self, project: ProjectId) -> StoreResult<i64> {
        let c = self.client().await?;
        ops::peek_build_number(&c, project).await
    }

    async fn create_freeze(
        &self,
        freeze: crate::model::NewFreeze,
    ) -> StoreResult<crate::model::Freeze> {
        let mut c = self.client().await?;
        settled(ops::create_freeze(&mut c, &freeze).await, &c).await
    }

    async fn list_freezes(&self) -> StoreResult<Vec<crate::model::Freeze>> {
        let c = self.client().await?;
        ops::list_freezes(&c).await
    }

    async fn delete_freeze(&self, id: i64) -> StoreResult<()> {
        let c = self.client().await?;
        ops::delete_freeze(&c, id).await
    }

    async fn release_held(&self, id: DeploymentId) -> StoreResult<Deployment> {
        let mut c = self.client().await?;
        settled(ops::release_held(&mut c, id).await, &c).await
    }

    fn intake_parallelism(&self) -> usize {
        // A few batches in parallel, never more than half the pool: the
        // rest of the node needs connections too.
        (self.pool.status().max_size / 2).clamp(1, INTAKE_BATCHES_IN_FLIGHT)
    }

    async fn insert_deliveries(
        &self,
        deliveries: &[NewDelivery],
    ) -> StoreResult<Vec<InsertOutcome>> {
        let c = self.client().await?;
        let outcomes = ops::insert_deliveries(&c, deliveries).await?;
        drop(c);
        if outcomes.contains(&InsertOutcome::Inserted) {
            self.announcer.deliveries_stored();
        }
        Ok(outcomes)
    }

    async fn claim_pending_deliveries(
        &self,
        node: &NodeId,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let mut c = self.client().await?;
        settled(
            ops::claim_pending_deliveries(&mut c, node, lease, limit).await,
            &c,
        )
        .await
    }

    async fn release_delivery_claims(&self, node: &NodeId) -> StoreResult<u64> {
        let c = self.client().await?;
        ops::release_delivery_claims(&c, node).await
    }

    async fn complete_deliveries(
        &self,
        completions: Vec<(DeliveryId, DeliveryCompletion)>,
    ) -> StoreResult<Vec<StoreResult<DeliveryOutcome>>> {
        let mut c = self.client().await?;
        settled(ops::complete_deliveries(&mut c, completions).await, &c).await
    }

    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Delivery> {
        let c = self.client().await?;
        ops::get_delivery(&c, id).await
    }

    async fn list_deliveries(
        &self,
        project: Option<ProjectId>,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        let c = self.client().await?;
        ops::list_deliveries(&c, project, page).await
    }

    async fn replay_delivery(&self, id: &DeliveryId) -> StoreResult<Delivery> {
        let mut c = self.client().await?;
        settled(ops::replay_delivery(&mut c, id).await, &c).await
    }

    async fn last_processed_head(
        &self,
        project: ProjectId,
        git_ref: &str,
    ) -> StoreResult<Option<String>> {
        let c = self.client().await?;
        ops::last_processed_head(&c, project, git_ref).await
    }

    async fn find_push_delivery(
        &self,
        project: ProjectId,
        git_ref: &str,
        after: &str,
    ) -> StoreResult<Option<Delivery>> {
        let c = self.client().await?;
        ops::find_push_delivery(&c, project, git_ref, after).await
    }

    async fn add_delivery_warnings(&self, id: &DeliveryId, warnings: &[String]) -> StoreResult<()> {
        let mut c = self.client().await?;
        settled(ops::add_delivery_warnings(&mut c, id, warnings).await, &c).await
    }

    async fn set_deployment_forward(&self, id: DeploymentId, forward: &str) -> StoreResult<()> {
        let c = self.client().await?;
        ops::set_deployment_forward(&c, id, forward).await
    }

    async fn record_approval(
        &self,
        id: DeploymentId,
        decision: NewApproval,
    ) -> StoreResult<Deployment> {
        let mut c = self.client().await?;
        settled(ops::record_approval(&mut c, id, &decision).await, &c).await
    }

    async fn list_approvals(&self, id: DeploymentId) -> StoreResult<Vec<Approval>> {
        let c = self.client().await?;
        ops::list_approvals(&c, id).await
    }

    async fn expire_approvals(&self, now: DateTime<Utc>) -> StoreResult<Vec<Deployment>> {
        let c = self.client().await?;
        ops::expire_approvals(&c, now).await
    }

    async fn pause_deployment(
        &self,
        id: DeploymentId,
        pause: NewIntervention,
    ) -> StoreResult<Deployment> {
        let mut c = self.client().await?;
        settled(ops::pause_deployment(&mut c, id, &pause).await, &c).await
    }

    async fn answer_intervention(
        &self,
        id: DeploymentId,
        answer: InterventionAnswer,
    ) -> StoreResult<Deployment> {
        let sealed = match &answer.outputs {
            Some(outputs) => Some(layer::seal(self.keys(), outputs)?),
            None => None,
        };
        let mut c = self.client().await?;
        settled(
            ops::answer_intervention(&mut c, id, &answer, sealed.as_deref()).await,
            &c,
        )
        .await
    }

    async fn list_interventions(&self, id: DeploymentId) -> StoreResult<Vec<Intervention>> {
        let c = self.client().await?;
        ops::list_interventions(&c, id).await
    }

    async fn create_release(&self, release: NewRelease) -> StoreResult<Release> {
        let mut c = self.client().await?;
        let answer = async {
            let tx = c.transaction().await.map_err(ops::db("create release"))?;
            let release = ops::insert_release(&tx, &release).await?;
            tx.commit().await.map_err(ops::db("create release"))?;
            Ok(release)
        }
        .await;
        settled(answer, &c).await
    }

    async fn create_release_with_deployments(
        &self,
        release: NewRelease,
        targets: &[DeploymentTarget],
    ) -> StoreResult<(Release, Vec<Deployment>)> {
        const CONTEXT: &str = "create a release and its deployments";
        let mut c = self.client().await?;
        let answer = async {
            let tx = c.transaction().await.map_err(ops::db(CONTEXT))?;
            let release = ops::insert_release(&tx, &release).await?;
            let mut deployments = Vec::with_capacity(targets.len());
            for target in targets {
                deployments.push(
                    ops::insert_deployment(
                        &tx,
                        &NewDeployment {
                            release: release.id,
                            environment: target.environment.clone(),
                            approval: target.approval.clone(),
                            created_by: target.created_by.clone(),
                            retry_of: None,
                            hold: false,
                        },
                    )
                    .await?,
                );
            }
            tx.commit().await.map_err(ops::db(CONTEXT))?;
            Ok((release, deployments))
        }
        .await;
        settled(answer, &c).await
    }

    async fn get_release(&self, id: ReleaseId) -> StoreResult<Release> {
        let c = self.client().await?;
        ops::get_release(&c, id).await
    }

    async fn find_release_by_number(
        &self,
        project: ProjectId,
        number: &str,
    ) -> StoreResult<Option<Release>> {
        let c = self.client().await?;
        ops::find_release_by_number(&c, project, number).await
    }

    async fn latest_release(&self, project: ProjectId) -> StoreResult<Option<Release>> {
        let c = self.client().await?;
        ops::latest_release(&c, project).await
    }

    async fn list_releases(
        &self,
        project: ProjectId,
        page: PageRequest,
    ) -> StoreResult<Page<Release>> {
        let c = self.client().await?;
        ops::list_releases(&c, project, page).await
    }

    async fn create_deployment(&self, deployment: NewDeployment) -> StoreResult<Deployment> {
        let mut c = self.client().await?;
        let answer = async {
            let tx = c
                .transaction()
                .await
                .map_err(ops::db("create deployment"))?;
            let deployment = ops::insert_deployment(&tx, &deployment).await?;
            tx.commit().await.map_err(ops::db("create deployment"))?;
            Ok(deployment)
        }
        .await;
        settled(answer, &c).await
    }

    async fn get_deployment(&self, id: DeploymentId) -> StoreResult<Deployment> {
        let c = self.client().await?;
        ops::select_deployment(&c, id, false).await
    }

    async fn list_deployments(
        &self,
        filter: &DeploymentFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Deployment>> {
        let c = self.client().await?;
        ops::list_deployments(&c, filter, page).await
    }

    async fn latest_deployments(&self, project: Option<ProjectId>) -> StoreResult<Vec<Deployment>> {
        let c = self.client().await?;
        ops::latest_deployments(&c, project).await
    }

    async fn release_deployments(&self, releases: &[ReleaseId]) -> StoreResult<Vec<Deployment>> {
        let c = self.client().await?;
        ops::release_deployments(&c, releases).await
    }

    async fn claim_next_deployment(
        &self,
        node: &NodeId,
        lease: Duration,
        max_running: u32,
    ) -> StoreResult<Option<Deployment>> {
        let mut c = self.client().await?;
        settled(
            ops::claim_next_deployment(&mut c, node, lease, max_running).await,
            &c,
        )
        .await
    }

    async fn renew_deployment_lease(
        &self,
        id: DeploymentId,
        node: &NodeId,
        lease: Duration,
    ) -> StoreResult<DateTime<Utc>> {
        let c = self.client().await?;
        ops::renew_deployment_lease(&c, id, node, lease).await
    }

    async fn finish_deployment(
        &self,
        id: DeploymentId,
        state: DeploymentState,
        error: Option<String>,
    ) -> StoreResult<Deployment> {
        let mut c = self.client().await?;
        settled(ops::finish_deployment(&mut c, id, state, error).await, &c).await
    }

    async fn request_cancel(&self, id: DeploymentId) -> StoreResult<Deployment> {
        let mut c = self.client().await?;
        settled(ops::request_cancel(&mut c, id).await, &c).await
    }

    async fn interrupt_running(&self, scope: InterruptScope) -> StoreResult<Vec<DeploymentId>> {
        let mut c = self.client().await?;
        settled(ops::interrupt_running(&mut c, &scope).await, &c).await
    }

    async fn update_step(&self, deployment: DeploymentId, step: StepRecord) -> StoreResult<()> {
        let mut c = self.client().await?;
        settled(ops::update_step(&mut c, deployment, &step).await, &c).await
    }

    async fn list_steps(&self, deployment: DeploymentId) -> StoreResult<Vec<StepRecord>> {
        let c = self.client().await?;
        ops::list_steps(&c, deployment).await
    }

    async fn set_step_outputs(
        &self,
        deployment: DeploymentId,
        index: u32,
        outputs: String,
    ) -> StoreResult<()> {
        let sealed = layer::seal(self.keys(), &outputs)?;
        let c = self.client().await?;
        ops::set_step_outputs(&c, deployment, index, &sealed).await
    }

    async fn step_outputs(&self, deployment: DeploymentId) -> StoreResult<Vec<(u32, String)>> {
        let c = self.client().await?;
        ops::step_outputs(&c, deployment)
            .await?
            .into_iter()
            .map(|(index, sealed)| Ok((index, layer::open(self.keys(), &sealed)?)))
            .collect()
    }

    async fn requeue_waiting_on_agents(&self, node: &NodeId) -> StoreResult<Vec<DeploymentId>> {
        let c = self.client().await?;
        ops::requeue_waiting_on_agents(&c, node).await
    }

    async fn append_log(
        &self,
        deployment: DeploymentId,
        lines: &[LogLineRecord],
    ) -> StoreResult<()> {
        if lines.is_empty() {
            return self.get_deployment(deployment).await.map(|_| ());
        }
        let chunks = encode_chunks(lines);
        let mut c = self.client().await?;
        settled(ops::append_log(&mut c, deployment, &chunks).await, &c).await?;
        drop(c);
        self.announcer.log_appended(deployment);
        Ok(())
    }

    async fn read_log(
        &self,
        deployment: DeploymentId,
        after: LogCursor,
        limit: u32,
    ) -> StoreResult<LogPage> {
        let mut c = self.client().await?;
        settled(ops::read_log(&mut c, deployment, after, limit).await, &c).await
    }

    async fn set_variable(&self, variable: NewVariable) -> StoreResult<Variable> {
        let sealed = layer::seal_variable(self.keys(), &variable)?;
        let mut c = self.client().await?;
        layer::open_variable(
            self.keys(),
            settled(ops::set_variable(&mut c, &sealed).await, &c).await?,
        )
    }

    async fn list_variables(&self, project: ProjectId) -> StoreResult<Vec<Variable>> {
        let c = self.client().await?;
        ops::list_variables(&c, project)
            .await?
            .into_iter()
            .map(|v| layer::open_variable(self.keys(), v))
            .collect()
    }

    async fn delete_variable(&self, id: VariableId) -> StoreResult<()> {
        let c = self.client().await?;
        ops::delete_variable(&c, id).await
    }

    async fn create_token(&self, token: NewApiToken) -> StoreResult<ApiToken> {
        let c = self.client().await?;
        ops::create_token(&c, &token).await
    }

    async fn find_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<ApiToken>> {
        let c = self.client().await?;
        ops::find_token_by_hash(&c, hash).await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        let c = self.client().await?;
        ops::list_tokens(&c).await
    }

    async fn touch_token(&self, id: TokenId, at: DateTime<Utc>) -> StoreResult<()> {
        let c = self.client().await?;
        ops::touch_token(&c, id, at).await
    }

    async fn revoke_token(&self, id: TokenId) -> StoreResult<()> {
        let c = self.client().await?;
        ops::revoke_token(&c, id).await
    }

    async fn set_environment_policy(
        &self,
        project: ProjectId,
        environment: &str,
        allowed_branches: &[String],
    ) -> StoreResult<EnvironmentPolicy> {
        let mut c = self.client().await?;
        settled(
            ops::set_environment_policy(&mut c, project, environment, allowed_branches).await,
            &c,
        )
        .await
    }

    async fn find_environment_policy(
        &self,
        project: ProjectId,
        environment: &str,
    ) -> StoreResult<Option<EnvironmentPolicy>> {
        let c = self.client().await?;
        ops::find_environment_policy(&c, project, environment).await
    }

    async fn list_environment_policies(
        &self,
        project: ProjectId,
    ) -> StoreResult<Vec<EnvironmentPolicy>> {
        let c = self.client().await?;
        ops::list_environment_policies(&c, project).await
    }

    async fn delete_environment_policy(
        &self,
        project: ProjectId,
        environment: &str,
    ) -> StoreResult<()> {
        let c = self.client().await?;
        ops::delete_environment_policy(&c, project, environment).await
    }

    async fn append_audit(&self, entry: NewAuditEntry) -> StoreResult<AuditEntry> {
        let c = self.client().await?;
        ops::append_audit(&c, &entry).await
    }

    async fn list_audit(&self, page: PageRequest) -> StoreResult<Page<AuditEntry>> {
        let c = self.client().await?;
        ops::list_audit(&c, page).await
    }

    async fn reseal_secrets(&self, current: &str) -> StoreResult<u64> {
        let Some(keys) = self.keys() else {
            return Err(StoreError::unavailable(
                "re-seal secrets",
                "this store has no keyring",
            ));
        };
        let mut c = self.client().await?;
        settled(sealing::reseal_all(&mut c, keys, current).await, &c).await
    }

    async fn totals(&self) -> StoreResult<crate::model::Totals> {
        let c = self.client().await?;
        ops::totals(&c).await
    }

    async fn create_enrollment_token(
        &self,
        token: NewEnrollmentToken,
    ) -> StoreResult<EnrollmentToken> {
        let c = self.client().await?;
        agents::create_enrollment_token(&c, &token).await
    }

    async fn redeem_enrollment_token(
        &self,
        token: &TokenHash,
        agent: NewAgent,
        now: DateTime<Utc>,
    ) -> StoreResult<Agent> {
        let mut c = self.client().await?;
        settled(
            agents::redeem_enrollment_token(&mut c, token, &agent, now).await,
            &c,
        )
        .await
    }

    async fn find_agent_by_credential(&self, credential: &TokenHash) -> StoreResult<Option<Agent>> {
        let c = self.client().await?;
        agents::find_agent_by_credential(&c, credential).await
    }

    async fn find_agent_by_name(&self, name: &str) -> StoreResult<Option<Agent>> {
        let c = self.client().await?;
        agents::find_agent_by_name(&c, name).await
    }

    async fn list_agents(&self) -> StoreResult<Vec<Agent>> {
        let c = self.client().await?;
        agents::list_agents(&c).await
    }

    async fn set_agent_state(&self, id: AgentId, state: AgentState) -> StoreResult<Agent> {
        let c = self.client().await?;
        agents::set_agent_state(&c, id, state).await
    }

    async fn set_agent_credential(&self, id: AgentId, credential: TokenHash) -> StoreResult<Agent> {
        let c = self.client().await?;
        agents::set_agent_credential(&c, id, &credential).await
    }

    async fn delete_agent(&self, id: AgentId) -> StoreResult<()> {
        let mut c = self.client().await?;
        settled(agents::delete_agent(&mut c, id).await, &c).await
    }

    async fn touch_agent(&self, id: AgentId, version: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let c = self.client().await?;
        agents::touch_agent(&c, id, version, at).await
    }

    async fn create_job(&self, mut job: NewJob) -> StoreResult<Job> {
        job.spec = layer::seal(self.keys(), &job.spec)?;
        let c = self.client().await?;
        jobs::create_job(&c, &job, Utc::now()).await
    }

    async fn get_job(&self, id: &JobId) -> StoreResult<Job> {
        let c = self.client().await?;
        jobs::get_job(&c, id).await
    }

    async fn list_jobs(&self, deployment: DeploymentId) -> StoreResult<Vec<Job>> {
        let c = self.client().await?;
        jobs::list_jobs(&c, deployment).await
    }

    async fn claim_job(
        &self,
        agent: AgentId,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Job, String)>> {
        let c = self.client().await?;
        jobs::claim_job(&c, agent, lease, now)
            .await?
            .map(|(job, spec)| Ok((job, layer::open(self.keys(), &spec)?)))
            .transpose()
    }

    async fn renew_job(
        &self,
        id: &JobId,
        agent: AgentId,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<JobLease> {
        let mut c = self.client().await?;
        settled(jobs::renew_job(&mut c, id, agent, lease, now).await, &c).await
    }

    async fn append_job_log(
        &self,
        id: &JobId,
        agent: AgentId,
        seq: u64,
        lines: &[LogLineRecord],
    ) -> StoreResult<ChunkOutcome> {
        let chunks = encode_chunks(lines);
        let mut c = self.client().await?;
        let (outcome, deployment) = settled(
            jobs::append_job_log(&mut c, id, agent, seq, &chunks).await,
            &c,
        )
        .await?;
        drop(c);
        if matches!(outcome, ChunkOutcome::Stored { .. }) {
            self.announcer.log_appended(deployment);
        }
        Ok(outcome)
    }

    async fn finish_job(
        &self,
        id: &JobId,
        agent: AgentId,
        mut end: JobEnd,
        now: DateTime<Utc>,
    ) -> StoreResult<Job> {
        end.outputs = layer::seal(self.keys(), &end.outputs)?;
        let mut c = self.client().await?;
        settled(jobs::finish_job(&mut c, id, agent, &end, now).await, &c).await
    }

    async fn job_spec(&self, id: &JobId) -> StoreResult<String> {
        let c = self.client().await?;
        layer::open(self.keys(), &jobs::job_spec(&c, id).await?)
    }

    async fn job_outputs(&self, id: &JobId) -> StoreResult<Option<String>> {
        let c = self.client().await?;
        jobs::job_outputs(&c, id)
            .await?
            .map(|sealed| layer::open(self.keys(), &sealed))
            .transpose()
    }

    async fn request_job_cancel(&self, id: &JobId, now: DateTime<Utc>) -> StoreResult<Job> {
        let mut c = self.client().await?;
        settled(jobs::request_job_cancel(&mut c, id, now).await, &c).await
    }

    async fn fail_unclaimed_job(
        &self,
        id: &JobId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Job> {
        let mut c = self.client().await?;
        settled(jobs::fail_unclaimed_job(&mut c, id, reason, now).await, &c).await
    }

    async fn count_running_jobs(&self) -> StoreResult<u64> {
        let c = self.client().await?;
        jobs::count_running_jobs(&c).await
    }

    async fn running_jobs(&self) -> StoreResult<Vec<Job>> {
        let c = self.client().await?;
        jobs::running_jobs(&c).await
    }

    async fn interrupt_expired_jobs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Job>> {
        let c = self.client().await?;
        jobs::interrupt_expired_jobs(&c, now).await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let c = self.client().await?;
        ops::get_setting(&c, key).await
    }

    fn wakeups(&self) -> Wakeups {
        let receiver = self.wakeups.hub.subscribe();
        // The first call starts the listener, on the store's runtime.
        let listener = self
            .wakeups
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(listener) = listener {
            self.wakeups.runtime.spawn(listener.run());
        }
        receiver
    }

    async fn cache_generation(&self) -> StoreResult<i64> {
        let c = self.client().await?;
        ops::cache_generation(&c).await
    }

    async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let c = self.client().await?;
        ops::set_setting(&c, key, value, true).await.map(|_| ())
    }

    async fn set_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        let c = self.client().await?;
        ops::set_setting(&c, key, value, false).await
    }

    async fn prune(&self, what: Prune, limit: u32, dry_run: bool) -> StoreResult<u64> {
        let mut c = self.client().await?;
        if dry_run {
            ops::count_prunable(&c, &what).await
        } else {
            settled(ops::prune(&mut c, &what, limit).await, &c).await
        }
    }

    async fn reclaim_space(&self, _max_pages: u32) -> StoreResult<u64> {
        // Autovacuum makes the space of deleted rows reusable by itself.
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://tako:s3cret@db.internal:5432/tako?sslmode=require"),
            "postgres://tako:********@db.internal:5432/tako?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://tako@127.0.0.1/tako"),
            "postgres://tako@127.0.0.1/tako"
        );
        assert_eq!(redact_url("host=db user=tako"), "host=db user=tako");
    }
}
