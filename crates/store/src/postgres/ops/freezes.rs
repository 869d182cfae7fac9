//! Deployment freezes: create, list, delete; and releasing a held
//! deployment.

use tako_core::freeze::{FreezeWindow, WeeklyRule};

use super::*;
use crate::model::{Freeze, NewFreeze};

const FREEZE_COLUMNS: &str =
    "id, environment, project_id, starts_at, ends_at, weekly, reason, created_by, created_at";

fn freeze_row(row: &Row) -> StoreResult<Freeze> {
    let weekly: Option<String> = get(row, 5)?;
    let window = match weekly {
        Some(text) => FreezeWindow::Weekly(
            WeeklyRule::parse(&text)
                .map_err(|e| StoreError::unavailable(format!("read freeze rule {text:?}"), e))?,
        ),
        None => FreezeWindow::Once {
            from: time(row, 3)?,
            to: time(row, 4)?,
        },
    };
    Ok(Freeze {
        id: get(row, 0)?,
        environment: get(row, 1)?,
        project: get::<Option<i64>>(row, 2)?.map(ProjectId),
        window,
        reason: get(row, 6)?,
        created_by: get(row, 7)?,
        created_at: time(row, 8)?,
    })
}

pub(in crate::postgres) async fn create_freeze(
    client: &mut Client,
    freeze: &NewFreeze,
) -> StoreResult<Freeze> {
    const CONTEXT: &str = "create a freeze";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    if let Some(project) = freeze.project {
        require_project(&tx, project).await?;
    }
    let (from, to, weekly) = match &freeze.window {
        FreezeWindow::Once { from, to } => (Some(ms(*from)), Some(ms(*to)), None),
        FreezeWindow::Weekly(rule) => (None, None, Some(rule.to_text())),
    };
    let row = one(
        &tx,
        &format!(
            "INSERT INTO freezes (environment, environment_key, project_id, starts_at, ends_at,
                 weekly, reason, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {FREEZE_COLUMNS}"
        ),
        &[
            &freeze.environment,
            &freeze.environment.to_lowercase(),
            &freeze.project.map(|p| p.0),
            &from,
            &to,
            &weekly,
            &freeze.reason,
            &freeze.created_by,
            &now_ms(),
        ],
    )
    .await
    .map_err(db(CONTEXT))?;
    let stored = freeze_row(&row)?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(stored)
}

pub(in crate::postgres) async fn list_freezes(client: &Client) -> StoreResult<Vec<Freeze>> {
    let found = all(
        client,
        &format!("SELECT {FREEZE_COLUMNS} FROM freezes ORDER BY id"),
        &[],
    )
    .await
    .map_err(db("list freezes"))?;
    rows(found, freeze_row)
}

pub(in crate::postgres) async fn delete_freeze(client: &Client, id: i64) -> StoreResult<()> {
    let deleted = exec(client, "DELETE FROM freezes WHERE id = $1", &[&id])
        .await
        .map_err(db("delete a freeze"))?;
    if deleted == 0 {
        return Err(StoreError::not_found(format!("freeze {id}")));
    }
    Ok(())
}

/// `Held` → `Queued`, or `AwaitingApproval` when it waits for approvals.
pub(in crate::postgres) async fn release_held(
    client: &mut Client,
    id: DeploymentId,
) -> StoreResult<Deployment> {
    const CONTEXT: &str = "release a held deployment";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    let current = select_deployment(&tx, id, true).await?;
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
    let row = one(
        &tx,
        &format!(
            "UPDATE deployments SET state = $2
             WHERE id = $1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
        ),
        &[&id.0, &next.as_str()],
    )
    .await
    .map_err(db(CONTEXT))?;
    let updated = deployment_row(&row)?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(updated)
}
