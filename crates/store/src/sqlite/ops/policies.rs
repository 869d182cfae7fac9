//! Environment policies: set, find, list, delete.

use super::*;

pub(in crate::sqlite) const POLICY_COLUMNS: &str =
    "project_id, environment, allowed_branches, updated_at";

pub(in crate::sqlite) fn policy_row(row: &Row<'_>) -> rusqlite::Result<EnvironmentPolicy> {
    let branches: String = row.get(2)?;
    Ok(EnvironmentPolicy {
        project: ProjectId(row.get(0)?),
        environment: row.get(1)?,
        allowed_branches: if branches.is_empty() {
            Vec::new()
        } else {
            branches.split('\n').map(str::to_owned).collect()
        },
        updated_at: time(row, 3)?,
    })
}

pub(in crate::sqlite) fn set_environment_policy(
    conn: &mut Connection,
    project: ProjectId,
    environment: &str,
    allowed_branches: &[String],
) -> StoreResult<EnvironmentPolicy> {
    const CONTEXT: &str = "set an environment policy";
    let tx = conn.transaction().map_err(db(CONTEXT))?;
    require_project(&tx, project)?;
    let stored = tx
        .prepare_cached(&format!(
            "INSERT INTO environment_policies (project_id, environment, environment_key, allowed_branches, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (project_id, environment_key) DO UPDATE SET environment = excluded.environment,
                 allowed_branches = excluded.allowed_branches, updated_at = excluded.updated_at
             RETURNING {POLICY_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![
                    project.0,
                    environment,
                    environment.to_lowercase(),
                    allowed_branches.join("\n"),
                    now_ms()
                ],
                policy_row,
            )
        })
        .map_err(db(CONTEXT))?;
    tx.commit().map_err(db(CONTEXT))?;
    Ok(stored)
}

pub(in crate::sqlite) fn find_environment_policy(
    conn: &mut Connection,
    project: ProjectId,
    environment: &str,
) -> StoreResult<Option<EnvironmentPolicy>> {
    conn.prepare_cached(&format!(
        "SELECT {POLICY_COLUMNS} FROM environment_policies WHERE project_id = ?1 AND environment_key = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![project.0, environment.to_lowercase()], policy_row)
            .optional()
    })
    .map_err(db("read an environment policy"))
}

pub(in crate::sqlite) fn list_environment_policies(
    conn: &mut Connection,
    project: ProjectId,
) -> StoreResult<Vec<EnvironmentPolicy>> {
    let tx = conn
        .transaction()
        .map_err(db("list environment policies"))?;
    require_project(&tx, project)?;
    tx.prepare_cached(&format!(
        "SELECT {POLICY_COLUMNS} FROM environment_policies WHERE project_id = ?1 ORDER BY environment_key"
    ))
    .and_then(|mut s| s.query_map([project.0], policy_row)?.collect())
    .map_err(db("list environment policies"))
}

pub(in crate::sqlite) fn delete_environment_policy(
    conn: &mut Connection,
    project: ProjectId,
    environment: &str,
) -> StoreResult<()> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM environment_policies WHERE project_id = ?1 AND environment_key = ?2",
        )
        .and_then(|mut s| s.execute(params![project.0, environment.to_lowercase()]))
        .map_err(db("delete an environment policy"))?;
    if deleted == 0 {
        return Err(StoreError::not_found(format!(
            "policy of environment {environment} in project {project}"
        )));
    }
    Ok(())
}
