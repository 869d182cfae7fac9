//! Retention: what each rule removes, in batches, and what it never
//! removes (a dashboard cell's release and deployment, a release awaiting
//! approval or queued or running, a delivery not yet routed, the pushes the
//! missed-push sweep compares heads with).

use chrono::{TimeDelta, Utc};
use tako_store::{
    ApprovalRule, DeliveryCompletion, DeliveryId, Deployment, DeploymentState, LogCursor, LogLevel,
    LogLineRecord, LogStream, NewAuditEntry, NewDeployment, PageRequest, ProjectId, Prune, Store,
    StoreError,
};

use super::{LONG, StoreFactory, delivery, new_release, node, project};

fn lines(text: &str) -> Vec<LogLineRecord> {
    (0..3)
        .map(|n| LogLineRecord {
            timestamp: Utc::now(),
            step: None,
            stream: LogStream::Stdout,
            level: LogLevel::Info,
            text: format!("{text} {n}"),
        })
        .collect()
}

/// A new release of `project` deployed to `environment`: waiting for an
/// approval, queued, or run to `end` (with a task log).
async fn deploy(
    store: &dyn Store,
    project: ProjectId,
    number: &str,
    environment: &str,
    end: Option<DeploymentState>,
    approval: bool,
) -> Deployment {
    let release = store
        .create_release(new_release(project, number))
        .await
        .unwrap();
    let queued = store
        .create_deployment(NewDeployment {
            release: release.id,
            environment: environment.to_owned(),
            approval: approval.then(|| ApprovalRule {
                roles: vec!["admin".into()],
                count: 1,
                not_by: None,
                deadline: Utc::now() + TimeDelta::hours(1),
            }),
            created_by: None,
            retry_of: None,
            hold: false,
        })
        .await
        .unwrap();
    match end {
        None => queued,
        Some(end) => run(store, queued, end).await,
    }
}

/// Claims `queued` (the only queued deployment), logs and ends it.
async fn run(store: &dyn Store, queued: Deployment, end: DeploymentState) -> Deployment {
    let claimed = store
        .claim_next_deployment(&node("n1"), LONG, 10)
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(claimed.id, queued.id);
    store
        .append_log(claimed.id, &lines(&format!("log of {}", claimed.id)))
        .await
        .unwrap();
    if end == DeploymentState::Running {
        return claimed;
    }
    store
        .finish_deployment(claimed.id, end, None)
        .await
        .unwrap()
}

pub(crate) async fn releases_beyond_the_newest_go_but_cells_and_waiting_ones_stay(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let s = store.as_ref();
    let web = project(s, "web").await;
    let other = project(s, "api").await;
    let ok = Some(DeploymentState::Success);
    // r1 is Production's cell; r2..r5 went to DevTest only, r5 its cell.
    let r1 = deploy(s, web.id, "1", "Production", ok, false).await;
    let r2 = deploy(s, web.id, "2", "DevTest", ok, false).await;
    let r3 = deploy(
        s,
        web.id,
        "3",
        "DevTest",
        Some(DeploymentState::Failed),
        false,
    )
    .await;
    let r4 = deploy(s, web.id, "4", "DevTest", ok, false).await;
    let r5 = deploy(s, web.id, "5", "DevTest", ok, false).await;
    // Another project's old releases are not this project's to remove.
    let foreign = deploy(s, other.id, "1", "DevTest", ok, false).await;
    deploy(s, other.id, "2", "DevTest", ok, false).await;
    deploy(s, other.id, "3", "DevTest", ok, false).await;
    // One release waits for an approval in Staging; the newest is queued.
    let waiting = deploy(s, web.id, "6", "Staging", None, true).await;
    assert_eq!(waiting.state, DeploymentState::AwaitingApproval);
    let queued = deploy(s, web.id, "7", "Test", None, false).await;

    let rule = Prune::Releases {
        project: web.id,
        keep: 2,
    };
    // Kept: 6 and 7 (the newest), 4 and 5 (DevTest's newest), 1 (a cell).
    assert_eq!(s.prune(rule.clone(), 10, true).await.unwrap(), 2);
    assert_eq!(s.prune(rule.clone(), 1, false).await.unwrap(), 1);
    assert_eq!(s.prune(rule.clone(), 10, false).await.unwrap(), 1);
    assert_eq!(s.prune(rule.clone(), 10, false).await.unwrap(), 0);
    assert_eq!(s.prune(rule, 10, true).await.unwrap(), 0);

    for gone in [&r2, &r3] {
        assert!(matches!(
            s.get_release(gone.release).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.get_deployment(gone.id).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.read_log(gone.id, LogCursor::START, 10).await,
            Err(StoreError::NotFound { .. })
        ));
    }
    for kept in [&r1, &r4, &r5, &waiting, &queued, &foreign] {
        s.get_release(kept.release).await.unwrap();
        let deployment = s.get_deployment(kept.id).await.unwrap();
        assert_eq!(deployment.state, kept.state);
    }
    assert_eq!(
        s.read_log(r1.id, LogCursor::START, 10)
            .await
            .unwrap()
            .lines
            .len(),
        3
    );
    let cells: Vec<_> = s
        .latest_deployments(Some(web.id))
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    for cell in [r1.id, r5.id, waiting.id, queued.id] {
        assert!(cells.contains(&cell), "{cell} is still a dashboard cell");
    }

    // Once they end and newer releases follow, they may go too; a running
    // deployment keeps its release meanwhile.
    let running = run(s, queued.clone(), DeploymentState::Running).await;
    let rule = Prune::Releases {
        project: web.id,
        keep: 1,
    };
    s.prune(rule.clone(), 10, false).await.unwrap();
    s.get_release(running.release).await.unwrap();
    s.get_release(waiting.release).await.unwrap();
    s.get_release(r1.release).await.unwrap();
    s.get_release(r5.release).await.unwrap();
    assert!(s.get_release(r4.release).await.is_err());
    assert!(matches!(
        s.prune(
            Prune::Releases {
                project: ProjectId(9_999),
                keep: 1
            },
            10,
            false
        )
        .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub(crate) async fn old_task_logs_go_but_cells_and_unfinished_ones_keep_theirs(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let s = store.as_ref();
    let web = project(s, "web").await;
    let ok = Some(DeploymentState::Success);
    let old = deploy(s, web.id, "1", "DevTest", ok, false).await;
    let cell = deploy(s, web.id, "2", "DevTest", ok, false).await;
    let queued = deploy(s, web.id, "3", "Production", None, false).await;
    let running = run(s, queued, DeploymentState::Running).await;

    let rule = Prune::TaskLogs {
        project: web.id,
        finished_before: Utc::now() + TimeDelta::minutes(1),
    };
    assert_eq!(s.prune(rule.clone(), 10, true).await.unwrap(), 1);
    assert_eq!(s.prune(rule.clone(), 10, false).await.unwrap(), 1);
    assert_eq!(s.prune(rule, 10, false).await.unwrap(), 0);
    let log = |id| async move { s.read_log(id, LogCursor::START, 10).await.unwrap().lines };
    assert!(log(old.id).await.is_empty());
    assert_eq!(log(cell.id).await.len(), 3);
    assert_eq!(log(running.id).await.len(), 3);
    // The deployment itself stays.
    assert_eq!(
        s.get_deployment(old.id).await.unwrap().state,
        DeploymentState::Success
    );
    // Nothing finished before an earlier time.
    let earlier = Prune::TaskLogs {
        project: web.id,
        finished_before: Utc::now() - TimeDelta::hours(1),
    };
    assert_eq!(s.prune(earlier, 10, true).await.unwrap(), 0);
}

pub(crate) async fn old_routed_deliveries_go_but_pending_ones_and_ref_heads_stay(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let s = store.as_ref();
    let web = project(s, "web").await;
    let long_ago = Utc::now() - TimeDelta::days(10);
    let push = |id: &str, after: &str, old: bool| {
        let mut d = delivery(id, "web");
        d.after = Some(after.to_owned());
        if old {
            d.received_at = long_ago;
        }
        d
    };
    let mut ping = delivery("ping", "nowhere");
    ping.event = "ping".into();
    ping.git_ref = None;
    ping.received_at = long_ago;
    s.insert_deliveries(&[
        push("a", "aaa", true),
        push("b", "bbb", true),
        push("c", "ccc", true),
        push("p", "ppp", true),
        ping,
        push("q", "qqq", false),
    ])
    .await
    .unwrap();
    for (id, number) in [("a", "1"), ("b", "2")] {
        s.complete_delivery(
            &DeliveryId(id.into()),
            DeliveryCompletion::Queue {
                release: new_release(web.id, number),
                environment: "Production".into(),
                approval: None,
                hold: false,
            },
        )
        .await
        .unwrap();
    }
    for (id, project) in [("c", Some(web.id)), ("ping", None), ("q", Some(web.id))] {
        s.complete_delivery(
            &DeliveryId(id.into()),
            DeliveryCompletion::Ignored {
                project,
                reason: "nothing to do".into(),
            },
        )
        .await
        .unwrap();
    }

    let before = Utc::now() - TimeDelta::days(1);
    let of_web = Prune::Deliveries {
        project: Some(web.id),
        received_before: before,
    };
    // a (an older push that queued) and c (ignored, q is newer) go; b is
    // the ref's newest that queued, p is not routed yet, q is recent.
    assert_eq!(s.prune(of_web.clone(), 10, true).await.unwrap(), 2);
    assert_eq!(s.prune(of_web.clone(), 10, false).await.unwrap(), 2);
    assert_eq!(s.prune(of_web, 10, false).await.unwrap(), 0);
    let of_none = Prune::Deliveries {
        project: None,
        received_before: before,
    };
    assert_eq!(s.prune(of_none.clone(), 10, false).await.unwrap(), 1);
    assert_eq!(s.prune(of_none, 10, false).await.unwrap(), 0);
    for gone in ["a", "c", "ping"] {
        assert!(s.get_delivery(&DeliveryId(gone.into())).await.is_err());
    }
    for kept in ["b", "p", "q"] {
        s.get_delivery(&DeliveryId(kept.into())).await.unwrap();
    }
    assert_eq!(
        s.last_processed_head(web.id, "refs/heads/main")
            .await
            .unwrap()
            .as_deref(),
        Some("bbb")
    );

    // A release goes with the deliveries that made it: 1 (whose delivery
    // went already), not 2 (Production's cell, b's).
    let rule = Prune::Releases {
        project: web.id,
        keep: 1,
    };
    s.insert_deliveries(&[push("r", "rrr", false)])
        .await
        .unwrap();
    let outcome = s
        .complete_delivery(
            &DeliveryId("r".into()),
            DeliveryCompletion::Queue {
                release: new_release(web.id, "3"),
                environment: "Staging".into(),
                approval: None,
                hold: false,
            },
        )
        .await
        .unwrap();
    let tako_store::DeliveryOutcome::Queued { deployment, .. } = outcome else {
        panic!("not queued: {outcome:?}");
    };
    // The deployments of 1, 2 and 3 end.
    for _ in 0..3 {
        let claimed = s
            .claim_next_deployment(&node("n1"), LONG, 1)
            .await
            .unwrap()
            .unwrap();
        s.finish_deployment(claimed.id, DeploymentState::Success, None)
            .await
            .unwrap();
    }
    let third = s.get_deployment(deployment).await.unwrap();
    assert_eq!(third.state, DeploymentState::Success);
    assert_eq!(s.prune(rule, 10, false).await.unwrap(), 1);
    s.get_delivery(&DeliveryId("b".into())).await.unwrap();
}

pub(crate) async fn old_audit_entries_go(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let s = store.as_ref();
    for n in 0..3 {
        s.append_audit(NewAuditEntry {
            actor: "admin".into(),
            action: format!("action {n}"),
            target: "project web".into(),
            source: None,
            outcome: "ok".into(),
            detail: None,
        })
        .await
        .unwrap();
    }
    let page = PageRequest {
        after: None,
        limit: 10,
    };
    let none_yet = Prune::AuditLog {
        before: Utc::now() - TimeDelta::days(1),
    };
    assert_eq!(s.prune(none_yet, 10, false).await.unwrap(), 0);
    let all = Prune::AuditLog {
        before: Utc::now() + TimeDelta::minutes(1),
    };
    assert_eq!(s.prune(all.clone(), 10, true).await.unwrap(), 3);
    assert_eq!(s.prune(all.clone(), 2, false).await.unwrap(), 2);
    assert_eq!(s.list_audit(page).await.unwrap().items.len(), 1);
    assert_eq!(s.prune(all, 2, false).await.unwrap(), 1);
    assert!(s.list_audit(page).await.unwrap().items.is_empty());
    // Appending goes on.
    s.append_audit(NewAuditEntry {
        actor: "admin".into(),
        action: "after".into(),
        target: "project web".into(),
        source: None,
        outcome: "ok".into(),
        detail: None,
    })
    .await
    .unwrap();
    assert_eq!(s.list_audit(page).await.unwrap().items.len(), 1);
    // Space is given back where the store does it itself (0 elsewhere).
    s.reclaim_space(100).await.unwrap();
}
