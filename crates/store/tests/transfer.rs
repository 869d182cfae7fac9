//! Copying a SQLite database into PostgreSQL (`tako admin migrate`): a
//! SQLite store holding a row in every table of the schema is copied into
//! a real PostgreSQL (from `tako_test_support::postgres`), and every table
//! is compared row by row. A table added to the schema and not filled
//! here fails the test, so every table's copy stays tested.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use tako_store::transfer::{Cell, Export, TransferError};
use tako_store::{
    AgentId, ApprovalRule, DeliveryId, Keyring, LogCursor, LogLevel, LogLineRecord, LogStream,
    NewAgent, NewApiToken, NewApproval, NewAuditEntry, NewDelivery, NewDeployment,
    NewEnrollmentToken, NewJob, NewProject, NewRelease, NewVariable, NodeId, PostgresOptions,
    PostgresStore, SqliteExport, SqliteStore, StepRecord, StepRunState, Store, TokenHash,
};
use tako_test_support::postgres::Postgres;

const LONG: Duration = Duration::from_secs(600);

fn release(project: tako_store::ProjectId, number: &str) -> NewRelease {
    NewRelease {
        project,
        number: number.to_owned(),
        notes: format!("notes of {number}"),
        commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        branch: Some("main".to_owned()),
        pusher: Some("octocat".to_owned()),
        takofile: "Project: web\n".to_owned(),
        variables: "{}".to_owned(),
        build_number: None,
    }
}

/// A body the size of a real push, which SQLite compresses.
fn large_push() -> Vec<u8> {
    let commit = r#"{"id":"0123456789abcdef0123456789abcdef01234567","message":"Change","author":{"name":"Octocat"}}"#;
    format!(
        "{{\"ref\":\"refs/heads/main\",\"commits\":[{}]}}",
        vec![commit; 80].join(",")
    )
    .into_bytes()
}

/// One of everything, through the store's own methods.
async fn fill(store: &dyn Store) {
    let web = store
        .create_project(NewProject {
            name: "web".to_owned(),
            repository_url: "https://github.com/acme/web".to_owned(),
            webhook_secret: Some(tako_store::WebhookSecret("hook-secret-canary".to_owned())),
            repository_token: None,
        })
        .await
        .unwrap();
    let push = |id: &str, body: Vec<u8>| NewDelivery {
        id: DeliveryId(id.to_owned()),
        event: "push".to_owned(),
        received_at: Utc::now(),
        body,
        repository_url: Some("https://github.com/acme/web.git".to_owned()),
        git_ref: Some("refs/heads/main".to_owned()),
        after: Some("abc".to_owned()),
        recovered: false,
    };
    // A short body (kept as it came) and a push-sized one (compressed).
    store
        .insert_deliveries(&[
            push("d-1", b"{\"ref\":\"refs/heads/main\"}".to_vec()),
            push("d-2", large_push()),
        ])
        .await
        .unwrap();
    let first = store
        .create_release(release(web.id, "1.0.0"))
        .await
        .unwrap();
    let running = store
        .create_deployment(NewDeployment {
            release: first.id,
            environment: "Staging".to_owned(),
            approval: None,
            created_by: Some("alice".to_owned()),
            retry_of: None,
            hold: false,
        })
        .await
        .unwrap();
    let waiting = store
        .create_deployment(NewDeployment {
            release: first.id,
            environment: "Production".to_owned(),
            approval: Some(ApprovalRule {
                roles: vec!["admin".to_owned()],
                count: 2,
                not_by: None,
                deadline: Utc::now() + TimeDelta::hours(1),
            }),
            created_by: Some("alice".to_owned()),
            retry_of: None,
            hold: false,
        })
        .await
        .unwrap();
    store
        .record_approval(
            waiting.id,
            NewApproval {
                by: "bob".to_owned(),
                role: "admin".to_owned(),
                approve: true,
                note: "fine by me".to_owned(),
            },
        )
        .await
        .unwrap();
    let claimed = store
        .claim_next_deployment(&NodeId("node-a".to_owned()), LONG, 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, running.id);
    store
        .update_step(
            running.id,
            StepRecord {
                index: 0,
                name: "Build".to_owned(),
                state: StepRunState::Success,
                reason: None,
                started_at: Some(Utc::now()),
                duration: Some(Duration::from_millis(1_234)),
            },
        )
        .await
        .unwrap();
    let lines: Vec<LogLineRecord> = (0..2_500)
        .map(|n| LogLineRecord {
            timestamp: chrono::DateTime::from_timestamp_millis(n).unwrap(),
            step: Some("Build".to_owned()),
            stream: LogStream::Stdout,
            level: LogLevel::Info,
            text: format!("line {n}"),
        })
        .collect();
    store.append_log(running.id, &lines).await.unwrap();
    store
        .set_variable(NewVariable {
            project: web.id,
            name: "ApiKey".to_owned(),
            value: "variable-secret-canary".to_owned(),
            environments: vec!["Staging".to_owned()],
            roles: Vec::new(),
            sensitive: true,
        })
        .await
        .unwrap();
    store
        .create_token(NewApiToken {
            name: "admin".to_owned(),
            hash: TokenHash([7; 32]),
            role: "admin".to_owned(),
            expires_at: None,
        })
        .await
        .unwrap();
    store
        .set_environment_policy(web.id, "Production", &["main".to_owned()])
        .await
        .unwrap();
    store
        .append_audit(NewAuditEntry {
            actor: "token 1 (admin)".to_owned(),
            action: "variable.set".to_owned(),
            target: "project web variable ApiKey".to_owned(),
            source: Some("127.0.0.1".to_owned()),
            outcome: "ok".to_owned(),
            detail: None,
        })
        .await
        .unwrap();
    store.set_setting("initialized", "yes").await.unwrap();
    store
        .create_enrollment_token(NewEnrollmentToken {
            hash: TokenHash([1; 32]),
            name: Some("win-01".to_owned()),
            environments: vec!["Staging".to_owned()],
            roles: vec!["ps".to_owned()],
            expires_at: Utc::now() + TimeDelta::hours(1),
            auto_approve: true,
        })
        .await
        .unwrap();
    let agent = store
        .redeem_enrollment_token(
            &TokenHash([1; 32]),
            NewAgent {
                name: "win-01".to_owned(),
                credential: TokenHash([101; 32]),
                version: "0.1.0".to_owned(),
            },
            Utc::now(),
        )
        .await
        .unwrap();
    store
        .create_job(NewJob {
            id: tako_store::JobId("job-1".to_owned()),
            deployment: running.id,
            step_index: 1,
            step_name: "Deploy".to_owned(),
            agent: AgentId(agent.id.0),
            agent_name: agent.name.clone(),
            spec: r#"{"variables":[{"name":"Key","value":"job-secret-canary"}]}"#.to_owned(),
            attempt: 1,
        })
        .await
        .unwrap();
    // A deployment paused for a person, and a freeze.
    let paused = store
        .create_deployment(NewDeployment {
            release: first.id,
            environment: "DevTest".to_owned(),
            approval: None,
            created_by: None,
            retry_of: None,
            hold: false,
        })
        .await
        .unwrap();
    let claimed = store
        .claim_next_deployment(&NodeId("node-b".to_owned()), LONG, 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, paused.id);
    store
        .pause_deployment(
            paused.id,
            tako_store::NewIntervention {
                step_index: 1,
                step_name: "Smoke test".to_owned(),
                kind: tako_store::InterventionKind::Manual,
                instructions: "check the login page".to_owned(),
                roles: vec!["deployer".to_owned()],
            },
        )
        .await
        .unwrap();
    store
        .create_freeze(tako_store::NewFreeze {
            environment: "Production".to_owned(),
            project: Some(web.id),
            window: tako_core::freeze::FreezeWindow::Once {
                from: Utc::now(),
                to: Utc::now() + TimeDelta::days(3),
            },
            reason: "Black Friday".to_owned(),
            created_by: "alice".to_owned(),
        })
        .await
        .unwrap();
}

/// Every row of every table of `store`, by table, in key order.
async fn everything(store: &dyn Export) -> Vec<(String, Vec<Vec<Cell>>)> {
    let mut all = Vec::new();
    for table in store.tables().await.unwrap() {
        let mut rows = Vec::new();
        let mut after: Option<Vec<Cell>> = None;
        loop {
            let batch = store.rows(&table, after.as_deref(), 7).await.unwrap();
            let Some(last) = batch.last() else { break };
            after = Some(table.key_of(last));
            rows.extend(batch.into_iter().map(|row| {
                // Column order may differ; compare by column name.
                let mut named: Vec<(String, Cell)> =
                    table.columns.iter().cloned().zip(row).collect();
                named.sort_by(|a, b| a.0.cmp(&b.0));
                named.into_iter().map(|(_, c)| normalise(c)).collect()
            }));
        }
        all.push((table.name.clone(), rows));
    }
    all
}

/// Text and bytes compare as bytes.
fn normalise(cell: Cell) -> Cell {
    match cell {
        Cell::Text(t) => Cell::Bytes(t.into_bytes()),
        other => other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_is_copied_into_postgres_row_for_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tako.db");
    let keyring = Arc::new(Keyring::new(&[9; 32]));
    {
        let store = SqliteStore::open(&path)
            .unwrap()
            .with_keyring(Arc::clone(&keyring));
        fill(&store).await;
    }
    let source = SqliteExport::open(&path).unwrap();
    let tables = source.tables().await.unwrap();
    for table in &tables {
        assert!(
            source.count(&table.name).await.unwrap() > 0,
            "table {} is empty: add a row to it in fill() so its copy is tested",
            table.name
        );
    }
    assert!(tables.len() >= 17, "{tables:?}");

    let postgres = Postgres::start_new();
    let url = postgres.create_database("target");
    let target = PostgresStore::connect(PostgresOptions::new(&url))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let copied = target
        .import_from(&source, 1_000, &mut |table, rows| {
            seen.push((table.to_owned(), rows));
        })
        .await
        .unwrap();
    assert_eq!(copied.len(), tables.len());
    assert!(seen.iter().any(|(t, _)| t == "log_chunks"), "{seen:?}");
    assert_eq!(everything(&source).await, everything(&target).await);

    // The secrets are still sealed under the same key, and open with it;
    // the database never holds them in the clear.
    let dump = postgres.psql(
        "target",
        "SELECT string_agg(value, ' ') FROM variables UNION ALL
         SELECT string_agg(webhook_secret, ' ') FROM projects",
    );
    assert!(!dump.contains("canary"), "{dump}");
    let node = PostgresStore::connect(PostgresOptions::new(&url))
        .await
        .unwrap()
        .with_keyring(Arc::clone(&keyring));
    let web = node.find_project_by_name("web").await.unwrap().unwrap();
    let variables = node.list_variables(web.id).await.unwrap();
    assert_eq!(variables[0].value, "variable-secret-canary");
    let deployments = node
        .list_deployments(
            &tako_store::DeploymentFilter::default(),
            tako_store::PageRequest::first(10),
        )
        .await
        .unwrap();
    let log = node
        .read_log(
            deployments.items.last().unwrap().id,
            LogCursor::START,
            10_000,
        )
        .await
        .unwrap();
    assert_eq!(log.lines.len(), 2_500);
    assert_eq!(log.lines[2_499].text, "line 2499");
    // Both bodies are read back as they came, whatever their codec: the
    // copy kept SQLite's compressed bytes.
    let codecs = postgres.psql(
        "target",
        "SELECT string_agg(body_codec, ' ' ORDER BY id) FROM deliveries",
    );
    assert_eq!(codecs, "plain lz4");
    let claimed = node
        .claim_pending_deliveries(&NodeId("n".to_owned()), LONG, 10)
        .await
        .unwrap();
    let bodies: Vec<_> = claimed
        .iter()
        .map(|c| (c.delivery.id.0.as_str(), c.body.clone()))
        .collect();
    assert_eq!(
        bodies,
        [
            ("d-1", Ok(b"{\"ref\":\"refs/heads/main\"}".to_vec())),
            ("d-2", Ok(large_push())),
        ]
    );
    // New rows get new ids after the copied ones.
    let second = node.create_release(release(web.id, "1.0.1")).await.unwrap();
    assert!(second.id.0 > deployments.items[0].release.0, "{second:?}");

    // A second copy into the same database is refused, naming what is there.
    let again = node
        .import_from(&source, 1_000, &mut |_, _| {})
        .await
        .unwrap_err();
    let message = again.to_string();
    assert!(
        matches!(again, TransferError::TargetNotEmpty { .. }),
        "{message}"
    );
    assert!(message.contains("projects: 1 row(s)"), "{message}");
    assert!(message.contains("empty database"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_at_another_schema_version_is_refused_before_anything_is_copied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tako.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "DELETE FROM schema_migrations WHERE version = (SELECT MAX(version) FROM schema_migrations)",
        [],
    )
    .unwrap();
    drop(conn);

    let postgres = Postgres::start_new();
    let url = postgres.create_database("target");
    let target = PostgresStore::connect(PostgresOptions::new(&url))
        .await
        .unwrap();
    let source = SqliteExport::open(&path).unwrap();
    let error = target
        .import_from(&source, 100, &mut |_, _| {})
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, TransferError::SourceVersion { .. }),
        "{message}"
    );
    assert!(message.contains("start `tako serve` once"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");

    // Not a Tako database at all, or no file.
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let error = SqliteExport::open(&other).unwrap_err().to_string();
    assert!(error.contains("not a Tako database"), "{error}");
    let error = SqliteExport::open(dir.path().join("missing.db"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no such file"), "{error}");
}
