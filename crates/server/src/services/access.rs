//! Who is acting: a [`Principal`] (the API token that authenticated the
//! request, or the web session made from one) with a typed [`Role`], and
//! [`Services::authenticate`], the one way a credential becomes a principal.
//!
//! Tokens are looked up by their SHA-256; unknown, revoked and expired
//! tokens are all [`ServiceError::Unauthenticated`], so a refusal never
//! tells whether something exists.

use chrono::{TimeDelta, Utc};
use tako_store::{TokenHash, TokenId};

use super::{ServiceError, ServiceResult, Services};

/// A token's use is recorded at most this often.
const TOUCH_INTERVAL: TimeDelta = TimeDelta::seconds(60);

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything: variables, projects, tokens, keys, replays.
    Admin,
    /// Read, create releases, deploy and cancel.
    Deployer,
    /// Read only.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Deployer, Role::Viewer];

    /// Its name as stored and shown (`admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Deployer => "deployer",
            Role::Viewer => "viewer",
        }
    }

    /// The role named `name` (as stored: lowercase).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// Whether this role may deploy (create releases, deploy, cancel).
    pub fn may_deploy(self) -> bool {
        matches!(self, Role::Admin | Role::Deployer)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is calling: the token that authenticated the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's id.
    pub token: TokenId,
    /// The token's name.
    pub name: String,
    /// The token's role.
    pub role: Role,
}

impl Principal {
    /// Only [`Role::Admin`]: variables, projects, tokens, keys, replays.
    pub fn require_admin(&self, action: &'static str) -> ServiceResult<()> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(self.forbidden(action))
        }
    }

    /// [`Role::Admin`] or [`Role::Deployer`]: create releases, deploy, cancel.
    pub fn require_deployer(&self, action: &'static str) -> ServiceResult<()> {
        if self.role.may_deploy() {
            Ok(())
        } else {
            Err(self.forbidden(action))
        }
    }

    fn forbidden(&self, action: &'static str) -> ServiceError {
        ServiceError::Forbidden {
            role: self.role,
            action,
        }
    }
}

impl Services {
    /// The principal of the token with this hash:
    /// [`ServiceError::Unauthenticated`] when it is unknown, revoked or
    /// expired, or holds a role this server does not know. Records the
    /// token's use (at most once a minute). Bearer tokens and web sessions
    /// both end here.
    pub async fn authenticate(&self, hash: &TokenHash) -> ServiceResult<Principal> {
        let Some(found) = self.store.find_token_by_hash(hash).await? else {
            // An agent's credential opens the agent routes only.
            if self.store.find_agent_by_credential(hash).await?.is_some() {
                return Err(ServiceError::AgentForbidden(
                    "this is an agent's credential: it opens only the agent routes (/api/v1/agent/...)"
                        .to_owned(),
                ));
            }
            return Err(ServiceError::Unauthenticated);
        };
        let now = Utc::now();
        if found.revoked || found.expires_at.is_some_and(|at| at <= now) {
            return Err(ServiceError::Unauthenticated);
        }
        let Some(role) = Role::parse(&found.role) else {
            tracing::warn!(token = %found.id, role = %found.role, "a token with an unknown role was refused");
            return Err(ServiceError::Unauthenticated);
        };
        if found
            .last_used_at
            .is_none_or(|last| now - last >= TOUCH_INTERVAL)
            && let Err(error) = self.store.touch_token(found.id, now).await
        {
            // Recording the use is bookkeeping: the request goes on.
            tracing::warn!(token = %found.id, %error, "cannot record the token's use");
        }
        Ok(Principal {
            token: found.id,
            name: found.name,
            role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_only_admins_and_deployers_deploy() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Admin"), None);
        assert_eq!(Role::parse("root"), None);
        assert!(Role::Admin.may_deploy() && Role::Deployer.may_deploy());
        assert!(!Role::Viewer.may_deploy());
        let viewer = Principal {
            token: TokenId(1),
            name: "ci".to_owned(),
            role: Role::Viewer,
        };
        let refused = viewer.require_deployer("deploy").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "this token's role (viewer) cannot deploy"
        );
        assert!(viewer.require_admin("x").is_err());
    }
}
