//! Deliveries: listing them with what became of them (a forwarded one with
//! its Octopus record), and replaying a processed one (its stored body is
//! routed again).

use tako_store::{
    Delivery, DeliveryId, DeliveryOutcome, DeploymentKind, Page, PageRequest, ProjectId, StoreError,
};

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

    /// One delivery with its forward record (as in [`Self::list_deliveries`]);
    /// `NotFound` names the id.
    pub async fn delivery(&self, id: &str) -> ServiceResult<(Delivery, Option<String>)> {
        let delivery = self.store.get_delivery(&DeliveryId(id.to_owned())).await?;
        let forward = self.forward_of(&delivery).await?;
        Ok((delivery, forward))
    }

    /// The forward record of the deployment a delivery queued, when that
    /// deployment was forwarded to Octopus.
    async fn forward_of(&self, delivery: &Delivery) -> ServiceResult<Option<String>> {
        match &delivery.outcome {
            Some(DeliveryOutcome::Queued { deployment, .. }) => {
                match self.store.get_deployment(*deployment).await {
                    Ok(d) if d.kind == DeploymentKind::Octopus => Ok(d.forward),
                    Ok(_) | Err(StoreError::NotFound { .. }) => Ok(None),
                    Err(other) => Err(other.into()),
                }
            }
            _ => Ok(None),
        }
    }

    /// A page of deliveries, newest first, each with the forward record of
    /// the deployment it queued when that deployment was forwarded to
    /// Octopus (octopus-forward.md §6: "every forwarded delivery carries a
    /// `forward` object").
    pub async fn list_deliveries(
        &self,
        project: Option<ProjectId>,
        page: PageRequest,
    ) -> ServiceResult<Page<(Delivery, Option<String>)>> {
        let deliveries = self.store.list_deliveries(project, page).await?;
        let mut items = Vec::with_capacity(deliveries.items.len());
        for delivery in deliveries.items {
            let forward = self.forward_of(&delivery).await?;
            items.push((delivery, forward));
        }
        Ok(Page {
            items,
            next: deliveries.next,
        })
    }
}
