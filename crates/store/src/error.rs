//! The store's one error type: what callers match on, never a driver error.

use std::error::Error as StdError;

/// A boxed driver or I/O error, kept as the source of
/// [`StoreError::Unavailable`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist (`deployment 12`, `project web`).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// A uniqueness rule or a claim was violated (`release 1.0.0 of project
    /// 3 already exists`).
    #[error("conflict: {what}")]
    Conflict {
        /// What clashed.
        what: String,
    },
    /// A state change that the state machine does not allow.
    #[error("{what} cannot go from {from} to {to}")]
    InvalidTransition {
        /// What was changed (`deployment 12`).
        what: String,
        /// Its current state.
        from: String,
        /// The state asked for.
        to: String,
    },
    /// The database was written by a newer Tako: it is not opened, so
    /// nothing is lost or misread.
    #[error(
        "the database schema is version {found}, newer than this tako supports ({supported}): upgrade tako"
    )]
    SchemaTooNew {
        /// The database's schema version.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// The database could not be reached, read or written (driver, I/O,
    /// corrupt data).
    #[error("store unavailable: {context}: {source}")]
    Unavailable {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// A [`StoreError::NotFound`] for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        StoreError::NotFound { what: what.into() }
    }

    /// A [`StoreError::Conflict`] about `what`.
    pub fn conflict(what: impl Into<String>) -> Self {
        StoreError::Conflict { what: what.into() }
    }

    /// A [`StoreError::Unavailable`] while doing `context`.
    pub fn unavailable(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// The store's result type.
pub type StoreResult<T> = Result<T, StoreError>;
