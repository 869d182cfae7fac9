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

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tako_store::{DeploymentId, LogCursor, LogLevel, LogLineRecord, LogStream, Store, StoreError};
use utoipa::IntoParams;

use crate::api::ErrorBody;
use crate::api::auth::Principal;
use crate::api::dto::{LogEnd, LogLineDto, time};
use crate::api::error::{ApiPath, ApiQuery, ApiResult};
use crate::http::AppState;

/// How often a followed log is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Lines read from the store at once.
const READ_BATCH: u32 = 1_000;

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
    let deployment = state.store.get_deployment(DeploymentId(id)).await?;
    if query.follow.unwrap_or(false) {
        let from = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(LogCursor::START, LogCursor);
        let events = follow(state.store.clone(), deployment.id, from);
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let text = read_all(state.store.as_ref(), deployment.id).await?;
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

pub(crate) async fn read_all(store: &dyn Store, id: DeploymentId) -> Result<String, StoreError> {
    let mut text = String::new();
    let mut cursor = LogCursor::START;
    loop {
        let page = store.read_log(id, cursor, READ_BATCH).await?;
        if page.lines.is_empty() {
            return Ok(text);
        }
        for line in &page.lines {
            text.push_str(&format_line(line));
            text.push('\n');
        }
        cursor = page.next;
    }
}

/// One log line in the text format described in the module docs.
pub(crate) fn format_line(line: &LogLineRecord) -> String {
    let usual = match line.stream {
        LogStream::Stderr => LogLevel::Error,
        LogStream::Stdout | LogStream::Tako => LogLevel::Info,
    };
    let level = if line.level == usual {
        String::new()
    } else {
        format!("/{}", line.level.as_str())
    };
    format!(
        "{} [{}] {}{}: {}",
        line.timestamp.format("%H:%M:%S%.3f"),
        line.step.as_deref().unwrap_or("-"),
        line.stream.as_str(),
        level,
        line.text
    )
}

struct Follow {
    store: Arc<dyn Store>,
    id: DeploymentId,
    cursor: LogCursor,
    pending: VecDeque<Event>,
    read_now: bool,
    done: bool,
}

/// The events of a followed log; see the module docs.
pub(crate) fn follow(
    store: Arc<dyn Store>,
    id: DeploymentId,
    from: LogCursor,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let start = Follow {
        store,
        id,
        cursor: from,
        pending: VecDeque::new(),
        read_now: true,
        done: false,
    };
    stream::unfold(start, |mut follow| async move {
        loop {
            if let Some(event) = follow.pending.pop_front() {
                return Some((Ok(event), follow));
            }
            if follow.done {
                return None;
            }
            if !follow.read_now {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
            follow.read_now = false;
            follow.poll().await;
        }
    })
}

impl Follow {
    /// Reads what is new into `pending`; ends the stream when the deployment
    /// has ended and everything is sent.
    async fn poll(&mut self) {
        // The state is read before the log: lines written before the end are
        // then always read before `end` is sent.
        let deployment = match self.store.get_deployment(self.id).await {
            Ok(deployment) => deployment,
            Err(error) => return self.fail(&error),
        };
        let page = match self.store.read_log(self.id, self.cursor, READ_BATCH).await {
            Ok(page) => page,
            Err(error) => return self.fail(&error),
        };
        if page.lines.is_empty() {
            if deployment.state.is_final() {
                let end = LogEnd {
                    state: deployment.state.as_str().to_owned(),
                    error: deployment.error.clone(),
                };
                self.pending.push_back(json_event("end", &end));
                self.done = true;
            }
            return;
        }
        let mut cursor = self.cursor.0;
        for line in &page.lines {
            cursor += 1;
            let dto = LogLineDto {
                timestamp: time(line.timestamp),
                step: line.step.clone(),
                stream: line.stream.as_str().to_owned(),
                level: line.level.as_str().to_owned(),
                text: line.text.clone(),
            };
            self.pending
                .push_back(json_event("line", &dto).id(cursor.to_string()));
        }
        self.cursor = page.next;
        // More may be waiting: read again at once rather than after a pause.
        self.read_now = true;
    }

    fn fail(&mut self, error: &StoreError) {
        tracing::error!(deployment = %self.id, %error, "cannot follow the task log");
        self.pending.push_back(json_event(
            "error",
            &serde_json::json!({ "error": "the log could not be read; reconnect to resume" }),
        ));
        self.done = true;
    }
}

fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    match Event::default().event(name).json_data(data) {
        Ok(event) => event,
        // Serialising these plain structs cannot fail; an empty event of the
        // same name keeps the stream well formed if it ever did.
        Err(_) => Event::default().event(name),
    }
}
