//! Releases: numbers unique per project, newest first, build counters.

use tako_store::{PageRequest, ProjectId, StoreError};

use super::{StoreFactory, new_release, project};

pub(crate) async fn release_numbers_are_unique_per_project(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let api = project(store.as_ref(), "api").await;
    let mut first = new_release(web.id, "1.0.0");
    first.build_number = Some(7);
    let created = store.create_release(first.clone()).await.unwrap();
    assert_eq!(created.project, web.id);
    assert_eq!(created.number, "1.0.0");
    assert_eq!(created.build_number, Some(7));
    assert_eq!(created.takofile, first.takofile);
    assert_eq!(created.variables, first.variables);
    assert_eq!(created.notes, first.notes);
    assert_eq!(created.commit, first.commit);
    assert_eq!(created.branch, first.branch);
    assert_eq!(created.pusher, first.pusher);

    let error = store
        .create_release(new_release(web.id, "1.0.0"))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
    assert!(error.to_string().contains("1.0.0"), "{error}");
    store
        .create_release(new_release(api.id, "1.0.0"))
        .await
        .unwrap();

    let found = store
        .find_release_by_number(web.id, "1.0.0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, created);
    assert_eq!(store.get_release(created.id).await.unwrap(), created);
    assert!(
        store
            .find_release_by_number(web.id, "9.9.9")
            .await
            .unwrap()
            .is_none()
    );
    let error = store
        .create_release(new_release(ProjectId(999), "1.0.0"))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    let error = store
        .get_release(tako_store::ReleaseId(999))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
}

pub(crate) async fn releases_are_listed_newest_first(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    assert!(store.latest_release(web.id).await.unwrap().is_none());
    // Created in an order that is not the version order: "latest" is by creation.
    for number in ["1.0.0", "2.0.0", "1.5.0", "1.6.0", "1.7.0"] {
        store
            .create_release(new_release(web.id, number))
            .await
            .unwrap();
    }
    let latest = store.latest_release(web.id).await.unwrap().unwrap();
    assert_eq!(latest.number, "1.7.0");
    let first = store
        .list_releases(web.id, PageRequest::first(2))
        .await
        .unwrap();
    let numbers: Vec<&str> = first.items.iter().map(|r| r.number.as_str()).collect();
    assert_eq!(numbers, ["1.7.0", "1.6.0"]);
    let rest = store
        .list_releases(
            web.id,
            PageRequest {
                limit: 10,
                after: first.next,
            },
        )
        .await
        .unwrap();
    let numbers: Vec<&str> = rest.items.iter().map(|r| r.number.as_str()).collect();
    assert_eq!(numbers, ["1.5.0", "2.0.0", "1.0.0"]);
    assert!(rest.next.is_none());
}

pub(crate) async fn build_counters_increment_per_project(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let api = project(store.as_ref(), "api").await;
    for expected in 1..=3 {
        // Peeking shows the value to be taken and takes nothing.
        assert_eq!(store.peek_build_number(web.id).await.unwrap(), expected);
        assert_eq!(store.peek_build_number(web.id).await.unwrap(), expected);
        assert_eq!(store.next_build_number(web.id).await.unwrap(), expected);
    }
    assert_eq!(store.peek_build_number(api.id).await.unwrap(), 1);
    assert_eq!(store.next_build_number(api.id).await.unwrap(), 1);
    let error = store.next_build_number(ProjectId(999)).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");
    let error = store.peek_build_number(ProjectId(999)).await.unwrap_err();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error:?}");

    // Concurrent takers never get the same value.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let id = web.id;
        tasks.push(tokio::spawn(
            async move { store.next_build_number(id).await },
        ));
    }
    let mut values = Vec::new();
    for task in tasks {
        values.push(task.await.unwrap().unwrap());
    }
    values.sort_unstable();
    assert_eq!(values, (4..=23).collect::<Vec<_>>());
}

pub(crate) async fn a_release_and_its_deployments_are_created_together(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let (release, deployments) = store
        .create_release_with_deployments(
            new_release(web.id, "2.0.0"),
            &[target("Staging"), target("Production")],
        )
        .await
        .unwrap();
    assert_eq!(release.number, "2.0.0");
    let environments: Vec<&str> = deployments.iter().map(|d| d.environment.as_str()).collect();
    assert_eq!(environments, ["Staging", "Production"]);
    assert!(
        deployments
            .iter()
            .all(|d| d.release == release.id && d.state == tako_store::DeploymentState::Queued)
    );

    // A number taken: nothing at all is created.
    let error = store
        .create_release_with_deployments(new_release(web.id, "2.0.0"), &[target("DevTest")])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
    let all = store
        .list_deployments(
            &tako_store::DeploymentFilter::default(),
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2, "no deployment to DevTest was queued");
    // Without environments it is just a release.
    let (alone, none) = store
        .create_release_with_deployments(new_release(web.id, "2.0.1"), &[])
        .await
        .unwrap();
    assert_eq!(alone.number, "2.0.1");
    assert!(none.is_empty());
}

fn target(environment: &str) -> tako_store::DeploymentTarget {
    tako_store::DeploymentTarget {
        environment: environment.to_owned(),
        approval: None,
        created_by: None,
    }
}
