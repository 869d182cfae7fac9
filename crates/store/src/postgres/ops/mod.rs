//! The SQL of every store operation on PostgreSQL, as async functions over
//! a pooled client or a transaction, one file per section of the `Store`
//! trait (the same files as `sqlite/ops/`); the helpers they share are here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};

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

/// A pooled connection.
pub(super) type Client = deadpool_postgres::Client;
/// A transaction on a pooled connection.
pub(super) type Tx<'a> = deadpool_postgres::Transaction<'a>;
/// Statement parameters.
pub(super) type Params<'a> = [&'a (dyn ToSql + Sync)];

// ----- errors -----

/// What a driver error says, without the row values PostgreSQL may add as
/// its detail (a failing row can hold sealed secrets or hashes): the
/// SQLSTATE and the message, or the connection error.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            // The driver's own words, then each cause (a refused
            // connection, a certificate that does not verify).
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

/// Maps a driver error to [`StoreError::Unavailable`] while doing `context`.
pub(crate) fn db(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::unavailable(context, describe(&e))
}

/// Whether `e` is a uniqueness violation.
pub(super) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

// ----- statements (prepared once per connection, then cached) -----

pub(super) async fn opt<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query_opt(&statement, params).await
}

pub(super) async fn one<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &Params<'_>,
) -> Result<Row, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query_one(&statement, params).await
}

pub(super) async fn all<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query(&statement, params).await
}

pub(super) async fn exec<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &Params<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.execute(&statement, params).await
}

// ----- values -----

/// Column `index` of `row` as `T`; a type the schema does not hold is an
/// error, never a panic.
pub(super) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> StoreResult<T> {
    row.try_get(index)
        .map_err(|e| StoreError::unavailable("read a row", e))
}

/// A stored value that makes no sense (an unknown state, a time out of
/// range): the database holds something this build cannot read.
pub(super) fn corrupt(message: String) -> StoreError {
    StoreError::unavailable("read a row", message)
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

pub(super) fn from_ms(millis: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| corrupt(format!("timestamp {millis} out of range")))
}

pub(super) fn time(row: &Row, index: usize) -> StoreResult<DateTime<Utc>> {
    from_ms(get(row, index)?)
}

pub(super) fn opt_time(row: &Row, index: usize) -> StoreResult<Option<DateTime<Utc>>> {
    get::<Option<i64>>(row, index)?.map(from_ms).transpose()
}

/// A count or size kept as BIGINT.
pub(super) fn unsigned(row: &Row, index: usize) -> StoreResult<u64> {
    Ok(u64::try_from(get::<i64>(row, index)?).unwrap_or(0))
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

/// Maps every row with `f`.
pub(super) fn rows<T>(rows: Vec<Row>, f: impl Fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}
