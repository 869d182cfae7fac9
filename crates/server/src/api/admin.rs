//! Deliveries (received webhooks and what became of them) and API tokens.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::auth::{Admin, Principal};
use crate::api::error::{ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::api::{ErrorBody, page_request};
use crate::http::wire::{delivery_with_forward, to_wire};
use crate::services::NewTokenInput;
use crate::state::AppState;
use tako_protocol::api::{
    CreateToken, CreatedToken, DeliveryDto, DeliveryPage, KeyRotation, RetentionRun, TokenDto,
};

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/deliveries", get(list_deliveries))
        .route("/deliveries/{id}", get(get_delivery))
        .route("/deliveries/{id}/replay", post(replay_delivery))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/admin/rotate-key", post(rotate_key))
        .route("/admin/retention", post(run_retention))
}

/// Revokes a token: from now on it gets 401.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "The token's id (see the listing)")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_token(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    state
        .services
        .revoke_token(&who, tako_store::TokenId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new master key: every secret is re-sealed under it in one transaction
/// while the server keeps serving. With a key added under the data
/// directory's `keys/` (on every node of a cluster), that key becomes the
/// cluster's and every node follows; otherwise a fresh key (SQLite: one
/// node), and the old key is deleted. 409 when several keys were added, or
/// none on PostgreSQL.
#[utoipa::path(post, path = "/api/v1/admin/rotate-key", tag = "admin",
    responses((status = 200, body = KeyRotation), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn rotate_key(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<KeyRotation>> {
    let rotation = state.services.rotate_key(&who).await?;
    Ok(Json(KeyRotation {
        old_key: rotation.old_key,
        new_key: rotation.new_key,
        resealed: rotation.resealed,
    }))
}

/// How to run retention.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RetentionQuery {
    /// Count what a pass would remove, removing nothing.
    pub(crate) dry_run: Option<bool>,
}

/// One retention pass now (admin): removes what the retention settings
/// (and the projects' `Retention:`) say, or with `dry_run=true` counts it.
/// Waits for a background pass that is running to end first. 200 with the
/// counts; 202 (`finished: false`) when the pass outlasts the request: it
/// goes on in the background and the server logs its counts.
#[utoipa::path(post, path = "/api/v1/admin/retention", tag = "admin",
    params(RetentionQuery),
    responses((status = 200, body = RetentionRun), (status = 202, body = RetentionRun),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub(crate) async fn run_retention(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<RetentionQuery>,
) -> ApiResult<(StatusCode, Json<RetentionRun>)> {
    let dry_run = query.dry_run.unwrap_or(false);
    let Some(report) = state.services.run_retention(&who, dry_run).await? else {
        return Ok((
            StatusCode::ACCEPTED,
            Json(RetentionRun {
                finished: false,
                dry_run,
                releases: 0,
                task_logs: 0,
                deliveries: 0,
                audit_entries: 0,
                working_directories: 0,
                pages_freed: 0,
                skipped: Vec::new(),
            }),
        ));
    };
    Ok((
        StatusCode::OK,
        Json(RetentionRun {
            finished: true,
            dry_run: report.dry_run,
            releases: report.releases,
            task_logs: report.task_logs,
            deliveries: report.deliveries,
            audit_entries: report.audit_entries,
            working_directories: report.working_directories,
            pages_freed: report.pages_freed,
            skipped: report.skipped,
        }),
    ))
}

/// Which deliveries to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryQuery {
    /// Only this project's (by name).
    pub(crate) project: Option<String>,
    /// At most this many (1 to 200, default 50).
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// Processes a stored delivery again (admin): it becomes pending and the
/// router handles its body as if it had just arrived. 409 while it is
/// still pending.
#[utoipa::path(post, path = "/api/v1/deliveries/{id}/replay", tag = "deliveries",
    params(("id" = String, Path, description = "The delivery's id (X-GitHub-Delivery)")),
    responses((status = 200, body = DeliveryDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub(crate) async fn replay_delivery(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeliveryDto>> {
    let delivery = state.services.replay_delivery(&who, &id).await?;
    Ok(Json(to_wire(&delivery)))
}

/// One received webhook with its outcome.
#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "deliveries",
    params(("id" = String, Path, description = "The delivery's id (X-GitHub-Delivery)")),
    responses((status = 200, body = DeliveryDto), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn get_delivery(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<DeliveryDto>> {
    let (delivery, forward) = state.services.delivery(&id).await?;
    Ok(Json(delivery_with_forward(&delivery, forward.as_deref())))
}

/// Received webhooks, newest first, with their outcomes.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "deliveries", params(DeliveryQuery),
    responses((status = 200, body = DeliveryPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_deliveries(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<DeliveryPage>> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let project = match query.project.as_deref() {
        None | Some("") => None,
        Some(name) => Some(state.services.project_named(name).await?.id),
    };
    let deliveries = state.services.list_deliveries(project, page).await?;
    Ok(Json(DeliveryPage {
        items: deliveries
            .items
            .iter()
            .map(|(delivery, forward)| delivery_with_forward(delivery, forward.as_deref()))
            .collect(),
        next_cursor: deliveries.next.map(|c| c.to_token()),
    }))
}

/// Every API token, oldest first (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenDto>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_tokens(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<Vec<TokenDto>>> {
    let tokens = state.services.list_tokens(&who).await?;
    Ok(Json(tokens.iter().map(to_wire).collect()))
}

/// Creates an API token; the answer is the only time it is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn create_token(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let input = NewTokenInput {
        name: body.name,
        role: body.role,
        expires_in_days: body.expires_in_days,
    };
    let (token, stored) = state.services.create_token(&who, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            info: to_wire(&stored),
        }),
    ))
}
