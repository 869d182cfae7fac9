//! Deployments paused for a person: the pause (running → paused, the row
//! recorded), its answer (the paused step's new state, the deployment
//! queued again or failed), and the list of a deployment's pauses; each a
//! compare-and-set with the core's state machine, the deployment's row
//! locked.

use super::*;

const INTERVENTION_COLUMNS: &str = "deployment_id, step_index, step_name, kind, instructions, \
     roles, paused_at, answered_by, answered_role, action, note, answered_at";

fn intervention_row(row: &Row) -> StoreResult<Intervention> {
    let kind_text: String = get(row, 3)?;
    let kind = InterventionKind::parse(&kind_text)
        .ok_or_else(|| corrupt(format!("unknown intervention kind {kind_text}")))?;
    let roles: String = get(row, 5)?;
    let answer = match get::<Option<String>>(row, 9)? {
        Some(action) => Some(InterventionAnswered {
            by: get::<Option<String>>(row, 7)?.unwrap_or_default(),
            role: get::<Option<String>>(row, 8)?.unwrap_or_default(),
            action: InterventionAction::parse(&action)
                .ok_or_else(|| corrupt(format!("unknown intervention action {action}")))?,
            note: get::<Option<String>>(row, 10)?.unwrap_or_default(),
            at: time(row, 11)?,
        }),
        None => None,
    };
    Ok(Intervention {
        deployment: DeploymentId(get(row, 0)?),
        step_index: u32::try_from(get::<i64>(row, 1)?)
            .map_err(|_| corrupt("step index out of range".to_owned()))?,
        step_name: get(row, 2)?,
        kind,
        instructions: get(row, 4)?,
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        paused_at: time(row, 6)?,
        answer,
    })
}

pub(in crate::postgres) async fn pause_deployment(
    client: &mut Client,
    id: DeploymentId,
    pause: &NewIntervention,
) -> StoreResult<Deployment> {
    const CONTEXT: &str = "pause a deployment";
    let event = DeploymentEvent::Pause;
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    let current = select_deployment(&tx, id, true).await?;
    let next = current
        .state
        .after(event)
        .map_err(|e| refused(format!("deployment {id}"), e))?;
    let expected = state_list(&event.applies_to(), DeploymentState::as_str);
    let paused = opt(
        &tx,
        &format!(
            "UPDATE deployments SET state = $2, claimed_by = NULL, lease_until = NULL
             WHERE id = $1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
        ),
        &[&id.0, &next.as_str()],
    )
    .await
    .map_err(db(CONTEXT))?
    .ok_or_else(|| StoreError::InvalidTransition {
        what: format!("deployment {id}"),
        from: current.state.to_string(),
        to: next.to_string(),
    })?;
    let paused = deployment_row(&paused)?;
    exec(
        &tx,
        "INSERT INTO deployment_interventions
             (deployment_id, step_index, step_name, kind, instructions, roles, paused_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &id.0,
            &i64::from(pause.step_index),
            &pause.step_name,
            &pause.kind.as_str(),
            &pause.instructions,
            &pause.roles.join(","),
            &now_ms(),
        ],
    )
    .await
    .map_err(db(CONTEXT))?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(paused)
}

/// `sealed_outputs`: the answer's outputs, already sealed.
pub(in crate::postgres) async fn answer_intervention(
    client: &mut Client,
    id: DeploymentId,
    answer: &InterventionAnswer,
    sealed_outputs: Option<&str>,
) -> StoreResult<Deployment> {
    const CONTEXT: &str = "answer a paused deployment";
    let (event, step_state) = answer.action.effect();
    let tx = client.transaction().await.map_err(db(CONTEXT))?;
    // Locked: two people answering at once, one wins.
    let current = select_deployment(&tx, id, true).await?;
    let next = current
        .state
        .after(event)
        .map_err(|e| refused(format!("deployment {id}"), e))?;
    let refuse = |to: &str| StoreError::InvalidTransition {
        what: format!("deployment {id}"),
        from: current.state.to_string(),
        to: to.to_owned(),
    };
    let open = opt(
        &tx,
        "SELECT id, step_index, kind FROM deployment_interventions
         WHERE deployment_id = $1 AND answered_at IS NULL",
        &[&id.0],
    )
    .await
    .map_err(db(CONTEXT))?;
    let Some(open) = open else {
        return Err(refuse(answer.action.as_str()));
    };
    let row: i64 = get(&open, 0)?;
    let step_index: i64 = get(&open, 1)?;
    let kind: String = get(&open, 2)?;
    if !InterventionKind::parse(&kind).is_some_and(|kind| kind.actions().contains(&answer.action)) {
        return Err(refuse(answer.action.as_str()));
    }
    let now = now_ms();
    exec(
        &tx,
        "UPDATE deployment_interventions SET answered_by = $2, answered_role = $3, action = $4,
             note = $5, answered_at = $6
         WHERE id = $1",
        &[
            &row,
            &answer.by,
            &answer.role,
            &answer.action.as_str(),
            &answer.note,
            &now,
        ],
    )
    .await
    .map_err(db(CONTEXT))?;
    // The paused step takes the answer's state whatever it was (pending
    // for a manual step, running for a failed one): an answer is the one
    // way a step's record goes back (to pending, for a retry).
    exec(
        &tx,
        "UPDATE deployment_steps SET state = $3, reason = COALESCE($4, reason),
             outputs = CASE WHEN $5 THEN $6 ELSE outputs END
         WHERE deployment_id = $1 AND step_index = $2",
        &[
            &id.0,
            &step_index,
            &step_state.as_str(),
            &answer.step_reason,
            &sealed_outputs.is_some(),
            &sealed_outputs,
        ],
    )
    .await
    .map_err(db(CONTEXT))?;
    let expected = state_list(&event.applies_to(), DeploymentState::as_str);
    let finished_at = next.is_final().then_some(now);
    let updated = opt(
        &tx,
        &format!(
            "UPDATE deployments SET state = $2, error = COALESCE($3, error), finished_at = $4
             WHERE id = $1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
        ),
        &[&id.0, &next.as_str(), &answer.error, &finished_at],
    )
    .await
    .map_err(db(CONTEXT))?
    .ok_or_else(|| refuse(next.as_str()))?;
    let updated = deployment_row(&updated)?;
    tx.commit().await.map_err(db(CONTEXT))?;
    Ok(updated)
}

pub(in crate::postgres) async fn list_interventions(
    client: &Client,
    id: DeploymentId,
) -> StoreResult<Vec<Intervention>> {
    let found = all(
        client,
        &format!(
            "SELECT {INTERVENTION_COLUMNS} FROM deployment_interventions
             WHERE deployment_id = $1 ORDER BY id"
        ),
        &[&id.0],
    )
    .await
    .map_err(db("read a deployment's pauses"))?;
    rows(found, intervention_row)
}
