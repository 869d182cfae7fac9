//! Running retention now (`tako admin retention run [--dry-run]`): one
//! pass of [`crate::retention`], or its counts without removing anything.

use super::{Principal, ServiceError, ServiceResult, Services};
use crate::retention::{RetentionError, RetentionReport};

impl Services {
    /// One retention pass now (admin only); with `dry_run`, what it would
    /// remove. It waits for a pass already running to end first. The pass
    /// runs on its own task: when it outlasts the request's budget it goes
    /// on in the background (its counts are logged) and this answers
    /// `None`.
    pub async fn run_retention(
        &self,
        who: &Principal,
        dry_run: bool,
    ) -> ServiceResult<Option<RetentionReport>> {
        who.require_admin("run retention: it needs the admin role")?;
        tracing::info!(dry_run, by = %who.name, by_token = %who.token, "retention run by hand");
        let retention = self.retention.clone();
        let pass = tokio::spawn(async move { retention.pass(dry_run).await });
        match tokio::time::timeout(self.fetch_budget, pass).await {
            Ok(Ok(Ok(report))) => Ok(Some(report)),
            Ok(Ok(Err(RetentionError::Store(error)))) => Err(ServiceError::from(error)),
            Ok(Err(error)) => Err(ServiceError::internal(error)),
            Err(_) => {
                tracing::info!(dry_run, "the retention pass goes on in the background");
                Ok(None)
            }
        }
    }
}
