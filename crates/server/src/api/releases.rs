//! Creating a release by hand: `POST /api/v1/projects/{name}/releases`.
//!
//! The handler checks the input and maps [`CreateError`] to status codes;
//! the release is made by [`crate::releases::Maker`], on the same path a
//! push takes. The route shares its path with the listing, so it is
//! registered in `projects::router`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tako_git::GitError;

use crate::api::auth::Deployer;
use crate::api::dto::{CreateRelease, CreatedRelease, DeploymentDto, ReleaseDto};
use crate::api::error::{ApiError, ApiJson, ApiPath, ApiResult};
use crate::api::projects::project_named;
use crate::api::{ErrorBody, check_name};
use crate::http::AppState;
use crate::releases::{CreateError, Maker, ReleaseError, ReleaseRequest};

/// The longest release notes accepted.
const MAX_NOTES_CHARS: usize = 16 * 1024;
/// The most environments one request may deploy to.
const MAX_DEPLOY_TO: usize = 20;

/// Creates a release from the head of a branch (default: the default
/// branch) or from a commit, freezing that commit's process and the
/// project's variables as a push would, and optionally queues deployments
/// of it. Needs the `admin` or `deployer` role.
#[utoipa::path(post, path = "/api/v1/projects/{name}/releases", tag = "releases",
    request_body = CreateRelease,
    params(("name" = String, Path, description = "The project's name")),
    responses((status = 201, body = CreatedRelease), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The version exists", body = ErrorBody),
        (status = 422, description = "Unknown branch or commit, invalid takofile, or refused \
            by an environment policy", body = ErrorBody),
        (status = 502, description = "The repository could not be fetched", body = ErrorBody),
        (status = 503, description = "The repository is still being fetched: retry", body = ErrorBody)))]
pub(crate) async fn create_release(
    Deployer(who): Deployer,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<CreateRelease>,
) -> ApiResult<(StatusCode, Json<CreatedRelease>)> {
    let request = request(body, &who.name)?;
    let project = project_named(state.store.as_ref(), &name).await?;
    let maker = Maker {
        store: Arc::clone(&state.store),
        mirrors: state.mirrors.clone(),
        keyring: Arc::clone(&state.keys.keyring),
        // Answer before the request's own time limit runs out.
        fetch_budget: state.limits.request_timeout * 3 / 4,
    };
    let created = maker
        .create(&project, request)
        .await
        .map_err(|e| api_error(e, &project.repository_url))?;
    if !created.deployments.is_empty() {
        state.deployments_queued.notify_one();
    }
    tracing::info!(project = %project.name, release = %created.release.number,
        commit = %created.release.commit, deployments = created.deployments.len(),
        by = %who.name, "release created through the API");
    Ok((
        StatusCode::CREATED,
        Json(CreatedRelease {
            release: ReleaseDto::from(&created.release),
            deployments: created
                .deployments
                .iter()
                .map(DeploymentDto::from)
                .collect(),
        }),
    ))
}

/// The request, checked: names as names, empty strings as absent.
fn request(body: CreateRelease, created_by: &str) -> ApiResult<ReleaseRequest> {
    let given =
        |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let version = given(body.version);
    if let Some(version) = &version {
        check_name("version", version)?;
        if version.chars().any(char::is_whitespace) {
            return Err(ApiError::unprocessable("version must not contain spaces"));
        }
    }
    if body
        .notes
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NOTES_CHARS)
    {
        return Err(ApiError::unprocessable(format!(
            "notes are longer than {MAX_NOTES_CHARS} characters"
        )));
    }
    if body.deploy_to.len() > MAX_DEPLOY_TO {
        return Err(ApiError::unprocessable(format!(
            "deploy_to names more than {MAX_DEPLOY_TO} environments"
        )));
    }
    let mut deploy_to = Vec::with_capacity(body.deploy_to.len());
    for environment in body.deploy_to {
        check_name("environment", &environment)?;
        deploy_to.push(environment.trim().to_owned());
    }
    Ok(ReleaseRequest {
        version,
        branch: given(body.branch),
        commit: given(body.commit),
        notes: body.notes,
        deploy_to,
        created_by: format!("{created_by} via the API"),
    })
}

/// The status and message of each reason a release was not made.
fn api_error(error: CreateError, repository: &str) -> ApiError {
    match error {
        error @ (CreateError::Input(_)
        | CreateError::UnknownCommit { .. }
        | CreateError::UnknownBranch { .. }
        | CreateError::NoDefaultBranch { .. }
        | CreateError::NotOnBranch { .. }
        | CreateError::Refused(_)) => ApiError::unprocessable(error.to_string()),
        CreateError::InvalidTakofile {
            commit,
            diagnostics,
        } => ApiError::BadRequest {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("the takofile at commit {commit} is invalid"),
            detail: Some(diagnostics.join("\n")),
        },
        CreateError::FetchPending { .. } => ApiError::Upstream {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: error.to_string(),
        },
        CreateError::Fetch { source, .. } => fetch_error(&source, repository),
        CreateError::Release(error) => release_error(error),
        CreateError::Mirror { .. } => ApiError::Internal(Box::new(error)),
        CreateError::Store(error) => ApiError::from(error),
    }
}

/// A failed fetch: what the remote said when it is about the remote, else
/// a pointer to the server's log (a 5xx carries no internals).
fn fetch_error(source: &GitError, repository: &str) -> ApiError {
    let (status, message) = match source {
        GitError::AuthenticationFailed { .. } => (
            StatusCode::BAD_GATEWAY,
            format!(
                "cannot fetch {repository}: {source}; check the project's repository token, then retry"
            ),
        ),
        GitError::Unreachable { .. } => (
            StatusCode::BAD_GATEWAY,
            format!(
                "cannot fetch {repository}: {source}; check that the repository exists and the server can reach it, then retry"
            ),
        ),
        GitError::InvalidUrl { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the project's repository URL cannot be fetched ({source}); correct the project's repository"
            ),
        ),
        GitError::Timeout { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("fetching {repository} timed out; retry later"),
        ),
        _ => (
            StatusCode::BAD_GATEWAY,
            format!(
                "cannot fetch {repository}; the server's log says why (check the repository URL, then retry)"
            ),
        ),
    };
    tracing::warn!(repository, error = %source, "fetch for a release failed");
    ApiError::Upstream { status, message }
}

fn release_error(error: ReleaseError) -> ApiError {
    match error {
        ReleaseError::Exists { number } => ApiError::Conflict(format!(
            "release {number} already exists in this project: choose another version, or leave it out for the next number"
        )),
        error @ (ReleaseError::Invalid { .. }
        | ReleaseError::NoTakofile { .. }
        | ReleaseError::NoSteps { .. }
        | ReleaseError::Manifest(_)
        | ReleaseError::Version(_)) => ApiError::unprocessable(error.to_string()),
        ReleaseError::Read {
            source: source @ (GitError::NotText { .. } | GitError::TooLarge { .. }),
            ..
        } => ApiError::unprocessable(format!("the takofile cannot be read: {source}")),
        ReleaseError::Store(error) => ApiError::from(error),
        error @ (ReleaseError::Read { .. } | ReleaseError::Seal(_)) => {
            ApiError::Internal(Box::new(error))
        }
    }
}
