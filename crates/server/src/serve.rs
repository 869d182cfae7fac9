//! Starting a server: data directory, store, recovery, background tasks and
//! the HTTP listener, composed from the other modules.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tako_git::Mirrors;
use tako_store::{
    InterruptScope, LogLineRecord, NewApiToken, NodeId, SqliteStore, Store, TokenHash,
};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::ServerConfig;
use crate::http::app;
use crate::intake::{Intake, IntakeWriter, WebhookSecrets};
use crate::router::Router;
use crate::scheduler::Scheduler;
use crate::services::Services;
use crate::startup::{self, StartupError};
use crate::state::AppState;
use crate::tls::{ServerTls, TlsError, TlsListener};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory or master key.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The database.
    #[error("cannot open the database {url}: {source}")]
    Store {
        /// The database URL.
        url: String,
        /// Why.
        #[source]
        source: tako_store::StoreError,
    },
    /// The secrets could not be brought under the master key.
    #[error("cannot seal the stored secrets under the master key: {0}")]
    Keys(String),
    /// This node's master key is not the cluster's.
    #[error(transparent)]
    KeyCheck(#[from] crate::keys::KeyCheckError),
    /// A database URL this build cannot use.
    #[error("database_url {0}: expected sqlite://PATH or postgres://USER@HOST/DATABASE")]
    UnsupportedDatabase(String),
    /// The PostgreSQL password file (`database_password_file`).
    #[error("cannot read the database password from {path} (database_password_file): {reason}")]
    DatabasePassword {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The certificate or key (`tls_cert`, `tls_key`).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An `[[octopus]]` entry that cannot be used (its CA file).
    #[error("[[octopus]]: {0}")]
    Octopus(String),
    /// The listen address.
    #[error("cannot listen on {address}: {source}{hint}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
        /// What to do.
        hint: &'static str,
    },
}

/// A started server.
pub struct Started {
    /// The address it listens on (the real port when 0 was asked for).
    pub address: SocketAddr,
    /// On the very first start: the admin token, to print once.
    pub first_admin_token: Option<String>,
    /// Deployments found running from before a restart, now `Interrupted`.
    pub interrupted: usize,
    /// Deployments waiting on agents when it stopped, resumed now.
    pub resumed: usize,
    /// The SHA-256 fingerprint of the certificate when it serves HTTPS.
    pub tls_fingerprint: Option<String>,
    /// The public base URL (set, or the default with TLS), if any.
    pub public_url: Option<String>,
    listener: TcpListener,
    tls: Option<ServerTls>,
    router: axum::Router,
    work_root: std::path::PathBuf,
    store: Arc<dyn Store>,
}

impl Started {
    /// `https` when it terminates TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Where deployments' working directories (and the records of their
    /// scripts' process groups) are: what [`crate::scheduler::kill_running_scripts`]
    /// stops when the server stops.
    pub fn work_root(&self) -> std::path::PathBuf {
        self.work_root.clone()
    }

    /// What closes the store once the server's tasks are gone (see
    /// [`StoreCloser::close`]).
    pub fn store_closer(&self) -> StoreCloser {
        StoreCloser(Arc::clone(&self.store))
    }

    /// Serves until `stop` resolves, then stops accepting connections and
    /// returns once the open ones have finished (the caller bounds that
    /// wait: log followers and agents' long polls stay open for a while).
    pub async fn serve_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use axum::serve::ListenerExt as _;
        let service = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        match &self.tls {
            None => {
                axum::serve(self.listener, service)
                    .with_graceful_shutdown(stop)
                    .await
            }
            // `tap_io` gives the connections the peer address (`ConnectInfo`).
            Some(tls) => {
                axum::serve(
                    TlsListener::new(self.listener, tls)?.tap_io(|_| ()),
                    service,
                )
                .with_graceful_shutdown(stop)
                .await
            }
        }
    }
}

/// The public URL: the one set, or with TLS `https://` and the address
/// listened on (a wildcard address becomes `localhost`).
pub fn default_public_url(
    configured: Option<&str>,
    tls: bool,
    address: SocketAddr,
) -> Option<String> {
    if let Some(url) = configured {
        return Some(url.to_owned());
    }
    if !tls {
        return None;
    }
    let host = if address.ip().is_unspecified() {
        "localhost".to_owned()
    } else if address.is_ipv6() {
        format!("[{}]", address.ip())
    } else {
        address.ip().to_string()
    };
    Some(format!("https://{host}:{}", address.port()))
}

/// Opens the store `database_url` names: SQLite (the default, one node) or
/// PostgreSQL (several nodes), its secrets sealed with `keyring`.
async fn open_store(
    config: &ServerConfig,
    keyring: &Arc<tako_store::Keyring>,
) -> Result<Arc<dyn Store>, ServeError> {
    let url = config.effective_database_url();
    let failed = |source| ServeError::Store {
        url: tako_store::redact_url(&url),
        source,
    };
    if let Some(path) = url.strip_prefix("sqlite://") {
        let store = SqliteStore::open(PathBuf::from(path)).map_err(failed)?;
        return Ok(Arc::new(store.with_keyring(Arc::clone(keyring))));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut options = tako_store::PostgresOptions::new(url.clone());
        if let Some(path) = &config.database_password_file {
            options.password = Some(read_password(path)?);
        }
        options.ca_file = config.database_ca_file.clone();
        options.max_connections = config.database_pool_size;
        options.connect_timeout = config.database_connect_timeout;
        let store = tako_store::PostgresStore::connect(options)
            .await
            .map_err(failed)?;
        return Ok(Arc::new(store.with_keyring(Arc::clone(keyring))));
    }
    Err(ServeError::UnsupportedDatabase(tako_store::redact_url(
        &url,
    )))
}

/// The password in `path`: its first line, without the line break.
fn read_password(path: &std::path::Path) -> Result<String, ServeError> {
    let failed = |reason: String| ServeError::DatabasePassword {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| failed(e.to_string()))?;
    let password = text.lines().next().unwrap_or_default();
    if password.is_empty() {
        return Err(failed(
            "the file is empty: write the password on its first line".to_owned(),
        ));
    }
    Ok(password.to_owned())
}

/// Prepares everything and binds the listener; background work starts here.
///
/// The work behind the intake (routing deliveries, deployments and their
/// scripts, the sweeps, retention) is spawned on `background`; the HTTP
/// server, the intake's writer and the store's connections stay on the
/// runtime this is called on. `tako serve` gives `background` threads of a
/// lower CPU priority, so a burst of pushes is answered promptly while
/// deployments run (docs/decisions.md, "The intake before the deployments").
pub async fn start(
    config: ServerConfig,
    background: tokio::runtime::Handle,
) -> Result<Started, ServeError> {
    // The certificate first: a mistake there is reported before anything
    // else is touched.
    let tls = config.tls.as_ref().map(ServerTls::load).transpose()?;
    if let Some(tls) = &tls {
        tracing::info!(
            fingerprint = tls.fingerprint(),
            "serving HTTPS; agents can pin this certificate with --server-fingerprint"
        );
    }
    startup::prepare_data_dir(&config.data_dir)?;
    let shared_database = {
        let url = config.effective_database_url();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    };
    let keys = Arc::new(
        crate::keys::MasterKeys::load(&config.data_dir, &config.effective_master_key_file())?
            .shared_by_nodes(shared_database),
    );
    let node = NodeId(startup::load_or_create_node_id(&config.data_dir)?);

    let store = open_store(&config, &keys.keyring).await?;
    // Only the URL without its password ever reaches a message.
    let url = tako_store::redact_url(&config.effective_database_url());
    let store_error = |source| ServeError::Store {
        url: url.clone(),
        source,
    };

    // Secrets stored in the clear by an older Tako, or under a key an
    // interrupted rotation left, are sealed under the master key now.
    // Every node must hold the cluster's master key (cluster.md §1): a node
    // with another key refuses to start before it seals anything.
    keys.check_cluster(store.as_ref()).await?;
    keys.settle(store.as_ref())
        .await
        .map_err(|e| ServeError::Keys(e.to_string()))?;
    keys.record_check(store.as_ref())
        .await
        .map_err(store_error)?;

    let first_admin_token = if store
        .set_setting_if_absent("initialized", "1")
        .await
        .map_err(store_error)?
    {
        let token = startup::new_token()?;
        store
            .create_token(NewApiToken {
                name: "first admin".to_owned(),
                hash: TokenHash(startup::token_hash(&token)),
                role: "admin".to_owned(),
                expires_at: None,
            })
            .await
            .map_err(store_error)?;
        Some(token)
    } else {
        None
    };

    // Recovery: deliveries this node held are taken again now; deployments
    // waiting on an agent's job (which went on without the server) are
    // resumed where they were; the rest of what it was running when it
    // stopped is interrupted.
    store
        .release_delivery_claims(&node)
        .await
        .map_err(store_error)?;
    let resumed = store
        .requeue_waiting_on_agents(&node)
        .await
        .map_err(store_error)?;
    for id in &resumed {
        let forwarded = store
            .get_deployment(*id)
            .await
            .is_ok_and(|d| d.kind == tako_store::DeploymentKind::Octopus);
        let line = LogLineRecord {
            timestamp: chrono::Utc::now(),
            step: None,
            stream: tako_store::LogStream::Tako,
            level: tako_store::LogLevel::Warning,
            text: if forwarded {
                "The server stopped while forwarding this deployment to Octopus: it resumes from the last step Octopus acknowledged"
            } else {
                "The server stopped while an agent ran a step of this deployment: it resumes there"
            }
            .to_owned(),
        };
        store.append_log(*id, &[line]).await.map_err(store_error)?;
    }
    let interrupted = store
        .interrupt_running(InterruptScope::Node(node.clone()))
        .await
        .map_err(store_error)?;
    for id in &interrupted {
        let line = LogLineRecord {
            timestamp: chrono::Utc::now(),
            step: None,
            stream: tako_store::LogStream::Tako,
            level: tako_store::LogLevel::Error,
            text: "Interrupted: the server stopped while this deployment was running".to_owned(),
        };
        store.append_log(*id, &[line]).await.map_err(store_error)?;
    }

    // The generation is read before the projects: a change made through
    // another node in between is then reloaded, never missed.
    let cache_generation = store.cache_generation().await.map_err(store_error)?;
    let secrets = WebhookSecrets::new(
        store
            .list_projects()
            .await
            .map_err(store_error)?
            .into_iter()
            .filter_map(|p| Some((p.repository_url, p.webhook_secret?.0))),
    );

    let listener = TcpListener::bind(config.listen).await.map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                "; another program uses that port: choose another with --listen"
            }
            std::io::ErrorKind::PermissionDenied => {
                "; ports below 1024 need privileges: choose another with --listen"
            }
            _ => "",
        };
        ServeError::Listen {
            address: config.listen,
            source,
            hint,
        }
    })?;
    let address = listener.local_addr().map_err(|source| ServeError::Listen {
        address: config.listen,
        source,
        hint: "",
    })?;
    let public_url = default_public_url(config.public_url.as_deref(), tls.is_some(), address);
    if tls.is_some()
        && let Some(url) = &config.public_url
        && !url.starts_with("https://")
    {
        tracing::warn!(
            public_url = %url,
            "the server terminates TLS but public_url is not https://: links will not work"
        );
    }

    let deliveries_stored = Arc::new(Notify::new());
    let deployments_queued = Arc::new(Notify::new());
    let jobs_created = Arc::new(Notify::new());
    let caches_changed = Arc::new(Notify::new());
    // The store's wake-ups (every node's changes on PostgreSQL) wake the
    // router, the scheduler, the agents' long polls and the caches here.
    tokio::spawn(
        crate::wakeups::Wakers {
            deliveries: deliveries_stored.clone(),
            deployments: deployments_queued.clone(),
            jobs: jobs_created.clone(),
            caches: caches_changed.clone(),
        }
        .run(store.clone()),
    );
    tokio::spawn(
        crate::caches::Caches {
            store: store.clone(),
            secrets: secrets.clone(),
            wake: caches_changed,
            loaded: cache_generation,
        }
        .run(),
    );
    // A rotation through another node is followed here (cluster.md §1).
    tokio::spawn(Arc::clone(&keys).follow(store.clone()));
    let mirrors = Mirrors::new(config.data_dir.join("mirrors"));
    let leftovers = mirrors.remove_leftovers();
    if leftovers > 0 {
        tracing::warn!(
            leftovers,
            "removed unfinished clones and fetches of the previous run"
        );
    }
    let writer = IntakeWriter::spawn(
        store.clone(),
        deliveries_stored.clone(),
        store.intake_parallelism(),
    );
    let intake_activity = writer.activity();
    let forwarders =
        crate::octopus::Forwarders::new(&config.octopus).map_err(ServeError::Octopus)?;
    let router = Router {
        store: store.clone(),
        mirrors: mirrors.clone(),
        node: node.clone(),
        lease: config.deployment_lease,
        deliveries_stored: deliveries_stored.clone(),
        deployments_queued: deployments_queued.clone(),
        auto_register_projects: config.auto_register_projects,
        keyring: Arc::clone(&keys.keyring),
        forwarders: forwarders.clone(),
        intake: intake_activity.clone(),
    };
    background.spawn(router.run());
    let statuses = crate::statuses::StatusReporter::new(
        store.clone(),
        public_url.clone().unwrap_or_default(),
        config.github_api_url.clone(),
    );
    let scheduler = Scheduler {
        store: store.clone(),
        mirrors: mirrors.clone(),
        node,
        work_root: config.data_dir.join("work"),
        max_running: u32::try_from(config.max_concurrent_deployments).unwrap_or(u32::MAX),
        lease: config.deployment_lease,
        retention: config.workdir_retention,
        public_url: public_url.clone().unwrap_or_default(),
        wake: deployments_queued.clone(),
        keyring: Arc::clone(&keys.keyring),
        agents: crate::scheduler::AgentSettings {
            connect_timeout: config.agent_connect_timeout,
        },
        statuses: statuses.clone(),
        jobs_created: jobs_created.clone(),
        forwarders,
    };
    background.spawn(scheduler.run());
    // Deployments of dead nodes (this one's previous life included) whose
    // lease ran out: interrupted now and every `lease_sweep`.
    background.spawn(
        crate::lease_sweep::LeaseSweep {
            store: store.clone(),
            lease: config.deployment_lease,
            period: config.lease_sweep,
            wake: deployments_queued.clone(),
            statuses: statuses.clone(),
        }
        .run(),
    );

    let limits = crate::http::limits::Limits::default();
    let intake = Intake {
        server_secret: config.webhook_secret.clone(),
        insecure_unsigned: config.insecure_unsigned_webhooks,
        secrets: secrets.clone(),
        writer,
    };
    // Pushes missed while the server was down or unreachable: now, then
    // every `missed_push_sweep`.
    if !config.missed_push_sweep.is_zero() {
        let sweep = crate::sweep::Sweep {
            store: store.clone(),
            mirrors: mirrors.clone(),
            intake: intake.clone(),
            period: config.missed_push_sweep,
        };
        background.spawn(sweep.run());
    }
    let retention = crate::retention::Retention::new(
        store.clone(),
        mirrors.clone(),
        config.data_dir.join("work"),
        crate::retention::RetentionSettings::from_config(&config),
        intake_activity,
    );
    let services = Services {
        store: store.clone(),
        mirrors: mirrors.clone(),
        keys,
        secrets,
        deployments_queued: deployments_queued.clone(),
        deliveries_stored,
        jobs_created,
        // A release made by hand answers before the request's own time
        // limit runs out.
        fetch_budget: limits.request_timeout * 3 / 4,
        retention: retention.clone(),
        statuses,
    };
    background.spawn(expire_approvals(services.clone()));
    background.spawn(release_ended_holds(services.clone()));
    background.spawn(retention.run());
    let state = Arc::new(AppState {
        services,
        intake,
        limits,
        https: tls.is_some()
            || public_url
                .as_deref()
                .is_some_and(|url| url.starts_with("https://")),
    });
    Ok(Started {
        address,
        first_admin_token,
        interrupted: interrupted.len(),
        resumed: resumed.len(),
        tls_fingerprint: tls.as_ref().map(|tls| tls.fingerprint().to_owned()),
        public_url,
        listener,
        tls,
        router: app(state),
        work_root: config.data_dir.join("work"),
        store,
    })
}

/// The server's last reference to its store, kept to close it when the
/// process stops: SQLite's writer then runs its last checkpoint and the
/// WAL file is removed, instead of being left for the next start to
/// replay.
pub struct StoreCloser(Arc<dyn Store>);

impl StoreCloser {
    /// Waits (up to `within`) for every other reference to the store to be
    /// dropped, which happens as the runtimes drop their tasks, then closes
    /// it on this thread. Returns `false` when something still held it: the
    /// store is then left open, and the process' exit ends it as a crash
    /// would (nothing is lost; the next start replays the WAL).
    pub fn close(self, within: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        while Arc::strong_count(&self.0) > 1 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(self.0);
        true
    }
}

/// How often deployments awaiting approval are checked for their timeout.
const APPROVAL_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Cancels the deployments nobody approved within their phase's `Timeout`,
/// every [`APPROVAL_SWEEP`] (one indexed query of the waiting ones).
async fn expire_approvals(services: Services) {
    loop {
        tokio::time::sleep(APPROVAL_SWEEP).await;
        if let Err(error) = services.expire_approvals().await {
            tracing::warn!(%error, "cannot cancel the deployments whose approval timed out; trying again");
        }
    }
}

/// How often held deployments are checked for the end of their freeze.
const FREEZE_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Releases the deployments held by a freeze that has ended, every
/// [`FREEZE_SWEEP`] (one indexed query of the held ones; the freezes only
/// when there are some).
async fn release_ended_holds(services: Services) {
    loop {
        tokio::time::sleep(FREEZE_SWEEP).await;
        if let Err(error) = services.release_ended_holds().await {
            tracing::warn!(%error, "cannot release the deployments held by ended freezes; trying again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_tls_the_public_url_defaults_to_https() {
        let any: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let v6: SocketAddr = "[::1]:8443".parse().unwrap();
        assert_eq!(default_public_url(None, false, local), None);
        assert_eq!(
            default_public_url(None, true, any).as_deref(),
            Some("https://localhost:8443")
        );
        assert_eq!(
            default_public_url(None, true, local).as_deref(),
            Some("https://127.0.0.1:9000")
        );
        assert_eq!(
            default_public_url(None, true, v6).as_deref(),
            Some("https://[::1]:8443")
        );
        // A URL that is set wins.
        assert_eq!(
            default_public_url(Some("https://tako.example.com"), true, any).as_deref(),
            Some("https://tako.example.com")
        );
    }
}
