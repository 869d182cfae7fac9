//! The JSON API under `/api/v1`, its OpenAPI document and `/metrics`.
//!
//! Every `/api/v1` route but `openapi.json` takes a [`auth::Principal`], so
//! a request without a valid `Authorization: Bearer` token is answered 401
//! before anything is looked up (a 401 never tells whether a resource
//! exists). Every error, bad input included, is answered as
//! [`error::ErrorBody`] JSON. Request bodies are limited to
//! [`MAX_BODY_BYTES`].
//!
//! `/metrics` and `/api/v1/openapi.json` need no token: they reveal only
//! totals and the API's shape.

mod admin;
mod agents;
pub(crate) mod auth;
mod deployments;
pub mod error;
mod freezes;
mod hooks;
pub(crate) mod logs;
mod metrics;
mod plans;
pub(crate) mod projects;
mod releases;
pub(crate) mod trust;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use error::ApiError;
pub use error::ErrorBody;
use tako_protocol::api as dto;

pub(crate) use crate::services::page_request;
use crate::state::AppState;

/// The largest request body the API reads.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The API's routes, to merge into the server's router.
pub fn router(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let v1 = Router::new()
        .merge(projects::router())
        .merge(deployments::router())
        .merge(admin::router())
        .merge(trust::router())
        .merge(agents::router())
        .merge(plans::router())
        .merge(freezes::router())
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(state),
            crate::http::audit::audit,
        ))
        .route("/openapi.json", get(openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    Router::new()
        .nest("/api/v1", v1)
        .route("/metrics", get(metrics::metrics))
}

/// The OpenAPI document of the API, generated from the handlers and DTOs.
#[derive(OpenApi)]
#[openapi(
    info(title = "Tako API", description = "Tako's HTTP API: projects, variables, releases, \
        deployments and their task logs, webhook deliveries, API tokens."),
    paths(
        projects::list_projects, projects::create_project, projects::get_project,
        projects::list_variables, projects::set_variable, projects::delete_variable,
        projects::set_webhook_secret,
        projects::set_forge_status,
        projects::delete_forge_status,
        projects::list_releases, releases::create_release, projects::find_release,
        deployments::get_release, deployments::deploy_release,
        deployments::list_deployments, deployments::get_deployment,
        deployments::cancel_deployment, deployments::retry_deployment, logs::deployment_log, deployments::deployment_jobs,
        deployments::approve_deployment, deployments::reject_deployment,
        deployments::deployment_approvals, deployments::awaiting_my_approval,
        deployments::answer_intervention, deployments::deployment_interventions,
        deployments::open_interventions,
        deployments::promote_release, plans::create_plan, plans::plan_delivery,
        freezes::list_freezes, freezes::create_freeze, freezes::delete_freeze, freezes::release_hold,
        admin::list_deliveries, admin::get_delivery, admin::replay_delivery, admin::list_tokens, admin::create_token,
        admin::revoke_token, admin::rotate_key, admin::run_retention,
        trust::list_policies, trust::set_policy, trust::delete_policy, trust::list_audit,
        agents::list_agents, agents::create_enrollment_token, agents::approve_agent,
        agents::disable_agent, agents::enable_agent, agents::remove_agent, agents::rotate_agent,
        openapi_json, metrics::metrics,
        hooks::github_hook, hooks::gitea_hook, hooks::gitlab_hook, hooks::bitbucket_hook,
    ),
    components(schemas(
        ErrorBody, dto::ProjectDto, dto::CreateProject, dto::VariableDto, dto::SetVariable,
        dto::ReleaseDto, dto::ReleasePage, dto::CreateRelease, dto::CreatedRelease,
        dto::CreateDeployment, dto::RetryDeployment, dto::StepDto,
        dto::DeploymentDto, dto::DeploymentPage, dto::ApprovalRuleDto, dto::ApprovalDto,
        dto::InterventionDto, dto::InterventionAnswerDto, dto::OpenInterventionDto, dto::AnswerIntervention, dto::RetryOfDto,
        dto::DecideApproval, dto::JobDto, dto::OutcomeDto, dto::DeliveryDto,
        dto::DeliveryPage, dto::TokenDto, dto::CreateToken, dto::CreatedToken, dto::KeyRotation, dto::RetentionRun,
        dto::EnvironmentPolicyDto, dto::SetEnvironmentPolicy, dto::SetWebhookSecret, dto::SetForgeStatus, dto::AuditEntryDto, dto::AuditPage,
        dto::LogLineDto, dto::LogEnd, dto::AgentDto, dto::CreateEnrollmentToken,
        dto::CreatedEnrollmentToken, dto::RotatedAgentCredential, hooks::HookAnswer,
        dto::CreatePlan, dto::PlanDto, dto::PlanStepDto, dto::PlanJobDto, dto::PlanVariableDto, dto::DeliveryPlanDto,
        dto::CreateFreeze, dto::FreezeDto, dto::OverrideFreeze,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// The OpenAPI document (no token needed).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "This document", content_type = "application/json")))]
pub(crate) async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found(_who: auth::Principal) -> ApiError {
    ApiError::NotFound("no such API route".to_owned())
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response()
}
