//! The HTTP layer: routes, extraction and the mapping of errors to status
//! codes. Handlers extract, call one service function and answer; the rules
//! live in the services.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use tako_store::Store;
use tokio::sync::Notify;

use crate::intake::{Intake, IntakeError, IntakeReply, WebhookRequest};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Webhook intake.
    pub intake: Intake,
    /// Everything Tako keeps.
    pub store: Arc<dyn Store>,
    /// Notified when the API queues a deployment, to wake the scheduler.
    pub deployments_queued: Arc<Notify>,
}

/// The server's routes.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/hooks/github",
            post(github_hook).layer(DefaultBodyLimit::max(tako_github::MAX_PAYLOAD_BYTES)),
        )
        .merge(crate::api::router())
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn github_hook(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = WebhookRequest {
        event: header_text(&headers, tako_github::EVENT_HEADER),
        delivery: header_text(&headers, tako_github::DELIVERY_HEADER),
        signature: header_text(&headers, tako_github::SIGNATURE_HEADER),
        content_type: header_text(&headers, header::CONTENT_TYPE.as_str()),
        body: &body,
    };
    match state.intake.receive(request).await {
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
        IntakeError::NoSecret | IntakeError::Signature(_) => StatusCode::UNAUTHORIZED,
        IntakeError::Headers(_) | IntakeError::Payload(_) => StatusCode::BAD_REQUEST,
        IntakeError::Store(_) | IntakeError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
    };
    let message = match &error {
        // A 5xx body never carries internals.
        IntakeError::Store(_) => {
            "the delivery could not be stored; GitHub will redeliver".to_owned()
        }
        other => other.to_string(),
    };
    if status.is_server_error() {
        tracing::error!(%error, "webhook intake failed");
    }
    (status, Json(json!({ "error": message }))).into_response()
}
