//! Deployments and their steps: queuing, claiming, leases, finishing, cancelling, interrupting (each a compare-and-set with the core's state machine), listings and the dashboard's latest deployments.

use super::*;

pub(in crate::sqlite) const DEPLOYMENT_COLUMNS: &str = "id, release_id, project_id, environment, state, queued_at, \
     started_at, finished_at, error, cancel_requested, claimed_by, lease_until, log_lines, kind, forward, \
     created_by, approval_roles, approvals_required, approval_not_by, approval_deadline, \
     retry_of, retry_from_failed_step";

pub(in crate::sqlite) fn deployment_state(
    row: &Row<'_>,
    index: usize,
) -> rusqlite::Result<DeploymentState> {
    let text = row.get_ref(index)?.as_str()?;
    DeploymentState::parse(text)
        .ok_or_else(|| conversion(index, format!("unknown deployment state {text}")))
}

pub(in crate::sqlite) fn deployment_row(row: &Row<'_>) -> rusqlite::Result<Deployment> {
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
        kind: {
            let text = row.get_ref(13)?.as_str()?;
            DeploymentKind::parse(text)
                .ok_or_else(|| conversion(13, format!("unknown deployment kind {text}")))?
        },
        forward: row.get(14)?,
        created_by: row.get(15)?,
        approval: match row.get::<_, Option<String>>(16)? {
            Some(roles) => Some(ApprovalRule {
                roles: roles
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect(),
                count: u32::try_from(row.get::<_, i64>(17)?).unwrap_or(1),
                not_by: row.get(18)?,
                deadline: time(row, 19)?,
            }),
            None => None,
        },
        retry_of: row
            .get::<_, Option<i64>>(20)?
            .map(|id| RetryOf {
                deployment: DeploymentId(id),
                from_failed_step: false,
            })
            .map(|mut retry| -> rusqlite::Result<RetryOf> {
                retry.from_failed_step = row.get(21)?;
                Ok(retry)
            })
            .transpose()?,
    })
}

pub(in crate::sqlite) fn insert_deployment(
    tx: &Transaction<'_>,
    deployment: &NewDeployment,
) -> StoreResult<Deployment> {
    insert_deployment_of(tx, deployment, DeploymentKind::Tako, None)
}

/// Queues a deployment of `kind` (a forwarded one with its first `forward`
/// record).
pub(in crate::sqlite) fn insert_deployment_of(
    tx: &Transaction<'_>,
    deployment: &NewDeployment,
    kind: DeploymentKind,
    forward: Option<&str>,
) -> StoreResult<Deployment> {
    let project: i64 = tx
        .prepare_cached("SELECT project_id FROM releases WHERE id = ?1")
        .and_then(|mut s| s.query_row([deployment.release.0], |r| r.get(0)).optional())
        .map_err(db("create a deployment"))?
        .ok_or_else(|| StoreError::not_found(format!("release {}", deployment.release)))?;
    let approval = deployment.approval.as_ref();
    let state = if deployment.hold {
        DeploymentState::Held
    } else if approval.is_some() {
        DeploymentState::AwaitingApproval
    } else {
        DeploymentState::Queued
    };
    tx.prepare_cached(&format!(
        "INSERT INTO deployments (release_id, project_id, environment, state, queued_at, kind, forward,
             created_by, approval_roles, approvals_required, approval_not_by, approval_deadline,
             retry_of, retry_from_failed_step)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) RETURNING {DEPLOYMENT_COLUMNS}"
    ))
    .and_then(|mut s| {
        s.query_row(
            params![
                deployment.release.0,
                project,
                deployment.environment,
                state.as_str(),
                now_ms(),
                kind.as_str(),
                forward,
                deployment.created_by,
                approval.map(|a| a.roles.join(",")),
                approval.map(|a| i64::from(a.count.max(1))),
                approval.and_then(|a| a.not_by.clone()),
                approval.map(|a| ms(a.deadline)),
                deployment.retry_of.map(|r| r.deployment.0),
                deployment.retry_of.is_some_and(|r| r.from_failed_step),
            ],
            deployment_row,
        )
    })
    .map_err(db("create a deployment"))
}

pub(in crate::sqlite) fn latest_deployments(
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

pub(in crate::sqlite) fn release_deployments(
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
pub(in crate::sqlite) fn prefixed(prefix: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{prefix}{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(in crate::sqlite) fn select_deployment(
    conn: &Connection,
    id: DeploymentId,
) -> StoreResult<Deployment> {
    conn.prepare_cached(&format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id.0], deployment_row).optional())
    .map_err(db("read a deployment"))?
    .ok_or_else(|| StoreError::not_found(format!("deployment {id}")))
}

pub(in crate::sqlite) fn get_deployment(
    conn: &mut Connection,
    id: DeploymentId,
) -> StoreResult<Deployment> {
    select_deployment(conn, id)
}

pub(in crate::sqlite) fn list_deployments(
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

pub(in crate::sqlite) fn claim_next_deployment(
    conn: &mut Connection,
    node: &NodeId,
    lease: Duration,
    max_running: u32,
) -> StoreResult<Option<Deployment>> {
    let tx = conn.transaction().map_err(db("claim a deployment"))?;
    let running: i64 = tx
        .prepare_cached(
            "SELECT COUNT(*) FROM deployments WHERE state = 'running' AND claimed_by = ?1",
        )
        .and_then(|mut s| s.query_row(params![node.0], |r| r.get(0)))
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
            "UPDATE deployments SET state = 'running', claimed_by = ?1, lease_until = ?2,
                 started_at = COALESCE(started_at, ?3)
             WHERE id = (SELECT q.id FROM deployments q
                         WHERE q.state IN ({queued})
                           AND NOT EXISTS (SELECT 1 FROM deployments r
                                           WHERE r.state = 'running' AND r.project_id = q.project_id
                                             AND r.environment = q.environment)
                         ORDER BY q.id LIMIT 1)
             RETURNING {DEPLOYMENT_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![node.0, lease_until(now, lease), now],
                deployment_row,
            )
            .optional()
        })
        .map_err(db("claim a deployment"))?;
    tx.commit().map_err(db("claim a deployment"))?;
    Ok(claimed)
}

pub(in crate::sqlite) fn renew_deployment_lease(
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

pub(in crate::sqlite) fn finish_deployment(
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

pub(in crate::sqlite) fn request_cancel(
    conn: &mut Connection,
    id: DeploymentId,
) -> StoreResult<Deployment> {
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
pub(in crate::sqlite) const INTERRUPTED: &str = "interrupted: the server running it stopped";

pub(in crate::sqlite) fn interrupt_running(
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
            })
            .map_err(db("interrupt deployments"))?,
        InterruptScope::ExpiredLeases { lease } => {
            expire_leases(&tx, &expected, now, *lease).map_err(db("interrupt deployments"))?
        }
    };
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

/// Marks the running deployments whose lease ran out `interrupted`, each
/// with the node that held it and when it was last heard of.
fn expire_leases(
    tx: &rusqlite::Transaction<'_>,
    expected: &str,
    now: i64,
    lease: std::time::Duration,
) -> rusqlite::Result<Vec<DeploymentId>> {
    let expired: Vec<(i64, Option<String>, Option<DateTime<Utc>>)> = tx
        .prepare_cached(&format!(
            "SELECT id, claimed_by, lease_until FROM deployments
             WHERE state IN ({expected}) AND (lease_until IS NULL OR lease_until <= ?1)"
        ))?
        .query_map([now], |r| Ok((r.get(0)?, r.get(1)?, opt_time(r, 2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = tx.prepare_cached(
        "UPDATE deployments SET state = 'interrupted', finished_at = ?2,
             error = COALESCE(error, ?3), lease_until = NULL
         WHERE id = ?1",
    )?;
    let mut ids = Vec::with_capacity(expired.len());
    for (id, node, until) in expired {
        let until = until
            .or_else(|| DateTime::from_timestamp_millis(now))
            .unwrap_or_else(Utc::now);
        let error = crate::model::lease_expired_error(node.as_deref(), until, lease);
        update.execute(params![id, now, error])?;
        ids.push(DeploymentId(id));
    }
    Ok(ids)
}

pub(in crate::sqlite) fn step_row(row: &Row<'_>) -> rusqlite::Result<StepRecord> {
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

pub(in crate::sqlite) fn update_step(
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

pub(in crate::sqlite) fn list_steps(
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

/// Keeps step `index`'s output variables (already sealed) on its row.
pub(in crate::sqlite) fn set_step_outputs(
    conn: &mut Connection,
    deployment: DeploymentId,
    index: u32,
    sealed: &str,
) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE deployment_steps SET outputs = ?3 WHERE deployment_id = ?1 AND step_index = ?2",
        )
        .and_then(|mut s| s.execute(params![deployment.0, index, sealed]))
        .map_err(db("record a step's outputs"))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("step {index} of deployment {deployment}"),
        });
    }
    Ok(())
}

/// The sealed output variables kept for a deployment's steps.
pub(in crate::sqlite) fn step_outputs(
    conn: &mut Connection,
    deployment: DeploymentId,
) -> StoreResult<Vec<(u32, String)>> {
    conn.prepare_cached(
        "SELECT step_index, outputs FROM deployment_steps
         WHERE deployment_id = ?1 AND outputs IS NOT NULL ORDER BY step_index",
    )
    .and_then(|mut s| {
        s.query_map([deployment.0], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    })
    .map_err(db("read the steps' outputs"))
}

/// Puts `node`'s running deployments that wait on an agent's live job back
/// in the queue (their place kept: the oldest first), to be resumed.
pub(in crate::sqlite) fn requeue_waiting_on_agents(
    conn: &mut Connection,
    node: &NodeId,
) -> StoreResult<Vec<DeploymentId>> {
    conn.prepare_cached(
        "UPDATE deployments SET state = 'queued', claimed_by = NULL, lease_until = NULL
         WHERE state = 'running' AND claimed_by = ?1 AND cancel_requested = 0
           AND (kind = 'octopus'
                OR EXISTS (SELECT 1 FROM jobs j WHERE j.deployment_id = deployments.id
                                               AND j.state IN ('pending', 'running'))
                OR EXISTS (SELECT 1 FROM jobs j JOIN deployment_steps s
                                    ON s.deployment_id = j.deployment_id
                                   AND s.step_index = j.step_index
                            WHERE j.deployment_id = deployments.id AND s.state = 'running'))
         RETURNING id",
    )
    .and_then(|mut s| {
        s.query_map([&node.0], |r| r.get(0).map(DeploymentId))?
            .collect()
    })
    .map_err(db("requeue deployments waiting on agents"))
}

pub(in crate::sqlite) fn set_deployment_forward(
    conn: &mut Connection,
    id: DeploymentId,
    forward: &str,
) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("UPDATE deployments SET forward = ?2 WHERE id = ?1 AND kind = 'octopus'")
        .and_then(|mut s| s.execute(params![id.0, forward]))
        .map_err(db("record a forward's progress"))?;
    if changed == 0 {
        return Err(StoreError::not_found(format!("forwarded deployment {id}")));
    }
    Ok(())
}

fn approval_row(row: &Row<'_>) -> rusqlite::Result<Approval> {
    Ok(Approval {
        deployment: DeploymentId(row.get(0)?),
        by: row.get(1)?,
        role: row.get(2)?,
        approve: row.get(3)?,
        note: row.get(4)?,
        at: time(row, 5)?,
    })
}

pub(in crate::sqlite) fn list_approvals(
    conn: &mut Connection,
    id: DeploymentId,
) -> StoreResult<Vec<Approval>> {
    conn.prepare_cached(
        "SELECT deployment_id, by_name, by_role, approve, note, at FROM deployment_approvals
         WHERE deployment_id = ?1 ORDER BY id",
    )
    .and_then(|mut s| s.query_map([id.0], approval_row)?.collect())
    .map_err(db("read a deployment's approvals"))
}

/// Records an approval or a rejection of a deployment awaiting approval:
/// a rejection cancels it, the approval that completes the count queues it.
pub(in crate::sqlite) fn record_approval(
    conn: &mut Connection,
    id: DeploymentId,
    decision: &NewApproval,
) -> StoreResult<Deployment> {
    let tx = conn.transaction().map_err(db("record an approval"))?;
    let current = select_deployment(&tx, id)?;
    let event = if decision.approve {
        DeploymentEvent::Approve
    } else {
        DeploymentEvent::Cancel
    };
    if current.state != DeploymentState::AwaitingApproval {
        return Err(StoreError::InvalidTransition {
            what: format!("deployment {id}"),
            from: current.state.to_string(),
            to: if decision.approve {
                "approved"
            } else {
                "rejected"
            }
            .to_owned(),
        });
    }
    let inserted = tx
        .prepare_cached(
            "INSERT INTO deployment_approvals (deployment_id, by_name, by_role, approve, note, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![
                id.0,
                decision.by,
                decision.role,
                decision.approve,
                decision.note,
                now_ms()
            ])
        });
    match inserted {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
            return Err(StoreError::Conflict {
                what: format!("{} has already decided on deployment {id}", decision.by),
            });
        }
        other => {
            other.map_err(db("record an approval"))?;
        }
    }
    let approvals: i64 = tx
        .prepare_cached(
            "SELECT count(*) FROM deployment_approvals WHERE deployment_id = ?1 AND approve = 1",
        )
        .and_then(|mut s| s.query_row([id.0], |r| r.get(0)))
        .map_err(db("record an approval"))?;
    let required = current.approval.as_ref().map_or(1, |a| a.count.max(1));
    let expected = state_list(&event.applies_to(), DeploymentState::as_str);
    let updated = if !decision.approve {
        let note = decision.note.trim();
        let reason = if note.is_empty() {
            format!("rejected by {}", decision.by)
        } else {
            format!("rejected by {}: {note}", decision.by)
        };
        tx.prepare_cached(&format!(
            "UPDATE deployments SET state = 'cancelled', error = ?2, finished_at = ?3
             WHERE id = ?1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
        ))
        .and_then(|mut s| s.query_row(params![id.0, reason, now_ms()], deployment_row))
        .map_err(db("record a rejection"))?
    } else if approvals >= i64::from(required) {
        tx.prepare_cached(&format!(
            "UPDATE deployments SET state = 'queued'
             WHERE id = ?1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
        ))
        .and_then(|mut s| s.query_row([id.0], deployment_row))
        .map_err(db("record an approval"))?
    } else {
        current
    };
    tx.commit().map_err(db("record an approval"))?;
    Ok(updated)
}

/// Cancels every deployment still awaiting approval at its deadline.
pub(in crate::sqlite) fn expire_approvals(
    conn: &mut Connection,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Deployment>> {
    let tx = conn.transaction().map_err(db("expire approvals"))?;
    let expected = state_list(
        &DeploymentEvent::Cancel.applies_to(),
        DeploymentState::as_str,
    );
    let expired: Vec<Deployment> = tx
        .prepare_cached(&format!(
            "UPDATE deployments SET state = 'cancelled', finished_at = ?1,
                 error = 'approval timed out: not approved by ' ||
                         strftime('%Y-%m-%dT%H:%M:%SZ', approval_deadline / 1000, 'unixepoch')
             WHERE state = 'awaiting_approval' AND state IN ({expected})
               AND approval_deadline <= ?1 RETURNING {DEPLOYMENT_COLUMNS}"
        ))
        .and_then(|mut s| s.query_map([ms(now)], deployment_row)?.collect())
        .map_err(db("expire approvals"))?;
    tx.commit().map_err(db("expire approvals"))?;
    Ok(expired)
}
