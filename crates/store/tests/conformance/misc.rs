//! Projects, variables, API tokens, settings, and durability across a
//! restart.

use chrono::Utc;
use tako_store::{
    DeliveryCompletion, DeliveryId, DeliveryState, DeploymentState, InterruptScope, LogCursor,
    LogLevel, LogLineRecord, LogStream, NewApiToken, NewProject, NewVariable, PageRequest,
    ProjectId, StoreError, TokenHash, VariableId, WebhookSecret,
};

use super::{LONG, StoreFactory, delivery, new_release, node, project, queue};

pub(crate) async fn projects_are_unique_by_name_and_repository(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = store
        .create_project(NewProject {
            name: "Web".into(),
            repository_url: "https://github.com/Acme/Web.git".into(),
            webhook_secret: Some(WebhookSecret("s3cret".into())),
            repository_token: None,
        })
        .await
        .unwrap();
    assert_eq!(web.name, "Web");
    assert_eq!(web.webhook_secret, Some(WebhookSecret("s3cret".into())));
    assert_eq!(store.get_project(web.id).await.unwrap(), web);
    let same_name = store
        .create_project(NewProject {
            name: "WEB".into(),
            repository_url: "https://github.com/acme/other".into(),
            webhook_secret: None,
            repository_token: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(same_name, StoreError::Conflict { .. }),
        "{same_name:?}"
    );
    let same_repo = store
        .create_project(NewProject {
            name: "other".into(),
            repository_url: "git@github.com:acme/web.git".into(),
            webhook_secret: None,
            repository_token: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(same_repo, StoreError::Conflict { .. }),
        "{same_repo:?}"
    );
    let api = project(store.as_ref(), "api").await;

    for url in [
        "https://github.com/acme/web",
        "https://github.com/acme/web.git",
        "git://github.com/acme/web.git",
    ] {
        let found = store.find_project_by_repository(url).await.unwrap();
        assert_eq!(found.map(|p| p.id), Some(web.id), "{url}");
    }
    assert!(
        store
            .find_project_by_repository("https://github.com/acme/nope")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .find_project_by_name("wEb")
            .await
            .unwrap()
            .map(|p| p.id),
        Some(web.id)
    );
    let names: Vec<String> = store
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["api", "Web"]);
    assert_eq!(api.webhook_secret, None);
    let error = store.get_project(ProjectId(999)).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub(crate) async fn variables_are_set_replaced_and_deleted(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let var = |name: &str, value: &str, envs: &[&str], sensitive: bool| NewVariable {
        project: web.id,
        name: name.into(),
        value: value.into(),
        environments: envs.iter().map(|e| (*e).to_owned()).collect(),
        roles: Vec::new(),
        sensitive,
    };
    let unscoped = store
        .set_variable(var("Url", "http://x", &[], false))
        .await
        .unwrap();
    let scoped = store
        .set_variable(var("Url", "http://prod", &["Staging", "Production"], false))
        .await
        .unwrap();
    assert_ne!(unscoped.id, scoped.id);
    assert_eq!(scoped.environments, ["Production", "Staging"]);
    let replaced = store
        .set_variable(var("url", "http://prod2", &["Production", "Staging"], true))
        .await
        .unwrap();
    assert_eq!(replaced.id, scoped.id, "same name and scope: replaced");
    assert!(replaced.sensitive);
    store
        .set_variable(var("Key", "k", &[], true))
        .await
        .unwrap();
    // Scoped to roles too: a value of its own, replaced by the same scope.
    let for_roles = |value: &str, roles: &[&str]| NewVariable {
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        ..var("Url", value, &["Production", "Staging"], false)
    };
    let web_url = store
        .set_variable(for_roles("http://web", &["web", "api"]))
        .await
        .unwrap();
    assert_ne!(web_url.id, scoped.id);
    assert_eq!(web_url.roles, ["api", "web"]);
    assert_eq!(web_url.environments, ["Production", "Staging"]);
    let web_url2 = store
        .set_variable(for_roles("http://web2", &["api", "web", "web"]))
        .await
        .unwrap();
    assert_eq!(web_url2.id, web_url.id, "same name, environments and roles");
    assert_eq!(
        store
            .list_variables(web.id)
            .await
            .unwrap()
            .iter()
            .find(|v| v.id == web_url.id)
            .map(|v| (v.value.as_str(), v.roles.clone())),
        Some(("http://web2", vec!["api".to_owned(), "web".to_owned()]))
    );
    store.delete_variable(web_url.id).await.unwrap();
    let listed = store.list_variables(web.id).await.unwrap();
    let summary: Vec<(&str, &str)> = listed
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_str()))
        .collect();
    assert_eq!(
        summary,
        [("Key", "k"), ("Url", "http://x"), ("url", "http://prod2")]
    );
    store.delete_variable(unscoped.id).await.unwrap();
    let error = store.delete_variable(unscoped.id).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    let error = store.delete_variable(VariableId(999)).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    assert_eq!(store.list_variables(web.id).await.unwrap().len(), 2);
    let error = store.list_variables(ProjectId(999)).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub(crate) async fn tokens_are_found_by_hash_touched_and_revoked(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let hash = TokenHash([7; 32]);
    let token = store
        .create_token(NewApiToken {
            name: "admin".into(),
            hash,
            role: "admin".into(),
            expires_at: None,
        })
        .await
        .unwrap();
    assert!(!token.revoked);
    assert!(token.last_used_at.is_none());
    let error = store
        .create_token(NewApiToken {
            name: "again".into(),
            hash,
            role: "admin".into(),
            expires_at: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
    let now = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    store.touch_token(token.id, now).await.unwrap();
    store.revoke_token(token.id).await.unwrap();
    let found = store.find_token_by_hash(&hash).await.unwrap().unwrap();
    assert_eq!(found.id, token.id);
    assert_eq!(found.last_used_at, Some(now));
    assert!(found.revoked);
    assert!(
        store
            .find_token_by_hash(&TokenHash([8; 32]))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_tokens().await.unwrap(), [found]);
    let error = store
        .revoke_token(tako_store::TokenId(999))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub(crate) async fn settings_and_the_first_start_marker(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    assert_eq!(store.get_setting("initialized").await.unwrap(), None);
    assert!(
        store
            .set_setting_if_absent("initialized", "1")
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_setting_if_absent("initialized", "2")
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_setting("initialized").await.unwrap().as_deref(),
        Some("1")
    );
    store.set_setting("initialized", "3").await.unwrap();
    assert_eq!(
        store.get_setting("initialized").await.unwrap().as_deref(),
        Some("3")
    );
}

pub(crate) async fn reopening_keeps_everything(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    store
        .insert_deliveries(&[delivery("pending", "web"), delivery("done", "web")])
        .await
        .unwrap();
    let outcome = store
        .complete_delivery(
            &DeliveryId("done".into()),
            DeliveryCompletion::Queue {
                release: new_release(web.id, "1.0.0"),
                environment: "Production".into(),
                approval: None,
                hold: false,
            },
        )
        .await
        .unwrap();
    let running = store
        .claim_next_deployment(&node("a"), LONG, 4)
        .await
        .unwrap()
        .unwrap();
    let queued = queue(store.as_ref(), web.id, "Production").await;
    let lines: Vec<LogLineRecord> = (0..1_500)
        .map(|n| LogLineRecord {
            timestamp: chrono::DateTime::from_timestamp_millis(n).unwrap(),
            step: None,
            stream: LogStream::Tako,
            level: LogLevel::Highlight,
            text: format!("{n}"),
        })
        .collect();
    store.append_log(running.id, &lines).await.unwrap();
    store.set_setting("initialized", "yes").await.unwrap();
    store.next_build_number(web.id).await.unwrap();
    let before = store.get_deployment(running.id).await.unwrap();
    drop(store);

    let store = factory.open().await;
    assert_eq!(store.get_project(web.id).await.unwrap(), web);
    assert_eq!(
        store
            .get_delivery(&DeliveryId("done".into()))
            .await
            .unwrap()
            .outcome,
        Some(outcome)
    );
    let pending = store
        .claim_pending_delivery(&node("b"), LONG)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pending.delivery.id.0, "pending");
    assert_eq!(pending.delivery.state, DeliveryState::Pending);
    assert_eq!(store.get_deployment(running.id).await.unwrap(), before);
    assert_eq!(
        store.get_deployment(queued.id).await.unwrap().state,
        DeploymentState::Queued
    );
    let log = store
        .read_log(running.id, LogCursor::START, 10_000)
        .await
        .unwrap();
    assert_eq!(log.lines, lines);
    assert_eq!(
        store.get_setting("initialized").await.unwrap().as_deref(),
        Some("yes")
    );
    assert_eq!(store.next_build_number(web.id).await.unwrap(), 3);
    assert_eq!(
        store
            .list_releases(web.id, PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    // Start-up recovery after the restart.
    assert_eq!(
        store
            .interrupt_running(InterruptScope::Node(node("a")))
            .await
            .unwrap(),
        [running.id]
    );
}

pub(crate) async fn totals_follow_every_change(factory: &dyn StoreFactory) {
    use std::time::Duration;
    use tako_store::{DeliveryCompletion, DeploymentState, StepRecord, StepRunState, Totals};
    let store = factory.open().await;
    assert_eq!(store.totals().await.unwrap(), Totals::default());
    let web = super::project(store.as_ref(), "web").await;
    store
        .insert_deliveries(&[super::delivery("one", "web"), super::delivery("two", "web")])
        .await
        .unwrap();
    let claimed = store
        .claim_pending_delivery(&super::node("a"), super::LONG)
        .await
        .unwrap()
        .unwrap();
    store
        .complete_delivery(
            &claimed.delivery.id,
            DeliveryCompletion::Ignored {
                project: Some(web.id),
                reason: "no mapping for branch x".to_owned(),
            },
        )
        .await
        .unwrap();
    let first = super::queue(store.as_ref(), web.id, "DevTest").await;
    let _second = super::queue(store.as_ref(), web.id, "DevTest").await;
    let running = store
        .claim_next_deployment(&super::node("a"), super::LONG, 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(running.id, first.id);
    for (index, state, ms) in [
        (0, StepRunState::Running, None),
        (0, StepRunState::Success, Some(1_500)),
        (1, StepRunState::Failed, Some(250)),
        (2, StepRunState::Skipped, None),
    ] {
        store
            .update_step(
                first.id,
                StepRecord {
                    index,
                    name: format!("step {index}"),
                    state,
                    reason: None,
                    started_at: None,
                    duration: ms.map(Duration::from_millis),
                },
            )
            .await
            .unwrap();
    }
    store
        .finish_deployment(first.id, DeploymentState::Failed, Some("step 1".to_owned()))
        .await
        .unwrap();
    let totals = store.totals().await.unwrap();
    let count = |map: &std::collections::BTreeMap<String, u64>, key: &str| {
        map.get(key).copied().unwrap_or(0)
    };
    assert_eq!(count(&totals.deliveries, "pending"), 1);
    assert_eq!(count(&totals.deliveries, "ignored"), 1);
    assert_eq!(count(&totals.deployments, "failed"), 1);
    assert_eq!(count(&totals.deployments, "queued"), 1);
    assert_eq!(count(&totals.deployments, "running"), 0);
    assert_eq!(totals.steps.get("success"), Some(&(1, 1_500)));
    assert_eq!(totals.steps.get("failed"), Some(&(1, 250)));
    assert_eq!(totals.steps.get("running").map_or(0, |s| s.0), 0);
    assert_eq!(
        totals.steps.get("skipped").map_or(0, |s| s.0),
        0,
        "no duration: not counted"
    );
    // Reopening keeps them.
    drop(store);
    let store = factory.open().await;
    assert_eq!(store.totals().await.unwrap(), totals);

    // A batch completed in one call, with different outcomes, counts each
    // row once; a claim changes no total; a replay counts as pending again.
    store
        .insert_deliveries(&[
            super::delivery("three", "web"),
            super::delivery("four", "web"),
            super::delivery("five", "web"),
        ])
        .await
        .unwrap();
    let batch = store
        .claim_pending_deliveries(&super::node("a"), super::LONG, 10)
        .await
        .unwrap();
    assert_eq!(batch.len(), 4);
    assert_eq!(
        count(&store.totals().await.unwrap().deliveries, "pending"),
        4
    );
    let outcome = |k: usize| {
        if k.is_multiple_of(2) {
            DeliveryCompletion::Ignored {
                project: Some(web.id),
                reason: "no mapping".to_owned(),
            }
        } else {
            DeliveryCompletion::Failed {
                project: Some(web.id),
                reason: "no takofile".to_owned(),
            }
        }
    };
    let completed = store
        .complete_deliveries(
            batch
                .iter()
                .enumerate()
                .map(|(k, c)| (c.delivery.id.clone(), outcome(k)))
                .collect(),
        )
        .await
        .unwrap();
    assert!(completed.iter().all(Result::is_ok), "{completed:?}");
    let after_batch = store.totals().await.unwrap();
    assert_eq!(count(&after_batch.deliveries, "pending"), 0);
    assert_eq!(count(&after_batch.deliveries, "ignored"), 3);
    assert_eq!(count(&after_batch.deliveries, "failed"), 2);
    store.replay_delivery(&batch[1].delivery.id).await.unwrap();
    let replayed = store.totals().await.unwrap();
    assert_eq!(count(&replayed.deliveries, "pending"), 1);
    assert_eq!(count(&replayed.deliveries, "ignored"), 3);
    assert_eq!(count(&replayed.deliveries, "failed"), 1);
}
