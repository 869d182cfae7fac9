//! Environment policies: set, find, list, delete.

use super::*;

pub(in crate::postgres) const POLICY_COLUMNS: &str =
    "project_id, environment, allowed_branches, updated_at";

pub(in crate::postgres) fn policy_row(row: &Row) -> StoreResult<EnvironmentPolicy> {
    let branches: String = get(row, 2)?;
    Ok(EnvironmentPolicy {
        project: ProjectId(get(row, 0)?),
        environment: get(row, 1)?,
        allowed_branches: if branches.is_empty() {
            Vec::new()
        } else {
            branches.split('\n').map(str::to_owned).collect()
        },
        updated_at: time(row, 3)?,
    })
}

pub(in crate::postgres) async fn set_environment_policy(
    client: &mut Client,
    project: ProjectId,
    environment: &str,
    allowed_branches: &[String],
) -> StoreResult<EnvironmentPolicy> {
    const CONTEXT: &str = "set an environment policy";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    require_project(&tx, project).await?;
    let row = one(
        &tx,
        &format!(
            "INSERT INTO environment_policies (project_id, environment, environment_key, allowed_branches, updated_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project_id, environment_key) DO UPDATE SET environment = excluded.environment,
                 allowed_branches = excluded.allowed_branches, updated_at = excluded.updated_at
             RETURNING {POLICY_COLUMNS}"
        ),
        &[
            &project.0,
            &environment,
            &environment.to_lowercase(),
            &allowed_branches.join("\n"),
            &now_ms(),
        ],
    )
    .await
    .map_err(db(CONTEXT))?;
    let stored = policy_row(&row)?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(stored)
}

pub(in crate::postgres) async fn find_environment_policy(
    client: &Client,
    project: ProjectId,
    environment: &str,
) -> StoreResult<Option<EnvironmentPolicy>> {
    opt(
        client,
        &format!(
            "SELECT {POLICY_COLUMNS} FROM environment_policies WHERE project_id = $1 AND environment_key = $2"
        ),
        &[&project.0, &environment.to_lowercase()],
    )
    .await
    .map_err(db("read an environment policy"))?
    .map(|row| policy_row(&row))
    .transpose()
}

pub(in crate::postgres) async fn list_environment_policies(
    client: &Client,
    project: ProjectId,
) -> StoreResult<Vec<EnvironmentPolicy>> {
    require_project(client, project).await?;
    let found = all(
        client,
        &format!(
            "SELECT {POLICY_COLUMNS} FROM environment_policies WHERE project_id = $1 ORDER BY environment_key COLLATE \"C\""
        ),
        &[&project.0],
    )
    .await
    .map_err(db("list environment policies"))?;
    rows(found, policy_row)
}

pub(in crate::postgres) async fn delete_environment_policy(
    client: &Client,
    project: ProjectId,
    environment: &str,
) -> StoreResult<()> {
    let deleted = exec(
        client,
        "DELETE FROM environment_policies WHERE project_id = $1 AND environment_key = $2",
        &[&project.0, &environment.to_lowercase()],
    )
    .await
    .map_err(db("delete an environment policy"))?;
    if deleted == 0 {
        return Err(StoreError::not_found(format!(
            "policy of environment {environment} in project {project}"
        )));
    }
    Ok(())
}
