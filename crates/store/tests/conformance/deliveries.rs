//! Deliveries: duplicate ids, batched inserts, claims with leases, atomic
//! and idempotent completion.

use std::time::Duration;

use tako_store::{
    DeliveryCompletion, DeliveryId, DeliveryOutcome, DeliveryState, DeploymentFilter,
    InsertOutcome, NewDelivery, PageRequest, StoreError,
};

use super::{LONG, StoreFactory, delivery, new_release, node, project};

pub(crate) async fn duplicate_delivery_ids(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let first = store
        .insert_deliveries(&[delivery("d-1", "web")])
        .await
        .unwrap();
    assert_eq!(first, [InsertOutcome::Inserted]);
    let mut again = delivery("d-1", "web");
    again.body = b"another body".to_vec();
    let second = store.insert_deliveries(&[again]).await.unwrap();
    assert_eq!(second, [InsertOutcome::Duplicate]);
    let claimed = store
        .claim_pending_delivery(&node("a"), LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        claimed.body,
        Ok(delivery("d-1", "web").body),
        "the first body is kept"
    );
    assert_eq!(
        claimed.previous_claim, None,
        "a first claim takes over nothing"
    );
    assert!(
        store
            .claim_pending_delivery(&node("a"), LONG)
            .await
            .unwrap()
            .is_none()
    );
}

pub(crate) async fn batch_insert_reports_each_duplicate(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    store
        .insert_deliveries(&[delivery("b", "web")])
        .await
        .unwrap();
    let outcomes = store
        .insert_deliveries(&[
            delivery("a", "web"),
            delivery("b", "web"),
            delivery("a", "web"),
            delivery("c", "web"),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            InsertOutcome::Inserted,
            InsertOutcome::Duplicate,
            InsertOutcome::Duplicate,
            InsertOutcome::Inserted
        ]
    );
    let all = store
        .list_deliveries(None, PageRequest::first(100))
        .await
        .unwrap();
    let ids: Vec<&str> = all.items.iter().map(|d| d.id.0.as_str()).collect();
    assert_eq!(ids, ["c", "a", "b"]);
    assert!(store.insert_deliveries(&[]).await.unwrap().is_empty());
}

pub(crate) async fn claims_skip_unexpired_leases(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    store
        .insert_deliveries(&[delivery("one", "web"), delivery("two", "web")])
        .await
        .unwrap();
    let first = store
        .claim_pending_delivery(&node("a"), LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.delivery.id.0, "one", "oldest first");
    assert_eq!(first.delivery.claimed_by, Some(node("a")));
    assert!(first.delivery.lease_until.is_some());
    assert_eq!(first.delivery.state, DeliveryState::Pending);
    let second = store
        .claim_pending_delivery(&node("b"), LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.delivery.id.0, "two");
    assert!(
        store
            .claim_pending_delivery(&node("c"), LONG)
            .await
            .unwrap()
            .is_none()
    );
}

pub(crate) async fn expired_claims_are_taken_again(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    store
        .insert_deliveries(&[delivery("one", "web")])
        .await
        .unwrap();
    store
        .claim_pending_delivery(&node("a"), Duration::from_millis(20))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let again = store
        .claim_pending_delivery(&node("b"), LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.delivery.id.0, "one");
    assert_eq!(again.delivery.claimed_by, Some(node("b")));
    // The claim took over node a's: it says whose.
    assert_eq!(again.previous_claim, Some(node("a")));
    assert_eq!(again.body, Ok(delivery("one", "web").body));
    assert_eq!(again.delivery.event, "push");
    assert_eq!(again.delivery.git_ref.as_deref(), Some("refs/heads/main"));
}

pub(crate) async fn a_restarted_node_takes_its_own_claims_again(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    store
        .insert_deliveries(&[delivery("one", "web"), delivery("two", "web")])
        .await
        .unwrap();
    store
        .claim_pending_delivery(&node("a"), LONG)
        .await
        .unwrap()
        .unwrap();
    store
        .claim_pending_delivery(&node("b"), LONG)
        .await
        .unwrap()
        .unwrap();
    drop(store);
    let store = factory.open().await;
    assert_eq!(store.release_delivery_claims(&node("a")).await.unwrap(), 1);
    let again = store
        .claim_pending_delivery(&node("a"), LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.delivery.id.0, "one");
    // A released claim is no takeover.
    assert_eq!(again.previous_claim, None);
    assert!(
        store
            .claim_pending_delivery(&node("a"), LONG)
            .await
            .unwrap()
            .is_none(),
        "node b's unexpired claim stays b's"
    );
}

pub(crate) async fn a_delivery_can_deploy_an_existing_release(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let api = project(store.as_ref(), "api").await;
    let release = store
        .create_release(new_release(web.id, "1.0.0"))
        .await
        .unwrap();
    store
        .insert_deliveries(&[delivery("d1", "web"), delivery("d2", "web")])
        .await
        .unwrap();
    let outcome = store
        .complete_delivery(
            &tako_store::DeliveryId("d1".to_owned()),
            DeliveryCompletion::Deploy {
                project: web.id,
                release: release.id,
                environment: "Production".to_owned(),
                approval: None,
                created_by: None,
                hold: false,
            },
        )
        .await
        .unwrap();
    let DeliveryOutcome::Queued {
        release: deployed,
        deployment,
    } = outcome
    else {
        panic!("not queued: {outcome:?}");
    };
    assert_eq!(deployed, release.id);
    let deployment = store.get_deployment(deployment).await.unwrap();
    assert_eq!(deployment.release, release.id);
    assert_eq!(deployment.environment, "Production");

    // A release of another project is refused and nothing is recorded.
    let error = store
        .complete_delivery(
            &tako_store::DeliveryId("d2".to_owned()),
            DeliveryCompletion::Deploy {
                project: api.id,
                release: release.id,
                environment: "Production".to_owned(),
                approval: None,
                created_by: None,
                hold: false,
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, tako_store::StoreError::Conflict { .. }),
        "{error}"
    );
    let d2 = store
        .get_delivery(&tako_store::DeliveryId("d2".to_owned()))
        .await
        .unwrap();
    assert_eq!(d2.outcome, None);
}

pub(crate) async fn complete_delivery_is_atomic_and_idempotent(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    store
        .insert_deliveries(&[delivery("d", "web")])
        .await
        .unwrap();
    let claimed = store
        .claim_pending_delivery(&node("a"), LONG)
        .await
        .unwrap()
        .unwrap();
    let completion = DeliveryCompletion::Queue {
        release: new_release(web.id, "1.0.0"),
        environment: "Production".to_owned(),
        approval: None,
        hold: false,
    };
    let outcome = store
        .complete_delivery(&claimed.delivery.id, completion.clone())
        .await
        .unwrap();
    let DeliveryOutcome::Queued {
        release,
        deployment,
    } = outcome.clone()
    else {
        panic!("expected a queued outcome, got {outcome:?}");
    };
    let stored = store.get_deployment(deployment).await.unwrap();
    assert_eq!(stored.release, release);
    assert_eq!(stored.project, web.id);
    assert_eq!(stored.environment, "Production");
    assert_eq!(store.get_release(release).await.unwrap().number, "1.0.0");

    // A second node that also processed it (its lease expired) changes nothing.
    let again = store
        .complete_delivery(&claimed.delivery.id, completion)
        .await
        .unwrap();
    assert_eq!(again, outcome);
    let other = store
        .complete_delivery(
            &claimed.delivery.id,
            DeliveryCompletion::Ignored {
                project: None,
                reason: "late".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(other, outcome);
    let releases = store
        .list_releases(web.id, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(releases.items.len(), 1);
    let deployments = store
        .list_deployments(&DeploymentFilter::default(), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(deployments.items.len(), 1);

    let done = store.get_delivery(&claimed.delivery.id).await.unwrap();
    assert_eq!(done.state, DeliveryState::Done);
    assert_eq!(done.outcome, Some(outcome));
    assert_eq!(done.project, Some(web.id));
    assert!(done.completed_at.is_some());
    assert!(
        store
            .claim_pending_delivery(&node("b"), Duration::ZERO)
            .await
            .unwrap()
            .is_none(),
        "a done delivery is never claimed again"
    );
}

pub(crate) async fn failed_completion_changes_nothing(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    store
        .create_release(new_release(web.id, "1.0.0"))
        .await
        .unwrap();
    store
        .insert_deliveries(&[delivery("d", "web")])
        .await
        .unwrap();
    let id = DeliveryId("d".into());
    let error = store
        .complete_delivery(
            &id,
            DeliveryCompletion::Queue {
                release: new_release(web.id, "1.0.0"),
                environment: "Production".into(),
                approval: None,
                hold: false,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
    assert_eq!(
        store.get_delivery(&id).await.unwrap().state,
        DeliveryState::Pending
    );
    assert!(
        store
            .list_deployments(&DeploymentFilter::default(), PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let outcome = store
        .complete_delivery(
            &id,
            DeliveryCompletion::Failed {
                project: Some(web.id),
                reason: "release 1.0.0 already exists".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        outcome,
        DeliveryOutcome::Failed {
            reason: "release 1.0.0 already exists".into()
        }
    );
    let done = store.get_delivery(&id).await.unwrap();
    assert_eq!(done.outcome, Some(outcome));
}

pub(crate) async fn completing_an_unknown_delivery_is_not_found(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let error = store
        .complete_delivery(
            &DeliveryId("nope".into()),
            DeliveryCompletion::Duplicate { project: None },
        )
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    let error = store
        .get_delivery(&DeliveryId("nope".into()))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub(crate) async fn deliveries_are_listed_by_project_newest_first(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let api = project(store.as_ref(), "api").await;
    let mut batch = Vec::new();
    for i in 0..7 {
        batch.push(delivery(&format!("web-{i}"), "web"));
        batch.push(delivery(&format!("api-{i}"), "API"));
    }
    store.insert_deliveries(&batch).await.unwrap();
    // Ignored with a project, though its repository matches no project.
    store
        .insert_deliveries(&[delivery("other", "elsewhere")])
        .await
        .unwrap();
    store
        .complete_delivery(
            &DeliveryId("other".into()),
            DeliveryCompletion::Ignored {
                project: Some(web.id),
                reason: "no mapping for branch feature/x".into(),
            },
        )
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let result = store.list_deliveries(Some(web.id), page).await.unwrap();
        seen.extend(result.items.into_iter().map(|d| d.id.0));
        match result.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "other", "web-6", "web-5", "web-4", "web-3", "web-2", "web-1", "web-0"
        ]
    );
    let api_deliveries = store
        .list_deliveries(Some(api.id), PageRequest::first(100))
        .await
        .unwrap();
    assert_eq!(
        api_deliveries.items.len(),
        7,
        "repository matched without case"
    );
    assert!(api_deliveries.next.is_none());
    let error = store
        .list_deliveries(Some(tako_store::ProjectId(999)), PageRequest::first(1))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub(crate) async fn a_processed_delivery_can_be_replayed(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    store
        .insert_deliveries(&[delivery("one", "web")])
        .await
        .unwrap();
    let id = tako_store::DeliveryId("one".to_owned());
    let pending = store.replay_delivery(&id).await.unwrap_err();
    assert!(
        matches!(pending, StoreError::InvalidTransition { .. }),
        "a pending delivery is not replayed: {pending:?}"
    );
    let claimed = store
        .claim_pending_delivery(&node("a"), LONG)
        .await
        .unwrap()
        .unwrap();
    store
        .complete_delivery(
            &claimed.delivery.id,
            DeliveryCompletion::Ignored {
                project: Some(web.id),
                reason: "ignored: no mapping for branch main".to_owned(),
            },
        )
        .await
        .unwrap();
    let replayed = store.replay_delivery(&id).await.unwrap();
    assert_eq!(replayed.state, DeliveryState::Pending);
    assert_eq!(replayed.outcome, None);
    assert_eq!(replayed.claimed_by, None);
    let again = store
        .claim_pending_delivery(&node("b"), LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.delivery.id, id, "the router takes it again");
    assert_eq!(
        again.body,
        Ok(b"{\"delivery\":\"one\"}".to_vec()),
        "with its stored body"
    );
    let missing = store
        .replay_delivery(&tako_store::DeliveryId("nope".to_owned()))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
}

/// A push to `git_ref` of `github.com/acme/<repo>` moving it to `after`.
fn push_to(id: &str, repo: &str, git_ref: &str, after: &str, recovered: bool) -> NewDelivery {
    let mut new = delivery(id, repo);
    new.git_ref = Some(git_ref.to_owned());
    new.after = Some(after.to_owned());
    new.recovered = recovered;
    new
}

pub(crate) async fn a_refs_pushes_are_found_by_head_and_its_last_processed_one(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let api = project(store.as_ref(), "api").await;
    let main = "refs/heads/main";
    store
        .insert_deliveries(&[
            push_to("d-a", "web", main, "aaaa", false),
            push_to("d-b", "web", main, "bbbb", true),
            push_to("d-c", "web", "refs/heads/develop", "cccc", false),
            push_to("d-other", "api", main, "dddd", false),
        ])
        .await
        .unwrap();
    assert_eq!(store.last_processed_head(web.id, main).await.unwrap(), None);

    // Seen: any state, newest first, of this repository and ref only.
    let seen = store
        .find_push_delivery(web.id, main, "bbbb")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.id, DeliveryId("d-b".into()));
    assert_eq!(seen.after.as_deref(), Some("bbbb"));
    assert!(seen.recovered);
    assert_eq!(seen.state, DeliveryState::Pending);
    let real = store.get_delivery(&DeliveryId("d-a".into())).await.unwrap();
    assert!(!real.recovered);
    for (git_ref, after) in [(main, "cccc"), (main, "dddd"), ("refs/heads/x", "aaaa")] {
        assert_eq!(
            store
                .find_push_delivery(web.id, git_ref, after)
                .await
                .unwrap(),
            None,
            "{git_ref} {after}"
        );
    }
    assert!(
        store
            .find_push_delivery(api.id, main, "dddd")
            .await
            .unwrap()
            .is_some()
    );

    // Processed: only a push that queued something counts.
    store
        .complete_delivery(
            &DeliveryId("d-a".into()),
            DeliveryCompletion::Queue {
                release: new_release(web.id, "1.0.0"),
                environment: "Production".to_owned(),
                approval: None,
                hold: false,
            },
        )
        .await
        .unwrap();
    store
        .complete_delivery(
            &DeliveryId("d-b".into()),
            DeliveryCompletion::Failed {
                project: Some(web.id),
                reason: "fetch failed".to_owned(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .last_processed_head(web.id, main)
            .await
            .unwrap()
            .as_deref(),
        Some("aaaa")
    );
    assert_eq!(
        store
            .last_processed_head(web.id, "refs/heads/develop")
            .await
            .unwrap(),
        None
    );
    // A newer processed push of the ref wins.
    store
        .insert_deliveries(&[push_to("d-e", "web", main, "eeee", true)])
        .await
        .unwrap();
    store
        .complete_delivery(
            &DeliveryId("d-e".into()),
            DeliveryCompletion::Queue {
                release: new_release(web.id, "1.0.1"),
                environment: "Production".to_owned(),
                approval: None,
                hold: false,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .last_processed_head(web.id, main)
            .await
            .unwrap()
            .as_deref(),
        Some("eeee")
    );
    assert_eq!(store.last_processed_head(api.id, main).await.unwrap(), None);

    let unknown = tako_store::ProjectId(9_999);
    assert!(matches!(
        store.last_processed_head(unknown, main).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.find_push_delivery(unknown, main, "aaaa").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub(crate) async fn a_batch_claim_takes_the_oldest_up_to_its_limit(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let batch: Vec<_> = (0..5).map(|i| delivery(&format!("d{i}"), "web")).collect();
    store.insert_deliveries(&batch).await.unwrap();
    let ids = |claimed: &[tako_store::ClaimedDelivery]| -> Vec<String> {
        claimed.iter().map(|c| c.delivery.id.0.clone()).collect()
    };
    let first = store
        .claim_pending_deliveries(&node("a"), LONG, 3)
        .await
        .unwrap();
    assert_eq!(ids(&first), ["d0", "d1", "d2"], "the oldest, in order");
    assert!(
        first
            .iter()
            .all(|c| c.delivery.claimed_by == Some(node("a")) && c.delivery.lease_until.is_some())
    );
    assert!(
        first
            .iter()
            .all(|c| c.body.as_ref().is_ok_and(|body| !body.is_empty())),
        "with their bodies"
    );
    let rest = store
        .claim_pending_deliveries(&node("b"), LONG, 10)
        .await
        .unwrap();
    assert_eq!(ids(&rest), ["d3", "d4"], "what the first claim left");
    assert!(
        store
            .claim_pending_deliveries(&node("c"), LONG, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A limit of 0 still claims one: a router never asks for nothing.
    store
        .insert_deliveries(&[delivery("d5", "web")])
        .await
        .unwrap();
    let one = store
        .claim_pending_deliveries(&node("c"), LONG, 0)
        .await
        .unwrap();
    assert_eq!(ids(&one), ["d5"]);
}

pub(crate) async fn a_batch_completion_rolls_back_only_what_fails(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let api = project(store.as_ref(), "api").await;
    let existing = store
        .create_release(new_release(web.id, "1.0.0"))
        .await
        .unwrap();
    let batch: Vec<_> = ["ok-1", "wrong-project", "ok-2"]
        .iter()
        .map(|id| delivery(id, "web"))
        .collect();
    store.insert_deliveries(&batch).await.unwrap();
    let results = store
        .complete_deliveries(vec![
            (
                DeliveryId("ok-1".into()),
                DeliveryCompletion::Queue {
                    release: new_release(web.id, "2.0.0"),
                    environment: "Production".into(),
                    approval: None,
                    hold: false,
                },
            ),
            // Fails after its deployment is written: web's release is not
            // api's. That deployment must not survive.
            (
                DeliveryId("wrong-project".into()),
                DeliveryCompletion::Deploy {
                    project: api.id,
                    release: existing.id,
                    environment: "Staging".into(),
                    approval: None,
                    created_by: Some("octocat".into()),
                    hold: false,
                },
            ),
            (
                DeliveryId("unknown".into()),
                DeliveryCompletion::Duplicate { project: None },
            ),
            (
                DeliveryId("ok-2".into()),
                DeliveryCompletion::Ignored {
                    project: None,
                    reason: "a tag".into(),
                },
            ),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 4, "one answer per completion");
    let queued = match &results[0] {
        Ok(DeliveryOutcome::Queued { deployment, .. }) => *deployment,
        other => panic!("the first is queued: {other:?}"),
    };
    assert!(
        matches!(results[1], Err(StoreError::Conflict { .. })),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(results[2], Err(StoreError::NotFound { .. })),
        "{:?}",
        results[2]
    );
    assert_eq!(
        results[3].as_ref().unwrap(),
        &DeliveryOutcome::Ignored {
            reason: "a tag".into()
        }
    );
    let deployments = store
        .list_deployments(&DeploymentFilter::default(), PageRequest::first(10))
        .await
        .unwrap()
        .items;
    assert_eq!(
        deployments.iter().map(|d| d.id).collect::<Vec<_>>(),
        [queued],
        "only the committed completion's deployment exists"
    );
    let state = |id: &str| {
        let store = std::sync::Arc::clone(&store);
        let id = DeliveryId(id.into());
        async move { store.get_delivery(&id).await.unwrap() }
    };
    assert_eq!(state("ok-1").await.state, DeliveryState::Done);
    assert_eq!(state("ok-2").await.state, DeliveryState::Done);
    let failed = state("wrong-project").await;
    assert_eq!(failed.state, DeliveryState::Pending, "left to route again");
    assert_eq!(failed.outcome, None);
    // Completing again changes nothing and answers the recorded outcomes.
    let again = store
        .complete_deliveries(vec![(
            DeliveryId("ok-2".into()),
            DeliveryCompletion::Duplicate { project: None },
        )])
        .await
        .unwrap();
    assert_eq!(
        again[0].as_ref().unwrap(),
        &DeliveryOutcome::Ignored {
            reason: "a tag".into()
        }
    );
}

/// Push-sized bodies (which SQLite compresses) and short ones (which it
/// keeps as they came) are claimed back byte for byte.
pub(crate) async fn bodies_of_every_size_are_claimed_back_as_they_came(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let commit = r#"{"id":"0123456789abcdef0123456789abcdef01234567","message":"Change"},"#;
    let bodies: Vec<Vec<u8>> = [0, 1, 40, 100, 1_000]
        .iter()
        .map(|&commits| commit.repeat(commits).into_bytes())
        .collect();
    let deliveries: Vec<NewDelivery> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| {
            let mut d = delivery(&format!("size-{n}"), "web");
            d.body = body.clone();
            d
        })
        .collect();
    store.insert_deliveries(&deliveries).await.unwrap();
    let claimed = store
        .claim_pending_deliveries(&node("a"), LONG, 10)
        .await
        .unwrap();
    let read: Vec<_> = claimed.into_iter().map(|c| c.body).collect();
    let expected: Vec<_> = bodies.into_iter().map(Ok).collect();
    assert_eq!(read, expected);
}
