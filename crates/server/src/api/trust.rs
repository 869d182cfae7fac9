//! Environment policies and the audit log's routes (the middleware that
//! writes the audit log is `crate::http::audit`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};

use crate::api::auth::{Admin, Principal};
use crate::api::error::{ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::api::projects::PageQuery;
use crate::api::{ErrorBody, page_request};
use crate::http::limits::SMALL_BODY_BYTES;
use crate::http::wire::to_wire;
use crate::state::AppState;
use tako_protocol::api::{AuditPage, EnvironmentPolicyDto, SetEnvironmentPolicy};

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/projects/{name}/environments", get(list_policies))
        .route(
            "/projects/{name}/environments/{environment}",
            put(set_policy)
                .delete(delete_policy)
                .layer(axum::extract::DefaultBodyLimit::max(SMALL_BODY_BYTES)),
        )
        .route("/audit", get(list_audit))
}

/// A project's environment policies.
#[utoipa::path(get, path = "/api/v1/projects/{name}/environments", tag = "environments",
    params(("name" = String, Path, description = "The project's name")),
    responses((status = 200, body = Vec<EnvironmentPolicyDto>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn list_policies(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Vec<EnvironmentPolicyDto>>> {
    let project = state.services.project_named(&name).await?;
    let policies = state
        .services
        .store
        .list_environment_policies(project.id)
        .await?;
    Ok(Json(policies.iter().map(to_wire).collect()))
}

/// Sets which branches may deploy into an environment (whatever the
/// takofile maps there).
#[utoipa::path(put, path = "/api/v1/projects/{name}/environments/{environment}",
    tag = "environments", request_body = SetEnvironmentPolicy,
    params(("name" = String, Path, description = "The project's name"),
        ("environment" = String, Path, description = "The environment")),
    responses((status = 200, body = EnvironmentPolicyDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn set_policy(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath((name, environment)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetEnvironmentPolicy>,
) -> ApiResult<Json<EnvironmentPolicyDto>> {
    let policy = state
        .services
        .set_policy(&who, &name, &environment, &body.allowed_branches)
        .await?;
    Ok(Json(to_wire(&policy)))
}

/// Removes an environment's policy (any branch the takofile maps may deploy).
#[utoipa::path(delete, path = "/api/v1/projects/{name}/environments/{environment}",
    tag = "environments",
    params(("name" = String, Path, description = "The project's name"),
        ("environment" = String, Path, description = "The environment")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_policy(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath((name, environment)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .services
        .delete_policy(&who, &name, &environment)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The audit log, newest first (admin only).
#[utoipa::path(get, path = "/api/v1/audit", tag = "admin", params(PageQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_audit(
    _who: Admin,
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<AuditPage>> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let entries = state.services.store.list_audit(page).await?;
    Ok(Json(AuditPage {
        items: entries.items.iter().map(to_wire).collect(),
        next_cursor: entries.next.map(|c| c.to_token()),
    }))
}
