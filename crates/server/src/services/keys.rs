//! The master key: rotating it (every secret re-sealed in one transaction
//! while the server keeps serving).

use super::{Principal, ServiceError, ServiceResult, Services};
use crate::keys::{RotateError, Rotation};

impl Services {
    /// A new master key (admin only): every secret is re-sealed under it.
    /// The key added under `keys/` when there is one (several nodes: see
    /// `crate::keys`), else a fresh key, the old one deleted.
    pub async fn rotate_key(&self, who: &Principal) -> ServiceResult<Rotation> {
        who.require_admin("rotate the master key: it needs the admin role")?;
        let rotation =
            self.keys
                .rotate(self.store.as_ref())
                .await
                .map_err(|error| match error {
                    RotateError::Store(error) => ServiceError::from(error),
                    refused @ (RotateError::SeveralAdded { .. }
                    | RotateError::NoAddedKey { .. }) => {
                        ServiceError::Conflict(refused.to_string())
                    }
                    other => ServiceError::internal(other),
                })?;
        tracing::info!(old_key = %rotation.old_key, new_key = %rotation.new_key,
            resealed = rotation.resealed, by = %who.name, by_token = %who.token, "master key rotated");
        Ok(rotation)
    }
}
