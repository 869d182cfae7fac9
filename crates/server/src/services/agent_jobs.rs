//! What an agent does with its jobs (`../shared/spec/agents.md` §4), on the
//! server: take the next one (a long poll), send its log in numbered chunks
//! (each stored once and in order, masked again here), send heartbeats (the
//! answer carries a cancel request) and report how it ended (once; a late
//! report about an interrupted job changes nothing and is logged as late),
//! and fetch the release commit's files (a tar stream from the mirror).
//! Every call names a job the store checks belongs to the calling agent: an
//! agent never learns whether another agent's job exists.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tako_core::Masker;
use tako_protocol::agent::{
    HeartbeatReply, Job as JobSpec, JobLogLine, JobOutcome, JobState as WireJobState, LogAck,
    MAX_BATCH_CHUNKS, PROTOCOL_VERSION,
};
use tako_store::{
    Agent, ChunkOutcome, Job, JobEnd, JobId, JobState, LogLevel, LogLineRecord, LogStream,
    StoreError,
};

use super::{ServiceError, ServiceResult, Services};

/// A job is its agent's for this long without a heartbeat.
pub(crate) const JOB_LEASE: Duration = Duration::from_secs(60);
/// How often an agent sends a heartbeat while a job runs.
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);
/// The most lines one chunk may carry.
pub(crate) const MAX_CHUNK_LINES: usize = 5_000;
/// The longest line accepted (longer ones are cut, with a mark).
const MAX_LINE_BYTES: usize = 64 * 1024;
/// How often a long poll looks for work when it is not woken (a job
/// created by another server process, or a wake-up it missed).
const POLL_EVERY: Duration = Duration::from_millis(250);

fn not_found(id: &JobId) -> ServiceError {
    ServiceError::NotFound(format!("job {id} not found"))
}

/// A store error about one of the agent's jobs: another agent's job (or
/// none) is a 404; a job that has ended a 409 saying so.
fn job_error(id: &JobId, error: StoreError) -> ServiceError {
    match error {
        StoreError::NotFound { .. } => not_found(id),
        StoreError::InvalidTransition { from, .. } => ServiceError::Conflict(format!(
            "job {id} is {from}: it takes no more log, heartbeats or outcomes"
        )),
        other => ServiceError::from(other),
    }
}

fn stream_of(text: &str) -> Option<LogStream> {
    [LogStream::Stdout, LogStream::Stderr, LogStream::Tako]
        .into_iter()
        .find(|s| s.as_str() == text)
}

/// A chunk's lines as task log records: checked, cut, masked again,
/// labelled, their timestamps kept between `floor` and `now`.
fn chunk_records(
    seq: u64,
    lines: &[JobLogLine],
    masker: &Masker,
    label: &str,
    floor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> ServiceResult<Vec<LogLineRecord>> {
    let mut records = Vec::with_capacity(lines.len());
    // Lines of the same millisecond carry the same timestamp text: parse
    // it once.
    let mut last: Option<(&str, DateTime<Utc>)> = None;
    for (index, line) in lines.iter().enumerate() {
        let stream = stream_of(&line.stream).ok_or_else(|| {
            ServiceError::BadInput(format!(
                "line {} of chunk {seq}: unknown stream {:?} (stdout, stderr or tako)",
                index + 1,
                line.stream
            ))
        })?;
        let level = level_of(&line.level).ok_or_else(|| {
            ServiceError::BadInput(format!(
                "line {} of chunk {seq}: unknown level {:?}",
                index + 1,
                line.level
            ))
        })?;
        let timestamp = match last {
            Some((text, at)) if text == line.timestamp => at,
            _ => {
                let at = DateTime::parse_from_rfc3339(&line.timestamp)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ServiceError::BadInput(format!(
                            "line {} of chunk {seq}: timestamp {:?} is not RFC 3339",
                            index + 1,
                            line.timestamp
                        ))
                    })?
                    .clamp(floor, now);
                last = Some((&line.timestamp, at));
                at
            }
        };
        records.push(LogLineRecord {
            timestamp,
            step: Some(label.to_owned()),
            stream,
            level,
            text: masker.mask(&cut(&line.text, MAX_LINE_BYTES)).into_owned(),
        });
    }
    Ok(records)
}

fn level_of(text: &str) -> Option<LogLevel> {
    [
        LogLevel::Verbose,
        LogLevel::Info,
        LogLevel::Highlight,
        LogLevel::Wait,
        LogLevel::Warning,
        LogLevel::Error,
    ]
    .into_iter()
    .find(|l| l.as_str() == text)
}

/// `text` cut to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… (line cut at {max} bytes)", &text[..end])
}

impl Services {
    /// Checks an agent's protocol version: a different one is refused,
    /// naming both.
    pub fn check_agent_protocol(&self, version: &str, protocol: u32) -> ServiceResult<()> {
        if protocol == PROTOCOL_VERSION {
            return Ok(());
        }
        Err(ServiceError::invalid(format!(
            "this agent (tako {version}, protocol {protocol}) cannot work with this server (tako {}, protocol {PROTOCOL_VERSION}): install the same tako version on both",
            env!("CARGO_PKG_VERSION")
        )))
    }

    /// The agent's next job (its specification as JSON), waiting up to
    /// `wait` for one: woken when a job is created, else looking every
    /// [`POLL_EVERY`].
    pub async fn next_job(&self, agent: &Agent, wait: Duration) -> ServiceResult<Option<String>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before the store is read, so a job created
            // between the read and the wait still wakes this poll.
            let created = self.jobs_created.notified();
            tokio::pin!(created);
            created.as_mut().enable();
            if let Some((job, spec)) = self
                .store
                .claim_job(agent.id, JOB_LEASE, Utc::now())
                .await?
            {
                tracing::info!(job = %job.id, agent = %agent.name, deployment = %job.deployment,
                    step = %job.step_name, "job taken by its agent");
                return Ok(Some(spec));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            let pause = POLL_EVERY.min(deadline - tokio::time::Instant::now());
            tokio::select! {
                () = &mut created => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Stores one chunk of a job's log (lines masked again with the job's
    /// secrets, labelled `Step@agent`, timestamps kept within the job's run
    /// so a skewed agent clock cannot reorder the log).
    pub async fn store_job_log(
        &self,
        agent: &Agent,
        id: &JobId,
        seq: u64,
        lines: &[JobLogLine],
    ) -> ServiceResult<LogAck> {
        self.store_job_logs(agent, id, &[(seq, lines)]).await
    }

    /// Stores consecutive chunks of a job's log, in order, as
    /// [`Self::store_job_log`] does each: every chunk is checked before any
    /// is stored; a duplicate is skipped, a gap stops the batch (the answer
    /// says what is stored, the agent sends again from there).
    pub async fn store_job_logs(
        &self,
        agent: &Agent,
        id: &JobId,
        chunks: &[(u64, &[JobLogLine])],
    ) -> ServiceResult<LogAck> {
        if chunks.is_empty() {
            return Err(ServiceError::BadInput(
                "a log batch holds at least one chunk".to_owned(),
            ));
        }
        if chunks.len() > MAX_BATCH_CHUNKS {
            return Err(ServiceError::BadInput(format!(
                "a log batch holds at most {MAX_BATCH_CHUNKS} chunks, this one {}",
                chunks.len()
            )));
        }
        for (index, (seq, lines)) in chunks.iter().enumerate() {
            if *seq == 0 {
                return Err(ServiceError::BadInput(
                    "log chunks are numbered from 1".to_owned(),
                ));
            }
            if index > 0 && *seq != chunks[index - 1].0 + 1 {
                return Err(ServiceError::BadInput(format!(
                    "the chunks of a log batch are numbered consecutively: chunk {} follows chunk {}",
                    seq,
                    chunks[index - 1].0
                )));
            }
            if lines.len() > MAX_CHUNK_LINES {
                return Err(ServiceError::BadInput(format!(
                    "a log chunk holds at most {MAX_CHUNK_LINES} lines, chunk {seq} {}",
                    lines.len()
                )));
            }
        }
        let job = self.store.get_job(id).await.map_err(|e| job_error(id, e))?;
        if job.agent != agent.id {
            return Err(not_found(id));
        }
        let masker = self.job_masker(id).await?;
        let label = job.log_label();
        let now = Utc::now();
        let floor = job.started_at.unwrap_or(job.created_at).min(now);
        let mut batch = Vec::with_capacity(chunks.len());
        for (seq, lines) in chunks {
            batch.push((
                *seq,
                chunk_records(*seq, lines, &masker, &label, floor, now)?,
            ));
        }
        let mut stored_through = 0;
        for (seq, records) in batch {
            let outcome = self
                .store
                .append_job_log(id, agent.id, seq, &records)
                .await
                .map_err(|e| job_error(id, e))?;
            match outcome {
                ChunkOutcome::Stored { stored_through: s }
                | ChunkOutcome::Duplicate { stored_through: s } => stored_through = s,
                ChunkOutcome::Gap { stored_through: s } => {
                    stored_through = s;
                    break;
                }
            }
        }
        Ok(LogAck { stored_through })
    }

    /// The release commit's files for one of the agent's jobs, as a tar
    /// stream from the project's mirror (`git archive`, read as git writes
    /// it). Only the job's own agent gets it (404 for any other), and only
    /// while the job runs (409 once it has ended).
    pub async fn job_source(&self, agent: &Agent, id: &JobId) -> ServiceResult<tako_git::Archive> {
        let job = self.store.get_job(id).await.map_err(|e| job_error(id, e))?;
        if job.agent != agent.id {
            return Err(not_found(id));
        }
        if job.state != JobState::Running {
            return Err(ServiceError::Conflict(format!(
                "job {id} is {}: its source is served only while it runs",
                job.state.as_str()
            )));
        }
        let deployment = self.store.get_deployment(job.deployment).await?;
        let release = self.store.get_release(deployment.release).await?;
        let project = self.store.get_project(release.project).await?;
        let credentials = crate::repository::credentials_of(&project);
        let mirror = self
            .mirrors
            .fetch(
                &project.repository_url,
                credentials.as_ref(),
                Some(&release.commit),
            )
            .await
            .map_err(|error| {
                tracing::warn!(job = %id, %error, "cannot fetch a job's source");
                ServiceError::Upstream {
                    retry: true,
                    message: format!(
                        "the server cannot fetch commit {} of project {}: retry shortly",
                        release.commit, project.name
                    ),
                }
            })?;
        mirror.archive(&release.commit).await.map_err(|error| {
            tracing::warn!(job = %id, %error, "cannot archive a job's source");
            ServiceError::Upstream {
                retry: true,
                message: format!(
                    "the server cannot read commit {} of project {}: retry shortly",
                    release.commit, project.name
                ),
            }
        })
    }

    /// The values to mask in a job's lines: the job's own list.
    async fn job_masker(&self, id: &JobId) -> ServiceResult<Masker> {
        let spec = self
            .store
            .job_spec(id)
            .await
            .map_err(|e| job_error(id, e))?;
        let spec: JobSpec = serde_json::from_str(&spec).map_err(ServiceError::internal)?;
        Ok(Masker::with_values(spec.mask.iter().map(|s| s.0.as_str())))
    }

    /// Extends a job's lease; the answer says whether to stop.
    pub async fn job_heartbeat(&self, agent: &Agent, id: &JobId) -> ServiceResult<HeartbeatReply> {
        let lease = self
            .store
            .renew_job(id, agent.id, JOB_LEASE, Utc::now())
            .await
            .map_err(|e| job_error(id, e))?;
        Ok(HeartbeatReply {
            cancel_requested: lease.cancel_requested,
            lease_expires_at: lease
                .lease_until
                .to_rfc3339_opts(SecondsFormat::Millis, true),
        })
    }

    /// Records how a job ended (once: the same report again is accepted and
    /// changes nothing). A report about an interrupted job is logged as
    /// late and refused.
    pub async fn finish_agent_job(
        &self,
        agent: &Agent,
        id: &JobId,
        outcome: JobOutcome,
    ) -> ServiceResult<Job> {
        if outcome.job != id.0 {
            return Err(ServiceError::BadInput(format!(
                "the outcome names job {} but was sent for job {id}",
                outcome.job
            )));
        }
        let state = match outcome.state {
            WireJobState::Success => JobState::Success,
            WireJobState::Failed => JobState::Failed,
            WireJobState::Cancelled => JobState::Cancelled,
            other => {
                return Err(ServiceError::BadInput(format!(
                    "a job ends success, failed or cancelled, not {}",
                    serde_json::to_string(&other).unwrap_or_default()
                )));
            }
        };
        let masker = self.job_masker(id).await?;
        let outputs = serde_json::to_string(&outcome.outputs).map_err(ServiceError::internal)?;
        let end = JobEnd {
            state,
            reason: outcome.reason.map(|r| masker.mask(&r).into_owned()),
            outputs,
            duration_ms: outcome.duration_ms,
        };
        match self.store.finish_job(id, agent.id, end, Utc::now()).await {
            Ok(job) => {
                tracing::info!(job = %id, agent = %agent.name, state = job.state.as_str(), "job ended");
                Ok(job)
            }
            Err(StoreError::InvalidTransition { from, .. }) if from == "interrupted" => {
                let job = self.store.get_job(id).await.map_err(|e| job_error(id, e))?;
                let late = LogLineRecord {
                    timestamp: Utc::now(),
                    step: Some(job.log_label()),
                    stream: LogStream::Tako,
                    level: LogLevel::Warning,
                    text: format!(
                        "Late report from agent {}: the job was already interrupted; it changes nothing",
                        agent.name
                    ),
                };
                if let Err(error) = self.store.append_log(job.deployment, &[late]).await {
                    tracing::warn!(job = %id, %error, "cannot log a late report");
                }
                Err(ServiceError::Conflict(format!(
                    "job {id} was interrupted (agent {} stopped answering); this late report changes nothing",
                    agent.name
                )))
            }
            Err(error) => Err(job_error(id, error)),
        }
    }
}
