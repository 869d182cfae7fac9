//! Deliveries: storing batches, claiming, completing (with the release and deployment a push makes), listing and replaying.

use super::*;
use crate::body_codec;

pub(in crate::sqlite) const DELIVERY_COLUMNS: &str = "id, event, received_at, repository_url, git_ref, project_id, state, \
     outcome, outcome_reason, release_id, deployment_id, claimed_by, lease_until, completed_at, seq, \
     after_sha, recovered, warnings";

pub(in crate::sqlite) fn outcome_of(
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
pub(in crate::sqlite) fn delivery_row(row: &Row<'_>) -> rusqlite::Result<(Delivery, i64)> {
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
        after: row.get(15)?,
        recovered: row.get(16)?,
        warnings: match row.get::<_, Option<String>>(17)? {
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| conversion(17, format!("delivery warnings: {e}")))?,
            None => Vec::new(),
        },
    };
    Ok((delivery, row.get(14)?))
}

/// Stores deliveries whose bodies are already encoded, each with its codec
/// (`crate::body_codec`).
pub(in crate::sqlite) fn insert_deliveries(
    conn: &mut Connection,
    deliveries: &[(NewDelivery, &str)],
) -> StoreResult<Vec<InsertOutcome>> {
    let tx = conn.transaction().map_err(db("store deliveries"))?;
    let mut outcomes = Vec::with_capacity(deliveries.len());
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO deliveries (id, event, received_at, body, repository_url, repository_key, git_ref,
                                         after_sha, recovered, body_codec)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING",
            )
            .map_err(db("store deliveries"))?;
        for (delivery, codec) in deliveries {
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
                    delivery.after,
                    delivery.recovered,
                    codec,
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

pub(in crate::sqlite) fn release_delivery_claims(
    conn: &mut Connection,
    node: &NodeId,
) -> StoreResult<u64> {
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

pub(in crate::sqlite) fn claim_pending_deliveries(
    conn: &mut Connection,
    node: &NodeId,
    lease: Duration,
    limit: usize,
) -> StoreResult<Vec<ClaimedDelivery>> {
    const CONTEXT: &str = "claim deliveries";
    let now = now_ms();
    // RETURNING sees only the new row: the previous holders are read first,
    // in the same transaction.
    let tx = conn.transaction().map_err(db(CONTEXT))?;
    let picked: Vec<(i64, Option<String>)> = tx
        .prepare_cached(
            "SELECT seq, claimed_by FROM deliveries
             WHERE state = 'pending' AND (lease_until IS NULL OR lease_until <= ?1)
             ORDER BY seq LIMIT ?2",
        )
        .and_then(|mut s| {
            s.query_map(
                params![now, i64::try_from(limit.max(1)).unwrap_or(i64::MAX)],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?
            .collect()
        })
        .map_err(db(CONTEXT))?;
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    let mut claimed = Vec::with_capacity(picked.len());
    {
        let mut claim = tx
            .prepare_cached(&format!(
                "UPDATE deliveries SET claimed_by = ?1, lease_until = ?2 WHERE seq = ?3
                 RETURNING {DELIVERY_COLUMNS}, body, body_codec"
            ))
            .map_err(db(CONTEXT))?;
        for (seq, previous) in picked {
            let one = claim
                .query_row(params![node.0, lease_until(now, lease), seq], |row| {
                    let (delivery, _) = delivery_row(row)?;
                    let codec: String = row.get(19)?;
                    Ok(ClaimedDelivery {
                        delivery,
                        body: body_codec::decode(&codec, row.get(18)?),
                        previous_claim: previous.map(NodeId),
                    })
                })
                .map_err(db(CONTEXT))?;
            claimed.push(one);
        }
    }
    tx.commit().map_err(db(CONTEXT))?;
    Ok(claimed)
}

/// Completes each delivery under a savepoint of one transaction: one that
/// cannot be completed is rolled back alone.
pub(in crate::sqlite) fn complete_deliveries(
    conn: &mut Connection,
    completions: Vec<(DeliveryId, DeliveryCompletion)>,
) -> StoreResult<Vec<StoreResult<DeliveryOutcome>>> {
    const CONTEXT: &str = "complete deliveries";
    let tx = conn.transaction().map_err(db(CONTEXT))?;
    let mut outcomes = Vec::with_capacity(completions.len());
    for (id, completion) in completions {
        savepoint(&tx, "SAVEPOINT delivery").map_err(db(CONTEXT))?;
        let outcome = complete_delivery(&tx, &id, completion);
        if outcome.is_err() {
            savepoint(&tx, "ROLLBACK TO delivery").map_err(db(CONTEXT))?;
        }
        savepoint(&tx, "RELEASE delivery").map_err(db(CONTEXT))?;
        outcomes.push(outcome);
    }
    tx.commit().map_err(db(CONTEXT))?;
    Ok(outcomes)
}

fn savepoint(tx: &Transaction<'_>, statement: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(statement)?.execute([]).map(|_| ())
}

fn complete_delivery(
    tx: &Transaction<'_>,
    id: &DeliveryId,
    completion: DeliveryCompletion,
) -> StoreResult<DeliveryOutcome> {
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
            approval,
            hold,
        } => {
            let project = release.project;
            let release = insert_release(tx, &release)?;
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
        DeliveryCompletion::Forward {
            release,
            environment,
            forward,
        } => {
            let project = release.project;
            let release = insert_release(tx, &release)?;
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
        require_project(tx, project)?;
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
    Ok(outcome)
}

pub(in crate::sqlite) fn get_delivery(
    conn: &mut Connection,
    id: &DeliveryId,
) -> StoreResult<Delivery> {
    conn.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([&id.0], delivery_row).optional())
    .map_err(db("read a delivery"))?
    .map(|(delivery, _)| delivery)
    .ok_or_else(|| StoreError::not_found(format!("delivery {id}")))
}

pub(in crate::sqlite) fn replay_delivery(
    conn: &mut Connection,
    id: &DeliveryId,
) -> StoreResult<Delivery> {
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

pub(in crate::sqlite) fn list_deliveries(
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

pub(in crate::sqlite) fn last_processed_head(
    conn: &mut Connection,
    project: ProjectId,
    git_ref: &str,
) -> StoreResult<Option<String>> {
    let tx = conn
        .transaction()
        .map_err(db("read a ref's last processed push"))?;
    require_project(&tx, project)?;
    let head = tx
        .prepare_cached(
            "SELECT after_sha FROM deliveries
             WHERE repository_key = (SELECT repository_key FROM projects WHERE id = ?1)
               AND git_ref = ?2 AND outcome = 'queued' AND after_sha IS NOT NULL
             ORDER BY seq DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(params![project.0, git_ref], |row| row.get(0))
                .optional()
        })
        .map_err(db("read a ref's last processed push"))?;
    Ok(head)
}

pub(in crate::sqlite) fn find_push_delivery(
    conn: &mut Connection,
    project: ProjectId,
    git_ref: &str,
    after: &str,
) -> StoreResult<Option<Delivery>> {
    let tx = conn.transaction().map_err(db("find a push's delivery"))?;
    require_project(&tx, project)?;
    let found = tx
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE repository_key = (SELECT repository_key FROM projects WHERE id = ?1)
               AND git_ref = ?2 AND after_sha = ?3
             ORDER BY seq DESC LIMIT 1"
        ))
        .and_then(|mut s| {
            s.query_row(params![project.0, git_ref, after], delivery_row)
                .optional()
        })
        .map_err(db("find a push's delivery"))?;
    Ok(found.map(|(delivery, _)| delivery))
}

pub(in crate::sqlite) fn add_delivery_warnings(
    conn: &mut Connection,
    id: &DeliveryId,
    warnings: &[String],
) -> StoreResult<()> {
    let tx = conn
        .transaction()
        .map_err(db("record a delivery's warnings"))?;
    let stored: Option<Option<String>> = tx
        .prepare_cached("SELECT warnings FROM deliveries WHERE id = ?1")
        .and_then(|mut s| s.query_row([&id.0], |r| r.get(0)).optional())
        .map_err(db("record a delivery's warnings"))?;
    let Some(stored) = stored else {
        return Err(StoreError::not_found(format!("delivery {id}")));
    };
    let mut all: Vec<String> = stored
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    for warning in warnings {
        if !all.contains(warning) {
            all.push(warning.clone());
        }
    }
    let text = serde_json::to_string(&all)
        .map_err(|e| StoreError::unavailable("record a delivery's warnings", e))?;
    tx.prepare_cached("UPDATE deliveries SET warnings = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id.0, text]))
        .map_err(db("record a delivery's warnings"))?;
    tx.commit().map_err(db("record a delivery's warnings"))
}
