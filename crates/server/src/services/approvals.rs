//! Approvals: a deployment awaiting approval (its lifecycle phase's
//! `Approval`) is approved or rejected with a note by a person whose role
//! the rule names, never by its pusher or creator when the rule says
//! `NotBy`; what waits for a person; the timeout that cancels what nobody
//! approved. Every decision is logged and appended to the audit log.

use chrono::Utc;
use tako_store::{
    Approval, Deployment, DeploymentFilter, DeploymentId, DeploymentState, NewApproval,
    NewAuditEntry, PageRequest,
};

use super::{Principal, ServiceError, ServiceResult, Services};

/// The longest note kept with a decision.
const MAX_NOTE: usize = 2000;

/// How many waiting deployments the list of what waits for a person reads.
const WAITING_LIMIT: u32 = 200;

impl Services {
    /// Approves (`approve`) or rejects deployment `id` with `note`.
    /// [`ServiceError::NotAllowed`] when the caller's role is not one the
    /// rule names, or they pushed the release (`NotBy: pusher`) or created
    /// the deployment (`NotBy: creator`); [`ServiceError::Conflict`] when
    /// it awaits no approval or they have already decided.
    pub async fn decide_approval(
        &self,
        who: &Principal,
        id: DeploymentId,
        approve: bool,
        note: Option<&str>,
    ) -> ServiceResult<Deployment> {
        let note = note.unwrap_or_default().trim();
        if note.chars().count() > MAX_NOTE || note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(ServiceError::BadInput(format!(
                "note must be at most {MAX_NOTE} characters of text (line breaks allowed)"
            )));
        }
        let deployment = self.store.get_deployment(id).await?;
        let verb = if approve { "approve" } else { "reject" };
        let Some(rule) = deployment
            .approval
            .as_ref()
            .filter(|_| deployment.state == DeploymentState::AwaitingApproval)
        else {
            return Err(ServiceError::Conflict(format!(
                "deployment {id} is {} and awaits no approval: there is nothing to {verb}",
                deployment.state
            )));
        };
        self.may_decide(who, &deployment, rule)?;
        self.not_by(who, &deployment).await?;
        let decided = self
            .store
            .record_approval(
                id,
                NewApproval {
                    by: who.name.clone(),
                    role: who.role.as_str().to_owned(),
                    approve,
                    note: note.to_owned(),
                },
            )
            .await?;
        if decided.state == DeploymentState::Queued {
            self.deployments_queued.notify_one();
        }
        tracing::info!(deployment = %id, by = %who.name, role = %who.role, token = %who.token,
            decision = verb, state = %decided.state, "approval decided");
        self.audit(
            &format!("token {} ({}, {})", who.token, who.name, who.role),
            if approve {
                "deployment.approve"
            } else {
                "deployment.reject"
            },
            id,
            Some(note).filter(|n| !n.is_empty()).map(str::to_owned),
        )
        .await;
        Ok(decided)
    }

    /// Whether `who` may decide on `deployment` under `rule`.
    fn may_decide(
        &self,
        who: &Principal,
        deployment: &Deployment,
        rule: &tako_store::ApprovalRule,
    ) -> ServiceResult<()> {
        if !rule.roles.iter().any(|role| role == who.role.as_str()) {
            return Err(ServiceError::NotAllowed(format!(
                "deployment {} to {} needs an approval by the role {}; this token's role is {}",
                deployment.id,
                deployment.environment,
                rule.roles.join(" or "),
                who.role
            )));
        }
        Ok(())
    }

    /// Refuses the pusher or creator when the rule says `NotBy`.
    async fn not_by(&self, who: &Principal, deployment: &Deployment) -> ServiceResult<()> {
        let Some(not_by) = deployment
            .approval
            .as_ref()
            .and_then(|r| r.not_by.as_deref())
        else {
            return Ok(());
        };
        let same = |name: Option<&str>| name.is_some_and(|n| n.eq_ignore_ascii_case(&who.name));
        let (caused, what) = match not_by {
            "pusher" => {
                let release = self.store.get_release(deployment.release).await?;
                (
                    same(release.pusher.as_deref()),
                    format!("pushed release {}", release.number),
                )
            }
            _ => (
                same(deployment.created_by.as_deref()),
                format!("created deployment {}", deployment.id),
            ),
        };
        if caused {
            return Err(ServiceError::NotAllowed(format!(
                "{} {what}, and the approval of {} is NotBy: {not_by}: another person must approve it",
                who.name, deployment.environment
            )));
        }
        Ok(())
    }

    /// The deployments awaiting an approval that `who` may give (their
    /// role is named, they are not its pusher or creator under `NotBy`,
    /// they have not decided yet), oldest first.
    pub async fn awaiting_approval_by(&self, who: &Principal) -> ServiceResult<Vec<Deployment>> {
        let page = self
            .store
            .list_deployments(
                &DeploymentFilter {
                    state: Some(DeploymentState::AwaitingApproval),
                    ..DeploymentFilter::default()
                },
                PageRequest {
                    limit: WAITING_LIMIT,
                    after: None,
                },
            )
            .await?;
        let mut mine = Vec::new();
        for deployment in page.items.into_iter().rev() {
            let Some(rule) = deployment.approval.as_ref() else {
                continue;
            };
            if self.may_decide(who, &deployment, rule).is_err()
                || self.not_by(who, &deployment).await.is_err()
            {
                continue;
            }
            let decided = self.store.list_approvals(deployment.id).await?;
            if decided.iter().any(|a| a.by.eq_ignore_ascii_case(&who.name)) {
                continue;
            }
            mine.push(deployment);
        }
        Ok(mine)
    }

    /// A deployment's approvals and rejections, oldest first.
    pub async fn deployment_approvals(&self, id: DeploymentId) -> ServiceResult<Vec<Approval>> {
        let deployment = self.store.get_deployment(id).await?;
        Ok(self.store.list_approvals(deployment.id).await?)
    }

    /// Cancels the deployments nobody approved in time, logging and
    /// auditing each; returns how many.
    pub async fn expire_approvals(&self) -> ServiceResult<usize> {
        let expired = self.store.expire_approvals(Utc::now()).await?;
        for deployment in &expired {
            tracing::warn!(deployment = %deployment.id, environment = %deployment.environment,
                error = deployment.error.as_deref().unwrap_or_default(), "approval timed out");
            self.audit(
                "tako",
                "deployment.approval_timeout",
                deployment.id,
                deployment.error.clone(),
            )
            .await;
        }
        Ok(expired.len())
    }

    async fn audit(&self, actor: &str, action: &str, id: DeploymentId, detail: Option<String>) {
        let entry = NewAuditEntry {
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: format!("/api/v1/deployments/{id}"),
            source: None,
            outcome: "ok".to_owned(),
            detail,
        };
        if let Err(error) = self.store.append_audit(entry).await {
            tracing::error!(deployment = %id, %error, action, "cannot append to the audit log");
        }
    }
}
