//! API tokens: create (shown once, stored as a hash) and revoke, admin only.

use tako_store::{ApiToken, NewApiToken, TokenHash, TokenId};

use super::{Principal, Role, ServiceError, ServiceResult, Services, check_name};
use crate::startup;

/// What the admin role is needed for here.
const TOKENS: &str = "manage tokens: it needs the admin role";

/// A token to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTokenInput {
    /// A name for people.
    pub name: String,
    /// Its role, by name; `None` is `admin`.
    pub role: Option<String>,
    /// It stops working after this many days (1 to 3650); never without.
    pub expires_in_days: Option<u32>,
}

impl Services {
    /// Every token, oldest first (admin only; never the tokens themselves).
    pub async fn list_tokens(&self, who: &Principal) -> ServiceResult<Vec<ApiToken>> {
        who.require_admin(TOKENS)?;
        Ok(self.store.list_tokens().await?)
    }

    /// Creates a token: the secret (shown this once) and what is kept of it.
    pub async fn create_token(
        &self,
        who: &Principal,
        input: NewTokenInput,
    ) -> ServiceResult<(String, ApiToken)> {
        who.require_admin(TOKENS)?;
        check_name("token name", &input.name)?;
        let role = match input.role.as_deref() {
            None => Role::Admin,
            Some(name) => Role::parse(name).ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                ServiceError::invalid(format!(
                    "unknown role {name:?}: expected one of {}",
                    known.join(", ")
                ))
            })?,
        };
        let expires_at = match input.expires_in_days {
            None => None,
            Some(days @ 1..=3650) => {
                Some(chrono::Utc::now() + chrono::TimeDelta::days(i64::from(days)))
            }
            Some(_) => {
                return Err(ServiceError::invalid(
                    "expires_in_days must be between 1 and 3650",
                ));
            }
        };
        let token = startup::new_token().map_err(ServiceError::internal)?;
        let stored = self
            .store
            .create_token(NewApiToken {
                name: input.name.trim().to_owned(),
                hash: TokenHash(startup::token_hash(&token)),
                role: role.as_str().to_owned(),
                expires_at,
            })
            .await?;
        tracing::info!(token = %stored.id, name = %stored.name, role = %stored.role,
            by = %who.name, by_token = %who.token, "API token created");
        Ok((token, stored))
    }

    /// Revokes a token: from now on it is refused.
    pub async fn revoke_token(&self, who: &Principal, id: TokenId) -> ServiceResult<()> {
        who.require_admin(TOKENS)?;
        if !self.store.list_tokens().await?.iter().any(|t| t.id == id) {
            return Err(ServiceError::NotFound(format!("token {id} not found")));
        }
        self.store.revoke_token(id).await?;
        tracing::info!(token = %id, by = %who.name, by_token = %who.token, "API token revoked");
        Ok(())
    }
}
