//! `tako agent run`: enroll once, then deliver what the spool still owes,
//! then ask for work, run each job and report it (`agents.md` §3–§5).
//!
//! A job runs with the same exec code as the server ([`LocalExecutor`]) in
//! a fresh copy of the release commit's files. Its lines, masked with the
//! job's list, go into the [`crate::spool`] in numbered chunks, which a
//! sender sends in order while the step runs (again after a gap or a lost
//! connection, with [`Backoff`]; it gives a job up only when the server
//! answers 404 or 409). A heartbeat renews the job's lease and carries the
//! server's cancel request to the step. The outcome is spooled before it is
//! sent and sent until acknowledged; then the spool forgets the job and its
//! directory is removed, so no secret stays on disk.
//!
//! Everything runs on one task (the step, the sender, the heartbeats, the
//! chunk timer are joined futures), so the spool is shared by reference.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::SecondsFormat;
use tako_core::Masker;
use tako_core::log::{LogLevel, LogLine};
use tako_core::step::StepState;
use tako_exec::engine::RunSettings;
use tako_exec::executor::{LocalExecutor, StepExecutor, StepJob, StepRun};
use tako_exec::sink::{LogSink, TaskLog};
use tako_protocol::agent::{
    EnrollRequest, Job, JobLogLine, JobOutcome, JobOutput, JobState, PROTOCOL_VERSION, Secret,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::client::{CallError, Client, ClientError, POLL_SECONDS};
use crate::source::{self, Sources};
use crate::spool::{JobSpool, Spool, SpoolError};
use crate::state::{DataDir, Enrollment, StateError};
use crate::tls::Trust;
use crate::transport::{ServerUrl, UrlError};

/// A chunk is cut when it holds this many lines (the server's limit)…
const CHUNK_LINES: usize = 5000;
/// …or this many bytes of JSON (the server takes up to 1 MiB a request).
const CHUNK_BYTES: usize = 512 * 1024;
/// What the spool owes is sent in batches of at most this many bytes of
/// chunks (the server takes up to 1 MiB a request).
const BATCH_BYTES: usize = 960 * 1024;
/// A line longer than this is cut (the server cuts at the same length).
const MAX_LINE_BYTES: usize = 64 * 1024;
/// Lines waiting longer than this are sent as a chunk.
const CHUNK_EVERY: Duration = Duration::from_millis(200);
/// Time between SIGTERM and SIGKILL when a step is stopped.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// How long a stopping agent keeps trying to deliver; what is left stays
/// in the spool for its next start.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The server's URL (`None`: the one remembered from enrollment).
    pub server: Option<String>,
    /// A single-use enrollment token (needed only the first time).
    pub enroll: Option<Secret>,
    /// The name to propose at enrollment (`None`: this machine's name).
    pub name: Option<String>,
    /// How to check the server's certificate.
    pub trust: Trust,
    /// Allow `http://` to another machine.
    pub insecure_http: bool,
    /// Take one job, then stop.
    pub once: bool,
}

/// What the agent tells its operator (one line each).
#[derive(Debug)]
pub enum Event<'a> {
    /// Enrolled now.
    Enrolled {
        /// The name the server gave.
        name: &'a str,
        /// `pending` or `active`.
        state: &'a str,
    },
    /// `--enroll` was given, but the data directory holds an enrollment.
    AlreadyEnrolled {
        /// The agent's name.
        name: &'a str,
    },
    /// Asking for work.
    Ready {
        /// The agent's name.
        name: &'a str,
        /// The server.
        server: &'a str,
    },
    /// The server says the agent is pending or disabled.
    NotAllowed {
        /// The server's words.
        message: &'a str,
    },
    /// The server cannot be reached; retrying quietly.
    ConnectionLost {
        /// Why.
        message: &'a str,
    },
    /// The server can be reached again.
    Reconnected,
    /// Steps a previous run left running when it died were stopped.
    LeftoverSteps {
        /// How many process groups were killed.
        killed: usize,
    },
    /// A job started.
    JobStarted {
        /// The job.
        job: &'a Job,
    },
    /// A job ended and its outcome is delivered (or kept in the spool).
    JobEnded {
        /// The job's id.
        job: &'a str,
        /// The step.
        step: &'a str,
        /// How it ended.
        state: JobState,
        /// How long it ran.
        duration: Duration,
        /// Why it failed (masked).
        reason: Option<&'a str>,
    },
    /// What a previous run of the agent left is delivered.
    Delivered {
        /// The job.
        job: &'a str,
    },
    /// Something about a job the server no longer takes, or that could not
    /// be delivered whole.
    JobNote {
        /// The job.
        job: &'a str,
        /// What happened.
        note: String,
    },
    /// Asked to stop: no more work is taken.
    Stopping,
}

/// Receives the agent's [`Event`]s.
pub trait Reporter: Send + Sync {
    /// One event.
    fn report(&self, event: Event<'_>);
}

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The server URL.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// TLS or the HTTP client.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The data directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// The spool.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// No server URL given or remembered.
    #[error(
        "no server: pass --server URL (the data directory {0} holds no enrollment to remember it from)"
    )]
    NoServer(PathBuf),
    /// Not enrolled and no token.
    #[error(
        "this agent is not enrolled (no credential in {0}): pass --enroll TOKEN, created on the server with `tako agent enroll-token`"
    )]
    NotEnrolled(PathBuf),
    /// The server refused the enrollment.
    #[error("enrollment refused: {0}")]
    Enroll(String),
    /// The server refused the agent for good (its credential, its version).
    #[error("{0}")]
    Refused(String),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the agent until `shutdown` (or, with `once`, one job).
pub async fn run(
    options: Options,
    reporter: &dyn Reporter,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let data = DataDir::open(&options.data_dir)?;
    let saved = data.load()?;
    let server = options
        .server
        .clone()
        .or_else(|| saved.as_ref().map(|s| s.server.clone()))
        .ok_or_else(|| AgentError::NoServer(options.data_dir.clone()))?;
    let url = ServerUrl::parse(&server, options.insecure_http)?;
    let client = Client::new(url, &options.trust)?;
    let enrollment = match (saved, &options.enroll) {
        (Some(mut saved), token) => {
            if token.is_some() {
                reporter.report(Event::AlreadyEnrolled { name: &saved.name });
            }
            if saved.server != server {
                saved.server = server.clone();
                data.save(&saved)?;
            }
            saved
        }
        (None, Some(token)) => {
            let Some(enrollment) = enroll(
                &client, &data, &options, token, &server, reporter, &shutdown,
            )
            .await?
            else {
                return Ok(());
            };
            enrollment
        }
        (None, None) => return Err(AgentError::NotEnrolled(options.data_dir.clone())),
    };
    let client = client.with_credential(enrollment.credential.clone());
    let spool = Spool::open(&data.spool_dir())?;
    // A crash (kill -9, power loss) leaves the step's processes running
    // and its job directory, maybe with scratch files, behind: the server
    // has interrupted that job, so both go.
    let killed = tako_exec::process::kill_leftover_groups(&data.work_dir());
    if killed > 0 {
        reporter.report(Event::LeftoverSteps { killed });
    }
    let _ = std::fs::remove_dir_all(data.work_dir());
    source::remove_leftovers(&data.sources_dir());
    let agent = Agent {
        client,
        data,
        spool,
        reporter,
        shutdown,
        connection: Connection::default(),
    };
    agent.deliver_pending().await?;
    if agent.shutdown.is_cancelled() {
        return Ok(());
    }
    reporter.report(Event::Ready {
        name: &enrollment.name,
        server: &server,
    });
    agent.work(options.once).await
}

/// Exchanges the enrollment token for a credential (retrying while the
/// server cannot be reached); `None` when stopped meanwhile.
async fn enroll(
    client: &Client,
    data: &DataDir,
    options: &Options,
    token: &Secret,
    server: &str,
    reporter: &dyn Reporter,
    shutdown: &CancellationToken,
) -> Result<Option<Enrollment>, AgentError> {
    let request = EnrollRequest {
        token: token.clone(),
        name: options.name.clone().unwrap_or_else(machine_name),
        version: crate::client::VERSION.to_owned(),
        protocol: PROTOCOL_VERSION,
    };
    let mut backoff = Backoff::default();
    let mut lost = false;
    loop {
        match client.enroll(&request).await {
            Ok(reply) => {
                let enrollment = Enrollment {
                    server: server.to_owned(),
                    name: reply.agent.name.clone(),
                    credential: reply.credential,
                };
                data.save(&enrollment)?;
                reporter.report(Event::Enrolled {
                    name: &reply.agent.name,
                    state: &reply.agent.state,
                });
                return Ok(Some(enrollment));
            }
            Err(error) if error.is_retryable() => {
                if !lost {
                    reporter.report(Event::ConnectionLost {
                        message: &error.to_string(),
                    });
                    lost = true;
                }
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(None),
                    () = tokio::time::sleep(backoff.next_wait()) => {}
                }
            }
            Err(CallError::Status { message, .. }) => return Err(AgentError::Enroll(message)),
            Err(error) => return Err(AgentError::Enroll(error.to_string())),
        }
    }
}

/// This machine's name, proposed at enrollment.
fn machine_name() -> String {
    let from_env = std::env::var("HOSTNAME")
        .or_else(|_| std::env::var("COMPUTERNAME"))
        .ok();
    #[cfg(unix)]
    let from_env = from_env.or_else(|| std::fs::read_to_string("/etc/hostname").ok());
    let name: String = from_env
        .unwrap_or_default()
        .trim()
        .chars()
        .take(60)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "agent".to_owned()
    } else {
        name
    }
}

/// Whether the server could be reached at the last try (reported once
/// per change).
#[derive(Debug, Default)]
struct Connection {
    lost: AtomicBool,
}

struct Agent<'r> {
    client: Client,
    data: DataDir,
    spool: Spool,
    reporter: &'r dyn Reporter,
    shutdown: CancellationToken,
    connection: Connection,
}

/// How delivering what a job owes ended.
#[derive(Debug, PartialEq, Eq)]
enum Delivery {
    /// The server has everything.
    Done,
    /// The server has finished with the job (404/409): the rest is dropped.
    Gone(String),
    /// Stopped before it was done: the rest stays in the spool.
    Stopped,
}

impl Agent<'_> {
    fn lost(&self, error: &CallError) {
        if !self.connection.lost.swap(true, Ordering::Relaxed) {
            self.reporter.report(Event::ConnectionLost {
                message: &error.to_string(),
            });
        }
    }

    fn reached(&self) {
        if self.connection.lost.swap(false, Ordering::Relaxed) {
            self.reporter.report(Event::Reconnected);
        }
    }

    /// Waits `wait`, or less when `stop` fires; `false` then.
    async fn pause(&self, wait: Duration, stop: &CancellationToken) -> bool {
        tokio::select! {
            () = stop.cancelled() => false,
            () = tokio::time::sleep(wait) => true,
        }
    }

    /// Delivers what a previous run left in the spool, before any work.
    async fn deliver_pending(&self) -> Result<(), AgentError> {
        for id in self.spool.pending()? {
            let job = Mutex::new(self.spool.job(&id)?);
            let has_outcome = lock(&job).outcome().is_some();
            let stop = self.shutdown.clone();
            match self.deliver(&job, &stop).await? {
                Delivery::Stopped => return Ok(()),
                Delivery::Gone(why) => self.reporter.report(Event::JobNote {
                    job: &id,
                    note: format!("the server no longer takes its report ({why}); dropped"),
                }),
                Delivery::Done if has_outcome => {
                    self.reporter.report(Event::Delivered { job: &id });
                }
                Delivery::Done => self.reporter.report(Event::JobNote {
                    job: &id,
                    note: "it was running when the agent stopped: its log is delivered, and the server marks it interrupted".to_owned(),
                }),
            }
            job.into_inner()
                .unwrap_or_else(PoisonError::into_inner)
                .complete()?;
        }
        Ok(())
    }

    /// Sends a job's unacknowledged chunks, then its outcome if it has one,
    /// until the server has them, it has finished with the job, or `stop`
    /// fires (then for [`DELIVERY_GRACE`] more).
    async fn deliver(
        &self,
        job: &Mutex<JobSpool<'_>>,
        stop: &CancellationToken,
    ) -> Result<Delivery, AgentError> {
        let deadline = CancellationToken::new();
        let grace = async {
            stop.cancelled().await;
            tokio::time::sleep(DELIVERY_GRACE).await;
            deadline.cancel();
        };
        let work = async {
            match self.send_chunks(job, None, &deadline).await? {
                Delivery::Done => {}
                other => return Ok(other),
            }
            let Some(spooled) = lock(job).outcome() else {
                return Ok(Delivery::Done);
            };
            if !spooled.lost_outputs.is_empty() {
                self.reporter.report(Event::JobNote {
                    job: &spooled.outcome.job,
                    note: format!(
                        "the sensitive outputs {} were lost when the agent stopped (they are never written to disk in the clear)",
                        spooled.lost_outputs.join(", ")
                    ),
                });
            }
            let mut backoff = Backoff::default();
            loop {
                match self.client.outcome(&spooled.outcome).await {
                    Ok(()) => {
                        self.reached();
                        return Ok(Delivery::Done);
                    }
                    Err(error) if error.job_is_gone() => {
                        self.reached();
                        return Ok(Delivery::Gone(error.to_string()));
                    }
                    Err(error) if error.is_retryable() => {
                        self.lost(&error);
                        if !self.pause(backoff.next_wait(), &deadline).await {
                            return Ok(Delivery::Stopped);
                        }
                    }
                    // Refused for good (disabled, removed, untrusted).
                    Err(error) => return Ok(Delivery::Gone(error.to_string())),
                }
            }
        };
        tokio::select! {
            result = work => result,
            () = grace => Ok(Delivery::Stopped),
        }
    }

    /// Sends the job's chunks in order until none is owed. With `running`,
    /// waits for more until it fires (the step has ended and its last
    /// chunk is spooled); without, returns when none is owed.
    async fn send_chunks(
        &self,
        job: &Mutex<JobSpool<'_>>,
        running: Option<(&Notify, &CancellationToken)>,
        stop: &CancellationToken,
    ) -> Result<Delivery, AgentError> {
        let mut backoff = Backoff::default();
        loop {
            // One request's worth, read back from the spool file: the
            // backlog stays on disk, however large it grows.
            let batch = lock(job).owed(BATCH_BYTES)?;
            if batch.is_empty() {
                match running {
                    Some((wake, ended)) if !ended.is_cancelled() => {
                        tokio::select! {
                            () = wake.notified() => {}
                            () = ended.cancelled() => {}
                        }
                        continue;
                    }
                    _ => return Ok(Delivery::Done),
                }
            }
            let id = lock(job).job().to_owned();
            let sent = tokio::select! {
                () = stop.cancelled() => return Ok(Delivery::Stopped),
                sent = self.client.send_chunks(&id, &batch) => sent,
            };
            drop(batch);
            match sent {
                Ok(ack) => {
                    self.reached();
                    backoff.reset();
                    // Short of the batch's last chunk: a gap on the server,
                    // the next batch starts from there.
                    lock(job).stored(ack.stored_through)?;
                }
                Err(error) if error.is_retryable() => {
                    self.lost(&error);
                    if !self.pause(backoff.next_wait(), stop).await {
                        return Ok(Delivery::Stopped);
                    }
                }
                // 404/409: the server has finished with the job; any
                // other refusal would be the same again.
                Err(error) => return Ok(Delivery::Gone(error.to_string())),
            }
        }
    }

    /// Asks for work and runs it until stopped (or after one job).
    async fn work(&self, once: bool) -> Result<(), AgentError> {
        let mut backoff = Backoff::default();
        let mut refused = false;
        loop {
            if self.shutdown.is_cancelled() {
                self.reporter.report(Event::Stopping);
                return Ok(());
            }
            let next = tokio::select! {
                () = self.shutdown.cancelled() => continue,
                next = self.client.next_job(POLL_SECONDS) => next,
            };
            match next {
                Ok(Some(text)) => {
                    self.reached();
                    backoff.reset();
                    refused = false;
                    self.take(&text).await?;
                    if once {
                        return Ok(());
                    }
                }
                Ok(None) => {
                    self.reached();
                    backoff.reset();
                }
                Err(error @ CallError::Status { status: 403, .. }) => {
                    // Pending approval, or disabled: ask again later.
                    self.reached();
                    if !refused {
                        if let CallError::Status { message, .. } = &error {
                            self.reporter.report(Event::NotAllowed { message });
                        }
                        refused = true;
                    }
                    self.pause(backoff.next_wait(), &self.shutdown).await;
                }
                Err(error) if error.is_retryable() => {
                    self.lost(&error);
                    self.pause(backoff.next_wait(), &self.shutdown).await;
                }
                Err(CallError::Status {
                    status: 401,
                    message,
                    ..
                }) => {
                    return Err(AgentError::Refused(format!(
                        "the server refused this agent's credential ({message}): it was removed or its credential rotated; enroll again with a new token"
                    )));
                }
                Err(error) => return Err(AgentError::Refused(error.to_string())),
            }
        }
    }

    /// Runs the job the server handed out (`text`, its JSON).
    async fn take(&self, text: &str) -> Result<(), AgentError> {
        let job: Job = match serde_json::from_str(text) {
            Ok(job) => job,
            Err(error) => {
                // Report it failed if at least its id can be read; else its
                // lease runs out and the server marks it interrupted.
                let id = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned));
                if let Some(id) = id
                    && let Ok(job) = self.spool.job(&id)
                {
                    let job = Mutex::new(job);
                    lock(&job).finish(JobOutcome {
                        job: id.clone(),
                        state: JobState::Failed,
                        reason: Some(format!(
                            "this agent (tako {}) cannot read the job ({error}): install the server's tako version on the agent",
                            crate::client::VERSION
                        )),
                        outputs: Vec::new(),
                        duration_ms: 0,
                        last_seq: 0,
                    })?;
                    self.finish(job, &id, "?", Instant::now()).await?;
                }
                return Ok(());
            }
        };
        let job_spool = match self.spool.job(&job.id) {
            Ok(spool) => spool,
            Err(SpoolError::JobId(id)) => {
                self.reporter.report(Event::JobNote {
                    job: &id,
                    note: "the server sent a job id this agent cannot use; ignored".to_owned(),
                });
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        self.reporter.report(Event::JobStarted { job: &job });
        let started = Instant::now();
        let spool = Mutex::new(job_spool);
        self.run_job(&job, &spool, started).await?;
        self.finish(spool, &job.id, &job.step.name, started).await
    }

    /// Delivers a job's outcome and forgets it.
    async fn finish(
        &self,
        spool: Mutex<JobSpool<'_>>,
        id: &str,
        step: &str,
        started: Instant,
    ) -> Result<(), AgentError> {
        let stop = self.shutdown.clone();
        let delivery = self.deliver(&spool, &stop).await?;
        let outcome = lock(&spool).outcome();
        let spool = spool.into_inner().unwrap_or_else(PoisonError::into_inner);
        match &delivery {
            Delivery::Done => spool.complete()?,
            Delivery::Gone(why) => {
                self.reporter.report(Event::JobNote {
                    job: id,
                    note: format!("the server no longer takes its report ({why})"),
                });
                spool.complete()?;
            }
            Delivery::Stopped => self.reporter.report(Event::JobNote {
                job: id,
                note: "its report is kept in the spool and sent at the agent's next start"
                    .to_owned(),
            }),
        }
        let _ = std::fs::remove_dir_all(self.data.work_dir().join(id));
        if let Some(spooled) = outcome {
            self.reporter.report(Event::JobEnded {
                job: id,
                step,
                state: spooled.outcome.state,
                duration: started.elapsed(),
                reason: spooled.outcome.reason.as_deref(),
            });
        }
        Ok(())
    }

    /// Runs the step with its log going into the spool, the sender, the
    /// heartbeats; ends with the outcome spooled.
    async fn run_job(
        &self,
        job: &Job,
        spool: &Mutex<JobSpool<'_>>,
        started: Instant,
    ) -> Result<(), AgentError> {
        let wake = Notify::new();
        let ended = CancellationToken::new();
        let cancel = CancellationToken::new();
        let gone = AtomicBool::new(false);
        let sink = SpoolSink {
            buffer: Mutex::new(Buffer::default()),
            spool,
            wake: &wake,
            failure: Mutex::new(None),
        };
        let masker = Masker::with_values(job.mask.iter().map(|s| s.0.as_str()));
        let step = async {
            let mut log = TaskLog::new(&sink, masker);
            // The executor obeys `cancel` itself (the step's process group
            // gets SIGTERM, then SIGKILL after the grace).
            let run = self.execute(job, &mut log, &cancel).await;
            let (state, reason) = match run.state {
                StepState::Success | StepState::Skipped(_) => (JobState::Success, None),
                StepState::Failed { reason } => (
                    JobState::Failed,
                    Some(log.masker().mask(&reason).into_owned()),
                ),
                StepState::Cancelled => (JobState::Cancelled, None),
            };
            sink.cut();
            let outcome = JobOutcome {
                job: job.id.clone(),
                state,
                reason,
                outputs: run
                    .outputs
                    .into_iter()
                    .map(|o| JobOutput {
                        name: o.name,
                        value: o.value,
                        sensitive: o.sensitive,
                    })
                    .collect(),
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                last_seq: 0,
            };
            let spooled = lock(spool).finish(outcome);
            ended.cancel();
            wake.notify_one();
            spooled
        };
        let sender = async {
            // Once the step has ended, `deliver` takes over what is owed.
            let result = self.send_chunks(spool, Some((&wake, &ended)), &ended).await;
            if let Ok(Delivery::Gone(_)) = &result {
                gone.store(true, Ordering::Relaxed);
                cancel.cancel();
            }
            result
        };
        let heartbeats = async {
            let every = Duration::from_secs(u64::from(job.heartbeat_seconds.max(1)));
            loop {
                tokio::select! {
                    () = ended.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                let beat = tokio::select! {
                    () = ended.cancelled() => return,
                    beat = self.client.heartbeat(&job.id) => beat,
                };
                match beat {
                    Ok(reply) => {
                        self.reached();
                        if reply.cancel_requested && !cancel.is_cancelled() {
                            cancel.cancel();
                        }
                    }
                    Err(error) if error.job_is_gone() => {
                        gone.store(true, Ordering::Relaxed);
                        cancel.cancel();
                        return;
                    }
                    // The step goes on; its log and outcome wait in the spool.
                    Err(error) => self.lost(&error),
                }
            }
        };
        let timer = async {
            loop {
                tokio::select! {
                    () = ended.cancelled() => return,
                    () = tokio::time::sleep(CHUNK_EVERY) => sink.cut(),
                }
            }
        };
        let stopping = async {
            tokio::select! {
                () = ended.cancelled() => {}
                () = self.shutdown.cancelled() => cancel.cancel(),
            }
        };
        let (spooled, sent, (), (), ()) = tokio::join!(step, sender, heartbeats, timer, stopping);
        spooled?;
        sent?;
        if let Some(error) = lock(&sink.failure).take() {
            return Err(error.into());
        }
        Ok(())
    }

    /// Gets the job's files and runs its step.
    async fn execute(
        &self,
        job: &Job,
        log: &mut TaskLog<'_>,
        cancel: &CancellationToken,
    ) -> StepRun {
        let dir = self.data.work_dir().join(&job.id);
        let checkout = dir.join("checkout");
        let scratch = dir.join("scratch");
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(error) = std::fs::create_dir_all(&scratch) {
            return StepRun::failed(format!(
                "cannot create the job's directory {}: {error}",
                scratch.display()
            ));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o700));
        }
        let sources = Sources::new(self.data.sources_dir());
        let fetched = tokio::select! {
            fetched = sources.checkout(&self.client, &job.source.commit, &job.source.path, &checkout) => fetched,
            () = cancel.cancelled() => {
                return StepRun {
                    state: StepState::Cancelled,
                    outputs: Vec::new(),
                    artifacts: Vec::new(),
                };
            }
        };
        if let Err(error) = fetched {
            log.tako(LogLevel::Error, &error.to_string());
            return StepRun::failed(error.to_string());
        }
        let step = match tako_exec::wire::resolved_step(&job.step, &job.variables) {
            Ok(step) => step,
            Err(error) => return StepRun::failed(error.to_string()),
        };
        let facts = tako_exec::wire::deployment_facts(&job.facts);
        let executor = LocalExecutor::new(RunSettings {
            working_dir: checkout,
            scratch_dir: scratch,
            kill_grace: KILL_GRACE,
        });
        log.set_step(Some(&job.step.name));
        let step_job = StepJob {
            step: &step,
            facts: &facts,
            first_error: job.error.as_deref(),
            steps_so_far: &job.steps_so_far,
            // The server counts attempts: each is a job of its own.
            attempt: 1,
            attempts: 1,
            for_agents: None,
        };
        executor.run(step_job, log, cancel).await
    }
}

#[derive(Default)]
struct Buffer {
    lines: Vec<JobLogLine>,
    bytes: usize,
    /// The last timestamp written, by its milliseconds: lines printed
    /// within the same millisecond (most of a fast step's) share it
    /// instead of formatting it again.
    stamp: (i64, String),
}

impl Buffer {
    /// `line`'s timestamp as RFC 3339 with milliseconds, UTC.
    fn stamp(&mut self, line: &LogLine) -> String {
        let at = line.timestamp();
        let millis = at.timestamp_millis();
        if millis != self.stamp.0 || self.stamp.1.is_empty() {
            self.stamp = (millis, at.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
        self.stamp.1.clone()
    }
}

/// The step's log sink: masked lines gathered into chunks, each spooled
/// (on disk) and then handed to the sender.
struct SpoolSink<'a, 's> {
    buffer: Mutex<Buffer>,
    spool: &'a Mutex<JobSpool<'s>>,
    wake: &'a Notify,
    failure: Mutex<Option<SpoolError>>,
}

impl SpoolSink<'_, '_> {
    /// Spools the lines gathered so far as one chunk.
    fn cut(&self) {
        let lines = {
            let mut buffer = lock(&self.buffer);
            buffer.bytes = 0;
            std::mem::take(&mut buffer.lines)
        };
        if lines.is_empty() {
            return;
        }
        if let Err(error) = lock(self.spool).append(lines) {
            let mut failure = lock(&self.failure);
            if failure.is_none() {
                *failure = Some(error);
            }
        }
        self.wake.notify_one();
    }
}

impl LogSink for SpoolSink<'_, '_> {
    fn append(&self, line: LogLine) {
        let text = cut_line(line.text());
        let size = json_size(&text) + 96;
        let full = {
            let mut buffer = lock(&self.buffer);
            let line = JobLogLine {
                timestamp: buffer.stamp(&line),
                stream: line.stream().as_str().to_owned(),
                level: line.level().as_str().to_owned(),
                text,
            };
            buffer.lines.push(line);
            buffer.bytes += size;
            buffer.lines.len() >= CHUNK_LINES || buffer.bytes >= CHUNK_BYTES
        };
        if full {
            self.cut();
        }
    }

    fn flush(&self) {
        self.cut();
    }
}

/// `text` cut to [`MAX_LINE_BYTES`] on a character boundary, with a mark.
fn cut_line(text: &str) -> String {
    if text.len() <= MAX_LINE_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_LINE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (line cut at {MAX_LINE_BYTES} bytes)", &text[..end])
}

/// The length of `text` as a JSON string (escapes counted).
fn json_size(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum::<usize>()
        + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_json_sizes_count_escapes() {
        let long = "é".repeat(MAX_LINE_BYTES);
        let cut = cut_line(&long);
        assert!(cut.len() < MAX_LINE_BYTES + 64, "{}", cut.len());
        assert!(cut.ends_with("(line cut at 65536 bytes)"));
        assert_eq!(cut_line("short"), "short");
        for text in ["plain", "a \"quoted\" \\ path", "tab\there\u{1}"] {
            assert_eq!(
                json_size(text),
                serde_json::to_string(text)
                    .unwrap()
                    .len()
                    .max(json_size(text)),
            );
        }
        assert_eq!(
            json_size("a\"b"),
            serde_json::to_string("a\"b").unwrap().len()
        );
    }

    #[test]
    fn a_machine_name_is_a_usable_agent_name() {
        let name = machine_name();
        assert!(!name.is_empty());
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{name}"
        );
    }
}
