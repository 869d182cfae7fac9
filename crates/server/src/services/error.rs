//! [`ServiceError`]: why a service refused or failed, typed so that each
//! front end maps it to its own answer in one place (the API to a status
//! code and JSON, the web UI to a page).

use tako_store::{BoxError, StoreError};

use super::Role;

/// Why a service did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No credential, or one that is unknown, revoked or expired.
    #[error("missing or invalid API token")]
    Unauthenticated,
    /// A valid credential whose role does not allow this.
    #[error("this token's role ({role}) cannot {action}")]
    Forbidden {
        /// The caller's role.
        role: Role,
        /// What was refused (`read or change variables: it needs the admin role`).
        action: &'static str,
    },
    /// A credential that is not an API token was refused (an unknown,
    /// used or expired enrollment token, an unknown agent credential):
    /// the message says what to do.
    #[error("{0}")]
    CredentialRefused(String),
    /// An agent's credential on a route for people, or an agent that may
    /// not work now (pending approval, disabled).
    #[error("{0}")]
    AgentForbidden(String),
    /// A person who may not do this to this thing (an approval by someone
    /// without the approval's role, or by its pusher or creator).
    #[error("{0}")]
    NotAllowed(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A uniqueness rule or a state change refused it.
    #[error("{0}")]
    Conflict(String),
    /// The input is well formed but not acceptable (a bad name, an unknown
    /// role, a takofile that does not validate).
    #[error("{message}")]
    Invalid {
        /// What was wrong.
        message: String,
        /// More about it (every diagnostic), if anything.
        detail: Option<String>,
    },
    /// The input is malformed (a bad page cursor or filter).
    #[error("{0}")]
    BadInput(String),
    /// An environment policy refuses it.
    #[error("refused by the environment policy: {0}")]
    Refused(String),
    /// Something Tako depends on failed (the repository cannot be fetched):
    /// the message says what to do, without internals.
    #[error("{message}")]
    Upstream {
        /// `true`: try again shortly (a fetch still going on, a timeout);
        /// `false`: the remote refused or failed.
        retry: bool,
        /// What failed and what to do.
        message: String,
    },
    /// The store cannot be reached or failed: try again shortly. Its cause
    /// is logged, never shown.
    #[error("the server's database is unavailable: retry shortly")]
    Unavailable(#[source] StoreError),
    /// A bug: logged, never described.
    #[error("internal error: {0}")]
    Internal(#[source] BoxError),
}

impl ServiceError {
    /// An [`ServiceError::Invalid`] with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            message: message.into(),
            detail: None,
        }
    }

    /// An [`ServiceError::Internal`] from any error.
    pub fn internal(error: impl Into<BoxError>) -> Self {
        ServiceError::Internal(error.into())
    }
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { what } => ServiceError::NotFound(format!("{what} not found")),
            StoreError::Conflict { what } => ServiceError::Conflict(format!("conflict: {what}")),
            error @ StoreError::InvalidTransition { .. } => {
                ServiceError::Conflict(error.to_string())
            }
            error @ StoreError::Unavailable { .. } => ServiceError::Unavailable(error),
            other => ServiceError::Internal(Box::new(other)),
        }
    }
}

impl From<crate::policy::PolicyError> for ServiceError {
    fn from(error: crate::policy::PolicyError) -> Self {
        match error {
            crate::policy::PolicyError::Refused(reason) => ServiceError::Refused(reason),
            crate::policy::PolicyError::Store(error) => ServiceError::from(error),
        }
    }
}
