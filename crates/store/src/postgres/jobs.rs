//! Jobs in PostgreSQL: created per agent, claimed by their agent with a
//! lease (`FOR UPDATE SKIP LOCKED`), their log chunks stored once and in
//! order, ended once; each state change a compare-and-set with the core's
//! job state machine, on the job's locked row.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::ops::{
    Client, all, append_log_in, corrupt, db, exec, from_ms, get, is_unique_violation, ms, one, opt,
    opt_time, rows, state_list, step_index, time, unsigned,
};
use crate::agents::AgentId;
use crate::error::{StoreError, StoreResult};
use crate::jobs::{ChunkOutcome, Job, JobEnd, JobId, JobLease, NewJob};
use crate::model::{DeploymentId, JobEvent, JobState};

const JOB_COLUMNS: &str = "id, deployment_id, step_index, step_name, agent_id, agent_name, state, \
     cancel_requested, stored_seq, reason, duration_ms, created_at, started_at, finished_at, \
     lease_until, attempt";

fn job_row(row: &Row) -> StoreResult<Job> {
    let state: &str = get(row, 6)?;
    Ok(Job {
        id: JobId(get(row, 0)?),
        deployment: DeploymentId(get(row, 1)?),
        step_index: step_index(row, 2)?,
        step_name: get(row, 3)?,
        agent: AgentId(get(row, 4)?),
        agent_name: get(row, 5)?,
        state: JobState::parse(state).ok_or_else(|| corrupt(format!("job state {state:?}")))?,
        cancel_requested: get(row, 7)?,
        stored_seq: unsigned(row, 8)?,
        reason: get(row, 9)?,
        duration_ms: get::<Option<i64>>(row, 10)?.map(|d| u64::try_from(d).unwrap_or(0)),
        created_at: time(row, 11)?,
        started_at: opt_time(row, 12)?,
        finished_at: opt_time(row, 13)?,
        lease_until: opt_time(row, 14)?,
        attempt: u32::try_from(get::<i64>(row, 15)?)
            .map_err(|_| corrupt("a job's attempt out of range".to_owned()))?,
    })
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> i64 {
    ms(now).saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

fn states(list: &[JobState]) -> String {
    state_list(list, JobState::as_str)
}

/// The job `id`, locked for this transaction, if it is `agent`'s;
/// `NotFound` otherwise (an agent never learns whether another agent's job
/// exists).
async fn own_job<C: GenericClient>(c: &C, id: &JobId, agent: AgentId) -> StoreResult<Job> {
    opt(
        c,
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 AND agent_id = $2 FOR UPDATE"),
        &[&id.0, &agent.0],
    )
    .await
    .map_err(db("read a job"))?
    .map(|row| job_row(&row))
    .transpose()?
    .ok_or_else(|| StoreError::not_found(format!("job {id}")))
}

/// The job `id`, locked for this transaction.
async fn locked_job<C: GenericClient>(c: &C, id: &JobId) -> StoreResult<Job> {
    opt(
        c,
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1 FOR UPDATE"),
        &[&id.0],
    )
    .await
    .map_err(db("read a job"))?
    .map(|row| job_row(&row))
    .transpose()?
    .ok_or_else(|| StoreError::not_found(format!("job {id}")))
}

fn refused(id: &JobId, from: JobState, to: &str) -> StoreError {
    StoreError::InvalidTransition {
        what: format!("job {id}"),
        from: from.to_string(),
        to: to.to_owned(),
    }
}

pub(super) async fn create_job(
    client: &Client,
    job: &NewJob,
    now: DateTime<Utc>,
) -> StoreResult<Job> {
    let row = one(
        client,
        &format!(
            "INSERT INTO jobs (id, deployment_id, step_index, step_name, agent_id, agent_name, state,
                               spec, created_at, attempt)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $9) RETURNING {JOB_COLUMNS}"
        ),
        &[
            &job.id.0,
            &job.deployment.0,
            &i64::from(job.step_index),
            &job.step_name,
            &job.agent.0,
            &job.agent_name,
            &job.spec,
            &ms(now),
            &i64::from(job.attempt),
        ],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict(format!("job {} exists already", job.id))
        } else {
            db("create a job")(e)
        }
    })?;
    job_row(&row)
}

pub(super) async fn get_job(client: &Client, id: &JobId) -> StoreResult<Job> {
    opt(
        client,
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1"),
        &[&id.0],
    )
    .await
    .map_err(db("read a job"))?
    .map(|row| job_row(&row))
    .transpose()?
    .ok_or_else(|| StoreError::not_found(format!("job {id}")))
}

pub(super) async fn claim_job(
    client: &Client,
    agent: AgentId,
    lease: Duration,
    now: DateTime<Utc>,
) -> StoreResult<Option<(Job, String)>> {
    let pending = states(&JobEvent::Claim.applies_to());
    opt(
        client,
        &format!(
            "UPDATE jobs SET state = 'running', started_at = $2, lease_until = $3
             WHERE id = (SELECT id FROM jobs WHERE agent_id = $1 AND state IN ({pending})
                         ORDER BY created_at, id LIMIT 1
                         FOR UPDATE SKIP LOCKED)
             RETURNING {JOB_COLUMNS}, spec"
        ),
        &[&agent.0, &ms(now), &lease_end(now, lease)],
    )
    .await
    .map_err(db("claim a job"))?
    .map(|row| Ok((job_row(&row)?, get::<String>(&row, 16)?)))
    .transpose()
}

pub(super) async fn renew_job(
    client: &mut Client,
    id: &JobId,
    agent: AgentId,
    lease: Duration,
    now: DateTime<Utc>,
) -> StoreResult<JobLease> {
    const CONTEXT: &str = "renew a job's lease";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    let job = own_job(&tx, id, agent).await?;
    if job.state != JobState::Running {
        return Err(refused(id, job.state, "running"));
    }
    let until = lease_end(now, lease);
    exec(
        &tx,
        "UPDATE jobs SET lease_until = $2 WHERE id = $1 AND state = 'running'",
        &[&id.0, &until],
    )
    .await
    .map_err(db(CONTEXT))?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(JobLease {
        cancel_requested: job.cancel_requested,
        lease_until: from_ms(until).unwrap_or(now),
    })
}

/// Stores a chunk of a job's log lines; with the outcome, the job's
/// deployment (whose log followers a stored chunk wakes).
pub(super) async fn append_job_log(
    client: &mut Client,
    id: &JobId,
    agent: AgentId,
    seq: u64,
    chunks: &[(usize, Vec<u8>)],
) -> StoreResult<(ChunkOutcome, DeploymentId)> {
    const CONTEXT: &str = "store a job's log";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    // The job's row is locked: the same chunk sent twice at once is stored
    // by the first, and found a duplicate by the second.
    let job = own_job(&tx, id, agent).await?;
    let stored_through = job.stored_seq;
    if seq <= stored_through {
        return Ok((ChunkOutcome::Duplicate { stored_through }, job.deployment));
    }
    if seq > stored_through + 1 {
        return Ok((ChunkOutcome::Gap { stored_through }, job.deployment));
    }
    if job.state != JobState::Running {
        return Err(refused(id, job.state, "running"));
    }
    append_log_in(&tx, job.deployment, chunks).await?;
    let seq_i = i64::try_from(seq).unwrap_or(i64::MAX);
    let changed = exec(
        &tx,
        "UPDATE jobs SET stored_seq = $2 WHERE id = $1 AND stored_seq = $3",
        &[&id.0, &seq_i, &(seq_i - 1)],
    )
    .await
    .map_err(db(CONTEXT))?;
    if changed == 0 {
        return Ok((ChunkOutcome::Duplicate { stored_through }, job.deployment));
    }
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok((
        ChunkOutcome::Stored {
            stored_through: seq,
        },
        job.deployment,
    ))
}

pub(super) async fn finish_job(
    client: &mut Client,
    id: &JobId,
    agent: AgentId,
    end: &JobEnd,
    now: DateTime<Utc>,
) -> StoreResult<Job> {
    const CONTEXT: &str = "end a job";
    let event = JobEvent::Finish(end.state);
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    let job = own_job(&tx, id, agent).await?;
    // The same report again (a resend after a lost answer) changes nothing.
    if job.state == end.state && job.state.is_final() {
        return Ok(job);
    }
    let next = job
        .state
        .after(event)
        .map_err(|e| refused(id, job.state, e.to))?;
    let expected = states(&event.applies_to());
    let finished = opt(
        &tx,
        &format!(
            "UPDATE jobs SET state = $2, reason = $3, outputs = $4, duration_ms = $5,
                 finished_at = $6, lease_until = NULL
             WHERE id = $1 AND state IN ({expected}) RETURNING {JOB_COLUMNS}"
        ),
        &[
            &id.0,
            &next.as_str(),
            &end.reason,
            &end.outputs,
            &i64::try_from(end.duration_ms).unwrap_or(i64::MAX),
            &ms(now),
        ],
    )
    .await
    .map_err(db(CONTEXT))?
    .map(|row| job_row(&row))
    .transpose()?
    .ok_or_else(|| refused(id, job.state, next.as_str()))?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(finished)
}

pub(super) async fn job_spec(client: &Client, id: &JobId) -> StoreResult<String> {
    opt(client, "SELECT spec FROM jobs WHERE id = $1", &[&id.0])
        .await
        .map_err(db("read a job's specification"))?
        .map(|row| get(&row, 0))
        .transpose()?
        .ok_or_else(|| StoreError::not_found(format!("job {id}")))
}

pub(super) async fn job_outputs(client: &Client, id: &JobId) -> StoreResult<Option<String>> {
    opt(client, "SELECT outputs FROM jobs WHERE id = $1", &[&id.0])
        .await
        .map_err(db("read a job's outputs"))?
        .map(|row| get(&row, 0))
        .transpose()?
        .ok_or_else(|| StoreError::not_found(format!("job {id}")))
}

pub(super) async fn request_job_cancel(
    client: &mut Client,
    id: &JobId,
    now: DateTime<Utc>,
) -> StoreResult<Job> {
    const CONTEXT: &str = "cancel a job";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    let job = locked_job(&tx, id).await?;
    let next = job
        .state
        .after(JobEvent::Cancel)
        .map_err(|e| refused(id, job.state, e.to))?;
    let finished_at = next.is_final().then(|| ms(now));
    let updated = opt(
        &tx,
        &format!(
            "UPDATE jobs SET state = $2, cancel_requested = TRUE,
                 finished_at = COALESCE($3, finished_at)
             WHERE id = $1 AND state = $4 RETURNING {JOB_COLUMNS}"
        ),
        &[&id.0, &next.as_str(), &finished_at, &job.state.as_str()],
    )
    .await
    .map_err(db(CONTEXT))?
    .map(|row| job_row(&row))
    .transpose()?
    .ok_or_else(|| refused(id, job.state, "cancelled"))?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(updated)
}

pub(super) async fn fail_unclaimed_job(
    client: &mut Client,
    id: &JobId,
    reason: &str,
    now: DateTime<Utc>,
) -> StoreResult<Job> {
    const CONTEXT: &str = "fail a job";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    let job = locked_job(&tx, id).await?;
    let next = job
        .state
        .after(JobEvent::NotTaken)
        .map_err(|e| refused(id, job.state, e.to))?;
    let expected = states(&JobEvent::NotTaken.applies_to());
    let failed = opt(
        &tx,
        &format!(
            "UPDATE jobs SET state = $2, reason = $3, finished_at = $4
             WHERE id = $1 AND state IN ({expected}) RETURNING {JOB_COLUMNS}"
        ),
        &[&id.0, &next.as_str(), &reason, &ms(now)],
    )
    .await
    .map_err(db(CONTEXT))?
    .map(|row| job_row(&row))
    .transpose()?
    .ok_or_else(|| refused(id, job.state, next.as_str()))?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(failed)
}

pub(super) async fn interrupt_expired_jobs(
    client: &Client,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Job>> {
    let running = states(&JobEvent::Interrupt.applies_to());
    let found = all(
        client,
        &format!(
            "UPDATE jobs SET state = 'interrupted', finished_at = $1, lease_until = NULL,
                 reason = COALESCE(reason, 'agent ' || agent_name || ' stopped answering')
             WHERE state IN ({running}) AND lease_until <= $1 RETURNING {JOB_COLUMNS}"
        ),
        &[&ms(now)],
    )
    .await
    .map_err(db("interrupt jobs"))?;
    rows(found, job_row)
}

pub(super) async fn count_running_jobs(client: &Client) -> StoreResult<u64> {
    // The same condition as the partial index `jobs_running`, which serves it.
    let row = one(
        client,
        "SELECT count(*) FROM jobs WHERE state = 'running'",
        &[],
    )
    .await
    .map_err(db("count the running jobs"))?;
    unsigned(&row, 0)
}

pub(super) async fn running_jobs(client: &Client) -> StoreResult<Vec<Job>> {
    let found = all(
        client,
        &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'running' ORDER BY started_at, id"),
        &[],
    )
    .await
    .map_err(db("list the running jobs"))?;
    rows(found, job_row)
}

pub(super) async fn list_jobs(client: &Client, deployment: DeploymentId) -> StoreResult<Vec<Job>> {
    let found = all(
        client,
        &format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE deployment_id = $1 \
             ORDER BY step_index, attempt, agent_name COLLATE \"C\", created_at, id COLLATE \"C\""
        ),
        &[&deployment.0],
    )
    .await
    .map_err(db("list jobs"))?;
    rows(found, job_row)
}
