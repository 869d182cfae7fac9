//! The store conformance suite on PostgreSQL (a real server from the
//! system's binaries, started by `tako_test_support::postgres`; a fresh
//! database per test), plus what only PostgreSQL has: the migration lock,
//! a newer schema refused, an unreachable server, the database's own rules.

#![allow(clippy::unwrap_used)]

mod conformance;

use std::sync::Arc;

use async_trait::async_trait;
use tako_store::{Keyring, PostgresOptions, PostgresStore, Store, StoreError};
use tako_test_support::postgres::Postgres;

use conformance::{StoreFactory, conformance_suite};

/// A PostgreSQL cluster of this test and one database in it.
struct PostgresFactory {
    postgres: Postgres,
    url: String,
    keyring: Arc<Keyring>,
}

impl PostgresFactory {
    fn new() -> Self {
        let postgres = Postgres::start_new();
        let url = postgres.create_database("conformance");
        PostgresFactory {
            postgres,
            url,
            keyring: Arc::new(Keyring::new(&[9; 32])),
        }
    }

    async fn connect(&self) -> PostgresStore {
        PostgresStore::connect(PostgresOptions::new(&self.url))
            .await
            .unwrap()
    }
}

#[async_trait]
impl StoreFactory for PostgresFactory {
    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(self.connect().await.with_keyring(Arc::clone(&self.keyring)))
    }

    fn keyring(&self) -> Option<Arc<Keyring>> {
        Some(Arc::clone(&self.keyring))
    }
}

conformance_suite!(PostgresFactory::new());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_migrate_once() {
    let factory = PostgresFactory::new();
    let mut starting = Vec::new();
    for _ in 0..4 {
        let options = PostgresOptions::new(&factory.url);
        starting.push(tokio::spawn(PostgresStore::connect(options)));
    }
    for node in starting {
        node.await.unwrap().unwrap();
    }
    let applied = factory.postgres.psql(
        "conformance",
        "SELECT count(*) - count(DISTINCT version), max(version) FROM schema_migrations",
    );
    // Each applied once, up to the latest (numbers may be left to other
    // branches, so the count is not the latest number).
    let latest = tako_store::latest_postgres_version();
    assert_eq!(applied, format!("0|{latest}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused_naming_both_versions() {
    let factory = PostgresFactory::new();
    drop(factory.connect().await);
    factory.postgres.psql(
        "conformance",
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)",
    );
    let error = PostgresStore::connect(PostgresOptions::new(&factory.url))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::SchemaTooNew { found: 999, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("version 999"), "{message}");
    assert!(
        message.contains(&format!("({})", tako_store::latest_postgres_version())),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_unavailable_without_its_password() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut options = PostgresOptions::new(format!(
        "postgres://tako:hunter2-secret@127.0.0.1:{port}/tako"
    ));
    options.connect_timeout = std::time::Duration::from_secs(2);
    let error = PostgresStore::connect(options).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    let message = format!("{error} {error:?}");
    assert!(message.contains("cannot reach the database"), "{message}");
    assert!(message.contains(&port.to_string()), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_is_unavailable_and_the_store_recovers() {
    let factory = PostgresFactory::new();
    let store = factory.open().await;
    conformance::project(store.as_ref(), "web").await;
    factory.postgres.stop();
    let error = store.list_projects().await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    factory.postgres.start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match store.list_projects().await {
            Ok(projects) => {
                assert_eq!(projects.len(), 1);
                break;
            }
            Err(error) => {
                assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
                assert!(std::time::Instant::now() < deadline, "{error}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// The database never holds a secret in the clear: every table dumped as
/// text after a rotation holds none of the test's secret values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_never_holds_a_secret() {
    let factory = PostgresFactory::new();
    conformance::secrets::rotation_reseals_every_secret(&factory).await;
    conformance::jobs::a_job_is_claimed_by_its_agent_and_its_log_stored_once_in_order(&factory)
        .await;
    let needles = [
        "canary-",
        "s3cr3t",
        "line two",
        "legacy-clear",
        "hook-",
        "token-",
    ];
    let tables = factory.postgres.psql(
        "conformance",
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    );
    let mut checked = 0;
    for table in tables.lines() {
        let dump = factory
            .postgres
            .psql("conformance", &format!("SELECT t::text FROM \"{table}\" t"));
        checked += dump.len();
        for needle in needles {
            assert!(!dump.contains(needle), "{needle} found in table {table}");
        }
    }
    assert!(checked > 0);
}

/// A delivery's body is compressed with lz4, not pglz (migration 0024):
/// the column says so, and a stored push is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_bodies_are_compressed_with_lz4() {
    let factory = PostgresFactory::new();
    let store = factory.open().await;
    let mut push = conformance::delivery("lz4", "web");
    // Compressible and large enough for TOAST to compress (over 2 KB).
    push.body = "{\"commits\":["
        .bytes()
        .chain(b"1,".repeat(4000))
        .chain(*b"1]}")
        .collect();
    store.insert_deliveries(&[push]).await.unwrap();
    let column = factory.postgres.psql(
        "conformance",
        "SELECT attcompression FROM pg_attribute
         WHERE attrelid = 'deliveries'::regclass AND attname = 'body'",
    );
    assert_eq!(column.trim(), "l", "the column's compression method");
    let stored = factory.postgres.psql(
        "conformance",
        "SELECT pg_column_compression(body) FROM deliveries WHERE id = 'lz4'",
    );
    assert_eq!(stored.trim(), "lz4");
}

/// A claim walks `deliveries_pending` in order and stops at its limit,
/// whatever the table's statistics say. Analyzed while no delivery was
/// pending, the planner expects a handful and would fetch every pending
/// row through a bitmap and sort them all for the oldest few: a burst's
/// thousands, on every claim (docs/decisions.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_reads_only_the_oldest_pending_deliveries_whatever_the_statistics_say() {
    use std::time::{Duration, Instant};

    let factory = PostgresFactory::new();
    let store = factory.open().await;
    factory.postgres.psql("conformance", "ANALYZE deliveries");
    for batch in 0..6 {
        let deliveries: Vec<_> = (0..500)
            .map(|i| conformance::delivery(&format!("backlog-{batch}-{i}"), "web"))
            .collect();
        store.insert_deliveries(&deliveries).await.unwrap();
    }
    // (scans, entries read) of the index, as the statistics collector has
    // them: each backend reports within a second or so of going idle.
    let index_reads = || {
        let row = factory.postgres.psql(
            "conformance",
            "SELECT idx_scan, idx_tup_read FROM pg_stat_user_indexes
             WHERE indexrelname = 'deliveries_pending'",
        );
        let (scans, read) = row.trim().split_once('|').unwrap();
        (scans.parse::<u64>().unwrap(), read.parse::<u64>().unwrap())
    };
    let (scans_before, read_before) = index_reads();
    let node = tako_store::NodeId("node-a".to_owned());
    let claimed = store
        .claim_pending_deliveries(&node, Duration::from_secs(60), 32)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 32);
    assert_eq!(claimed[0].delivery.id.0, "backlog-0-0", "the oldest first");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (scans, read) = loop {
        let now = index_reads();
        if now.0 > scans_before {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the claim's index scan was never reported"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(scans - scans_before, 1, "one scan of deliveries_pending");
    assert!(
        read - read_before <= 64,
        "the claim read {} entries of deliveries_pending for 32 deliveries (3,000 pending)",
        read - read_before
    );
}

/// A change refused after its transaction locked a row answers only once
/// the row is free again, so a claim through another node right after the
/// answer never passes the row by (`SKIP LOCKED`). Dropping a transaction
/// only queues its `ROLLBACK`; here node A's link to the database is slow
/// one way, so a queued `ROLLBACK` arrives well after the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_leaves_no_row_locked_behind_it() {
    use std::time::Duration;
    use tako_store::{DeliveryCompletion, DeliveryId, NodeId};
    use tako_test_support::fault_proxy::FaultProxy;

    let factory = PostgresFactory::new();
    let (head, rest) = factory.url.split_once('@').unwrap();
    let (server, database) = rest.split_once('/').unwrap();
    let proxy = FaultProxy::start(server);
    let through_proxy = format!("{head}@{}/{database}", proxy.address());
    let a = PostgresStore::connect(PostgresOptions::new(&through_proxy))
        .await
        .unwrap()
        .with_keyring(Arc::clone(&factory.keyring));
    let b = factory.open().await;
    proxy.delay_to_target(Duration::from_millis(100));
    let node = NodeId("node-b".to_owned());
    for round in 0..3 {
        let name = format!("refused-{round}");
        b.insert_deliveries(&[conformance::delivery(&name, "web")])
            .await
            .unwrap();
        let id = DeliveryId(name);
        // Locks the row, finds it pending, refuses.
        let refused = a.replay_delivery(&id).await.unwrap_err();
        assert!(
            matches!(refused, StoreError::InvalidTransition { .. }),
            "{refused:?}"
        );
        let claimed = b
            .claim_pending_delivery(&node, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: the refused row was still locked"));
        assert_eq!(claimed.delivery.id, id);
        b.complete_delivery(
            &id,
            DeliveryCompletion::Ignored {
                project: None,
                reason: "test".to_owned(),
            },
        )
        .await
        .unwrap();
    }
}

/// Nothing can change or remove an audit entry, not even SQL on the
/// database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_is_append_only_in_the_database() {
    let factory = PostgresFactory::new();
    let store = factory.open().await;
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
    for sql in [
        "UPDATE audit_log SET outcome = 'failed'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let error = psql_error(&factory, sql);
        assert!(error.contains("append-only"), "{sql}: {error}");
    }
    assert_eq!(
        factory
            .postgres
            .psql("conformance", "SELECT outcome FROM audit_log"),
        "ok"
    );
}

/// The schema itself refuses a second running deployment of one project
/// and environment, whatever query tries (here: raw SQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_allows_one_running_deployment_per_project_and_environment() {
    let factory = PostgresFactory::new();
    let store = factory.open().await;
    let project = conformance::project(store.as_ref(), "web").await;
    let release = store
        .create_release(conformance::new_release(project.id, "1.0.0"))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for environment in ["Production", "Production", "Staging"] {
        let deployment = store
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
        ids.push(deployment.id.0);
    }
    let run = |id: i64| format!("UPDATE deployments SET state = 'running' WHERE id = {id}");
    factory.postgres.psql("conformance", &run(ids[0]));
    let second = psql_error(&factory, &run(ids[1]));
    assert!(second.contains("deployments_one_running"), "{second}");
    factory.postgres.psql("conformance", &run(ids[2]));
    factory.postgres.psql(
        "conformance",
        &format!(
            "UPDATE deployments SET state = 'success' WHERE id = {}",
            ids[0]
        ),
    );
    factory.postgres.psql("conformance", &run(ids[1]));
}

/// What `psql` says when `sql` fails (it must fail).
fn psql_error(factory: &PostgresFactory, sql: &str) -> String {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        factory.postgres.psql("conformance", sql)
    }));
    match outcome {
        Ok(output) => panic!("{sql} succeeded: {output}"),
        Err(panic) => panic.downcast_ref::<String>().cloned().unwrap_or_default(),
    }
}

/// A CA and a server certificate it issued for 127.0.0.1 (PEM: CA, chain,
/// key).
fn pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// `sslmode=require` connects over TLS, verifying the server's certificate
/// against `database_ca_file`; a certificate nobody vouched for is refused
/// (never a silent plain or unverified connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_the_database_is_verified() {
    let factory = PostgresFactory::new();
    let (ca, cert, key) = pki();
    factory.postgres.enable_tls(&cert, &key);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let url = format!("{}?sslmode=require&application_name=tls-test", factory.url);

    let mut options = PostgresOptions::new(&url);
    options.ca_file = Some(ca_file.clone());
    let store = PostgresStore::connect(options).await.unwrap();
    conformance::project(&store, "web").await;
    let encrypted = factory.postgres.psql(
        "conformance",
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
         WHERE application_name = 'tls-test' AND ssl",
    );
    assert_ne!(encrypted, "0", "the store's connections use TLS");

    // The system's roots do not vouch for the test CA.
    let mut options = PostgresOptions::new(&url);
    options.connect_timeout = std::time::Duration::from_secs(3);
    let error = PostgresStore::connect(options).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
    let message = format!("{error}");
    assert!(message.contains("certificate"), "{message}");

    // A CA file that is not one.
    let mut options = PostgresOptions::new(&url);
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    options.ca_file = Some(bogus);
    let message = PostgresStore::connect(options)
        .await
        .unwrap_err()
        .to_string();
    assert!(message.contains("database_ca_file"), "{message}");
}

/// Cluster §3: a change made through one node wakes the others (`NOTIFY`
/// on commit, heard by each store's `LISTEN`); a listener that lost its
/// connection makes it again and says it may have missed some.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_node_wakes_another_and_a_lost_listener_comes_back() {
    use conformance::delivery as push;
    use std::time::Duration;
    use tako_store::Wakeup;

    let factory = PostgresFactory::new();
    let a = factory.open().await;
    let b = factory.open().await;
    let mut wakeups = a.wakeups();
    let mut heard = false;
    for i in 0..50 {
        b.insert_deliveries(&[push(&format!("from-b-{i}"), "web")])
            .await
            .unwrap();
        if heard_within(&mut wakeups, Wakeup::Deliveries, Duration::from_millis(200)).await {
            heard = true;
            break;
        }
    }
    assert!(heard, "node a never heard of node b's deliveries");

    // The database restarts: the listener connects again and tells its
    // receivers that wake-ups may have been lost.
    factory.postgres.stop();
    factory.postgres.start();
    assert!(
        heard_within(&mut wakeups, Wakeup::Missed, Duration::from_secs(30)).await,
        "the listener never came back"
    );
    b.insert_deliveries(&[push("after-restart", "web")])
        .await
        .unwrap();
    assert!(
        heard_within(&mut wakeups, Wakeup::Deliveries, Duration::from_secs(10)).await,
        "nothing heard after the restart"
    );
}

/// Whether `wanted` comes within `wait` (other wake-ups are skipped).
async fn heard_within(
    wakeups: &mut tako_store::Wakeups,
    wanted: tako_store::Wakeup,
    wait: std::time::Duration,
) -> bool {
    let next = async { while wakeups.next().await != wanted {} };
    tokio::time::timeout(wait, next).await.is_ok()
}
