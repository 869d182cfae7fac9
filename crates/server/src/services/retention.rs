//! Running retention now (`tako admin retention run [--dry-run]`): one
//! pass of [`crate::retention`], or its counts without removing anything.

use super::{Principal, ServiceError, ServiceResult, Services};
use crate::retention::{RetentionError, RetentionReport};

impl Services {
    /// One retention pass now (admin only); with `dry_run`, what it would
    /// remove. Waits for a pass already running to end first.
    pub async fn run_retention(
        &self,
        who: &Principal,
        dry_run: bool,
    ) -> ServiceResult<RetentionReport> {
        who.require_admin("run retention: it needs the admin role")?;
        tracing::info!(dry_run, by = %who.name, by_token = %who.token, "retention run by hand");
        self.retention
            .pass(dry_run)
            .await
            .map_err(|error| match error {
                RetentionError::Store(error) => ServiceError::from(error),
            })
    }
}
