//! Deliveries: storing batches, claiming (`FOR UPDATE SKIP LOCKED`),
//! completing (with the release and deployment a push makes), listing and
//! replaying.

use super::*;
use crate::body_codec;

pub(in crate::postgres) const DELIVERY_COLUMNS: &str = "id, event, received_at, repository_url, git_ref, project_id, state, \
     outcome, outcome_reason, release_id, deployment_id, claimed_by, lease_until, completed_at, seq, \
     after_sha, recovered, warnings";

pub(in crate::postgres) fn outcome_of(
    outcome: Option<String>,
    reason: Option<String>,
    release: Option<i64>,
    deployment: Option<i64>,
) -> StoreResult<Option<DeliveryOutcome>> {
    Ok(match outcome.as_deref() {
        None => None,
        Some("queued") => match (release, deployment) {
            (Some(release), Some(deployment)) => Some(DeliveryOutcome::Queued {
                release: ReleaseId(release),
                deployment: DeploymentId(deployment),
            }),
            _ => return Err(corrupt("queued delivery without its release".into())),
        },
        Some("ignored") => Some(DeliveryOutcome::Ignored {
            reason: reason.unwrap_or_default(),
        }),
        Some("failed") => Some(DeliveryOutcome::Failed {
            reason: reason.unwrap_or_default(),
        }),
        Some("duplicate") => Some(DeliveryOutcome::Duplicate),
        Some(other) => return Err(corrupt(format!("unknown delivery outcome {other}"))),
    })
}

/// A delivery and its `seq` (the listing cursor).
pub(in crate::postgres) fn delivery_row(row: &Row) -> StoreResult<(Delivery, i64)> {
    let state = match get::<&str>(row, 6)? {
        "pending" => DeliveryState::Pending,
        "done" => DeliveryState::Done,
        other => return Err(corrupt(format!("unknown delivery state {other}"))),
    };
    let delivery = Delivery {
        id: DeliveryId(get(row, 0)?),
        event: get(row, 1)?,
        received_at: time(row, 2)?,
        repository_url: get(row, 3)?,
        git_ref: get(row, 4)?,
        project: get::<Option<i64>>(row, 5)?.map(ProjectId),
        state,
        outcome: outcome_of(get(row, 7)?, get(row, 8)?, get(row, 9)?, get(row, 10)?)?,
        claimed_by: get::<Option<String>>(row, 11)?.map(NodeId),
        lease_until: opt_time(row, 12)?,
        completed_at: opt_time(row, 13)?,
        after: get(row, 15)?,
        recovered: get(row, 16)?,
        warnings: match get::<Option<String>>(row, 17)? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| corrupt(format!("delivery warnings: {e}")))?,
            None => Vec::new(),
        },
    };
    Ok((delivery, get(row, 14)?))
}

pub(in crate::postgres) async fn insert_deliveries(
    client: &Client,
    deliveries: &[NewDelivery],
) -> StoreResult<Vec<InsertOutcome>> {
    const CONTEXT: &str = "store deliveries";
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = deliveries.iter().map(|d| d.id.0.as_str()).collect();
    let events: Vec<&str> = deliveries.iter().map(|d| d.event.as_str()).collect();
    let received: Vec<i64> = deliveries.iter().map(|d| ms(d.received_at)).collect();
    let bodies: Vec<&[u8]> = deliveries.iter().map(|d| d.body.as_slice()).collect();
    let urls: Vec<Option<&str>> = deliveries
        .iter()
        .map(|d| d.repository_url.as_deref())
        .collect();
    let keys: Vec<Option<String>> = deliveries
        .iter()
        .map(|d| d.repository_url.as_deref().map(normalize_repository_url))
        .collect();
    let refs: Vec<Option<&str>> = deliveries.iter().map(|d| d.git_ref.as_deref()).collect();
    let afters: Vec<Option<&str>> = deliveries.iter().map(|d| d.after.as_deref()).collect();
    let recovered: Vec<bool> = deliveries.iter().map(|d| d.recovered).collect();
    // The whole batch in one statement (one commit, one round trip, the
    // totals trigger once), rows inserted in the batch's order; a duplicate
    // (stored before, or earlier in the batch) is skipped.
    let stored = all(
        client,
        "INSERT INTO deliveries (id, event, received_at, body, repository_url, repository_key, git_ref,
                                 after_sha, recovered)
         SELECT id, event, received_at, body, repository_url, repository_key, git_ref, after_sha, recovered
         FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BYTEA[], $5::TEXT[], $6::TEXT[],
                     $7::TEXT[], $8::TEXT[], $9::BOOLEAN[])
              WITH ORDINALITY AS batch (id, event, received_at, body, repository_url, repository_key,
                                       git_ref, after_sha, recovered, position)
         ORDER BY position
         ON CONFLICT (id) DO NOTHING
         RETURNING id",
        &[
            &ids, &events, &received, &bodies, &urls, &keys, &refs, &afters, &recovered,
        ],
    )
    .await
    .map_err(db(CONTEXT))?;
    let mut inserted: std::collections::HashSet<String> = stored
        .iter()
        .map(|row| get::<String>(row, 0))
        .collect::<StoreResult<_>>()?;
    // The first of the batch's rows with an inserted id is the one stored.
    Ok(deliveries
        .iter()
        .map(|d| {
            if inserted.remove(&d.id.0) {
                InsertOutcome::Inserted
            } else {
                InsertOutcome::Duplicate
            }
        })
        .collect())
}

pub(in crate::postgres) async fn release_delivery_claims(
    client: &Client,
    node: &NodeId,
) -> StoreResult<u64> {
    exec(
        client,
        "UPDATE deliveries SET claimed_by = NULL, lease_until = NULL
         WHERE state = 'pending' AND claimed_by = $1",
        &[&node.0],
    )
    .await
    .map_err(db("release delivery claims"))
}

/// How the claim's transaction plans its query: walk `deliveries_pending`
/// in `seq` order and stop after the limit. Left to itself the planner
/// goes by the table's statistics, which a burst outruns: analyzed while
/// few deliveries were pending, it expects a handful, and so fetches every
/// pending row through a bitmap and sorts them all for the oldest 32
/// (12 ms and more with 5,000 pending, measured; see docs/decisions.md).
const CLAIM_PLAN: &str = "SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off";

pub(in crate::postgres) async fn claim_pending_deliveries(
    client: &mut Client,
    node: &NodeId,
    lease: Duration,
    limit: usize,
) -> StoreResult<Vec<ClaimedDelivery>> {
    const CONTEXT: &str = "claim deliveries";
    let now = now_ms();
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    tx.batch_execute(CLAIM_PLAN).await.map_err(db(CONTEXT))?;
    // The oldest claimable rows that no other node is claiming right now:
    // a row locked by a concurrent claim is skipped, not waited for, and
    // re-checked (still pending, lease run out) once locked.
    let rows = tx
        .query(
            &format!(
                "WITH picked AS (SELECT seq AS picked_seq, claimed_by AS previous FROM deliveries
                                 WHERE state = 'pending'
                                   AND (lease_until IS NULL OR lease_until <= $3)
                                 ORDER BY seq LIMIT $4
                                 FOR UPDATE SKIP LOCKED)
                 UPDATE deliveries SET claimed_by = $1, lease_until = $2
                 FROM picked WHERE seq = picked.picked_seq
                 RETURNING {DELIVERY_COLUMNS}, body, picked.previous, body_codec"
            ),
            &[
                &node.0,
                &lease_until(now, lease),
                &now,
                &i64::try_from(limit.max(1)).unwrap_or(i64::MAX),
            ],
        )
        .await
        .map_err(db(CONTEXT))?;
    tx.commit().await.map_err(db(CONTEXT))?;
    let mut claimed = rows
        .iter()
        .map(|row| {
            let (delivery, seq) = delivery_row(row)?;
            let codec: String = get(row, 20)?;
            let claimed = ClaimedDelivery {
                delivery,
                body: body_codec::decode(&codec, get(row, 18)?),
                previous_claim: get::<Option<String>>(row, 19)?.map(NodeId),
            };
            Ok((seq, claimed))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING follows no order.
    claimed.sort_by_key(|(seq, _)| *seq);
    Ok(claimed.into_iter().map(|(_, claimed)| claimed).collect())
}

async fn select_delivery<C: GenericClient>(
    c: &C,
    id: &DeliveryId,
    lock: bool,
    context: &'static str,
) -> StoreResult<Delivery> {
    let sql = if lock {
        format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1 FOR UPDATE")
    } else {
        format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1")
    };
    let row = opt(c, &sql, &[&id.0]).await.map_err(db(context))?;
    match row {
        Some(row) => Ok(delivery_row(&row)?.0),
        None => Err(StoreError::not_found(format!("delivery {id}"))),
    }
}

/// Completes deliveries in one transaction, each on its own. One that
/// creates a release or a deployment runs under a savepoint, rolled back
/// alone when it fails. The others (ignored, failed, duplicate: most of a
/// burst) write only their own rows: they are all checked first, then
/// written by one `UPDATE` at the end, so the transaction holds the rows of
/// `totals` that update touches for one statement and the commit, not for
/// the whole batch (an intake batch adding to the same shard waits for it).
pub(in crate::postgres) async fn complete_deliveries(
    client: &mut Client,
    completions: Vec<(DeliveryId, DeliveryCompletion)>,
) -> StoreResult<Vec<StoreResult<DeliveryOutcome>>> {
    const CONTEXT: &str = "complete deliveries";
    let mut tx = client.transaction().await.map_err(db(CONTEXT))?;
    let mut outcomes: Vec<Option<StoreResult<DeliveryOutcome>>> =
        (0..completions.len()).map(|_| None).collect();
    let mut plain = Vec::new();
    for (index, (id, completion)) in completions.into_iter().enumerate() {
        if !completion.queues_a_deployment() {
            plain.push((index, id, completion));
            continue;
        }
        let item = tx.savepoint("delivery").await.map_err(db(CONTEXT))?;
        let outcome = complete_delivery(&item, &id, completion).await;
        if outcome.is_ok() {
            item.commit().await.map_err(db(CONTEXT))?;
        } else {
            item.rollback().await.map_err(db(CONTEXT))?;
        }
        outcomes[index] = Some(outcome);
    }
    for (index, outcome) in complete_plain(&tx, plain).await? {
        outcomes[index] = Some(outcome);
    }
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| Err(StoreError::unavailable(CONTEXT, "no outcome")))
        })
        .collect())
}

/// Completions that create nothing, checked (the delivery exists and is
/// pending, locked; its project exists) and then written in one statement.
/// A delivery already done answers its recorded outcome, as does one named
/// twice.
async fn complete_plain(
    tx: &Tx<'_>,
    plain: Vec<(usize, DeliveryId, DeliveryCompletion)>,
) -> StoreResult<Vec<(usize, StoreResult<DeliveryOutcome>)>> {
    const CONTEXT: &str = "complete deliveries";
    if plain.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = plain.iter().map(|(_, id, _)| id.0.as_str()).collect();
    let found = tx
        .query(
            &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ANY($1) FOR UPDATE"),
            &[&ids],
        )
        .await
        .map_err(db(CONTEXT))?;
    let mut stored = std::collections::HashMap::new();
    for row in &found {
        let (delivery, _) = delivery_row(row)?;
        stored.insert(delivery.id.0.clone(), delivery);
    }
    let mut projects: Vec<i64> = plain
        .iter()
        .filter_map(|(_, _, completion)| plain_project(completion).map(|p| p.0))
        .collect();
    projects.sort_unstable();
    projects.dedup();
    let existing: std::collections::HashSet<i64> = if projects.is_empty() {
        std::collections::HashSet::new()
    } else {
        tx.query("SELECT id FROM projects WHERE id = ANY($1)", &[&projects])
            .await
            .map_err(db(CONTEXT))?
            .iter()
            .map(|row| get::<i64>(row, 0))
            .collect::<StoreResult<_>>()?
    };
    let mut answers = Vec::with_capacity(plain.len());
    let mut written: std::collections::HashMap<String, DeliveryOutcome> =
        std::collections::HashMap::new();
    let (mut w_ids, mut w_kinds, mut w_reasons, mut w_projects) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (index, id, completion) in plain {
        let Some(delivery) = stored.get(&id.0) else {
            answers.push((index, Err(StoreError::not_found(format!("delivery {id}")))));
            continue;
        };
        if let (DeliveryState::Done, Some(outcome)) = (delivery.state, &delivery.outcome) {
            answers.push((index, Ok(outcome.clone())));
            continue;
        }
        if let Some(outcome) = written.get(&id.0) {
            answers.push((index, Ok(outcome.clone())));
            continue;
        }
        let project = plain_project(&completion);
        if let Some(project) = project.filter(|p| !existing.contains(&p.0)) {
            answers.push((
                index,
                Err(StoreError::not_found(format!("project {project}"))),
            ));
            continue;
        }
        let (kind, reason, outcome) = match completion {
            DeliveryCompletion::Ignored { reason, .. } => (
                "ignored",
                Some(reason.clone()),
                DeliveryOutcome::Ignored { reason },
            ),
            DeliveryCompletion::Failed { reason, .. } => (
                "failed",
                Some(reason.clone()),
                DeliveryOutcome::Failed { reason },
            ),
            _ => ("duplicate", None, DeliveryOutcome::Duplicate),
        };
        w_ids.push(id.0.clone());
        w_kinds.push(kind);
        w_reasons.push(reason);
        w_projects.push(project.map(|p| p.0));
        written.insert(id.0, outcome.clone());
        answers.push((index, Ok(outcome)));
    }
    if !w_ids.is_empty() {
        exec(
            tx,
            "UPDATE deliveries d SET state = 'done', outcome = u.kind, outcome_reason = u.reason,
                 release_id = NULL, deployment_id = NULL,
                 project_id = COALESCE(u.project, d.project_id), completed_at = $5,
                 lease_until = NULL
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                 AS u(id, kind, reason, project)
             WHERE d.id = u.id",
            &[&w_ids, &w_kinds, &w_reasons, &w_projects, &now_ms()],
        )
        .await
        .map_err(db(CONTEXT))?;
    }
    Ok(answers)
}

/// The project a completion that creates nothing records, if any.
fn plain_project(completion: &DeliveryCompletion) -> Option<ProjectId> {
    match completion {
        DeliveryCompletion::Ignored { project, .. }
        | DeliveryCompletion::Failed { project, .. }
        | DeliveryCompletion::Duplicate { project } => *project,
        _ => None,
    }
}

async fn complete_delivery(
    tx: &Tx<'_>,
    id: &DeliveryId,
    completion: DeliveryCompletion,
) -> StoreResult<DeliveryOutcome> {
    const CONTEXT: &str = "complete a delivery";
    // Locked: a second completion of the same delivery waits, then finds it
    // done and returns its outcome (completing is idempotent).
    let delivery = select_delivery(tx, id, true, CONTEXT).await?;
    if let (DeliveryState::Done, Some(outcome)) = (delivery.state, delivery.outcome) {
        return Ok(outcome);
    }
    let (project, outcome, reason) = match completion {
        DeliveryCompletion::Queue {
            release,
            environment,
            approval,
            hold,
        } => {
            let project = release.project;
            let release = insert_release(tx, &release).await?;
            let deployment = insert_deployment(
                tx,
                &NewDeployment {
                    release: release.id,
                    environment,
                    approval,
                    created_by: release.pusher.clone(),
                    retry_of: None,
                    hold,
                },
            )
            .await?;
            (
                Some(project),
                DeliveryOutcome::Queued {
                    release: release.id,
                    deployment: deployment.id,
                },
                None,
            )
        }
        DeliveryCompletion::Forward {
            release,
            environment,
            forward,
        } => {
            let project = release.project;
            let release = insert_release(tx, &release).await?;
            let deployment = insert_deployment_of(
                tx,
                &NewDeployment {
                    release: release.id,
                    environment,
                    // Octopus's own lifecycle governs a forwarded deployment.
                    approval: None,
                    created_by: release.pusher.clone(),
                    retry_of: None,
                    hold: false,
                },
                DeploymentKind::Octopus,
                Some(&forward),
            )
            .await?;
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
            approval,
            created_by,
            hold,
        } => {
            let deployment = insert_deployment(
                tx,
                &NewDeployment {
                    release,
                    environment,
                    approval,
                    created_by,
                    retry_of: None,
                    hold,
                },
            )
            .await?;
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
        require_project(tx, project).await?;
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
    exec(
        tx,
        "UPDATE deliveries SET state = 'done', outcome = $2, outcome_reason = $3, release_id = $4,
             deployment_id = $5, project_id = COALESCE($6, project_id), completed_at = $7,
             lease_until = NULL
         WHERE id = $1",
        &[
            &id.0,
            &kind,
            &reason,
            &release,
            &deployment,
            &project.map(|p| p.0),
            &now_ms(),
        ],
    )
    .await
    .map_err(db(CONTEXT))?;
    Ok(outcome)
}

pub(in crate::postgres) async fn get_delivery(
    client: &Client,
    id: &DeliveryId,
) -> StoreResult<Delivery> {
    select_delivery(client, id, false, "read a delivery").await
}

pub(in crate::postgres) async fn replay_delivery(
    client: &mut Client,
    id: &DeliveryId,
) -> StoreResult<Delivery> {
    const CONTEXT: &str = "replay a delivery";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    let delivery = select_delivery(&tx, id, true, CONTEXT).await?;
    if delivery.state != DeliveryState::Done {
        // The row stays locked until the dropped transaction's `ROLLBACK`
        // runs: the store answers once it has (`settled`).
        return Err(StoreError::InvalidTransition {
            what: format!("delivery {id}"),
            from: "pending".to_owned(),
            to: "pending".to_owned(),
        });
    }
    let row = one(
        &tx,
        &format!(
            "UPDATE deliveries SET state = 'pending', outcome = NULL, outcome_reason = NULL,
                 release_id = NULL, deployment_id = NULL, claimed_by = NULL,
                 lease_until = NULL, completed_at = NULL
             WHERE id = $1 RETURNING {DELIVERY_COLUMNS}"
        ),
        &[&id.0],
    )
    .await
    .map_err(db(CONTEXT))?;
    let (replayed, _) = delivery_row(&row)?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(replayed)
}

pub(in crate::postgres) async fn list_deliveries(
    client: &Client,
    project: Option<ProjectId>,
    page: PageRequest,
) -> StoreResult<Page<Delivery>> {
    const CONTEXT: &str = "list deliveries";
    let after = page.after.map(|c| c.0);
    let found = match project {
        None => all(
            client,
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE ($1::BIGINT IS NULL OR seq < $1)
                 ORDER BY seq DESC LIMIT $2"
            ),
            &[&after, &limit_plus_one(page)],
        )
        .await
        .map_err(db(CONTEXT))?,
        Some(project) => {
            require_project(client, project).await?;
            // Two index walks, newest first, each cut at the page size, then
            // merged: the cost does not grow with the history.
            all(
                client,
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE seq IN (
                         (SELECT seq FROM deliveries
                          WHERE project_id = $1 AND ($2::BIGINT IS NULL OR seq < $2)
                          ORDER BY seq DESC LIMIT $3)
                         UNION
                         (SELECT seq FROM deliveries
                          WHERE repository_key = (SELECT repository_key FROM projects WHERE id = $1)
                            AND ($2::BIGINT IS NULL OR seq < $2)
                          ORDER BY seq DESC LIMIT $3))
                     ORDER BY seq DESC LIMIT $3"
                ),
                &[&project.0, &after, &limit_plus_one(page)],
            )
            .await
            .map_err(db(CONTEXT))?
        }
    };
    let found = rows(found, delivery_row)?;
    let page = paginate(found, page, |(_, seq)| *seq);
    Ok(Page {
        items: page.items.into_iter().map(|(d, _)| d).collect(),
        next: page.next,
    })
}

pub(in crate::postgres) async fn last_processed_head(
    client: &Client,
    project: ProjectId,
    git_ref: &str,
) -> StoreResult<Option<String>> {
    const CONTEXT: &str = "read a ref's last processed push";
    require_project(client, project).await?;
    let row = opt(
        client,
        "SELECT after_sha FROM deliveries
         WHERE repository_key = (SELECT repository_key FROM projects WHERE id = $1)
           AND git_ref = $2 AND outcome = 'queued' AND after_sha IS NOT NULL
         ORDER BY seq DESC LIMIT 1",
        &[&project.0, &git_ref],
    )
    .await
    .map_err(db(CONTEXT))?;
    row.map(|row| get(&row, 0)).transpose()
}

pub(in crate::postgres) async fn find_push_delivery(
    client: &Client,
    project: ProjectId,
    git_ref: &str,
    after: &str,
) -> StoreResult<Option<Delivery>> {
    const CONTEXT: &str = "find a push's delivery";
    require_project(client, project).await?;
    let row = opt(
        client,
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE repository_key = (SELECT repository_key FROM projects WHERE id = $1)
               AND git_ref = $2 AND after_sha = $3
             ORDER BY seq DESC LIMIT 1"
        ),
        &[&project.0, &git_ref, &after],
    )
    .await
    .map_err(db(CONTEXT))?;
    row.map(|row| delivery_row(&row).map(|(d, _)| d))
        .transpose()
}

/// Adds `warnings` to a delivery's (each once, in order).
pub(in crate::postgres) async fn add_delivery_warnings(
    client: &mut Client,
    id: &DeliveryId,
    warnings: &[String],
) -> StoreResult<()> {
    const CONTEXT: &str = "record a delivery's warnings";
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    let Some(row) = opt(
        &tx,
        "SELECT warnings FROM deliveries WHERE id = $1 FOR UPDATE",
        &[&id.0],
    )
    .await
    .map_err(db(CONTEXT))?
    else {
        return Err(StoreError::not_found(format!("delivery {id}")));
    };
    let mut all: Vec<String> = get::<Option<String>>(&row, 0)?
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    for warning in warnings {
        if !all.contains(warning) {
            all.push(warning.clone());
        }
    }
    let text = serde_json::to_string(&all).map_err(|e| StoreError::unavailable(CONTEXT, e))?;
    exec(
        &tx,
        "UPDATE deliveries SET warnings = $2 WHERE id = $1",
        &[&id.0, &text],
    )
    .await
    .map_err(db(CONTEXT))?;
    tx.commit().await.map_err(db(CONTEXT))
}
