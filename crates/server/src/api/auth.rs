//! Authentication for the JSON API: the [`Principal`] extractor (a handler
//! that takes one cannot run for a request without a valid token) and the
//! [`Admin`] and [`Deployer`] role extractors, checked before the path,
//! query or body is looked at, so a 401 or 403 never tells whether a
//! resource exists.
//!
//! `Authorization: Bearer <token>`; the token's SHA-256 goes to
//! [`Services::authenticate`](crate::services::Services::authenticate).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use tako_store::TokenHash;

pub(crate) use crate::services::Principal;

use crate::api::error::ApiError;
use crate::http::audit::AuditActor;
use crate::startup::token_hash;
use crate::state::AppState;

impl FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized)?;
        let who = state
            .services
            .authenticate(&TokenHash(token_hash(token)))
            .await?;
        if let Some(actor) = parts.extensions.get::<AuditActor>() {
            actor.set(&who);
        }
        Ok(who)
    }
}

/// The token of an `Authorization: Bearer <token>` header, if well formed.
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A [`Principal`] with the `admin` role: variables, projects, tokens, keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admin(pub(crate) Principal);

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let who = Principal::from_request_parts(parts, state).await?;
        who.require_admin("do this: it needs the admin role")?;
        Ok(Admin(who))
    }
}

/// A [`Principal`] with the `admin` or `deployer` role: create releases,
/// deploy, cancel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Deployer(pub(crate) Principal);

impl FromRequestParts<Arc<AppState>> for Deployer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let who = Principal::from_request_parts(parts, state).await?;
        who.require_deployer("do this: it needs the admin or deployer role")?;
        Ok(Deployer(who))
    }
}

/// The agent whose credential authenticated the request (agent routes
/// only): a pending or disabled agent is refused with why.
#[derive(Debug, Clone)]
pub(crate) struct AgentCaller(pub(crate) tako_store::Agent);

impl FromRequestParts<Arc<AppState>> for AgentCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized)?;
        let agent = state
            .services
            .authenticate_agent(&TokenHash(token_hash(token)))
            .await?;
        if let Some(actor) = parts.extensions.get::<AuditActor>() {
            actor.set_agent(&agent.name);
        }
        Ok(AgentCaller(agent))
    }
}
