//! Deliveries (received webhooks and what became of them) and API tokens.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tako_store::{NewApiToken, TokenHash};
use utoipa::IntoParams;

use crate::api::auth::Principal;
use crate::api::dto::{CreateToken, CreatedToken, DeliveryDto, DeliveryPage, TokenDto};
use crate::api::error::{ApiError, ApiJson, ApiQuery, ApiResult};
use crate::api::projects::project_named;
use crate::api::{ErrorBody, check_name, page_request};
use crate::http::AppState;
use crate::startup;

/// The roles a token may have (enforced in the security milestone).
pub(crate) const ROLES: [&str; 3] = ["admin", "deployer", "viewer"];

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/deliveries", get(list_deliveries))
        .route("/tokens", get(list_tokens).post(create_token))
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
        Some(name) => Some(project_named(state.store.as_ref(), name).await?.id),
    };
    let deliveries = state.store.list_deliveries(project, page).await?;
    Ok(Json(DeliveryPage {
        items: deliveries.items.iter().map(DeliveryDto::from).collect(),
        next_cursor: deliveries.next.map(|c| c.to_token()),
    }))
}

/// Every API token, oldest first (never the tokens themselves).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenDto>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_tokens(
    _who: Principal,
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<Vec<TokenDto>>> {
    let tokens = state.store.list_tokens().await?;
    Ok(Json(tokens.iter().map(TokenDto::from).collect()))
}

/// Creates an API token; the answer is the only time it is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn create_token(
    who: Principal,
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<CreateToken>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    check_name("token name", &body.name)?;
    let role = body.role.unwrap_or_else(|| "admin".to_owned());
    if !ROLES.contains(&role.as_str()) {
        return Err(ApiError::unprocessable(format!(
            "unknown role {role:?}: expected one of {}",
            ROLES.join(", ")
        )));
    }
    let token = startup::new_token().map_err(|e| ApiError::Internal(Box::new(e)))?;
    let stored = state
        .store
        .create_token(NewApiToken {
            name: body.name.trim().to_owned(),
            hash: TokenHash(startup::token_hash(&token)),
            role,
            expires_at: None,
        })
        .await?;
    tracing::info!(token = %stored.id, name = %stored.name, role = %stored.role,
        by = %who.name, by_token = %who.token, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token,
            info: TokenDto::from(&stored),
        }),
    ))
}
