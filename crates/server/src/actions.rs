//! What people do to deployments and deliveries, once for the JSON API and
//! the web UI: each action checks the caller's role and the rules, changes
//! the store, wakes who must act, and logs who did it. The two front ends
//! only translate requests and answers.

use tako_store::{DeliveryId, Deployment, DeploymentId, NewDeployment, ReleaseId, StoreError};

use crate::api::auth::Principal;
use crate::api::check_name;
use crate::api::error::{ApiError, ApiResult};
use crate::http::AppState;

/// Queues a deployment of `release` to `environment`, if the caller may
/// deploy and the environment's branch policy allows the release's branch.
pub(crate) async fn deploy_release(
    state: &AppState,
    who: &Principal,
    release: ReleaseId,
    environment: &str,
) -> ApiResult<Deployment> {
    who.require_deployer("deploy: it needs the admin or deployer role")?;
    check_name("environment", environment)?;
    let environment = environment.trim();
    let release = state.store.get_release(release).await?;
    crate::policy::check(
        state.store.as_ref(),
        release.project,
        environment,
        release.branch.as_deref(),
    )
    .await
    .map_err(|reason| {
        ApiError::unprocessable(format!("refused by the environment policy: {reason}"))
    })?;
    let deployment = state
        .store
        .create_deployment(NewDeployment {
            release: release.id,
            environment: environment.to_owned(),
        })
        .await?;
    state.deployments_queued.notify_one();
    tracing::info!(deployment = %deployment.id, release = %release.number,
        environment = %deployment.environment, by = %who.name, "deployment queued");
    Ok(deployment)
}

/// Cancels a deployment: a queued one at once, a running one at its next
/// check. 409 when it has already ended.
pub(crate) async fn cancel_deployment(
    state: &AppState,
    who: &Principal,
    id: DeploymentId,
) -> ApiResult<Deployment> {
    who.require_deployer("cancel: it needs the admin or deployer role")?;
    let deployment = state.store.request_cancel(id).await?;
    // A cancelled queued deployment may free the scheduler's next pick.
    state.deployments_queued.notify_one();
    tracing::info!(deployment = %id, by = %who.name, role = %who.role, token = %who.token,
        "cancel requested");
    Ok(deployment)
}

/// Makes a processed delivery pending again so the router processes its
/// stored body once more (admin only). 409 while it is still pending.
pub(crate) async fn replay_delivery(
    state: &AppState,
    who: &Principal,
    id: &str,
) -> ApiResult<tako_store::Delivery> {
    who.require_admin("replay deliveries: it needs the admin role")?;
    let delivery = match state
        .store
        .replay_delivery(&DeliveryId(id.to_owned()))
        .await
    {
        Err(StoreError::InvalidTransition { .. }) => {
            return Err(ApiError::Conflict(format!(
                "delivery {id} has not been processed yet: wait for its outcome, then replay it"
            )));
        }
        other => other?,
    };
    state.deliveries_stored.notify_one();
    tracing::info!(delivery = %id, by = %who.name, token = %who.token, "delivery replayed");
    Ok(delivery)
}

/// Sets (or replaces, by name and scope) a project variable (admin only).
pub(crate) async fn set_variable(
    state: &AppState,
    who: &Principal,
    project: &str,
    body: crate::api::dto::SetVariable,
    name: &str,
) -> ApiResult<tako_store::Variable> {
    who.require_admin("read or change variables: it needs the admin role")?;
    let project = crate::api::projects::project_named(state.store.as_ref(), project).await?;
    let variable = state
        .store
        .set_variable(crate::api::projects::new_variable(&project, name, body)?)
        .await?;
    tracing::info!(project = %project.name, variable = %variable.name, by = %who.name, "variable set");
    Ok(variable)
}

/// Deletes a project variable by id (admin only); 404 when the project
/// has no such variable.
pub(crate) async fn delete_variable(
    state: &AppState,
    who: &Principal,
    project: &str,
    id: tako_store::VariableId,
) -> ApiResult<()> {
    who.require_admin("read or change variables: it needs the admin role")?;
    let project = crate::api::projects::project_named(state.store.as_ref(), project).await?;
    let owned = state
        .store
        .list_variables(project.id)
        .await?
        .into_iter()
        .any(|v| v.id == id);
    if !owned {
        return Err(ApiError::NotFound(format!(
            "variable {id} of project {} not found",
            project.name
        )));
    }
    state.store.delete_variable(id).await?;
    tracing::info!(project = %project.name, variable = %id, by = %who.name, "variable deleted");
    Ok(())
}
