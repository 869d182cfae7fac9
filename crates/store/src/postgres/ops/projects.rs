//! Projects: registering, finding and listing them, their webhook secret and build counter.

use super::*;

pub(in crate::postgres) const PROJECT_COLUMNS: &str = "id, name, repository_url, webhook_secret, created_at, repository_token, status_token, status_forge, status_api_url, status_deployments";

pub(in crate::postgres) fn project_row(row: &Row) -> StoreResult<Project> {
    Ok(Project {
        id: ProjectId(get(row, 0)?),
        name: get(row, 1)?,
        repository_url: get(row, 2)?,
        webhook_secret: get::<Option<String>>(row, 3)?.map(WebhookSecret),
        repository_token: get::<Option<String>>(row, 5)?.map(RepositoryToken),
        forge_status: match get::<Option<String>>(row, 6)? {
            Some(token) => Some(ForgeStatus {
                token: StatusToken(token),
                forge: get(row, 7)?,
                api_url: get(row, 8)?,
                deployments: get(row, 9)?,
            }),
            None => None,
        },
        created_at: time(row, 4)?,
    })
}

pub(in crate::postgres) async fn create_project(
    client: &mut Client,
    project: &NewProject,
) -> StoreResult<Project> {
    const CONTEXT: &str = "create project";
    let name_key = project.name.to_lowercase();
    let repository_key = normalize_repository_url(&project.repository_url);
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    if let Some(row) = opt(
        &tx,
        "SELECT name FROM projects WHERE name_key = $1",
        &[&name_key],
    )
    .await
    .map_err(db(CONTEXT))?
    {
        let existing: String = get(&row, 0)?;
        return Err(StoreError::conflict(format!(
            "a project named {existing} already exists"
        )));
    }
    if let Some(row) = opt(
        &tx,
        "SELECT name FROM projects WHERE repository_key = $1",
        &[&repository_key],
    )
    .await
    .map_err(db(CONTEXT))?
    {
        let existing: String = get(&row, 0)?;
        return Err(StoreError::conflict(format!(
            "repository {} already belongs to project {existing}",
            project.repository_url
        )));
    }
    // Two nodes registering the same name at once: the unique index
    // refuses the second.
    let row = one(
        &tx,
        &format!(
            "INSERT INTO projects (name, name_key, repository_url, repository_key, webhook_secret, created_at, repository_token)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {PROJECT_COLUMNS}"
        ),
        &[
            &project.name,
            &name_key,
            &project.repository_url,
            &repository_key,
            &project.webhook_secret.as_ref().map(|secret| secret.0.as_str()),
            &now_ms(),
            &project.repository_token.as_ref().map(|token| token.0.as_str()),
        ],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict(format!("project {} already exists", project.name))
        } else {
            db(CONTEXT)(e)
        }
    })?;
    let created = project_row(&row)?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(created)
}

pub(in crate::postgres) async fn set_webhook_secret(
    client: &Client,
    id: ProjectId,
    secret: Option<&str>,
) -> StoreResult<Project> {
    opt(
        client,
        &format!(
            "UPDATE projects SET webhook_secret = $2 WHERE id = $1 RETURNING {PROJECT_COLUMNS}"
        ),
        &[&id.0, &secret],
    )
    .await
    .map_err(db("set a webhook secret"))?
    .map(|row| project_row(&row))
    .transpose()?
    .ok_or_else(|| StoreError::not_found(format!("project {id}")))
}

/// `status` with its token sealed already.
pub(in crate::postgres) async fn set_forge_status(
    client: &Client,
    id: ProjectId,
    status: Option<&ForgeStatus>,
) -> StoreResult<Project> {
    opt(
        client,
        &format!(
            "UPDATE projects SET status_token = $2, status_forge = $3, status_api_url = $4,
             status_deployments = $5 WHERE id = $1 RETURNING {PROJECT_COLUMNS}"
        ),
        &[
            &id.0,
            &status.map(|s| s.token.0.as_str()),
            &status.and_then(|s| s.forge.as_deref()),
            &status.and_then(|s| s.api_url.as_deref()),
            &status.is_some_and(|s| s.deployments),
        ],
    )
    .await
    .map_err(db("set the forge status setting"))?
    .map(|row| project_row(&row))
    .transpose()?
    .ok_or_else(|| StoreError::not_found(format!("project {id}")))
}

pub(in crate::postgres) async fn get_project(
    client: &Client,
    id: ProjectId,
) -> StoreResult<Project> {
    opt(
        client,
        &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1"),
        &[&id.0],
    )
    .await
    .map_err(db("read project"))?
    .map(|row| project_row(&row))
    .transpose()?
    .ok_or_else(|| StoreError::not_found(format!("project {id}")))
}

pub(in crate::postgres) async fn find_project_by(
    client: &Client,
    column: &'static str,
    key: &str,
) -> StoreResult<Option<Project>> {
    opt(
        client,
        &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE {column} = $1"),
        &[&key],
    )
    .await
    .map_err(db("read project"))?
    .map(|row| project_row(&row))
    .transpose()
}

pub(in crate::postgres) async fn list_projects(client: &Client) -> StoreResult<Vec<Project>> {
    let found = all(
        client,
        &format!("SELECT {PROJECT_COLUMNS} FROM projects ORDER BY name_key COLLATE \"C\""),
        &[],
    )
    .await
    .map_err(db("list projects"))?;
    rows(found, project_row)
}

pub(in crate::postgres) async fn next_build_number(
    client: &Client,
    project: ProjectId,
) -> StoreResult<i64> {
    opt(
        client,
        "UPDATE projects SET build_counter = build_counter + 1 WHERE id = $1 RETURNING build_counter",
        &[&project.0],
    )
    .await
    .map_err(db("take a build number"))?
    .map(|row| get(&row, 0))
    .transpose()?
    .ok_or_else(|| StoreError::not_found(format!("project {project}")))
}

pub(in crate::postgres) async fn peek_build_number(
    client: &Client,
    project: ProjectId,
) -> StoreResult<i64> {
    opt(
        client,
        "SELECT build_counter + 1 FROM projects WHERE id = $1",
        &[&project.0],
    )
    .await
    .map_err(db("read the build counter"))?
    .map(|row| get(&row, 0))
    .transpose()?
    .ok_or_else(|| StoreError::not_found(format!("project {project}")))
}

pub(in crate::postgres) async fn require_project<C: GenericClient>(
    c: &C,
    project: ProjectId,
) -> StoreResult<()> {
    let exists = opt(c, "SELECT 1 FROM projects WHERE id = $1", &[&project.0])
        .await
        .map_err(db("read project"))?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(StoreError::not_found(format!("project {project}")))
    }
}
