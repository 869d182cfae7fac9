//! Deployments and their steps: queuing, claiming (serialised cluster-wide
//! by an advisory lock, rows taken with `FOR UPDATE SKIP LOCKED`), leases,
//! finishing, cancelling, interrupting (each a compare-and-set with the
//! core's state machine), listings and the dashboard's latest deployments.

use super::*;

pub(in crate::postgres) const DEPLOYMENT_COLUMNS: &str = "id, release_id, project_id, environment, state, queued_at, \
     started_at, finished_at, error, cancel_requested, claimed_by, lease_until, log_lines, kind, forward, \
     created_by, approval_roles, approvals_required, approval_not_by, approval_deadline, \
     retry_of, retry_from_failed_step";

/// The advisory lock that makes deployment claims one at a time across the
/// cluster (`takoclai`): the running count and the per-environment rule
/// are then read after the previous claim committed.
const CLAIM_LOCK: i64 = 0x7461_6b6f_636c_6169;

pub(in crate::postgres) fn deployment_row(row: &Row) -> StoreResult<Deployment> {
    let state: &str = get(row, 4)?;
    Ok(Deployment {
        id: DeploymentId(get(row, 0)?),
        release: ReleaseId(get(row, 1)?),
        project: ProjectId(get(row, 2)?),
        environment: get(row, 3)?,
        state: DeploymentState::parse(state)
            .ok_or_else(|| corrupt(format!("unknown deployment state {state}")))?,
        queued_at: time(row, 5)?,
        started_at: opt_time(row, 6)?,
        finished_at: opt_time(row, 7)?,
        error: get(row, 8)?,
        cancel_requested: get(row, 9)?,
        claimed_by: get::<Option<String>>(row, 10)?.map(NodeId),
        lease_until: opt_time(row, 11)?,
        log_lines: unsigned(row, 12)?,
        kind: {
            let kind: &str = get(row, 13)?;
            DeploymentKind::parse(kind)
                .ok_or_else(|| corrupt(format!("unknown deployment kind {kind}")))?
        },
        forward: get(row, 14)?,
        created_by: get(row, 15)?,
        approval: match get::<Option<String>>(row, 16)? {
            Some(roles) => Some(ApprovalRule {
                roles: roles
                    .split(',')
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect(),
                count: u32::try_from(get::<i64>(row, 17)?).unwrap_or(1),
                not_by: get(row, 18)?,
                deadline: time(row, 19)?,
            }),
            None => None,
        },
        retry_of: match get::<Option<i64>>(row, 20)? {
            Some(id) => Some(RetryOf {
                deployment: DeploymentId(id),
                from_failed_step: get(row, 21)?,
            }),
            None => None,
        },
    })
}

pub(in crate::postgres) async fn insert_deployment(
    tx: &Tx<'_>,
    deployment: &NewDeployment,
) -> StoreResult<Deployment> {
    insert_deployment_of(tx, deployment, DeploymentKind::Tako, None).await
}

/// Queues a deployment of `kind` (a forwarded one with its first `forward`
/// record); one with an approval rule awaits approval.
pub(in crate::postgres) async fn insert_deployment_of(
    tx: &Tx<'_>,
    deployment: &NewDeployment,
    kind: DeploymentKind,
    forward: Option<&str>,
) -> StoreResult<Deployment> {
    const CONTEXT: &str = "create a deployment";
    let project: i64 = match opt(
        tx,
        "SELECT project_id FROM releases WHERE id = $1",
        &[&deployment.release.0],
    )
    .await
    .map_err(db(CONTEXT))?
    {
        Some(row) => get(&row, 0)?,
        None => {
            return Err(StoreError::not_found(format!(
                "release {}",
                deployment.release
            )));
        }
    };
    let approval = deployment.approval.as_ref();
    let state = if deployment.hold {
        DeploymentState::Held
    } else if approval.is_some() {
        DeploymentState::AwaitingApproval
    } else {
        DeploymentState::Queued
    };
    let row = one(
        tx,
        &format!(
            "INSERT INTO deployments (release_id, project_id, environment, state, queued_at, kind, forward,
                 created_by, approval_roles, approvals_required, approval_not_by, approval_deadline,
                 retry_of, retry_from_failed_step)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             RETURNING {DEPLOYMENT_COLUMNS}"
        ),
        &[
            &deployment.release.0,
            &project,
            &deployment.environment,
            &state.as_str(),
            &now_ms(),
            &kind.as_str(),
            &forward,
            &deployment.created_by,
            &approval.map(|a| a.roles.join(",")),
            &approval.map(|a| i64::from(a.count.max(1))),
            &approval.and_then(|a| a.not_by.clone()),
            &approval.map(|a| ms(a.deadline)),
            &deployment.retry_of.map(|r| r.deployment.0),
            &deployment.retry_of.is_some_and(|r| r.from_failed_step),
        ],
    )
    .await
    .map_err(db(CONTEXT))?;
    deployment_row(&row)
}

pub(in crate::postgres) async fn latest_deployments(
    client: &Client,
    project: Option<ProjectId>,
) -> StoreResult<Vec<Deployment>> {
    let columns = prefixed("d.", DEPLOYMENT_COLUMNS);
    let found = all(
        client,
        &format!(
            "SELECT {columns} FROM latest_deployments l JOIN deployments d ON d.id = l.deployment_id
             WHERE $1::BIGINT IS NULL OR l.project_id = $1
             ORDER BY l.project_id, l.environment COLLATE \"C\""
        ),
        &[&project.map(|p| p.0)],
    )
    .await
    .map_err(db("read the latest deployments"))?;
    rows(found, deployment_row)
}

pub(in crate::postgres) async fn release_deployments(
    client: &Client,
    releases: &[ReleaseId],
) -> StoreResult<Vec<Deployment>> {
    let ids: Vec<i64> = releases.iter().map(|r| r.0).collect();
    let found = all(
        client,
        &format!(
            "SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id IN (
                 SELECT max(id) FROM deployments
                 WHERE release_id = ANY($1)
                 GROUP BY release_id, environment)
             ORDER BY release_id, environment COLLATE \"C\""
        ),
        &[&ids],
    )
    .await
    .map_err(db("read a release's deployments"))?;
    rows(found, deployment_row)
}

/// `columns` (comma-separated) each with `prefix`.
pub(in crate::postgres) fn prefixed(prefix: &str, columns: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{prefix}{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(in crate::postgres) async fn select_deployment<C: GenericClient>(
    c: &C,
    id: DeploymentId,
    lock: bool,
) -> StoreResult<Deployment> {
    let sql = if lock {
        format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1 FOR UPDATE")
    } else {
        format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = $1")
    };
    match opt(c, &sql, &[&id.0])
        .await
        .map_err(db("read a deployment"))?
    {
        Some(row) => deployment_row(&row),
        None => Err(StoreError::not_found(format!("deployment {id}"))),
    }
}

pub(in crate::postgres) async fn list_deployments(
    client: &Client,
    filter: &DeploymentFilter,
    page: PageRequest,
) -> StoreResult<Page<Deployment>> {
    // Only the filters given are in the statement, so the planner can
    // choose the index that serves them.
    let project = filter.project.map(|p| p.0);
    let state = filter.state.map(DeploymentState::as_str);
    let after = page.after.map(|c| c.0);
    let limit = limit_plus_one(page);
    let mut conditions = Vec::new();
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
    if let Some(project) = &project {
        params.push(project);
        conditions.push(format!("project_id = ${}", params.len()));
    }
    if let Some(environment) = &filter.environment {
        params.push(environment);
        conditions.push(format!("environment = ${}", params.len()));
    }
    if let Some(state) = &state {
        params.push(state);
        conditions.push(format!("state = ${}", params.len()));
    }
    if let Some(after) = &after {
        params.push(after);
        conditions.push(format!("id < ${}", params.len()));
    }
    let mut sql = format!("SELECT {DEPLOYMENT_COLUMNS} FROM deployments");
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&conditions.join(" AND "));
    }
    params.push(&limit);
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", params.len()));
    let found = all(client, &sql, &params)
        .await
        .map_err(db("list deployments"))?;
    Ok(paginate(rows(found, deployment_row)?, page, |d| d.id.0))
}

pub(in crate::postgres) async fn claim_next_deployment(
    client: &mut Client,
    node: &NodeId,
    lease: Duration,
    max_running: u32,
) -> StoreResult<Option<Deployment>> {
    const CONTEXT: &str = "claim a deployment";
    if max_running == 0 {
        return Ok(None);
    }
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK])
        .await
        .map_err(db(CONTEXT))?;
    let running: i64 = get(
        &one(
            &tx,
            "SELECT COUNT(*) FROM deployments WHERE state = 'running' AND claimed_by = $1",
            &[&node.0],
        )
        .await
        .map_err(db(CONTEXT))?,
        0,
    )?;
    if running >= i64::from(max_running) {
        return Ok(None);
    }
    let now = now_ms();
    let queued = state_list(
        &DeploymentEvent::Claim.applies_to(),
        DeploymentState::as_str,
    );
    // The oldest queued deployment whose project and environment has none
    // running and none queued before it (a row a cancel holds is skipped,
    // not waited for). The unique index on running rows is the last word.
    let claimed = opt(
        &tx,
        &format!(
            "UPDATE deployments SET state = 'running', claimed_by = $1, lease_until = $2,
                 started_at = COALESCE(started_at, $3)
             WHERE id = (SELECT q.id FROM deployments q
                         WHERE q.state IN ({queued})
                           AND NOT EXISTS (SELECT 1 FROM deployments r
                                           WHERE r.state = 'running' AND r.project_id = q.project_id
                                             AND r.environment = q.environment)
                           AND NOT EXISTS (SELECT 1 FROM deployments o
                                           WHERE o.state IN ({queued}) AND o.project_id = q.project_id
                                             AND o.environment = q.environment AND o.id < q.id)
                         ORDER BY q.id LIMIT 1
                         FOR UPDATE SKIP LOCKED)
             RETURNING {DEPLOYMENT_COLUMNS}"
        ),
        &[&node.0, &lease_until(now, lease), &now],
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::conflict(
                "another deployment of this project and environment is running already",
            )
        } else {
            db(CONTEXT)(e)
        }
    })?;
    let claimed = claimed.map(|row| deployment_row(&row)).transpose()?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(claimed)
}

pub(in crate::postgres) async fn renew_deployment_lease(
    client: &Client,
    id: DeploymentId,
    node: &NodeId,
    lease: Duration,
) -> StoreResult<DateTime<Utc>> {
    let until = lease_until(now_ms(), lease);
    let renewed = opt(
        client,
        "UPDATE deployments SET lease_until = $3
         WHERE id = $1 AND state = 'running' AND claimed_by = $2 RETURNING lease_until",
        &[&id.0, &node.0, &until],
    )
    .await
    .map_err(db("renew a lease"))?;
    match renewed {
        Some(row) => time(&row, 0),
        None => {
            let deployment = select_deployment(client, id, false).await?;
            Err(StoreError::conflict(format!(
                "deployment {id} is {} and not held by node {node}",
                deployment.state
            )))
        }
    }
}

pub(in crate::postgres) async fn finish_deployment(
    client: &mut Client,
    id: DeploymentId,
    state: DeploymentState,
    error: Option<String>,
) -> StoreResult<Deployment> {
    const CONTEXT: &str = "finish a deployment";
    let event = DeploymentEvent::Finish(state);
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    let current = select_deployment(&tx, id, true).await?;
    let next = current
        .state
        .after(event)
        .map_err(|e| refused(format!("deployment {id}"), e))?;
    let expected = state_list(&event.applies_to(), DeploymentState::as_str);
    let finished = opt(
        &tx,
        &format!(
            "UPDATE deployments SET state = $2, error = $3, finished_at = $4, lease_until = NULL
             WHERE id = $1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
        ),
        &[&id.0, &next.as_str(), &error, &now_ms()],
    )
    .await
    .map_err(db(CONTEXT))?;
    let Some(finished) = finished else {
        return Err(StoreError::InvalidTransition {
            what: format!("deployment {id}"),
            from: current.state.to_string(),
            to: next.to_string(),
        });
    };
    let finished = deployment_row(&finished)?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(finished)
}

pub(in crate::postgres) async fn request_cancel(
    client: &mut Client,
    id: DeploymentId,
) -> StoreResult<Deployment> {
    const CONTEXT: &str = "cancel a deployment";
    let event = DeploymentEvent::Cancel;
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    let current = select_deployment(&tx, id, true).await?;
    let next = current
        .state
        .after(event)
        .map_err(|e| refused(format!("deployment {id}"), e))?;
    let finished_at = next.is_final().then(now_ms);
    let updated = opt(
        &tx,
        &format!(
            "UPDATE deployments SET state = $2, cancel_requested = TRUE,
                 finished_at = COALESCE($3, finished_at)
             WHERE id = $1 AND state = $4 RETURNING {DEPLOYMENT_COLUMNS}"
        ),
        &[&id.0, &next.as_str(), &finished_at, &current.state.as_str()],
    )
    .await
    .map_err(db(CONTEXT))?;
    let Some(updated) = updated else {
        return Err(StoreError::InvalidTransition {
            what: format!("deployment {id}"),
            from: current.state.to_string(),
            to: DeploymentState::Cancelled.to_string(),
        });
    };
    let updated = deployment_row(&updated)?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(updated)
}

/// The error recorded on a deployment ended by [`interrupt_running`].
pub(in crate::postgres) const INTERRUPTED: &str = "interrupted: the server running it stopped";

pub(in crate::postgres) async fn interrupt_running(
    client: &mut Client,
    scope: &InterruptScope,
) -> StoreResult<Vec<DeploymentId>> {
    const CONTEXT: &str = "interrupt deployments";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    let now = now_ms();
    let expected = state_list(
        &DeploymentEvent::Interrupt.applies_to(),
        DeploymentState::as_str,
    );
    let mut ids = match scope {
        InterruptScope::Node(node) => {
            let found = all(
                &tx,
                &format!(
                    "UPDATE deployments SET state = 'interrupted', finished_at = $2,
                     error = COALESCE(error, $3), lease_until = NULL
                 WHERE state IN ({expected}) AND claimed_by = $1 RETURNING id"
                ),
                &[&node.0, &now, &INTERRUPTED],
            )
            .await
            .map_err(db(CONTEXT))?;
            rows(found, |row| get(row, 0).map(DeploymentId))?
        }
        InterruptScope::ExpiredLeases { lease } => {
            // Rows a node is renewing right now are locked: skipped, never
            // swept from under a live renewal.
            let expired = all(
                &tx,
                &format!(
                    "SELECT id, claimed_by, lease_until FROM deployments
                 WHERE state IN ({expected}) AND (lease_until IS NULL OR lease_until <= $1)
                 FOR UPDATE SKIP LOCKED"
                ),
                &[&now],
            )
            .await
            .map_err(db(CONTEXT))?;
            let mut ids = Vec::with_capacity(expired.len());
            for row in &expired {
                let id: i64 = get(row, 0)?;
                let node: Option<String> = get(row, 1)?;
                let until = opt_time(row, 2)?.map_or_else(|| from_ms(now), Ok)?;
                let error = crate::model::lease_expired_error(node.as_deref(), until, *lease);
                exec(
                    &tx,
                    "UPDATE deployments SET state = 'interrupted', finished_at = $2,
                         error = COALESCE(error, $3), lease_until = NULL
                     WHERE id = $1",
                    &[&id, &now, &error],
                )
                .await
                .map_err(db(CONTEXT))?;
                ids.push(DeploymentId(id));
            }
            ids
        }
    };
    let raw: Vec<i64> = ids.iter().map(|id| id.0).collect();
    exec(
        &tx,
        "UPDATE deployment_steps SET state = 'failed', reason = COALESCE(reason, 'interrupted')
         WHERE deployment_id = ANY($1) AND state = 'running'",
        &[&raw],
    )
    .await
    .map_err(db(CONTEXT))?;
    tx.commit().await.map_err(db(CONTEXT))?;
    ids.sort();
    Ok(ids)
}

pub(in crate::postgres) fn step_row(row: &Row) -> StoreResult<StepRecord> {
    let state: &str = get(row, 2)?;
    let state =
        StepRunState::parse(state).ok_or_else(|| corrupt(format!("unknown step state {state}")))?;
    Ok(StepRecord {
        index: step_index(row, 0)?,
        name: get(row, 1)?,
        state,
        reason: get(row, 3)?,
        started_at: opt_time(row, 4)?,
        duration: get::<Option<i64>>(row, 5)?
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
    })
}

/// A step index kept as BIGINT.
pub(in crate::postgres) fn step_index(row: &Row, index: usize) -> StoreResult<u32> {
    let value: i64 = get(row, index)?;
    u32::try_from(value).map_err(|_| corrupt(format!("step index {value} out of range")))
}

pub(in crate::postgres) async fn update_step(
    client: &mut Client,
    deployment: DeploymentId,
    step: &StepRecord,
) -> StoreResult<()> {
    const CONTEXT: &str = "record a step";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    select_deployment(&tx, deployment, false).await?;
    let what = || format!("step {} of deployment {deployment}", step.index);
    let index = i64::from(step.index);
    let current: Option<String> = match opt(
        &tx,
        "SELECT state FROM deployment_steps WHERE deployment_id = $1 AND step_index = $2",
        &[&deployment.0, &index],
    )
    .await
    .map_err(db(CONTEXT))?
    {
        Some(row) => Some(get(&row, 0)?),
        None => None,
    };
    if let Some(current) = current.as_deref().and_then(StepRunState::parse) {
        current
            .may_become(step.state)
            .map_err(|e| refused(what(), e))?;
    }
    let expected = state_list(
        &StepRunState::may_come_from(step.state),
        StepRunState::as_str,
    );
    let changed = exec(
        &tx,
        &format!(
            "INSERT INTO deployment_steps (deployment_id, step_index, name, state, reason, started_at, duration_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (deployment_id, step_index) DO UPDATE SET name = excluded.name,
                 state = excluded.state, reason = excluded.reason, started_at = excluded.started_at,
                 duration_ms = excluded.duration_ms
             WHERE deployment_steps.state IN ({expected})"
        ),
        &[
            &deployment.0,
            &index,
            &step.name,
            &step.state.as_str(),
            &step.reason,
            &step.started_at.map(ms),
            &step
                .duration
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        ],
    )
    .await
    .map_err(db(CONTEXT))?;
    if changed == 0 {
        return Err(StoreError::InvalidTransition {
            what: what(),
            from: current.unwrap_or_default(),
            to: step.state.to_string(),
        });
    }
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(())
}

pub(in crate::postgres) async fn list_steps(
    client: &Client,
    deployment: DeploymentId,
) -> StoreResult<Vec<StepRecord>> {
    select_deployment(client, deployment, false).await?;
    let found = all(
        client,
        "SELECT step_index, name, state, reason, started_at, duration_ms FROM deployment_steps
         WHERE deployment_id = $1 ORDER BY step_index",
        &[&deployment.0],
    )
    .await
    .map_err(db("list steps"))?;
    rows(found, step_row)
}

/// Keeps step `index`'s output variables (already sealed) on its row.
pub(in crate::postgres) async fn set_step_outputs(
    client: &Client,
    deployment: DeploymentId,
    index: u32,
    sealed: &str,
) -> StoreResult<()> {
    let changed = exec(
        client,
        "UPDATE deployment_steps SET outputs = $3 WHERE deployment_id = $1 AND step_index = $2",
        &[&deployment.0, &i64::from(index), &sealed],
    )
    .await
    .map_err(db("record a step's outputs"))?;
    if changed == 0 {
        return Err(StoreError::NotFound {
            what: format!("step {index} of deployment {deployment}"),
        });
    }
    Ok(())
}

/// The sealed output variables kept for a deployment's steps.
pub(in crate::postgres) async fn step_outputs(
    client: &Client,
    deployment: DeploymentId,
) -> StoreResult<Vec<(u32, String)>> {
    let found = all(
        client,
        "SELECT step_index, outputs FROM deployment_steps
         WHERE deployment_id = $1 AND outputs IS NOT NULL ORDER BY step_index",
        &[&deployment.0],
    )
    .await
    .map_err(db("read the steps' outputs"))?;
    rows(found, |row| Ok((step_index(row, 0)?, get(row, 1)?)))
}

/// Puts `node`'s running deployments that wait on an agent's live job back
/// in the queue (their place kept: the oldest first), to be resumed.
pub(in crate::postgres) async fn requeue_waiting_on_agents(
    client: &Client,
    node: &NodeId,
) -> StoreResult<Vec<DeploymentId>> {
    let found = all(
        client,
        "UPDATE deployments SET state = 'queued', claimed_by = NULL, lease_until = NULL
         WHERE state = 'running' AND claimed_by = $1 AND NOT cancel_requested
           AND (kind = 'octopus'
                OR EXISTS (SELECT 1 FROM jobs j WHERE j.deployment_id = deployments.id
                                                 AND j.state IN ('pending', 'running'))
                OR EXISTS (SELECT 1 FROM jobs j JOIN deployment_steps s
                                    ON s.deployment_id = j.deployment_id
                                   AND s.step_index = j.step_index
                            WHERE j.deployment_id = deployments.id AND s.state = 'running'))
         RETURNING id",
        &[&node.0],
    )
    .await
    .map_err(db("requeue deployments waiting on agents"))?;
    rows(found, |row| get(row, 0).map(DeploymentId))
}

/// Replaces a forwarded deployment's progress record.
pub(in crate::postgres) async fn set_deployment_forward(
    client: &Client,
    id: DeploymentId,
    forward: &str,
) -> StoreResult<()> {
    let changed = exec(
        client,
        "UPDATE deployments SET forward = $2 WHERE id = $1 AND kind = 'octopus'",
        &[&id.0, &forward],
    )
    .await
    .map_err(db("record a forward's progress"))?;
    if changed == 0 {
        return Err(StoreError::not_found(format!("forwarded deployment {id}")));
    }
    Ok(())
}

fn approval_row(row: &Row) -> StoreResult<Approval> {
    Ok(Approval {
        deployment: DeploymentId(get(row, 0)?),
        by: get(row, 1)?,
        role: get(row, 2)?,
        approve: get(row, 3)?,
        note: get(row, 4)?,
        at: time(row, 5)?,
    })
}

/// A deployment's approvals and rejections, in the order given.
pub(in crate::postgres) async fn list_approvals(
    client: &Client,
    id: DeploymentId,
) -> StoreResult<Vec<Approval>> {
    let found = all(
        client,
        "SELECT deployment_id, by_name, by_role, approve, note, at FROM deployment_approvals
         WHERE deployment_id = $1 ORDER BY id",
        &[&id.0],
    )
    .await
    .map_err(db("read a deployment's approvals"))?;
    rows(found, approval_row)
}

/// Records an approval or a rejection of a deployment awaiting approval:
/// a rejection cancels it, the approval that completes the count queues it.
pub(in crate::postgres) async fn record_approval(
    client: &mut Client,
    id: DeploymentId,
    decision: &NewApproval,
) -> StoreResult<Deployment> {
    const CONTEXT: &str = "record an approval";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    // Locked: two approvers deciding at once count each other.
    let current = select_deployment(&tx, id, true).await?;
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
    let inserted = exec(
        &tx,
        "INSERT INTO deployment_approvals (deployment_id, by_name, by_role, approve, note, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &id.0,
            &decision.by,
            &decision.role,
            &decision.approve,
            &decision.note,
            &now_ms(),
        ],
    )
    .await;
    match inserted {
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Conflict {
                what: format!("{} has already decided on deployment {id}", decision.by),
            });
        }
        other => {
            other.map_err(db(CONTEXT))?;
        }
    }
    let approvals: i64 = get(
        &one(
            &tx,
            "SELECT count(*) FROM deployment_approvals WHERE deployment_id = $1 AND approve",
            &[&id.0],
        )
        .await
        .map_err(db(CONTEXT))?,
        0,
    )?;
    let required = current.approval.as_ref().map_or(1, |a| a.count.max(1));
    let event = if decision.approve {
        DeploymentEvent::Approve
    } else {
        DeploymentEvent::Cancel
    };
    let expected = state_list(&event.applies_to(), DeploymentState::as_str);
    let updated = if !decision.approve {
        let note = decision.note.trim();
        let reason = if note.is_empty() {
            format!("rejected by {}", decision.by)
        } else {
            format!("rejected by {}: {note}", decision.by)
        };
        let row = one(
            &tx,
            &format!(
                "UPDATE deployments SET state = 'cancelled', error = $2, finished_at = $3
                 WHERE id = $1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
            ),
            &[&id.0, &reason, &now_ms()],
        )
        .await
        .map_err(db("record a rejection"))?;
        deployment_row(&row)?
    } else if approvals >= i64::from(required) {
        let row = one(
            &tx,
            &format!(
                "UPDATE deployments SET state = 'queued'
                 WHERE id = $1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
            ),
            &[&id.0],
        )
        .await
        .map_err(db(CONTEXT))?;
        deployment_row(&row)?
    } else {
        current
    };
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(updated)
}

/// Cancels every deployment still awaiting approval at its deadline.
pub(in crate::postgres) async fn expire_approvals(
    client: &Client,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Deployment>> {
    let expected = state_list(
        &DeploymentEvent::Cancel.applies_to(),
        DeploymentState::as_str,
    );
    let found = all(
        client,
        &format!(
            "UPDATE deployments SET state = 'cancelled', finished_at = $1,
                 error = 'approval timed out: not approved by ' ||
                         to_char(to_timestamp(approval_deadline / 1000) AT TIME ZONE 'UTC',
                                 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
             WHERE state = 'awaiting_approval' AND state IN ({expected})
               AND approval_deadline <= $1 RETURNING {DEPLOYMENT_COLUMNS}"
        ),
        &[&ms(now)],
    )
    .await
    .map_err(db("expire approvals"))?;
    rows(found, deployment_row)
}
