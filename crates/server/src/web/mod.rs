//! The web UI under `/ui`: server-rendered HTML pages (dashboard, project,
//! release, deployment, variables, deliveries, agents, freezes), a little
//! JavaScript for live updates, and sign-in with an API token.
//!
//! Handlers are thin: they load what a page shows from the store (through
//! [`pages`]), hand it to a view in [`views`], and run changes through the
//! same services as the JSON API (`crate::services`), so roles, environment
//! policies and the audit log apply alike. Every page works without
//! JavaScript; the script adds live updates, log search and follow.
//!
//! Every answer carries a strict Content-Security-Policy (only this
//! server's own script and style), `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: same-origin` and, for pages, `Cache-Control: no-store`.

mod assets;
mod freezes;
mod live;
mod pages;
pub(crate) mod session;
pub(crate) mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::services::ServiceError;
use crate::state::AppState;

/// Why a web request failed: each becomes a page (or a redirect).
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebError {
    /// Not signed in: go to the sign-in page, then back to `next`.
    #[error("sign in first")]
    SignIn {
        /// Where to go after signing in.
        next: String,
    },
    /// A form without this session's CSRF token, or from another site.
    #[error("this form is out of date or came from another site: reload the page and try again")]
    Csrf,
    /// What the services answered.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A bug or an outage; logged, never described.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<tako_store::StoreError> for WebError {
    fn from(error: tako_store::StoreError) -> Self {
        WebError::Service(ServiceError::from(error))
    }
}

/// The one mapping of the services' errors to the web UI's status codes.
pub(crate) fn status_of(error: &ServiceError) -> StatusCode {
    match error {
        ServiceError::Unauthenticated | ServiceError::CredentialRefused(_) => {
            StatusCode::UNAUTHORIZED
        }
        ServiceError::AgentForbidden(_) | ServiceError::NotAllowed(_) => StatusCode::FORBIDDEN,
        ServiceError::Forbidden { .. } => StatusCode::FORBIDDEN,
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        ServiceError::Conflict(_) => StatusCode::CONFLICT,
        ServiceError::Invalid { .. } | ServiceError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ServiceError::BadInput(_) => StatusCode::BAD_REQUEST,
        ServiceError::Upstream { retry: true, .. } | ServiceError::Unavailable(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ServiceError::Upstream { retry: false, .. } => StatusCode::BAD_GATEWAY,
        ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Whether the page the user acted on should show this error in place (a
/// refused form) rather than an error page.
pub(crate) fn shown_in_form(error: &ServiceError) -> bool {
    matches!(
        error,
        ServiceError::Invalid { .. } | ServiceError::Refused(_) | ServiceError::BadInput(_)
    )
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            WebError::SignIn { next } => {
                return Redirect::to(&views::with_query("/ui/sign-in", "next", &next))
                    .into_response();
            }
            WebError::Csrf => (StatusCode::FORBIDDEN, WebError::Csrf.to_string()),
            WebError::Service(ServiceError::Internal(source)) => {
                tracing::error!(error = %source, "web request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error: the server log has the details".to_owned(),
                )
            }
            WebError::Service(error @ ServiceError::Unavailable(_)) => {
                tracing::error!(%error, source = ?std::error::Error::source(&error), "web request failed");
                (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            }
            WebError::Service(ServiceError::Unauthenticated) => (
                StatusCode::UNAUTHORIZED,
                "your session has ended: sign in again".to_owned(),
            ),
            WebError::Service(error) => (status_of(&error), error.to_string()),
            WebError::Internal(message) => {
                tracing::error!(%message, "web request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error: the server log has the details".to_owned(),
                )
            }
        };
        (status, views::error_page(status.as_u16(), &message, None)).into_response()
    }
}

/// A web handler's result.
pub(crate) type WebResult<T> = Result<T, WebError>;

/// The UI's routes, to merge into the server's router.
pub fn router(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let ui = Router::new()
        .route("/ui/", get(pages::dashboard))
        .route("/ui/dashboard/events", get(live::dashboard_events))
        .route("/ui/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route("/ui/sign-out", post(pages::sign_out))
        .route("/ui/projects/{name}", get(pages::project))
        .route(
            "/ui/projects/{name}/variables",
            get(pages::variables).post(pages::set_variable),
        )
        .route(
            "/ui/projects/{name}/variables/{id}/delete",
            post(pages::delete_variable),
        )
        .route("/ui/releases/{id}", get(pages::release))
        .route("/ui/releases/{id}/deploy", post(pages::deploy))
        .route("/ui/deployments/{id}", get(pages::deployment))
        .route("/ui/deployments/{id}/steps", get(pages::steps))
        .route("/ui/deployments/{id}/log.txt", get(pages::log_text))
        .route("/ui/deployments/{id}/log/events", get(live::log_events))
        .route("/ui/deployments/{id}/cancel", post(pages::cancel))
        .route("/ui/deployments/{id}/retry", post(pages::retry))
        .route("/ui/deployments/{id}/decide", post(pages::decide))
        .route("/ui/deployments/{id}/intervene", post(pages::intervene))
        .route("/ui/waiting", get(pages::waiting))
        .route("/ui/approvals", get(pages::approvals))
        .route("/ui/deliveries", get(pages::deliveries))
        .route("/ui/deliveries/{id}/replay", post(pages::replay))
        .route("/ui/agents", get(pages::agents))
        .route("/ui/agents/{name}/{action}", post(pages::agent_action))
        .route("/ui/freezes", get(freezes::page).post(freezes::create))
        .route("/ui/freezes/{id}/delete", post(freezes::delete))
        .route(
            "/ui/deployments/{id}/release-hold",
            post(freezes::release_hold),
        )
        .route("/ui/assets/{file}", get(assets::asset))
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(state),
            crate::http::audit::audit,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .merge(ui)
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        views::error_page(404, "no such page", None),
    )
        .into_response()
}

/// Adds the UI's security headers.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
