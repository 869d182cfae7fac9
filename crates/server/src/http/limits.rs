//! Limits that keep a flood or a slow client from taking the server down.
//!
//! - **Webhooks at once:** at most [`Limits::webhook_slots`] webhook requests
//!   are processed together; one more is answered `503` with `Retry-After`
//!   at once (GitHub redelivers), rather than queued without bound.
//! - **Slow clients:** a request must be read and answered within
//!   [`Limits::request_timeout`], else `408` (a streamed answer, such as a
//!   followed log, only needs to *start* in time).
//! - **Bodies:** per route (`DefaultBodyLimit`): webhooks
//!   `tako_github::MAX_PAYLOAD_BYTES`, the API [`crate::api::MAX_BODY_BYTES`],
//!   variables and policies [`SMALL_BODY_BYTES`].
//! - **Headers and JSON:** hyper refuses more than 100 headers or a head
//!   larger than its buffer (`431`/`400`); `serde_json` refuses JSON nested
//!   deeper than 128 levels (`400`/`422` through the API's error shape).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::state::AppState;

/// Webhook requests processed at once by default.
pub const MAX_CONCURRENT_WEBHOOKS: usize = 64;
/// How long a client has to send its request and get an answer started.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The body limit of routes that take a few small fields (variables,
/// environment policies, tokens).
pub const SMALL_BODY_BYTES: usize = 64 * 1024;

/// The limits of one server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Permits for webhook requests being processed.
    pub webhook_slots: Arc<Semaphore>,
    /// See [`REQUEST_TIMEOUT`].
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            webhook_slots: Arc::new(Semaphore::new(MAX_CONCURRENT_WEBHOOKS)),
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error, "detail": null }))).into_response()
}

/// Answers `503` + `Retry-After` when every webhook slot is taken.
pub(crate) async fn webhook_slots(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(permit) = Arc::clone(&state.limits.webhook_slots).try_acquire_owned() else {
        tracing::warn!("webhook refused: every processing slot is taken");
        let mut answer = refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many webhooks at once: retry shortly",
        );
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return answer;
    };
    let answer = next.run(request).await;
    drop(permit);
    answer
}

/// Answers `408` when the request is not read and answered in time.
pub(crate) async fn request_timeout(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(state.limits.request_timeout, next.run(request)).await {
        Ok(answer) => answer,
        Err(_) => refuse(
            StatusCode::REQUEST_TIMEOUT,
            "the request was not received in time",
        ),
    }
}
