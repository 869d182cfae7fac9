//! Set-up shared by this crate's integration tests (each test file that
//! needs it declares `mod support;`).

use tako_store::{DeliveryId, NewDelivery};

/// Deliveries of one GitHub push body under `ids`, as the intake stores
/// them: for writing straight into a store while no server runs.
pub(crate) fn push_deliveries(ids: &[&str], body: &[u8]) -> Vec<NewDelivery> {
    let Ok(tako_github::Event::Push(push)) =
        tako_github::parse_event("push", Some("application/json"), body)
    else {
        panic!("not a push");
    };
    ids.iter()
        .map(|id| NewDelivery {
            id: DeliveryId((*id).to_owned()),
            event: "push".to_owned(),
            received_at: chrono::Utc::now(),
            body: body.to_vec(),
            repository_url: Some(push.repository.clone_url.clone()),
            git_ref: Some(push.git_ref.clone()),
            after: Some(push.after.clone()),
            recovered: false,
        })
        .collect()
}
