//! The API's one error type and the extractors that answer bad input in its
//! JSON shape: `{"error": "...", "detail": ...}`.
//!
//! A 4xx names what was wrong with the request. A 5xx is a bug or an outage:
//! it is logged once here, and its body is generic.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::HeaderValue;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tako_store::{BoxError, StoreError};

use crate::services::{Role, ServiceError};

/// How long a client is asked to wait after a 503.
const RETRY_SECONDS: &str = "5";
use utoipa::ToSchema;

/// Why an API request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or a token that is unknown, revoked or expired: 401.
    #[error("missing or invalid API token")]
    Unauthorized,
    /// A valid token whose role does not allow this: 403, answered before
    /// anything is looked up (it never tells whether the resource exists).
    #[error("this token's role ({role}) cannot {action}")]
    Forbidden {
        /// The token's role.
        role: Role,
        /// What was refused (`read or change variables`).
        action: &'static str,
    },
    /// A credential refused with a reason (401), or an agent refused (403).
    #[error("{message}")]
    Refused {
        /// 401 or 403.
        status: StatusCode,
        /// Why, and what to do.
        message: String,
    },
    /// The thing asked for does not exist: 404.
    #[error("{0}")]
    NotFound(String),
    /// A uniqueness rule or a state change refused: 409.
    #[error("{0}")]
    Conflict(String),
    /// Bad input: 400, 413, 415 or 422, with what was wrong.
    #[error("{message}")]
    BadRequest {
        /// The status to answer with.
        status: StatusCode,
        /// What was wrong.
        message: String,
        /// More about it, if anything.
        detail: Option<String>,
    },
    /// Something Tako depends on failed, not Tako itself (the project's
    /// repository cannot be fetched): 502 or 503, saying what to do.
    #[error("{message}")]
    Upstream {
        /// 502 (the remote failed) or 503 (try again shortly).
        status: StatusCode,
        /// What failed and what to do, without internals.
        message: String,
    },
    /// The route exists, not with this method: 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The server's database cannot be reached: 503 with `Retry-After`; the
    /// cause is logged, never shown.
    #[error("the server's database is unavailable: retry shortly")]
    Unavailable(#[source] BoxError),
    /// Anything else: 500, logged, never described to the client.
    #[error("internal error: {0}")]
    Internal(#[source] BoxError),
}

impl ApiError {
    /// A 400 with this message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            detail: None,
        }
    }

    /// A 422 (well-formed, but not acceptable) with this message.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
            detail: None,
        }
    }

    /// The status code this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::BadRequest { status, .. }
            | ApiError::Upstream { status, .. }
            | ApiError::Refused { status, .. } => *status,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::from(ServiceError::from(error))
    }
}

/// The one mapping of the services' errors to the API's answers.
impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::Unauthenticated => ApiError::Unauthorized,
            ServiceError::CredentialRefused(message) => ApiError::Refused {
                status: StatusCode::UNAUTHORIZED,
                message,
            },
            ServiceError::AgentForbidden(message) => ApiError::Refused {
                status: StatusCode::FORBIDDEN,
                message,
            },
            ServiceError::Forbidden { role, action } => ApiError::Forbidden { role, action },
            ServiceError::NotAllowed(message) => ApiError::Refused {
                status: StatusCode::FORBIDDEN,
                message,
            },
            ServiceError::NotFound(message) => ApiError::NotFound(message),
            ServiceError::Conflict(message) => ApiError::Conflict(message),
            ServiceError::Invalid { message, detail } => ApiError::BadRequest {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message,
                detail,
            },
            ServiceError::BadInput(message) => ApiError::bad_request(message),
            error @ ServiceError::Refused(_) => ApiError::unprocessable(error.to_string()),
            ServiceError::Upstream { retry, message } => ApiError::Upstream {
                status: if retry {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::BAD_GATEWAY
                },
                message,
            },
            ServiceError::Unavailable(source) => ApiError::Unavailable(Box::new(source)),
            ServiceError::Internal(source) => ApiError::Internal(source),
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub error: String,
    /// More about it (which field, why), or `null`.
    pub detail: Option<String>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match self {
            ApiError::Internal(source) => {
                tracing::error!(error = %source, "API request failed");
                ErrorBody {
                    error: "internal server error".to_owned(),
                    detail: None,
                }
            }
            ApiError::Unavailable(source) => {
                tracing::error!(error = %source, "API request failed: the store is unavailable");
                let body = ErrorBody {
                    error: ApiError::Unavailable(source).to_string(),
                    detail: None,
                };
                let mut answer = (status, Json(body)).into_response();
                answer
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_SECONDS));
                return answer;
            }
            ApiError::BadRequest {
                message, detail, ..
            } => ErrorBody {
                error: message,
                detail,
            },
            other => ErrorBody {
                error: other.to_string(),
                detail: None,
            },
        };
        (status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let message = match &rejection {
            JsonRejection::JsonDataError(_) => "the JSON body does not have the expected fields",
            JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON",
            JsonRejection::MissingJsonContentType(_) => {
                "expected a body with Content-Type: application/json"
            }
            JsonRejection::BytesRejection(_) if status == StatusCode::PAYLOAD_TOO_LARGE => {
                "the body is too large"
            }
            _ => "the body could not be read",
        };
        ApiError::BadRequest {
            status,
            message: message.to_owned(),
            detail: Some(rejection.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest {
            status: StatusCode::BAD_REQUEST,
            message: "invalid query parameters".to_owned(),
            detail: Some(rejection.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest {
            status: StatusCode::BAD_REQUEST,
            message: "invalid path parameter".to_owned(),
            detail: Some(rejection.body_text()),
        }
    }
}

/// `axum::Json` whose rejection is an [`ApiError`].
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(ApiJson(value))
    }
}

/// `axum::extract::Query` whose rejection is an [`ApiError`].
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(value) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// `axum::extract::Path` whose rejection is an [`ApiError`].
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// The result of an API handler.
pub type ApiResult<T> = Result<T, ApiError>;
