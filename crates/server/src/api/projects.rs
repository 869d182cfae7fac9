//! Projects, their variables and their releases.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use tako_store::{
    NewProject, NewVariable, Project, RepositoryToken, Store, VariableId, WebhookSecret,
};
use utoipa::IntoParams;

use crate::api::auth::{Admin, Principal};
use crate::api::dto::{
    CreateProject, ProjectDto, ReleaseDto, ReleasePage, SetVariable, SetWebhookSecret, VariableDto,
};
use crate::api::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::api::{ErrorBody, check_name, page_request};
use crate::http::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/projects", get(list_projects).post(create_project))
        .route("/projects/{name}", get(get_project))
        .route("/projects/{name}/variables", get(list_variables))
        .route(
            "/projects/{name}/variables/{var}",
            put(set_variable)
                .delete(delete_variable)
                .layer(DefaultBodyLimit::max(crate::limits::SMALL_BODY_BYTES)),
        )
        .route(
            "/projects/{name}/webhook-secret",
            put(set_webhook_secret).layer(DefaultBodyLimit::max(crate::limits::SMALL_BODY_BYTES)),
        )
        .route(
            "/projects/{name}/releases",
            get(list_releases)
                .post(crate::api::releases::create_release)
                .layer(DefaultBodyLimit::max(crate::limits::SMALL_BODY_BYTES)),
        )
        .route("/projects/{name}/releases/{number}", get(find_release))
}

/// The project named `name` (without regard to case), or a 404.
pub(crate) async fn project_named(store: &dyn Store, name: &str) -> ApiResult<Project> {
    store
        .find_project_by_name(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("project {name} not found")))
}

/// Every project, by name.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    responses((status = 200, body = Vec<ProjectDto>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_projects(
    _who: Principal,
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<Vec<ProjectDto>>> {
    let projects = state.store.list_projects().await?;
    Ok(Json(projects.iter().map(ProjectDto::from).collect()))
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
    let project = register_project(&state, body).await?;
    tracing::info!(project = %project.name, by = %who.name, "project registered through the API");
    Ok((StatusCode::CREATED, Json(ProjectDto::from(&project))))
}

async fn register_project(state: &AppState, body: CreateProject) -> ApiResult<Project> {
    check_name("project name", &body.name)?;
    let repository = body.repository.trim();
    if repository.is_empty() || repository.len() > 2048 || repository.chars().any(char::is_control)
    {
        return Err(ApiError::unprocessable(
            "repository must be a URL of at most 2048 characters",
        ));
    }
    // Only what Tako can fetch: http(s)://, ssh://, git@host:path, file://
    // or an absolute path (a garbage URL would only fail later, at a push).
    tako_git::RemoteUrl::parse(repository)
        .map_err(|error| ApiError::unprocessable(format!("repository: {error}")))?;
    if body.webhook_secret.as_deref().is_some_and(str::is_empty) {
        return Err(ApiError::unprocessable(
            "webhook_secret must not be empty: leave it out to use the server's",
        ));
    }
    let project = state
        .store
        .create_project(NewProject {
            name: body.name.trim().to_owned(),
            repository_url: repository.to_owned(),
            webhook_secret: body.webhook_secret.clone().map(WebhookSecret),
            repository_token: body.repository_token.clone().map(RepositoryToken),
        })
        .await?;
    if let Some(secret) = body.webhook_secret {
        state
            .intake
            .secrets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(&project.repository_url, secret);
    }
    Ok(project)
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
    let project = project_named(state.store.as_ref(), &name).await?;
    Ok(Json(ProjectDto::from(&project)))
}

/// A project's variables; sensitive values read `********`.
#[utoipa::path(get, path = "/api/v1/projects/{name}/variables", tag = "variables",
    params(("name" = String, Path, description = "The project's name")),
    responses((status = 200, body = Vec<VariableDto>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn list_variables(
    Admin(_who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Vec<VariableDto>>> {
    let project = project_named(state.store.as_ref(), &name).await?;
    let variables = state.store.list_variables(project.id).await?;
    Ok(Json(variables.iter().map(VariableDto::from).collect()))
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
    let variable = crate::actions::set_variable(&state, &who, &name, body, &var).await?;
    Ok(Json(VariableDto::from(&variable)))
}

pub(crate) fn new_variable(
    project: &Project,
    name: &str,
    body: SetVariable,
) -> ApiResult<NewVariable> {
    check_name("variable name", name)?;
    let mut environments = body.environments.unwrap_or_default();
    for environment in &environments {
        check_name("environment", environment)?;
    }
    environments.sort();
    environments.dedup();
    Ok(NewVariable {
        project: project.id,
        name: name.to_owned(),
        value: body.value,
        environments,
        sensitive: body.sensitive.unwrap_or(false),
    })
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
    crate::actions::delete_variable(&state, &who, &name, VariableId(id)).await?;
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
    let project = project_named(state.store.as_ref(), &name).await?;
    let releases = state.store.list_releases(project.id, page).await?;
    Ok(Json(ReleasePage {
        items: releases.items.iter().map(ReleaseDto::from).collect(),
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
    let project = project_named(state.store.as_ref(), &name).await?;
    let release = state
        .store
        .find_release_by_number(project.id, &number)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "release {number} of project {} not found",
                project.name
            ))
        })?;
    Ok(Json(ReleaseDto::from(&release)))
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
    if body.webhook_secret.as_deref().is_some_and(str::is_empty) {
        return Err(ApiError::unprocessable(
            "webhook_secret must not be empty: send null to use the server's",
        ));
    }
    let project = project_named(state.store.as_ref(), &name).await?;
    let updated = state
        .store
        .set_webhook_secret(project.id, body.webhook_secret.clone().map(WebhookSecret))
        .await?;
    {
        let mut index = state
            .intake
            .secrets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match body.webhook_secret {
            Some(secret) => index.insert(&updated.repository_url, secret),
            None => index.remove(&updated.repository_url),
        }
    }
    tracing::info!(project = %updated.name, by = %who.name, "project webhook secret replaced");
    Ok(Json(ProjectDto::from(&updated)))
}
