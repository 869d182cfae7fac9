//! Jobs in SQLite: created per agent, claimed by their agent with a lease,
//! their log chunks stored once and in order, ended once; each state change
//! a compare-and-set with the core's job state machine.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::ops::{append_log_in, conversion, db, is_unique_violation, ms, opt_time, time};
use crate::agents::AgentId;
use crate::error::{StoreError, StoreResult};
use crate::jobs::{ChunkOutcome, Job, JobEnd, JobId, JobLease, NewJob};
use crate::model::{DeploymentId, JobEvent, JobState};

const JOB_COLUMNS: &str = "id, deployment_id, step_index, step_name, agent_id, agent_name, state, \
     cancel_requested, stored_seq, reason, duration_ms, created_at, started_at, finished_at, \
     lease_until, attempt";

fn job_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    let state: String = row.get(6)?;
    Ok(Job {
        id: JobId(row.get(0)?),
        deployment: DeploymentId(row.get(1)?),
        step_index: row.get(2)?,
        step_name: row.get(3)?,
        agent: AgentId(row.get(4)?),
        agent_name: row.get(5)?,
        state: JobState::parse(&state)
            .ok_or_else(|| conversion(6, format!("job state {state:?}")))?,
        cancel_requested: row.get(7)?,
        stored_seq: u64::try_from(row.get::<_, i64>(8)?).unwrap_or(0),
        reason: row.get(9)?,
        duration_ms: row
            .get::<_, Option<i64>>(10)?
            .map(|d| u64::try_from(d).unwrap_or(0)),
        created_at: time(row, 11)?,
        started_at: opt_time(row, 12)?,
        finished_at: opt_time(row, 13)?,
        lease_until: opt_time(row, 14)?,
        attempt: row.get(15)?,
    })
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> i64 {
    ms(now).saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

fn states(list: &[JobState]) -> String {
    super::ops::state_list(list, JobState::as_str)
}

/// The job `id` if it is `agent`'s; `NotFound` otherwise (an agent never
/// learns whether another agent's job exists).
fn own_job(tx: &Transaction<'_>, id: &JobId, agent: AgentId) -> StoreResult<Job> {
    tx.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1 AND agent_id = ?2"
    ))
    .and_then(|mut s| s.query_row(params![id.0, agent.0], job_row).optional())
    .map_err(db("read a job"))?
    .ok_or_else(|| StoreError::not_found(format!("job {id}")))
}

fn refused(id: &JobId, from: JobState, to: &str) -> StoreError {
    StoreError::InvalidTransition {
        what: format!("job {id}"),
        from: from.to_string(),
        to: to.to_owned(),
    }
}

pub(super) fn create_job(
    conn: &mut Connection,
    job: &NewJob,
    now: DateTime<Utc>,
) -> StoreResult<Job> {
    conn.prepare_cached(&format!(
        "INSERT INTO jobs (id, deployment_id, step_index, step_name, agent_id, agent_name, state,
                           spec, created_at, attempt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8, ?9) RETURNING {JOB_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                job.id.0,
                job.deployment.0,
                job.step_index,
                job.step_name,
                job.agent.0,
                job.agent_name,
                job.spec,
                ms(now),
                job.attempt
            ],
            job_row,
        )
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict(format!("job {} exists already", job.id))
        } else {
            StoreError::unavailable("create a job", e)
        }
    })
}

pub(super) fn get_job(conn: &mut Connection, id: &JobId) -> StoreResult<Job> {
    conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))
        .and_then(|mut s| s.query_row(params![id.0], job_row).optional())
        .map_err(db("read a job"))?
        .ok_or_else(|| StoreError::not_found(format!("job {id}")))
}

pub(super) fn claim_job(
    conn: &mut Connection,
    agent: AgentId,
    lease: Duration,
    now: DateTime<Utc>,
) -> StoreResult<Option<(Job, String)>> {
    let pending = states(&JobEvent::Claim.applies_to());
    conn.prepare_cached(&format!(
        "UPDATE jobs SET state = 'running', started_at = ?2, lease_until = ?3
         WHERE id = (SELECT id FROM jobs WHERE agent_id = ?1 AND state IN ({pending})
                     ORDER BY created_at, id LIMIT 1)
         RETURNING {JOB_COLUMNS}, spec"
    ))
    .and_then(|mut s| {
        s.query_row(params![agent.0, ms(now), lease_end(now, lease)], |row| {
            Ok((job_row(row)?, row.get::<_, String>(16)?))
        })
        .optional()
    })
    .map_err(db("claim a job"))
}

pub(super) fn renew_job(
    conn: &mut Connection,
    id: &JobId,
    agent: AgentId,
    lease: Duration,
    now: DateTime<Utc>,
) -> StoreResult<JobLease> {
    let tx = conn.transaction().map_err(db("renew a job's lease"))?;
    let job = own_job(&tx, id, agent)?;
    if job.state != JobState::Running {
        return Err(refused(id, job.state, "running"));
    }
    let until = lease_end(now, lease);
    tx.execute(
        "UPDATE jobs SET lease_until = ?2 WHERE id = ?1 AND state = 'running'",
        params![id.0, until],
    )
    .map_err(db("renew a job's lease"))?;
    tx.commit().map_err(db("renew a job's lease"))?;
    Ok(JobLease {
        cancel_requested: job.cancel_requested,
        lease_until: DateTime::from_timestamp_millis(until).unwrap_or(now),
    })
}

/// Stores a chunk of a job's log lines; with the outcome, the job's
/// deployment (whose log followers a stored chunk wakes).
pub(super) fn append_job_log(
    conn: &mut Connection,
    id: &JobId,
    agent: AgentId,
    seq: u64,
    chunks: &[(usize, Vec<u8>)],
) -> StoreResult<(ChunkOutcome, DeploymentId)> {
    let tx = conn.transaction().map_err(db("store a job's log"))?;
    let job = own_job(&tx, id, agent)?;
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
    append_log_in(&tx, job.deployment, chunks)?;
    let seq_i = i64::try_from(seq).unwrap_or(i64::MAX);
    let changed = tx
        .execute(
            "UPDATE jobs SET stored_seq = ?2 WHERE id = ?1 AND stored_seq = ?3",
            params![id.0, seq_i, seq_i - 1],
        )
        .map_err(db("store a job's log"))?;
    if changed == 0 {
        // Another request stored this chunk meanwhile: keep its copy.
        return Ok((ChunkOutcome::Duplicate { stored_through }, job.deployment));
    }
    tx.commit().map_err(db("store a job's log"))?;
    Ok((
        ChunkOutcome::Stored {
            stored_through: seq,
        },
        job.deployment,
    ))
}

pub(super) fn finish_job(
    conn: &mut Connection,
    id: &JobId,
    agent: AgentId,
    end: &JobEnd,
    now: DateTime<Utc>,
) -> StoreResult<Job> {
    let event = JobEvent::Finish(end.state);
    let tx = conn.transaction().map_err(db("end a job"))?;
    let job = own_job(&tx, id, agent)?;
    // The same report again (a resend after a lost answer) changes nothing.
    if job.state == end.state && job.state.is_final() {
        return Ok(job);
    }
    let next = job
        .state
        .after(event)
        .map_err(|e| refused(id, job.state, e.to))?;
    let expected = states(&event.applies_to());
    let finished = tx
        .prepare_cached(&format!(
            "UPDATE jobs SET state = ?2, reason = ?3, outputs = ?4, duration_ms = ?5,
                 finished_at = ?6, lease_until = NULL
             WHERE id = ?1 AND state IN ({expected}) RETURNING {JOB_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![
                    id.0,
                    next.as_str(),
                    end.reason,
                    end.outputs,
                    i64::try_from(end.duration_ms).unwrap_or(i64::MAX),
                    ms(now)
                ],
                job_row,
            )
            .optional()
        })
        .map_err(db("end a job"))?
        .ok_or_else(|| refused(id, job.state, next.as_str()))?;
    tx.commit().map_err(db("end a job"))?;
    Ok(finished)
}

pub(super) fn job_spec(conn: &mut Connection, id: &JobId) -> StoreResult<String> {
    conn.prepare_cached("SELECT spec FROM jobs WHERE id = ?1")
        .and_then(|mut s| s.query_row(params![id.0], |r| r.get(0)).optional())
        .map_err(db("read a job's specification"))?
        .ok_or_else(|| StoreError::not_found(format!("job {id}")))
}

pub(super) fn job_outputs(conn: &mut Connection, id: &JobId) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT outputs FROM jobs WHERE id = ?1")
        .and_then(|mut s| s.query_row(params![id.0], |r| r.get(0)).optional())
        .map_err(db("read a job's outputs"))?
        .ok_or_else(|| StoreError::not_found(format!("job {id}")))
}

pub(super) fn request_job_cancel(
    conn: &mut Connection,
    id: &JobId,
    now: DateTime<Utc>,
) -> StoreResult<Job> {
    let tx = conn.transaction().map_err(db("cancel a job"))?;
    let job = get_job_in(&tx, id)?;
    let next = job
        .state
        .after(JobEvent::Cancel)
        .map_err(|e| refused(id, job.state, e.to))?;
    let finished_at = next.is_final().then(|| ms(now));
    let updated = tx
        .prepare_cached(&format!(
            "UPDATE jobs SET state = ?2, cancel_requested = 1,
                 finished_at = COALESCE(?3, finished_at)
             WHERE id = ?1 AND state = ?4 RETURNING {JOB_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![id.0, next.as_str(), finished_at, job.state.as_str()],
                job_row,
            )
            .optional()
        })
        .map_err(db("cancel a job"))?
        .ok_or_else(|| refused(id, job.state, "cancelled"))?;
    tx.commit().map_err(db("cancel a job"))?;
    Ok(updated)
}

pub(super) fn fail_unclaimed_job(
    conn: &mut Connection,
    id: &JobId,
    reason: &str,
    now: DateTime<Utc>,
) -> StoreResult<Job> {
    let tx = conn.transaction().map_err(db("fail a job"))?;
    let job = get_job_in(&tx, id)?;
    let next = job
        .state
        .after(JobEvent::NotTaken)
        .map_err(|e| refused(id, job.state, e.to))?;
    let expected = states(&JobEvent::NotTaken.applies_to());
    let failed = tx
        .prepare_cached(&format!(
            "UPDATE jobs SET state = ?2, reason = ?3, finished_at = ?4
             WHERE id = ?1 AND state IN ({expected}) RETURNING {JOB_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(params![id.0, next.as_str(), reason, ms(now)], job_row)
                .optional()
        })
        .map_err(db("fail a job"))?
        .ok_or_else(|| refused(id, job.state, next.as_str()))?;
    tx.commit().map_err(db("fail a job"))?;
    Ok(failed)
}

fn get_job_in(tx: &Transaction<'_>, id: &JobId) -> StoreResult<Job> {
    tx.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"))
        .and_then(|mut s| s.query_row(params![id.0], job_row).optional())
        .map_err(db("read a job"))?
        .ok_or_else(|| StoreError::not_found(format!("job {id}")))
}

pub(super) fn interrupt_expired_jobs(
    conn: &mut Connection,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Job>> {
    let running = states(&JobEvent::Interrupt.applies_to());
    conn.prepare_cached(&format!(
        "UPDATE jobs SET state = 'interrupted', finished_at = ?1, lease_until = NULL,
             reason = COALESCE(reason, 'agent ' || agent_name || ' stopped answering')
         WHERE state IN ({running}) AND lease_until <= ?1 RETURNING {JOB_COLUMNS}"
    ))
    .and_then(|mut s| s.query_map(params![ms(now)], job_row)?.collect())
    .map_err(db("interrupt jobs"))
}

pub(super) fn count_running_jobs(conn: &mut Connection) -> StoreResult<u64> {
    // The same condition as the partial index `jobs_running`, which serves it.
    conn.prepare_cached("SELECT count(*) FROM jobs WHERE state = 'running'")
        .and_then(|mut s| s.query_row([], |row| row.get::<_, i64>(0)))
        .map(|n| u64::try_from(n).unwrap_or(0))
        .map_err(db("count the running jobs"))
}

pub(super) fn running_jobs(conn: &mut Connection) -> StoreResult<Vec<Job>> {
    // Served by the partial index `jobs_running`.
    conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'running' ORDER BY started_at, id"
    ))
    .and_then(|mut s| s.query_map([], job_row)?.collect())
    .map_err(db("list the running jobs"))
}

pub(super) fn list_jobs(conn: &mut Connection, deployment: DeploymentId) -> StoreResult<Vec<Job>> {
    conn.prepare_cached(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE deployment_id = ?1 \
         ORDER BY step_index, attempt, agent_name, created_at, id"
    ))
    .and_then(|mut s| s.query_map(params![deployment.0], job_row)?.collect())
    .map_err(db("list jobs"))
}
