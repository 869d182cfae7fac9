//! Batched delivery inserts, durable, the intake's hot path: into a
//! temporary SQLite file (WAL, `synchronous=FULL`) and into a real
//! PostgreSQL started from the system's binaries (`fsync` on, its default
//! `synchronous_commit`), side by side. Run with
//! `cargo bench -p tako-store --bench intake`; the throughput line gives
//! deliveries per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use criterion::{BatchSize, Criterion, Throughput};
use tako_store::{DeliveryId, NewDelivery, PostgresOptions, PostgresStore, SqliteStore, Store};

/// A push payload's typical size.
const BODY_BYTES: usize = 8 * 1024;

fn batch(counter: &AtomicU64, size: usize) -> Vec<NewDelivery> {
    (0..size)
        .map(|_| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            NewDelivery {
                id: DeliveryId(format!("72d3162e-cc78-11e3-81ab-{n:012x}")),
                event: "push".to_owned(),
                received_at: Utc::now(),
                body: vec![b'x'; BODY_BYTES],
                repository_url: Some("https://github.com/acme/web".to_owned()),
                git_ref: Some("refs/heads/main".to_owned()),
                after: None,
                recovered: false,
            }
        })
        .collect()
}

fn inserts(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sqlite: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path().join("bench.db")).expect("the store opens"));
    let postgres = tako_test_support::postgres::Postgres::start_new();
    let url = postgres.create_database("bench");
    // The test support's clusters skip fsync at initdb only; the server
    // itself runs with fsync on, so every commit is durable.
    assert_eq!(postgres.psql("bench", "SHOW fsync"), "on");
    let pg: Arc<dyn Store> = Arc::new(
        runtime
            .block_on(PostgresStore::connect(PostgresOptions::new(url)))
            .expect("the store connects"),
    );
    let counter = AtomicU64::new(0);
    for (name, store) in [("sqlite", &sqlite), ("postgres", &pg)] {
        let mut group = c.benchmark_group(format!("insert_deliveries_{name}"));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(5));
        for size in [1usize, 16, 64, 256] {
            group.throughput(Throughput::Elements(size as u64));
            group.bench_function(format!("batch_{size}_8KiB"), |b| {
                b.to_async(&runtime).iter_batched(
                    || batch(&counter, size),
                    |deliveries| {
                        let store = Arc::clone(store);
                        async move {
                            store
                                .insert_deliveries(&deliveries)
                                .await
                                .expect("inserted");
                        }
                    },
                    BatchSize::SmallInput,
                );
            });
        }
        group.finish();
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    inserts(&mut criterion);
    criterion.final_summary();
}
