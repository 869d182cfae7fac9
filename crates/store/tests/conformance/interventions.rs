//! Pauses for a person: a running deployment pauses (holding no slot: the
//! next deployment of its environment is claimed), is never claimed while
//! paused, survives a reopening, and is answered once: proceed queues it
//! with the step succeeded and its outputs sealed and read back; retry
//! makes the failed step pending again; abort fails it with the error; an
//! answer that does not fit the pause's kind, or a second one, is refused.

use chrono::Utc;
use tako_store::{
    DeploymentState, InterventionAction, InterventionAnswer, InterventionKind, NewIntervention,
    StepRecord, StepRunState, Store, StoreError,
};

use super::{LONG, StoreFactory, node, project, queue};

fn step(index: u32, name: &str, state: StepRunState) -> StepRecord {
    StepRecord {
        index,
        name: name.into(),
        state,
        reason: None,
        started_at: Some(Utc::now()),
        duration: None,
    }
}

fn answer(action: InterventionAction, outputs: Option<&str>) -> InterventionAnswer {
    InterventionAnswer {
        by: "bob".into(),
        role: "deployer".into(),
        action,
        note: "looks good".into(),
        step_reason: None,
        outputs: outputs.map(str::to_owned),
        error: (action == InterventionAction::Abort).then(|| "aborted by bob".to_owned()),
    }
}

async fn run_to_pause(
    store: &dyn Store,
    kind: InterventionKind,
) -> (tako_store::Deployment, tako_store::Deployment) {
    let web = project(store, "web").await;
    let first = queue(store, web.id, "Production").await;
    let second = queue(store, web.id, "Production").await;
    let claimed = store
        .claim_next_deployment(&node("a"), LONG, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, first.id);
    store
        .update_step(first.id, step(0, "Build", StepRunState::Success))
        .await
        .unwrap();
    let paused_state = match kind {
        InterventionKind::Manual => StepRunState::Pending,
        InterventionKind::Failure => StepRunState::Running,
    };
    store
        .update_step(first.id, step(1, "Check", paused_state))
        .await
        .unwrap();
    let paused = store
        .pause_deployment(
            first.id,
            NewIntervention {
                step_index: 1,
                step_name: "Check".into(),
                kind,
                instructions: "Look at https://staging.example/ first".into(),
                roles: vec!["admin".into(), "deployer".into()],
            },
        )
        .await
        .unwrap();
    (paused, second)
}

pub(crate) async fn a_paused_deployment_frees_its_slot_and_proceeds_once(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let (paused, second) = run_to_pause(store.as_ref(), InterventionKind::Manual).await;
    assert_eq!(paused.state, DeploymentState::Paused);
    assert_eq!(paused.claimed_by, None);
    assert_eq!(paused.lease_until, None);
    // Its environment's slot is free: the next deployment runs.
    let next = store
        .claim_next_deployment(&node("a"), LONG, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, second.id);
    store
        .finish_deployment(next.id, DeploymentState::Success, None)
        .await
        .unwrap();
    assert!(
        store
            .claim_next_deployment(&node("a"), LONG, 10)
            .await
            .unwrap()
            .is_none(),
        "a paused deployment is never claimed"
    );
    // Running again is refused; so is an answer of the other kind.
    let again = store
        .pause_deployment(
            paused.id,
            NewIntervention {
                step_index: 1,
                step_name: "Check".into(),
                kind: InterventionKind::Manual,
                instructions: String::new(),
                roles: Vec::new(),
            },
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::InvalidTransition { .. })),
        "{again:?}"
    );
    let retry = store
        .answer_intervention(paused.id, answer(InterventionAction::Retry, None))
        .await;
    assert!(
        matches!(retry, Err(StoreError::InvalidTransition { .. })),
        "{retry:?}"
    );

    // A restart keeps it paused with its pause.
    drop(store);
    let store = factory.open().await;
    assert_eq!(
        store.get_deployment(paused.id).await.unwrap().state,
        DeploymentState::Paused
    );
    let listed = store.list_interventions(paused.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, InterventionKind::Manual);
    assert_eq!(listed[0].step_index, 1);
    assert_eq!(listed[0].step_name, "Check");
    assert_eq!(listed[0].roles, ["admin", "deployer"]);
    assert_eq!(
        listed[0].instructions,
        "Look at https://staging.example/ first"
    );
    assert!(listed[0].answer.is_none());

    let outputs = r#"[{"name":"Manual.Notes","value":"looks good"}]"#;
    let proceeded = store
        .answer_intervention(
            paused.id,
            answer(InterventionAction::Proceed, Some(outputs)),
        )
        .await
        .unwrap();
    assert_eq!(proceeded.state, DeploymentState::Queued);
    let steps = store.list_steps(paused.id).await.unwrap();
    assert_eq!(steps[1].state, StepRunState::Success);
    assert_eq!(
        store.step_outputs(paused.id).await.unwrap(),
        [(1, outputs.to_owned())]
    );
    let listed = store.list_interventions(paused.id).await.unwrap();
    let answered = listed[0].answer.as_ref().expect("answered");
    assert_eq!(answered.by, "bob");
    assert_eq!(answered.role, "deployer");
    assert_eq!(answered.action, InterventionAction::Proceed);
    assert_eq!(answered.note, "looks good");
    let twice = store
        .answer_intervention(paused.id, answer(InterventionAction::Proceed, None))
        .await;
    assert!(
        matches!(twice, Err(StoreError::InvalidTransition { .. })),
        "{twice:?}"
    );
    // Queued again, it is claimed like any other.
    let resumed = store
        .claim_next_deployment(&node("b"), LONG, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resumed.id, paused.id);
}

pub(crate) async fn a_failed_step_is_retried_ignored_or_aborted(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let (paused, _) = run_to_pause(store.as_ref(), InterventionKind::Failure).await;
    let proceed = store
        .answer_intervention(paused.id, answer(InterventionAction::Proceed, None))
        .await;
    assert!(
        matches!(proceed, Err(StoreError::InvalidTransition { .. })),
        "{proceed:?}"
    );
    // Retry: the failed step runs again.
    let retried = store
        .answer_intervention(paused.id, answer(InterventionAction::Retry, None))
        .await
        .unwrap();
    assert_eq!(retried.state, DeploymentState::Queued);
    assert_eq!(
        store.list_steps(paused.id).await.unwrap()[1].state,
        StepRunState::Pending
    );
    // It fails again and pauses again; this time abort.
    let claimed = store
        .claim_next_deployment(&node("a"), LONG, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, paused.id);
    store
        .update_step(paused.id, step(1, "Check", StepRunState::Running))
        .await
        .unwrap();
    store
        .pause_deployment(
            paused.id,
            NewIntervention {
                step_index: 1,
                step_name: "Check".into(),
                kind: InterventionKind::Failure,
                instructions: "Step 'Check' failed".into(),
                roles: Vec::new(),
            },
        )
        .await
        .unwrap();
    let mut abort = answer(InterventionAction::Abort, None);
    abort.step_reason = Some("aborted by bob: looks good".into());
    let aborted = store.answer_intervention(paused.id, abort).await.unwrap();
    assert_eq!(aborted.state, DeploymentState::Failed);
    assert_eq!(aborted.error.as_deref(), Some("aborted by bob"));
    assert!(aborted.finished_at.is_some());
    let steps = store.list_steps(paused.id).await.unwrap();
    assert_eq!(steps[1].state, StepRunState::Failed);
    assert_eq!(
        steps[1].reason.as_deref(),
        Some("aborted by bob: looks good")
    );
    let listed = store.list_interventions(paused.id).await.unwrap();
    let actions: Vec<_> = listed
        .iter()
        .map(|i| i.answer.as_ref().map(|a| a.action))
        .collect();
    assert_eq!(
        actions,
        [
            Some(InterventionAction::Retry),
            Some(InterventionAction::Abort)
        ]
    );
    // A paused deployment may be cancelled too.
    let (other, _) = {
        // The second deployment of Production, queued behind the first.
        let claimed = store
            .claim_next_deployment(&node("a"), LONG, 10)
            .await
            .unwrap()
            .unwrap();
        let paused = store
            .pause_deployment(
                claimed.id,
                NewIntervention {
                    step_index: 0,
                    step_name: "Wait".into(),
                    kind: InterventionKind::Manual,
                    instructions: String::new(),
                    roles: Vec::new(),
                },
            )
            .await
            .unwrap();
        (paused, ())
    };
    let cancelled = store.request_cancel(other.id).await.unwrap();
    assert_eq!(cancelled.state, DeploymentState::Cancelled);
}
