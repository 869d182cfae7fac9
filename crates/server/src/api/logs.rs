//! A deployment's task log: as plain text, or followed live as server-sent
//! events.
//!
//! Text: one line per log line, `HH:MM:SS.mmm [STEP] STREAM: TEXT` (UTC).
//! `STEP` is `-` for deployment-level lines; `STREAM` is `stdout`, `stderr`
//! or `tako`, followed by `/LEVEL` when the level is not the stream's usual
//! one (`stdout/warning`, `tako/error`).
//!
//! `?follow=true`: `text/event-stream`. Each line is an `event: line` whose
//! `data` is a JSON [`LogLineDto`] and whose `id` is the cursor after it (a
//! reconnecting client sends it back as `Last-Event-ID` to resume). The
//! server replays what exists, polls the store for more every 200 ms until
//! the deployment reaches a final state, then sends `event: end` with a
//! [`LogEnd`] and closes.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tako_store::{DeploymentId, LogCursor};
use utoipa::IntoParams;

use crate::api::ErrorBody;
use crate::api::auth::Principal;
use crate::api::error::{ApiPath, ApiQuery, ApiResult};
use crate::http::log_events::follow;
use crate::services::logs::read_all;
use crate::state::AppState;

/// How to read the log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LogQuery {
    /// Stream the log as server-sent events until the deployment ends.
    pub(crate) follow: Option<bool>,
}

/// A deployment's task log.
#[utoipa::path(get, path = "/api/v1/deployments/{id}/log", tag = "deployments",
    params(("id" = i64, Path, description = "The deployment's id"), LogQuery),
    responses(
        (status = 200, description = "`HH:MM:SS.mmm [STEP] STREAM: TEXT` lines, or with \
            `follow=true` server-sent events: `line` (data: LogLineDto, id: cursor) then `end` \
            (data: LogEnd)", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn deployment_log(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(query): ApiQuery<LogQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let deployment = state
        .services
        .store
        .get_deployment(DeploymentId(id))
        .await?;
    if query.follow.unwrap_or(false) {
        let from = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(LogCursor::START, LogCursor);
        let events = follow(state.services.store.clone(), deployment.id, from);
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let text = read_all(state.services.store.as_ref(), deployment.id).await?;
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}
