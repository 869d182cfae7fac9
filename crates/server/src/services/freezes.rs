//! Deployment freezes (journey.md §5): admins create, list and delete
//! them; a manual deployment into a frozen environment is refused (409
//! naming the freeze and its end) unless an admin overrides it with a
//! reason; an admin may release one held deployment early with a reason.
//! Every override is audited. The sweep ([`Services::release_ended_holds`])
//! releases held deployments once no freeze holds.

use chrono::{DateTime, Utc};
use tako_core::freeze::{FreezeRuleError, FreezeWindow, WeeklyRule};
use tako_store::{
    Deployment, DeploymentFilter, DeploymentId, DeploymentState, Freeze, NewAuditEntry, NewFreeze,
    PageRequest, ProjectId,
};

use super::{Principal, ServiceError, ServiceResult, Services, check_name};
use crate::freezes::ActiveFreeze;

/// The longest reason accepted.
const MAX_REASON_CHARS: usize = 500;

/// A freeze asked for: a window (`from`/`to`, RFC 3339) or a weekly rule
/// (`every` days with `from`/`to` as `HH:MM` UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreezeInput {
    /// The environment.
    pub environment: String,
    /// Only this project (by name); default: every project.
    pub project: Option<String>,
    /// The start: an instant, or with `every` a time of day.
    pub from: String,
    /// The end: an instant, or with `every` a time of day.
    pub to: String,
    /// Days of the week (`sat,sun`): a weekly freeze.
    pub every: Option<String>,
    /// Why.
    pub reason: String,
}

/// A field of [`FreezeInput`], to say where a refused input went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezeField {
    /// `environment`.
    Environment,
    /// `project`.
    Project,
    /// `from`.
    From,
    /// `to`.
    To,
    /// `every`.
    Every,
    /// `reason`.
    Reason,
}

impl FreezeField {
    /// The field's name, as the API and the form call it.
    pub fn as_str(self) -> &'static str {
        match self {
            FreezeField::Environment => "environment",
            FreezeField::Project => "project",
            FreezeField::From => "from",
            FreezeField::To => "to",
            FreezeField::Every => "every",
            FreezeField::Reason => "reason",
        }
    }
}

/// Why a freeze was not created, and which field was wrong (`None`: not a
/// field's fault, e.g. the caller's role).
#[derive(Debug)]
pub struct FreezeRefusal {
    /// The field at fault, if one is.
    pub field: Option<FreezeField>,
    /// The error, as the API answers it.
    pub error: ServiceError,
}

impl FreezeRefusal {
    fn whole(error: ServiceError) -> FreezeRefusal {
        FreezeRefusal { field: None, error }
    }

    fn at(field: FreezeField) -> impl Fn(ServiceError) -> FreezeRefusal {
        move |error| FreezeRefusal {
            field: Some(field),
            error,
        }
    }
}

/// A deployment held by a freeze, and the freeze holding it now (the one
/// ending last; `None` when none holds any more and the next sweep
/// releases it).
#[derive(Debug, Clone)]
pub struct HeldDeployment {
    /// The held deployment.
    pub deployment: Deployment,
    /// What holds it.
    pub holding: Option<ActiveFreeze>,
}

/// How many held deployments [`Services::held_deployments`] lists at most.
const HELD_LISTED: u32 = 200;

impl Services {
    /// Creates a freeze (admin).
    pub async fn create_freeze(
        &self,
        who: &Principal,
        input: FreezeInput,
    ) -> ServiceResult<Freeze> {
        self.create_freeze_or_refuse(who, input)
            .await
            .map_err(|refusal| refusal.error)
    }

    /// Creates a freeze (admin), or says which field of the input was
    /// refused (the web UI's form shows the error next to it).
    pub async fn create_freeze_or_refuse(
        &self,
        who: &Principal,
        input: FreezeInput,
    ) -> Result<Freeze, FreezeRefusal> {
        who.require_admin("create freezes: it needs the admin role")
            .map_err(FreezeRefusal::whole)?;
        check_name("environment", &input.environment)
            .map_err(FreezeRefusal::at(FreezeField::Environment))?;
        let reason = check_reason(&input.reason).map_err(FreezeRefusal::at(FreezeField::Reason))?;
        let window = match input
            .every
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            Some(days) => FreezeWindow::Weekly(
                WeeklyRule::new(days, &input.from, &input.to).map_err(|e| {
                    let field = match &e {
                        FreezeRuleError::Day(_) | FreezeRuleError::Shape(_) => FreezeField::Every,
                        FreezeRuleError::Time(text) if *text == input.from => FreezeField::From,
                        FreezeRuleError::Time(_) | FreezeRuleError::Empty => FreezeField::To,
                    };
                    FreezeRefusal::at(field)(ServiceError::invalid(e.to_string()))
                })?,
            ),
            None => {
                let from =
                    instant("from", &input.from).map_err(FreezeRefusal::at(FreezeField::From))?;
                let to = instant("to", &input.to).map_err(FreezeRefusal::at(FreezeField::To))?;
                if to <= from {
                    return Err(FreezeRefusal::at(FreezeField::To)(ServiceError::invalid(
                        format!(
                            "the freeze ends ({}) before it starts ({}): give a later `to`",
                            input.to.trim(),
                            input.from.trim()
                        ),
                    )));
                }
                FreezeWindow::Once { from, to }
            }
        };
        let project = match input
            .project
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            Some(name) => Some(
                self.project_named(name)
                    .await
                    .map_err(|error| match error {
                        ServiceError::NotFound(_) => FreezeRefusal::at(FreezeField::Project)(error),
                        other => FreezeRefusal::whole(other),
                    })?
                    .id,
            ),
            None => None,
        };
        let freeze = self
            .store
            .create_freeze(NewFreeze {
                environment: input.environment.trim().to_owned(),
                project,
                window,
                reason,
                created_by: who.name.clone(),
            })
            .await
            .map_err(|e| FreezeRefusal::whole(e.into()))?;
        tracing::info!(freeze = freeze.id, environment = %freeze.environment, by = %who.name,
            "freeze created");
        Ok(freeze)
    }

    /// Every freeze, with when it ends when it holds now (any role).
    pub async fn list_freezes(&self) -> ServiceResult<Vec<(Freeze, Option<DateTime<Utc>>)>> {
        let now = Utc::now();
        Ok(self
            .store
            .list_freezes()
            .await?
            .into_iter()
            .map(|freeze| {
                let until = freeze.window.active_until(now);
                (freeze, until)
            })
            .collect())
    }

    /// The held deployments (the newest [`HELD_LISTED`]), each with the
    /// freeze holding it now (any role).
    pub async fn held_deployments(&self) -> ServiceResult<Vec<HeldDeployment>> {
        let held = self
            .store
            .list_deployments(
                &DeploymentFilter {
                    project: None,
                    environment: None,
                    state: Some(DeploymentState::Held),
                },
                PageRequest::first(HELD_LISTED),
            )
            .await?
            .items;
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let freezes = self.store.list_freezes().await?;
        let now = Utc::now();
        Ok(held
            .into_iter()
            .map(|deployment| {
                let applying: Vec<Freeze> = freezes
                    .iter()
                    .filter(|f| {
                        crate::freezes::applies(f, deployment.project, &deployment.environment)
                    })
                    .cloned()
                    .collect();
                HeldDeployment {
                    holding: crate::freezes::active_among(&applying, now),
                    deployment,
                }
            })
            .collect())
    }

    /// The freeze holding a deployment now, when it is held (any role).
    pub async fn freeze_holding(
        &self,
        deployment: &Deployment,
    ) -> ServiceResult<Option<ActiveFreeze>> {
        if deployment.state != DeploymentState::Held {
            return Ok(None);
        }
        Ok(crate::freezes::active(
            self.store.as_ref(),
            deployment.project,
            &deployment.environment,
            Utc::now(),
        )
        .await?)
    }

    /// Deletes a freeze (admin); its held deployments are released by the
    /// next sweep when no other freeze holds them.
    pub async fn delete_freeze(&self, who: &Principal, id: i64) -> ServiceResult<()> {
        who.require_admin("delete freezes: it needs the admin role")?;
        self.store.delete_freeze(id).await?;
        tracing::info!(freeze = id, by = %who.name, "freeze deleted");
        Ok(())
    }

    /// Refuses a manual deployment of `project` into a frozen
    /// `environment`, unless `override_reason` is given by an admin
    /// (audited).
    pub(crate) async fn check_freeze(
        &self,
        who: &Principal,
        project: ProjectId,
        environment: &str,
        override_reason: Option<&str>,
    ) -> ServiceResult<Option<ActiveFreeze>> {
        let Some(active) =
            crate::freezes::active(self.store.as_ref(), project, environment, Utc::now()).await?
        else {
            return Ok(None);
        };
        match override_reason {
            None => Err(ServiceError::Conflict(format!(
                "{environment} is frozen: {}; deploy after it ends, or an admin may override it with a reason (--override-freeze \"why\")",
                active.describe()
            ))),
            Some(reason) => {
                who.require_admin("override a freeze: it needs the admin role")?;
                check_reason(reason)?;
                Ok(Some(active))
            }
        }
    }

    /// Audits a freeze overridden for deployment `id`.
    pub(crate) async fn audit_override(
        &self,
        who: &Principal,
        id: DeploymentId,
        active: &ActiveFreeze,
        reason: &str,
    ) {
        tracing::warn!(deployment = %id, freeze = active.freeze.id, by = %who.name,
            reason, "freeze overridden");
        let entry = NewAuditEntry {
            actor: format!("token {} ({})", who.token, who.name),
            action: "freeze.override".to_owned(),
            target: format!("/api/v1/deployments/{id}"),
            source: None,
            outcome: "ok".to_owned(),
            detail: Some(format!("{}; reason: {}", active.describe(), reason.trim())),
        };
        if let Err(error) = self.store.append_audit(entry).await {
            tracing::error!(deployment = %id, %error, "cannot append to the audit log");
        }
    }

    /// Releases a held deployment before its freeze ends (admin, with a
    /// reason; audited).
    pub async fn release_held_deployment(
        &self,
        who: &Principal,
        id: DeploymentId,
        reason: &str,
    ) -> ServiceResult<Deployment> {
        who.require_admin("override a freeze: it needs the admin role")?;
        check_reason(reason)?;
        let held = self.store.get_deployment(id).await?;
        let active = crate::freezes::active(
            self.store.as_ref(),
            held.project,
            &held.environment,
            Utc::now(),
        )
        .await?;
        let released = match self.store.release_held(id).await {
            Err(tako_store::StoreError::InvalidTransition { from, .. }) => {
                return Err(ServiceError::Conflict(format!(
                    "deployment {id} is {from}, not held: only a held deployment can be released"
                )));
            }
            other => other?,
        };
        self.deployments_queued.notify_one();
        if let Some(active) = active {
            self.audit_override(who, id, &active, reason).await;
        } else {
            tracing::info!(deployment = %id, by = %who.name, "held deployment released");
        }
        Ok(released)
    }

    /// The sweep: releases the held deployments no freeze holds any more.
    pub async fn release_ended_holds(&self) -> ServiceResult<usize> {
        let released = crate::freezes::release_ended(self.store.as_ref(), Utc::now()).await?;
        for deployment in &released {
            tracing::info!(deployment = %deployment.id, environment = %deployment.environment,
                state = %deployment.state, "freeze over: held deployment released");
        }
        if !released.is_empty() {
            self.deployments_queued.notify_one();
        }
        Ok(released.len())
    }
}

fn check_reason(reason: &str) -> ServiceResult<String> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ServiceError::invalid(
            "a reason is required (what the freeze is for, or why it is overridden)",
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ServiceError::invalid(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    Ok(reason.to_owned())
}

fn instant(field: &str, text: &str) -> ServiceResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ServiceError::invalid(format!(
                "{field} {:?} is not an instant: write RFC 3339, e.g. 2026-11-27T00:00:00Z (or give --every DAYS with HH:MM times for a weekly freeze)",
                text.trim()
            ))
        })
}
