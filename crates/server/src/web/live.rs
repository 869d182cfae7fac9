//! Live updates as server-sent events: the dashboard's cells, and a
//! deployment's task log (the API's follow stream, behind the session).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use tako_store::{DeploymentId, LogCursor};

use crate::state::AppState;
use crate::web::session::Session;
use crate::web::views::dashboard::{cell, cell_key};
use crate::web::{WebResult, pages};

/// How often the dashboard's stream looks for changes.
const DASHBOARD_POLL: Duration = Duration::from_secs(1);

/// What the dashboard showed: each cell's key, deployment and state.
type Seen = Vec<(String, i64, &'static str)>;

/// One changed dashboard cell.
#[derive(Debug, Serialize)]
struct CellUpdate {
    /// The cell's `data-cell` key.
    key: String,
    /// Its new content.
    html: String,
}

/// The dashboard's live cells: every second, the cells whose deployment or
/// state changed since the last event, as `event: cells` (a JSON list of
/// `{key, html}`). A project or environment that was not on the page makes
/// an `event: reload`.
pub(crate) async fn dashboard_events(
    _session: Session,
    State(state): State<Arc<AppState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let start: (Arc<AppState>, Option<Seen>) = (state, None);
    let events = stream::unfold(start, |(state, mut seen)| async move {
        let mut first = true;
        loop {
            // The first look is at once; every later one (a failed read
            // too) waits a poll interval.
            if !std::mem::take(&mut first) {
                tokio::time::sleep(DASHBOARD_POLL).await;
            }
            let board = match state.services.store.list_projects().await {
                // Cells are found by key: the column order (the projects'
                // lifecycles, read from git) is the page's business.
                Ok(projects) => pages::load_dashboard(&state, projects, false).await,
                Err(error) => Err(error.into()),
            };
            let board = match board {
                Ok(board) => board,
                Err(error) => {
                    tracing::warn!(%error, "the live dashboard cannot read the store; retrying");
                    continue;
                }
            };
            let mut now: Seen = board
                .cells
                .iter()
                .map(|((project, environment), c)| {
                    (
                        cell_key(*project, environment),
                        c.deployment.id.0,
                        c.deployment.state.as_str(),
                    )
                })
                .collect();
            now.sort();
            let Some(before) = seen.replace(now.clone()) else {
                // The first look: the page already shows this.
                continue;
            };
            if before == now {
                continue;
            }
            let known: Vec<&String> = before.iter().map(|(key, _, _)| key).collect();
            if now.iter().any(|(key, _, _)| !known.contains(&key)) {
                return Some((
                    Ok(Event::default().event("reload").data("{}")),
                    (state, seen),
                ));
            }
            let updates: Vec<CellUpdate> = now
                .iter()
                .filter(|entry| !before.contains(entry))
                .filter_map(|(key, _, _)| {
                    let (project, environment) = key.split_once(':')?;
                    let project = tako_store::ProjectId(project.parse().ok()?);
                    let content = board.cells.get(&(project, environment.to_owned()));
                    Some(CellUpdate {
                        key: key.clone(),
                        html: cell(content, board.now).into_string(),
                    })
                })
                .collect();
            let event = Event::default()
                .event("cells")
                .json_data(&updates)
                .unwrap_or_else(|_| Event::default().event("reload").data("{}"));
            return Some((Ok(event), (state, seen)));
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// Where the page's script resumes a log.
#[derive(Debug, Deserialize)]
pub(crate) struct LogQuery {
    after: Option<u64>,
}

/// A deployment's task log as server-sent events from `after` (or the
/// `Last-Event-ID` of a reconnecting browser): the API's follow stream.
pub(crate) async fn log_events(
    _session: Session,
    State(state): State<Arc<AppState>>,
    Path(id): Path<i64>,
    Query(query): Query<LogQuery>,
    headers: axum::http::HeaderMap,
) -> WebResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let deployment = state
        .services
        .store
        .get_deployment(DeploymentId(id))
        .await?;
    let from = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(query.after)
        .map_or(LogCursor::START, LogCursor);
    let events = crate::http::log_events::follow(state.services.store.clone(), deployment.id, from);
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
