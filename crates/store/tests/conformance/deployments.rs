//! Deployments: scheduling claims, transitions, cancel, interruption, leases,
//! steps and pagination.

use std::time::Duration;

use chrono::Utc;
use tako_store::{
    DeploymentFilter, DeploymentId, DeploymentState, InterruptScope, PageRequest, StepRecord,
    StepRunState, StoreError,
};

use super::{LONG, StoreFactory, node, project, queue};

pub(crate) async fn one_at_a_time_per_project_and_environment_in_order(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let api = project(store.as_ref(), "api").await;
    let d1 = queue(store.as_ref(), web.id, "Production").await;
    let d2 = queue(store.as_ref(), web.id, "Production").await;
    let d3 = queue(store.as_ref(), web.id, "Staging").await;
    let d4 = queue(store.as_ref(), api.id, "Production").await;
    assert_eq!(d1.state, DeploymentState::Queued);
    let n = node("a");
    let claim = || store.claim_next_deployment(&n, LONG, 10);
    let first = claim().await.unwrap().unwrap();
    assert_eq!(first.id, d1.id);
    assert_eq!(first.state, DeploymentState::Running);
    assert_eq!(first.claimed_by, Some(node("a")));
    assert!(first.started_at.is_some());
    assert_eq!(claim().await.unwrap().unwrap().id, d3.id, "d2 waits for d1");
    assert_eq!(claim().await.unwrap().unwrap().id, d4.id);
    assert!(claim().await.unwrap().is_none());
    store
        .finish_deployment(d1.id, DeploymentState::Success, None)
        .await
        .unwrap();
    assert_eq!(claim().await.unwrap().unwrap().id, d2.id);
    assert!(claim().await.unwrap().is_none());
}

pub(crate) async fn per_node_maximum_of_running_deployments(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let a = queue(store.as_ref(), web.id, "A").await;
    let b = queue(store.as_ref(), web.id, "B").await;
    let c = queue(store.as_ref(), web.id, "C").await;
    let n = node("a");
    assert_eq!(
        store
            .claim_next_deployment(&n, LONG, 2)
            .await
            .unwrap()
            .unwrap()
            .id,
        a.id
    );
    assert_eq!(
        store
            .claim_next_deployment(&n, LONG, 2)
            .await
            .unwrap()
            .unwrap()
            .id,
        b.id
    );
    assert!(
        store
            .claim_next_deployment(&n, LONG, 2)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .claim_next_deployment(&n, LONG, 0)
            .await
            .unwrap()
            .is_none()
    );
    store
        .finish_deployment(b.id, DeploymentState::Failed, Some("step 2 failed".into()))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_next_deployment(&n, LONG, 2)
            .await
            .unwrap()
            .unwrap()
            .id,
        c.id
    );

    // Concurrent claimers on two nodes never exceed each node's maximum
    // nor take one twice.
    for env in ["D", "E", "F", "G", "H", "I"] {
        queue(store.as_ref(), web.id, env).await;
    }
    store
        .finish_deployment(a.id, DeploymentState::Success, None)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let on = node(if i % 2 == 0 { "a" } else { "b" });
            store.claim_next_deployment(&on, LONG, 2).await
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        if let Some(d) = task.await.unwrap().unwrap() {
            claimed.push((d.id, d.claimed_by.unwrap()));
        }
    }
    let mut ids: Vec<_> = claimed.iter().map(|(id, _)| *id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), claimed.len(), "a deployment was claimed twice");
    let on = |name: &str| claimed.iter().filter(|(_, n)| *n == node(name)).count();
    assert_eq!(
        on("a"),
        1,
        "c runs on a, so one more reaches a's maximum of 2: {claimed:?}"
    );
    assert_eq!(on("b"), 2, "b has a maximum of its own: {claimed:?}");
}

pub(crate) async fn finish_allows_only_running_to_final(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let error = store
        .finish_deployment(d.id, DeploymentState::Success, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::InvalidTransition { from, to, .. } if from == "queued" && to == "success"),
        "{error:?}"
    );
    store
        .claim_next_deployment(&node("a"), LONG, 1)
        .await
        .unwrap()
        .unwrap();
    for state in [DeploymentState::Queued, DeploymentState::Running] {
        let error = store
            .finish_deployment(d.id, state, None)
            .await
            .unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidTransition { .. }),
            "{error:?}"
        );
    }
    let finished = store
        .finish_deployment(d.id, DeploymentState::Failed, Some("boom".into()))
        .await
        .unwrap();
    assert_eq!(finished.state, DeploymentState::Failed);
    assert_eq!(finished.error.as_deref(), Some("boom"));
    assert!(finished.finished_at.is_some());
    assert_eq!(store.get_deployment(d.id).await.unwrap(), finished);
    let error = store
        .finish_deployment(d.id, DeploymentState::Success, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, StoreError::InvalidTransition { from, .. } if from == "failed"),
        "{error:?}"
    );
    let error = store
        .finish_deployment(DeploymentId(999), DeploymentState::Success, None)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub(crate) async fn cancel_stops_queued_and_flags_running(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let running = queue(store.as_ref(), web.id, "Production").await;
    let queued = queue(store.as_ref(), web.id, "Staging").await;
    store
        .claim_next_deployment(&node("a"), LONG, 1)
        .await
        .unwrap()
        .unwrap();
    let cancelled = store.request_cancel(queued.id).await.unwrap();
    assert_eq!(cancelled.state, DeploymentState::Cancelled);
    assert!(cancelled.finished_at.is_some());
    let flagged = store.request_cancel(running.id).await.unwrap();
    assert_eq!(flagged.state, DeploymentState::Running);
    assert!(flagged.cancel_requested);
    assert!(
        store
            .request_cancel(running.id)
            .await
            .unwrap()
            .cancel_requested,
        "asking twice is fine"
    );
    store
        .finish_deployment(running.id, DeploymentState::Cancelled, None)
        .await
        .unwrap();
    assert!(
        store
            .claim_next_deployment(&node("a"), LONG, 10)
            .await
            .unwrap()
            .is_none(),
        "a cancelled deployment is never claimed"
    );
    let error = store.request_cancel(running.id).await.unwrap_err();
    assert!(
        matches!(error, StoreError::InvalidTransition { .. }),
        "{error:?}"
    );
    let error = store.request_cancel(DeploymentId(999)).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub(crate) async fn interrupt_running_by_node_and_by_expired_lease(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d1 = queue(store.as_ref(), web.id, "A").await;
    let d2 = queue(store.as_ref(), web.id, "B").await;
    let d3 = queue(store.as_ref(), web.id, "C").await;
    let d4 = queue(store.as_ref(), web.id, "D").await;
    let claim = |name: &'static str, lease: Duration| {
        let store = store.clone();
        async move {
            store
                .claim_next_deployment(&node(name), lease, 10)
                .await
                .unwrap()
                .unwrap()
        }
    };
    assert_eq!(claim("a", LONG).await.id, d1.id);
    assert_eq!(claim("b", LONG).await.id, d2.id);
    assert_eq!(claim("c", Duration::from_millis(20)).await.id, d3.id);
    store
        .update_step(
            d1.id,
            StepRecord {
                index: 0,
                name: "Deploy".into(),
                state: StepRunState::Running,
                reason: None,
                started_at: Some(Utc::now()),
                duration: None,
            },
        )
        .await
        .unwrap();

    assert_eq!(
        store
            .interrupt_running(InterruptScope::Node(node("a")))
            .await
            .unwrap(),
        [d1.id]
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        store
            .interrupt_running(InterruptScope::ExpiredLeases {
                lease: Duration::from_millis(20)
            })
            .await
            .unwrap(),
        [d3.id]
    );
    assert!(
        store
            .interrupt_running(InterruptScope::ExpiredLeases {
                lease: Duration::from_millis(20)
            })
            .await
            .unwrap()
            .is_empty()
    );
    let swept = store.get_deployment(d3.id).await.unwrap();
    assert_eq!(swept.state, DeploymentState::Interrupted);
    let error = swept.error.unwrap_or_default();
    assert!(
        error.contains("node c stopped renewing its lease; last heard of at ")
            && error.contains("the lease ran out at "),
        "the sweep names the node and when it was last heard of: {error}"
    );
    let interrupted = store.get_deployment(d1.id).await.unwrap();
    assert_eq!(interrupted.state, DeploymentState::Interrupted);
    assert!(interrupted.finished_at.is_some());
    assert!(interrupted.error.is_some());
    let steps = store.list_steps(d1.id).await.unwrap();
    assert_eq!(
        steps[0].state,
        StepRunState::Failed,
        "its running step ended"
    );
    assert_eq!(
        store.get_deployment(d2.id).await.unwrap().state,
        DeploymentState::Running
    );
    assert_eq!(
        store.get_deployment(d4.id).await.unwrap().state,
        DeploymentState::Queued
    );
    let error = store
        .finish_deployment(d1.id, DeploymentState::Success, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::InvalidTransition { .. }),
        "{error:?}"
    );
}

pub(crate) async fn leases_are_renewed_only_by_their_holder(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let claimed = store
        .claim_next_deployment(&node("a"), Duration::from_secs(1), 1)
        .await
        .unwrap()
        .unwrap();
    let first = claimed.lease_until.unwrap();
    let renewed = store
        .renew_deployment_lease(d.id, &node("a"), LONG)
        .await
        .unwrap();
    assert!(renewed > first);
    assert_eq!(
        store.get_deployment(d.id).await.unwrap().lease_until,
        Some(renewed)
    );
    let error = store
        .renew_deployment_lease(d.id, &node("b"), LONG)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
    store
        .finish_deployment(d.id, DeploymentState::Success, None)
        .await
        .unwrap();
    let error = store
        .renew_deployment_lease(d.id, &node("a"), LONG)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
    let error = store
        .renew_deployment_lease(DeploymentId(999), &node("a"), LONG)
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub(crate) async fn steps_are_recorded_and_replaced(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let started = chrono::DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
    let step = |index: u32, name: &str, state: StepRunState| StepRecord {
        index,
        name: name.into(),
        state,
        reason: None,
        started_at: None,
        duration: None,
    };
    store
        .update_step(d.id, step(1, "Notify", StepRunState::Pending))
        .await
        .unwrap();
    store
        .update_step(
            d.id,
            StepRecord {
                started_at: Some(started),
                ..step(0, "Build", StepRunState::Running)
            },
        )
        .await
        .unwrap();
    store
        .update_step(
            d.id,
            StepRecord {
                started_at: Some(started),
                duration: Some(Duration::from_millis(1500)),
                ..step(0, "Build", StepRunState::Success)
            },
        )
        .await
        .unwrap();
    store
        .update_step(
            d.id,
            StepRecord {
                reason: Some("condition: Success".into()),
                ..step(1, "Notify", StepRunState::Skipped)
            },
        )
        .await
        .unwrap();
    let steps = store.list_steps(d.id).await.unwrap();
    assert_eq!(
        steps,
        [
            StepRecord {
                started_at: Some(started),
                duration: Some(Duration::from_millis(1500)),
                ..step(0, "Build", StepRunState::Success)
            },
            StepRecord {
                reason: Some("condition: Success".into()),
                ..step(1, "Notify", StepRunState::Skipped)
            },
        ]
    );
    let error = store
        .update_step(DeploymentId(999), step(0, "x", StepRunState::Pending))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub(crate) async fn pagination_is_stable_under_inserts(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let mut ids = Vec::new();
    for _ in 0..25 {
        ids.push(queue(store.as_ref(), web.id, "Production").await.id);
    }
    let filter = DeploymentFilter::default();
    let first = store
        .list_deployments(&filter, PageRequest::first(10))
        .await
        .unwrap();
    let expected: Vec<DeploymentId> = ids.iter().rev().take(10).copied().collect();
    assert_eq!(
        first.items.iter().map(|d| d.id).collect::<Vec<_>>(),
        expected
    );
    for _ in 0..5 {
        queue(store.as_ref(), web.id, "Production").await;
    }
    let mut seen: Vec<DeploymentId> = first.items.iter().map(|d| d.id).collect();
    let mut after = first.next;
    while let Some(cursor) = after {
        let token = cursor.to_token();
        let page = store
            .list_deployments(
                &filter,
                PageRequest {
                    limit: 10,
                    after: tako_store::PageCursor::from_token(&token),
                },
            )
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|d| d.id));
        after = page.next;
    }
    let all: Vec<DeploymentId> = ids.iter().rev().copied().collect();
    assert_eq!(seen, all, "no item skipped or repeated");
    assert!(tako_store::PageCursor::from_token("garbage").is_none());
}

pub(crate) async fn deployments_are_filtered(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let api = project(store.as_ref(), "api").await;
    let w_prod = queue(store.as_ref(), web.id, "Production").await;
    let w_stag = queue(store.as_ref(), web.id, "Staging").await;
    let a_prod = queue(store.as_ref(), api.id, "Production").await;
    store
        .claim_next_deployment(&node("a"), LONG, 1)
        .await
        .unwrap()
        .unwrap();
    let list = |filter: DeploymentFilter| {
        let store = store.clone();
        async move {
            store
                .list_deployments(&filter, PageRequest::first(100))
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(DeploymentFilter {
            project: Some(web.id),
            ..Default::default()
        })
        .await,
        [w_stag.id, w_prod.id]
    );
    assert_eq!(
        list(DeploymentFilter {
            environment: Some("Production".into()),
            ..Default::default()
        })
        .await,
        [a_prod.id, w_prod.id]
    );
    assert_eq!(
        list(DeploymentFilter {
            state: Some(DeploymentState::Running),
            ..Default::default()
        })
        .await,
        [w_prod.id]
    );
    assert_eq!(
        list(DeploymentFilter {
            project: Some(api.id),
            environment: Some("Production".into()),
            state: Some(DeploymentState::Queued),
        })
        .await,
        [a_prod.id]
    );
}

pub(crate) async fn latest_deployments_per_project_and_environment(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    assert!(store.latest_deployments(None).await.unwrap().is_empty());
    let web = project(store.as_ref(), "web").await;
    let api = project(store.as_ref(), "api").await;
    let _old = queue(store.as_ref(), web.id, "Production").await;
    let web_prod = queue(store.as_ref(), web.id, "Production").await;
    let web_test = queue(store.as_ref(), web.id, "DevTest").await;
    let api_prod = queue(store.as_ref(), api.id, "Production").await;
    let ids = |list: Vec<tako_store::Deployment>| list.iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.latest_deployments(None).await.unwrap()),
        [web_test.id, web_prod.id, api_prod.id],
        "by project (in creation order) then environment"
    );
    assert_eq!(
        ids(store.latest_deployments(Some(web.id)).await.unwrap()),
        [web_test.id, web_prod.id]
    );
    // Redeploying an old release makes it the latest of its environment.
    let again = store
        .create_deployment(tako_store::NewDeployment {
            release: web_test.release,
            environment: "Production".to_owned(),
            approval: None,
            created_by: None,
            retry_of: None,
            hold: false,
        })
        .await
        .unwrap();
    assert_eq!(
        ids(store.latest_deployments(Some(web.id)).await.unwrap()),
        [web_test.id, again.id]
    );
    // The cell shows the deployment's current state.
    store.request_cancel(again.id).await.unwrap();
    let cells = store.latest_deployments(Some(web.id)).await.unwrap();
    assert_eq!(cells[1].state, DeploymentState::Cancelled);
}

pub(crate) async fn release_deployments_are_the_latest_per_environment(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let first = queue(store.as_ref(), web.id, "DevTest").await;
    let second = queue(store.as_ref(), web.id, "DevTest").await;
    let promote = |release, environment: &str| {
        store.create_deployment(tako_store::NewDeployment {
            release,
            environment: environment.to_owned(),
            approval: None,
            created_by: None,
            retry_of: None,
            hold: false,
        })
    };
    let first_prod = promote(first.release, "Production").await.unwrap();
    let first_prod_again = promote(first.release, "Production").await.unwrap();
    let found = store
        .release_deployments(&[second.release, first.release])
        .await
        .unwrap();
    let ids: Vec<_> = found.iter().map(|d| d.id).collect();
    assert_eq!(ids, [first.id, first_prod_again.id, second.id]);
    assert_ne!(first_prod.id, first_prod_again.id);
    assert!(store.release_deployments(&[]).await.unwrap().is_empty());
}

pub(crate) async fn an_ended_step_stays_ended(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let step = |state: StepRunState| StepRecord {
        index: 0,
        name: "Build".into(),
        state,
        reason: None,
        started_at: None,
        duration: None,
    };
    for state in [
        StepRunState::Pending,
        StepRunState::Running,
        StepRunState::Running,
        StepRunState::Success,
        StepRunState::Success,
    ] {
        store.update_step(d.id, step(state)).await.unwrap();
    }
    for late in [
        StepRunState::Running,
        StepRunState::Pending,
        StepRunState::Failed,
    ] {
        let error = store.update_step(d.id, step(late)).await.unwrap_err();
        assert!(
            matches!(error, StoreError::InvalidTransition { .. }),
            "{late}: {error:?}"
        );
    }
    assert_eq!(
        store.list_steps(d.id).await.unwrap()[0].state,
        StepRunState::Success
    );
}
