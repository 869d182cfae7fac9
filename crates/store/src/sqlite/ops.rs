//! The SQL of every store operation, as plain functions over a connection
//! (run on the writer or a reader thread by `SqliteStore`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, Transaction, params};

use crate::error::{StoreError, StoreResult};
use crate::log_codec;
use crate::model::{
    ApiToken, AuditEntry, AuditId, ClaimedDelivery, Delivery, DeliveryCompletion, DeliveryId,
    DeliveryOutcome, DeliveryState, Deployment, DeploymentEvent, DeploymentFilter, DeploymentId,
    DeploymentState, EnvironmentPolicy, InsertOutcome, InterruptScope, InvalidTransition,
    LogCursor, LogPage, NewApiToken, NewAuditEntry, NewDelivery, NewDeployment, NewProject,
    NewRelease, NewVariable, NodeId, Page, PageCursor, PageRequest, Project, ProjectId, Release,
    ReleaseId, RepositoryToken, StepRecord, StepRunState, TokenHash, TokenId, Variable, VariableId,
    WebhookSecret, normalize_repository_url,
};

// ----- helpers -----

/// Maps a driver error to [`StoreError::Unavailable`] while doing `context`.
pub(super) fn db(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::unavailable(context, e)
}

/// Whether `e` is a uniqueness violation.
pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation
        && (f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY))
}

pub(super) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn lease_until(now: i64, lease: Duration) -> i64 {
    now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

pub(super) fn conversion(index: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, message.into())
}

pub(super) fn time(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let millis: i64 = row.get(index)?;
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| conversion(index, format!("timestamp {millis} out of range")))
}

pub(super) fn opt_time(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(index)? {
        None => Ok(None),
        Some(millis) => DateTime::from_timestamp_millis(millis)
            .map(Some)
            .ok_or_else(|| conversion(index, format!("timestamp {millis} out of range"))),
    }
}

/// `'a', 'b'`: the states of a compare-and-set's `IN (…)` (they are the
/// core's constant names, never input).
pub(super) fn state_list<T: Copy>(states: &[T], name: impl Fn(T) -> &'static str) -> String {
    states
        .iter()
        .map(|state| format!("'{}'", name(*state)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The store's error for a transition the core refuses.
fn refused(what: String, error: InvalidTransition) -> StoreError {
    StoreError::InvalidTransition {
        what,
        from: error.from.to_owned(),
        to: error.to.to_owned(),
    }
}

fn limit_plus_one(page: PageRequest) -> i64 {
    i64::from(page.limit.max(1)) + 1
}

/// Cuts a `limit + 1` read to a page and its next cursor.
fn paginate<T>(mut items: Vec<T>, page: PageRequest, key: impl Fn(&T) -> i64) -> Page<T> {
    let limit = page.limit.max(1) as usize;
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(|item| PageCursor(key(item)));
        Page { items, next }
    } else {
        Page { items, next: None }
    }
}

// ----- projects -----

const PROJECT_COLUMNS: &str =
    "id, name, repository_url, webhook_secret, created_at, repository_token";

fn project_row(row: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: ProjectId(row.get(0)?),
        name: row.get(1)?,
        repository_url: row.get(2)?,
        webhook_secret: row.get::<_, Option<String>>(3)?.map(WebhookSecret),
        repository_token: row.get::<_, Option<String>>(5)?.map(RepositoryToken),
        created_at: time(row, 4)?,
    })
}

pub(super) fn create_project(conn: &mut Connection, project: &NewProject) -> StoreResult<Project> {
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

pub(super) fn set_webhook_secret(
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

pub(super) fn get_project(conn: &mut Connection, id: ProjectId) -> StoreResult<Project> {
    conn.prepare_cached(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id.0], project_row).optional())
    .map_err(db("read project"))?
    .ok_or_else(|| StoreError::not_found(format!("project {id}")))
}

pub(super) fn find_project_by(
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

pub(super) fn list_projects(conn: &mut Connection) -> StoreResult<Vec<Project>> {
    conn.prepare_cached(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects ORDER BY name_key"
    ))
    .and_then(|mut s| s.query_map([], project_row)?.collect())
    .map_err(db("list projects"))
}

pub(super) fn next_build_number(conn: &mut Connection, project: ProjectId) -> StoreResult<i64> {
    conn.prepare_cached(
        "UPDATE projects SET build_counter = build_counter + 1 WHERE id = ?1 RETURNING build_counter",
    )
    .and_then(|mut s| s.query_row([project.0], |r| r.get(0)).optional())
    .map_err(db("take a build number"))?
    .ok_or_else(|| StoreError::not_found(format!("project {project}")))
}

fn require_project(tx: &Transaction<'_>, project: ProjectId) -> StoreResult<()> {
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

// ----- deliveries -----

const DELIVERY_COLUMNS: &str = "id, event, received_at, repository_url, git_ref, project_id, state, \
     outcome, outcome_reason, release_id, deployment_id, claimed_by, lease_until, completed_at, seq";

fn outcome_of(
    outcome: Option<String>,
    reason: Option<String>,
    release: Option<i64>,
    deployment: Option<i64>,
) -> rusqlite::Result<Option<DeliveryOutcome>> {
    Ok(match outcome.as_deref() {
        None => None,
        Some("queued") => match (release, deployment) {
            (Some(release), Some(deployment)) => Some(DeliveryOutcome::Queued {
                release: ReleaseId(release),
                deployment: DeploymentId(deployment),
            }),
            _ => return Err(conversion(7, "queued delivery without its release".into())),
        },
        Some("ignored") => Some(DeliveryOutcome::Ignored {
            reason: reason.unwrap_or_default(),
        }),
        Some("failed") => Some(DeliveryOutcome::Failed {
            reason: reason.unwrap_or_default(),
        }),
        Some("duplicate") => Some(DeliveryOutcome::Duplicate),
        Some(other) => return Err(conversion(7, format!("unknown delivery outcome {other}"))),
    })
}

/// A delivery and its `seq` (the listing cursor).
fn delivery_row(row: &Row<'_>) -> rusqlite::Result<(Delivery, i64)> {
    let state = match row.get_ref(6)?.as_str()? {
        "pending" => DeliveryState::Pending,
        "done" => DeliveryState::Done,
        other => return Err(conversion(6, format!("unknown delivery state {other}"))),
    };
    let delivery = Delivery {
        id: DeliveryId(row.get(0)?),
        event: row.get(1)?,
        received_at: time(row, 2)?,
        repository_url: row.get(3)?,
        git_ref: row.get(4)?,
        project: row.get::<_, Option<i64>>(5)?.map(ProjectId),
        state,
        outcome: outcome_of(row.get(7)?, row.get(8)?, row.get(9)?, row.get(10)?)?,
        claimed_by: row.get::<_, Option<String>>(11)?.map(NodeId),
        lease_until: opt_time(row, 12)?,
        completed_at: opt_time(row, 13)?,
    };
    Ok((delivery, row.get(14)?))
}

pub(super) fn insert_deliveries(
    conn: &mut Connection,
    deliveries: &[NewDelivery],
) -> StoreResult<Vec<InsertOutcome>> {
    let tx = conn.transaction().map_err(db("store deliveries"))?;
    let mut outcomes = Vec::with_capacity(deliveries.len());
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO deliveries (id, event, received_at, body, repository_url, repository_key, git_ref)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
            )
            .map_err(db("store deliveries"))?;
        for delivery in deliveries {
            let key = delivery
                .repository_url
                .as_deref()
                .map(normalize_repository_url);
            let changed = insert
                .execute(params![
                    delivery.id.0,
                    delivery.event,
                    ms(delivery.received_at),
                    delivery.body,
                    delivery.repository_url,
                    key,
                    delivery.git_ref,
                ])
                .map_err(db("store deliveries"))?;
            outcomes.push(if changed == 1 {
                InsertOutcome::Inserted
            } else {
                InsertOutcome::Duplicate
            });
        }
    }
    tx.commit().map_err(db("store deliveries"))?;
    Ok(outcomes)
}

pub(super) fn release_delivery_claims(conn: &mut Connection, node: &NodeId) -> StoreResult<u64> {
    let changed = conn
        .prepare_cached(
            "UPDATE deliveries SET claimed_by = NULL, lease_until = NULL
             WHERE state = 'pending' AND claimed_by = ?1",
        )
        .map_err(db("release delivery claims"))?
        .execute(params![node.0])
        .map_err(db("release delivery claims"))?;
    Ok(u64::try_from(changed).unwrap_or(u64::MAX))
}

pub(super) fn claim_pending_delivery(
    conn: &mut Connection,
    node: &NodeId,
    lease: Duration,
) -> StoreResult<Option<ClaimedDelivery>> {
    let now = now_ms();
    let mut claim = conn
        .prepare_cached(&format!(
            "UPDATE deliveries SET claimed_by = ?1, lease_until = ?2
             WHERE seq = (SELECT seq FROM deliveries
                          WHERE state = 'pending' AND (lease_until IS NULL OR lease_until <= ?3)
                          ORDER BY seq LIMIT 1)
             RETURNING {DELIVERY_COLUMNS}, body"
        ))
        .map_err(db("claim a delivery"))?;
    claim
        .query_row(params![node.0, lease_until(now, lease), now], |row| {
            let (delivery, _) = delivery_row(row)?;
            Ok(ClaimedDelivery {
                delivery,
                body: row.get(15)?,
            })
        })
        .optional()
        .map_err(db("claim a delivery"))
}

pub(super) fn complete_delivery(
    conn: &mut Connection,
    id: &DeliveryId,
    completion: DeliveryCompletion,
) -> StoreResult<DeliveryOutcome> {
    let tx = conn.transaction().map_err(db("complete a delivery"))?;
    let (delivery, _) = tx
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"
        ))
        .and_then(|mut s| s.query_row([&id.0], delivery_row).optional())
        .map_err(db("complete a delivery"))?
        .ok_or_else(|| StoreError::not_found(format!("delivery {id}")))?;
    if let (DeliveryState::Done, Some(outcome)) = (delivery.state, delivery.outcome) {
        return Ok(outcome);
    }
    let (project, outcome, reason) = match completion {
        DeliveryCompletion::Queue {
            release,
            environment,
        } => {
            let project = release.project;
            let release = insert_release(&tx, &release)?;
            let deployment = insert_deployment(
                &tx,
                &NewDeployment {
                    release: release.id,
                    environment,
                },
            )?;
            (
                Some(project),
                DeliveryOutcome::Queued {
                    release: release.id,
                    deployment: deployment.id,
                },
                None,
            )
        }
        DeliveryCompletion::Deploy {
            project,
            release,
            environment,
        } => {
            let deployment = insert_deployment(
                &tx,
                &NewDeployment {
                    release,
                    environment,
                },
            )?;
            if deployment.project != project {
                return Err(StoreError::Conflict {
                    what: format!("release {release} does not belong to project {project}"),
                });
            }
            (
                Some(project),
                DeliveryOutcome::Queued {
                    release,
                    deployment: deployment.id,
                },
                None,
            )
        }
        DeliveryCompletion::Ignored { project, reason } => (
            project,
            DeliveryOutcome::Ignored {
                reason: reason.clone(),
            },
            Some(reason),
        ),
        DeliveryCompletion::Failed { project, reason } => (
            project,
            DeliveryOutcome::Failed {
                reason: reason.clone(),
            },
            Some(reason),
        ),
        DeliveryCompletion::Duplicate { project } => (project, DeliveryOutcome::Duplicate, None),
    };
    if let Some(project) = project {
        require_project(&tx, project)?;
    }
    let (kind, release, deployment) = match &outcome {
        DeliveryOutcome::Queued {
            release,
            deployment,
        } => ("queued", Some(release.0), Some(deployment.0)),
        DeliveryOutcome::Ignored { .. } => ("ignored", None, None),
        DeliveryOutcome::Failed { .. } => ("failed", None, None),
        DeliveryOutcome::Duplicate => ("duplicate", None, None),
    };
    tx.prepare_cached(
        "UPDATE deliveries SET state = 'done', outcome = ?2, outcome_reason = ?3, release_id = ?4,
             deployment_id = ?5, project_id = COALESCE(?6, project_id), completed_at = ?7,
             lease_until = NULL
         WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            id.0,
            kind,
            reason,
            release,
            deployment,
            project.map(|p| p.0),
            now_ms()
        ])
    })
    .map_err(db("complete a delivery"))?;
    tx.commit().map_err(db("complete a delivery"))?;
    Ok(outcome)
}

pub(super) fn get_delivery(conn: &mut Connection, id: &DeliveryId) -> StoreResult<Delivery> {
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([&id.0], delivery_row).optional())
    .map_err(db("read a delivery"))?
    .map(|(delivery, _)| delivery)
    .ok_or_else(|| StoreError::not_found(format!("delivery {id}")))
}

pub(super) fn replay_delivery(conn: &mut Connection, id: &DeliveryId) -> StoreResult<Delivery> {
    let tx = conn.transaction().map_err(db("replay a delivery"))?;
    let (delivery, _) = tx
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"
        ))
        .and_then(|mut s| s.query_row([&id.0], delivery_row).optional())
        .map_err(db("replay a delivery"))?
        .ok_or_else(|| StoreError::not_found(format!("delivery {id}")))?;
    if delivery.state != DeliveryState::Done {
        return Err(StoreError::InvalidTransition {
            what: format!("delivery {id}"),
            from: "pending".to_owned(),
            to: "pending".to_owned(),
        });
    }
    let (replayed, _) = tx
        .prepare_cached(&format!(
            "UPDATE deliveries SET state = 'pending', outcome = NULL, outcome_reason = NULL,
                 release_id = NULL, deployment_id = NULL, claimed_by = NULL,
                 lease_until = NULL, completed_at = NULL
             WHERE id = ?1 RETURNING {DELIVERY_COLUMNS}"
        ))
        .and_then(|mut s| s.query_row([&id.0], delivery_row))
        .map_err(db("replay a delivery"))?;
    tx.commit().map_err(db("replay a delivery"))?;
    Ok(replayed)
}

pub(super) fn list_deliveries(
    conn: &mut Connection,
    project: Option<ProjectId>,
    page: PageRequest,
) -> StoreResult<Page<Delivery>> {
    let tx = conn.transaction().map_err(db("list deliveries"))?;
    let rows: Vec<(Delivery, i64)> = match project {
        None => tx
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE (?1 IS NULL OR seq < ?1)
                 ORDER BY seq DESC LIMIT ?2"
            ))
            .and_then(|mut s| {
                s.query_map(
                    params![page.after.map(|c| c.0), limit_plus_one(page)],
                    delivery_row,
                )?
                .collect()
            }),
        Some(project) => {
            require_project(&tx, project)?;
            tx.prepare_cached(&format!(
                // Two index walks, newest first, each cut at the page size,
                // then merged: the cost does not grow with the history (an
                // `OR` would read every delivery of the project and sort).
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE seq IN (
                     SELECT seq FROM (SELECT seq FROM deliveries
                                      WHERE project_id = ?1 AND (?2 IS NULL OR seq < ?2)
                                      ORDER BY seq DESC LIMIT ?3)
                     UNION
                     SELECT seq FROM (SELECT seq FROM deliveries
                                      WHERE repository_key =
                                            (SELECT repository_key FROM projects WHERE id = ?1)
                                        AND (?2 IS NULL OR seq < ?2)
                                      ORDER BY seq DESC LIMIT ?3))
                 ORDER BY seq DESC LIMIT ?3"
            ))
            .and_then(|mut s| {
                s.query_map(
                    params![project.0, page.after.map(|c| c.0), limit_plus_one(page)],
                    delivery_row,
                )?
                .collect()
            })
        }
    }
    .map_err(db("list deliveries"))?;
    let page = paginate(rows, page, |(_, seq)| *seq);
    Ok(Page {
        items: page.items.into_iter().map(|(d, _)| d).collect(),
        next: page.next,
    })
}

// ----- releases -----

const RELEASE_COLUMNS: &str = "id, project_id, number, notes, commit_sha, branch, pusher, takofile, \
     variables, build_number, created_at";

fn release_row(row: &Row<'_>) -> rusqlite::Result<Release> {
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

pub(super) fn insert_release(tx: &Transaction<'_>, release: &NewRelease) -> StoreResult<Release> {
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

pub(super) fn get_release(conn: &mut Connection, id: ReleaseId) -> StoreResult<Release> {
    conn.prepare_cached(&format!(
        "SELECT {RELEASE_COLUMNS} FROM releases WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id.0], release_row).optional())
    .map_err(db("read a release"))?
    .ok_or_else(|| StoreError::not_found(format!("release {id}")))
}

pub(super) fn find_release_by_number(
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

pub(super) fn latest_release(
    conn: &mut Connection,
    project: ProjectId,
) -> StoreResult<Option<Release>> {
    conn.prepare_cached(&format!(
        "SELECT {RELEASE_COLUMNS} FROM releases WHERE project_id = ?1 ORDER BY id DESC LIMIT 1"
    ))
    .and_then(|mut s| s.query_row([project.0], release_row).optional())
    .map_err(db("read a release"))
}

pub(super) fn list_releases(
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

// ----- deployments -----

const DEPLOYMENT_COLUMNS: &str = "id, release_id, project_id, environment, state, queued_at, \
     started_at, finished_at, error, cancel_requested, claimed_by, lease_until, log_lines";

fn deployment_state(row: &Row<'_>, index: usize) -> rusqlite::Result<DeploymentState> {
    let text = row.get_ref(index)?.as_str()?;
    DeploymentState::parse(text)
        .ok_or_else(|| conversion(index, format!("unknown deployment state {text}")))
}

fn deployment_row(row: &Row<'_>) -> rusqlite::Result<Deployment> {
    Ok(Deployment {
        id: DeploymentId(row.get(0)?),
        release: ReleaseId(row.get(1)?),
        project: ProjectId(row.get(2)?),
        environment: row.get(3)?,
        state: deployment_state(row, 4)?,
        queued_at: time(row, 5)?,
        started_at: opt_time(row, 6)?,
        finished_at: opt_time(row, 7)?,
        error: row.get(8)?,
        cancel_requested: row.get(9)?,
        claimed_by: row.get::<_, Option<String>>(10)?.map(NodeId),
        lease_until: opt_time(row, 11)?,
        log_lines: u64::try_from(row.get::<_, i64>(12)?).unwrap_or(0),
    })
}

pub(super) fn insert_deployment(
    tx: &Transaction<'_>,
    deployment: &NewDeployment,
) -> StoreResult<Deployment> {
    let project: i64 = tx
        .prepare_cached("SELECT project_id FROM releases WHERE id = ?1")
        .and_then(|mut s| s.query_row([deployment.release.0], |r| r.get(0)).optional())
        .map_err(db("create a deployment"))?
        .ok_or_else(|| StoreError::not_found(format!("release {}", deployment.release)))?;
    tx.prepare_cached(&format!(
        "INSERT INTO deployments (release_id, project_id, environment, state, queued_at)
         VALUES (?1, ?2, ?3, 'queued', ?4) RETURNING {DEPLOYMENT_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                deployment.release.0,
                project,
                deployment.environment,
                now_ms()
            ],
            deployment_row,
        )
    })
    .map_err(db("create a deployment"))
}

pub(super) fn latest_deployments(
    conn: &mut Connection,
    project: Option<ProjectId>,
) -> StoreResult<Vec<Deployment>> {
    let columns = prefixed("d.", DEPLOYMENT_COLUMNS);
    conn.prepare_cached(&format!(
        "SELECT {columns} FROM latest_deployments l JOIN deployments d ON d.id = l.deployment_id
         WHERE ?1 IS NULL OR l.project_id = ?1
         ORDER BY l.project_id, l.environment"
    ))
    .and_then(|mut s| {
        s.query_map([project.map(|p| p.0)], deployment_row)?
            .collect()
    })
    .map_err(db("read the latest deployments"))
}

pub(super) fn release_deployments(
    conn: &mut Connection,
    releases: &[ReleaseId],
) -> StoreResult<Vec<Deployment>> {
    let ids = serde_json::to_string(&releases.iter().map(|r| r.0).collect::<Vec<_>>())
        .map_err(|e| StoreError::unavailable("encode release ids", e))?;
    conn.prepare_cached(&format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id IN (
             SELECT max(id) FROM deployments
             WHERE release_id IN (SELECT value FROM json_each(?1))
             GROUP BY release_id, environment)
         ORDER BY release_id, environment"
    ))
    .and_then(|mut s| s.query_map([ids], deployment_row)?.collect())
    .map_err(db("read a release's deployments"))
}

/// `columns` (comma-separated) each with `prefix`.
fn prefixed(prefix: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{prefix}{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn select_deployment(conn: &Connection, id: DeploymentId) -> StoreResult<Deployment> {
    conn.prepare_cached(&format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id.0], deployment_row).optional())
    .map_err(db("read a deployment"))?
    .ok_or_else(|| StoreError::not_found(format!("deployment {id}")))
}

pub(super) fn get_deployment(conn: &mut Connection, id: DeploymentId) -> StoreResult<Deployment> {
    select_deployment(conn, id)
}

pub(super) fn list_deployments(
    conn: &mut Connection,
    filter: &DeploymentFilter,
    page: PageRequest,
) -> StoreResult<Page<Deployment>> {
    // Only the filters given are in the statement, so SQLite can choose the
    // index that serves them (`?1 IS NULL OR ...` would hide every index and
    // scan the whole history for a filter that matches little).
    let mut conditions = Vec::new();
    if filter.project.is_some() {
        conditions.push("project_id = ?1");
    }
    if filter.environment.is_some() {
        conditions.push("environment = ?2");
    }
    if filter.state.is_some() {
        conditions.push("state = ?3");
    }
    if page.after.is_some() {
        conditions.push("id < ?4");
    }
    let mut sql = format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    // `?5` is always there, so all five parameters can be bound (SQLite
    // counts up to the largest number; an unused one is simply ignored).
    sql.push_str(" ORDER BY id DESC LIMIT ?5");
    let rows: Vec<Deployment> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(
                params![
                    filter.project.map(|p| p.0),
                    filter.environment,
                    filter.state.map(DeploymentState::as_str),
                    page.after.map(|c| c.0),
                    limit_plus_one(page)
                ],
                deployment_row,
            )?
            .collect()
        })
        .map_err(db("list deployments"))?;
    Ok(paginate(rows, page, |d| d.id.0))
}

pub(super) fn claim_next_deployment(
    conn: &mut Connection,
    node: &NodeId,
    lease: Duration,
    max_running: u32,
) -> StoreResult<Option<Deployment>> {
    let tx = conn.transaction().map_err(db("claim a deployment"))?;
    let running: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM deployments WHERE state = 'running'")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db("claim a deployment"))?;
    if running >= i64::from(max_running) {
        return Ok(None);
    }
    let now = now_ms();
    let queued = state_list(
        &DeploymentEvent::Claim.applies_to(),
        DeploymentState::as_str,
    );
    let claimed = tx
        .prepare_cached(&format!(
            "UPDATE deployments SET state = 'running', claimed_by = ?1, lease_until = ?2, started_at = ?3
             WHERE id = (SELECT q.id FROM deployments q
                         WHERE q.state IN ({queued})
                           AND NOT EXISTS (SELECT 1 FROM deployments r
                                           WHERE r.state = 'running' AND r.project_id = q.project_id
                                             AND r.environment = q.environment)
                         ORDER BY q.id LIMIT 1)
             RETURNING {DEPLOYMENT_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(params![node.0, lease_until(now, lease), now], deployment_row)
                .optional()
        })
        .map_err(db("claim a deployment"))?;
    tx.commit().map_err(db("claim a deployment"))?;
    Ok(claimed)
}

pub(super) fn renew_deployment_lease(
    conn: &mut Connection,
    id: DeploymentId,
    node: &NodeId,
    lease: Duration,
) -> StoreResult<DateTime<Utc>> {
    let until = lease_until(now_ms(), lease);
    let renewed = conn
        .prepare_cached(
            "UPDATE deployments SET lease_until = ?3
             WHERE id = ?1 AND state = 'running' AND claimed_by = ?2 RETURNING lease_until",
        )
        .and_then(|mut s| {
            s.query_row(params![id.0, node.0, until], |r| r.get::<_, i64>(0))
                .optional()
        })
        .map_err(db("renew a lease"))?;
    match renewed {
        Some(millis) => DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| StoreError::unavailable("renew a lease", "lease out of range")),
        None => {
            let deployment = select_deployment(conn, id)?;
            Err(StoreError::conflict(format!(
                "deployment {id} is {} and not held by node {node}",
                deployment.state
            )))
        }
    }
}

pub(super) fn finish_deployment(
    conn: &mut Connection,
    id: DeploymentId,
    state: DeploymentState,
    error: Option<String>,
) -> StoreResult<Deployment> {
    let event = DeploymentEvent::Finish(state);
    let tx = conn.transaction().map_err(db("finish a deployment"))?;
    let current = select_deployment(&tx, id)?;
    let next = current
        .state
        .after(event)
        .map_err(|e| refused(format!("deployment {id}"), e))?;
    let expected = state_list(&event.applies_to(), DeploymentState::as_str);
    let finished = tx
        .prepare_cached(&format!(
            "UPDATE deployments SET state = ?2, error = ?3, finished_at = ?4, lease_until = NULL
             WHERE id = ?1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![id.0, next.as_str(), error, now_ms()],
                deployment_row,
            )
            .optional()
        })
        .map_err(db("finish a deployment"))?
        .ok_or_else(|| StoreError::InvalidTransition {
            what: format!("deployment {id}"),
            from: current.state.to_string(),
            to: next.to_string(),
        })?;
    tx.commit().map_err(db("finish a deployment"))?;
    Ok(finished)
}

pub(super) fn request_cancel(conn: &mut Connection, id: DeploymentId) -> StoreResult<Deployment> {
    let event = DeploymentEvent::Cancel;
    let tx = conn.transaction().map_err(db("cancel a deployment"))?;
    let current = select_deployment(&tx, id)?;
    let next = current
        .state
        .after(event)
        .map_err(|e| refused(format!("deployment {id}"), e))?;
    let finished_at = next.is_final().then(now_ms);
    let changed = tx
        .prepare_cached(
            "UPDATE deployments SET state = ?2, cancel_requested = 1,
                 finished_at = COALESCE(?3, finished_at)
             WHERE id = ?1 AND state = ?4",
        )
        .and_then(|mut s| {
            s.execute(params![
                id.0,
                next.as_str(),
                finished_at,
                current.state.as_str()
            ])
        })
        .map_err(db("cancel a deployment"))?;
    if changed == 0 {
        return Err(StoreError::InvalidTransition {
            what: format!("deployment {id}"),
            from: current.state.to_string(),
            to: DeploymentState::Cancelled.to_string(),
        });
    }
    let updated = select_deployment(&tx, id)?;
    tx.commit().map_err(db("cancel a deployment"))?;
    Ok(updated)
}

/// The error recorded on a deployment ended by [`interrupt_running`].
const INTERRUPTED: &str = "interrupted: the server running it stopped";

pub(super) fn interrupt_running(
    conn: &mut Connection,
    scope: &InterruptScope,
) -> StoreResult<Vec<DeploymentId>> {
    let tx = conn.transaction().map_err(db("interrupt deployments"))?;
    let now = now_ms();
    let expected = state_list(
        &DeploymentEvent::Interrupt.applies_to(),
        DeploymentState::as_str,
    );
    let ids: Vec<DeploymentId> = match scope {
        InterruptScope::Node(node) => tx
            .prepare_cached(&format!(
                "UPDATE deployments SET state = 'interrupted', finished_at = ?2,
                     error = COALESCE(error, ?3), lease_until = NULL
                 WHERE state IN ({expected}) AND claimed_by = ?1 RETURNING id"
            ))
            .and_then(|mut s| {
                s.query_map(params![node.0, now, INTERRUPTED], |r| {
                    r.get(0).map(DeploymentId)
                })?
                .collect()
            }),
        InterruptScope::ExpiredLeases => tx
            .prepare_cached(&format!(
                "UPDATE deployments SET state = 'interrupted', finished_at = ?1,
                     error = COALESCE(error, ?2), lease_until = NULL
                 WHERE state IN ({expected}) AND (lease_until IS NULL OR lease_until <= ?1) RETURNING id"
            ))
            .and_then(|mut s| {
                s.query_map(params![now, INTERRUPTED], |r| r.get(0).map(DeploymentId))?
                    .collect()
            }),
    }
    .map_err(db("interrupt deployments"))?;
    {
        let mut steps = tx
            .prepare_cached(
                "UPDATE deployment_steps SET state = 'failed', reason = COALESCE(reason, 'interrupted')
                 WHERE deployment_id = ?1 AND state = 'running'",
            )
            .map_err(db("interrupt deployments"))?;
        for id in &ids {
            steps.execute([id.0]).map_err(db("interrupt deployments"))?;
        }
    }
    tx.commit().map_err(db("interrupt deployments"))?;
    let mut ids = ids;
    ids.sort();
    Ok(ids)
}

fn step_row(row: &Row<'_>) -> rusqlite::Result<StepRecord> {
    let text = row.get_ref(2)?.as_str()?;
    let state = StepRunState::parse(text)
        .ok_or_else(|| conversion(2, format!("unknown step state {text}")))?;
    Ok(StepRecord {
        index: row.get(0)?,
        name: row.get(1)?,
        state,
        reason: row.get(3)?,
        started_at: opt_time(row, 4)?,
        duration: row
            .get::<_, Option<i64>>(5)?
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
    })
}

pub(super) fn update_step(
    conn: &mut Connection,
    deployment: DeploymentId,
    step: &StepRecord,
) -> StoreResult<()> {
    let tx = conn.transaction().map_err(db("record a step"))?;
    select_deployment(&tx, deployment)?;
    let what = || format!("step {} of deployment {deployment}", step.index);
    let current: Option<String> = tx
        .prepare_cached(
            "SELECT state FROM deployment_steps WHERE deployment_id = ?1 AND step_index = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![deployment.0, step.index], |r| r.get(0))
                .optional()
        })
        .map_err(db("record a step"))?;
    if let Some(current) = current.as_deref().and_then(StepRunState::parse) {
        current
            .may_become(step.state)
            .map_err(|e| refused(what(), e))?;
    }
    let expected = state_list(
        &StepRunState::may_come_from(step.state),
        StepRunState::as_str,
    );
    let changed = tx
        .prepare_cached(&format!(
            "INSERT INTO deployment_steps (deployment_id, step_index, name, state, reason, started_at, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (deployment_id, step_index) DO UPDATE SET name = excluded.name,
                 state = excluded.state, reason = excluded.reason, started_at = excluded.started_at,
                 duration_ms = excluded.duration_ms
             WHERE deployment_steps.state IN ({expected})"
        ))
        .and_then(|mut s| {
            s.execute(params![
                deployment.0,
                step.index,
                step.name,
                step.state.as_str(),
                step.reason,
                step.started_at.map(ms),
                step.duration
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            ])
        })
        .map_err(db("record a step"))?;
    if changed == 0 {
        return Err(StoreError::InvalidTransition {
            what: what(),
            from: current.unwrap_or_default(),
            to: step.state.to_string(),
        });
    }
    tx.commit().map_err(db("record a step"))?;
    Ok(())
}

pub(super) fn list_steps(
    conn: &mut Connection,
    deployment: DeploymentId,
) -> StoreResult<Vec<StepRecord>> {
    let tx = conn.transaction().map_err(db("list steps"))?;
    select_deployment(&tx, deployment)?;
    tx.prepare_cached(
        "SELECT step_index, name, state, reason, started_at, duration_ms FROM deployment_steps
         WHERE deployment_id = ?1 ORDER BY step_index",
    )
    .and_then(|mut s| s.query_map([deployment.0], step_row)?.collect())
    .map_err(db("list steps"))
}

// ----- task log -----

pub(super) fn append_log(
    conn: &mut Connection,
    deployment: DeploymentId,
    chunks: &[(usize, Vec<u8>)],
) -> StoreResult<()> {
    let total: usize = chunks.iter().map(|(n, _)| n).sum();
    let tx = conn.transaction().map_err(db("append to the task log"))?;
    let end: i64 = tx
        .prepare_cached(
            "UPDATE deployments SET log_lines = log_lines + ?2 WHERE id = ?1 RETURNING log_lines",
        )
        .and_then(|mut s| {
            s.query_row(
                params![deployment.0, i64::try_from(total).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .optional()
        })
        .map_err(db("append to the task log"))?
        .ok_or_else(|| StoreError::not_found(format!("deployment {deployment}")))?;
    let mut first = end - i64::try_from(total).unwrap_or(i64::MAX);
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO log_chunks (deployment_id, first_line, line_count, data)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db("append to the task log"))?;
        for (count, data) in chunks {
            let count = i64::try_from(*count).unwrap_or(i64::MAX);
            insert
                .execute(params![deployment.0, first, count, data])
                .map_err(db("append to the task log"))?;
            first += count;
        }
    }
    tx.commit().map_err(db("append to the task log"))?;
    Ok(())
}

pub(super) fn read_log(
    conn: &mut Connection,
    deployment: DeploymentId,
    after: LogCursor,
    limit: u32,
) -> StoreResult<LogPage> {
    let tx = conn.transaction().map_err(db("read the task log"))?;
    let total = select_deployment(&tx, deployment)?.log_lines;
    let limit = limit.max(1) as usize;
    let mut lines = Vec::with_capacity(limit.min(4096));
    if after.0 < total {
        let after_i = i64::try_from(after.0).unwrap_or(i64::MAX);
        let start: i64 = tx
            .prepare_cached(
                "SELECT MAX(first_line) FROM log_chunks WHERE deployment_id = ?1 AND first_line <= ?2",
            )
            .and_then(|mut s| s.query_row(params![deployment.0, after_i], |r| r.get::<_, Option<i64>>(0)))
            .map_err(db("read the task log"))?
            .unwrap_or(0);
        let mut select = tx
            .prepare_cached(
                "SELECT first_line, data FROM log_chunks WHERE deployment_id = ?1 AND first_line >= ?2
                 ORDER BY first_line",
            )
            .map_err(db("read the task log"))?;
        let mut rows = select
            .query(params![deployment.0, start])
            .map_err(db("read the task log"))?;
        while lines.len() < limit {
            let Some(row) = rows.next().map_err(db("read the task log"))? else {
                break;
            };
            let first: i64 = row.get(0).map_err(db("read the task log"))?;
            let data = row
                .get_ref(1)
                .and_then(|v| Ok(v.as_blob()?))
                .map_err(db("read the task log"))?;
            let skip = usize::try_from(after_i - first).unwrap_or(0);
            let keep = limit - lines.len();
            log_codec::decode_into(data, skip, keep, &mut lines)
                .map_err(|e| StoreError::unavailable("read the task log", e))?;
        }
    }
    let next = LogCursor(after.0 + lines.len() as u64);
    Ok(LogPage { lines, next })
}

// ----- variables -----

fn scope_of(environments: &[String]) -> String {
    let mut environments: Vec<&str> = environments.iter().map(String::as_str).collect();
    environments.sort_unstable();
    environments.dedup();
    environments.join("\n")
}

fn variable_row(row: &Row<'_>) -> rusqlite::Result<Variable> {
    let scope: String = row.get(4)?;
    Ok(Variable {
        id: VariableId(row.get(0)?),
        project: ProjectId(row.get(1)?),
        name: row.get(2)?,
        value: row.get(3)?,
        environments: if scope.is_empty() {
            Vec::new()
        } else {
            scope.split('\n').map(str::to_owned).collect()
        },
        sensitive: row.get(5)?,
    })
}

const VARIABLE_COLUMNS: &str = "id, project_id, name, value, scope, sensitive";

pub(super) fn set_variable(conn: &mut Connection, variable: &NewVariable) -> StoreResult<Variable> {
    let tx = conn.transaction().map_err(db("set a variable"))?;
    require_project(&tx, variable.project)?;
    let stored = tx
        .prepare_cached(&format!(
            "INSERT INTO variables (project_id, name, name_key, scope, value, sensitive)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (project_id, name_key, scope) DO UPDATE SET name = excluded.name,
                 value = excluded.value, sensitive = excluded.sensitive
             RETURNING {VARIABLE_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![
                    variable.project.0,
                    variable.name,
                    variable.name.to_lowercase(),
                    scope_of(&variable.environments),
                    variable.value,
                    variable.sensitive
                ],
                variable_row,
            )
        })
        .map_err(db("set a variable"))?;
    tx.commit().map_err(db("set a variable"))?;
    Ok(stored)
}

pub(super) fn list_variables(
    conn: &mut Connection,
    project: ProjectId,
) -> StoreResult<Vec<Variable>> {
    let tx = conn.transaction().map_err(db("list variables"))?;
    require_project(&tx, project)?;
    tx.prepare_cached(&format!(
        "SELECT {VARIABLE_COLUMNS} FROM variables WHERE project_id = ?1 ORDER BY name_key, scope"
    ))
    .and_then(|mut s| s.query_map([project.0], variable_row)?.collect())
    .map_err(db("list variables"))
}

pub(super) fn delete_variable(conn: &mut Connection, id: VariableId) -> StoreResult<()> {
    let deleted = conn
        .prepare_cached("DELETE FROM variables WHERE id = ?1")
        .and_then(|mut s| s.execute([id.0]))
        .map_err(db("delete a variable"))?;
    if deleted == 0 {
        return Err(StoreError::not_found(format!("variable {id}")));
    }
    Ok(())
}

// ----- API tokens -----

const TOKEN_COLUMNS: &str = "id, name, hash, role, created_at, last_used_at, expires_at, revoked";

fn token_row(row: &Row<'_>) -> rusqlite::Result<ApiToken> {
    let hash = row.get_ref(2)?.as_blob()?;
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| conversion(2, format!("token hash of {} bytes", hash.len())))?;
    Ok(ApiToken {
        id: TokenId(row.get(0)?),
        name: row.get(1)?,
        hash: TokenHash(hash),
        role: row.get(3)?,
        created_at: time(row, 4)?,
        last_used_at: opt_time(row, 5)?,
        expires_at: opt_time(row, 6)?,
        revoked: row.get(7)?,
    })
}

pub(super) fn create_token(conn: &mut Connection, token: &NewApiToken) -> StoreResult<ApiToken> {
    conn.prepare_cached(&format!(
        "INSERT INTO api_tokens (name, hash, role, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5) RETURNING {TOKEN_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                token.name,
                &token.hash.0[..],
                token.role,
                now_ms(),
                token.expires_at.map(ms)
            ],
            token_row,
        )
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict("a token with this hash already exists")
        } else {
            StoreError::unavailable("create a token", e)
        }
    })
}

pub(super) fn find_token_by_hash(
    conn: &mut Connection,
    hash: &TokenHash,
) -> StoreResult<Option<ApiToken>> {
    conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = ?1"
    ))
    .and_then(|mut s| s.query_row([&hash.0[..]], token_row).optional())
    .map_err(db("read a token"))
}

pub(super) fn list_tokens(conn: &mut Connection) -> StoreResult<Vec<ApiToken>> {
    conn.prepare_cached(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"
    ))
    .and_then(|mut s| s.query_map([], token_row)?.collect())
    .map_err(db("list tokens"))
}

fn update_token(conn: &Connection, sql: &str, id: TokenId, value: i64) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute(params![id.0, value]))
        .map_err(db("update a token"))?;
    if changed == 0 {
        return Err(StoreError::not_found(format!("token {id}")));
    }
    Ok(())
}

pub(super) fn touch_token(
    conn: &mut Connection,
    id: TokenId,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    update_token(
        conn,
        "UPDATE api_tokens SET last_used_at = MAX(COALESCE(last_used_at, 0), ?2) WHERE id = ?1",
        id,
        ms(at),
    )
}

pub(super) fn revoke_token(conn: &mut Connection, id: TokenId) -> StoreResult<()> {
    update_token(
        conn,
        "UPDATE api_tokens SET revoked = ?2 WHERE id = ?1",
        id,
        1,
    )
}

// ----- settings -----

pub(super) fn get_setting(conn: &mut Connection, key: &str) -> StoreResult<Option<String>> {
    conn.prepare_cached("SELECT value FROM settings WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(db("read a setting"))
}

pub(super) fn set_setting(
    conn: &mut Connection,
    key: &str,
    value: &str,
    replace: bool,
) -> StoreResult<bool> {
    let sql = if replace {
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    } else {
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING"
    };
    let changed = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute([key, value]))
        .map_err(db("write a setting"))?;
    Ok(changed == 1)
}

// ----- environment policies -----

const POLICY_COLUMNS: &str = "project_id, environment, allowed_branches, updated_at";

fn policy_row(row: &Row<'_>) -> rusqlite::Result<EnvironmentPolicy> {
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

pub(super) fn set_environment_policy(
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

pub(super) fn find_environment_policy(
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

pub(super) fn list_environment_policies(
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

pub(super) fn delete_environment_policy(
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

// ----- audit log -----

const AUDIT_COLUMNS: &str = "id, at, actor, action, target, source, outcome, detail";

fn audit_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: AuditId(row.get(0)?),
        at: time(row, 1)?,
        actor: row.get(2)?,
        action: row.get(3)?,
        target: row.get(4)?,
        source: row.get(5)?,
        outcome: row.get(6)?,
        detail: row.get(7)?,
    })
}

pub(super) fn append_audit(
    conn: &mut Connection,
    entry: &NewAuditEntry,
) -> StoreResult<AuditEntry> {
    conn.prepare_cached(&format!(
        "INSERT INTO audit_log (at, actor, action, target, source, outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING {AUDIT_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                now_ms(),
                entry.actor,
                entry.action,
                entry.target,
                entry.source,
                entry.outcome,
                entry.detail
            ],
            audit_row,
        )
    })
    .map_err(db("append to the audit log"))
}

pub(super) fn list_audit(
    conn: &mut Connection,
    page: PageRequest,
) -> StoreResult<Page<AuditEntry>> {
    let rows: Vec<AuditEntry> = conn
        .prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE (?1 IS NULL OR id < ?1)
             ORDER BY id DESC LIMIT ?2"
        ))
        .and_then(|mut s| {
            s.query_map(
                params![page.after.map(|c| c.0), limit_plus_one(page)],
                audit_row,
            )?
            .collect()
        })
        .map_err(db("read the audit log"))?;
    Ok(paginate(rows, page, |e| e.id.0))
}

// ----- monitoring -----

pub(super) fn totals(conn: &mut Connection) -> StoreResult<crate::model::Totals> {
    let rows: Vec<(String, String, i64)> = conn
        .prepare_cached("SELECT name, label, value FROM totals")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .map_err(db("read the totals"))?;
    let mut totals = crate::model::Totals::default();
    for (name, label, value) in rows {
        let value = u64::try_from(value).unwrap_or(0);
        match name.as_str() {
            "deliveries" => {
                totals.deliveries.insert(label, value);
            }
            "deployments" => {
                totals.deployments.insert(label, value);
            }
            "steps" => totals.steps.entry(label).or_default().0 = value,
            "step_ms" => totals.steps.entry(label).or_default().1 = value,
            _ => {}
        }
    }
    Ok(totals)
}
