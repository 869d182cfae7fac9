//! Retention: what a batch may remove (the selections, as SQLite's) and
//! removing it in one short transaction. The rows a batch removes are
//! locked first (`FOR UPDATE SKIP LOCKED`), so another node's batch takes
//! others, and a release is checked again once locked: a deployment made
//! of it meanwhile keeps it. Freed space is autovacuum's.

use super::*;
use crate::model::Prune;

/// The states after which a deployment uses nothing any more, named one by
/// one (as SQLite's): a state added later keeps its release until listed.
const ENDED: [DeploymentState; 4] = [
    DeploymentState::Success,
    DeploymentState::Failed,
    DeploymentState::Cancelled,
    DeploymentState::Interrupted,
];

fn ended() -> String {
    state_list(&ENDED, DeploymentState::as_str)
}

/// `$1` project, `$2` keep, `$3` limit.
fn releases_sql(lock: bool) -> String {
    let ended = ended();
    let lock = if lock {
        "FOR UPDATE OF r SKIP LOCKED"
    } else {
        ""
    };
    format!(
        "WITH thresholds AS MATERIALIZED (
             SELECT l.environment AS environment,
                    (SELECT d.release_id FROM deployments d
                      WHERE d.project_id = $1 AND d.environment = l.environment
                      GROUP BY d.release_id ORDER BY d.release_id DESC
                      LIMIT 1 OFFSET $2::BIGINT - 1) AS oldest_kept
               FROM latest_deployments l WHERE l.project_id = $1
         )
         SELECT r.id FROM releases r
          WHERE r.project_id = $1
            AND r.id < (SELECT id FROM releases WHERE project_id = $1
                         ORDER BY id DESC LIMIT 1 OFFSET $2::BIGINT - 1)
            AND NOT EXISTS (
                SELECT 1 FROM deployments d JOIN thresholds t ON t.environment = d.environment
                 WHERE d.release_id = r.id
                   AND (t.oldest_kept IS NULL OR d.release_id >= t.oldest_kept))
            AND NOT EXISTS (
                SELECT 1 FROM deployments d
                 WHERE d.release_id = r.id AND d.state NOT IN ({ended}))
            AND NOT EXISTS (
                SELECT 1 FROM latest_deployments l JOIN deployments d ON d.id = l.deployment_id
                 WHERE l.project_id = $1 AND d.release_id = r.id)
            AND NOT EXISTS (
                SELECT 1 FROM deliveries q
                 WHERE q.release_id = r.id AND q.outcome = 'queued'
                   AND NOT EXISTS (
                       SELECT 1 FROM deliveries n
                        WHERE n.repository_key = q.repository_key AND n.git_ref = q.git_ref
                          AND n.seq > q.seq AND n.outcome = 'queued'))
          ORDER BY r.id LIMIT $3 {lock}"
    )
}

/// `$1` project, `$2` finished before, `$3` limit.
fn task_logs_sql(lock: bool) -> String {
    let ended = ended();
    let lock = if lock {
        "FOR UPDATE OF d SKIP LOCKED"
    } else {
        ""
    };
    format!(
        "SELECT d.id FROM deployments d
          WHERE d.project_id = $1 AND d.log_removed_at IS NULL
            AND d.finished_at IS NOT NULL AND d.finished_at < $2
            AND d.state IN ({ended})
            AND d.id NOT IN (SELECT deployment_id FROM latest_deployments WHERE project_id = $1)
          ORDER BY d.finished_at LIMIT $3 {lock}"
    )
}

/// `$1` project (or none: `$1` is then unused and NULL), `$2` received
/// before, `$3` limit.
fn deliveries_sql(of_project: bool, lock: bool) -> String {
    let project = if of_project {
        "d.project_id = $1"
    } else {
        "d.project_id IS NULL AND $1::BIGINT IS NULL"
    };
    let lock = if lock {
        "FOR UPDATE OF d SKIP LOCKED"
    } else {
        ""
    };
    format!(
        "SELECT d.seq FROM deliveries d
          WHERE {project} AND d.received_at < $2 AND d.state <> 'pending'
            AND (d.git_ref IS NULL OR d.repository_key IS NULL OR (
                 EXISTS (SELECT 1 FROM deliveries n
                          WHERE n.repository_key = d.repository_key AND n.git_ref = d.git_ref
                            AND n.seq > d.seq)
                 AND (d.outcome IS DISTINCT FROM 'queued' OR EXISTS (
                      SELECT 1 FROM deliveries n
                       WHERE n.repository_key = d.repository_key AND n.git_ref = d.git_ref
                         AND n.seq > d.seq AND n.outcome = 'queued'))))
          ORDER BY d.received_at LIMIT $3 {lock}"
    )
}

/// `$1` unused (NULL), `$2` before, `$3` limit.
fn audit_sql(lock: bool) -> String {
    let lock = if lock { "FOR UPDATE SKIP LOCKED" } else { "" };
    format!(
        "SELECT id FROM audit_log WHERE $1::BIGINT IS NULL AND at < $2 ORDER BY at LIMIT $3 {lock}"
    )
}

fn selection(what: &Prune, lock: bool) -> (String, Option<i64>, i64) {
    match what {
        Prune::Releases { project, keep } => (
            releases_sql(lock),
            Some(project.0),
            i64::from((*keep).max(1)),
        ),
        Prune::TaskLogs {
            project,
            finished_before,
        } => (task_logs_sql(lock), Some(project.0), ms(*finished_before)),
        Prune::Deliveries {
            project,
            received_before,
        } => (
            deliveries_sql(project.is_some(), lock),
            project.map(|p| p.0),
            ms(*received_before),
        ),
        Prune::AuditLog { before } => (audit_sql(lock), None, ms(*before)),
    }
}

async fn select<C: GenericClient>(
    c: &C,
    what: &Prune,
    limit: i64,
    lock: bool,
) -> StoreResult<Vec<i64>> {
    let (sql, first, second) = selection(what, lock);
    let found = all(c, &sql, &[&first, &second, &limit])
        .await
        .map_err(db("select what retention removes"))?;
    rows(found, |row| get(row, 0))
}

/// How many of what `what` selects there are now (a dry run).
pub(in crate::postgres) async fn count_prunable(c: &Client, what: &Prune) -> StoreResult<u64> {
    Ok(select(c, what, i64::MAX, false).await?.len() as u64)
}

/// Removes at most `limit` of what `what` selects, in one transaction.
pub(in crate::postgres) async fn prune(
    c: &mut Client,
    what: &Prune,
    limit: u32,
) -> StoreResult<u64> {
    const CONTEXT: &str = "remove what retention selected";
    let tx = c
        .transaction()
        .await
        .map_err(db("begin a retention batch"))?;
    if let Prune::Releases { project, .. } | Prune::TaskLogs { project, .. } = what {
        require_project(&tx, *project).await?;
    }
    let mut ids = select(&tx, what, i64::from(limit), true).await?;
    if let Prune::Releases { .. } = what
        && !ids.is_empty()
    {
        // Locked now: no deployment can be made of them until this commits.
        // One made before the lock (a redeploy of an old release) keeps it.
        let ended = ended();
        let busy = all(
            &tx,
            &format!(
                "SELECT DISTINCT d.release_id FROM deployments d
                  WHERE d.release_id = ANY($1)
                    AND (d.state NOT IN ({ended})
                         OR d.id IN (SELECT deployment_id FROM latest_deployments))"
            ),
            &[&ids],
        )
        .await
        .map_err(db(CONTEXT))?;
        let busy: Vec<i64> = rows(busy, |row| get(row, 0))?;
        ids.retain(|id| !busy.contains(id));
    }
    if ids.is_empty() {
        return Ok(0);
    }
    match what {
        Prune::Releases { .. } => {
            let found = all(
                &tx,
                "SELECT id FROM deployments WHERE release_id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(db(CONTEXT))?;
            let deployments: Vec<i64> = rows(found, |row| get(row, 0))?;
            for sql in [
                "DELETE FROM deployment_approvals WHERE deployment_id = ANY($1)",
                "DELETE FROM jobs WHERE deployment_id = ANY($1)",
                "DELETE FROM log_chunks WHERE deployment_id = ANY($1)",
                "DELETE FROM deployment_steps WHERE deployment_id = ANY($1)",
                "DELETE FROM deliveries WHERE deployment_id = ANY($1)",
                "UPDATE deployments SET retry_of = NULL WHERE retry_of = ANY($1)",
                "DELETE FROM deployments WHERE id = ANY($1)",
            ] {
                exec(&tx, sql, &[&deployments]).await.map_err(db(CONTEXT))?;
            }
            for sql in [
                "DELETE FROM deliveries WHERE release_id = ANY($1)",
                "DELETE FROM releases WHERE id = ANY($1)",
            ] {
                exec(&tx, sql, &[&ids]).await.map_err(db(CONTEXT))?;
            }
        }
        Prune::TaskLogs { .. } => {
            exec(
                &tx,
                "DELETE FROM log_chunks WHERE deployment_id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(db(CONTEXT))?;
            exec(
                &tx,
                "UPDATE deployments SET log_removed_at = $2 WHERE id = ANY($1)",
                &[&ids, &now_ms()],
            )
            .await
            .map_err(db(CONTEXT))?;
        }
        Prune::Deliveries { .. } => {
            exec(
                &tx,
                "DELETE FROM deliveries WHERE seq = ANY($1) AND state <> 'pending'",
                &[&ids],
            )
            .await
            .map_err(db(CONTEXT))?;
        }
        Prune::AuditLog { .. } => {
            // The trigger lets this transaction, and only it, delete.
            tx.batch_execute("SET LOCAL tako.audit_retention = 'on'")
                .await
                .map_err(db(CONTEXT))?;
            exec(&tx, "DELETE FROM audit_log WHERE id = ANY($1)", &[&ids])
                .await
                .map_err(db(CONTEXT))?;
        }
    }
    tx.commit().await.map_err(db("commit a retention batch"))?;
    Ok(ids.len() as u64)
}
