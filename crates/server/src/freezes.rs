//! Deployment freezes (journey.md §5) as every new deployment meets them:
//! [`active`] says whether a freeze holds on a project's environment now,
//! and until when (the latest end among overlapping ones). Manual
//! deployments into a frozen environment are refused (the services, a 409
//! naming the freeze and its end) unless an admin overrides it; automatic
//! ones (a push's, `AutoDeploy`'s) are created `Held` (the router, the
//! scheduler) and released by [`release_ended`], the background sweep,
//! when no freeze holds any more.

use chrono::{DateTime, SecondsFormat, Utc};
use tako_core::freeze::{FreezeWindow, active_until};
use tako_store::{
    Deployment, DeploymentFilter, DeploymentState, Freeze, PageRequest, ProjectId, Store,
    StoreError,
};

/// A freeze holding now.
#[derive(Debug, Clone)]
pub struct ActiveFreeze {
    /// The freeze ending last among those holding.
    pub freeze: Freeze,
    /// When it ends.
    pub until: DateTime<Utc>,
}

impl ActiveFreeze {
    /// `freeze 3 ("Black Friday") on Production until 2026-11-30T00:00:00Z`.
    pub fn describe(&self) -> String {
        format!(
            "freeze {} ({:?}) on {} until {}",
            self.freeze.id,
            self.freeze.reason,
            self.freeze.environment,
            self.until.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

/// Whether `freeze` applies to `project`'s `environment`.
pub fn applies(freeze: &Freeze, project: ProjectId, environment: &str) -> bool {
    freeze.environment.eq_ignore_ascii_case(environment)
        && freeze.project.is_none_or(|p| p == project)
}

/// The freeze holding on `project`'s `environment` at `now`, if any.
pub async fn active(
    store: &dyn Store,
    project: ProjectId,
    environment: &str,
    now: DateTime<Utc>,
) -> Result<Option<ActiveFreeze>, StoreError> {
    let freezes: Vec<Freeze> = store
        .list_freezes()
        .await?
        .into_iter()
        .filter(|f| applies(f, project, environment))
        .collect();
    Ok(active_among(&freezes, now))
}

/// The freeze among `freezes` holding at `now` that ends last.
pub fn active_among(freezes: &[Freeze], now: DateTime<Utc>) -> Option<ActiveFreeze> {
    let windows: Vec<FreezeWindow> = freezes.iter().map(|f| f.window.clone()).collect();
    active_until(&windows, now).map(|(index, until)| ActiveFreeze {
        freeze: freezes[index].clone(),
        until,
    })
}

/// Releases every held deployment whose environment no freeze holds any
/// more (queued, or awaiting its approvals); returns them.
pub async fn release_ended(
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<Vec<Deployment>, StoreError> {
    let held = store
        .list_deployments(
            &DeploymentFilter {
                project: None,
                environment: None,
                state: Some(DeploymentState::Held),
            },
            PageRequest::first(200),
        )
        .await?
        .items;
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let freezes = store.list_freezes().await?;
    let mut released = Vec::new();
    for deployment in held {
        let holding: Vec<Freeze> = freezes
            .iter()
            .filter(|f| applies(f, deployment.project, &deployment.environment))
            .cloned()
            .collect();
        if active_among(&holding, now).is_some() {
            continue;
        }
        match store.release_held(deployment.id).await {
            Ok(deployment) => released.push(deployment),
            // Released or cancelled meanwhile (another node, an admin).
            Err(StoreError::InvalidTransition { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(released)
}
