//! Deliveries: replaying a processed one (its stored body is routed again).

use tako_store::{Delivery, DeliveryId, StoreError};

use super::{Principal, ServiceError, ServiceResult, Services};

impl Services {
    /// Makes a processed delivery pending again so the router processes its
    /// stored body once more (admin only); [`ServiceError::Conflict`] while
    /// it is still pending.
    pub async fn replay_delivery(&self, who: &Principal, id: &str) -> ServiceResult<Delivery> {
        who.require_admin("replay deliveries: it needs the admin role")?;
        let delivery = match self.store.replay_delivery(&DeliveryId(id.to_owned())).await {
            Err(StoreError::InvalidTransition { .. }) => {
                return Err(ServiceError::Conflict(format!(
                    "delivery {id} has not been processed yet: wait for its outcome, then replay it"
                )));
            }
            other => other?,
        };
        self.deliveries_stored.notify_one();
        tracing::info!(delivery = %id, by = %who.name, token = %who.token, "delivery replayed");
        Ok(delivery)
    }
}
