//! Projects: registering, finding and listing them, their webhook secret and build counter.

use super::*;

pub(in crate::sqlite) const PROJECT_COLUMNS: &str = "id, name, repository_url, webhook_secret, created_at, repository_token, status_token, status_forge, status_api_url, status_deployments";

pub(in crate::sqlite) fn project_row(row: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: ProjectId(row.get(0)?),
        name: row.get(1)?,
        repository_url: row.get(2)?,
        webhook_secret: row.get::<_, Option<String>>(3)?.map(WebhookSecret),
        repository_token: row.get::<_, Option<String>>(5)?.map(RepositoryToken),
        forge_status: row
            .get::<_, Option<String>>(6)?
            .map(|token| -> rusqlite::Result<ForgeStatus> {
                Ok(ForgeStatus {
                    token: StatusToken(token),
                    forge: row.get(7)?,
                    api_url: row.get(8)?,
                    deployments: row.get(9)?,
                })
            })
            .transpose()?,
        created_at: time(row, 4)?,
    })
}

pub(in crate::sqlite) fn create_project(
    conn: &mut Connection,
    project: &NewProject,
) -> StoreResult<Project> {
    let name_key = project.name.to_lowercase();
    let repository_key = normalize_repository_url(&project.repository_url);
    let tx = conn.transaction().map_err(db("create project"))?;
    let taken: Option<String> = tx
        .query_row(
            "SELECT name FROM projects WHERE name_key = ?1",
            [&name_key],
            |r| r.get(0),
        )
        .optional()
        .map_err(db("create project"))?;
    if let Some(existing) = taken {
        return Err(StoreError::conflict(format!(
            "a project named {existing} already exists"
        )));
    }
    let taken: Option<String> = tx
        .query_row(
            "SELECT name FROM projects WHERE repository_key = ?1",
            [&repository_key],
            |r| r.get(0),
        )
        .optional()
        .map_err(db("create project"))?;
    if let Some(existing) = taken {
        return Err(StoreError::conflict(format!(
            "repository {} already belongs to project {existing}",
            project.repository_url
        )));
    }
    let created = tx
        .query_row(
            &format!(
                "INSERT INTO projects (name, name_key, repository_url, repository_key, webhook_secret, created_at, repository_token)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {PROJECT_COLUMNS}"
            ),
            params![
                project.name,
                name_key,
                project.repository_url,
                repository_key,
                project.webhook_secret.as_ref().map(|secret| secret.0.as_str()),
                now_ms(),
                project.repository_token.as_ref().map(|token| token.0.as_str())
            ],
            project_row,
        )
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::conflict(format!("project {} already exists", project.name))
            } else {
                StoreError::unavailable("create project", e)
            }
        })?;
    tx.commit().map_err(db("create project"))?;
    Ok(created)
}

pub(in crate::sqlite) fn set_webhook_secret(
    conn: &mut Connection,
    id: ProjectId,
    secret: Option<&str>,
) -> StoreResult<Project> {
    conn.prepare_cached(&format!(
        "UPDATE projects SET webhook_secret = ?2 WHERE id = ?1 RETURNING {PROJECT_COLUMNS}"
    ))
    .and_then(|mut s| s.query_row(params![id.0, secret], project_row).optional())
    .map_err(db("set a webhook secret"))?
    .ok_or_else(|| StoreError::not_found(format!("project {id}")))
}

/// `status` with its token sealed already.
pub(in crate::sqlite) fn set_forge_status(
    conn: &mut Connection,
    id: ProjectId,
    status: Option<&ForgeStatus>,
) -> StoreResult<Project> {
    conn.prepare_cached(&format!(
        "UPDATE projects SET status_token = ?2, status_forge = ?3, status_api_url = ?4,
         status_deployments = ?5 WHERE id = ?1 RETURNING {PROJECT_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                id.0,
                status.map(|s| s.token.0.as_str()),
                status.and_then(|s| s.forge.as_deref()),
                status.and_then(|s| s.api_url.as_deref()),
                status.is_some_and(|s| s.deployments)
            ],
            project_row,
        )
        .optional()
    })
    .map_err(db("set the forge status setting"))?
    .ok_or_else(|| StoreError::not_found(format!("project {id}")))
}

pub(in crate::sqlite) fn get_project(conn: &mut Connection, id: ProjectId) -> StoreResult<Project> {
    conn.prepare_cached(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id.0], project_row).optional())
    .map_err(db("read project"))?
    .ok_or_else(|| StoreError::not_found(format!("project {id}")))
}

pub(in crate::sqlite) fn find_project_by(
    conn: &mut Connection,
    column: &'static str,
    key: &str,
) -> StoreResult<Option<Project>> {
    conn.prepare_cached(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects WHERE {column} = ?1"
    ))
    .and_then(|mut s| s.query_row([key], project_row).optional())
    .map_err(db("read project"))
}

pub(in crate::sqlite) fn list_projects(conn: &mut Connection) -> StoreResult<Vec<Project>> {
    conn.prepare_cached(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects ORDER BY name_key"
    ))
    .and_then(|mut s| s.query_map([], project_row)?.collect())
    .map_err(db("list projects"))
}

pub(in crate::sqlite) fn next_build_number(
    conn: &mut Connection,
    project: ProjectId,
) -> StoreResult<i64> {
    conn.prepare_cached(
        "UPDATE projects SET build_counter = build_counter + 1 WHERE id = ?1 RETURNING build_counter",
    )
    .and_then(|mut s| s.query_row([project.0], |r| r.get(0)).optional())
    .map_err(db("take a build number"))?
    .ok_or_else(|| StoreError::not_found(format!("project {project}")))
}

pub(in crate::sqlite) fn peek_build_number(
    conn: &mut Connection,
    project: ProjectId,
) -> StoreResult<i64> {
    conn.prepare_cached("SELECT build_counter + 1 FROM projects WHERE id = ?1")
        .and_then(|mut s| s.query_row([project.0], |r| r.get(0)).optional())
        .map_err(db("read the build counter"))?
        .ok_or_else(|| StoreError::not_found(format!("project {project}")))
}

pub(in crate::sqlite) fn require_project(
    tx: &Transaction<'_>,
    project: ProjectId,
) -> StoreResult<()> {
    let exists = tx
        .prepare_cached("SELECT 1 FROM projects WHERE id = ?1")
        .and_then(|mut s| s.exists([project.0]))
        .map_err(db("read project"))?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::not_found(format!("project {project}")))
    }
}
