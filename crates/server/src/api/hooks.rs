//! The webhook routes in the OpenAPI document. They are served by the HTTP
//! layer (`crate::http`, through the intake), not under `/api/v1`, and take
//! no token: the forge's signature or token authenticates them. These
//! functions only describe them, for the document and schemathesis.

#![allow(
    dead_code,
    reason = "described in the OpenAPI document, served by crate::http"
)]

use serde::Serialize;
use utoipa::ToSchema;

/// What a webhook is answered when it is taken.
#[derive(Serialize, ToSchema)]
pub(crate) struct HookAnswer {
    /// `queued` (202), `duplicate` (200, the same delivery id again),
    /// `ignored` (200, with `reason`) or `pong` (200).
    status: String,
    /// The stored delivery id (`gitlab-<id>` …), for `queued` and
    /// `duplicate`.
    #[schema(nullable = false)]
    delivery: Option<String>,
    /// Why nothing was done, for `ignored`.
    #[schema(nullable = false)]
    reason: Option<String>,
}

/// A push from GitHub.
#[utoipa::path(post, path = "/hooks/github", tag = "webhooks", security(()),
    params(
        ("X-GitHub-Event" = String, Header, description = "push, ping, …"),
        ("X-GitHub-Delivery" = String, Header, description = "The delivery id"),
        ("X-Hub-Signature-256" = Option<String>, Header, description = "sha256=<hex HMAC-SHA256 of the body>"),
    ),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 202, description = "Stored; routed next", body = HookAnswer),
        (status = 200, description = "A duplicate, a ping, or ignored", body = HookAnswer),
        (status = 400, description = "Bad headers or payload", body = super::ErrorBody),
        (status = 401, description = "Missing or wrong signature", body = super::ErrorBody),
        (status = 413, description = "Body over 25 MB", body = super::ErrorBody),
        (status = 503, description = "Busy or the store is unavailable; retry", body = super::ErrorBody),
    ))]
pub(crate) async fn github_hook() {}

/// A push from Gitea or Forgejo.
#[utoipa::path(post, path = "/hooks/gitea", tag = "webhooks", security(()),
    params(
        ("X-Gitea-Event" = String, Header, description = "push, delete, … (or X-Forgejo-Event)"),
        ("X-Gitea-Delivery" = String, Header, description = "The delivery id (or X-Forgejo-Delivery)"),
        ("X-Gitea-Signature" = Option<String>, Header, description = "Hex HMAC-SHA256 of the body (or X-Forgejo-Signature, X-Hub-Signature-256)"),
    ),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 202, description = "Stored; routed next", body = HookAnswer),
        (status = 200, description = "A duplicate, or ignored", body = HookAnswer),
        (status = 400, description = "Bad headers or payload", body = super::ErrorBody),
        (status = 401, description = "Missing or wrong signature", body = super::ErrorBody),
        (status = 413, description = "Body over 25 MB", body = super::ErrorBody),
        (status = 503, description = "Busy or the store is unavailable; retry", body = super::ErrorBody),
    ))]
pub(crate) async fn gitea_hook() {}

/// A push or tag push from GitLab.
#[utoipa::path(post, path = "/hooks/gitlab", tag = "webhooks", security(()),
    params(
        ("X-Gitlab-Event" = String, Header, description = "Push Hook, Tag Push Hook, …"),
        ("Idempotency-Key" = String, Header, description = "The delivery id (or X-Gitlab-Event-UUID)"),
        ("X-Gitlab-Token" = Option<String>, Header, description = "The secret token"),
        ("webhook-signature" = Option<String>, Header, description = "v1,<base64>, with a signing token"),
        ("webhook-id" = Option<String>, Header, description = "With a signing token"),
        ("webhook-timestamp" = Option<String>, Header, description = "Unix seconds, with a signing token"),
    ),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 202, description = "Stored; routed next", body = HookAnswer),
        (status = 200, description = "A duplicate, or ignored", body = HookAnswer),
        (status = 400, description = "Bad headers or payload", body = super::ErrorBody),
        (status = 401, description = "Missing or wrong token or signature", body = super::ErrorBody),
        (status = 413, description = "Body over 25 MB", body = super::ErrorBody),
        (status = 503, description = "Busy or the store is unavailable; retry", body = super::ErrorBody),
    ))]
pub(crate) async fn gitlab_hook() {}

/// A push from Bitbucket Cloud.
#[utoipa::path(post, path = "/hooks/bitbucket", tag = "webhooks", security(()),
    params(
        ("X-Event-Key" = String, Header, description = "repo:push, …"),
        ("X-Request-UUID" = String, Header, description = "The delivery id"),
        ("X-Hub-Signature" = Option<String>, Header, description = "sha256=<hex HMAC-SHA256 of the body>"),
    ),
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 202, description = "Stored; routed next", body = HookAnswer),
        (status = 200, description = "A duplicate, a ping, or ignored", body = HookAnswer),
        (status = 400, description = "Bad headers or payload", body = super::ErrorBody),
        (status = 401, description = "Missing or wrong signature", body = super::ErrorBody),
        (status = 413, description = "Body over 25 MB", body = super::ErrorBody),
        (status = 503, description = "Busy or the store is unavailable; retry", body = super::ErrorBody),
    ))]
pub(crate) async fn bitbucket_hook() {}
