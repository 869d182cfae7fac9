//! Agents: what admins do (`/api/v1/agents…`: enrollment tokens, the list,
//! approve, disable, enable, remove, rotate) and the agent-facing routes
//! (`/api/v1/agent/…`: enrollment, `me`, and the job protocol: the next job
//! (a long poll), the release commit's files as a tar stream, numbered log
//! chunks, heartbeats, the outcome), which take
//! an agent's credential and nothing else.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tako_protocol::agent::{
    AgentInfo, EnrollReply, EnrollRequest, HeartbeatReply, JobLogLine, JobOutcome, LogAck,
    LogBatch, LogChunk, NextJobRequest, Secret,
};
use tako_protocol::api::{
    AgentDto, CreateEnrollmentToken, CreatedEnrollmentToken, RotatedAgentCredential,
};
use tako_store::JobId;

use crate::api::ErrorBody;
use crate::api::auth::{Admin, AgentCaller, Principal};
use crate::api::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::http::limits::SMALL_BODY_BYTES;
use crate::http::wire::{agent_info, time, to_wire};
use crate::services::{AgentAction, EnrollInput, EnrollmentInput};
use crate::state::AppState;

pub(crate) fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/agents", get(list_agents))
        .route(
            "/agents/enrollment-tokens",
            post(create_enrollment_token).layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)),
        )
        .route("/agents/{name}", axum::routing::delete(remove_agent))
        .route("/agents/{name}/approve", post(approve_agent))
        .route("/agents/{name}/disable", post(disable_agent))
        .route("/agents/{name}/enable", post(enable_agent))
        .route("/agents/{name}/rotate", post(rotate_agent))
        .route(
            "/agent/enroll",
            post(enroll).layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)),
        )
        .route("/agent/me", get(me))
        .route(
            "/agent/jobs/next",
            post(next_job).layer(DefaultBodyLimit::max(SMALL_BODY_BYTES)),
        )
        .route("/agent/jobs/{id}/log", post(job_log))
        .route("/agent/jobs/{id}/logs", post(job_logs))
        .route("/agent/jobs/{id}/heartbeat", post(job_heartbeat))
        .route("/agent/jobs/{id}/source", get(job_source))
        .route(
            "/agent/jobs/{id}/outcome",
            post(job_outcome).layer(DefaultBodyLimit::max(SMALL_BODY_BYTES * 16)),
        )
}

/// How long to hold a poll for work.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct NextJobQuery {
    /// Seconds to wait for a job (0 to 30, default 25).
    wait: Option<u64>,
}

/// The longest a poll for work is held.
const MAX_WAIT_SECONDS: u64 = 30;

/// The agent's next job: 200 with the job, or 204 after waiting for one.
pub(crate) async fn next_job(
    AgentCaller(agent): AgentCaller,
    State(state): State<Arc<AppState>>,
    ApiQuery(query): ApiQuery<NextJobQuery>,
    ApiJson(body): ApiJson<NextJobRequest>,
) -> ApiResult<Response> {
    state
        .services
        .check_agent_protocol(&body.version, body.protocol)?;
    let wait = query.wait.unwrap_or(25).min(MAX_WAIT_SECONDS);
    match state
        .services
        .next_job(&agent, std::time::Duration::from_secs(wait))
        .await?
    {
        Some(spec) => Ok((
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            spec,
        )
            .into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// One numbered chunk of a job's log; the answer says what is stored.
pub(crate) async fn job_log(
    AgentCaller(agent): AgentCaller,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(chunk): ApiJson<LogChunk>,
) -> ApiResult<Json<LogAck>> {
    if chunk.job != id {
        return Err(ApiError::bad_request(format!(
            "the chunk names job {} but was sent for job {id}",
            chunk.job
        )));
    }
    let ack = state
        .services
        .store_job_log(&agent, &JobId(id), chunk.seq, &chunk.lines)
        .await?;
    Ok(Json(ack))
}

/// Consecutive chunks of a job's log in one request; the answer says what
/// is stored.
pub(crate) async fn job_logs(
    AgentCaller(agent): AgentCaller,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(batch): ApiJson<LogBatch>,
) -> ApiResult<Json<LogAck>> {
    if batch.job != id {
        return Err(ApiError::bad_request(format!(
            "the batch names job {} but was sent for job {id}",
            batch.job
        )));
    }
    if let Some(other) = batch.chunks.iter().find(|c| c.job != id) {
        return Err(ApiError::bad_request(format!(
            "chunk {} of the batch names job {} but was sent for job {id}",
            other.seq, other.job
        )));
    }
    let chunks: Vec<(u64, &[JobLogLine])> = batch
        .chunks
        .iter()
        .map(|c| (c.seq, c.lines.as_slice()))
        .collect();
    let ack = state
        .services
        .store_job_logs(&agent, &JobId(id), &chunks)
        .await?;
    Ok(Json(ack))
}

/// The release commit's files as a tar stream (`git archive`), streamed
/// as git writes them; a failure of git midway cuts the answer short, so
/// the agent never takes a partial tree for a whole one.
pub(crate) async fn job_source(
    AgentCaller(agent): AgentCaller,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let job = JobId(id);
    let archive = state.services.job_source(&agent, &job).await?;
    let stream = futures_util::stream::unfold((archive, job), |(mut archive, job)| async move {
        let mut buffer = vec![0u8; 64 * 1024];
        match archive.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(axum::body::Bytes::from(buffer)), (archive, job)))
            }
            Err(error) => {
                tracing::warn!(job = %job, %error, "a job's source stream failed");
                Some((
                    Err(std::io::Error::other("the source archive failed")),
                    (archive, job),
                ))
            }
        }
    });
    Ok((
        [(CONTENT_TYPE, HeaderValue::from_static("application/x-tar"))],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

/// A heartbeat: the job's lease is extended; the answer carries a cancel
/// request.
pub(crate) async fn job_heartbeat(
    AgentCaller(agent): AgentCaller,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<HeartbeatReply>> {
    Ok(Json(
        state.services.job_heartbeat(&agent, &JobId(id)).await?,
    ))
}

/// How the job ended (idempotent).
pub(crate) async fn job_outcome(
    AgentCaller(agent): AgentCaller,
    State(state): State<Arc<AppState>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(outcome): ApiJson<JobOutcome>,
) -> ApiResult<StatusCode> {
    state
        .services
        .finish_agent_job(&agent, &JobId(id), outcome)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every agent, by name.
#[utoipa::path(get, path = "/api/v1/agents", tag = "agents",
    responses((status = 200, body = Vec<AgentDto>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_agents(
    _who: Principal,
    State(state): State<Arc<AppState>>,
) -> ApiResult<Json<Vec<AgentDto>>> {
    let agents = state.services.list_agents().await?;
    Ok(Json(agents.iter().map(to_wire).collect()))
}

/// Creates a single-use enrollment token (shown once).
#[utoipa::path(post, path = "/api/v1/agents/enrollment-tokens", tag = "agents",
    request_body = CreateEnrollmentToken,
    responses((status = 201, body = CreatedEnrollmentToken), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_enrollment_token(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<CreateEnrollmentToken>,
) -> ApiResult<(StatusCode, Json<CreatedEnrollmentToken>)> {
    let input = EnrollmentInput {
        name: body.name,
        environments: body.environments,
        roles: body.roles,
        expires_in_minutes: body.expires_in_minutes,
        auto_approve: body.auto_approve,
    };
    let (token, stored) = state.services.create_enrollment_token(&who, input).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEnrollmentToken {
            token,
            name: stored.name,
            environments: stored.environments,
            roles: stored.roles,
            expires_at: time(stored.expires_at),
            auto_approve: stored.auto_approve,
        }),
    ))
}

async fn change(
    state: &AppState,
    who: &Principal,
    name: &str,
    action: AgentAction,
) -> ApiResult<Json<AgentDto>> {
    let agent = state.services.change_agent(who, name, action).await?;
    Ok(Json(to_wire(&agent)))
}

/// Approves a pending agent: it gets work from now on.
#[utoipa::path(post, path = "/api/v1/agents/{name}/approve", tag = "agents",
    params(("name" = String, Path, description = "The agent's name")),
    responses((status = 200, body = AgentDto), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn approve_agent(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<AgentDto>> {
    change(&state, &who, &name, AgentAction::Approve).await
}

/// Disables an agent: it is refused at its next call.
#[utoipa::path(post, path = "/api/v1/agents/{name}/disable", tag = "agents",
    params(("name" = String, Path, description = "The agent's name")),
    responses((status = 200, body = AgentDto), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn disable_agent(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<AgentDto>> {
    change(&state, &who, &name, AgentAction::Disable).await
}

/// Enables a disabled agent.
#[utoipa::path(post, path = "/api/v1/agents/{name}/enable", tag = "agents",
    params(("name" = String, Path, description = "The agent's name")),
    responses((status = 200, body = AgentDto), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn enable_agent(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<AgentDto>> {
    change(&state, &who, &name, AgentAction::Enable).await
}

/// Removes an agent: its credential stops working.
#[utoipa::path(delete, path = "/api/v1/agents/{name}", tag = "agents",
    params(("name" = String, Path, description = "The agent's name")),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn remove_agent(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.services.remove_agent(&who, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives an agent a new credential (shown once); the old one stops working.
#[utoipa::path(post, path = "/api/v1/agents/{name}/rotate", tag = "agents",
    params(("name" = String, Path, description = "The agent's name")),
    responses((status = 200, body = RotatedAgentCredential), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn rotate_agent(
    Admin(who): Admin,
    State(state): State<Arc<AppState>>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<RotatedAgentCredential>> {
    let (agent, credential) = state.services.rotate_agent_credential(&who, &name).await?;
    Ok(Json(RotatedAgentCredential {
        agent: to_wire(&agent),
        credential,
    }))
}

/// An agent exchanges its enrollment token for its own credential.
pub(crate) async fn enroll(
    State(state): State<Arc<AppState>>,
    ApiJson(body): ApiJson<EnrollRequest>,
) -> ApiResult<(StatusCode, Json<EnrollReply>)> {
    let input = EnrollInput {
        token: body.token.0,
        name: body.name,
        version: body.version,
        protocol: body.protocol,
    };
    let (agent, credential) = state.services.enroll_agent(input).await?;
    Ok((
        StatusCode::CREATED,
        Json(EnrollReply {
            agent: agent_info(&agent),
            credential: Secret(credential),
        }),
    ))
}

/// The calling agent, as the server keeps it.
pub(crate) async fn me(AgentCaller(agent): AgentCaller) -> Json<AgentInfo> {
    Json(agent_info(&agent))
}
