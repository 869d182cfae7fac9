//! Releases: creating, finding and listing them.

use super::*;

pub(in crate::postgres) const RELEASE_COLUMNS: &str = "id, project_id, number, notes, commit_sha, branch, pusher, takofile, \
     variables, build_number, created_at";

pub(in crate::postgres) fn release_row(row: &Row) -> StoreResult<Release> {
    Ok(Release {
        id: ReleaseId(get(row, 0)?),
        project: ProjectId(get(row, 1)?),
        number: get(row, 2)?,
        notes: get(row, 3)?,
        commit: get(row, 4)?,
        branch: get(row, 5)?,
        pusher: get(row, 6)?,
        takofile: get(row, 7)?,
        variables: get(row, 8)?,
        build_number: get(row, 9)?,
        created_at: time(row, 10)?,
    })
}

pub(in crate::postgres) async fn insert_release(
    tx: &Tx<'_>,
    release: &NewRelease,
) -> StoreResult<Release> {
    require_project(tx, release.project).await?;
    let row = one(
        tx,
        &format!(
            "INSERT INTO releases (project_id, number, notes, commit_sha, branch, pusher, takofile,
                 variables, build_number, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {RELEASE_COLUMNS}"
        ),
        &[
            &release.project.0,
            &release.number,
            &release.notes,
            &release.commit,
            &release.branch,
            &release.pusher,
            &release.takofile,
            &release.variables,
            &release.build_number,
            &now_ms(),
        ],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict(format!(
                "release {} of project {} already exists",
                release.number, release.project
            ))
        } else {
            db("create a release")(e)
        }
    })?;
    release_row(&row)
}

pub(in crate::postgres) async fn get_release(
    client: &Client,
    id: ReleaseId,
) -> StoreResult<Release> {
    opt(
        client,
        &format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE id = $1"),
        &[&id.0],
    )
    .await
    .map_err(db("read a release"))?
    .map(|row| release_row(&row))
    .transpose()?
    .ok_or_else(|| StoreError::not_found(format!("release {id}")))
}

pub(in crate::postgres) async fn find_release_by_number(
    client: &Client,
    project: ProjectId,
    number: &str,
) -> StoreResult<Option<Release>> {
    opt(
        client,
        &format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE project_id = $1 AND number = $2"),
        &[&project.0, &number],
    )
    .await
    .map_err(db("read a release"))?
    .map(|row| release_row(&row))
    .transpose()
}

pub(in crate::postgres) async fn latest_release(
    client: &Client,
    project: ProjectId,
) -> StoreResult<Option<Release>> {
    opt(
        client,
        &format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE project_id = $1 ORDER BY id DESC LIMIT 1"
        ),
        &[&project.0],
    )
    .await
    .map_err(db("read a release"))?
    .map(|row| release_row(&row))
    .transpose()
}

pub(in crate::postgres) async fn list_releases(
    client: &Client,
    project: ProjectId,
    page: PageRequest,
) -> StoreResult<Page<Release>> {
    require_project(client, project).await?;
    let found = all(
        client,
        &format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE project_id = $1 AND ($2::BIGINT IS NULL OR id < $2)
             ORDER BY id DESC LIMIT $3"
        ),
        &[&project.0, &page.after.map(|c| c.0), &limit_plus_one(page)],
    )
    .await
    .map_err(db("list releases"))?;
    Ok(paginate(rows(found, release_row)?, page, |r| r.id.0))
}
