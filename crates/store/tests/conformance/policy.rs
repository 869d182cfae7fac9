//! Environment policies and the audit log.

use tako_store::{NewAuditEntry, PageRequest, ProjectId, StoreError};

use super::{StoreFactory, project};

/// Policies are set, replaced, found without regard to case and deleted.
pub(crate) async fn environment_policies_are_set_found_and_deleted(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    assert_eq!(
        store
            .find_environment_policy(web.id, "Production")
            .await
            .unwrap(),
        None
    );
    let set = store
        .set_environment_policy(web.id, "Production", &["main".to_owned()])
        .await
        .unwrap();
    assert_eq!(set.allowed_branches, vec!["main"]);
    let replaced = store
        .set_environment_policy(
            web.id,
            "production",
            &["main".to_owned(), "release/*".to_owned()],
        )
        .await
        .unwrap();
    assert_eq!(replaced.environment, "production");
    let found = store
        .find_environment_policy(web.id, "PRODUCTION")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.allowed_branches, vec!["main", "release/*"]);
    store
        .set_environment_policy(web.id, "Locked", &[])
        .await
        .unwrap();
    let all = store.list_environment_policies(web.id).await.unwrap();
    let names: Vec<&str> = all.iter().map(|p| p.environment.as_str()).collect();
    assert_eq!(names, vec!["Locked", "production"]);
    assert!(all[0].allowed_branches.is_empty());
    store
        .delete_environment_policy(web.id, "Locked")
        .await
        .unwrap();
    let again = store.delete_environment_policy(web.id, "Locked").await;
    assert!(matches!(again, Err(StoreError::NotFound { .. })));
    let unknown = store
        .set_environment_policy(ProjectId(9999), "Production", &[])
        .await;
    assert!(matches!(unknown, Err(StoreError::NotFound { .. })));
}

/// The audit log reads back newest first, in pages.
pub(crate) async fn the_audit_log_is_appended_and_read_newest_first(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    for n in 0..5 {
        store
            .append_audit(NewAuditEntry {
                actor: "token 1 (admin)".to_owned(),
                action: "variable.set".to_owned(),
                target: format!("project web variable V{n}"),
                source: Some("127.0.0.1".to_owned()),
                outcome: "ok".to_owned(),
                detail: None,
            })
            .await
            .unwrap();
    }
    let first = store
        .list_audit(PageRequest {
            limit: 3,
            after: None,
        })
        .await
        .unwrap();
    let targets: Vec<&str> = first.items.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(
        targets,
        vec![
            "project web variable V4",
            "project web variable V3",
            "project web variable V2"
        ]
    );
    let rest = store
        .list_audit(PageRequest {
            limit: 3,
            after: first.next,
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next.is_none());
}
