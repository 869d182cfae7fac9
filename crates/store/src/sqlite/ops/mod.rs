//! The SQL of every store operation, as plain functions over a connection
//! (run on the writer or a reader thread by `SqliteStore`), one file per
//! section of the `Store` trait; the helpers they share are here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::Type;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, Transaction, params};

use crate::error::{StoreError, StoreResult};
use crate::log_codec;
use crate::model::{
    ApiToken, Approval, ApprovalRule, AuditEntry, AuditId, ClaimedDelivery, Delivery,
    DeliveryCompletion, DeliveryId, DeliveryOutcome, DeliveryState, Deployment, DeploymentEvent,
    DeploymentFilter, DeploymentId, DeploymentKind, DeploymentState, EnvironmentPolicy,
    ForgeStatus, InsertOutcome, InterruptScope, Intervention, InterventionAction,
    InterventionAnswer, InterventionAnswered, InterventionKind, InvalidTransition, LogCursor,
    LogPage, NewApiToken, NewApproval, NewAuditEntry, NewDelivery, NewDeployment, NewIntervention,
    NewProject, NewRelease, NewVariable, NodeId, Page, PageCursor, PageRequest, Project, ProjectId,
    Release, ReleaseId, RepositoryToken, RetryOf, StatusToken, StepRecord, StepRunState, TokenHash,
    TokenId, Variable, VariableId, WebhookSecret, normalize_repository_url,
};

mod audit;
mod deliveries;
mod deployments;
mod freezes;
mod interventions;
mod log;
mod policies;
mod projects;
mod releases;
mod retention;
mod settings;
mod tokens;
mod totals;
mod variables;

pub(super) use audit::*;
pub(super) use deliveries::*;
pub(super) use deployments::*;
pub(super) use freezes::*;
pub(super) use interventions::*;
pub(super) use log::*;
pub(super) use policies::*;
pub(super) use projects::*;
pub(super) use releases::*;
pub(super) use retention::*;
pub(super) use settings::*;
pub(super) use tokens::*;
pub(super) use totals::*;
pub(super) use variables::*;

// ----- helpers -----

/// Maps a driver error to [`StoreError::Unavailable`] while doing `context`.
pub(super) fn db(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::unavailable(context, e)
}

/// Whether `e` is a uniqueness violation.
pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation
        && (f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY))
}

pub(super) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn lease_until(now: i64, lease: Duration) -> i64 {
    now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

pub(super) fn conversion(index: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, Type::Text, message.into())
}

pub(super) fn time(row: &Row<'_>, index: usize) -> rusqlite::Result<DateTime<Utc>> {
    let millis: i64 = row.get(index)?;
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| conversion(index, format!("timestamp {millis} out of range")))
}

pub(super) fn opt_time(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(index)? {
        None => Ok(None),
        Some(millis) => DateTime::from_timestamp_millis(millis)
            .map(Some)
            .ok_or_else(|| conversion(index, format!("timestamp {millis} out of range"))),
    }
}

/// `'a', 'b'`: the states of a compare-and-set's `IN (…)` (they are the
/// core's constant names, never input).
pub(super) fn state_list<T: Copy>(states: &[T], name: impl Fn(T) -> &'static str) -> String {
    states
        .iter()
        .map(|state| format!("'{}'", name(*state)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The store's error for a transition the core refuses.
pub(super) fn refused(what: String, error: InvalidTransition) -> StoreError {
    StoreError::InvalidTransition {
        what,
        from: error.from.to_owned(),
        to: error.to.to_owned(),
    }
}

pub(super) fn limit_plus_one(page: PageRequest) -> i64 {
    i64::from(page.limit.max(1)) + 1
}

/// Cuts a `limit + 1` read to a page and its next cursor.
pub(super) fn paginate<T>(
    mut items: Vec<T>,
    page: PageRequest,
    key: impl Fn(&T) -> i64,
) -> Page<T> {
    let limit = page.limit.max(1) as usize;
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(|item| PageCursor(key(item)));
        Page { items, next }
    } else {
        Page { items, next: None }
    }
}
