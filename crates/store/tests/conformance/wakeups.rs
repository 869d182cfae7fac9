//! Cluster §3 on every store: the cache generation moves with every change
//! to projects, policies and tokens (and not with a build number or a
//! token's use), and the store's wake-ups tell of stored deliveries, queued
//! deployments, cancel requests and log lines (in-process on SQLite,
//! through `LISTEN/NOTIFY` on PostgreSQL).

use std::time::Duration;

use chrono::Utc;
use tako_store::{
    LogLevel, LogLineRecord, LogStream, NewApiToken, TokenHash, Wakeup, Wakeups, WebhookSecret,
};

use super::{StoreFactory, delivery, project, queue};

/// How long a wake-up may take (generous: the machine may be loaded).
const WITHIN: Duration = Duration::from_secs(10);

pub(crate) async fn the_cache_generation_moves_with_projects_policies_and_tokens(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let start = store.cache_generation().await.unwrap();
    let web = project(store.as_ref(), "web").await;
    let after_project = store.cache_generation().await.unwrap();
    assert!(after_project > start, "a new project");
    store.next_build_number(web.id).await.unwrap();
    assert_eq!(
        store.cache_generation().await.unwrap(),
        after_project,
        "a build number is no change to what nodes cache"
    );
    store
        .set_webhook_secret(web.id, Some(WebhookSecret("s3cret".to_owned())))
        .await
        .unwrap();
    let after_secret = store.cache_generation().await.unwrap();
    assert!(after_secret > after_project, "a webhook secret");
    store
        .set_environment_policy(web.id, "Production", &["main".to_owned()])
        .await
        .unwrap();
    let after_policy = store.cache_generation().await.unwrap();
    assert!(after_policy > after_secret, "a policy");
    let token = store
        .create_token(NewApiToken {
            name: "ci".to_owned(),
            hash: TokenHash([3; 32]),
            role: "admin".to_owned(),
            expires_at: None,
        })
        .await
        .unwrap();
    let after_token = store.cache_generation().await.unwrap();
    assert!(after_token > after_policy, "a token");
    store.touch_token(token.id, Utc::now()).await.unwrap();
    assert_eq!(
        store.cache_generation().await.unwrap(),
        after_token,
        "a token's use is no change"
    );
    store.revoke_token(token.id).await.unwrap();
    assert!(
        store.cache_generation().await.unwrap() > after_token,
        "a revocation"
    );
}

/// The next wake-up matching `wanted`, within [`WITHIN`]; the others are
/// skipped.
async fn expect(wakeups: &mut Wakeups, wanted: Wakeup) {
    let found = tokio::time::timeout(WITHIN, async {
        loop {
            if wakeups.next().await == wanted {
                return;
            }
        }
    })
    .await;
    assert!(found.is_ok(), "no {wanted:?} within {WITHIN:?}");
}

pub(crate) async fn wakeups_tell_of_deliveries_deployments_cancels_and_log_lines(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let mut wakeups = store.wakeups();
    // A listener may need a moment to start: store deliveries until one is
    // heard of.
    let mut heard = false;
    for i in 0..50 {
        store
            .insert_deliveries(&[delivery(&format!("probe-{i}"), "web")])
            .await
            .unwrap();
        if tokio::time::timeout(Duration::from_millis(200), async {
            while wakeups.next().await != Wakeup::Deliveries {}
        })
        .await
        .is_ok()
        {
            heard = true;
            break;
        }
    }
    assert!(heard, "stored deliveries never woke anyone");

    let deployment = queue(store.as_ref(), web.id, "Production").await;
    expect(&mut wakeups, Wakeup::Deployments).await;
    store
        .claim_next_deployment(&super::node("a"), super::LONG, 4)
        .await
        .unwrap()
        .unwrap();
    store.request_cancel(deployment.id).await.unwrap();
    expect(&mut wakeups, Wakeup::Cancel(deployment.id)).await;
    let line = LogLineRecord {
        timestamp: Utc::now(),
        step: None,
        stream: LogStream::Tako,
        level: LogLevel::Info,
        text: "hello".to_owned(),
    };
    store.append_log(deployment.id, &[line]).await.unwrap();
    expect(&mut wakeups, Wakeup::Log(deployment.id)).await;
    store
        .finish_deployment(deployment.id, tako_store::DeploymentState::Cancelled, None)
        .await
        .unwrap();
    expect(&mut wakeups, Wakeup::Deployments).await;

    // A store whose wake-ups nobody reads any more is no trouble.
    drop(wakeups);
    store
        .insert_deliveries(&[delivery("after", "web")])
        .await
        .unwrap();
}
