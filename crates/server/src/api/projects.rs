//! Projects, their variables and their releases.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use tako_store::VariableId;
use utoipa::IntoParams;

use crate::api::auth::{Admin, Principal};
use crate::api::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::api::{ErrorBody, page_request};
use crate::http::limits::SMALL_BODY_BYTES;
use crate::http::wire::to_wire;
use crate::services::VariableInput;
use crate::services::projects::{ForgeStatusInput, NewProjectInput};
use crate::state::AppState;
use tako_protocol::api::{
    CreateProject, ProjectDto, ReleaseDto, ReleasePage, SetForgeStatus, SetVariable,
    SetWebhookSecret, VariableDto,
};

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/projects", get(list_projects).post(create_project))
        .route("/projects/{name}", get(get_project))
        .route("/projects/{name}/variables", get(list_variables))
        .route(
            "/projects/{name}/variables/{var}",
            put(set_variable)
                .delete(delete_variable)
                .layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)),
        )
        .route(
            "/projects/{name}/forge-status",
            put(set_forge_status)
                .delete(delete_forge_status)
                .layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)),
        )
        .route(
            "/projects/{name}/webhook-secret",
            put(set_webhook_secret).layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)),
        )
        .route(
            "/projects/{name}/releases",
            get(list_releases)
                .post(crate::api::releases::create_release)
                .layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)),
        )
        .route("/projects/{name}/releases/{number}", get(find_release))
}

/// Every project, by name.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    responses((status = 200, body = Vec<ProjectDto>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_projects(
    _who: Principal,
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<Vec<ProjectDto>>> {
    let projects = state.services.store.list_projects().await?;
    Ok(Json(projects.iter().map(to_wire).collect()))
}

/// Registers a project (and its webhook secret, if it has one).
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = ProjectDto), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_project(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<CreateProject>,
) -> ApiResult<(StatusCode, Json<ProjectDto>)> {
    let input = NewProjectInput {
        name: body.name,
        repository: body.repository,
        webhook_secret: body.webhook_secret,
        repository_token: body.repository_token,
    };
    let project = state.services.register_project(&who, input).await?;
    Ok((StatusCode::CREATED, Json(to_wire(&project))))
}

/// One project.
#[utoipa::path(get, path = "/api/v1/projects/{name}", tag = "projects",
    params(("name" = String, Path, description = "The project's name")),
    responses((status = 200, body = ProjectDto), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn get_project(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ProjectDto>> {
    let project = state.services.project_named(&name).await?;
    Ok(Json(to_wire(&project)))
}

/// A project's variables; sensitive values read `********`.
#[utoipa::path(get, path = "/api/v1/projects/{name}/variables", tag = "variables",
    params(("name" = String, Path, description = "The project's name")),
    responses((status = 200, body = Vec<VariableDto>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn list_variables(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Vec<VariableDto>>> {
    let variables = state.services.list_variables(&who, &name).await?;
    Ok(Json(variables.iter().map(to_wire).collect()))
}

/// Sets a variable (replacing the one with the same name and scope).
#[utoipa::path(put, path = "/api/v1/projects/{name}/variables/{var}", tag = "variables",
    request_body = SetVariable,
    params(("name" = String, Path, description = "The project's name"),
        ("var" = String, Path, description = "The variable's name")),
    responses((status = 200, body = VariableDto), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn set_variable(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath((name, var)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<SetVariable>,
) -> ApiResult<Json<VariableDto>> {
    let input = VariableInput {
        value: body.value,
        environments: body.environments.unwrap_or_default(),
        roles: body.roles.unwrap_or_default(),
        sensitive: body.sensitive.unwrap_or(false),
    };
    let variable = state
        .services
        .set_variable(&who, &name, &var, input)
        .await?;
    Ok(Json(to_wire(&variable)))
}

/// Deletes a variable by id.
#[utoipa::path(delete, path = "/api/v1/projects/{name}/variables/{var}", tag = "variables",
    params(("name" = String, Path, description = "The project's name"),
        ("var" = i64, Path, description = "The variable's id (see the listing)")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_variable(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath((name, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    state
        .services
        .delete_variable(&who, &name, VariableId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Paging through a newest-first listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// At most this many items (1 to 200, default 50).
    pub(crate) limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// A project's releases, newest first.
#[utoipa::path(get, path = "/api/v1/projects/{name}/releases", tag = "releases",
    params(("name" = String, Path, description = "The project's name"), PageQuery),
    responses((status = 200, body = ReleasePage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn list_releases(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<ReleasePage>> {
    let page = page_request(query.limit, query.cursor.as_deref())?;
    let project = state.services.project_named(&name).await?;
    let releases = state.services.store.list_releases(project.id, page).await?;
    Ok(Json(ReleasePage {
        items: releases.items.iter().map(to_wire).collect(),
        next_cursor: releases.next.map(|c| c.to_token()),
    }))
}

/// A project's release by number.
#[utoipa::path(get, path = "/api/v1/projects/{name}/releases/{number}", tag = "releases",
    params(("name" = String, Path, description = "The project's name"),
        ("number" = String, Path, description = "The release number")),
    responses((status = 200, body = ReleaseDto), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn find_release(
    _who: Principal,
    State(state): State<Arc<AppState>>,
    ApiPath((name, number)): ApiPath<(String, String)>,
) -> ApiResult<Json<ReleaseDto>> {
    let project = state.services.project_named(&name).await?;
    let release = state
        .services
        .store
        .find_release_by_number(project.id, &number)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "release {number} of project {} not found",
                project.name
            ))
        })?;
    Ok(Json(to_wire(&release)))
}

/// Replaces (rotates) or removes a project's own webhook secret. The new
/// secret applies to the next push; it is never shown again.
#[utoipa::path(put, path = "/api/v1/projects/{name}/webhook-secret", tag = "projects",
    request_body = SetWebhookSecret,
    params(("name" = String, Path, description = "The project's name")),
    responses((status = 200, body = ProjectDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn set_webhook_secret(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<SetWebhookSecret>,
) -> ApiResult<Json<ProjectDto>> {
    let updated = state
        .services
        .set_webhook_secret(&who, &name, body.webhook_secret)
        .await?;
    Ok(Json(to_wire(&updated)))
}

/// Sets how the project's deployments are reported to its forge as commit
/// statuses; the token is write-only (the answer says only that one is set).
#[utoipa::path(put, path = "/api/v1/projects/{name}/forge-status", tag = "projects",
    request_body = SetForgeStatus,
    params(("name" = String, Path, description = "The project's name")),
    responses((status = 200, body = ProjectDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn set_forge_status(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<SetForgeStatus>,
) -> ApiResult<Json<ProjectDto>> {
    let input = ForgeStatusInput {
        token: body.token,
        forge: body.forge,
        api_url: body.api_url,
        deployments: body.deployments.unwrap_or(false),
    };
    let updated = state
        .services
        .set_forge_status(&who, &name, Some(input))
        .await?;
    Ok(Json(to_wire(&updated)))
}

/// Stops reporting the project's deployments to its forge (the token is
/// deleted).
#[utoipa::path(delete, path = "/api/v1/projects/{name}/forge-status", tag = "projects",
    params(("name" = String, Path, description = "The project's name")),
    responses((status = 200, body = ProjectDto), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete_forge_status(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<ProjectDto>> {
    let updated = state.services.set_forge_status(&who, &name, None).await?;
    Ok(Json(to_wire(&updated)))
}
