//! The HTTP layer: the server's routes, composed from the JSON API
//! (`crate::api`), the web UI (`crate::web`) and the webhook hook, plus what
//! both front ends share: [`limits`], the [`audit`] middleware and the
//! [`log_events`] stream. Handlers extract, call one service function and
//! answer; the rules live in `crate::services`, which knows nothing of HTTP.

pub mod audit;
pub mod limits;
pub(crate) mod log_events;
pub(crate) mod wire;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use crate::intake::{IntakeError, IntakeReply, WebhookRequest};
use crate::state::AppState;

/// The server's routes.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/hooks/github",
            post(github_hook)
                .layer(DefaultBodyLimit::max(tako_github::MAX_PAYLOAD_BYTES))
                .layer(axum::middleware::from_fn_with_state(
                    Arc::clone(&state),
                    limits::webhook_slots,
                )),
        )
        .route(
            "/hooks/gitea",
            forge_route(&state, tako_forges::Forge::Gitea),
        )
        .route(
            "/hooks/gitlab",
            forge_route(&state, tako_forges::Forge::GitLab),
        )
        .route(
            "/hooks/bitbucket",
            forge_route(&state, tako_forges::Forge::Bitbucket),
        )
        .merge(crate::api::router(&state))
        .merge(crate::web::router(&state))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            limits::request_timeout,
        ))
        .with_state(state)
}

/// `POST /hooks/<forge>` for Gitea/Forgejo, GitLab and Bitbucket, with the
/// GitHub hook's body limit and webhook slots.
fn forge_route(
    state: &Arc<AppState>,
    forge: tako_forges::Forge,
) -> axum::routing::MethodRouter<Arc<AppState>> {
    post(
        move |State(state): State<Arc<AppState>>, request: Request| {
            forge_hook(state, forge, request)
        },
    )
    .layer(DefaultBodyLimit::max(tako_forges::MAX_PAYLOAD_BYTES))
    .layer(axum::middleware::from_fn_with_state(
        Arc::clone(state),
        limits::webhook_slots,
    ))
}

async fn forge_hook(state: Arc<AppState>, forge: tako_forges::Forge, request: Request) -> Response {
    let (headers, body) = match webhook_parts(request).await {
        Ok(parts) => parts,
        Err(answer) => return answer,
    };
    let found: tako_forges::Headers<'_> = forge
        .header_names()
        .iter()
        .filter_map(|name| header_text(&headers, name).map(|value| (*name, value)))
        .collect();
    let content_type = header_text(&headers, header::CONTENT_TYPE.as_str());
    let reply = state
        .intake
        .receive_forge(forge, &found, content_type, &body)
        .await;
    intake_reply(reply)
}

/// Outside `/api/v1` (which has its own): a JSON 404 naming what exists.
async fn no_route() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({
            "error": "no such route: Tako serves /ui/ (the web UI), /hooks/github, /hooks/gitea, /hooks/gitlab, /hooks/bitbucket, /api/v1/..., /metrics and /healthz"
        })),
    )
        .into_response()
}

/// Outside `/api/v1`: a JSON 405.
async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({
            "error": "method not allowed: webhooks are POSTed to /hooks/github (or gitea, gitlab, bitbucket), /healthz and /metrics are read with GET"
        })),
    )
        .into_response()
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The headers and body of a webhook, the body at most
/// [`tako_github::MAX_PAYLOAD_BYTES`]: a declared `Content-Length` above it
/// is refused before reading anything, and every refusal is JSON.
async fn webhook_parts(request: Request) -> Result<(HeaderMap, Bytes), Response> {
    let refuse = |status: StatusCode, error: String| {
        (status, Json(json!({ "error": error }))).into_response()
    };
    let too_large = format!(
        "the webhook body is larger than {} bytes",
        tako_github::MAX_PAYLOAD_BYTES
    );
    let headers = request.headers().clone();
    let declared = header_text(&headers, header::CONTENT_LENGTH.as_str())
        .and_then(|length| length.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > tako_github::MAX_PAYLOAD_BYTES as u64) {
        return Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, too_large));
    }
    match Bytes::from_request(request, &()).await {
        Ok(body) => Ok((headers, body)),
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(refuse(StatusCode::PAYLOAD_TOO_LARGE, too_large))
        }
        Err(rejection) => Err(refuse(
            rejection.status(),
            format!(
                "the webhook body could not be read: {}",
                rejection.body_text()
            ),
        )),
    }
}

async fn github_hook(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (headers, body) = match webhook_parts(request).await {
        Ok(parts) => parts,
        Err(answer) => return answer,
    };
    let request = WebhookRequest {
        event: header_text(&headers, tako_github::EVENT_HEADER),
        delivery: header_text(&headers, tako_github::DELIVERY_HEADER),
        signature: header_text(&headers, tako_github::SIGNATURE_HEADER),
        content_type: header_text(&headers, header::CONTENT_TYPE.as_str()),
        body: &body,
    };
    intake_reply(state.intake.receive(request).await)
}

fn intake_reply(reply: Result<IntakeReply, IntakeError>) -> Response {
    match reply {
        Ok(IntakeReply::Pong) => {
            (StatusCode::OK, Json(json!({ "status": "pong" }))).into_response()
        }
        Ok(IntakeReply::Queued { delivery }) => (
            StatusCode::ACCEPTED,
            Json(json!({ "delivery": delivery, "status": "queued" })),
        )
            .into_response(),
        Ok(IntakeReply::Duplicate { delivery }) => (
            StatusCode::OK,
            Json(json!({ "delivery": delivery, "status": "duplicate" })),
        )
            .into_response(),
        Ok(IntakeReply::Ignored { reason }) => (
            StatusCode::OK,
            Json(json!({ "status": "ignored", "reason": reason })),
        )
            .into_response(),
        Err(error) => intake_error(error),
    }
}

fn intake_error(error: IntakeError) -> Response {
    let status = match &error {
        IntakeError::NoSecret | IntakeError::Signature(_) | IntakeError::ForgeSignature(_) => {
            StatusCode::UNAUTHORIZED
        }
        IntakeError::Headers(_)
        | IntakeError::Payload(_)
        | IntakeError::ForgeHeaders(_)
        | IntakeError::ForgePayload(_) => StatusCode::BAD_REQUEST,
        IntakeError::Store(_) | IntakeError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
    };
    let message = match &error {
        // A 5xx body never carries internals.
        IntakeError::Store(_) => {
            "the delivery could not be stored; send it again (the forge's redelivery)".to_owned()
        }
        other => other.to_string(),
    };
    if status.is_server_error() {
        tracing::error!(%error, "webhook intake failed");
        // Not stored: the sender is told when to try again (cluster §4).
        return (
            status,
            [(axum::http::header::RETRY_AFTER, "5")],
            Json(json!({ "error": message })),
        )
            .into_response();
    }
    (status, Json(json!({ "error": message }))).into_response()
}
