//! Releases: creating, finding and listing them.

use super::*;

pub(in crate::sqlite) const RELEASE_COLUMNS: &str = "id, project_id, number, notes, commit_sha, branch, pusher, takofile, \
     variables, build_number, created_at";

pub(in crate::sqlite) fn release_row(row: &Row<'_>) -> rusqlite::Result<Release> {
    Ok(Release {
        id: ReleaseId(row.get(0)?),
        project: ProjectId(row.get(1)?),
        number: row.get(2)?,
        notes: row.get(3)?,
        commit: row.get(4)?,
        branch: row.get(5)?,
        pusher: row.get(6)?,
        takofile: row.get(7)?,
        variables: row.get(8)?,
        build_number: row.get(9)?,
        created_at: time(row, 10)?,
    })
}

pub(in crate::sqlite) fn insert_release(
    tx: &Transaction<'_>,
    release: &NewRelease,
) -> StoreResult<Release> {
    require_project(tx, release.project)?;
    tx.prepare_cached(&format!(
        "INSERT INTO releases (project_id, number, notes, commit_sha, branch, pusher, takofile,
             variables, build_number, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING {RELEASE_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                release.project.0,
                release.number,
                release.notes,
                release.commit,
                release.branch,
                release.pusher,
                release.takofile,
                release.variables,
                release.build_number,
                now_ms()
            ],
            release_row,
        )
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict(format!(
                "release {} of project {} already exists",
                release.number, release.project
            ))
        } else {
            StoreError::unavailable("create a release", e)
        }
    })
}

pub(in crate::sqlite) fn get_release(conn: &mut Connection, id: ReleaseId) -> StoreResult<Release> {
    conn.prepare_cached(&format!(
        "SELECT {RELEASE_COLUMNS} FROM releases WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id.0], release_row).optional())
    .map_err(db("read a release"))?
    .ok_or_else(|| StoreError::not_found(format!("release {id}")))
}

pub(in crate::sqlite) fn find_release_by_number(
    conn: &mut Connection,
    project: ProjectId,
    number: &str,
) -> StoreResult<Option<Release>> {
    conn.prepare_cached(&format!(
        "SELECT {RELEASE_COLUMNS} FROM releases WHERE project_id = ?1 AND number = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![project.0, number], release_row)
            .optional()
    })
    .map_err(db("read a release"))
}

pub(in crate::sqlite) fn latest_release(
    conn: &mut Connection,
    project: ProjectId,
) -> StoreResult<Option<Release>> {
    conn.prepare_cached(&format!(
        "SELECT {RELEASE_COLUMNS} FROM releases WHERE project_id = ?1 ORDER BY id DESC LIMIT 1"
    ))
    .and_then(|mut s| s.query_row([project.0], release_row).optional())
    .map_err(db("read a release"))
}

pub(in crate::sqlite) fn list_releases(
    conn: &mut Connection,
    project: ProjectId,
    page: PageRequest,
) -> StoreResult<Page<Release>> {
    let tx = conn.transaction().map_err(db("list releases"))?;
    require_project(&tx, project)?;
    let rows: Vec<Release> = tx
        .prepare_cached(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE project_id = ?1 AND (?2 IS NULL OR id < ?2)
             ORDER BY id DESC LIMIT ?3"
        ))
        .and_then(|mut s| {
            s.query_map(
                params![project.0, page.after.map(|c| c.0), limit_plus_one(page)],
                release_row,
            )?
            .collect()
        })
        .map_err(db("list releases"))?;
    Ok(paginate(rows, page, |r| r.id.0))
}
