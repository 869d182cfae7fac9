//! `GET /metrics`: Prometheus text exposition (format 0.0.4), computed from
//! the store on each scrape.
//!
//! Counting reads every delivery and deployment row, which is fine for the
//! sizes a single node sees; counters kept by the store are the way on once
//! that shows in a profile. The values are gauges (totals as stored now).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use tako_store::{DeliveryOutcome, DeploymentFilter, DeploymentState, PageRequest, Store};

use crate::api::error::ApiResult;
use crate::http::AppState;

/// Rows read per page while counting.
const COUNT_PAGE: u32 = 1_000;

const DELIVERY_OUTCOMES: [&str; 5] = ["pending", "queued", "ignored", "failed", "duplicate"];
const DEPLOYMENT_STATES: [DeploymentState; 6] = [
    DeploymentState::Queued,
    DeploymentState::Running,
    DeploymentState::Success,
    DeploymentState::Failed,
    DeploymentState::Cancelled,
    DeploymentState::Interrupted,
];

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4",
        content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let text = render(state.store.as_ref()).await?;
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
pub(crate) async fn render(store: &dyn Store) -> Result<String, tako_store::StoreError> {
    let mut deliveries: BTreeMap<&str, u64> = DELIVERY_OUTCOMES.iter().map(|o| (*o, 0)).collect();
    let mut page = PageRequest::first(COUNT_PAGE);
    loop {
        let found = store.list_deliveries(None, page).await?;
        for delivery in &found.items {
            let outcome = match &delivery.outcome {
                None => "pending",
                Some(DeliveryOutcome::Queued { .. }) => "queued",
                Some(DeliveryOutcome::Ignored { .. }) => "ignored",
                Some(DeliveryOutcome::Failed { .. }) => "failed",
                Some(DeliveryOutcome::Duplicate) => "duplicate",
            };
            *deliveries.entry(outcome).or_default() += 1;
        }
        match found.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }

    let mut deployments: BTreeMap<&str, u64> =
        DEPLOYMENT_STATES.iter().map(|s| (s.as_str(), 0)).collect();
    let mut page = PageRequest::first(COUNT_PAGE);
    loop {
        let found = store
            .list_deployments(&DeploymentFilter::default(), page)
            .await?;
        for deployment in &found.items {
            *deployments.entry(deployment.state.as_str()).or_default() += 1;
        }
        match found.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    let projects = store.list_projects().await?.len();

    let mut text = String::new();
    family(
        &mut text,
        "tako_deliveries",
        "Webhook deliveries stored, by outcome (pending: not processed yet).",
    );
    for (outcome, count) in &deliveries {
        let _ = writeln!(text, "tako_deliveries{{outcome=\"{outcome}\"}} {count}");
    }
    family(&mut text, "tako_deployments", "Deployments, by state.");
    for (state, count) in &deployments {
        let _ = writeln!(text, "tako_deployments{{state=\"{state}\"}} {count}");
    }
    family(
        &mut text,
        "tako_deployment_queue_depth",
        "Deployments queued and waiting for their turn.",
    );
    let queued = deployments.get("queued").copied().unwrap_or(0);
    let _ = writeln!(text, "tako_deployment_queue_depth {queued}");
    family(&mut text, "tako_projects", "Registered projects.");
    let _ = writeln!(text, "tako_projects {projects}");
    Ok(text)
}

fn family(text: &mut String, name: &str, help: &str) {
    let _ = writeln!(text, "# HELP {name} {help}");
    let _ = writeln!(text, "# TYPE {name} gauge");
}
