//! Encryption at rest through the trait: secrets read back as written, and a
//! rotation keeps every one of them usable under the new key only.

use std::sync::Arc;

use tako_store::{
    ForgeStatus, Keyring, NewProject, NewVariable, RepositoryToken, StatusToken, Store, StoreError,
    WebhookSecret,
};

use super::{StoreFactory, new_release};

/// A canary with newlines and JSON-special characters.
pub(crate) const CANARY: &str = "canary-\"s3cr3t\"\n{\\line two}\t<&>";

async fn seed(store: &dyn Store) -> tako_store::Project {
    let project = store
        .create_project(NewProject {
            name: "vault".to_owned(),
            repository_url: "https://github.com/acme/vault".to_owned(),
            webhook_secret: Some(WebhookSecret(format!("hook-{CANARY}"))),
            repository_token: Some(RepositoryToken(format!("token-{CANARY}"))),
        })
        .await
        .unwrap();
    let project = store
        .set_forge_status(
            project.id,
            Some(ForgeStatus {
                token: StatusToken(format!("status-{CANARY}")),
                forge: Some("github".to_owned()),
                api_url: Some("https://ghe.example.com/api/v3".to_owned()),
                deployments: true,
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        project.forge_status.as_ref().map(|s| s.token.0.clone()),
        Some(format!("status-{CANARY}"))
    );
    store
        .set_variable(NewVariable {
            project: project.id,
            name: "ApiKey".to_owned(),
            value: CANARY.to_owned(),
            environments: vec!["Production".to_owned()],
            roles: Vec::new(),
            sensitive: true,
        })
        .await
        .unwrap();
    store
        .set_variable(NewVariable {
            project: project.id,
            name: "Plain".to_owned(),
            value: "visible".to_owned(),
            environments: Vec::new(),
            roles: Vec::new(),
            sensitive: false,
        })
        .await
        .unwrap();
    project
}

async fn check(store: &dyn Store) {
    let project = store.find_project_by_name("vault").await.unwrap().unwrap();
    assert_eq!(
        project.webhook_secret,
        Some(WebhookSecret(format!("hook-{CANARY}")))
    );
    assert_eq!(
        project.repository_token,
        Some(RepositoryToken(format!("token-{CANARY}")))
    );
    assert_eq!(
        project.forge_status,
        Some(ForgeStatus {
            token: StatusToken(format!("status-{CANARY}")),
            forge: Some("github".to_owned()),
            api_url: Some("https://ghe.example.com/api/v3".to_owned()),
            deployments: true,
        })
    );
    let variables = store.list_variables(project.id).await.unwrap();
    let values: Vec<&str> = variables.iter().map(|v| v.value.as_str()).collect();
    assert_eq!(values, vec![CANARY, "visible"]);
}

/// Secrets round-trip through the store, before and after a reopen.
pub(crate) async fn secrets_read_back_as_written(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let project = seed(store.as_ref()).await;
    assert_eq!(
        store.get_project(project.id).await.unwrap().webhook_secret,
        Some(WebhookSecret(format!("hook-{CANARY}")))
    );
    check(store.as_ref()).await;
    drop(store);
    check(factory.open().await.as_ref()).await;

    // A project's webhook secret is replaced, then removed.
    let store = factory.open().await;
    let changed = store
        .set_webhook_secret(project.id, Some(WebhookSecret("rotated-hook".to_owned())))
        .await
        .unwrap();
    assert_eq!(changed.webhook_secret.unwrap().0, "rotated-hook");
    let read = store.get_project(project.id).await.unwrap();
    assert_eq!(read.webhook_secret.unwrap().0, "rotated-hook");
    let cleared = store.set_webhook_secret(project.id, None).await.unwrap();
    assert_eq!(cleared.webhook_secret, None);
    let missing = store
        .set_webhook_secret(tako_store::ProjectId(9999), None)
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");
}

/// A rotation re-seals everything under the new key; the old key can go.
pub(crate) async fn rotation_reseals_every_secret(factory: &dyn StoreFactory) {
    let Some(keyring) = factory.keyring() else {
        return;
    };
    let store = factory.open().await;
    let project = seed(store.as_ref()).await;
    let old = keyring.current_id();
    let sealed = keyring.seal(CANARY).unwrap();
    let mut frozen = new_release(project.id, "1.0.0");
    frozen.variables = serde_json::json!([
        {"name": "ApiKey", "value": sealed, "sensitive": true},
        {"name": "Legacy", "value": "legacy-clear", "sensitive": true},
        {"name": "Plain", "value": "visible"},
    ])
    .to_string();
    let release = store.create_release(frozen).await.unwrap();

    let missing = store.reseal_secrets("00000000").await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound { .. }), "{missing}");

    let new = keyring.add(&[42; 32]);
    let count = store.reseal_secrets(&new).await.unwrap();
    assert!(count >= 4, "re-sealed {count}");
    assert_eq!(keyring.current_id(), new);
    assert!(keyring.retire(&old));
    check(store.as_ref()).await;

    let release = store.get_release(release.id).await.unwrap();
    assert!(!release.variables.contains(&format!("v1:{old}:")));
    assert!(!release.variables.contains("legacy-clear"));
    let entries: Vec<serde_json::Value> = serde_json::from_str(&release.variables).unwrap();
    let opened: Vec<String> = entries
        .iter()
        .map(|e| keyring.open(e["value"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(opened, vec![CANARY, "legacy-clear", "visible"]);

    // Nothing left to do the second time.
    assert_eq!(store.reseal_secrets(&new).await.unwrap(), 0);
    drop(store);
    check(factory.open().await.as_ref()).await;
    let _: Option<Arc<Keyring>> = factory.keyring();
}
