//! What only concurrency shows: two stores on the same database (two
//! "nodes") claiming deliveries and deployments at once, several workers
//! each. No delivery or deployment is taken twice, no two deployments of
//! one project and environment run at once, each environment's queue is
//! taken in order, and nothing is left behind.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tako_store::{DeliveryCompletion, DeploymentState, Store};

use super::{LONG, StoreFactory, delivery, node, project, queue};

/// Workers per node.
const WORKERS: usize = 4;

pub(crate) async fn two_nodes_claim_deliveries_at_once(factory: &dyn StoreFactory) {
    let a = factory.open().await;
    let b = factory.open().await;
    let batch: Vec<_> = (0..300)
        .map(|i| delivery(&format!("d-{i:03}"), "web"))
        .collect();
    for chunk in batch.chunks(50) {
        a.insert_deliveries(chunk).await.unwrap();
    }
    let claimed = Arc::new(Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    for (name, store) in [("a", &a), ("b", &b)] {
        for worker in 0..WORKERS {
            let store: Arc<dyn Store> = Arc::clone(store);
            let claimed = Arc::clone(&claimed);
            let me = node(&format!("{name}{worker}"));
            // Half the workers claim one at a time, half in batches of 7
            // completed together, as a router does.
            let limit = if worker % 2 == 0 { 1 } else { 7 };
            workers.push(tokio::spawn(async move {
                loop {
                    let work = store
                        .claim_pending_deliveries(&me, LONG, limit)
                        .await
                        .unwrap();
                    if work.is_empty() {
                        break;
                    }
                    assert!(work.len() <= limit, "at most the limit");
                    let completions = work
                        .iter()
                        .map(|work| {
                            claimed.lock().unwrap().push(work.delivery.id.0.clone());
                            let completion = DeliveryCompletion::Ignored {
                                project: None,
                                reason: format!("handled by {me}"),
                            };
                            (work.delivery.id.clone(), completion)
                        })
                        .collect();
                    for outcome in store.complete_deliveries(completions).await.unwrap() {
                        outcome.unwrap();
                    }
                }
            }));
        }
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let claimed = claimed.lock().unwrap().clone();
    let unique: HashSet<&String> = claimed.iter().collect();
    assert_eq!(unique.len(), claimed.len(), "a delivery was claimed twice");
    assert_eq!(claimed.len(), 300, "every delivery was claimed once");
    assert!(
        b.claim_pending_delivery(&node("late"), LONG)
            .await
            .unwrap()
            .is_none()
    );
}

pub(crate) async fn two_nodes_claim_deployments_at_once(factory: &dyn StoreFactory) {
    let a = factory.open().await;
    let b = factory.open().await;
    let web = project(a.as_ref(), "web").await;
    let api = project(a.as_ref(), "api").await;
    let mut queued = BTreeMap::<(i64, String), Vec<i64>>::new();
    for i in 0..120 {
        let (project, environment) = match i % 4 {
            0 => (web.id, "Production"),
            1 => (web.id, "Staging"),
            2 => (api.id, "Production"),
            _ => (api.id, "production"),
        };
        let deployment = queue(a.as_ref(), project, environment).await;
        queued
            .entry((project.0, environment.to_owned()))
            .or_default()
            .push(deployment.id.0);
    }
    // What each environment runs now, and the order they were taken in.
    let running = Arc::new(Mutex::new(HashSet::<(i64, String)>::new()));
    let taken = Arc::new(Mutex::new(BTreeMap::<(i64, String), Vec<i64>>::new()));
    let mut workers = Vec::new();
    for (name, store) in [("a", &a), ("b", &b)] {
        for worker in 0..WORKERS {
            let store: Arc<dyn Store> = Arc::clone(store);
            let running = Arc::clone(&running);
            let taken = Arc::clone(&taken);
            let me = node(&format!("{name}{worker}"));
            workers.push(tokio::spawn(async move {
                let mut idle = 0;
                while idle < 20 {
                    let Some(deployment) =
                        store.claim_next_deployment(&me, LONG, 100).await.unwrap()
                    else {
                        idle += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    };
                    idle = 0;
                    let key = (deployment.project.0, deployment.environment.clone());
                    assert!(
                        running.lock().unwrap().insert(key.clone()),
                        "two deployments of {key:?} run at once"
                    );
                    taken
                        .lock()
                        .unwrap()
                        .entry(key.clone())
                        .or_default()
                        .push(deployment.id.0);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    running.lock().unwrap().remove(&key);
                    store
                        .finish_deployment(deployment.id, DeploymentState::Success, None)
                        .await
                        .unwrap();
                }
            }));
        }
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let taken = taken.lock().unwrap().clone();
    assert_eq!(
        taken, queued,
        "every deployment ran once, each environment's in queue order"
    );
    let page = a
        .list_deployments(
            &tako_store::DeploymentFilter {
                state: Some(DeploymentState::Queued),
                ..Default::default()
            },
            tako_store::PageRequest {
                limit: 10,
                after: None,
            },
        )
        .await
        .unwrap();
    assert!(page.items.is_empty(), "nothing is left queued");
}
