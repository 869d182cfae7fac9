//! Deployments paused for a person: the pause (running → paused, the row
//! recorded), its answer (the paused step's new state, the deployment
//! queued again or failed), and the list of a deployment's pauses; each a
//! compare-and-set with the core's state machine.

use super::*;

const INTERVENTION_COLUMNS: &str = "deployment_id, step_index, step_name, kind, instructions, \
     roles, paused_at, answered_by, answered_role, action, note, answered_at";

fn intervention_row(row: &Row<'_>) -> rusqlite::Result<Intervention> {
    let kind_text = row.get_ref(3)?.as_str()?;
    let kind = InterventionKind::parse(kind_text)
        .ok_or_else(|| conversion(3, format!("unknown intervention kind {kind_text}")))?;
    let roles: String = row.get(5)?;
    let answer = match row.get::<_, Option<String>>(9)? {
        Some(action) => Some(InterventionAnswered {
            by: row.get::<_, Option<String>>(7)?.unwrap_or_default(),
            role: row.get::<_, Option<String>>(8)?.unwrap_or_default(),
            action: InterventionAction::parse(&action)
                .ok_or_else(|| conversion(9, format!("unknown intervention action {action}")))?,
            note: row.get::<_, Option<String>>(10)?.unwrap_or_default(),
            at: time(row, 11)?,
        }),
        None => None,
    };
    Ok(Intervention {
        deployment: DeploymentId(row.get(0)?),
        step_index: row.get(1)?,
        step_name: row.get(2)?,
        kind,
        instructions: row.get(4)?,
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        paused_at: time(row, 6)?,
        answer,
    })
}

pub(in crate::sqlite) fn pause_deployment(
    conn: &mut Connection,
    id: DeploymentId,
    pause: &NewIntervention,
) -> StoreResult<Deployment> {
    let event = DeploymentEvent::Pause;
    let tx = conn.transaction().map_err(db("pause a deployment"))?;
    let current = select_deployment(&tx, id)?;
    let next = current
        .state
        .after(event)
        .map_err(|e| refused(format!("deployment {id}"), e))?;
    let expected = state_list(&event.applies_to(), DeploymentState::as_str);
    let paused = tx
        .prepare_cached(&format!(
            "UPDATE deployments SET state = ?2, claimed_by = NULL, lease_until = NULL
             WHERE id = ?1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(params![id.0, next.as_str()], deployment_row)
                .optional()
        })
        .map_err(db("pause a deployment"))?
        .ok_or_else(|| StoreError::InvalidTransition {
            what: format!("deployment {id}"),
            from: current.state.to_string(),
            to: next.to_string(),
        })?;
    tx.prepare_cached(
        "INSERT INTO deployment_interventions
             (deployment_id, step_index, step_name, kind, instructions, roles, paused_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id.0,
            pause.step_index,
            pause.step_name,
            pause.kind.as_str(),
            pause.instructions,
            pause.roles.join(","),
            now_ms()
        ])
    })
    .map_err(db("pause a deployment"))?;
    tx.commit().map_err(db("pause a deployment"))?;
    Ok(paused)
}

/// `sealed_outputs`: the answer's outputs, already sealed.
pub(in crate::sqlite) fn answer_intervention(
    conn: &mut Connection,
    id: DeploymentId,
    answer: &InterventionAnswer,
    sealed_outputs: Option<&str>,
) -> StoreResult<Deployment> {
    let (event, step_state) = answer.action.effect();
    let tx = conn
        .transaction()
        .map_err(db("answer a paused deployment"))?;
    let current = select_deployment(&tx, id)?;
    let next = current
        .state
        .after(event)
        .map_err(|e| refused(format!("deployment {id}"), e))?;
    let open: Option<(i64, u32, String)> = tx
        .prepare_cached(
            "SELECT id, step_index, kind FROM deployment_interventions
             WHERE deployment_id = ?1 AND answered_at IS NULL",
        )
        .and_then(|mut s| {
            s.query_row([id.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
        })
        .map_err(db("answer a paused deployment"))?;
    let refuse = |to: &str| StoreError::InvalidTransition {
        what: format!("deployment {id}"),
        from: current.state.to_string(),
        to: to.to_owned(),
    };
    let Some((row, step_index, kind)) = open else {
        return Err(refuse(answer.action.as_str()));
    };
    if !InterventionKind::parse(&kind).is_some_and(|kind| kind.actions().contains(&answer.action)) {
        return Err(refuse(answer.action.as_str()));
    }
    let now = now_ms();
    tx.prepare_cached(
        "UPDATE deployment_interventions SET answered_by = ?2, answered_role = ?3, action = ?4,
             note = ?5, answered_at = ?6
         WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            row,
            answer.by,
            answer.role,
            answer.action.as_str(),
            answer.note,
            now
        ])
    })
    .map_err(db("answer a paused deployment"))?;
    // The paused step takes the answer's state whatever it was (pending
    // for a manual step, running for a failed one): an answer is the one
    // way a step's record goes back (to pending, for a retry).
    tx.prepare_cached(
        "UPDATE deployment_steps SET state = ?3, reason = COALESCE(?4, reason),
             outputs = CASE WHEN ?5 THEN ?6 ELSE outputs END
         WHERE deployment_id = ?1 AND step_index = ?2",
    )
    .and_then(|mut s| {
        s.execute(params![
            id.0,
            step_index,
            step_state.as_str(),
            answer.step_reason,
            sealed_outputs.is_some(),
            sealed_outputs
        ])
    })
    .map_err(db("answer a paused deployment"))?;
    let expected = state_list(&event.applies_to(), DeploymentState::as_str);
    let finished_at = next.is_final().then_some(now);
    let updated = tx
        .prepare_cached(&format!(
            "UPDATE deployments SET state = ?2, error = COALESCE(?3, error), finished_at = ?4
             WHERE id = ?1 AND state IN ({expected}) RETURNING {DEPLOYMENT_COLUMNS}"
        ))
        .and_then(|mut s| {
            s.query_row(
                params![id.0, next.as_str(), answer.error, finished_at],
                deployment_row,
            )
            .optional()
        })
        .map_err(db("answer a paused deployment"))?
        .ok_or_else(|| refuse(next.as_str()))?;
    tx.commit().map_err(db("answer a paused deployment"))?;
    Ok(updated)
}

pub(in crate::sqlite) fn list_interventions(
    conn: &mut Connection,
    id: DeploymentId,
) -> StoreResult<Vec<Intervention>> {
    conn.prepare_cached(&format!(
        "SELECT {INTERVENTION_COLUMNS} FROM deployment_interventions
         WHERE deployment_id = ?1 ORDER BY id"
    ))
    .and_then(|mut s| s.query_map([id.0], intervention_row)?.collect())
    .map_err(db("read a deployment's pauses"))
}
