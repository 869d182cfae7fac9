//! The store conformance suite on SQLite (a temporary file per test), plus
//! what only SQLite has: opening files, migrations, the in-memory store.

#![allow(clippy::unwrap_used)]

mod conformance;

use std::sync::Arc;

use async_trait::async_trait;
use tako_store::{Keyring, SqliteStore, Store, StoreError};
use tempfile::TempDir;

use conformance::{LONG, StoreFactory, conformance_suite};

/// A fresh temporary directory holding `tako.db`.
struct SqliteFactory {
    dir: TempDir,
    keyring: Arc<Keyring>,
}

impl SqliteFactory {
    fn new() -> Self {
        SqliteFactory {
            dir: tempfile::tempdir().unwrap(),
            keyring: Arc::new(Keyring::new(&[9; 32])),
        }
    }
}

#[async_trait]
impl StoreFactory for SqliteFactory {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(
            SqliteStore::open(self.dir.path().join("data/tako.db"))
                .unwrap()
                .with_keyring(Arc::clone(&self.keyring)),
        )
    }

    fn keyring(&self) -> Option<Arc<Keyring>> {
        Some(Arc::clone(&self.keyring))
    }
}

conformance_suite!(SqliteFactory::new());

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tako.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
        [],
    )
    .unwrap();
    drop(conn);
    let error = SqliteStore::open(&path).unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaTooNew { found: 999, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("version 999"), "{error}");
}

#[test]
fn an_unwritable_location_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let error = SqliteStore::open(file.join("sub/tako.db")).unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("cannot create directory"), "{message}");
    assert!(message.contains("a-file"), "{message}");
}

#[test]
fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tako.db");
    std::fs::write(&path, vec![b'x'; 8192]).unwrap();
    let error = SqliteStore::open(&path).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("tako.db"), "{message}");
}

#[test]
fn the_database_uses_wal_and_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tako.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.path(), Some(path.as_path()));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn the_in_memory_store_works() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let project = conformance::project(store.as_ref(), "web").await;
    let deployment = conformance::queue(store.as_ref(), project.id, "Production").await;
    let claimed = store
        .claim_next_deployment(&conformance::node("a"), conformance::LONG, 4)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, deployment.id);
}

/// The raw database file and its WAL never hold a secret in the clear, even
/// after a rotation re-sealed everything.
#[tokio::test]
async fn the_database_file_never_holds_a_secret() {
    let factory = SqliteFactory::new();
    conformance::secrets::rotation_reseals_every_secret(&factory).await;
    let store = factory.open().await;
    let dir = factory.dir.path().join("data");
    let needles = [
        "canary-",
        "s3cr3t",
        "line two",
        "legacy-clear",
        "hook-",
        "token-",
    ];
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        checked += bytes.len();
        let text = String::from_utf8_lossy(&bytes);
        for needle in needles {
            assert!(
                !text.contains(needle),
                "{needle} found in {}",
                path.display()
            );
        }
    }
    assert!(checked > 0);
    drop(store);
}

/// A job's specification and outputs (which carry sensitive values to and
/// from an agent) are sealed in the database file and its WAL.
#[tokio::test]
async fn a_jobs_secrets_are_sealed_in_the_database_file() {
    let factory = SqliteFactory::new();
    conformance::jobs::a_job_is_claimed_by_its_agent_and_its_log_stored_once_in_order(&factory)
        .await;
    let dir = factory.dir.path().join("data");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        for needle in ["canary-job-secret", "canary-output"] {
            assert!(
                !text.contains(needle),
                "{needle} found in {}",
                path.display()
            );
        }
    }
}

/// A step's kept outputs (read by a resumed deployment) are sealed too.
#[tokio::test]
async fn a_steps_kept_outputs_are_sealed_in_the_database_file() {
    let factory = SqliteFactory::new();
    conformance::jobs::a_deployment_waiting_on_an_agent_is_requeued_with_its_steps_outputs(
        &factory,
    )
    .await;
    let dir = factory.dir.path().join("data");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert!(
            !text.contains("output-canary-77"),
            "found in {}",
            path.display()
        );
    }
}

/// Nothing can change or remove an audit entry, not even SQL on the file.
#[tokio::test]
async fn the_audit_log_is_append_only_in_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tako.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .append_audit(tako_store::NewAuditEntry {
            actor: "cli".to_owned(),
            action: "key.rotate".to_owned(),
            target: "master key".to_owned(),
            source: None,
            outcome: "ok".to_owned(),
            detail: None,
        })
        .await
        .unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "UPDATE audit_log SET outcome = 'failed'",
        "DELETE FROM audit_log",
    ] {
        let error = conn.execute(sql, []).unwrap_err();
        assert!(error.to_string().contains("append-only"), "{error}");
    }
}

/// The WAL is checkpointed into the database file once the writer is idle
/// (SQLite's automatic checkpoint, inside a commit, is off; the writer asks
/// the checkpointer thread).
#[tokio::test]
async fn the_wal_is_checkpointed_when_the_writer_is_idle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tako.db");
    let store = SqliteStore::open(&path).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let deliveries = pushes_of_8_kib("delivery", 400);
    for batch in deliveries.chunks(50) {
        store.insert_deliveries(batch).await.unwrap();
    }
    // 3.2 MB written; with no checkpoint it would all still be in the WAL.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = std::fs::metadata(&path).unwrap().len();
        if now > before + 3_000_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file did not grow ({before} -> {now} bytes): no idle checkpoint"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `count` deliveries with 8 KiB bodies, ids `<prefix>-<n>`. The bytes
/// have no repeats, so the store cannot compress them: 8 KiB each is
/// written.
fn pushes_of_8_kib(prefix: &str, count: usize) -> Vec<tako_store::NewDelivery> {
    let body = noise(8 * 1024);
    (0..count)
        .map(|n| tako_store::NewDelivery {
            id: tako_store::DeliveryId(format!("{prefix}-{n}")),
            event: "push".to_owned(),
            received_at: chrono::Utc::now(),
            body: body.clone(),
            repository_url: None,
            git_ref: None,
            after: None,
            recovered: false,
        })
        .collect()
}

/// Bytes without repeats for a compressor to find (xorshift64).
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// The WAL is copied back while writes keep coming, not only when the
/// writer is idle: before, a long burst left the whole of it (150 MB) for
/// one checkpoint and one flush at the first pause, and every commit behind
/// that waited 0.2–0.5 s.
#[tokio::test]
async fn the_wal_is_copied_back_into_the_database_file_while_writes_keep_coming() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tako.db");
    let store = SqliteStore::open(&path).unwrap();
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    // 24 MiB of deliveries, batch after batch with no pause the idle
    // checkpoint could use: the WAL passes its 4 MiB step six times.
    for batch in pushes_of_8_kib("burst", 48 * 64).chunks(64) {
        store.insert_deliveries(batch).await.unwrap();
    }
    let during = size();
    assert!(
        during >= before + 8 * 1024 * 1024,
        "the database file grew from {before} to only {during} bytes while the WAL took 24 MiB"
    );
}

/// The schema itself refuses a second running deployment of one project
/// and environment, whatever query tries (here: raw SQL on the file).
#[tokio::test]
async fn the_schema_allows_one_running_deployment_per_project_and_environment() {
    let factory = SqliteFactory::new();
    let store = factory.open().await;
    let project = conformance::project(store.as_ref(), "web").await;
    let release = store
        .create_release(conformance::new_release(project.id, "1.0.0"))
        .await
        .unwrap();
    for environment in ["Production", "Production", "Staging"] {
        store
            .create_deployment(tako_store::NewDeployment {
                release: release.id,
                environment: environment.to_owned(),
                approval: None,
                created_by: None,
                retry_of: None,
                hold: false,
            })
            .await
            .unwrap();
    }
    drop(store);
    let sql = rusqlite::Connection::open(factory.dir.path().join("data/tako.db")).unwrap();
    let run = |id: i64| {
        sql.execute(
            "UPDATE deployments SET state = 'running' WHERE id = ?1",
            [id],
        )
    };
    run(1).unwrap();
    let second = run(2).unwrap_err().to_string();
    assert!(second.contains("UNIQUE constraint failed"), "{second}");
    // Another environment, or the first one once it has ended, is fine.
    run(3).unwrap();
    sql.execute("UPDATE deployments SET state = 'success' WHERE id = 1", [])
        .unwrap();
    run(2).unwrap();
}

/// A database made before retention (`auto_vacuum = NONE`) is rewritten
/// once at open into incremental auto-vacuum; the pages retention frees are
/// then given back to the file system step by step, and the file shrinks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_history_gives_its_pages_back_to_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tako.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA auto_vacuum = NONE; CREATE TABLE made_before (x INTEGER);")
            .unwrap();
    }
    let auto_vacuum = |path: &std::path::Path| -> i64 {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(auto_vacuum(&path), 0);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    assert_eq!(auto_vacuum(&path), 2, "incremental");
    let web = conformance::project(store.as_ref(), "web").await;
    let text = "x".repeat(400);
    for _ in 0..12 {
        let queued = conformance::queue(store.as_ref(), web.id, "DevTest").await;
        let claimed = store
            .claim_next_deployment(&conformance::node("a"), conformance::LONG, 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, queued.id);
        let lines: Vec<tako_store::LogLineRecord> = (0..2_000)
            .map(|n| tako_store::LogLineRecord {
                timestamp: chrono::Utc::now(),
                step: None,
                stream: tako_store::LogStream::Stdout,
                level: tako_store::LogLevel::Info,
                text: format!("{n} {text}"),
            })
            .collect();
        store.append_log(claimed.id, &lines).await.unwrap();
        store
            .finish_deployment(claimed.id, tako_store::DeploymentState::Success, None)
            .await
            .unwrap();
    }
    drop(store);
    let full = std::fs::metadata(&path).unwrap().len();

    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let removed = store
        .prune(
            tako_store::Prune::TaskLogs {
                project: web.id,
                finished_before: chrono::Utc::now() + chrono::TimeDelta::minutes(1),
            },
            100,
            false,
        )
        .await
        .unwrap();
    assert_eq!(removed, 11, "every log but the dashboard cell's");
    let mut given = 0;
    loop {
        let step = store.reclaim_space(64).await.unwrap();
        assert!(step <= 64);
        if step == 0 {
            break;
        }
        given += step;
    }
    assert!(given > 0);
    drop(store);
    let shrunk = std::fs::metadata(&path).unwrap().len();
    assert!(
        shrunk * 3 < full,
        "the file shrank from {full} to {shrunk} bytes"
    );
}

/// A push-sized body is stored LZ4-compressed (it fits its page rather than
/// spilling into overflow pages) and claimed back byte for byte; a row whose
/// stored body is corrupt fails only its own delivery's body, with a reason,
/// and the rest of the batch is claimed as usual.
#[tokio::test]
async fn push_bodies_are_stored_compressed_and_a_corrupt_one_spoils_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tako.db");
    let store = SqliteStore::open(&path).unwrap();
    let commit = r#"{"id":"0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c","message":"Update README","author":{"name":"Octocat","email":"octocat@github.com"}}"#;
    let push = format!("{{\"commits\":[{}]}}", vec![commit; 60].join(",")).into_bytes();
    let mut deliveries = pushes_of_8_kib("push", 3);
    for delivery in &mut deliveries {
        delivery.body = push.clone();
    }
    deliveries.push(pushes_of_8_kib("noise", 1).remove(0));
    store.insert_deliveries(&deliveries).await.unwrap();

    let raw = rusqlite::Connection::open(&path).unwrap();
    let stored: Vec<(String, String, i64)> = raw
        .prepare("SELECT id, body_codec, length(body) FROM deliveries ORDER BY seq")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (id, codec, length) in &stored[..3] {
        assert_eq!(codec, "lz4", "{id}");
        assert!(
            usize::try_from(*length).unwrap() < push.len() / 4,
            "{id}: {length} of {}",
            push.len()
        );
    }
    assert_eq!(
        stored[3],
        ("noise-0".to_owned(), "plain".to_owned(), 8 * 1024_i64),
        "what does not compress is kept as it came"
    );
    // Bytes damaged on disk: the announced length no longer matches.
    raw.execute(
        "UPDATE deliveries SET body = substr(body, 1, 100) WHERE id = 'push-1'",
        [],
    )
    .unwrap();

    let claimed = store
        .claim_pending_deliveries(&tako_store::NodeId("n".to_owned()), LONG, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = claimed.iter().map(|c| c.delivery.id.0.as_str()).collect();
    assert_eq!(ids, ["push-0", "push-1", "push-2", "noise-0"]);
    assert_eq!(claimed[0].body, Ok(push.clone()));
    assert_eq!(claimed[2].body, Ok(push.clone()));
    assert_eq!(claimed[3].body, Ok(noise(8 * 1024)));
    let error = claimed[1].body.clone().unwrap_err();
    assert_eq!(error.codec, "lz4");
    assert!(
        error
            .to_string()
            .starts_with("the stored body (lz4) cannot be decoded: "),
        "{error}"
    );
}
