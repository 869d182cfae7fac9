//! Deployments that wait for a person (`Paused`): a `Uses:
//! manual-intervention` step is answered *Proceed* or *Abort*, a failed
//! step with `OnFailure: ask` *Retry*, *Ignore* or *Abort*, with a note,
//! by a person whose role the step names (`Roles` under `With`; by default
//! admins and deployers). The answer is recorded by the store with the
//! step's new state (and, for *Proceed*, the step's output variables
//! `Manual.ResponsibleUser.Username` and `Manual.Notes`, as Octopus names
//! them), written in the task log, logged and appended to the audit log;
//! a deployment that goes on is queued again and resumed by the scheduler
//! at the step after (or at the same step, for *Retry*).

use std::collections::HashMap;

use chrono::Utc;
use tako_core::log::{LogLevel, LogStream};
use tako_exec::executor::StepOutput;
use tako_store::{
    Deployment, DeploymentFilter, DeploymentId, DeploymentState, Intervention, InterventionAction,
    InterventionAnswer, InterventionKind, LogLineRecord, PageRequest,
};

use super::{Principal, ServiceError, ServiceResult, Services};

/// The longest note kept with an answer.
const MAX_NOTE: usize = 2000;

/// How many paused deployments the list of open pauses reads.
const OPEN_LIMIT: u32 = 200;

/// A paused deployment and the pause it waits on, for the lists of what
/// waits for a person.
#[derive(Debug, Clone)]
pub struct OpenIntervention {
    /// The deployment (`Paused`).
    pub deployment: Deployment,
    /// Its project's name.
    pub project: String,
    /// Its release's number.
    pub release: String,
    /// The pause, not answered yet (its instructions masked when they were
    /// recorded).
    pub pause: Intervention,
    /// Whether the caller's role may answer it.
    pub may_answer: bool,
}

impl Services {
    /// Answers paused deployment `id` with `action` and `note`.
    /// [`ServiceError::Conflict`] when it is not paused or `action` does not
    /// answer its pause (naming the answers that do);
    /// [`ServiceError::NotAllowed`] when the step's `Roles` do not name the
    /// caller's role.
    pub async fn answer_intervention(
        &self,
        who: &Principal,
        id: DeploymentId,
        action: InterventionAction,
        note: Option<&str>,
    ) -> ServiceResult<Deployment> {
        let note = note.unwrap_or_default().trim();
        if note.chars().count() > MAX_NOTE || note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ServiceError::BadInput(format!(
                "note must be at most {MAX_NOTE} characters of text (line breaks allowed)"
            )));
        }
        let deployment = self.store.get_deployment(id).await?;
        let open = self
            .store
            .list_interventions(id)
            .await?
            .into_iter()
            .rev()
            .find(|pause| pause.answer.is_none())
            .filter(|_| deployment.state == DeploymentState::Paused);
        let Some(pause) = open else {
            return Err(ServiceError::Conflict(format!(
                "deployment {id} is {} and waits for no one: there is nothing to {action}",
                deployment.state
            )));
        };
        if !pause.kind.actions().contains(&action) {
            return Err(ServiceError::Conflict(format!(
                "deployment {id} {}: answer {} (not {action})",
                waits_for(&pause),
                answers(pause.kind)
            )));
        }
        may_answer(who, &deployment, &pause)?;
        let by = format!("{} ({})", who.name, who.role);
        let said = if note.is_empty() {
            String::new()
        } else {
            format!(": {note}")
        };
        let mut answer = InterventionAnswer {
            by: who.name.clone(),
            role: who.role.as_str().to_owned(),
            action,
            note: note.to_owned(),
            step_reason: None,
            outputs: None,
            error: None,
        };
        let line = match action {
            InterventionAction::Proceed => {
                answer.outputs = Some(crate::scheduler::outputs_to_json(&manual_outputs(
                    &who.name, note,
                )));
                format!("Step '{}': proceed, by {by}{said}", pause.step_name)
            }
            InterventionAction::Retry => {
                // The failed attempt's outputs go: the new attempt's count.
                answer.outputs = Some("[]".to_owned());
                format!(
                    "Step '{}': retry, by {by}{said}; it runs again",
                    pause.step_name
                )
            }
            InterventionAction::Ignore => {
                answer.step_reason = Some(format!("failed, ignored by {}{said}", who.name));
                format!(
                    "Step '{}': failure ignored by {by}{said}; the deployment goes on as if it had succeeded",
                    pause.step_name
                )
            }
            InterventionAction::Abort => {
                let error = format!(
                    "aborted at step '{}' by {}{said}",
                    pause.step_name, who.name
                );
                answer.step_reason = Some(error.clone());
                answer.error = Some(error);
                format!("Step '{}': abort, by {by}{said}", pause.step_name)
            }
        };
        let answered = self.store.answer_intervention(id, answer).await?;
        let record = LogLineRecord {
            timestamp: Utc::now(),
            step: Some(pause.step_name.clone()),
            stream: LogStream::Tako,
            level: if action == InterventionAction::Abort {
                LogLevel::Error
            } else {
                LogLevel::Highlight
            },
            text: line,
        };
        let mut lines = vec![record];
        if answered.state == DeploymentState::Failed {
            lines.push(LogLineRecord {
                timestamp: Utc::now(),
                step: None,
                stream: LogStream::Tako,
                level: LogLevel::Error,
                text: format!(
                    "Deployment failed: {}",
                    answered.error.as_deref().unwrap_or("aborted")
                ),
            });
        }
        if let Err(error) = self.store.append_log(id, &lines).await {
            tracing::warn!(deployment = %id, %error, "cannot write an answer in the task log");
        }
        match answered.state {
            DeploymentState::Queued => self.deployments_queued.notify_one(),
            // The forge shows the pause (`pending`): its end is ours to say.
            DeploymentState::Failed => self
                .statuses
                .start(&answered)
                .report(tako_forges::status::Phase::Failed),
            _ => {}
        }
        tracing::info!(deployment = %id, by = %who.name, role = %who.role, token = %who.token,
            %action, step = %pause.step_name, state = %answered.state, "paused deployment answered");
        self.audit_answer(who, id, action, &pause.step_name, note)
            .await;
        Ok(answered)
    }

    /// Every paused deployment's open pause (the oldest pause first), with
    /// whether `who` may answer it. Any role may read them.
    pub async fn open_interventions(
        &self,
        who: &Principal,
    ) -> ServiceResult<Vec<OpenIntervention>> {
        let mut projects = HashMap::new();
        let mut open = Vec::new();
        for (deployment, pause) in self.open_pauses().await? {
            let project = match projects.get(&deployment.project) {
                Some(name) => String::clone(name),
                None => {
                    let name = self.store.get_project(deployment.project).await?.name;
                    projects.insert(deployment.project, name.clone());
                    name
                }
            };
            let release = self.store.get_release(deployment.release).await?.number;
            open.push(OpenIntervention {
                may_answer: may_answer(who, &deployment, &pause).is_ok(),
                deployment,
                project,
                release,
                pause,
            });
        }
        open.sort_by_key(|o| (o.pause.paused_at, o.deployment.id.0));
        Ok(open)
    }

    /// The paused deployments (at most [`OPEN_LIMIT`]) with their open
    /// pause: what both the list and the badge start from.
    async fn open_pauses(&self) -> ServiceResult<Vec<(Deployment, Intervention)>> {
        let page = self
            .store
            .list_deployments(
                &DeploymentFilter {
                    state: Some(DeploymentState::Paused),
                    ..DeploymentFilter::default()
                },
                PageRequest {
                    limit: OPEN_LIMIT,
                    after: None,
                },
            )
            .await?;
        let mut open = Vec::new();
        for deployment in page.items {
            let pause = self
                .store
                .list_interventions(deployment.id)
                .await?
                .into_iter()
                .rev()
                .find(|pause| pause.answer.is_none());
            if let Some(pause) = pause {
                open.push((deployment, pause));
            }
        }
        Ok(open)
    }

    /// How many things wait for `who`: approvals they may give and pauses
    /// they may answer (the navigation's badge). A store failure counts
    /// nothing (logged): the badge never breaks a page.
    pub async fn waiting_count(&self, who: &Principal) -> usize {
        // Only whether each pause is the viewer's to answer: no names
        // are read for the badge (it is counted on every page).
        let approvals = self.awaiting_approval_by(who).await;
        let pauses = self.open_pauses().await;
        match (approvals, pauses) {
            (Ok(approvals), Ok(pauses)) => {
                approvals.len()
                    + pauses
                        .iter()
                        .filter(|(deployment, pause)| may_answer(who, deployment, pause).is_ok())
                        .count()
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot count what waits for a person");
                0
            }
        }
    }

    /// A deployment's pauses and their answers, oldest first.
    pub async fn deployment_interventions(
        &self,
        id: DeploymentId,
    ) -> ServiceResult<Vec<Intervention>> {
        let deployment = self.store.get_deployment(id).await?;
        Ok(self.store.list_interventions(deployment.id).await?)
    }

    async fn audit_answer(
        &self,
        who: &Principal,
        id: DeploymentId,
        action: InterventionAction,
        step: &str,
        note: &str,
    ) {
        let detail = if note.is_empty() {
            format!("step '{step}'")
        } else {
            format!("step '{step}': {note}")
        };
        let entry = tako_store::NewAuditEntry {
            actor: format!("token {} ({}, {})", who.token, who.name, who.role),
            action: format!("deployment.intervention.{action}"),
            target: format!("/api/v1/deployments/{id}"),
            source: None,
            outcome: "ok".to_owned(),
            detail: Some(detail),
        };
        if let Err(error) = self.store.append_audit(entry).await {
            tracing::error!(deployment = %id, %error, "cannot append to the audit log");
        }
    }
}

/// Whether `who` may answer `pause`: its `Roles`, else admins and deployers.
fn may_answer(who: &Principal, deployment: &Deployment, pause: &Intervention) -> ServiceResult<()> {
    let allowed = if pause.roles.is_empty() {
        who.role.may_deploy()
    } else {
        pause.roles.iter().any(|role| role == who.role.as_str())
    };
    if allowed {
        return Ok(());
    }
    let roles = if pause.roles.is_empty() {
        "admin or deployer".to_owned()
    } else {
        pause.roles.join(" or ")
    };
    Err(ServiceError::NotAllowed(format!(
        "deployment {} to {} {}, which the role {roles} may answer; this token's role is {}",
        deployment.id,
        deployment.environment,
        waits_for(pause),
        who.role
    )))
}

/// `waits at step 'Check' for a person` / `paused on the failure of step 'Test'`.
fn waits_for(pause: &Intervention) -> String {
    match pause.kind {
        InterventionKind::Manual => format!("waits at step '{}' for a person", pause.step_name),
        InterventionKind::Failure => format!("paused on the failure of step '{}'", pause.step_name),
    }
}

/// `proceed or abort`.
fn answers(kind: InterventionKind) -> String {
    let names: Vec<&str> = kind.actions().iter().map(|a| a.as_str()).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The output variables of a manual-intervention step answered *Proceed*
/// (Octopus's names). The note is a person's text: `#{` in it is escaped,
/// never evaluated.
fn manual_outputs(by: &str, note: &str) -> Vec<StepOutput> {
    [
        ("Manual.ResponsibleUser.Username", by.to_owned()),
        ("Manual.ResponsibleUser.DisplayName", by.to_owned()),
        ("Manual.Notes", note.replace("#{", "##{")),
    ]
    .into_iter()
    .map(|(name, value)| StepOutput {
        name: name.to_owned(),
        value,
        sensitive: false,
        machine: None,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answers_are_named_in_order() {
        assert_eq!(answers(InterventionKind::Manual), "proceed or abort");
        assert_eq!(answers(InterventionKind::Failure), "retry, ignore or abort");
    }

    #[test]
    fn a_note_is_never_evaluated() {
        let outputs = manual_outputs("bob", "ok #{Secret}");
        assert_eq!(outputs[2].name, "Manual.Notes");
        assert_eq!(outputs[2].value, "ok ##{Secret}");
        assert_eq!(outputs[0].value, "bob");
    }
}
