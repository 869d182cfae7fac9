//! Deployment freezes: create, list, delete; and releasing a held
//! deployment.

use tako_core::freeze::{FreezeWindow, WeeklyRule};

use super::*;
use crate::model::{Freeze, NewFreeze};

const FREEZE_COLUMNS: &str =
    "id, environment, project_id, starts_at, ends_at, weekly, reason, created_by, created_at";

fn freeze_row(row: &Row<'_>) -> rusqlite::Result<Freeze> {
    let weekly: Option<String> = row.get(5)?;
    let window =
        match weekly {
            Some(text) => FreezeWindow::Weekly(WeeklyRule::parse(&text).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(5, Type::Text, Box::new(e))
            })?),
            None => FreezeWindow::Once {
                from: time(row, 3)?,
                to: time(row, 4)?,
            },
        };
    Ok(Freeze {
        id: row.get(0)?,
        environment: row.get(1)?,
        project: row.get::<_, Option<i64>>(2)?.map(ProjectId),
        window,
        reason: row.get(6)?,
        created_by: row.get(7)?,
        created_at: time(row, 8)?,
    })
}

pub(in crate::sqlite) fn create_freeze(
    conn: &mut Connection,
    freeze: &NewFreeze,
) -> StoreResult<Freeze> {
    const CONTEXT: &str = "create a freeze";
    let tx = conn.transaction().map_err(db(CONTEXT))?;
    if let Some(project) = freeze.project {
        require_project(&tx, project)?;
    }
    let (from, to, weekly) = match &freeze.window {
        FreezeWindow::Once { from, to } => (Some(ms(*from)), Some(ms(*to)), None),
        FreezeWindow::Weekly(rule) => (None, None, Some(rule.to_text())),
    };
    let stored = tx
        .prepare_cached(&format!(
            "INSERT INTO freezes (environment, environment_key, project_id, starts_at, ends_at,
                 weekly, reason, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING {FREEZE_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![
                    freeze.environment,
                    freeze.environment.to_lowercase(),
                    freeze.project.map(|p| p.0),
                    from,
                    to,
                    weekly,
                    freeze.reason,
                    freeze.created_by,
                    now_ms()
                ],
                freeze_row,
            )
        })
        .map_err(db(CONTEXT))?;
    tx.commit().map_err(db(CONTEXT))?;
    Ok(stored)
}

pub(in crate::sqlite) fn list_freezes(conn: &mut Connection) -> StoreResult<Vec<Freeze>> {
    conn.prepare_cached(&format!("SELECT {FREEZE_COLUMNS} FROM freezes ORDER BY id"))
        .and_then(|mut s| s.query_map([], freeze_row)?.collect())
        .map_err(db("list freezes"))
}

pub(in crate::sqlite) fn delete_freeze(conn: &mut Connection, id: i64) -> StoreResult<()> {
    let deleted = conn
        .prepare_cached("DELETE FROM freezes WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(db("delete a freeze"))?;
    if deleted == 0 {
        return Err(StoreError::not_found(format!("freeze {id}")));
    }
    Ok(())
}

/// `Held` → `Queued`, or `AwaitingApproval` when it waits for approvals.
pub(in crate::sqlite) fn release_held(
    conn: &mut Connection,
    id: DeploymentId,
) -> StoreResult<Deployment> {
    const CONTEXT: &str = "release a held deployment";
    let tx = conn.transaction().map_err(db(CONTEXT))?;
    let current = select_deployment(&tx, id)?;
    let event = DeploymentEvent::Release {
        awaits_approval: current.approval.is_some(),
    };
    let next = current
        .state
        .after(event)
        .map_err(|_| StoreError::InvalidTransition {
            what: format!("deployment {id}"),
            from: current.state.to_string(),
            to: "released".to_owned(),
        })?;
    let expected = state_list(&event.applies_to(), DeploymentState::as_str);
    let updated = tx
        .prepare_cached(&format!(
            "UPDATE deployments SET state = ?2
             WHERE id = ?1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
        ))
        .and_then(|mut s| s.query_row(params![id.0, next.as_str()], deployment_row))
        .map_err(db(CONTEXT))?;
    tx.commit().map_err(db(CONTEXT))?;
    Ok(updated)
}
