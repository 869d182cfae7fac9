//! Tako's storage (layer 1): the [`Store`] trait, the one interface the server
//! uses for everything it keeps, [`SqliteStore`], its embedded
//! implementation, and [`PostgresStore`], the one several server nodes
//! share; each with its own versioned migrations (the same numbers).
//!
//! The trait is driver-neutral: ids are plain integers (or GitHub's delivery
//! id), times are `DateTime<Utc>`, work is claimed with a lease
//! (`claimed_by`, `lease_until`) through single-statement
//! `UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING …` claims that map to
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL, and every failure is a
//! [`StoreError`] (not found, conflict, invalid transition, unavailable), so
//! nothing above this crate sees a driver error. The conformance suite in
//! `tests/conformance` is written once against `&dyn Store` and runs
//! against both.

pub mod agents;
mod body_codec;
mod error;
pub mod frozen;
pub mod jobs;
mod log_codec;
pub mod model;
mod postgres;
pub mod seal;
mod sealing;
mod sqlite;
mod store;
pub mod transfer;
pub mod wakeups;

pub use agents::*;
pub use error::{BoxError, StoreError, StoreResult};
pub use frozen::FrozenVariables;
pub use jobs::*;
pub use model::*;
pub use postgres::{PostgresOptions, PostgresStore, latest_postgres_version, redact_url};
pub use seal::{Keyring, SealError};
pub use sqlite::{SqliteExport, SqliteStore};
pub use store::Store;
pub use wakeups::{Wakeup, Wakeups};
