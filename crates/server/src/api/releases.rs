//! Creating a release by hand: `POST /api/v1/projects/{name}/releases`.
//!
//! The handler hands the request to
//! [`Services::create_release`](crate::services::Services::create_release),
//! which makes it on the same path a push takes. The route shares its path
//! with the listing, so it is registered in `projects::router`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use tako_protocol::api::{CreateRelease, CreatedRelease};

use crate::api::ErrorBody;
use crate::api::auth::Deployer;
use crate::api::error::{ApiJson, ApiPath, ApiResult};
use crate::http::wire::to_wire;
use crate::services::NewReleaseInput;
use crate::state::AppState;

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
    let input = NewReleaseInput {
        version: body.version,
        branch: body.branch,
        commit: body.commit,
        notes: body.notes,
        deploy_to: body.deploy_to,
    };
    let created = state.services.create_release(&who, &name, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedRelease {
            release: to_wire(&created.release),
            deployments: created.deployments.iter().map(to_wire).collect(),
        }),
    ))
}
