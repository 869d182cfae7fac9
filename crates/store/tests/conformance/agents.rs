//! Agents and their enrollment tokens: single use, expiry, the token's
//! environments and roles (never the agent's proposal), states, credential
//! rotation and removal.

use chrono::{TimeDelta, Utc};
use tako_store::{AgentState, NewAgent, NewEnrollmentToken, StoreError, TokenHash};

use super::StoreFactory;

fn token(byte: u8, name: Option<&str>, auto_approve: bool) -> NewEnrollmentToken {
    NewEnrollmentToken {
        hash: TokenHash([byte; 32]),
        name: name.map(str::to_owned),
        environments: vec!["Production".to_owned(), "DevTest".to_owned()],
        roles: vec!["ps".to_owned(), "windows".to_owned(), "ps".to_owned()],
        expires_at: Utc::now() + TimeDelta::hours(1),
        auto_approve,
    }
}

fn agent(name: &str, credential: u8) -> NewAgent {
    NewAgent {
        name: name.to_owned(),
        credential: TokenHash([credential; 32]),
        version: "0.1.0".to_owned(),
    }
}

pub(crate) async fn enrollment_tokens_are_used_once_and_give_their_scope(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let now = Utc::now();
    let stored = store
        .create_enrollment_token(token(1, Some("win-01"), false))
        .await
        .unwrap();
    assert_eq!(stored.environments, ["DevTest", "Production"]);
    assert_eq!(stored.roles, ["ps", "windows"]);
    assert!(stored.used_at.is_none());

    // The token's name wins over the agent's proposal; pending until approved.
    let enrolled = store
        .redeem_enrollment_token(&TokenHash([1; 32]), agent("proposed", 11), now)
        .await
        .unwrap();
    assert_eq!(enrolled.name, "win-01");
    assert_eq!(enrolled.state, AgentState::Pending);
    assert_eq!(enrolled.environments, ["DevTest", "Production"]);
    assert_eq!(enrolled.roles, ["ps", "windows"]);
    assert_eq!(enrolled.version.as_deref(), Some("0.1.0"));

    // Used once.
    let again = store
        .redeem_enrollment_token(&TokenHash([1; 32]), agent("other", 12), now)
        .await;
    assert!(
        matches!(again, Err(StoreError::InvalidTransition { .. })),
        "{again:?}"
    );
    // Unknown.
    let unknown = store
        .redeem_enrollment_token(&TokenHash([2; 32]), agent("other", 12), now)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "{unknown:?}"
    );
    // Expired: nothing is enrolled and the token stays unused.
    let mut expired = token(3, None, true);
    expired.expires_at = now - TimeDelta::seconds(1);
    store.create_enrollment_token(expired).await.unwrap();
    let late = store
        .redeem_enrollment_token(&TokenHash([3; 32]), agent("late", 13), now)
        .await;
    assert!(
        matches!(late, Err(StoreError::InvalidTransition { .. })),
        "{late:?}"
    );
    // A name taken (without regard to case) enrolls nothing and leaves the
    // token usable.
    store
        .create_enrollment_token(token(4, None, true))
        .await
        .unwrap();
    let taken = store
        .redeem_enrollment_token(&TokenHash([4; 32]), agent("WIN-01", 14), now)
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict { .. })),
        "{taken:?}"
    );
    let auto = store
        .redeem_enrollment_token(&TokenHash([4; 32]), agent("linux-01", 14), now)
        .await
        .unwrap();
    assert_eq!(auto.state, AgentState::Active);

    let names: Vec<String> = store
        .list_agents()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["linux-01", "win-01"]);
}

pub(crate) async fn agents_are_found_approved_rotated_and_removed(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let now = Utc::now();
    store
        .create_enrollment_token(token(5, None, false))
        .await
        .unwrap();
    let enrolled = store
        .redeem_enrollment_token(&TokenHash([5; 32]), agent("vm-07", 21), now)
        .await
        .unwrap();
    let found = store
        .find_agent_by_credential(&TokenHash([21; 32]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, enrolled.id);
    assert_eq!(
        store.find_agent_by_name("VM-07").await.unwrap().unwrap().id,
        enrolled.id
    );
    let active = store
        .set_agent_state(enrolled.id, AgentState::Active)
        .await
        .unwrap();
    assert_eq!(active.state, AgentState::Active);
    let later = now + TimeDelta::seconds(5);
    store
        .touch_agent(enrolled.id, "0.2.0", later)
        .await
        .unwrap();
    let touched = store.find_agent_by_name("vm-07").await.unwrap().unwrap();
    assert_eq!(touched.version.as_deref(), Some("0.2.0"));
    assert_eq!(
        touched.last_seen_at.map(|t| t.timestamp_millis()),
        Some(later.timestamp_millis())
    );

    // Rotation: the old credential stops working.
    store
        .set_agent_credential(enrolled.id, TokenHash([22; 32]))
        .await
        .unwrap();
    assert!(
        store
            .find_agent_by_credential(&TokenHash([21; 32]))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .find_agent_by_credential(&TokenHash([22; 32]))
            .await
            .unwrap()
            .is_some()
    );

    // Removal; a second removal and a missing agent are NotFound.
    store.delete_agent(enrolled.id).await.unwrap();
    assert!(store.list_agents().await.unwrap().is_empty());
    assert!(matches!(
        store.delete_agent(enrolled.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.set_agent_state(enrolled.id, AgentState::Active).await,
        Err(StoreError::NotFound { .. })
    ));
}
