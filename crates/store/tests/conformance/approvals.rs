//! Approvals: a deployment created with an approval rule waits
//! (`AwaitingApproval`) and is never claimed; the approval that makes the
//! count queues it, a rejection or the deadline cancels it with the reason;
//! one decision per person; everything decided is listed.

use chrono::{TimeDelta, Utc};
use tako_store::{ApprovalRule, DeploymentState, NewApproval, NewDeployment, Store, StoreError};

use super::{LONG, StoreFactory, new_release, node, project};

fn rule(count: u32, deadline_in: TimeDelta) -> ApprovalRule {
    ApprovalRule {
        roles: vec!["admin".into(), "deployer".into()],
        count,
        not_by: Some("pusher".into()),
        deadline: Utc::now() + deadline_in,
    }
}

fn decision(by: &str, approve: bool, note: &str) -> NewApproval {
    NewApproval {
        by: by.into(),
        role: "admin".into(),
        approve,
        note: note.into(),
    }
}

async fn awaiting(
    store: &dyn Store,
    number: &str,
    approval: ApprovalRule,
) -> tako_store::Deployment {
    let web = match store.find_project_by_name("web").await.unwrap() {
        Some(web) => web,
        None => project(store, "web").await,
    };
    let release = store
        .create_release(new_release(web.id, number))
        .await
        .unwrap();
    store
        .create_deployment(NewDeployment {
            release: release.id,
            environment: "Production".into(),
            approval: Some(approval),
            created_by: Some("alice".into()),
            retry_of: None,
            hold: false,
        })
        .await
        .unwrap()
}

pub(crate) async fn approvals_queue_a_waiting_deployment_once_counted(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let waiting = awaiting(store.as_ref(), "1.0.0", rule(2, TimeDelta::hours(1))).await;
    assert_eq!(waiting.state, DeploymentState::AwaitingApproval);
    assert_eq!(waiting.created_by.as_deref(), Some("alice"));
    let kept = waiting.approval.clone().unwrap();
    assert_eq!(kept.roles, ["admin", "deployer"]);
    assert_eq!((kept.count, kept.not_by.as_deref()), (2, Some("pusher")));
    // Never claimed while it waits.
    assert!(
        store
            .claim_next_deployment(&node("a"), LONG, 10)
            .await
            .unwrap()
            .is_none()
    );

    let once = store
        .record_approval(waiting.id, decision("bob", true, "looks good"))
        .await
        .unwrap();
    assert_eq!(once.state, DeploymentState::AwaitingApproval, "1 of 2");
    let again = store
        .record_approval(waiting.id, decision("BOB", true, ""))
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict { .. }), "{again:?}");
    let queued = store
        .record_approval(waiting.id, decision("carol", true, ""))
        .await
        .unwrap();
    assert_eq!(queued.state, DeploymentState::Queued);
    let approvals = store.list_approvals(waiting.id).await.unwrap();
    let names: Vec<(&str, bool, &str)> = approvals
        .iter()
        .map(|a| (a.by.as_str(), a.approve, a.note.as_str()))
        .collect();
    assert_eq!(names, [("bob", true, "looks good"), ("carol", true, "")]);
    assert!(
        approvals
            .iter()
            .all(|a| a.deployment == waiting.id && a.role == "admin")
    );
    let late = store
        .record_approval(waiting.id, decision("dave", true, ""))
        .await
        .unwrap_err();
    assert!(
        matches!(late, StoreError::InvalidTransition { .. }),
        "{late:?}"
    );
    let claimed = store
        .claim_next_deployment(&node("a"), LONG, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, waiting.id);
}

pub(crate) async fn a_rejection_or_the_deadline_cancels_with_the_reason(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let rejected = awaiting(store.as_ref(), "1.0.0", rule(1, TimeDelta::hours(1))).await;
    let cancelled = store
        .record_approval(rejected.id, decision("bob", false, "not on a Friday"))
        .await
        .unwrap();
    assert_eq!(cancelled.state, DeploymentState::Cancelled);
    assert_eq!(
        cancelled.error.as_deref(),
        Some("rejected by bob: not on a Friday")
    );
    assert!(cancelled.finished_at.is_some());

    let late = awaiting(store.as_ref(), "1.0.1", rule(1, TimeDelta::seconds(-1))).await;
    let future = awaiting(store.as_ref(), "1.0.2", rule(1, TimeDelta::hours(1))).await;
    let expired = store.expire_approvals(Utc::now()).await.unwrap();
    assert_eq!(expired.iter().map(|d| d.id).collect::<Vec<_>>(), [late.id]);
    assert_eq!(expired[0].state, DeploymentState::Cancelled);
    let error = expired[0].error.clone().unwrap();
    assert!(
        error.starts_with("approval timed out: not approved by 20"),
        "{error}"
    );
    assert!(store.expire_approvals(Utc::now()).await.unwrap().is_empty());
    assert_eq!(
        store.get_deployment(future.id).await.unwrap().state,
        DeploymentState::AwaitingApproval
    );
    // A waiting deployment can be cancelled like a queued one.
    let stopped = store.request_cancel(future.id).await.unwrap();
    assert_eq!(stopped.state, DeploymentState::Cancelled);
}
