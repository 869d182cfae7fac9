//! Deployment freezes (journey.md §5): `GET|POST /api/v1/freezes`,
//! `DELETE /api/v1/freezes/{id}`, and releasing a held deployment early,
//! `POST /api/v1/deployments/{id}/release-hold` (admins, audited). The
//! handlers call [`Services`](crate::services::Services)' freeze functions.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use tako_protocol::api::{CreateFreeze, DeploymentDto, FreezeDto, OverrideFreeze};
use tako_store::DeploymentId;

use crate::api::ErrorBody;
use crate::api::auth::{Admin, Principal};
use crate::api::error::{ApiJson, ApiPath, ApiResult};
use crate::http::limits::SMALL_BODY_BYTES;
use crate::http::wire::{freeze_dto, to_wire};
use crate::services::FreezeInput;
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/freezes",
            get(list_freezes)
                .post(create_freeze)
                .layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)),
        )
        .route("/freezes/{id}", delete(delete_freeze))
        .route(
            "/deployments/{id}/release-hold",
            post(release_hold).layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)),
        )
}

/// Every freeze, and when each ends if it holds now (any role).
#[utoipa::path(get, path = "/api/v1/freezes", tag = "freezes",
    responses((status = 200, body = Vec<FreezeDto>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_freezes(
    _who: Principal,
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<Vec<FreezeDto>>> {
    let freezes = state.services.list_freezes().await?;
    let mut out = Vec::with_capacity(freezes.len());
    for (freeze, until) in &freezes {
        let project = match freeze.project {
            Some(id) => Some(state.services.store.get_project(id).await?.name),
            None => None,
        };
        out.push(freeze_dto(freeze, *until, project));
    }
    Ok(Json(out))
}

/// Freezes an environment (admins): manual deployments into it are refused
/// (409 naming the freeze), automatic ones held until it ends.
#[utoipa::path(post, path = "/api/v1/freezes", tag = "freezes",
    request_body = CreateFreeze,
    responses((status = 201, body = FreezeDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, description = "No such project", body = ErrorBody),
        (status = 422, description = "A bad window, rule or reason", body = ErrorBody)))]
pub(crate) async fn create_freeze(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<CreateFreeze>,
) -> ApiResult<(StatusCode, Json<FreezeDto>)> {
    let project = body.project.clone();
    let input = FreezeInput {
        environment: body.environment,
        project: body.project,
        from: body.from,
        to: body.to,
        every: body.every,
        reason: body.reason,
    };
    let freeze = state.services.create_freeze(&who, input).await?;
    let until = freeze.window.active_until(chrono::Utc::now());
    Ok((
        StatusCode::CREATED,
        Json(freeze_dto(
            &freeze,
            until,
            project.map(|p| p.trim().to_owned()),
        )),
    ))
}

/// Deletes a freeze (admins); what it held is released by the next sweep
/// when no other freeze holds it.
#[utoipa::path(delete, path = "/api/v1/freezes/{id}", tag = "freezes",
    params(("id" = i64, Path, description = "The freeze's id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_freeze(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state.services.delete_freeze(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Releases a deployment held by a freeze now (admins, with a reason;
/// audited): queued, or awaiting its approvals.
#[utoipa::path(post, path = "/api/v1/deployments/{id}/release-hold", tag = "freezes",
    request_body = OverrideFreeze,
    params(("id" = i64, Path, description = "The held deployment")),
    responses((status = 200, body = DeploymentDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "It is not held", body = ErrorBody),
        (status = 422, description = "No reason", body = ErrorBody)))]
pub(crate) async fn release_hold(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<OverrideFreeze>,
) -> ApiResult<Json<DeploymentDto>> {
    let released = state
        .services
        .release_held_deployment(&who, DeploymentId(id), &body.reason)
        .await?;
    Ok(Json(to_wire(&released)))
}
