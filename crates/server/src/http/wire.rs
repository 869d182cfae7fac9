//! The conversions from the store's types to the wire types of
//! `tako-protocol`: the one place that decides what of a stored value leaves
//! the server (a sensitive variable's value reads `********`; secrets, token
//! hashes and frozen variables never leave).

use chrono::{DateTime, SecondsFormat, Utc};
use tako_protocol::api::{
    AuditEntryDto, DeliveryDto, DeploymentDto, EnvironmentPolicyDto, MASKED_VALUE, OutcomeDto,
    ProjectDto, ReleaseDto, StepDto, TokenDto, VariableDto,
};
use tako_store::{
    ApiToken, Delivery, DeliveryOutcome, DeliveryState, Deployment, Project, Release, StepRecord,
    Variable,
};

/// A stored value as it is shown on the wire.
pub(crate) trait ToWire {
    /// Its wire type.
    type Wire;
    /// What of it leaves the server.
    fn to_wire(&self) -> Self::Wire;
}

/// `value` as it is shown on the wire (for `.map(to_wire)`).
pub(crate) fn to_wire<T: ToWire + ?Sized>(value: &T) -> T::Wire {
    value.to_wire()
}

/// A time as the API writes it.
pub(crate) fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn opt_time(at: Option<DateTime<Utc>>) -> Option<String> {
    at.map(time)
}

impl ToWire for Project {
    type Wire = ProjectDto;

    fn to_wire(&self) -> ProjectDto {
        let project = self;
        ProjectDto {
            id: project.id.0,
            name: project.name.clone(),
            repository: project.repository_url.clone(),
            has_webhook_secret: project.webhook_secret.is_some(),
            has_repository_token: project.repository_token.is_some(),
            has_status_token: project.forge_status.is_some(),
            status_forge: project.forge_status.as_ref().and_then(|s| s.forge.clone()),
            status_api_url: project
                .forge_status
                .as_ref()
                .and_then(|s| s.api_url.clone()),
            status_deployments: project.forge_status.as_ref().is_some_and(|s| s.deployments),
            created_at: time(project.created_at),
        }
    }
}

impl ToWire for Variable {
    type Wire = VariableDto;

    fn to_wire(&self) -> VariableDto {
        let variable = self;
        VariableDto {
            id: variable.id.0,
            name: variable.name.clone(),
            value: if variable.sensitive {
                MASKED_VALUE.to_owned()
            } else {
                variable.value.clone()
            },
            environments: variable.environments.clone(),
            roles: variable.roles.clone(),
            sensitive: variable.sensitive,
        }
    }
}

impl ToWire for Release {
    type Wire = ReleaseDto;

    fn to_wire(&self) -> ReleaseDto {
        let release = self;
        ReleaseDto {
            id: release.id.0,
            project: release.project.0,
            number: release.number.clone(),
            notes: release.notes.clone(),
            commit: release.commit.clone(),
            branch: release.branch.clone(),
            pusher: release.pusher.clone(),
            build_number: release.build_number,
            created_at: time(release.created_at),
        }
    }
}

impl ToWire for StepRecord {
    type Wire = StepDto;

    fn to_wire(&self) -> StepDto {
        let step = self;
        StepDto {
            index: step.index,
            name: step.name.clone(),
            state: step.state.as_str().to_owned(),
            reason: step.reason.clone(),
            started_at: opt_time(step.started_at),
            duration_ms: step
                .duration
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

impl ToWire for Deployment {
    type Wire = DeploymentDto;

    fn to_wire(&self) -> DeploymentDto {
        let deployment = self;
        DeploymentDto {
            id: deployment.id.0,
            release: deployment.release.0,
            project: deployment.project.0,
            environment: deployment.environment.clone(),
            state: deployment.state.as_str().to_owned(),
            queued_at: time(deployment.queued_at),
            started_at: opt_time(deployment.started_at),
            finished_at: opt_time(deployment.finished_at),
            error: deployment.error.clone(),
            cancel_requested: deployment.cancel_requested,
            log_lines: deployment.log_lines,
            steps: None,
            kind: deployment.kind.as_str().to_owned(),
            forward: deployment.forward.as_deref().and_then(public_forward),
            created_by: deployment.created_by.clone(),
            approval: deployment.approval.as_ref().map(|rule| {
                tako_protocol::api::ApprovalRuleDto {
                    roles: rule.roles.clone(),
                    count: rule.count,
                    not_by: rule.not_by.clone(),
                    deadline: time(rule.deadline),
                }
            }),
            retry_of: deployment
                .retry_of
                .map(|retry| tako_protocol::api::RetryOfDto {
                    deployment: retry.deployment.0,
                    from_failed_step: retry.from_failed_step,
                }),
            intervention: None,
        }
    }
}

impl ToWire for tako_store::Intervention {
    type Wire = tako_protocol::api::InterventionDto;

    fn to_wire(&self) -> tako_protocol::api::InterventionDto {
        tako_protocol::api::InterventionDto {
            step_index: self.step_index,
            step: self.step_name.clone(),
            kind: self.kind.as_str().to_owned(),
            instructions: self.instructions.clone(),
            roles: self.roles.clone(),
            actions: self
                .kind
                .actions()
                .iter()
                .map(|a| a.as_str().to_owned())
                .collect(),
            paused_at: time(self.paused_at),
            answer: self
                .answer
                .as_ref()
                .map(|a| tako_protocol::api::InterventionAnswerDto {
                    by: a.by.clone(),
                    role: a.role.clone(),
                    action: a.action.as_str().to_owned(),
                    note: a.note.clone(),
                    at: time(a.at),
                }),
        }
    }
}

impl ToWire for tako_store::Approval {
    type Wire = tako_protocol::api::ApprovalDto;

    fn to_wire(&self) -> tako_protocol::api::ApprovalDto {
        tako_protocol::api::ApprovalDto {
            by: self.by.clone(),
            role: self.role.clone(),
            decision: if self.approve { "approved" } else { "rejected" }.to_owned(),
            note: self.note.clone(),
            at: time(self.at),
        }
    }
}

impl ToWire for DeliveryOutcome {
    type Wire = OutcomeDto;

    fn to_wire(&self) -> OutcomeDto {
        let outcome = self;
        let (kind, reason, release, deployment) = match outcome {
            DeliveryOutcome::Queued {
                release,
                deployment,
            } => ("queued", None, Some(release.0), Some(deployment.0)),
            DeliveryOutcome::Ignored { reason } => ("ignored", Some(reason.clone()), None, None),
            DeliveryOutcome::Failed { reason } => ("failed", Some(reason.clone()), None, None),
            DeliveryOutcome::Duplicate => ("duplicate", None, None, None),
        };
        OutcomeDto {
            kind: kind.to_owned(),
            reason,
            release,
            deployment,
        }
    }
}

impl ToWire for Delivery {
    type Wire = DeliveryDto;

    fn to_wire(&self) -> DeliveryDto {
        let delivery = self;
        DeliveryDto {
            id: delivery.id.0.clone(),
            event: delivery.event.clone(),
            received_at: time(delivery.received_at),
            repository: delivery.repository_url.clone(),
            git_ref: delivery.git_ref.clone(),
            after: delivery.after.clone(),
            recovered: delivery.recovered,
            project: delivery.project.map(|p| p.0),
            state: match delivery.state {
                DeliveryState::Pending => "pending",
                DeliveryState::Done => "done",
            }
            .to_owned(),
            outcome: delivery.outcome.as_ref().map(to_wire),
            completed_at: opt_time(delivery.completed_at),
            warnings: delivery.warnings.clone(),
            claimed_by: delivery.claimed_by.as_ref().map(|node| node.0.clone()),
            forward: None,
        }
    }
}

impl ToWire for ApiToken {
    type Wire = TokenDto;

    fn to_wire(&self) -> TokenDto {
        let token = self;
        TokenDto {
            id: token.id.0,
            name: token.name.clone(),
            role: token.role.clone(),
            created_at: time(token.created_at),
            last_used_at: opt_time(token.last_used_at),
            expires_at: opt_time(token.expires_at),
            revoked: token.revoked,
        }
    }
}

impl ToWire for tako_store::EnvironmentPolicy {
    type Wire = EnvironmentPolicyDto;

    fn to_wire(&self) -> EnvironmentPolicyDto {
        let policy = self;
        EnvironmentPolicyDto {
            environment: policy.environment.clone(),
            allowed_branches: policy.allowed_branches.clone(),
            updated_at: time(policy.updated_at),
        }
    }
}

impl ToWire for tako_store::AuditEntry {
    type Wire = AuditEntryDto;

    fn to_wire(&self) -> AuditEntryDto {
        let entry = self;
        AuditEntryDto {
            id: entry.id.0,
            at: time(entry.at),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            target: entry.target.clone(),
            source: entry.source.clone(),
            outcome: entry.outcome.clone(),
            detail: entry.detail.clone(),
        }
    }
}

impl ToWire for tako_store::Agent {
    type Wire = tako_protocol::api::AgentDto;

    fn to_wire(&self) -> tako_protocol::api::AgentDto {
        let state = match self.state {
            tako_store::AgentState::Active
                if crate::services::agents::is_online(self, Utc::now()) =>
            {
                "online"
            }
            tako_store::AgentState::Active => "offline",
            other => other.as_str(),
        };
        tako_protocol::api::AgentDto {
            name: self.name.clone(),
            state: state.to_owned(),
            environments: self.environments.clone(),
            roles: self.roles.clone(),
            version: self.version.clone(),
            created_at: time(self.created_at),
            last_seen_at: opt_time(self.last_seen_at),
            current_job: None,
        }
    }
}

impl ToWire for crate::services::AgentStatus {
    type Wire = tako_protocol::api::AgentDto;

    fn to_wire(&self) -> tako_protocol::api::AgentDto {
        let mut dto = self.agent.to_wire();
        dto.current_job =
            self.current_job
                .as_ref()
                .map(|job| tako_protocol::api::AgentCurrentJob {
                    id: job.id.0.clone(),
                    deployment: job.deployment.0,
                    step: job.step_name.clone(),
                    started_at: opt_time(job.started_at),
                });
        dto
    }
}

impl ToWire for tako_store::Job {
    type Wire = tako_protocol::api::JobDto;

    fn to_wire(&self) -> tako_protocol::api::JobDto {
        let job = self;
        tako_protocol::api::JobDto {
            id: job.id.0.clone(),
            step_index: job.step_index,
            step: job.step_name.clone(),
            attempt: job.attempt,
            agent: job.agent_name.clone(),
            log_label: job.log_label(),
            state: job.state.as_str().to_owned(),
            reason: job.reason.clone(),
            created_at: time(job.created_at),
            started_at: opt_time(job.started_at),
            finished_at: opt_time(job.finished_at),
            duration_ms: job.duration_ms,
        }
    }
}

/// What an agent is told about itself.
pub(crate) fn agent_info(agent: &tako_store::Agent) -> tako_protocol::agent::AgentInfo {
    tako_protocol::agent::AgentInfo {
        name: agent.name.clone(),
        state: agent.state.as_str().to_owned(),
        environments: agent.environments.clone(),
        roles: agent.roles.clone(),
    }
}

/// A delivery as the API shows it, with the forward record (stored JSON) of
/// the deployment it queued when that was forwarded to Octopus.
pub(crate) fn delivery_with_forward(delivery: &Delivery, forward: Option<&str>) -> DeliveryDto {
    DeliveryDto {
        forward: forward.and_then(public_forward),
        ..delivery.to_wire()
    }
}

/// A stored forward record (JSON) as the API shows it: the §6 object,
/// without what only resuming needs (`request`).
fn public_forward(stored: &str) -> Option<serde_json::Value> {
    let mut record = serde_json::from_str::<serde_json::Value>(stored).ok()?;
    if let Some(map) = record.as_object_mut() {
        let delivery = map.get("request").and_then(|r| r.get("delivery")).cloned();
        map.remove("request");
        if let Some(delivery) = delivery {
            map.insert("delivery".to_owned(), delivery);
        }
    }
    Some(record)
}

fn plan_variables(
    variables: &[tako_exec::forecast::ForecastVariable],
) -> Vec<tako_protocol::api::PlanVariableDto> {
    variables
        .iter()
        .map(|v| tako_protocol::api::PlanVariableDto {
            name: v.name.clone(),
            // Masked by the forecast already; never a sensitive value.
            value: if v.sensitive {
                MASKED_VALUE.to_owned()
            } else {
                v.value.clone()
            },
            sensitive: v.sensitive,
        })
        .collect()
}

impl ToWire for crate::plans::Planned {
    type Wire = tako_protocol::api::PlanDto;
    fn to_wire(&self) -> Self::Wire {
        let steps = self
            .forecast
            .steps
            .iter()
            .map(|step| tako_protocol::api::PlanStepDto {
                index: u32::try_from(step.index).unwrap_or(u32::MAX),
                name: step.name.clone(),
                outcome: step.outcome.as_str().to_owned(),
                reason: step.outcome.reason(),
                note: step.note.clone(),
                roles: step
                    .targets
                    .as_ref()
                    .map(|t| t.roles.clone())
                    .unwrap_or_default(),
                agents: step.jobs.iter().map(|job| job.agent.clone()).collect(),
                variables: plan_variables(&step.variables),
                jobs: step
                    .jobs
                    .iter()
                    .map(|job| tako_protocol::api::PlanJobDto {
                        agent: job.agent.clone(),
                        roles: job.roles.clone(),
                        variables: plan_variables(&job.variables),
                    })
                    .collect(),
            })
            .collect();
        tako_protocol::api::PlanDto {
            project: self.project.clone(),
            environment: self.environment.clone(),
            release_number: self.release_number.clone(),
            notes: self.notes.clone(),
            commit: self.commit.clone(),
            branch: self.branch.clone(),
            refused: self.refused.clone(),
            approval: self.approval.clone(),
            variables: plan_variables(&self.forecast.variables),
            steps,
        }
    }
}

/// A freeze on the wire, with when it ends if it holds now (`until`) and
/// its project's name.
pub(crate) fn freeze_dto(
    freeze: &tako_store::Freeze,
    until: Option<DateTime<Utc>>,
    project: Option<String>,
) -> tako_protocol::api::FreezeDto {
    let (from, to, weekly) = match &freeze.window {
        tako_core::freeze::FreezeWindow::Once { from, to } => {
            (Some(time(*from)), Some(time(*to)), None)
        }
        tako_core::freeze::FreezeWindow::Weekly(rule) => (None, None, Some(rule.to_text())),
    };
    tako_protocol::api::FreezeDto {
        id: freeze.id,
        environment: freeze.environment.clone(),
        project,
        from,
        to,
        weekly,
        reason: freeze.reason.clone(),
        created_by: freeze.created_by.clone(),
        active_until: until.map(time),
    }
}
