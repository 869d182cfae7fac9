//! `GET /metrics`: Prometheus text exposition (format 0.0.4), read from the
//! store's totals on each scrape (kept as rows change: a scrape costs the
//! same at any history size). Deliveries and deployments are gauges (totals
//! as stored now); step durations a summary (sum and count) by final state;
//! agents online (the agents list's rule, `services::agents::is_online`)
//! and jobs running on agents are gauges.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use tako_store::{AgentState, DeploymentState, Store};

use crate::api::error::ApiResult;
use crate::services::agents::{ONLINE_WITHIN, is_online};
use crate::state::AppState;

const DELIVERY_OUTCOMES: [&str; 5] = ["pending", "queued", "ignored", "failed", "duplicate"];
/// Every state, those awaiting approval included.
const DEPLOYMENT_STATES: [DeploymentState; 9] = DeploymentState::ALL;

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4",
        content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let text = render(state.services.store.as_ref(), chrono::Utc::now()).await?;
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response())
}

/// The exposition text.
pub(crate) async fn render(
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<String, tako_store::StoreError> {
    let totals = store.totals().await?;
    let projects = store.list_projects().await?.len();
    // Agents are machines, not history: a handful to a few hundred rows.
    let agents = store.list_agents().await?;
    let running_jobs = store.count_running_jobs().await?;
    let count = |map: &BTreeMap<String, u64>, key: &str| map.get(key).copied().unwrap_or(0);

    let mut text = String::new();
    family(
        &mut text,
        "tako_deliveries",
        "Webhook deliveries stored, by outcome (pending: not processed yet).",
        "gauge",
    );
    for outcome in DELIVERY_OUTCOMES {
        let n = count(&totals.deliveries, outcome);
        let _ = writeln!(text, "tako_deliveries{{outcome=\"{outcome}\"}} {n}");
    }
    family(
        &mut text,
        "tako_deployments",
        "Deployments, by state.",
        "gauge",
    );
    for state in DEPLOYMENT_STATES {
        let n = count(&totals.deployments, state.as_str());
        let _ = writeln!(text, "tako_deployments{{state=\"{}\"}} {n}", state.as_str());
    }
    family(
        &mut text,
        "tako_deployment_queue_depth",
        "Deployments queued and waiting for their turn.",
        "gauge",
    );
    let queued = count(&totals.deployments, DeploymentState::Queued.as_str());
    let _ = writeln!(text, "tako_deployment_queue_depth {queued}");
    family(
        &mut text,
        "tako_step_duration_seconds",
        "Durations of finished steps, by their final state.",
        "summary",
    );
    for (state, (steps, ms)) in &totals.steps {
        let seconds = Duration::from_millis(*ms).as_secs_f64();
        let _ = writeln!(
            text,
            "tako_step_duration_seconds_sum{{state=\"{state}\"}} {seconds}"
        );
        let _ = writeln!(
            text,
            "tako_step_duration_seconds_count{{state=\"{state}\"}} {steps}"
        );
    }
    family(&mut text, "tako_projects", "Registered projects.", "gauge");
    let _ = writeln!(text, "tako_projects {projects}");
    family(
        &mut text,
        "tako_agents",
        &format!(
            "Enrolled agents, by state (online: active and called within the last {} s).",
            ONLINE_WITHIN.num_seconds()
        ),
        "gauge",
    );
    let online = agents.iter().filter(|a| is_online(a, now)).count();
    let by_state = |state: AgentState| agents.iter().filter(|a| a.state == state).count();
    let active = by_state(AgentState::Active);
    let _ = writeln!(text, "tako_agents{{state=\"online\"}} {online}");
    let _ = writeln!(text, "tako_agents{{state=\"offline\"}} {}", active - online);
    let _ = writeln!(
        text,
        "tako_agents{{state=\"pending\"}} {}",
        by_state(AgentState::Pending)
    );
    let _ = writeln!(
        text,
        "tako_agents{{state=\"disabled\"}} {}",
        by_state(AgentState::Disabled)
    );
    family(
        &mut text,
        "tako_agents_online",
        &format!(
            "Agents online: active and called within the last {} s.",
            ONLINE_WITHIN.num_seconds()
        ),
        "gauge",
    );
    let _ = writeln!(text, "tako_agents_online {online}");
    family(
        &mut text,
        "tako_jobs_running",
        "Jobs (a step on one agent) running on agents now.",
        "gauge",
    );
    let _ = writeln!(text, "tako_jobs_running {running_jobs}");
    Ok(text)
}

fn family(text: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} {kind}");
}
