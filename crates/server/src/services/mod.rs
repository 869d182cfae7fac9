//! The service layer: what people and pushes do, once, for every front end.
//!
//! Each function takes domain inputs and, where a person acts, the typed
//! [`Principal`] who asks; it checks the caller's role and the rules
//! (names, environment policies), changes the store, wakes whoever must act
//! (the router, the scheduler), keeps the intake's webhook secrets in step,
//! and logs who did what. It answers with one typed [`ServiceError`].
//!
//! Nothing here knows HTTP: the JSON API (`crate::api`) and the web UI
//! (`crate::web`) extract a request, call one function and map its answer
//! and its error, each in one place. `crates/tako/tests/tidy.rs` checks that
//! no module here names `axum` or imports the HTTP layer.

mod access;
pub(crate) mod agent_jobs;
pub(crate) mod agents;
mod approvals;
mod deliveries;
mod deployments;
mod error;
mod freezes;
mod interventions;
mod keys;
pub(crate) mod logs;
mod names;
mod policies;
pub(crate) mod projects;
mod releases;
mod retention;
mod tokens;
mod variables;

use std::sync::Arc;
use std::time::Duration;

use tako_store::{PageCursor, PageRequest, Store};
use tokio::sync::Notify;

pub use access::{Principal, Role};
pub use agents::{AgentAction, AgentStatus, EnrollInput, EnrollmentInput};
pub use error::ServiceError;
pub use freezes::{FreezeField, FreezeInput, FreezeRefusal, HeldDeployment};
pub use interventions::OpenIntervention;
pub use names::check_name;
pub use releases::{NewReleaseInput, PlanInput, frozen_steps};
pub use tokens::NewTokenInput;
pub use variables::VariableInput;

use crate::intake::WebhookSecrets;
use crate::keys::MasterKeys;

/// What a service's result is.
pub type ServiceResult<T> = Result<T, ServiceError>;

/// Everything the services need: one per server, cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// Everything Tako keeps.
    pub store: Arc<dyn Store>,
    /// The git mirrors (releases made by hand read them).
    pub mirrors: tako_git::Mirrors,
    /// The master key and its rotation.
    pub keys: Arc<MasterKeys>,
    /// The intake's project webhook secrets, kept in step with the store.
    pub secrets: WebhookSecrets,
    /// Notified when a deployment is queued (or a queued one cancelled), to
    /// wake the scheduler.
    pub deployments_queued: Arc<Notify>,
    /// Notified when a delivery becomes pending (a replay), to wake the
    /// router.
    pub deliveries_stored: Arc<Notify>,
    /// Notified (all waiters) when a job is created for an agent, to wake
    /// the agents' long polls at once.
    pub jobs_created: Arc<Notify>,
    /// How long a release made by hand may wait for its repository's fetch
    /// before answering "still fetching, retry".
    pub fetch_budget: Duration,
    /// Retention: the background passes' worker, run by hand by admins.
    pub retention: crate::retention::Retention,
    /// Commit statuses: the end of a paused deployment that a person aborts
    /// or cancels is reported here (the scheduler reports the rest).
    pub statuses: crate::statuses::StatusReporter,
}

/// A page's size when the request names none.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;
/// The largest page.
pub const MAX_PAGE_LIMIT: u32 = 200;

/// A page request from a client's `limit` and `cursor` (the `next_cursor`
/// of a previous page).
pub fn page_request(limit: Option<u32>, cursor: Option<&str>) -> ServiceResult<PageRequest> {
    let limit = limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if limit == 0 || limit > MAX_PAGE_LIMIT {
        return Err(ServiceError::BadInput(format!(
            "limit must be between 1 and {MAX_PAGE_LIMIT}"
        )));
    }
    let after = match cursor {
        None | Some("") => None,
        Some(token) => Some(PageCursor::from_token(token).ok_or_else(|| {
            ServiceError::BadInput(
                "invalid cursor: pass the next_cursor of a previous page".to_owned(),
            )
        })?),
    };
    Ok(PageRequest { limit, after })
}

/// A deployment's whole task log as text (what `tako logs` prints), for
/// tests and tools.
pub async fn logs_text(store: &dyn Store, deployment: tako_store::DeploymentId) -> String {
    logs::read_all(store, deployment).await.unwrap_or_default()
}
