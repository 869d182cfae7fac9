//! Retention: what a batch may remove (the selections) and removing it, in
//! one short transaction; the incremental vacuum that gives the freed pages
//! back to the file system.
//!
//! Both commit without an fsync of their own (`synchronous = NORMAL` for
//! their transaction, [`without_own_fsync`]): a push arriving meanwhile
//! waits for the batch in progress, and on this kind of disk an fsync is
//! what makes a batch slow. Nothing is at stake: the next durable commit
//! (any push's) carries the batch to disk with it, and a batch lost to a
//! power cut is removed again by the next pass.

use super::*;
use crate::model::Prune;

/// The states after which a deployment uses nothing any more, named one by
/// one: a state added later (a hold, a pause) keeps its release until it is
/// listed here.
pub(in crate::sqlite) const ENDED: [DeploymentState; 4] = [
    DeploymentState::Success,
    DeploymentState::Failed,
    DeploymentState::Cancelled,
    DeploymentState::Interrupted,
];

fn ended() -> String {
    state_list(&ENDED, DeploymentState::as_str)
}

/// The releases of project `?1` beyond the newest `?2` (of the project and
/// of every environment it was deployed to), none of a dashboard cell, none
/// with a deployment that has not ended, none queued by the newest push of
/// a ref that queued something (the sweep's last processed head); oldest
/// first, at most `?3`.
fn releases_sql() -> String {
    let ended = ended();
    format!(
        "WITH thresholds AS MATERIALIZED (
             SELECT l.environment AS environment,
                    (SELECT d.release_id FROM deployments d
                      WHERE d.project_id = ?1 AND d.environment = l.environment
                      GROUP BY d.release_id ORDER BY d.release_id DESC
                      LIMIT 1 OFFSET ?2 - 1) AS oldest_kept
               FROM latest_deployments l WHERE l.project_id = ?1
         )
         SELECT r.id FROM releases r
          WHERE r.project_id = ?1
            AND r.id < (SELECT id FROM releases WHERE project_id = ?1
                         ORDER BY id DESC LIMIT 1 OFFSET ?2 - 1)
            AND NOT EXISTS (
                SELECT 1 FROM deployments d JOIN thresholds t ON t.environment = d.environment
                 WHERE d.release_id = r.id
                   AND (t.oldest_kept IS NULL OR d.release_id >= t.oldest_kept))
            AND NOT EXISTS (
                SELECT 1 FROM deployments d
                 WHERE d.release_id = r.id AND d.state NOT IN ({ended}))
            AND NOT EXISTS (
                SELECT 1 FROM latest_deployments l JOIN deployments d ON d.id = l.deployment_id
                 WHERE l.project_id = ?1 AND d.release_id = r.id)
            AND NOT EXISTS (
                SELECT 1 FROM deliveries q
                 WHERE q.release_id = r.id AND q.outcome = 'queued'
                   AND NOT EXISTS (
                       SELECT 1 FROM deliveries n
                        WHERE n.repository_key = q.repository_key AND n.git_ref = q.git_ref
                          AND n.seq > q.seq AND n.outcome = 'queued'))
          ORDER BY r.id LIMIT ?3"
    )
}

/// The ended deployments of project `?1` that finished before `?2` and
/// still have their task log, none of a dashboard cell; oldest end first,
/// at most `?3`.
fn task_logs_sql() -> String {
    let ended = ended();
    format!(
        "SELECT d.id FROM deployments d
          WHERE d.project_id = ?1 AND d.log_removed_at IS NULL
            AND d.finished_at IS NOT NULL AND d.finished_at < ?2
            AND d.state IN ({ended})
            AND d.id NOT IN (SELECT deployment_id FROM latest_deployments WHERE project_id = ?1)
          ORDER BY d.finished_at LIMIT ?3"
    )
}

/// Routed deliveries of project `?1` (`NULL`: of none) received before
/// `?2`, except the newest of each ref and its newest that queued
/// something; oldest first, at most `?3`.
const DELIVERIES_SQL: &str = "SELECT d.seq FROM deliveries d
      WHERE d.project_id IS ?1 AND d.received_at < ?2 AND d.state <> 'pending'
        AND (d.git_ref IS NULL OR d.repository_key IS NULL OR (
             EXISTS (SELECT 1 FROM deliveries n
                      WHERE n.repository_key = d.repository_key AND n.git_ref = d.git_ref
                        AND n.seq > d.seq)
             AND (d.outcome IS NOT 'queued' OR EXISTS (
                  SELECT 1 FROM deliveries n
                   WHERE n.repository_key = d.repository_key AND n.git_ref = d.git_ref
                     AND n.seq > d.seq AND n.outcome = 'queued'))))
      ORDER BY d.received_at LIMIT ?3";

/// Audit entries made before `?2` (`?1` unused); oldest first, at most `?3`.
const AUDIT_SQL: &str =
    "SELECT id FROM audit_log WHERE ?1 IS NULL AND at < ?2 ORDER BY at LIMIT ?3";

/// The selection of `what` and its parameters (`?1` a project or NULL,
/// `?2` a count or a time, `?3` the limit).
fn selection(what: &Prune) -> (String, Option<i64>, i64) {
    match what {
        Prune::Releases { project, keep } => {
            (releases_sql(), Some(project.0), i64::from((*keep).max(1)))
        }
        Prune::TaskLogs {
            project,
            finished_before,
        } => (task_logs_sql(), Some(project.0), ms(*finished_before)),
        Prune::Deliveries {
            project,
            received_before,
        } => (
            DELIVERIES_SQL.to_owned(),
            project.map(|p| p.0),
            ms(*received_before),
        ),
        Prune::AuditLog { before } => (AUDIT_SQL.to_owned(), None, ms(*before)),
    }
}

fn select(conn: &Connection, what: &Prune, limit: i64) -> StoreResult<Vec<i64>> {
    let (sql, first, second) = selection(what);
    conn.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params![first, second, limit], |row| row.get(0))?
                .collect()
        })
        .map_err(db("select what retention removes"))
}

/// How many of what `what` selects there are now (a dry run).
pub(in crate::sqlite) fn count_prunable(conn: &mut Connection, what: &Prune) -> StoreResult<u64> {
    Ok(select(conn, what, i64::MAX)?.len() as u64)
}

/// Runs `f` (its own transactions) with `synchronous = NORMAL`, then puts
/// the writer's `FULL` back (see the module's docs).
fn without_own_fsync<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(db("relax the durability of a retention batch"))?;
    let result = f(conn);
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db("restore durable commits after a retention batch"))?;
    result
}

/// Removes at most `limit` of what `what` selects, in one transaction.
pub(in crate::sqlite) fn prune(
    conn: &mut Connection,
    what: &Prune,
    limit: u32,
) -> StoreResult<u64> {
    without_own_fsync(conn, |conn| prune_batch(conn, what, limit))
}

fn prune_batch(conn: &mut Connection, what: &Prune, limit: u32) -> StoreResult<u64> {
    let tx = conn.transaction().map_err(db("begin a retention batch"))?;
    if let Prune::Releases { project, .. } | Prune::TaskLogs { project, .. } = what {
        require_project(&tx, *project)?;
    }
    let ids = select(&tx, what, i64::from(limit))?;
    if ids.is_empty() {
        return Ok(0);
    }
    let json = serde_json::to_string(&ids)
        .map_err(|e| StoreError::unavailable("encode a retention batch", e))?;
    let statements: &[&str] = match what {
        Prune::Releases { .. } => &[
            "CREATE TEMP TABLE IF NOT EXISTS retention_deployments (id INTEGER PRIMARY KEY)",
            "DELETE FROM temp.retention_deployments",
            "INSERT INTO temp.retention_deployments (id)
                 SELECT id FROM deployments WHERE release_id IN (SELECT value FROM json_each(?1))",
            "DELETE FROM deployment_approvals
              WHERE deployment_id IN (SELECT id FROM temp.retention_deployments)",
            "DELETE FROM jobs WHERE deployment_id IN (SELECT id FROM temp.retention_deployments)",
            "DELETE FROM log_chunks WHERE deployment_id IN (SELECT id FROM temp.retention_deployments)",
            "DELETE FROM deployment_steps
              WHERE deployment_id IN (SELECT id FROM temp.retention_deployments)",
            "DELETE FROM deliveries
              WHERE deployment_id IN (SELECT id FROM temp.retention_deployments)
                 OR release_id IN (SELECT value FROM json_each(?1))",
            "UPDATE deployments SET retry_of = NULL
              WHERE retry_of IN (SELECT id FROM temp.retention_deployments)",
            "DELETE FROM deployments WHERE id IN (SELECT id FROM temp.retention_deployments)",
            "DELETE FROM releases WHERE id IN (SELECT value FROM json_each(?1))",
        ],
        Prune::TaskLogs { .. } => &[
            "DELETE FROM log_chunks WHERE deployment_id IN (SELECT value FROM json_each(?1))",
            "UPDATE deployments SET log_removed_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
              WHERE id IN (SELECT value FROM json_each(?1))",
        ],
        Prune::Deliveries { .. } => {
            &["DELETE FROM deliveries WHERE seq IN (SELECT value FROM json_each(?1))"]
        }
        Prune::AuditLog { .. } => &[
            "UPDATE audit_log_retention SET open = 1",
            "DELETE FROM audit_log WHERE id IN (SELECT value FROM json_each(?1))",
            "UPDATE audit_log_retention SET open = 0",
        ],
    };
    for sql in statements {
        let mut statement = tx
            .prepare_cached(sql)
            .map_err(db("remove what retention selected"))?;
        let result = if statement.parameter_count() == 0 {
            statement.execute([])
        } else {
            statement.execute([&json])
        };
        result.map_err(db("remove what retention selected"))?;
    }
    tx.commit().map_err(db("commit a retention batch"))?;
    Ok(ids.len() as u64)
}

/// One step of incremental vacuum: at most `max_pages` free pages given
/// back to the file system; how many were.
pub(in crate::sqlite) fn reclaim_space(conn: &mut Connection, max_pages: u32) -> StoreResult<u64> {
    without_own_fsync(conn, |conn| reclaim_step(conn, max_pages))
}

fn reclaim_step(conn: &mut Connection, max_pages: u32) -> StoreResult<u64> {
    let free = |conn: &Connection| -> StoreResult<i64> {
        conn.query_row("PRAGMA freelist_count", [], |row| row.get(0))
            .map_err(db("read the free page count"))
    };
    let before = free(conn)?;
    if before == 0 {
        return Ok(0);
    }
    // The pragma frees one page per step of its statement: step it through.
    conn.prepare(&format!("PRAGMA incremental_vacuum({})", max_pages.max(1)))
        .and_then(|mut s| {
            let mut rows = s.query([])?;
            while rows.next()?.is_some() {}
            Ok(())
        })
        .map_err(db("give free pages back"))?;
    let after = free(conn)?;
    Ok(u64::try_from(before - after).unwrap_or(0))
}
