//! Plans (journey.md §4): `POST /api/v1/projects/{name}/plans` and
//! `POST /api/v1/deliveries/{id}/plan`, what a release would do now.
//! The handlers hand the request to
//! [`Services::plan`](crate::services::Services::plan) and
//! [`Services::plan_delivery`](crate::services::Services::plan_delivery);
//! nothing is created.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::post;
use axum::{Json, Router};
use tako_protocol::api::{CreatePlan, DeliveryPlanDto, PlanDto};

use crate::api::ErrorBody;
use crate::api::auth::Deployer;
use crate::api::error::{ApiJson, ApiPath, ApiResult};
use crate::http::limits::SMALL_BODY_BYTES;
use crate::http::wire::to_wire;
use crate::services::PlanInput;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/projects/{name}/plans",
            post(create_plan).layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)),
        )
        .route("/deliveries/{id}/plan", post(plan_delivery))
}

/// What a release of a branch (default: the default branch) or commit would
/// do in an environment now: its number and notes, each step run, skipped
/// (why) or failing, where, with the variables it sees (sensitive values
/// `********`), the approval it waits for or why it is refused. Nothing is
/// created and nothing runs. Needs the `admin` or `deployer` role.
#[utoipa::path(post, path = "/api/v1/projects/{name}/plans", tag = "releases",
    request_body = CreatePlan,
    params(("name" = String, Path, description = "The project's name")),
    responses((status = 200, body = PlanDto), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Unknown branch or commit, or invalid takofile", body = ErrorBody),
        (status = 502, description = "The repository could not be fetched", body = ErrorBody),
        (status = 503, description = "The repository is still being fetched: retry", body = ErrorBody)))]
pub(crate) async fn create_plan(
    Deployer(who): Deployer,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<CreatePlan>,
) -> ApiResult<Json<PlanDto>> {
    let input = PlanInput {
        environment: body.environment,
        branch: body.branch,
        commit: body.commit,
    };
    let planned = state.services.plan(&who, &name, input).await?;
    Ok(Json(to_wire(&planned)))
}

/// What a stored push delivery would do now: its ref routed by the default
/// branch's takofile, its commit planned as a release (`tako delivery plan`).
/// Nothing is created. Needs the `admin` or `deployer` role.
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/plan", tag = "deliveries",
    params(("id" = String, Path, description = "The delivery's id")),
    responses((status = 200, body = DeliveryPlanDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The delivery matched no project", body = ErrorBody),
        (status = 502, description = "The repository could not be fetched", body = ErrorBody)))]
pub(crate) async fn plan_delivery(
    Deployer(who): Deployer,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeliveryPlanDto>> {
    let planned = state.services.plan_delivery(&who, &id).await?;
    Ok(Json(DeliveryPlanDto {
        delivery: id,
        nothing: planned.nothing,
        plans: planned.plans.iter().map(to_wire).collect(),
    }))
}
