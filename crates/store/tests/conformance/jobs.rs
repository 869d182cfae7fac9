//! Jobs (a step run by an agent): claimed by their agent only, log chunks
//! stored once and in order, one outcome, lost agents interrupted and never
//! given the job again, secrets sealed at rest.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tako_store::{
    Agent, AgentState, ChunkOutcome, DeploymentId, JobEnd, JobId, JobState, LogCursor, LogLevel,
    LogLineRecord, LogStream, NewAgent, NewEnrollmentToken, NewJob, Store, StoreError, TokenHash,
    Wakeup,
};

use super::{StoreFactory, project, queue};

async fn agent(store: &dyn Store, name: &str, byte: u8) -> Agent {
    store
        .create_enrollment_token(NewEnrollmentToken {
            hash: TokenHash([byte; 32]),
            name: Some(name.to_owned()),
            environments: vec!["Production".to_owned()],
            roles: vec!["ps".to_owned()],
            expires_at: Utc::now() + TimeDelta::hours(1),
            auto_approve: true,
        })
        .await
        .unwrap();
    let agent = store
        .redeem_enrollment_token(
            &TokenHash([byte; 32]),
            NewAgent {
                name: name.to_owned(),
                credential: TokenHash([byte + 100; 32]),
                version: "0.1.0".to_owned(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(agent.state, AgentState::Active);
    agent
}

fn lines(texts: &[&str]) -> Vec<LogLineRecord> {
    texts
        .iter()
        .map(|text| LogLineRecord {
            timestamp: Utc::now(),
            step: Some("Test@win-01".to_owned()),
            stream: LogStream::Stdout,
            level: LogLevel::Info,
            text: (*text).to_owned(),
        })
        .collect()
}

/// A job for `agent` in `deployment`: step 0 ("Test"), attempt 1, an empty
/// spec; a test overrides what it needs (`NewJob { step_index: 1, ..job }`).
fn new_job(id: &str, deployment: DeploymentId, agent: &Agent) -> NewJob {
    NewJob {
        id: JobId(id.to_owned()),
        deployment,
        step_index: 0,
        step_name: "Test".to_owned(),
        agent: agent.id,
        agent_name: agent.name.clone(),
        spec: "{}".to_owned(),
        attempt: 1,
    }
}

const LEASE: Duration = Duration::from_secs(60);

pub(crate) async fn a_job_is_claimed_by_its_agent_and_its_log_stored_once_in_order(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let win = agent(store.as_ref(), "win-01", 1).await;
    let other = agent(store.as_ref(), "linux-01", 2).await;
    let id = JobId("job-1".to_owned());
    let job = store
        .create_job(NewJob {
            step_index: 1,
            spec: r#"{"variables":[{"name":"Key","value":"canary-job-secret"}]}"#.to_owned(),
            ..new_job(&id.0, d.id, &win)
        })
        .await
        .unwrap();
    assert_eq!(job.state, JobState::Pending);
    let now = Utc::now();

    // Only its agent gets it.
    assert!(
        store
            .claim_job(other.id, LEASE, now)
            .await
            .unwrap()
            .is_none()
    );
    let (claimed, spec) = store.claim_job(win.id, LEASE, now).await.unwrap().unwrap();
    assert_eq!(claimed.id, id);
    assert_eq!(claimed.state, JobState::Running);
    assert!(spec.contains("canary-job-secret"), "opened for its agent");
    assert!(
        store.claim_job(win.id, LEASE, now).await.unwrap().is_none(),
        "taken once"
    );

    // Another agent's calls about it: NotFound.
    for error in [
        store.renew_job(&id, other.id, LEASE, now).await.err(),
        store
            .append_job_log(&id, other.id, 1, &lines(&["x"]))
            .await
            .err(),
    ] {
        assert!(
            matches!(error, Some(StoreError::NotFound { .. })),
            "{error:?}"
        );
    }

    // Chunks: in order, each once; a gap is refused until filled.
    let append = |seq: u64, texts: &'static [&'static str]| {
        let store = store.clone();
        let id = id.clone();
        let agent = win.id;
        async move {
            store
                .append_job_log(&id, agent, seq, &lines(texts))
                .await
                .unwrap()
        }
    };
    assert_eq!(
        append(1, &["one", "two"]).await,
        ChunkOutcome::Stored { stored_through: 1 }
    );
    assert_eq!(
        append(3, &["four"]).await,
        ChunkOutcome::Gap { stored_through: 1 }
    );
    assert_eq!(
        append(1, &["one", "two"]).await,
        ChunkOutcome::Duplicate { stored_through: 1 }
    );
    assert_eq!(
        append(2, &["three"]).await,
        ChunkOutcome::Stored { stored_through: 2 }
    );
    assert_eq!(
        append(3, &["four"]).await,
        ChunkOutcome::Stored { stored_through: 3 }
    );
    let log = store.read_log(d.id, LogCursor::START, 100).await.unwrap();
    let texts: Vec<&str> = log.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["one", "two", "three", "four"]);
    assert_eq!(log.lines[0].step.as_deref(), Some("Test@win-01"));

    // Heartbeats carry a cancel request.
    assert!(
        !store
            .renew_job(&id, win.id, LEASE, now)
            .await
            .unwrap()
            .cancel_requested
    );
    store.request_job_cancel(&id, now).await.unwrap();
    assert!(
        store
            .renew_job(&id, win.id, LEASE, now)
            .await
            .unwrap()
            .cancel_requested
    );

    // One outcome; the same report again changes nothing; another is refused.
    let end = JobEnd {
        state: JobState::Success,
        reason: None,
        outputs: r#"[{"name":"Token","value":"canary-output","sensitive":true}]"#.to_owned(),
        duration_ms: 1500,
    };
    let finished = store
        .finish_job(&id, win.id, end.clone(), now)
        .await
        .unwrap();
    assert_eq!(finished.state, JobState::Success);
    assert_eq!(finished.duration_ms, Some(1500));
    let again = store
        .finish_job(&id, win.id, end.clone(), now)
        .await
        .unwrap();
    assert_eq!(again, finished);
    let other_end = JobEnd {
        state: JobState::Failed,
        ..end
    };
    let refused = store
        .finish_job(&id, win.id, other_end, now)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, StoreError::InvalidTransition { .. }),
        "{refused:?}"
    );
    assert!(
        store
            .job_outputs(&id)
            .await
            .unwrap()
            .unwrap()
            .contains("canary-output")
    );
    // After the end, nothing more is appended.
    let late = store
        .append_job_log(&id, win.id, 4, &lines(&["late"]))
        .await;
    assert!(
        matches!(late, Err(StoreError::InvalidTransition { .. })),
        "{late:?}"
    );
    assert_eq!(store.list_jobs(d.id).await.unwrap().len(), 1);
}

pub(crate) async fn a_lost_agents_job_is_interrupted_and_never_run_again(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let win = agent(store.as_ref(), "win-01", 3).await;
    let id = JobId("job-2".to_owned());
    store.create_job(new_job(&id.0, d.id, &win)).await.unwrap();
    let start = Utc::now();
    store
        .claim_job(win.id, Duration::from_secs(10), start)
        .await
        .unwrap()
        .unwrap();
    // Within the lease: nothing happens.
    assert!(
        store
            .interrupt_expired_jobs(start)
            .await
            .unwrap()
            .is_empty()
    );
    let later = start + TimeDelta::seconds(11);
    let interrupted = store.interrupt_expired_jobs(later).await.unwrap();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(interrupted[0].state, JobState::Interrupted);
    assert_eq!(
        interrupted[0].reason.as_deref(),
        Some("agent win-01 stopped answering")
    );
    // Never handed out again, and a late report changes nothing.
    assert!(
        store
            .claim_job(win.id, LEASE, later)
            .await
            .unwrap()
            .is_none()
    );
    let late = store
        .finish_job(
            &id,
            win.id,
            JobEnd {
                state: JobState::Success,
                reason: None,
                outputs: "[]".to_owned(),
                duration_ms: 1,
            },
            later,
        )
        .await;
    assert!(
        matches!(late, Err(StoreError::InvalidTransition { .. })),
        "{late:?}"
    );
    assert_eq!(
        store.get_job(&id).await.unwrap().state,
        JobState::Interrupted
    );
}

pub(crate) async fn a_job_never_taken_fails_and_a_taken_one_cannot(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let win = agent(store.as_ref(), "win-01", 7).await;
    let new_job = |id: &str| NewJob {
        id: JobId(id.to_owned()),
        deployment: d.id,
        step_index: 0,
        step_name: "Test".to_owned(),
        agent: win.id,
        agent_name: win.name.clone(),
        spec: "{}".to_owned(),
        attempt: 1,
    };
    let waiting = store.create_job(new_job("job-w")).await.unwrap();
    let failed = store
        .fail_unclaimed_job(&waiting.id, "agent win-01 did not take the job", Utc::now())
        .await
        .unwrap();
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(
        failed.reason.as_deref(),
        Some("agent win-01 did not take the job")
    );
    assert!(failed.finished_at.is_some());
    // Never handed out afterwards.
    assert!(
        store
            .claim_job(win.id, LEASE, Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    // A job its agent took is not failed behind its back.
    let taken = store.create_job(new_job("job-t")).await.unwrap();
    store
        .claim_job(win.id, LEASE, Utc::now())
        .await
        .unwrap()
        .unwrap();
    let refused = store
        .fail_unclaimed_job(&taken.id, "agent win-01 did not take the job", Utc::now())
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidTransition { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store.get_job(&taken.id).await.unwrap().state,
        JobState::Running
    );
}

pub(crate) async fn running_jobs_are_counted(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let win = agent(store.as_ref(), "win-01", 5).await;
    let linux = agent(store.as_ref(), "linux-01", 7).await;
    assert_eq!(store.count_running_jobs().await.unwrap(), 0);
    for (id, agent) in [("job-a", &win), ("job-b", &linux), ("job-c", &win)] {
        store.create_job(new_job(id, d.id, agent)).await.unwrap();
    }
    // Pending jobs are not running.
    assert_eq!(store.count_running_jobs().await.unwrap(), 0);
    let now = Utc::now();
    let (first, _) = store.claim_job(win.id, LEASE, now).await.unwrap().unwrap();
    store
        .claim_job(linux.id, LEASE, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.count_running_jobs().await.unwrap(), 2);
    let running: Vec<String> = store
        .running_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| format!("{}@{}", j.id.0, j.agent_name))
        .collect();
    assert_eq!(running.len(), 2);
    assert!(running.contains(&"job-a@win-01".to_owned()), "{running:?}");
    assert!(
        running.contains(&"job-b@linux-01".to_owned()),
        "{running:?}"
    );
    store
        .finish_job(
            &first.id,
            win.id,
            JobEnd {
                state: JobState::Success,
                reason: None,
                outputs: "[]".to_owned(),
                duration_ms: 5,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(store.count_running_jobs().await.unwrap(), 1);
    // A lost agent's job is interrupted, and no longer running.
    let interrupted = store
        .interrupt_expired_jobs(now + TimeDelta::seconds(61))
        .await
        .unwrap();
    assert_eq!(interrupted.len(), 1);
    assert_eq!(store.count_running_jobs().await.unwrap(), 0);
}

pub(crate) async fn a_deployment_waiting_on_an_agent_is_requeued_with_its_steps_outputs(
    factory: &dyn StoreFactory,
) {
    use tako_store::{DeploymentState, StepRecord, StepRunState};

    use super::{LONG, node};
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let waiting = queue(store.as_ref(), web.id, "Production").await;
    let local = queue(store.as_ref(), web.id, "Staging").await;
    let win = agent(store.as_ref(), "win-01", 9).await;
    let a = node("a");
    let claimed = store
        .claim_next_deployment(&a, LONG, 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, waiting.id);
    let started = claimed.started_at;
    store
        .claim_next_deployment(&a, LONG, 4)
        .await
        .unwrap()
        .unwrap();
    // Step 0 ran on the server and set outputs; step 1 waits on the agent.
    let step = |index: u32, state: StepRunState| StepRecord {
        index,
        name: format!("step {index}"),
        state,
        reason: None,
        started_at: Some(Utc::now()),
        duration: None,
    };
    assert!(matches!(
        store.set_step_outputs(waiting.id, 0, "[]".to_owned()).await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .update_step(waiting.id, step(0, StepRunState::Running))
        .await
        .unwrap();
    store
        .update_step(waiting.id, step(0, StepRunState::Success))
        .await
        .unwrap();
    let outputs = r#"[{"name":"Token","value":"output-canary-77","sensitive":true}]"#;
    store
        .set_step_outputs(waiting.id, 0, outputs.to_owned())
        .await
        .unwrap();
    store
        .update_step(waiting.id, step(1, StepRunState::Running))
        .await
        .unwrap();
    store
        .create_job(NewJob {
            step_index: 1,
            step_name: "step 1".to_owned(),
            ..new_job("job-r", waiting.id, &win)
        })
        .await
        .unwrap();
    // Another node's restart requeues nothing of node a's.
    assert!(
        store
            .requeue_waiting_on_agents(&node("b"))
            .await
            .unwrap()
            .is_empty()
    );
    let requeued = store.requeue_waiting_on_agents(&a).await.unwrap();
    assert_eq!(requeued, [waiting.id], "only the one waiting on an agent");
    let interrupted = store
        .interrupt_running(tako_store::InterruptScope::Node(a.clone()))
        .await
        .unwrap();
    assert_eq!(interrupted, [local.id]);
    assert_eq!(
        store.get_deployment(waiting.id).await.unwrap().state,
        DeploymentState::Queued
    );
    // Claimed again (by any node), it keeps its start and its steps.
    let again = store
        .claim_next_deployment(&node("b"), LONG, 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, waiting.id);
    assert_eq!(again.started_at, started);
    assert_eq!(
        store.step_outputs(waiting.id).await.unwrap(),
        [(0, outputs.to_owned())]
    );
    let steps = store.list_steps(waiting.id).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[1].state, StepRunState::Running);
}

pub(crate) async fn a_step_between_two_of_its_jobs_is_requeued_and_an_ended_one_is_not(
    factory: &dyn StoreFactory,
) {
    use tako_store::{DeploymentState, StepRecord, StepRunState};

    use super::{LONG, node};
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let between = queue(store.as_ref(), web.id, "Production").await;
    let after = queue(store.as_ref(), web.id, "Staging").await;
    let win = agent(store.as_ref(), "win-01", 9).await;
    let a = node("a");
    for _ in 0..2 {
        store
            .claim_next_deployment(&a, LONG, 4)
            .await
            .unwrap()
            .unwrap();
    }
    let step = |index: u32, state: StepRunState| StepRecord {
        index,
        name: format!("step {index}"),
        state,
        reason: None,
        started_at: Some(Utc::now()),
        duration: None,
    };
    let end = JobEnd {
        state: JobState::Success,
        reason: None,
        outputs: "[]".to_owned(),
        duration_ms: 10,
    };
    // `between`: its agent step (MaxParallelism: 1) is still running, its
    // first job has ended and the next one is not created yet.
    // `after`: its agent step ended, a server step runs now.
    for (deployment, id) in [(between.id, "job-between"), (after.id, "job-after")] {
        store
            .update_step(deployment, step(0, StepRunState::Running))
            .await
            .unwrap();
        store
            .create_job(NewJob {
                step_name: "step 0".to_owned(),
                ..new_job(id, deployment, &win)
            })
            .await
            .unwrap();
        let now = Utc::now();
        let (claimed, _) = store.claim_job(win.id, LEASE, now).await.unwrap().unwrap();
        assert_eq!(claimed.id.0, id);
        store
            .finish_job(&claimed.id, win.id, end.clone(), now)
            .await
            .unwrap();
    }
    store
        .update_step(after.id, step(0, StepRunState::Success))
        .await
        .unwrap();
    store
        .update_step(after.id, step(1, StepRunState::Running))
        .await
        .unwrap();
    let requeued = store.requeue_waiting_on_agents(&a).await.unwrap();
    assert_eq!(requeued, [between.id]);
    let interrupted = store
        .interrupt_running(tako_store::InterruptScope::Node(a.clone()))
        .await
        .unwrap();
    assert_eq!(interrupted, [after.id]);
    assert_eq!(
        store.get_deployment(between.id).await.unwrap().state,
        DeploymentState::Queued
    );
}

pub(crate) async fn a_deployments_jobs_are_listed_by_step_then_agent_with_their_ends(
    factory: &dyn StoreFactory,
) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let other = queue(store.as_ref(), web.id, "Staging").await;
    let win = agent(store.as_ref(), "win-01", 5).await;
    let linux = agent(store.as_ref(), "linux-01", 7).await;
    assert!(store.list_jobs(d.id).await.unwrap().is_empty());
    // Created out of order, a second attempt first, and one on another
    // deployment.
    for (id, deployment, step_index, step_name, agent, attempt) in [
        ("job-0", d.id, 1, "Test", &win, 2),
        ("job-c", d.id, 2, "Smoke", &win, 1),
        ("job-b", d.id, 1, "Test", &win, 1),
        ("job-a", d.id, 1, "Test", &linux, 1),
        ("job-x", other.id, 1, "Test", &win, 1),
    ] {
        store
            .create_job(NewJob {
                step_index,
                step_name: step_name.to_owned(),
                spec: "{\"secret\":\"canary-spec\"}".to_owned(),
                attempt,
                ..new_job(id, deployment, agent)
            })
            .await
            .unwrap();
    }
    let now = Utc::now();
    let (taken, _) = store
        .claim_job(linux.id, LEASE, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.id, JobId("job-a".to_owned()));
    store
        .finish_job(
            &taken.id,
            linux.id,
            JobEnd {
                state: JobState::Failed,
                reason: Some("exit code 3".to_owned()),
                outputs: "[]".to_owned(),
                duration_ms: 1_250,
            },
            now + TimeDelta::seconds(2),
        )
        .await
        .unwrap();

    let jobs = store.list_jobs(d.id).await.unwrap();
    let seen: Vec<(&str, u32, u32, &str, &str, JobState)> = jobs
        .iter()
        .map(|j| {
            (
                j.id.0.as_str(),
                j.step_index,
                j.attempt,
                j.step_name.as_str(),
                j.agent_name.as_str(),
                j.state,
            )
        })
        .collect();
    // By step, then attempt, then agent.
    assert_eq!(
        seen,
        [
            ("job-a", 1, 1, "Test", "linux-01", JobState::Failed),
            ("job-b", 1, 1, "Test", "win-01", JobState::Pending),
            ("job-0", 1, 2, "Test", "win-01", JobState::Pending),
            ("job-c", 2, 1, "Smoke", "win-01", JobState::Pending),
        ]
    );
    let failed = &jobs[0];
    assert_eq!(failed.reason.as_deref(), Some("exit code 3"));
    assert_eq!(failed.duration_ms, Some(1_250));
    assert!(failed.started_at.is_some() && failed.finished_at.is_some());
    assert!(jobs[1].started_at.is_none() && jobs[1].duration_ms.is_none());
    assert_eq!(
        store
            .list_jobs(other.id)
            .await
            .unwrap()
            .iter()
            .map(|j| j.id.0.as_str())
            .collect::<Vec<_>>(),
        ["job-x"]
    );
}

/// Cluster §3: log lines an agent sends wake whoever follows the
/// deployment's log (on PostgreSQL, on every node: `NOTIFY` after the
/// chunk's commit); a duplicate or a gap stores nothing and wakes no one.
pub(crate) async fn an_agents_log_lines_wake_the_deployments_followers(factory: &dyn StoreFactory) {
    let store = factory.open().await;
    let web = project(store.as_ref(), "web").await;
    let d = queue(store.as_ref(), web.id, "Production").await;
    let win = agent(store.as_ref(), "win-01", 1).await;
    let id = JobId("job-woken".to_owned());
    store
        .create_job(NewJob {
            step_index: 1,
            ..new_job(&id.0, d.id, &win)
        })
        .await
        .unwrap();
    store
        .claim_job(win.id, LEASE, Utc::now())
        .await
        .unwrap()
        .unwrap();
    let mut wakeups = store.wakeups();
    // A listener may need a moment to start: send chunks until one is heard.
    let mut heard = false;
    for seq in 1..=50 {
        let stored = store
            .append_job_log(&id, win.id, seq, &lines(&["hello"]))
            .await
            .unwrap();
        assert_eq!(
            stored,
            ChunkOutcome::Stored {
                stored_through: seq
            }
        );
        if tokio::time::timeout(Duration::from_millis(200), async {
            while wakeups.next().await != Wakeup::Log(d.id) {}
        })
        .await
        .is_ok()
        {
            heard = true;
            break;
        }
    }
    assert!(heard, "an agent's stored log lines never woke a follower");
}
