//! Releases by id, queuing deployments, listing, reading, retrying and cancelling
//! them, and which agents ran their steps (their jobs).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tako_store::{DeploymentFilter, DeploymentId, DeploymentState, ReleaseId};
use utoipa::IntoParams;

use crate::api::auth::{Deployer, Principal};
use crate::api::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::api::{ErrorBody, logs, page_request};
use crate::http::wire::to_wire;
use crate::state::AppState;
use tako_protocol::api::{
    AnswerIntervention, ApprovalDto, CreateDeployment, DecideApproval, DeploymentDto,
    DeploymentPage, InterventionDto, JobDto, OpenInterventionDto, ReleaseDto, RetryDeployment,
};

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/releases/{id}", get(get_release))
        .route("/releases/{id}/deployments", post(deploy_release))
        .route("/deployments", get(list_deployments))
        .route("/deployments/{id}", get(get_deployment))
        .route("/deployments/{id}/cancel", post(cancel_deployment))
        .route("/deployments/{id}/retry", post(retry_deployment))
        .route("/deployments/{id}/log", get(logs::deployment_log))
        .route("/deployments/{id}/jobs", get(deployment_jobs))
        .route("/deployments/{id}/approve", post(approve_deployment))
        .route("/deployments/{id}/reject", post(reject_deployment))
        .route("/deployments/{id}/approvals", get(deployment_approvals))
        .route(
            "/deployments/{id}/interventions",
            get(deployment_interventions),
        )
        .route(
            "/deployments/{id}/interventions/{action}",
            post(answer_intervention),
        )
        .route("/approvals", get(awaiting_my_approval))
        .route("/interventions", get(open_interventions))
        .route(
            "/projects/{name}/releases/{number}/promote",
            post(promote_release),
        )
}

/// Approves a deployment awaiting approval: the approval that completes its
/// phase's `Count` queues it. Only a role the phase's `Approval` names, and
/// not its pusher or creator when it says `NotBy`.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/approve", tag = "approvals",
    request_body = DecideApproval,
    params(("id" = i64, Path, description = "The deployment's id")),
    responses((status = 200, body = DeploymentDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn approve_deployment(
    who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<DecideApproval>,
) -> ApiResult<Json<DeploymentDto>> {
    let note = body.note;
    let deployment = state
        .services
        .decide_approval(&who, DeploymentId(id), true, note.as_deref())
        .await?;
    Ok(Json(to_wire(&deployment)))
}

/// Rejects a deployment awaiting approval: it is cancelled, its error
/// *rejected by <name>: <note>*.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/reject", tag = "approvals",
    request_body = DecideApproval,
    params(("id" = i64, Path, description = "The deployment's id")),
    responses((status = 200, body = DeploymentDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn reject_deployment(
    who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<DecideApproval>,
) -> ApiResult<Json<DeploymentDto>> {
    let note = body.note;
    let deployment = state
        .services
        .decide_approval(&who, DeploymentId(id), false, note.as_deref())
        .await?;
    Ok(Json(to_wire(&deployment)))
}

/// A deployment's approvals and rejections, oldest first.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/approvals", tag = "approvals",
    params(("id" = i64, Path, description = "The deployment's id")),
    responses((status = 200, body = Vec<ApprovalDto>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn deployment_approvals(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<ApprovalDto>>> {
    let approvals = state
        .services
        .deployment_approvals(DeploymentId(id))
        .await?;
    Ok(Json(approvals.iter().map(to_wire).collect()))
}

/// Answers a paused deployment: `proceed` or `abort` a step that waits for
/// a person (`Uses: manual-intervention`), `retry`, `ignore` or `abort` a
/// failed step with `OnFailure: ask`. Only a role the step's `Roles` name
/// (by default admin and deployer). *Proceed*, *Retry* and *Ignore* queue
/// it again; *Abort* fails it with the note.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/interventions/{action}",
    tag = "deployments",
    request_body = AnswerIntervention,
    params(("id" = i64, Path, description = "The deployment's id"),
        ("action" = String, Path, description = "proceed, retry, ignore or abort")),
    responses((status = 200, body = DeploymentDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn answer_intervention(
    who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath((id, action)): ApiPath<(i64, String)>,
    ApiJson(body): ApiJson<AnswerIntervention>,
) -> ApiResult<Json<DeploymentDto>> {
    let Some(action) = tako_store::InterventionAction::parse(&action) else {
        return Err(ApiError::bad_request(format!(
            "unknown answer {action:?}: expected proceed, retry, ignore or abort"
        )));
    };
    let deployment = state
        .services
        .answer_intervention(&who, DeploymentId(id), action, body.note.as_deref())
        .await?;
    Ok(Json(to_wire(&deployment)))
}

/// A deployment's pauses and their answers, oldest first.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/interventions", tag = "deployments",
    params(("id" = i64, Path, description = "The deployment's id")),
    responses((status = 200, body = Vec<InterventionDto>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn deployment_interventions(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<InterventionDto>>> {
    let pauses = state
        .services
        .deployment_interventions(DeploymentId(id))
        .await?;
    Ok(Json(pauses.iter().map(to_wire).collect()))
}

/// `?state=` of the list of pauses.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InterventionQuery {
    /// `open` (the default and only one: a deployment's answered pauses
    /// are at `/api/v1/deployments/{id}/interventions`).
    pub(crate) state: Option<String>,
}

/// The paused deployments and the pause each waits on (project,
/// environment, release, step, instructions, who may answer, since when),
/// the oldest pause first, with whether the caller's role may answer it.
/// Any role may read them.
#[utoipa::path(get, path = "/api/v1/interventions", tag = "deployments",
    params(InterventionQuery),
    responses((status = 200, body = Vec<OpenInterventionDto>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn open_interventions(
    who: Principal,
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<InterventionQuery>,
) -> ApiResult<Json<Vec<OpenInterventionDto>>> {
    match query.state.as_deref() {
        None | Some("" | "open") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown state {other:?}: only open pauses are listed (a deployment's answered pauses are at /api/v1/deployments/{{id}}/interventions)"
            )));
        }
    }
    let open = state.services.open_interventions(&who).await?;
    Ok(Json(
        open.iter()
            .map(|o| OpenInterventionDto {
                deployment: o.deployment.id.0,
                project: o.project.clone(),
                environment: o.deployment.environment.clone(),
                release: o.release.clone(),
                intervention: to_wire(&o.pause),
                may_answer: o.may_answer,
            })
            .collect(),
    ))
}

/// The deployments awaiting an approval the caller may give (their role is
/// named, they are not its pusher or creator under `NotBy`, they have not
/// decided yet), oldest first.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals",
    responses((status = 200, body = Vec<DeploymentDto>), (status = 401, body = ErrorBody)))]
pub(crate) async fn awaiting_my_approval(
    who: Principal,
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<Vec<DeploymentDto>>> {
    let waiting = state.services.awaiting_approval_by(&who).await?;
    Ok(Json(waiting.iter().map(to_wire).collect()))
}

/// Deploys a release to the next phase of its project's lifecycle: the one
/// after the furthest phase it succeeded in (or the first). 409 without a
/// lifecycle, after the last phase, or when that phase's `Requires` are not
/// met (naming them).
#[utoipa::path(post, path = "/api/v1/projects/{name}/releases/{number}/promote",
    tag = "deployments",
    params(("name" = String, Path, description = "The project's name"),
        ("number" = String, Path, description = "The release's number")),
    responses((status = 201, body = DeploymentDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn promote_release(
    Deployer(who): Deployer,
    State(state): State<Arc<AppState>>,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> ApiResult<(StatusCode, Json<DeploymentDto>)> {
    let deployment = state.services.promote_release(&who, &name, &number).await?;
    Ok((StatusCode::CREATED, Json(to_wire(&deployment))))
}

/// A release by id.
#[utoipa::path(get, path = "/api/v1/releases/{id}", tag = "releases",
    params(("id" = i64, Path, description = "The release's id")),
    responses((status = 200, body = ReleaseDto), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn get_release(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<ReleaseDto>> {
    let release = state.services.store.get_release(ReleaseId(id)).await?;
    Ok(Json(to_wire(&release)))
}

/// Queues a deployment of a release to an environment.
#[utoipa::path(post, path = "/api/v1/releases/{id}/deployments", tag = "deployments",
    request_body = CreateDeployment,
    params(("id" = i64, Path, description = "The release's id")),
    responses((status = 201, body = DeploymentDto), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The project's lifecycle refuses it (the release has not succeeded in an environment this one requires, named), or the environment is frozen (the freeze and its end named)"),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn deploy_release(
    Deployer(who): Deployer,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CreateDeployment>,
) -> ApiResult<(StatusCode, Json<DeploymentDto>)> {
    let deployment = state
        .services
        .deploy_release(
            &who,
            ReleaseId(id),
            &body.environment,
            body.override_freeze.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(to_wire(&deployment))))
}

/// Retries a failed or cancelled deployment: a new deployment of the same
/// release to the same environment (through the lifecycle like any
/// deployment); with `from_failed_step`, from its failed step on.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/retry", tag = "deployments",
    request_body = RetryDeployment,
    params(("id" = i64, Path, description = "The deployment to retry")),
    responses((status = 201, body = DeploymentDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "It has not failed or been cancelled, has no failed step to start from, or the lifecycle refuses it"),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn retry_deployment(
    Deployer(who): Deployer,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<RetryDeployment>,
) -> ApiResult<(StatusCode, Json<DeploymentDto>)> {
    let deployment = state
        .services
        .retry_deployment(&who, DeploymentId(id), body.from_failed_step)
        .await?;
    Ok((StatusCode::CREATED, Json(to_wire(&deployment))))
}

/// Which deployments to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeploymentQuery {
    /// Only this project's (by name).
    pub(crate) project: Option<String>,
    /// Only to this environment.
    pub(crate) environment: Option<String>,
    /// Only in this state (`awaiting_approval`, `queued`, `running`,
    /// `success`, `failed`, `cancelled`, `interrupted`).
    pub(crate) state: Option<String>,
    /// At most this many (1 to 200, default 50).
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// Deployments, newest first.
#[utoipa::path(get, path = "/api/v1/deployments", tag = "deployments",
    params(DeploymentQuery),
    responses((status = 200, body = DeploymentPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_deployments(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<DeploymentQuery>,
) -> ApiResult<Json<DeploymentPage>> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let filter = deployment_filter(&state, query).await?;
    let deployments = state.services.store.list_deployments(&filter, page).await?;
    Ok(Json(DeploymentPage {
        items: deployments.items.iter().map(to_wire).collect(),
        next_cursor: deployments.next.map(|c| c.to_token()),
    }))
}

async fn deployment_filter(
    state: &AppState,
    query: DeploymentQuery,
) -> ApiResult<DeploymentFilter> {
    let deployment_state = match query.state.as_deref() {
        None | Some("") => None,
        Some(text) => Some(DeploymentState::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown state {text:?}: expected awaiting_approval, queued, running, paused, success, failed, cancelled or interrupted"
            ))
        })?),
    };
    let project = match query.project.as_deref() {
        None | Some("") => None,
        Some(name) => Some(state.services.project_named(name).await?.id),
    };
    Ok(DeploymentFilter {
        project,
        environment: query.environment.filter(|e| !e.is_empty()),
        state: deployment_state,
    })
}

/// One deployment, with its steps.
#[utoipa::path(get, path = "/api/v1/deployments/{id}", tag = "deployments",
    params(("id" = i64, Path, description = "The deployment's id")),
    responses((status = 200, body = DeploymentDto), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn get_deployment(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<DeploymentDto>> {
    let deployment = state
        .services
        .store
        .get_deployment(DeploymentId(id))
        .await?;
    let steps = state.services.store.list_steps(deployment.id).await?;
    let mut dto = to_wire(&deployment);
    dto.steps = Some(steps.iter().map(to_wire).collect());
    if deployment.state == DeploymentState::Paused {
        dto.intervention = state
            .services
            .deployment_interventions(deployment.id)
            .await?
            .iter()
            .rev()
            .find(|pause| pause.answer.is_none())
            .map(to_wire);
    }
    Ok(Json(dto))
}

/// A deployment's jobs: one per agent that ran, runs or was to run one of
/// its `Roles` steps, by step then agent, with its state, times and
/// duration (empty when every step ran on the server). An agent's task log
/// lines are labelled with the job's `log_label` (`Test@win-01`).
#[utoipa::path(get, path = "/api/v1/deployments/{id}/jobs", tag = "deployments",
    params(("id" = i64, Path, description = "The deployment's id")),
    responses((status = 200, body = [JobDto]), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn deployment_jobs(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Vec<JobDto>>> {
    let jobs = state.services.deployment_jobs(DeploymentId(id)).await?;
    Ok(Json(jobs.iter().map(to_wire).collect()))
}

/// Cancels a deployment: a queued one at once, a running one at its next
/// check. 409 when it has already ended.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/cancel", tag = "deployments",
    params(("id" = i64, Path, description = "The deployment's id")),
    responses((status = 200, body = DeploymentDto), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn cancel_deployment(
    Deployer(who): Deployer,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<DeploymentDto>> {
    let deployment = state
        .services
        .cancel_deployment(&who, DeploymentId(id))
        .await?;
    Ok(Json(to_wire(&deployment)))
}
