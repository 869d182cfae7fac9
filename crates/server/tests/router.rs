//! The router against a real SQLite store: its flood policy. While a
//! backlog waits (its last claim was a full batch) and pushes keep arriving
//! at this node's intake, it pauses before each batch, so the intake's
//! commits go first. (That a quiet intake costs the backlog no pause is a
//! matter of speed: the benchmarks' *all routed after* column shows it.)

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tako_server::intake::IntakeActivity;
use tako_server::router::Router;
use tako_store::{DeliveryId, DeliveryOutcome, Keyring, NewDelivery, NodeId, SqliteStore, Store};
use tokio::sync::Notify;

/// The router's batch (`CLAIM_BATCH`) and pause (`YIELD_TO_INTAKE`).
const BATCH: usize = 32;
const PAUSE: Duration = Duration::from_millis(100);

/// A push to a repository no project has: the router ignores it at once,
/// with no fetch.
fn push(id: String) -> NewDelivery {
    let body = serde_json::json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": "1111111111111111111111111111111111111111",
        "commits": [],
        "repository": {
            "id": 1,
            "name": "unknown",
            "full_name": "acme/unknown",
            "clone_url": "https://github.com/acme/unknown.git",
            "html_url": "https://github.com/acme/unknown",
            "default_branch": "main"
        }
    });
    NewDelivery {
        id: DeliveryId(id),
        event: "push".to_owned(),
        received_at: Utc::now(),
        body: serde_json::to_vec(&body).unwrap(),
        repository_url: Some("https://github.com/acme/unknown.git".to_owned()),
        git_ref: Some("refs/heads/main".to_owned()),
        after: Some("1111111111111111111111111111111111111111".to_owned()),
        recovered: false,
    }
}

/// When each delivery was routed, in the order they were stored, once all
/// are.
async fn routed_at(store: &dyn Store, ids: &[String]) -> Vec<DateTime<Utc>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut times = Vec::new();
        for id in ids {
            let delivery = store.get_delivery(&DeliveryId(id.clone())).await.unwrap();
            if let Some(outcome) = &delivery.outcome {
                assert!(
                    matches!(outcome, DeliveryOutcome::Ignored { .. }),
                    "{delivery:?}"
                );
                times.extend(delivery.completed_at);
            }
        }
        if times.len() == ids.len() {
            return times;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} routed",
            times.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_routed_a_batch_per_pause_while_pushes_keep_arriving() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("tako.db")).unwrap());
    let intake = IntakeActivity::default();
    // Three full batches wait before the router starts.
    let ids: Vec<String> = (0..3 * BATCH).map(|n| format!("flood-{n:03}")).collect();
    store
        .insert_deliveries(&ids.iter().cloned().map(push).collect::<Vec<_>>())
        .await
        .unwrap();
    // Pushes keep arriving: one a millisecond, from a thread of its own
    // (the router's runtime cannot delay it).
    let arriving = Arc::new(AtomicBool::new(true));
    let pusher = {
        let (intake, arriving) = (intake.clone(), Arc::clone(&arriving));
        std::thread::spawn(move || {
            while arriving.load(Ordering::Relaxed) {
                intake.record();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let deliveries_stored = Arc::new(Notify::new());
    let router = Router {
        store: Arc::clone(&store),
        mirrors: tako_git::Mirrors::new(dir.path().join("mirrors")),
        node: NodeId("node-a".to_owned()),
        lease: Duration::from_secs(600),
        deliveries_stored: Arc::clone(&deliveries_stored),
        deployments_queued: Arc::new(Notify::new()),
        auto_register_projects: false,
        keyring: Arc::new(Keyring::new(&[7; 32])),
        forwarders: tako_server::octopus::Forwarders::new(&[]).unwrap(),
        intake: intake.clone(),
    };
    let routing = tokio::spawn(router.run());

    // The first batch goes at once; each of the two behind it (the claim
    // before was full) waits for a pause. A slow machine only widens the
    // gaps. A pusher thread starved for 10 ms at the wrong moment makes the
    // router skip that pause, so one pause of the two is asked for. Without
    // the policy both gaps are a claim's commit long.
    let times = routed_at(store.as_ref(), &ids).await;
    arriving.store(false, Ordering::Relaxed);
    pusher.join().unwrap();
    routing.abort();
    let gaps: Vec<Duration> = (1..3)
        .map(|batch| {
            (times[batch * BATCH] - times[batch * BATCH - 1])
                .to_std()
                .unwrap_or_default()
        })
        .collect();
    assert!(
        gaps.iter().any(|gap| *gap >= PAUSE),
        "batches routed {gaps:?} after the one before, with pushes arriving"
    );
}
