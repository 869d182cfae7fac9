//! Environment policies and the audit log: the routes, and the middleware
//! that records every mutating API request.
//!
//! The audit middleware runs around every matched `/api/v1` route. It hands
//! the [`auth::Principal`](crate::api::auth::Principal) extractor a slot for
//! who is calling, and after the answer appends who, what (method and route),
//! on what (the path), from where (the peer address), when and the outcome
//! (`ok`, `denied` for 401/403, `failed` otherwise) for every request that is
//! not a `GET`/`HEAD`. Bodies are never recorded, so neither are values.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, MatchedPath, OriginalUri, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, put};
use axum::{Json, Router};
use tako_store::NewAuditEntry;

use crate::api::auth::{Admin, Principal};
use crate::api::dto::{AuditEntryDto, AuditPage, EnvironmentPolicyDto, SetEnvironmentPolicy};
use crate::api::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::api::projects::{PageQuery, project_named};
use crate::api::{ErrorBody, check_name, page_request};
use crate::http::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/projects/{name}/environments", get(list_policies))
        .route(
            "/projects/{name}/environments/{environment}",
            put(set_policy)
                .delete(delete_policy)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::limits::SMALL_BODY_BYTES,
                )),
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
    let project = project_named(state.store.as_ref(), &name).await?;
    let policies = state.store.list_environment_policies(project.id).await?;
    Ok(Json(
        policies.iter().map(EnvironmentPolicyDto::from).collect(),
    ))
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
    check_name("environment", &environment)?;
    if body.allowed_branches.len() > 100 {
        return Err(ApiError::unprocessable(
            "allowed_branches holds more than 100 globs",
        ));
    }
    for pattern in &body.allowed_branches {
        check_name("allowed branch", &pattern.replace('/', "-"))?;
    }
    crate::policy::validate(&body.allowed_branches).map_err(ApiError::unprocessable)?;
    let project = project_named(state.store.as_ref(), &name).await?;
    let policy = state
        .store
        .set_environment_policy(project.id, environment.trim(), &body.allowed_branches)
        .await?;
    tracing::info!(project = %project.name, environment = %policy.environment,
        allowed = %policy.allowed_branches.join(","), by = %who.name, "environment policy set");
    Ok(Json(EnvironmentPolicyDto::from(&policy)))
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
    let project = project_named(state.store.as_ref(), &name).await?;
    state
        .store
        .delete_environment_policy(project.id, &environment)
        .await?;
    tracing::info!(project = %project.name, %environment, by = %who.name, "environment policy removed");
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
    let entries = state.store.list_audit(page).await?;
    Ok(Json(AuditPage {
        items: entries.items.iter().map(AuditEntryDto::from).collect(),
        next_cursor: entries.next.map(|c| c.to_token()),
    }))
}

/// Where the [`Principal`] extractor writes who is calling, for the audit
/// middleware.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuditActor(pub(crate) Arc<Mutex<Option<String>>>);

impl AuditActor {
    /// Records who is calling.
    pub(crate) fn set(&self, who: &Principal) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(format!("token {} ({}, {})", who.token, who.name, who.role));
        }
    }

    fn get(&self) -> String {
        self.0
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .unwrap_or_else(|| "anonymous".to_owned())
    }
}

/// Records every mutating request in the audit log after it is answered.
pub(crate) async fn audit(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return next.run(request).await;
    }
    let actor = AuditActor::default();
    request.extensions_mut().insert(actor.clone());
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || request.uri().path().to_owned(),
        |m| m.as_str().to_owned(),
    );
    // The full path: a nested router sees it without `/api/v1`.
    let target = request.extensions().get::<OriginalUri>().map_or_else(
        || request.uri().path().to_owned(),
        |u| u.0.path().to_owned(),
    );
    let source = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip().to_string());
    let response = next.run(request).await;
    let status = response.status();
    let outcome = if status.is_success() {
        "ok"
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        "denied"
    } else {
        "failed"
    };
    let entry = NewAuditEntry {
        actor: actor.get(),
        action: format!("{method} {route}"),
        target,
        source,
        outcome: outcome.to_owned(),
        detail: Some(status.as_u16().to_string()),
    };
    if let Err(error) = state.store.append_audit(entry).await {
        tracing::error!(%error, "cannot append to the audit log");
    }
    response
}
