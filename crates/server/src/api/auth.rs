//! Authentication: the [`Principal`] extractor. A handler that takes a
//! `Principal` cannot run for a request without a valid token.
//!
//! `Authorization: Bearer <token>`; the token's SHA-256 is looked up in the
//! store. Unknown, revoked and expired tokens all get the same 401, before any
//! resource is looked at, so a 401 never tells whether something exists.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use chrono::{TimeDelta, Utc};
use tako_store::{TokenHash, TokenId};

use crate::api::error::ApiError;
use crate::http::AppState;
use crate::startup::token_hash;

/// A token's use is recorded at most this often.
const TOUCH_INTERVAL: TimeDelta = TimeDelta::seconds(60);

/// Who is calling: the token that authenticated the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principal {
    /// The token's id.
    pub(crate) token: TokenId,
    /// The token's name.
    pub(crate) name: String,
    /// The token's role: `admin`, `deployer` or `viewer`.
    pub(crate) role: String,
}

impl Principal {
    /// Only `admin`: variables, projects, tokens, keys.
    pub(crate) fn require_admin(&self, action: &'static str) -> Result<(), ApiError> {
        if self.role == "admin" {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                role: self.role.clone(),
                action,
            })
        }
    }

    /// `admin` or `deployer`: create releases, deploy, cancel.
    pub(crate) fn require_deployer(&self, action: &'static str) -> Result<(), ApiError> {
        if self.role == "admin" || self.role == "deployer" {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                role: self.role.clone(),
                action,
            })
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized)?;
        let who = principal_for(state, &TokenHash(token_hash(token))).await?;
        if let Some(actor) = parts.extensions.get::<crate::api::trust::AuditActor>() {
            actor.set(&who);
        }
        Ok(who)
    }
}

/// The principal of the token with this hash: 401 when it is unknown,
/// revoked or expired. Records the token's use (at most once a minute).
/// Bearer tokens and web sessions both end here.
pub(crate) async fn principal_for(
    state: &AppState,
    hash: &TokenHash,
) -> Result<Principal, ApiError> {
    let found = state
        .store
        .find_token_by_hash(hash)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let now = Utc::now();
    if found.revoked || found.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::Unauthorized);
    }
    if found
        .last_used_at
        .is_none_or(|last| now - last >= TOUCH_INTERVAL)
        && let Err(error) = state.store.touch_token(found.id, now).await
    {
        // Recording the use is bookkeeping: the request goes on.
        tracing::warn!(token = %found.id, %error, "cannot record the token's use");
    }
    Ok(Principal {
        token: found.id,
        name: found.name,
        role: found.role,
    })
}

/// The token of an `Authorization: Bearer <token>` header, if well formed.
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A [`Principal`] with the `admin` role: variables, projects, tokens, keys.
/// Checked before the path, query or body is looked at, so a 403 never tells
/// whether a resource exists.
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
