//! The SQLite implementation of [`Store`]: the embedded default.
//!
//! # Driver choice: rusqlite on dedicated threads
//!
//! SQLite has one writer at a time, so the store has exactly one write
//! connection, owned by a dedicated thread that runs jobs (closures over
//! `&mut Connection`) in arrival order, plus a small pool of read-only
//! connections on their own threads (WAL lets reads run beside the writer).
//! Async callers send a job and await a oneshot reply; no async runtime
//! thread ever blocks on SQLite.
//!
//! `sqlx`'s SQLite driver does the same thing internally (a worker thread per
//! connection) but adds a channel round trip and an `await` per statement;
//! with rusqlite a whole batch of inserts is one job on the writer thread:
//! one `BEGIN`, one cached prepared statement executed per row, one durable
//! `COMMIT`. The intake's batched insert is then bounded by SQLite itself
//! (see `benches/intake.rs`: tens of thousands of durable inserts per
//! second on the 2-core machine, against a target of 9,000). PostgreSQL has its own
//! implementation (`postgres/`, tokio-postgres) behind the same trait and
//! the same conformance suite; nothing in the trait is SQLite-specific.
//!
//! Settings: WAL, `synchronous=FULL` (an fsync costs ~0.2 ms here, so FULL is
//! free next to NORMAL; retention's batches alone commit with NORMAL, see
//! `ops/retention.rs`), `foreign_keys=ON`, a 5 s `busy_timeout`.
//!
//! Checkpoints: SQLite's automatic checkpoint runs inside the commit that
//! crosses 1,000 WAL pages, so one batch of webhooks in every few hundred
//! would wait for a checkpoint's fsync of the database file. The writer
//! turns it off; a checkpointer thread with its own connection checkpoints
//! instead (`PASSIVE`: it never waits for readers, and writes go on while
//! it copies), asked by the writer each time [`CHECKPOINT_EVERY_FRAMES`]
//! more frames were appended to the WAL (a WAL hook) and whenever the
//! writer has been idle for [`IDLE_CHECKPOINT`]. Small, frequent
//! checkpoints matter: a WAL left to grow through a burst (150 MB of
//! webhooks) was copied back in one go at the first idle moment, leaving
//! that much dirty data for one fsync, and every commit behind it waited
//! 0.2–0.5 s (docs/benchmarks.md). A WAL that is checkpointed as it goes
//! also restarts from its beginning, so its commits overwrite a file of
//! fixed size, and their fsync needs no file system journal commit.
//! `journal_size_limit` trims the WAL file back after a burst.
//!
//! # Migrations
//!
//! Numbered SQL files under `migrations/sqlite/NNNN_name.sql`, compiled in,
//! applied in order at open, each in its own transaction with its row in
//! `schema_migrations`. A database whose version is newer than the newest
//! migration known is refused with [`StoreError::SchemaTooNew`].

mod agents;
mod export;
mod jobs;
mod migrate;
mod ops;
mod sealing;
use crate::sealing as layer;
pub use export::SqliteExport;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use crate::agents::{Agent, AgentId, AgentState, EnrollmentToken, NewAgent, NewEnrollmentToken};
use crate::error::{StoreError, StoreResult};
use crate::jobs::{ChunkOutcome, Job, JobEnd, JobId, JobLease, NewJob};
use crate::model::WebhookSecret;
use crate::model::{
    ApiToken, Approval, AuditEntry, ClaimedDelivery, Delivery, DeliveryCompletion, DeliveryId,
    DeliveryOutcome, Deployment, DeploymentFilter, DeploymentId, DeploymentState, DeploymentTarget,
    EnvironmentPolicy, InsertOutcome, InterruptScope, Intervention, InterventionAnswer, LogCursor,
    LogLineRecord, LogPage, NewApiToken, NewApproval, NewAuditEntry, NewDelivery, NewDeployment,
    NewIntervention, NewProject, NewRelease, NewVariable, NodeId, Page, PageRequest, Project,
    ProjectId, Prune, Release, ReleaseId, StepRecord, TokenHash, TokenId, Variable, VariableId,
};
use crate::seal::Keyring;
use crate::store::Store;
use crate::wakeups::{Hub, Wakeup, Wakeups};

/// How many read connections a file database gets.
const READERS: usize = 2;
/// The writer checkpoints once it has had no job for this long.
const IDLE_CHECKPOINT: Duration = Duration::from_millis(100);
/// The writer asks for a checkpoint each time this many frames (pages of
/// 4 KiB) were appended to the WAL since it last asked: 4 MiB.
const CHECKPOINT_EVERY_FRAMES: i32 = 1024;
/// What the WAL file is trimmed to after a checkpoint.
const WAL_KEEP_BYTES: i64 = 64 * 1024 * 1024;

type Task = Box<dyn FnOnce(&mut Connection) + Send + 'static>;

/// Writes a client is waiting on with its request open (the intake's batch
/// of deliveries, answered 202 once it commits): the writer runs them
/// before the next job of its queue, so a push waits for at most the one
/// write in progress, not for every scheduler write queued before it
/// (claims, steps, log chunks, lease renewals of running deployments).
type Urgent = Arc<Mutex<std::collections::VecDeque<Task>>>;

/// Tako's store in one SQLite file (or in memory).
pub struct SqliteStore {
    writer: Option<mpsc::Sender<Task>>,
    /// Jobs the writer runs before its queue (see [`Urgent`]).
    urgent: Urgent,
    /// `None` for an in-memory database: reads then go to the writer.
    readers: Option<mpsc::Sender<Task>>,
    threads: Vec<JoinHandle<()>>,
    path: Option<PathBuf>,
    /// Seals secrets on their way in and opens them on their way out;
    /// without one they are kept as given (tests, tools).
    keyring: Option<Arc<Keyring>>,
    /// The in-process wake-ups (one node uses the file).
    hub: Arc<Hub>,
}

/// SQLite's migrations (the PostgreSQL ones mirror their numbers).
#[cfg(test)]
pub(crate) fn migrations() -> &'static [migrate::Migration] {
    migrate::MIGRATIONS
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn open_error(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::unavailable(format!("cannot open database {}", path.display()), source)
}

/// How long a connection waits for a lock another connection holds, in
/// steps of [`BUSY_STEP`], before its statement fails with `SQLITE_BUSY`.
const BUSY_WAIT: Duration = Duration::from_secs(5);
/// One step of that wait.
const BUSY_STEP: Duration = Duration::from_millis(1);

/// The busy handler: SQLite's own (`busy_timeout`) backs off up to 100 ms
/// between tries, so a lock held for a millisecond could cost a write 100
/// ms; this one tries again every millisecond, up to [`BUSY_WAIT`].
fn wait_while_busy(attempt: i32) -> bool {
    if attempt == 0 {
        tracing::debug!(target: "tako_store::slow", "the database is locked; waiting");
    }
    std::thread::sleep(BUSY_STEP);
    u128::try_from(attempt).unwrap_or(0) < BUSY_WAIT.as_millis() / BUSY_STEP.as_millis()
}

fn configure(conn: &mut Connection, path: Option<&Path>) -> StoreResult<()> {
    let fail = |e: rusqlite::Error| match path {
        Some(path) => open_error(path, e),
        None => StoreError::unavailable("cannot configure the in-memory database", e),
    };
    conn.busy_handler(Some(wait_while_busy)).map_err(fail)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(fail)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn spawn_worker(
    name: String,
    mut conn: Connection,
    jobs: Arc<Mutex<mpsc::Receiver<Task>>>,
) -> StoreResult<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            loop {
                let job = {
                    let Ok(receiver) = jobs.lock() else { return };
                    match receiver.recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    }
                };
                job(&mut conn);
            }
        })
        .map_err(|e| StoreError::unavailable("cannot start a store thread", e))
}

/// Puts the database in `auto_vacuum = INCREMENTAL`, so the pages
/// retention frees can be given back to the file system in small steps
/// (`Store::reclaim_space`). A new database takes it before its first table;
/// one made by an earlier version (`auto_vacuum = NONE`) is rewritten once
/// by `VACUUM`, at this start, which the log says.
fn incremental_auto_vacuum(conn: &Connection, path: Option<&Path>) -> StoreResult<()> {
    let fail = |e: rusqlite::Error| match path {
        Some(path) => open_error(path, e),
        None => StoreError::unavailable("cannot configure the in-memory database", e),
    };
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |row| row.get(0))
        .map_err(fail)?;
    if mode == 2 {
        return Ok(());
    }
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .map_err(fail)?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(fail)?;
    if tables > 0 {
        let started = std::time::Instant::now();
        tracing::warn!(
            database = %path.map(|p| p.display().to_string()).unwrap_or_default(),
            "switching the database to incremental auto-vacuum: a one-time VACUUM rewrites it now"
        );
        conn.execute_batch("VACUUM").map_err(fail)?;
        tracing::warn!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "the one-time VACUUM is done"
        );
    }
    Ok(())
}

/// The writer's thread: runs jobs in order; the checkpointer (if any)
/// copies the WAL back as it grows and when the writer is idle, never
/// inside a job's commit.
fn spawn_writer(
    mut conn: Connection,
    jobs: mpsc::Receiver<Task>,
    urgent: Urgent,
    checkpointer: Option<mpsc::SyncSender<()>>,
) -> StoreResult<JoinHandle<()>> {
    if let Some(ask) = checkpointer.clone() {
        ask_checkpoints_as_the_wal_grows(&mut conn, ask)?;
    }
    std::thread::Builder::new()
        .name("tako-store-writer".into())
        .spawn(move || {
            let mut dirty = false;
            loop {
                let next = if dirty {
                    jobs.recv_timeout(IDLE_CHECKPOINT)
                } else {
                    jobs.recv()
                        .map_err(|_| mpsc::RecvTimeoutError::Disconnected)
                };
                match next {
                    Ok(job) => {
                        loop {
                            // The lock is released before the job runs.
                            let next = urgent.lock().ok().and_then(|mut q| q.pop_front());
                            let Some(first) = next else { break };
                            first(&mut conn);
                        }
                        job(&mut conn);
                        dirty = checkpointer.is_some();
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Some(ask) = &checkpointer {
                            // A full channel: one is asked for already.
                            let _ = ask.try_send(());
                        }
                        dirty = false;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        if dirty {
                            checkpoint(&conn);
                        }
                        return;
                    }
                }
            }
        })
        .map_err(|e| StoreError::unavailable("cannot start a store thread", e))
}

/// Registers the writer's WAL hook: after a commit that brings the WAL to
/// [`CHECKPOINT_EVERY_FRAMES`] more frames than at the last ask, the
/// checkpointer is asked (without waiting: a full channel means it is
/// asked already). The frame count falls when the WAL restarts.
fn ask_checkpoints_as_the_wal_grows(
    conn: &mut Connection,
    ask: mpsc::SyncSender<()>,
) -> StoreResult<()> {
    let mut asked_at: i32 = 0;
    conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames: i32| {
        if frames < asked_at {
            asked_at = 0;
        }
        if frames - asked_at >= CHECKPOINT_EVERY_FRAMES {
            asked_at = frames;
            let _ = ask.try_send(());
        }
        Ok(())
    }))
    .map_err(|e| StoreError::unavailable("cannot watch the WAL", e))
}

/// The checkpointer's thread: a `PASSIVE` checkpoint each time the writer
/// asks, on a connection of its own, so writes are not held up by it; then
/// an fdatasync of the database file.
///
/// SQLite syncs the database file only after a checkpoint that copied the
/// whole WAL; while commits keep coming, none does, and the pages copied
/// back stay dirty in the page cache (150 MB in a loaded burst here) until
/// the kernel writes them all at once and every commit's fsync waits
/// behind them. Syncing after each checkpoint writes them a few MiB at a
/// time, off the writer's thread.
fn spawn_checkpointer(
    conn: Connection,
    database: std::fs::File,
    asks: mpsc::Receiver<()>,
) -> StoreResult<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("tako-store-checkpointer".into())
        .spawn(move || {
            for () in asks {
                checkpoint(&conn);
                if let Err(error) = database.sync_data() {
                    tracing::warn!(%error, "syncing the database file after a checkpoint failed; the next one retries");
                }
            }
        })
        .map_err(|e| StoreError::unavailable("cannot start a store thread", e))
}

/// A `PASSIVE` checkpoint: copies what no reader still needs back into the
/// database file, without waiting. Best effort: what it leaves, the next
/// one copies.
fn checkpoint(conn: &Connection) {
    if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!(%error, "WAL checkpoint failed; the next one retries");
    }
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) the database
    /// at `path`, applies pending migrations and starts the connection
    /// threads.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::unavailable(format!("cannot create directory {}", parent.display()), e)
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut writer =
            Connection::open_with_flags(&path, flags).map_err(|e| open_error(&path, e))?;
        configure(&mut writer, Some(&path))?;
        // Deleted or replaced content (a secret re-sealed under a new key) is
        // overwritten, not left in free pages.
        writer
            .pragma_update(None, "secure_delete", "ON")
            .map_err(|e| open_error(&path, e))?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| open_error(&path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::unavailable(
                format!("cannot open database {}", path.display()),
                format!("journal mode {mode} instead of wal"),
            ));
        }
        writer
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| open_error(&path, e))?;
        // The checkpointer thread checkpoints (see the module docs).
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| open_error(&path, e))?;
        writer
            .pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES)
            .map_err(|e| open_error(&path, e))?;
        // The writer's transactions take the write lock when they begin
        // (`BEGIN IMMEDIATE`), waiting up to the busy timeout for another
        // process's writer (a second store on the same file, a tool),
        // instead of failing with SQLITE_BUSY when a read turns into a write.
        writer.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        incremental_auto_vacuum(&writer, Some(&path))?;
        migrate::migrate(&mut writer).map_err(|e| match e {
            StoreError::Unavailable { context, source } => StoreError::Unavailable {
                context: format!("{context} in {}", path.display()),
                source,
            },
            other => other,
        })?;

        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let mut conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| open_error(&path, e))?;
            configure(&mut conn, Some(&path))?;
            conn.pragma_update(None, "query_only", "ON")
                .map_err(|e| open_error(&path, e))?;
            readers.push(conn);
        }
        let mut checkpointer = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(&path, e))?;
        configure(&mut checkpointer, Some(&path))?;
        Self::start(writer, readers, Some(checkpointer), Some(path))
    }

    /// A fresh database in memory (tests, `tako run`): one connection, gone
    /// when the store is dropped.
    pub fn in_memory() -> StoreResult<Self> {
        let mut conn = Connection::open_in_memory()
            .map_err(|e| StoreError::unavailable("cannot open an in-memory database", e))?;
        configure(&mut conn, None)?;
        incremental_auto_vacuum(&conn, None)?;
        migrate::migrate(&mut conn)?;
        Self::start(conn, Vec::new(), None, None)
    }

    fn start(
        writer: Connection,
        readers: Vec<Connection>,
        checkpointer: Option<Connection>,
        path: Option<PathBuf>,
    ) -> StoreResult<Self> {
        let mut threads = Vec::new();
        let ask_checkpoint = match checkpointer {
            Some(conn) => {
                let Some(path) = path.as_deref() else {
                    return Err(StoreError::unavailable(
                        "cannot start the checkpointer",
                        "a checkpointer needs the database's file",
                    ));
                };
                let database = std::fs::File::open(path).map_err(|e| {
                    StoreError::unavailable(format!("cannot open database {}", path.display()), e)
                })?;
                let (ask, asks) = mpsc::sync_channel::<()>(1);
                threads.push(spawn_checkpointer(conn, database, asks)?);
                Some(ask)
            }
            None => None,
        };
        let (write_tx, write_rx) = mpsc::channel::<Task>();
        let urgent = Urgent::default();
        threads.push(spawn_writer(
            writer,
            write_rx,
            Arc::clone(&urgent),
            ask_checkpoint,
        )?);
        let read_tx = if readers.is_empty() {
            None
        } else {
            let (read_tx, read_rx) = mpsc::channel::<Task>();
            let read_rx = Arc::new(Mutex::new(read_rx));
            for (index, conn) in readers.into_iter().enumerate() {
                threads.push(spawn_worker(
                    format!("tako-store-reader-{index}"),
                    conn,
                    Arc::clone(&read_rx),
                )?);
            }
            Some(read_tx)
        };
        Ok(SqliteStore {
            writer: Some(write_tx),
            urgent,
            readers: read_tx,
            threads,
            path,
            keyring: None,
            hub: Arc::default(),
        })
    }

    /// Seals every secret it writes with `keyring` (and opens what it reads).
    #[must_use]
    pub fn with_keyring(mut self, keyring: Arc<Keyring>) -> Self {
        self.keyring = Some(keyring);
        self
    }

    fn keys(&self) -> Option<Arc<Keyring>> {
        self.keyring.clone()
    }

    /// The database file, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Sends `f` to a store thread through `sender` and awaits its result.
    /// A write slower than [`SLOW_WRITE`] is logged with `at` (its caller)
    /// at debug level, under the `tako_store::slow` target.
    async fn run<T, F>(
        sender: Option<&mpsc::Sender<Task>>,
        at: &'static std::panic::Location<'static>,
        f: F,
    ) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let closed = || StoreError::unavailable("store", "the store is closed");
        let sender = sender.ok_or_else(closed)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        sender.send(timed(at, f, reply)).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs `f` on the writer connection.
    #[track_caller]
    fn write<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send + '_
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let at = std::panic::Location::caller();
        Self::run(self.writer.as_ref(), at, f)
    }

    /// Runs `f` on the writer connection before the jobs already queued
    /// there (see [`Urgent`]).
    #[track_caller]
    fn write_urgent<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send + '_
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let at = std::panic::Location::caller();
        async move {
            let closed = || StoreError::unavailable("store", "the store is closed");
            let sender = self.writer.as_ref().ok_or_else(closed)?;
            let (reply, answer) = tokio::sync::oneshot::channel();
            self.urgent
                .lock()
                .map_err(|_| closed())?
                .push_back(timed(at, f, reply));
            // Wakes the writer if it waits; it runs the urgent jobs first.
            sender.send(Box::new(|_| {})).map_err(|_| closed())?;
            answer.await.map_err(|_| closed())?
        }
    }

    /// Runs `f` on a read connection (the writer for an in-memory database).
    #[track_caller]
    fn read<T, F>(&self, f: F) -> impl Future<Output = StoreResult<T>> + Send + '_
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let at = std::panic::Location::caller();
        Self::run(self.readers.as_ref().or(self.writer.as_ref()), at, f)
    }
}

/// A store call slower than this is logged (debug level, target
/// `tako_store::slow`) with the line that made it.
const SLOW_WRITE: std::time::Duration = std::time::Duration::from_millis(20);

/// `f` as a store thread's job: run, timed, answered through `reply`.
fn timed<T, F>(
    at: &'static std::panic::Location<'static>,
    f: F,
    reply: tokio::sync::oneshot::Sender<StoreResult<T>>,
) -> Task
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
{
    let queued = std::time::Instant::now();
    Box::new(move |conn| {
        let began = std::time::Instant::now();
        let result = f(conn);
        let took = began.elapsed();
        if took > SLOW_WRITE {
            tracing::debug!(
                target: "tako_store::slow",
                at = %at,
                took_ms = took.as_millis() as u64,
                waited_ms = began.duration_since(queued).as_millis() as u64,
                "a slow store call"
            );
        }
        let _ = reply.send(result);
    })
}

impl SqliteStore {
    /// Passes `result` on, sending `wakeup` first when it succeeded.
    fn woke<T>(&self, result: StoreResult<T>, wakeup: Wakeup) -> StoreResult<T> {
        if result.is_ok() {
            self.hub.send(wakeup);
        }
        result
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // Closing the channels ends the threads once their queued jobs are
        // done; joining them closes every connection before this returns, so
        // the file can be reopened at once.
        self.writer = None;
        self.readers = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_project(&self, project: NewProject) -> StoreResult<Project> {
        let keys = self.keys();
        self.write(move |c| {
            let sealed = layer::seal_project(keys.as_deref(), &project)?;
            layer::open_project(keys.as_deref(), ops::create_project(c, &sealed)?)
        })
        .await
    }

    async fn set_webhook_secret(
        &self,
        project: ProjectId,
        secret: Option<WebhookSecret>,
    ) -> StoreResult<Project> {
        let keys = self.keys();
        self.write(move |c| {
            let sealed = secret
                .map(|s| layer::seal_secret(keys.as_deref(), &s.0))
                .transpose()?;
            layer::open_project(
                keys.as_deref(),
                ops::set_webhook_secret(c, project, sealed.as_deref())?,
            )
        })
        .await
    }

    async fn set_forge_status(
        &self,
        project: ProjectId,
        status: Option<crate::model::ForgeStatus>,
    ) -> StoreResult<Project> {
        let keys = self.keys();
        self.write(move |c| {
            let sealed = status
                .map(|s| layer::seal_forge_status(keys.as_deref(), s))
                .transpose()?;
            layer::open_project(
                keys.as_deref(),
                ops::set_forge_status(c, project, sealed.as_ref())?,
            )
        })
        .await
    }

    async fn get_project(&self, id: ProjectId) -> StoreResult<Project> {
        let keys = self.keys();
        self.read(move |c| layer::open_project(keys.as_deref(), ops::get_project(c, id)?))
            .await
    }

    async fn find_project_by_name(&self, name: &str) -> StoreResult<Option<Project>> {
        let key = name.to_lowercase();
        let keys = self.keys();
        self.read(move |c| {
            ops::find_project_by(c, "name_key", &key)?
                .map(|p| layer::open_project(keys.as_deref(), p))
                .transpose()
        })
        .await
    }

    async fn find_project_by_repository(&self, url: &str) -> StoreResult<Option<Project>> {
        let key = crate::model::normalize_repository_url(url);
        let keys = self.keys();
        self.read(move |c| {
            ops::find_project_by(c, "repository_key", &key)?
                .map(|p| layer::open_project(keys.as_deref(), p))
                .transpose()
        })
        .await
    }

    async fn list_projects(&self) -> StoreResult<Vec<Project>> {
        let keys = self.keys();
        self.read(move |c| {
            ops::list_projects(c)?
                .into_iter()
                .map(|p| layer::open_project(keys.as_deref(), p))
                .collect()
        })
        .await
    }

    async fn next_build_number(&self, project: ProjectId) -> StoreResult<i64> {
        self.write(move |c| ops::next_build_number(c, project))
            .await
    }

    async fn peek_build_number(&self, project: ProjectId) -> StoreResult<i64> {
        self.read(move |c| ops::peek_build_number(c, project)).await
    }

    async fn create_freeze(
        &self,
        freeze: crate::model::NewFreeze,
    ) -> StoreResult<crate::model::Freeze> {
        self.write(move |c| ops::create_freeze(c, &freeze)).await
    }

    async fn list_freezes(&self) -> StoreResult<Vec<crate::model::Freeze>> {
        self.read(ops::list_freezes).await
    }

    async fn delete_freeze(&self, id: i64) -> StoreResult<()> {
        self.write(move |c| ops::delete_freeze(c, id)).await
    }

    async fn release_held(&self, id: DeploymentId) -> StoreResult<Deployment> {
        self.write(move |c| ops::release_held(c, id)).await
    }

    async fn insert_deliveries(
        &self,
        deliveries: &[NewDelivery],
    ) -> StoreResult<Vec<InsertOutcome>> {
        // Compressed here, on the caller's thread: the writer only writes.
        let deliveries: Vec<(NewDelivery, &'static str)> = deliveries
            .iter()
            .map(|d| {
                let (body, codec) = crate::body_codec::compress(&d.body);
                let delivery = NewDelivery {
                    id: d.id.clone(),
                    event: d.event.clone(),
                    received_at: d.received_at,
                    body: body.into_owned(),
                    repository_url: d.repository_url.clone(),
                    git_ref: d.git_ref.clone(),
                    after: d.after.clone(),
                    recovered: d.recovered,
                };
                (delivery, codec)
            })
            .collect();
        let stored = self
            .write_urgent(move |c| ops::insert_deliveries(c, &deliveries))
            .await;
        self.woke(stored, Wakeup::Deliveries)
    }

    async fn claim_pending_deliveries(
        &self,
        node: &NodeId,
        lease: Duration,
        limit: usize,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let node = node.clone();
        self.write(move |c| ops::claim_pending_deliveries(c, &node, lease, limit))
            .await
    }

    async fn release_delivery_claims(&self, node: &NodeId) -> StoreResult<u64> {
        let node = node.clone();
        self.write(move |c| ops::release_delivery_claims(c, &node))
            .await
    }

    async fn complete_deliveries(
        &self,
        completions: Vec<(DeliveryId, DeliveryCompletion)>,
    ) -> StoreResult<Vec<StoreResult<DeliveryOutcome>>> {
        let completed = self
            .write(move |c| ops::complete_deliveries(c, completions))
            .await;
        self.woke(completed, Wakeup::Deployments)
    }

    async fn get_delivery(&self, id: &DeliveryId) -> StoreResult<Delivery> {
        let id = id.clone();
        self.read(move |c| ops::get_delivery(c, &id)).await
    }

    async fn list_deliveries(
        &self,
        project: Option<ProjectId>,
        page: PageRequest,
    ) -> StoreResult<Page<Delivery>> {
        self.read(move |c| ops::list_deliveries(c, project, page))
            .await
    }

    async fn totals(&self) -> StoreResult<crate::model::Totals> {
        self.read(ops::totals).await
    }

    async fn replay_delivery(&self, id: &DeliveryId) -> StoreResult<Delivery> {
        let id = id.clone();
        self.write(move |c| ops::replay_delivery(c, &id)).await
    }

    async fn last_processed_head(
        &self,
        project: ProjectId,
        git_ref: &str,
    ) -> StoreResult<Option<String>> {
        let git_ref = git_ref.to_owned();
        self.read(move |c| ops::last_processed_head(c, project, &git_ref))
            .await
    }

    async fn find_push_delivery(
        &self,
        project: ProjectId,
        git_ref: &str,
        after: &str,
    ) -> StoreResult<Option<Delivery>> {
        let git_ref = git_ref.to_owned();
        let after = after.to_owned();
        self.read(move |c| ops::find_push_delivery(c, project, &git_ref, &after))
            .await
    }

    async fn add_delivery_warnings(&self, id: &DeliveryId, warnings: &[String]) -> StoreResult<()> {
        let id = id.clone();
        let warnings = warnings.to_vec();
        self.write(move |c| ops::add_delivery_warnings(c, &id, &warnings))
            .await
    }

    async fn set_deployment_forward(&self, id: DeploymentId, forward: &str) -> StoreResult<()> {
        let forward = forward.to_owned();
        self.write(move |c| ops::set_deployment_forward(c, id, &forward))
            .await
    }

    async fn create_release(&self, release: NewRelease) -> StoreResult<Release> {
        self.write(move |c| {
            let tx = c.transaction().map_err(ops::db("create release"))?;
            let release = ops::insert_release(&tx, &release)?;
            tx.commit().map_err(ops::db("create release"))?;
            Ok(release)
        })
        .await
    }

    async fn create_release_with_deployments(
        &self,
        release: NewRelease,
        targets: &[DeploymentTarget],
    ) -> StoreResult<(Release, Vec<Deployment>)> {
        let environments = targets.to_vec();
        let created = self
            .write(move |c| {
                let tx = c
                    .transaction()
                    .map_err(ops::db("create a release and its deployments"))?;
                let release = ops::insert_release(&tx, &release)?;
                let mut deployments = Vec::with_capacity(environments.len());
                for target in environments {
                    deployments.push(ops::insert_deployment(
                        &tx,
                        &NewDeployment {
                            release: release.id,
                            environment: target.environment,
                            approval: target.approval,
                            created_by: target.created_by,
                            retry_of: None,
                            hold: false,
                        },
                    )?);
                }
                tx.commit()
                    .map_err(ops::db("create a release and its deployments"))?;
                Ok((release, deployments))
            })
            .await;
        self.woke(created, Wakeup::Deployments)
    }

    async fn get_release(&self, id: ReleaseId) -> StoreResult<Release> {
        self.read(move |c| ops::get_release(c, id)).await
    }

    async fn find_release_by_number(
        &self,
        project: ProjectId,
        number: &str,
    ) -> StoreResult<Option<Release>> {
        let number = number.to_owned();
        self.read(move |c| ops::find_release_by_number(c, project, &number))
            .await
    }

    async fn latest_release(&self, project: ProjectId) -> StoreResult<Option<Release>> {
        self.read(move |c| ops::latest_release(c, project)).await
    }

    async fn list_releases(
        &self,
        project: ProjectId,
        page: PageRequest,
    ) -> StoreResult<Page<Release>> {
        self.read(move |c| ops::list_releases(c, project, page))
            .await
    }

    async fn create_deployment(&self, deployment: NewDeployment) -> StoreResult<Deployment> {
        let created = self
            .write(move |c| {
                let tx = c.transaction().map_err(ops::db("create deployment"))?;
                let deployment = ops::insert_deployment(&tx, &deployment)?;
                tx.commit().map_err(ops::db("create deployment"))?;
                Ok(deployment)
            })
            .await;
        self.woke(created, Wakeup::Deployments)
    }

    async fn get_deployment(&self, id: DeploymentId) -> StoreResult<Deployment> {
        self.read(move |c| ops::get_deployment(c, id)).await
    }

    async fn list_deployments(
        &self,
        filter: &DeploymentFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Deployment>> {
        let filter = filter.clone();
        self.read(move |c| ops::list_deployments(c, &filter, page))
            .await
    }

    async fn latest_deployments(&self, project: Option<ProjectId>) -> StoreResult<Vec<Deployment>> {
        self.read(move |c| ops::latest_deployments(c, project))
            .await
    }

    async fn release_deployments(&self, releases: &[ReleaseId]) -> StoreResult<Vec<Deployment>> {
        let releases = releases.to_vec();
        self.read(move |c| ops::release_deployments(c, &releases))
            .await
    }

    async fn claim_next_deployment(
        &self,
        node: &NodeId,
        lease: Duration,
        max_running: u32,
    ) -> StoreResult<Option<Deployment>> {
        let node = node.clone();
        self.write(move |c| ops::claim_next_deployment(c, &node, lease, max_running))
            .await
    }

    async fn renew_deployment_lease(
        &self,
        id: DeploymentId,
        node: &NodeId,
        lease: Duration,
    ) -> StoreResult<DateTime<Utc>> {
        let node = node.clone();
        self.write(move |c| ops::renew_deployment_lease(c, id, &node, lease))
            .await
    }

    async fn finish_deployment(
        &self,
        id: DeploymentId,
        state: DeploymentState,
        error: Option<String>,
    ) -> StoreResult<Deployment> {
        let finished = self
            .write(move |c| ops::finish_deployment(c, id, state, error))
            .await;
        self.woke(finished, Wakeup::Deployments)
    }

    async fn request_cancel(&self, id: DeploymentId) -> StoreResult<Deployment> {
        let requested = self.write(move |c| ops::request_cancel(c, id)).await;
        self.woke(requested, Wakeup::Cancel(id))
    }

    async fn record_approval(
        &self,
        id: DeploymentId,
        decision: NewApproval,
    ) -> StoreResult<Deployment> {
        let recorded = self
            .write(move |c| ops::record_approval(c, id, &decision))
            .await;
        self.woke(recorded, Wakeup::Deployments)
    }

    async fn list_approvals(&self, id: DeploymentId) -> StoreResult<Vec<Approval>> {
        self.read(move |c| ops::list_approvals(c, id)).await
    }

    async fn expire_approvals(&self, now: DateTime<Utc>) -> StoreResult<Vec<Deployment>> {
        self.write(move |c| ops::expire_approvals(c, now)).await
    }

    async fn pause_deployment(
        &self,
        id: DeploymentId,
        pause: NewIntervention,
    ) -> StoreResult<Deployment> {
        self.write(move |c| ops::pause_deployment(c, id, &pause))
            .await
    }

    async fn answer_intervention(
        &self,
        id: DeploymentId,
        answer: InterventionAnswer,
    ) -> StoreResult<Deployment> {
        let keys = self.keys();
        self.write(move |c| {
            let sealed = match &answer.outputs {
                Some(outputs) => Some(layer::seal(keys.as_deref(), outputs)?),
                None => None,
            };
            ops::answer_intervention(c, id, &answer, sealed.as_deref())
        })
        .await
    }

    async fn list_interventions(&self, id: DeploymentId) -> StoreResult<Vec<Intervention>> {
        self.read(move |c| ops::list_interventions(c, id)).await
    }

    async fn interrupt_running(&self, scope: InterruptScope) -> StoreResult<Vec<DeploymentId>> {
        let interrupted = self.write(move |c| ops::interrupt_running(c, &scope)).await;
        self.woke(interrupted, Wakeup::Deployments)
    }

    async fn update_step(&self, deployment: DeploymentId, step: StepRecord) -> StoreResult<()> {
        self.write(move |c| ops::update_step(c, deployment, &step))
            .await
    }

    async fn list_steps(&self, deployment: DeploymentId) -> StoreResult<Vec<StepRecord>> {
        self.read(move |c| ops::list_steps(c, deployment)).await
    }

    async fn set_step_outputs(
        &self,
        deployment: DeploymentId,
        index: u32,
        outputs: String,
    ) -> StoreResult<()> {
        let keys = self.keys();
        self.write(move |c| {
            let sealed = layer::seal(keys.as_deref(), &outputs)?;
            ops::set_step_outputs(c, deployment, index, &sealed)
        })
        .await
    }

    async fn step_outputs(&self, deployment: DeploymentId) -> StoreResult<Vec<(u32, String)>> {
        let keys = self.keys();
        self.read(move |c| {
            ops::step_outputs(c, deployment)?
                .into_iter()
                .map(|(index, sealed)| Ok((index, layer::open(keys.as_deref(), &sealed)?)))
                .collect()
        })
        .await
    }

    async fn requeue_waiting_on_agents(&self, node: &NodeId) -> StoreResult<Vec<DeploymentId>> {
        let node = node.clone();
        let requeued = self
            .write(move |c| ops::requeue_waiting_on_agents(c, &node))
            .await;
        self.woke(requeued, Wakeup::Deployments)
    }

    async fn append_log(
        &self,
        deployment: DeploymentId,
        lines: &[LogLineRecord],
    ) -> StoreResult<()> {
        if lines.is_empty() {
            return self.get_deployment(deployment).await.map(|_| ());
        }
        // Encode on the caller's thread: the writer only inserts bytes.
        let chunks: Vec<(usize, Vec<u8>)> = lines
            .chunks(crate::log_codec::CHUNK_MAX_LINES)
            .map(|chunk| (chunk.len(), crate::log_codec::encode(chunk)))
            .collect();
        let appended = self
            .write(move |c| ops::append_log(c, deployment, &chunks))
            .await;
        self.woke(appended, Wakeup::Log(deployment))
    }

    async fn read_log(
        &self,
        deployment: DeploymentId,
        after: LogCursor,
        limit: u32,
    ) -> StoreResult<LogPage> {
        self.read(move |c| ops::read_log(c, deployment, after, limit))
            .await
    }

    async fn set_variable(&self, variable: NewVariable) -> StoreResult<Variable> {
        let keys = self.keys();
        self.write(move |c| {
            let sealed = layer::seal_variable(keys.as_deref(), &variable)?;
            layer::open_variable(keys.as_deref(), ops::set_variable(c, &sealed)?)
        })
        .await
    }

    async fn list_variables(&self, project: ProjectId) -> StoreResult<Vec<Variable>> {
        let keys = self.keys();
        self.read(move |c| {
            ops::list_variables(c, project)?
                .into_iter()
                .map(|v| layer::open_variable(keys.as_deref(), v))
                .collect()
        })
        .await
    }

    async fn delete_variable(&self, id: VariableId) -> StoreResult<()> {
        self.write(move |c| ops::delete_variable(c, id)).await
    }

    async fn create_token(&self, token: NewApiToken) -> StoreResult<ApiToken> {
        self.write(move |c| ops::create_token(c, &token)).await
    }

    async fn find_token_by_hash(&self, hash: &TokenHash) -> StoreResult<Option<ApiToken>> {
        let hash = *hash;
        self.read(move |c| ops::find_token_by_hash(c, &hash)).await
    }

    async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>> {
        self.read(ops::list_tokens).await
    }

    async fn touch_token(&self, id: TokenId, at: DateTime<Utc>) -> StoreResult<()> {
        self.write(move |c| ops::touch_token(c, id, at)).await
    }

    async fn revoke_token(&self, id: TokenId) -> StoreResult<()> {
        self.write(move |c| ops::revoke_token(c, id)).await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        self.read(move |c| ops::get_setting(c, &key)).await
    }

    fn wakeups(&self) -> Wakeups {
        self.hub.subscribe()
    }

    async fn cache_generation(&self) -> StoreResult<i64> {
        self.read(ops::cache_generation).await
    }

    async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |c| ops::set_setting(c, &key, &value, true).map(|_| ()))
            .await
    }

    async fn set_environment_policy(
        &self,
        project: ProjectId,
        environment: &str,
        allowed_branches: &[String],
    ) -> StoreResult<EnvironmentPolicy> {
        let environment = environment.to_owned();
        let allowed = allowed_branches.to_vec();
        self.write(move |c| ops::set_environment_policy(c, project, &environment, &allowed))
            .await
    }

    async fn find_environment_policy(
        &self,
        project: ProjectId,
        environment: &str,
    ) -> StoreResult<Option<EnvironmentPolicy>> {
        let environment = environment.to_owned();
        self.read(move |c| ops::find_environment_policy(c, project, &environment))
            .await
    }

    async fn list_environment_policies(
        &self,
        project: ProjectId,
    ) -> StoreResult<Vec<EnvironmentPolicy>> {
        self.read(move |c| ops::list_environment_policies(c, project))
            .await
    }

    async fn delete_environment_policy(
        &self,
        project: ProjectId,
        environment: &str,
    ) -> StoreResult<()> {
        let environment = environment.to_owned();
        self.write(move |c| ops::delete_environment_policy(c, project, &environment))
            .await
    }

    async fn append_audit(&self, entry: NewAuditEntry) -> StoreResult<AuditEntry> {
        self.write(move |c| ops::append_audit(c, &entry)).await
    }

    async fn list_audit(&self, page: PageRequest) -> StoreResult<Page<AuditEntry>> {
        self.read(move |c| ops::list_audit(c, page)).await
    }

    async fn reseal_secrets(&self, current: &str) -> StoreResult<u64> {
        let Some(keys) = self.keys() else {
            return Err(StoreError::unavailable(
                "re-seal secrets",
                "this store has no keyring",
            ));
        };
        let current = current.to_owned();
        self.write(move |c| sealing::reseal_all(c, &keys, &current))
            .await
    }

    async fn set_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |c| ops::set_setting(c, &key, &value, false))
            .await
    }

    async fn prune(&self, what: Prune, limit: u32, dry_run: bool) -> StoreResult<u64> {
        if dry_run {
            self.read(move |c| ops::count_prunable(c, &what)).await
        } else {
            self.write(move |c| ops::prune(c, &what, limit)).await
        }
    }

    async fn reclaim_space(&self, max_pages: u32) -> StoreResult<u64> {
        self.write(move |c| ops::reclaim_space(c, max_pages)).await
    }

    async fn create_enrollment_token(
        &self,
        token: NewEnrollmentToken,
    ) -> StoreResult<EnrollmentToken> {
        self.write(move |c| agents::create_enrollment_token(c, &token))
            .await
    }

    async fn redeem_enrollment_token(
        &self,
        token: &TokenHash,
        agent: NewAgent,
        now: DateTime<Utc>,
    ) -> StoreResult<Agent> {
        let token = *token;
        self.write(move |c| agents::redeem_enrollment_token(c, &token, &agent, now))
            .await
    }

    async fn find_agent_by_credential(&self, credential: &TokenHash) -> StoreResult<Option<Agent>> {
        let credential = *credential;
        self.read(move |c| agents::find_agent_by_credential(c, &credential))
            .await
    }

    async fn find_agent_by_name(&self, name: &str) -> StoreResult<Option<Agent>> {
        let name = name.to_owned();
        self.read(move |c| agents::find_agent_by_name(c, &name))
            .await
    }

    async fn list_agents(&self) -> StoreResult<Vec<Agent>> {
        self.read(agents::list_agents).await
    }

    async fn set_agent_state(&self, id: AgentId, state: AgentState) -> StoreResult<Agent> {
        self.write(move |c| agents::set_agent_state(c, id, state))
            .await
    }

    async fn set_agent_credential(&self, id: AgentId, credential: TokenHash) -> StoreResult<Agent> {
        self.write(move |c| agents::set_agent_credential(c, id, &credential))
            .await
    }

    async fn delete_agent(&self, id: AgentId) -> StoreResult<()> {
        self.write(move |c| agents::delete_agent(c, id)).await
    }

    async fn touch_agent(&self, id: AgentId, version: &str, at: DateTime<Utc>) -> StoreResult<()> {
        let version = version.to_owned();
        self.write(move |c| agents::touch_agent(c, id, &version, at))
            .await
    }

    async fn create_job(&self, mut job: NewJob) -> StoreResult<Job> {
        let keys = self.keys();
        let created = self
            .write(move |c| {
                job.spec = layer::seal(keys.as_deref(), &job.spec)?;
                jobs::create_job(c, &job, Utc::now())
            })
            .await;
        self.woke(created, Wakeup::Jobs)
    }

    async fn get_job(&self, id: &JobId) -> StoreResult<Job> {
        let id = id.clone();
        self.read(move |c| jobs::get_job(c, &id)).await
    }

    async fn list_jobs(&self, deployment: DeploymentId) -> StoreResult<Vec<Job>> {
        self.read(move |c| jobs::list_jobs(c, deployment)).await
    }

    async fn count_running_jobs(&self) -> StoreResult<u64> {
        self.read(jobs::count_running_jobs).await
    }

    async fn running_jobs(&self) -> StoreResult<Vec<Job>> {
        self.read(jobs::running_jobs).await
    }

    async fn claim_job(
        &self,
        agent: AgentId,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(Job, String)>> {
        let keys = self.keys();
        self.write(move |c| {
            jobs::claim_job(c, agent, lease, now)?
                .map(|(job, spec)| Ok((job, layer::open(keys.as_deref(), &spec)?)))
                .transpose()
        })
        .await
    }

    async fn renew_job(
        &self,
        id: &JobId,
        agent: AgentId,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<JobLease> {
        let id = id.clone();
        self.write(move |c| jobs::renew_job(c, &id, agent, lease, now))
            .await
    }

    async fn append_job_log(
        &self,
        id: &JobId,
        agent: AgentId,
        seq: u64,
        lines: &[LogLineRecord],
    ) -> StoreResult<ChunkOutcome> {
        let id = id.clone();
        let chunks: Vec<(usize, Vec<u8>)> = lines
            .chunks(crate::log_codec::CHUNK_MAX_LINES)
            .map(|chunk| (chunk.len(), crate::log_codec::encode(chunk)))
            .collect();
        let (outcome, deployment) = self
            .write(move |c| jobs::append_job_log(c, &id, agent, seq, &chunks))
            .await?;
        if matches!(outcome, ChunkOutcome::Stored { .. }) {
            self.hub.send(Wakeup::Log(deployment));
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
        let id = id.clone();
        let keys = self.keys();
        self.write(move |c| {
            end.outputs = layer::seal(keys.as_deref(), &end.outputs)?;
            jobs::finish_job(c, &id, agent, &end, now)
        })
        .await
    }

    async fn job_spec(&self, id: &JobId) -> StoreResult<String> {
        let id = id.clone();
        let keys = self.keys();
        self.read(move |c| layer::open(keys.as_deref(), &jobs::job_spec(c, &id)?))
            .await
    }

    async fn job_outputs(&self, id: &JobId) -> StoreResult<Option<String>> {
        let id = id.clone();
        let keys = self.keys();
        self.read(move |c| {
            jobs::job_outputs(c, &id)?
                .map(|sealed| layer::open(keys.as_deref(), &sealed))
                .transpose()
        })
        .await
    }

    async fn request_job_cancel(&self, id: &JobId, now: DateTime<Utc>) -> StoreResult<Job> {
        let id = id.clone();
        self.write(move |c| jobs::request_job_cancel(c, &id, now))
            .await
    }

    async fn fail_unclaimed_job(
        &self,
        id: &JobId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Job> {
        let id = id.clone();
        let reason = reason.to_owned();
        self.write(move |c| jobs::fail_unclaimed_job(c, &id, &reason, now))
            .await
    }

    async fn interrupt_expired_jobs(&self, now: DateTime<Utc>) -> StoreResult<Vec<Job>> {
        self.write(move |c| jobs::interrupt_expired_jobs(c, now))
            .await
    }
}

#[cfg(test)]
mod writer_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test]
    async fn an_urgent_write_runs_before_the_writes_queued_ahead_of_it() {
        let store = SqliteStore::in_memory().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (release, held) = std::sync::mpsc::channel::<()>();
        // The writer is busy with this until `release`.
        let busy = store.write(move |_| {
            held.recv().ok();
            Ok(())
        });
        let mut busy = Box::pin(busy);
        assert!(busy.as_mut().now_or_never().is_none());
        for (name, urgent) in [("queued 1", false), ("queued 2", false), ("intake", true)] {
            let order = Arc::clone(&order);
            let job = move |_: &mut Connection| {
                order.lock().unwrap().push(name);
                Ok(())
            };
            // Polled once: the job is handed to the writer, the answer not
            // awaited.
            let sent = if urgent {
                store.write_urgent(job).boxed().now_or_never()
            } else {
                store.write(job).boxed().now_or_never()
            };
            assert!(sent.is_none());
        }
        release.send(()).unwrap();
        busy.await.unwrap();
        let order_after = Arc::clone(&order);
        store
            .write(move |_| {
                order_after.lock().unwrap().push("last");
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(
            *order.lock().unwrap(),
            ["intake", "queued 1", "queued 2", "last"]
        );
    }
}
