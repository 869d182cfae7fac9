//! Deployment freezes and held deployments.

use chrono::{TimeZone, Utc};
use tako_core::freeze::{FreezeWindow, WeeklyRule};
use tako_store::{
    ApprovalRule, DeploymentId, DeploymentState, NewDeployment, NewFreeze, ProjectId, StoreError,
};

use super::{StoreFactory, new_release, project};

/// Freezes are created (one-off and weekly), listed and deleted; a
/// freeze of an unknown project is refused.
pub(crate) async fn freezes_are_created_listed_and_deleted(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let once = FreezeWindow::Once {
        from: Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap(),
        to: Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
    };
    let weekly = FreezeWindow::Weekly(WeeklyRule::parse("sat,sun 00:00-24:00").unwrap());
    let first = store
        .create_freeze(NewFreeze {
            environment: "Production".into(),
            project: None,
            window: once.clone(),
            reason: "Black Friday".into(),
            created_by: "alice".into(),
        })
        .await
        .unwrap();
    let second = store
        .create_freeze(NewFreeze {
            environment: "Production".into(),
            project: Some(web.id),
            window: weekly.clone(),
            reason: "weekends".into(),
            created_by: "bob".into(),
        })
        .await
        .unwrap();
    let listed = store.list_freezes().await.unwrap();
    assert_eq!(listed, vec![first.clone(), second.clone()]);
    assert_eq!(listed[0].window, once);
    assert_eq!(listed[1].window, weekly);
    assert_eq!(listed[1].project, Some(web.id));
    assert_eq!(listed[0].reason, "Black Friday");
    let error = store
        .create_freeze(NewFreeze {
            environment: "Production".into(),
            project: Some(ProjectId(999)),
            window: once,
            reason: "x".into(),
            created_by: "alice".into(),
        })
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    store.delete_freeze(first.id).await.unwrap();
    assert_eq!(store.list_freezes().await.unwrap(), vec![second]);
    let error = store.delete_freeze(first.id).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

/// A deployment made to hold starts `Held`, is never claimed, and is
/// released to `Queued` (or to its approvals) once; a cancel ends it.
pub(crate) async fn held_deployments_wait_until_released(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let release = store
        .create_release(new_release(web.id, "1.0.0"))
        .await
        .unwrap();
    let make = |approval: Option<ApprovalRule>| NewDeployment {
        release: release.id,
        environment: "Production".into(),
        approval,
        created_by: Some("pusher".into()),
        retry_of: None,
        hold: true,
    };
    let held = store.create_deployment(make(None)).await.unwrap();
    assert_eq!(held.state, DeploymentState::Held);
    let node = super::node("a");
    assert!(
        store
            .claim_next_deployment(&node, std::time::Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_none()
    );
    let released = store.release_held(held.id).await.unwrap();
    assert_eq!(released.state, DeploymentState::Queued);
    let error = store.release_held(held.id).await.unwrap_err();
    assert!(
        matches!(error, StoreError::InvalidTransition { .. }),
        "{error:?}"
    );

    let rule = ApprovalRule {
        roles: vec!["admin".into()],
        count: 1,
        not_by: None,
        deadline: Utc::now() + chrono::Duration::hours(1),
    };
    let waiting = store.create_deployment(make(Some(rule))).await.unwrap();
    assert_eq!(waiting.state, DeploymentState::Held);
    assert_eq!(
        store.release_held(waiting.id).await.unwrap().state,
        DeploymentState::AwaitingApproval
    );

    let cancelled = store.create_deployment(make(None)).await.unwrap();
    assert_eq!(
        store.request_cancel(cancelled.id).await.unwrap().state,
        DeploymentState::Cancelled
    );
    let error = store.release_held(DeploymentId(9999)).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}
